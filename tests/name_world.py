"""A tiny "shape world" for the name judge's tests: four characters drawn as coloured shapes, named in
English and Spanish, two generic distractor looks, and a tiny `SiglipModel` trained on them for a few
seconds, so its verdicts are known truth. Saved with `save_pretrained` and loaded through the hub's own
loaders. `render_input` has the demo world's hook signature, so a test config can name this module as
its `demo_world` (calibration from renders).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

# id -> (names per language, shape, colour)
CHARACTERS: dict[str, tuple[dict[str, str], str, tuple[int, int, int]]] = {
    "red_ball": ({"en": "Red Ball", "es": "Bola Roja"}, "circle", (220, 30, 30)),
    "blue_box": ({"en": "Blue Box", "es": "Caja Azul"}, "square", (30, 60, 220)),
    "green_tree": ({"en": "Green Tree", "es": "Arbol Verde"}, "triangle", (30, 170, 40)),
    "gold_star": ({"en": "Gold Star", "es": "Estrella Dorada"}, "cross", (230, 180, 20)),
}
# Generic looks that no character has: the judge learns them as distractor texts.
DISTRACTORS: dict[str, tuple[dict[str, str], str, tuple[int, int, int]]] = {
    "blank": ({"en": "a blank page", "es": "una hoja en blanco"}, "none", (0, 0, 0)),
    "cloud": ({"en": "a grey cloud", "es": "una nube gris"}, "blob", (140, 140, 140)),
}
LANGUAGES = ("en", "es")
SIZE = 32

SUITE_YAML = """\
suite: shapes
kind: character_recognition
languages: [en, es]
vocabulary: vocab/v.txt
templates: {en: "a picture of {name}", es: "una imagen de {name}"}
distractors:
  en: ["a blank page", "a grey cloud"]
  es: ["una hoja en blanco", "una nube gris"]
characters:
"""


def suite_yaml(tags: dict[str, str | None] | None = None, name: str = "shapes") -> str:
    """The shape world as a character suite (tag per character: null unless given)."""
    lines = [SUITE_YAML.replace("suite: shapes", f"suite: {name}")]
    for cid, (names, _, _) in CHARACTERS.items():
        tag = (tags or {}).get(cid)
        lines.append(f"  - {{id: {cid}, name: {names['en']}, franchise: Shapes, tier: non_anime, tag: {tag or 'null'}, "
                     f"names: {{en: {names['en']}, es: {names['es']}}}}}\n")
    return "".join(lines)


def write_prompts(folder: Path, tags: dict[str, str | None] | None = None) -> Path:
    (folder / "vocab").mkdir(parents=True, exist_ok=True)
    (folder / "vocab" / "v.txt").write_text("solo\n", encoding="utf-8")
    (folder / "shapes.yaml").write_text(suite_yaml(tags), encoding="utf-8")
    return folder


def draw(shape: str, colour: tuple[int, int, int], seed: int, size: int = SIZE) -> Image.Image:
    """One picture: the shape with jittered place, size and colour on a near-white background."""
    rng = random.Random(seed)
    background = tuple(rng.randint(225, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    cx, cy = size / 2 + rng.uniform(-4, 4), size / 2 + rng.uniform(-4, 4)
    r = size * rng.uniform(0.22, 0.32)
    fill = tuple(int(np.clip(c + rng.randint(-25, 25), 0, 255)) for c in colour)
    if shape == "circle":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        pen.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "triangle":
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif shape == "cross":
        w = r / 2.5
        pen.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fill)
        pen.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fill)
    elif shape == "blob":
        for _ in range(4):
            dx, dy, rr = rng.uniform(-r / 2, r / 2), rng.uniform(-r / 3, r / 3), r * rng.uniform(0.4, 0.7)
            pen.ellipse([cx + dx - rr, cy + dy - rr, cx + dx + rr, cy + dy + rr], fill=fill)
    return image


def render(character: str, seed: int, size: int = SIZE) -> Image.Image:
    _, shape, colour = {**CHARACTERS, **DISTRACTORS}[character]
    return draw(shape, colour, seed, size)


def render_input(spec: dict) -> Image.Image:
    """The demo world's hook signature: {character, seed, size, ...} -> picture."""
    from hub.errors import HubInputError

    if spec["character"] not in CHARACTERS:
        raise HubInputError(f"input.render: unknown demo-world character '{spec['character']}'")
    return render(spec["character"], int(spec["seed"]), int(spec.get("size", SIZE)))


def _tokenizer(extra_words: tuple[str, ...] = ()):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "</s>": 2}
    for names, _, _ in (*CHARACTERS.values(), *DISTRACTORS.values()):
        for text in names.values():
            for word in text.split():
                vocab.setdefault(word, len(vocab))
    for word in extra_words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>"), len(vocab)


def save_tiny_siglip(folder: Path, *, train_steps: int = 0, seed: int = 0, extra_words: tuple[str, ...] = ()) -> Path:
    """A tiny SiglipModel + SiglipProcessor saved to `folder`; with `train_steps`, trained first on the
    shape world (softmax over one language's class texts plus SigLIP's sigmoid loss, so both the ranking
    and the sigmoid probability mean something). `extra_words` join the vocabulary (other suites' names)."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    tokenizer, vocab_size = _tokenizer(extra_words)
    torch.manual_seed(seed)
    config = SiglipConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=64, projection_size=32,
                         pad_token_id=0, bos_token_id=None, eos_token_id=2),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=SIZE, patch_size=8),
    )
    model = SiglipModel(config)
    processor = SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": SIZE, "width": SIZE}), tokenizer=tokenizer)
    if train_steps:
        _train(model, processor, train_steps, seed)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _train(model, processor, steps: int, seed: int) -> None:
    import torch.nn.functional as F

    classes = list(CHARACTERS) + list(DISTRACTORS)
    texts = {lang: [{**CHARACTERS, **DISTRACTORS}[c][0][lang] for c in classes] for lang in LANGUAGES}
    tokens = {lang: processor(text=texts[lang], padding="max_length", max_length=64, return_tensors="pt") for lang in LANGUAGES}
    pool = [(k, render(c, 10_000 + i)) for i in range(48) for k, c in enumerate(classes)]  # pre-rendered
    pixels = processor(images=[im for _, im in pool], return_tensors="pt")["pixel_values"]
    labels = torch.tensor([k for k, _ in pool])
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        lang = LANGUAGES[step % len(LANGUAGES)]
        index = torch.randint(0, len(pool), (48,), generator=generator)
        image = F.normalize(model.get_image_features(pixel_values=pixels[index]).pooler_output, dim=-1)
        text = F.normalize(model.get_text_features(input_ids=tokens[lang]["input_ids"],
                                                   attention_mask=tokens[lang]["attention_mask"]).pooler_output, dim=-1)
        logits = model.logit_scale.exp() * image @ text.T + model.logit_bias
        target = F.one_hot(labels[index], len(classes)).float()
        loss = F.cross_entropy(logits, labels[index]) + F.binary_cross_entropy_with_logits(logits, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
