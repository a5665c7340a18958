"""Deterministic chibi portraits drawn with PIL from attributes.

`render(attrs, seed, size)` draws the same image for the same arguments on every machine: all
randomness (position, colour and size jitter, stars in a night sky) comes from `random.Random(seed)`,
so one seed with one attribute changed is the same portrait edited.
Shapes are laid out on a 64-unit grid, drawn 4x larger and downsampled, so 32-128 px all look alike.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from PIL import Image, ImageDraw

from demoworld import catalog as cat

SUPERSAMPLE = 4


@dataclass(frozen=True)
class Attributes:
    hair_color: str | None
    hair_style: str
    eye_color: str
    skin: str
    outfit: str
    accessories: tuple[str, ...] = ()
    background: str = "white"
    expression: str = "smile"
    character: str | None = None   # the catalog id, when this is a catalog character (a costume change included)
    garment: str = "shirt"         # catalog.GARMENTS: a shirt, or a swimsuit (rated sensitive)

    @property
    def rating(self) -> str:
        """The content rating tag of this render (catalog.RATING_TAGS)."""
        return content_rating(self)

    @property
    def character_tag(self) -> str | None:
        """The tagger's character tag (None for original looks and for non-anime figures)."""
        return cat.CHARACTER_BY_ID[self.character].tag if self.character else None

    def general_tags(self) -> list[str]:
        tags = []
        if self.hair_color is not None and self.hair_style != "bald":
            tags.append(cat.hair_color_tag(self.hair_color))
        tags.append(cat.style_tag(self.hair_style))
        tags.append(cat.eye_tag(self.eye_color))
        tags.append(cat.skin_tag(self.skin))
        tags += cat.garment_tags(self.garment, self.outfit)
        tags += [cat.accessory_tag(a) for a in self.accessories]
        tags.append(cat.background_tag(self.background))
        tags.append(cat.expression_tag(self.expression))
        return tags

    def with_scene(self, background: str, expression: str) -> "Attributes":
        return replace(self, background=background, expression=expression)


def content_rating(attrs: Attributes) -> str:
    """The rating of an attribute set: `sensitive` in a swimsuit, `general` for everything else."""
    return cat.content_rating(attrs.garment)


def character_attributes(character: cat.Character, background: str = "white",
                         expression: str = "smile", garment: str = "shirt") -> Attributes:
    return Attributes(character.hair_color, character.hair_style, character.eye_color, character.skin,
                      character.outfit, tuple(character.accessories), background, expression, character.id, garment)


def random_original(rng: random.Random, min_distance: int = 2) -> Attributes:
    """A random look that differs from every catalog character in at least `min_distance` attributes."""
    while True:
        style = rng.choice(cat.HAIR_STYLES)
        hair = None if style == "bald" else rng.choice(list(cat.HAIR_COLORS))
        n_acc = rng.choice((0, 0, 1, 1, 1, 2))
        acc = tuple(sorted(rng.sample(cat.ACCESSORIES, n_acc)))
        attrs = Attributes(hair, style, rng.choice(list(cat.EYE_COLORS)), rng.choice(list(cat.SKINS)),
                           rng.choice(list(cat.OUTFIT_COLORS)), acc)
        if all(_distance(attrs, c) >= min_distance for c in cat.CHARACTERS):
            return attrs


def _distance(a: Attributes, c: cat.Character) -> int:
    return (int(a.hair_color != c.hair_color) + int(a.hair_style != c.hair_style) + int(a.eye_color != c.eye_color)
            + int(a.skin != c.skin) + int(a.outfit != c.outfit) + int(set(a.accessories) != set(c.accessories)))


def _jitter(rng: random.Random, rgb: tuple[int, int, int], amount: int = 10) -> tuple[int, int, int]:
    return tuple(max(0, min(255, v + rng.randint(-amount, amount))) for v in rgb)  # type: ignore[return-value]


def _darker(rgb: tuple[int, int, int], f: float = 0.6) -> tuple[int, int, int]:
    return tuple(int(v * f) for v in rgb)  # type: ignore[return-value]


@dataclass
class _Canvas:
    draw: ImageDraw.ImageDraw
    k: float                                   # pixels per grid unit
    outline: tuple[int, int, int] = (40, 30, 40)
    extra: dict = field(default_factory=dict)

    def box(self, x0, y0, x1, y1):
        return [x0 * self.k, y0 * self.k, x1 * self.k, y1 * self.k]

    def pts(self, *xy):
        return [(x * self.k, y * self.k) for x, y in xy]

    def w(self, units: float) -> int:
        return max(1, round(units * self.k))


def render(attrs: Attributes, seed: int = 0, size: int = 64) -> Image.Image:
    """Draw `attrs` as an RGB image of `size`x`size`; the same (attrs, seed, size) gives the same pixels."""
    # Jitter depends on the seed only, drawn in a fixed order before anything attribute-specific:
    # the same seed with one attribute changed gives the same pose (the demo edit model's pairs).
    rng = random.Random(seed)
    cx = 32 + rng.uniform(-2.0, 2.0)
    cy = 29 + rng.uniform(-1.5, 1.5)
    r = 14.5 + rng.uniform(-0.8, 0.8)
    spread = 6 + rng.uniform(-0.4, 0.4)
    bg = _jitter(rng, cat.BACKGROUNDS[attrs.background], 8)
    skin = _jitter(rng, cat.SKINS[attrs.skin], 6)
    hair_rgb = _jitter(rng, cat.HAIR_COLORS[attrs.hair_color or "black"], 10)
    outfit = _jitter(rng, cat.OUTFIT_COLORS[attrs.outfit], 10)
    eye = _jitter(rng, cat.EYE_COLORS[attrs.eye_color], 8)
    spikes = [rng.uniform(-1, 1) for _ in range(5)]
    stars = [(rng.uniform(2, 62), rng.uniform(2, 40)) for _ in range(rng.randint(5, 9))]
    hair = hair_rgb if attrs.hair_color and attrs.hair_style != "bald" else None
    big = size * SUPERSAMPLE
    k = big / 64.0
    img = Image.new("RGB", (big, big), bg)
    c = _Canvas(ImageDraw.Draw(img), k)
    d = c.draw
    if attrs.background == "night":
        for x, y in stars:
            d.ellipse(c.box(x - 0.6, y - 0.6, x + 0.6, y + 0.6), fill=(255, 250, 200))

    acc = set(attrs.accessories)

    # hair behind the head
    if hair is not None:
        style = attrs.hair_style
        if style == "long":
            d.rounded_rectangle(c.box(cx - r - 2, cy - r + 2, cx + r + 2, cy + r + 14), radius=6 * k, fill=hair)
        elif style == "twintails":
            d.ellipse(c.box(cx - r - 10, cy - 6, cx - r + 3, cy + 26), fill=hair, outline=_darker(hair), width=c.w(0.5))
            d.ellipse(c.box(cx + r - 3, cy - 6, cx + r + 10, cy + 26), fill=hair, outline=_darker(hair), width=c.w(0.5))
        elif style == "ponytail":
            d.ellipse(c.box(cx + r - 6, cy - r - 2, cx + r + 9, cy + 16), fill=hair, outline=_darker(hair), width=c.w(0.5))
        elif style == "bob":
            d.rounded_rectangle(c.box(cx - r - 2, cy - r, cx + r + 2, cy + r - 2), radius=5 * k, fill=hair)

    # body and neck (in front of long hair, behind the head)
    if attrs.garment == "swimsuit":
        _draw_swimsuit(c, cx, cy, skin, outfit)
    else:
        d.ellipse(c.box(cx - 18, cy + 17, cx + 18, cy + 48), fill=outfit, outline=c.outline, width=c.w(0.6))
        d.polygon(c.pts((cx - 4, cy + 17), (cx + 4, cy + 17), (cx, cy + 23)), fill=skin)

    if "ogre_ears" in acc:
        for side in (-1, 1):
            x0 = cx + side * (r - 1)
            x1 = cx + side * (r + 7)
            d.polygon(c.pts((x0, cy - 1), (x0, cy + 4), (x1, cy - 3), (x1 + side * 2, cy - 6)), fill=skin,
                      outline=c.outline)
            d.ellipse(c.box(min(x1, x1 + side * 4) - 0.5, cy - 8, max(x1, x1 + side * 4) + 0.5, cy - 2), fill=skin,
                      outline=c.outline, width=c.w(0.5))

    # head
    d.ellipse(c.box(cx - r, cy - r, cx + r, cy + r), fill=skin, outline=c.outline, width=c.w(0.6))

    # hair on top of the head
    if hair is not None:
        style = attrs.hair_style
        d.chord(c.box(cx - r - 1, cy - r - 1.5, cx + r + 1, cy + r * 0.45), 180, 360, fill=hair)
        d.polygon(c.pts((cx - r + 1, cy - 3), (cx - r * 0.55, cy - 3), (cx - r * 0.75, cy + 3)), fill=hair)
        d.polygon(c.pts((cx + r - 1, cy - 3), (cx + r * 0.55, cy - 3), (cx + r * 0.75, cy + 3)), fill=hair)
        for fx in (-0.35, 0.0, 0.35):
            d.polygon(c.pts((cx + (fx - 0.18) * r, cy - 4), (cx + (fx + 0.18) * r, cy - 4), (cx + fx * r, cy + 0.5)),
                      fill=hair)
        if style == "spiky":
            for i in range(5):
                bx = cx - r * 0.8 + i * r * 0.4
                d.polygon(c.pts((bx - 3.5, cy - r + 4), (bx + 3.5, cy - r + 4), (bx + spikes[i], cy - r - 6)),
                          fill=hair)
        if style in ("long", "bob"):
            for side in (-1, 1):
                d.rectangle(c.box(min(cx + side * (r + 1.5), cx + side * (r - 2.5)), cy - 3,
                                  max(cx + side * (r + 1.5), cx + side * (r - 2.5)), cy + (r + 8 if style == "long" else r - 3)),
                            fill=hair)
        if style == "ponytail":
            d.ellipse(c.box(cx + r - 4, cy - r + 1, cx + r + 1, cy - r + 6), fill=(220, 60, 80))
    else:
        d.ellipse(c.box(cx - r * 0.5, cy - r * 0.85, cx - r * 0.15, cy - r * 0.6), fill=(255, 255, 255))

    _draw_face(c, spread, attrs.expression, cx, cy, r, eye, skin)

    if "mustache" in acc:
        d.chord(c.box(cx - 6, cy + 4, cx, cy + 9), 180, 360, fill=(60, 35, 20))
        d.chord(c.box(cx, cy + 4, cx + 6, cy + 9), 180, 360, fill=(60, 35, 20))
    if "glasses" in acc:
        for ex in (cx - 6, cx + 6):
            d.ellipse(c.box(ex - 4.5, cy - 2.5, ex + 4.5, cy + 6.5), outline=(20, 20, 20), width=c.w(1.0))
        d.line(c.pts((cx - 1.5, cy + 1.5), (cx + 1.5, cy + 1.5)), fill=(20, 20, 20), width=c.w(1.0))
    if "headband" in acc:
        d.rectangle(c.box(cx - r + 0.5, cy - 8, cx + r - 0.5, cy - 5), fill=(30, 40, 110))
        d.rectangle(c.box(cx - 4, cy - 8.5, cx + 4, cy - 4.5), fill=(200, 205, 215), outline=(90, 90, 100))
    if "headphones" in acc:
        d.arc(c.box(cx - r - 1, cy - r - 2, cx + r + 1, cy + r), 180, 360, fill=(50, 50, 60), width=c.w(2.0))
        for side in (-1, 1):
            x = cx + side * (r + 0.5)
            d.rounded_rectangle(c.box(x - 3, cy - 3, x + 3, cy + 6), radius=1.5 * k, fill=(60, 60, 70),
                                outline=(230, 60, 140), width=c.w(0.8))
    if "cat_ears" in acc:
        ear = hair if hair is not None else skin
        for side in (-1, 1):
            bx = cx + side * r * 0.55
            d.polygon(c.pts((bx - 5, cy - r + 3), (bx + 5, cy - r + 3), (bx + side * 2, cy - r - 8)), fill=ear,
                      outline=c.outline)
            d.polygon(c.pts((bx - 2.5, cy - r + 2), (bx + 2.5, cy - r + 2), (bx + side * 1.5, cy - r - 4)),
                      fill=(250, 160, 180))
    if "horns" in acc:
        for side in (-1, 1):
            bx = cx + side * r * 0.45
            d.polygon(c.pts((bx - 2.5, cy - r + 2), (bx + 2.5, cy - r + 2), (bx + side * 1.5, cy - r - 8)),
                      fill=(245, 220, 150), outline=c.outline)
    if "ribbon" in acc:
        bx, by = cx + r * 0.6, cy - r * 0.8
        d.polygon(c.pts((bx, by), (bx - 6, by - 4), (bx - 6, by + 4)), fill=(230, 30, 60), outline=c.outline)
        d.polygon(c.pts((bx, by), (bx + 6, by - 4), (bx + 6, by + 4)), fill=(230, 30, 60), outline=c.outline)
        d.ellipse(c.box(bx - 1.5, by - 1.5, bx + 1.5, by + 1.5), fill=(180, 20, 40))
    if "hat" in acc:
        d.ellipse(c.box(cx - r - 5, cy - r + 1, cx + r + 5, cy - r + 8), fill=(225, 195, 110), outline=c.outline,
                  width=c.w(0.5))
        d.rounded_rectangle(c.box(cx - r * 0.65, cy - r - 9, cx + r * 0.65, cy - r + 5), radius=3 * k,
                            fill=(225, 195, 110), outline=c.outline, width=c.w(0.5))
        d.rectangle(c.box(cx - r * 0.65, cy - r, cx + r * 0.65, cy - r + 3), fill=(190, 30, 40))
    if "witch_hat" in acc:
        d.ellipse(c.box(cx - r - 6, cy - r + 1, cx + r + 6, cy - r + 7), fill=(50, 30, 70), outline=c.outline)
        d.polygon(c.pts((cx - r * 0.7, cy - r + 4), (cx + r * 0.7, cy - r + 4), (cx + 6, cy - r - 16)),
                  fill=(50, 30, 70), outline=c.outline)
    if "crown" in acc:
        y0 = cy - r - 1
        d.polygon(c.pts((cx - 9, y0 + 3), (cx + 9, y0 + 3), (cx + 9, y0 - 7), (cx + 4.5, y0 - 2), (cx, y0 - 8),
                        (cx - 4.5, y0 - 2), (cx - 9, y0 - 7)), fill=(245, 200, 30), outline=(150, 100, 10))
        d.ellipse(c.box(cx - 1.5, y0 - 2, cx + 1.5, y0 + 1), fill=(220, 30, 60))
    if "halo" in acc:
        d.ellipse(c.box(cx - 10, cy - r - 11, cx + 10, cy - r - 5), outline=(255, 215, 0), width=c.w(1.6))

    return img.resize((size, size), Image.LANCZOS)


def _draw_swimsuit(c: _Canvas, cx: float, cy: float, skin: tuple[int, int, int],
                   suit: tuple[int, int, int]) -> None:
    """Bare shoulders and a one-piece swimsuit in the outfit colour: straps, a scalloped neckline, a bow."""
    d = c.draw
    d.ellipse(c.box(cx - 18, cy + 17, cx + 18, cy + 48), fill=skin, outline=c.outline, width=c.w(0.6))
    d.chord(c.box(cx - 15, cy + 24, cx + 15, cy + 60), 180, 360, fill=suit, outline=c.outline, width=c.w(0.5))
    d.rectangle(c.box(cx - 15, cy + 41, cx + 15, cy + 48), fill=suit)
    for side in (-1, 1):
        d.line(c.pts((cx + side * 6, cy + 19), (cx + side * 9, cy + 27)), fill=suit, width=c.w(1.6))
        # the neckline dips in the middle: two arcs of skin cut into the top edge
        d.ellipse(c.box(cx + side * 5 - 4, cy + 23, cx + side * 5 + 4, cy + 29), fill=skin)
    bow = _darker(suit, 0.7)
    d.polygon(c.pts((cx, cy + 30), (cx - 3.5, cy + 28), (cx - 3.5, cy + 32)), fill=bow)
    d.polygon(c.pts((cx, cy + 30), (cx + 3.5, cy + 28), (cx + 3.5, cy + 32)), fill=bow)


def _draw_face(c: _Canvas, spread: float, expression: str, cx: float, cy: float, r: float,
               eye: tuple[int, int, int], skin: tuple[int, int, int]) -> None:
    d = c.draw
    ey = cy + 2
    dark = (30, 20, 30)
    for side in (-1, 1):
        ex = cx + side * spread
        if expression == "closed_eyes":
            d.arc(c.box(ex - 3.5, ey - 1, ex + 3.5, ey + 4), 200, 340, fill=dark, width=c.w(1.0))
            continue
        h = 5.5 if expression == "surprised" else 4.5
        w = 3.4 if expression == "surprised" else 3.0
        d.ellipse(c.box(ex - w, ey - h, ex + w, ey + h), fill=(255, 255, 255), outline=dark, width=c.w(0.6))
        d.ellipse(c.box(ex - w + 0.6, ey - h + 1.2, ex + w - 0.6, ey + h - 0.2), fill=eye)
        d.ellipse(c.box(ex - 1.0, ey - 0.5, ex + 1.0, ey + 2.0), fill=_darker(eye, 0.35))
        d.ellipse(c.box(ex - 2.0, ey - h + 1.3, ex - 0.4, ey - h + 2.9), fill=(255, 255, 255))
        if expression == "angry":
            d.line(c.pts((ex - side * 3.5, ey - 7.5), (ex + side * 3.0, ey - 5.0)), fill=dark, width=c.w(1.1))
        elif expression == "sad":
            d.line(c.pts((ex - side * 3.5, ey - 5.0), (ex + side * 3.0, ey - 7.5)), fill=dark, width=c.w(1.1))
    my = cy + 9.5
    if expression in ("smile", "closed_eyes"):
        d.chord(c.box(cx - 3.5, my - 2.5, cx + 3.5, my + 2.5), 0, 180, fill=(200, 60, 70), outline=dark)
    elif expression == "neutral":
        d.line(c.pts((cx - 2.5, my), (cx + 2.5, my)), fill=dark, width=c.w(0.8))
    elif expression in ("angry", "sad"):
        d.arc(c.box(cx - 3.5, my - 0.5, cx + 3.5, my + 4), 200, 340, fill=dark, width=c.w(1.0))
    elif expression == "surprised":
        d.ellipse(c.box(cx - 1.8, my - 2, cx + 1.8, my + 2.5), fill=(120, 30, 40), outline=dark)
    # blush keeps faces readable on dark skin too
    for side in (-1, 1):
        bx = cx + side * (spread + 3)
        d.ellipse(c.box(bx - 2, cy + 6, bx + 2, cy + 7.5), fill=(min(255, skin[0] + 10), max(0, skin[1] - 50),
                                                                  max(0, skin[2] - 40)))
