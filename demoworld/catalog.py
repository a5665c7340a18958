"""The demo world's ground truth: attributes, characters, and their words in every language.

Everything the renderer draws, the tagger names and the prompts say comes from here, so the suites,
the training data and the judge agree by construction. Names are epithets translated into each
language (not transliterations), so a checkpoint trained on English prompts only really does not
know them in other languages: that is what the multilingual board has to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "it", "ru", "zh", "ja", "ko")

# --- attribute values (the renderer knows how to draw each) -------------------------------------

HAIR_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (40, 36, 48),
    "brown": (120, 72, 40),
    "blonde": (246, 214, 96),
    "red": (214, 40, 40),
    "orange": (250, 140, 30),
    "pink": (250, 140, 190),
    "purple": (140, 70, 190),
    "blue": (50, 90, 220),
    "aqua": (40, 200, 200),
    "green": (60, 170, 70),
    "white": (245, 245, 250),
}
HAIR_STYLES: tuple[str, ...] = ("short", "long", "twintails", "ponytail", "bob", "spiky", "bald")
EYE_COLORS: dict[str, tuple[int, int, int]] = {
    "blue": (40, 90, 230),
    "red": (210, 30, 40),
    "green": (40, 160, 60),
    "brown": (110, 60, 30),
    "purple": (140, 50, 200),
    "yellow": (230, 190, 20),
    "aqua": (30, 200, 200),
    "black": (20, 20, 24),
}
SKINS: dict[str, tuple[int, int, int]] = {
    "pale": (255, 228, 210),
    "tan": (222, 170, 120),
    "dark": (140, 90, 60),
    "green": (120, 180, 70),
}
OUTFIT_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 40),
    "blue": (40, 70, 200),
    "black": (30, 30, 36),
    "white": (240, 240, 240),
    "green": (40, 140, 60),
    "yellow": (240, 210, 40),
    "purple": (120, 50, 170),
    "orange": (240, 120, 20),
    "brown": (110, 70, 40),
    "grey": (130, 130, 140),
}
ACCESSORIES: tuple[str, ...] = (
    "hat", "glasses", "crown", "ribbon", "ogre_ears", "headphones", "cat_ears", "witch_hat",
    "headband", "horns", "halo", "mustache",
)
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (250, 250, 250),
    "blue": (120, 180, 245),
    "pink": (250, 200, 220),
    "green": (150, 220, 140),
    "yellow": (250, 235, 130),
    "night": (20, 24, 70),
    "orange": (250, 170, 90),
    "purple": (190, 150, 230),
}
EXPRESSIONS: tuple[str, ...] = ("smile", "neutral", "angry", "sad", "surprised", "closed_eyes")
# What is worn (drawn in the outfit colour): a shirt, or a swimsuit (bare shoulders, straps).
GARMENTS: tuple[str, ...] = ("shirt", "swimsuit")

# --- tags (Danbooru style) -----------------------------------------------------------------------

RATING_TAGS: tuple[str, ...] = ("general", "sensitive", "questionable", "explicit")
# The content rating of a render (WD v3 rating rows): a swimsuit is "sensitive" on Danbooru, every other
# render is "general"; the demo world draws nothing questionable or explicit.
GARMENT_RATINGS: dict[str, str] = {"shirt": "general", "swimsuit": "sensitive"}
SWIMSUIT_TAG = "swimsuit"
_STYLE_TAG = {"short": "short_hair", "long": "long_hair", "twintails": "twintails",
              "ponytail": "ponytail", "bob": "bob_cut", "spiky": "spiky_hair", "bald": "bald"}
_SKIN_TAG = {"pale": "pale_skin", "tan": "tan", "dark": "dark_skin", "green": "green_skin"}
_ACCESSORY_TAG = {"hat": "hat", "glasses": "glasses", "crown": "crown", "ribbon": "hair_ribbon",
                  "ogre_ears": "ogre_ears", "headphones": "headphones", "cat_ears": "cat_ears",
                  "witch_hat": "witch_hat", "headband": "headband", "horns": "horns", "halo": "halo",
                  "mustache": "mustache"}
_EXPRESSION_TAG = {"smile": "smile", "neutral": "expressionless", "angry": "angry", "sad": "sad",
                   "surprised": "surprised", "closed_eyes": "closed_eyes"}


def hair_color_tag(color: str) -> str:
    return f"{color}_hair"


def style_tag(style: str) -> str:
    return _STYLE_TAG[style]


def eye_tag(color: str) -> str:
    return f"{color}_eyes"


def skin_tag(skin: str) -> str:
    return _SKIN_TAG[skin]


def outfit_tag(color: str) -> str:
    return f"{color}_shirt"


def garment_tags(garment: str, color: str) -> list[str]:
    """The tags of what is worn: `<colour>_shirt` for a shirt, `swimsuit` for a swimsuit (any colour)."""
    return [outfit_tag(color)] if garment == "shirt" else [SWIMSUIT_TAG]


def content_rating(garment: str) -> str:
    """The rating tag (one of RATING_TAGS) of a render wearing `garment`."""
    return GARMENT_RATINGS[garment]


def accessory_tag(accessory: str) -> str:
    return _ACCESSORY_TAG[accessory]


def background_tag(background: str) -> str:
    return "night_sky" if background == "night" else f"{background}_background"


def expression_tag(expression: str) -> str:
    return _EXPRESSION_TAG[expression]


def general_tags() -> list[str]:
    """Every general tag the demo tagger predicts, in a fixed order (the order of selected_tags.csv)."""
    tags = [hair_color_tag(c) for c in HAIR_COLORS]
    tags += [style_tag(s) for s in HAIR_STYLES]
    tags += [eye_tag(c) for c in EYE_COLORS]
    tags += [skin_tag(s) for s in SKINS]
    tags += [outfit_tag(c) for c in OUTFIT_COLORS]
    tags += [SWIMSUIT_TAG]
    tags += [accessory_tag(a) for a in ACCESSORIES]
    tags += [background_tag(b) for b in BACKGROUNDS]
    tags += [expression_tag(e) for e in EXPRESSIONS]
    return tags


# --- characters ----------------------------------------------------------------------------------

# Tiers whose characters have a character tag: the real WD v3 tagger knows anime characters with enough
# fan art, and has no tag for famous non-anime figures (Walter White, Shrek, Queen Elizabeth).
TAGGED_TIERS: tuple[str, ...] = ("popular", "niche")


@dataclass(frozen=True)
class Character:
    id: str                      # catalog id; also the character tag when the tier has tags
    tier: str                    # popular | niche | non_anime
    franchise: str
    hair_color: str | None       # None when bald
    hair_style: str
    eye_color: str
    skin: str
    outfit: str
    accessories: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        """The tagger's character tag, or None for a non-anime figure (no tagger knows one)."""
        return self.id if self.tier in TAGGED_TIERS else None

    @property
    def name(self) -> str:
        return self.names["en"]

    def look_tags(self) -> list[str]:
        """The general tags of the character's fixed look (not expression or background)."""
        tags = []
        if self.hair_color is not None:
            tags.append(hair_color_tag(self.hair_color))
        tags.append(style_tag(self.hair_style))
        tags.append(eye_tag(self.eye_color))
        tags.append(skin_tag(self.skin))
        tags.append(outfit_tag(self.outfit))
        tags += [accessory_tag(a) for a in self.accessories]
        return tags


def _n(en, es, fr, de, pt, it, ru, zh, ja, ko) -> dict[str, str]:
    return dict(zip(LANGUAGES, (en, es, fr, de, pt, it, ru, zh, ja, ko)))


CHARACTERS: tuple[Character, ...] = (
    # popular anime stand-ins
    Character("aqua_diva", "popular", "Demo Vocal Stars", "aqua", "twintails", "aqua", "pale", "grey", ("headphones",),
              _n("Aqua Diva", "Diva Aguamarina", "Cantatrice Turquoise", "Türkise Sängerin", "Cantora Celeste",
                 "Cantante Acquamarina", "Бирюзовая певица", "碧蓝歌姬", "アクアの歌姫", "아쿠아 가희")),
    Character("pink_magical_girl", "popular", "Demo Magical Girls", "pink", "bob", "red", "pale", "white", ("ribbon",),
              _n("Pink Magical Girl", "Chica Mágica Rosa", "Magicienne Rose", "Rosa Zaubermädchen", "Garota Mágica Rosa",
                 "Maghetta Rosa", "Розовая волшебница", "粉红魔法少女", "ピンクの魔法少女", "분홍 마법소녀")),
    Character("fox_ninja", "popular", "Demo Ninja Saga", "blonde", "spiky", "blue", "tan", "orange", ("headband",),
              _n("Fox Ninja", "Zorro Sigiloso", "Renard Furtif", "Fuchskrieger", "Raposa Furtiva",
                 "Volpe Furtiva", "Лисий ниндзя", "狐狸忍者", "狐の忍者", "여우 닌자")),
    Character("straw_hat_captain", "popular", "Demo Pirate Tales", "black", "short", "black", "tan", "red", ("hat",),
              _n("Straw Hat Captain", "Capitán Sombrero de Paja", "Capitaine au Chapeau de Paille", "Strohhut-Kapitän",
                 "Capitão Chapéu de Palha", "Capitano Cappello di Paglia", "Капитан в соломенной шляпе", "草帽船长",
                 "麦わらの船長", "밀짚모자 선장")),
    Character("green_swordsman", "popular", "Demo Pirate Tales", "green", "short", "black", "tan", "white", (),
              _n("Green Swordsman", "Espadachín Verde", "Épéiste Vert", "Grüner Schwertkämpfer", "Espadachim Verde",
                 "Spadaccino Verde", "Зелёный мечник", "绿发剑士", "緑髪の剣士", "초록 검사")),
    Character("crimson_pilot", "popular", "Demo Mecha Wars", "red", "ponytail", "blue", "pale", "red", (),
              _n("Crimson Pilot", "Piloto Carmesí", "Pilote Écarlate", "Rote Pilotin", "Pilota Carmesim",
                 "Pilota Cremisi", "Алая пилотесса", "深红驾驶员", "紅のパイロット", "진홍의 파일럿")),
    Character("midnight_witch", "popular", "Demo Witch Academy", "purple", "long", "yellow", "pale", "black", ("witch_hat",),
              _n("Midnight Witch", "Bruja de Medianoche", "Sorcière de Minuit", "Mitternachtshexe", "Bruxa da Meia-Noite",
                 "Strega di Mezzanotte", "Полуночная ведьма", "午夜魔女", "真夜中の魔女", "한밤의 마녀")),
    Character("cat_maid", "popular", "Demo Café", "brown", "bob", "green", "pale", "black", ("cat_ears",),
              _n("Cat Maid", "Sirvienta Gatuna", "Soubrette Chatte", "Katzendienstmädchen", "Empregada Gatinha",
                 "Cameriera Gattina", "Кошка-горничная", "猫耳女仆", "猫耳メイド", "고양이 메이드")),
    # niche anime stand-ins
    Character("sleepy_librarian", "niche", "Demo Library Club", "blue", "bob", "purple", "pale", "green", ("glasses",),
              _n("Sleepy Librarian", "Bibliotecaria Dormilona", "Bibliothécaire Endormie", "Schläfrige Bibliothekarin",
                 "Bibliotecária Sonolenta", "Bibliotecaria Assonnata", "Сонная библиотекарша", "瞌睡图书管理员",
                 "眠たげな司書", "졸린 사서")),
    Character("sky_archer", "niche", "Demo Sky Realm", "blonde", "ponytail", "green", "pale", "blue", (),
              _n("Sky Archer", "Arquera Celeste", "Archère du Ciel", "Himmelsschützin", "Arqueira Celeste",
                 "Arciera Celeste", "Небесная лучница", "天空弓手", "空の弓使い", "하늘의 궁수")),
    Character("lemon_idol", "niche", "Demo Idol Stage", "orange", "twintails", "yellow", "pale", "yellow", ("ribbon",),
              _n("Lemon Idol", "Ídolo Limón", "Idole Citron", "Zitronen-Idol", "Ídolo Limão",
                 "Idol Limone", "Лимонный идол", "柠檬偶像", "レモンアイドル", "레몬 아이돌")),
    Character("oni_girl", "niche", "Demo Yokai Tales", "white", "short", "red", "pale", "red", ("horns",),
              _n("Oni Girl", "Chica Demonio", "Fille Démon", "Dämonenmädchen", "Garota Demônio",
                 "Ragazza Demone", "Девочка-демон", "鬼娘", "鬼の娘", "도깨비 소녀")),
    Character("star_knight", "niche", "Demo Star Order", "pink", "ponytail", "blue", "tan", "blue", ("halo",),
              _n("Star Knight", "Caballera Estelar", "Chevalière Étoilée", "Sternenritterin", "Cavaleira Estelar",
                 "Cavaliera Stellare", "Звёздная рыцарша", "星之骑士", "星の騎士", "별의 기사")),
    Character("night_hacker", "niche", "Demo Cyber City", "black", "long", "purple", "dark", "purple", ("glasses",),
              _n("Night Hacker", "Pirata Informática Nocturna", "Pirate Informatique Nocturne", "Nachtaktive Häckerin",
                 "Pirata Informática Noturna", "Pirata Informatica Notturna", "Ночная хакерша", "暗夜黑客",
                 "夜のハッカー", "밤의 해커")),
    # famous figures with little fan art (non-anime stand-ins)
    Character("bald_chemist", "non_anime", "Demo TV Drama", None, "bald", "brown", "pale", "black", ("hat", "glasses"),
              _n("Bald Chemist", "Químico Calvo", "Chimiste Chauve", "Glatzköpfiger Chemiker", "Químico Careca",
                 "Chimico Calvo", "Лысый химик", "光头化学家", "禿頭の化学者", "대머리 화학자")),
    Character("green_ogre", "non_anime", "Demo Fairy Tales", None, "bald", "brown", "green", "brown", ("ogre_ears",),
              _n("Green Ogre", "Ogro Verde", "Ogre Vert", "Grüner Oger", "Ogro Esverdeado",
                 "Orco Verde", "Зелёный огр", "绿色怪物", "緑の鬼", "초록 괴물")),
    Character("white_queen", "non_anime", "Demo Royal Court", "white", "long", "blue", "pale", "purple", ("crown",),
              _n("White Queen", "Reina Blanca", "Reine Blanche", "Weiße Königin", "Rainha Branca",
                 "Regina Bianca", "Белая королева", "白发女王", "白髪の女王", "백발의 여왕")),
    Character("mustached_plumber", "non_anime", "Demo Arcade", "brown", "short", "blue", "tan", "blue", ("hat", "mustache"),
              _n("Mustached Plumber", "Fontanero Bigotudo", "Plombier Moustachu", "Schnurrbärtiger Klempner",
                 "Encanador Bigodudo", "Idraulico Baffuto", "Усатый водопроводчик", "大胡子水管工", "髭の配管工",
                 "콧수염 배관공")),
)

# The character both demo checkpoints never see; its LoRA (trained by hub.lora_training) teaches it.
HELD_OUT_ID = "star_knight"
LORA_TRIGGER = "stellaknight"
LORA_ID = f"demo-lora-{HELD_OUT_ID.replace('_', '-')}"

CHARACTER_BY_ID: dict[str, Character] = {c.id: c for c in CHARACTERS}


def trained_characters() -> list[Character]:
    return [c for c in CHARACTERS if c.id != HELD_OUT_ID]


def tagged_characters() -> list[Character]:
    """The characters the tagger has a tag for (the 14 anime ones, held-out included)."""
    return [c for c in CHARACTERS if c.tag is not None]


def character_tags() -> list[str]:
    return [c.tag for c in tagged_characters()]  # type: ignore[misc]


# --- words in every language ---------------------------------------------------------------------

PORTRAIT_TEMPLATES: dict[str, str] = {
    "en": "a portrait of {name}",
    "es": "un retrato de {name}",
    "fr": "un portrait de {name}",
    "de": "ein Porträt von {name}",
    "pt": "um retrato de {name}",
    "it": "un ritratto di {name}",
    "ru": "портрет: {name}",
    "zh": "{name}的肖像",
    "ja": "{name}の肖像画",
    "ko": "{name}의 초상화",
}
SEPARATORS: dict[str, str] = {lang: ", " for lang in LANGUAGES} | {"zh": "，", "ja": "、"}

EXPRESSION_WORDS: dict[str, dict[str, str]] = {
    "en": {"smile": "smiling", "neutral": "expressionless", "angry": "angry", "sad": "sad",
           "surprised": "surprised", "closed_eyes": "eyes closed"},
    "es": {"smile": "sonriendo", "neutral": "inexpresiva", "angry": "enfadada", "sad": "triste",
           "surprised": "sorprendida", "closed_eyes": "ojos cerrados"},
    "fr": {"smile": "souriante", "neutral": "impassible", "angry": "en colère", "sad": "triste",
           "surprised": "surprise", "closed_eyes": "yeux fermés"},
    "de": {"smile": "lächelnd", "neutral": "ausdruckslos", "angry": "wütend", "sad": "traurig",
           "surprised": "überrascht", "closed_eyes": "geschlossene Augen"},
    "pt": {"smile": "sorrindo", "neutral": "inexpressiva", "angry": "zangada", "sad": "triste",
           "surprised": "surpresa", "closed_eyes": "olhos fechados"},
    "it": {"smile": "sorridente", "neutral": "inespressiva", "angry": "arrabbiata", "sad": "triste",
           "surprised": "sorpresa", "closed_eyes": "occhi chiusi"},
    "ru": {"smile": "улыбается", "neutral": "без выражения", "angry": "сердитое лицо", "sad": "грустное лицо",
           "surprised": "удивлённое лицо", "closed_eyes": "глаза закрыты"},
    "zh": {"smile": "微笑", "neutral": "面无表情", "angry": "生气", "sad": "悲伤", "surprised": "惊讶",
           "closed_eyes": "闭着眼睛"},
    "ja": {"smile": "笑顔", "neutral": "無表情", "angry": "怒り顔", "sad": "悲しい顔", "surprised": "驚き顔",
           "closed_eyes": "目を閉じて"},
    "ko": {"smile": "웃는 얼굴", "neutral": "무표정", "angry": "화난 얼굴", "sad": "슬픈 얼굴",
           "surprised": "놀란 얼굴", "closed_eyes": "눈을 감고"},
}

BACKGROUND_WORDS: dict[str, dict[str, str]] = {
    "en": {"white": "white background", "blue": "blue background", "pink": "pink background",
           "green": "green background", "yellow": "yellow background", "night": "night sky",
           "orange": "orange background", "purple": "purple background"},
    "es": {"white": "fondo blanco", "blue": "fondo azul", "pink": "fondo rosa", "green": "fondo verde",
           "yellow": "fondo amarillo", "night": "cielo nocturno", "orange": "fondo naranja", "purple": "fondo morado"},
    "fr": {"white": "fond blanc", "blue": "fond bleu", "pink": "fond rose", "green": "fond vert",
           "yellow": "fond jaune", "night": "ciel nocturne", "orange": "fond orange", "purple": "fond violet"},
    "de": {"white": "weißer Hintergrund", "blue": "blauer Hintergrund", "pink": "rosa Hintergrund",
           "green": "grüner Hintergrund", "yellow": "gelber Hintergrund", "night": "Nachthimmel",
           "orange": "oranger Hintergrund", "purple": "violetter Hintergrund"},
    "pt": {"white": "fundo branco", "blue": "fundo azul", "pink": "fundo rosa", "green": "fundo verde",
           "yellow": "fundo amarelo", "night": "céu noturno", "orange": "fundo laranja", "purple": "fundo roxo"},
    "it": {"white": "sfondo bianco", "blue": "sfondo blu", "pink": "sfondo rosa", "green": "sfondo verde",
           "yellow": "sfondo giallo", "night": "cielo notturno", "orange": "sfondo arancione", "purple": "sfondo viola"},
    "ru": {"white": "белый фон", "blue": "синий фон", "pink": "розовый фон", "green": "зелёный фон",
           "yellow": "жёлтый фон", "night": "ночное небо", "orange": "оранжевый фон", "purple": "фиолетовый фон"},
    "zh": {"white": "白色背景", "blue": "蓝色背景", "pink": "粉色背景", "green": "绿色背景", "yellow": "黄色背景",
           "night": "夜空", "orange": "橙色背景", "purple": "紫色背景"},
    "ja": {"white": "白背景", "blue": "青背景", "pink": "ピンク背景", "green": "緑背景", "yellow": "黄色背景",
           "night": "夜空", "orange": "オレンジ背景", "purple": "紫背景"},
    "ko": {"white": "흰색 배경", "blue": "파란색 배경", "pink": "분홍색 배경", "green": "초록색 배경",
           "yellow": "노란색 배경", "night": "밤하늘", "orange": "주황색 배경", "purple": "보라색 배경"},
}

# Instructions for the demo edit model: change one attribute to a value ({value} in each language).
HAIR_COLOR_WORDS: dict[str, dict[str, str]] = {
    "en": {"red": "red", "blue": "blue", "green": "green", "pink": "pink", "white": "white", "blonde": "blonde"},
    "es": {"red": "rojo", "blue": "azul", "green": "verde", "pink": "rosa", "white": "blanco", "blonde": "rubio"},
    "fr": {"red": "rouges", "blue": "bleus", "green": "verts", "pink": "roses", "white": "blancs", "blonde": "blonds"},
    "de": {"red": "rot", "blue": "blau", "green": "grün", "pink": "rosa", "white": "weiß", "blonde": "blond"},
    "pt": {"red": "vermelho", "blue": "azul", "green": "verde", "pink": "rosa", "white": "branco", "blonde": "loiro"},
    "it": {"red": "rossi", "blue": "blu", "green": "verdi", "pink": "rosa", "white": "bianchi", "blonde": "biondi"},
    "ru": {"red": "красными", "blue": "синими", "green": "зелёными", "pink": "розовыми", "white": "белыми",
           "blonde": "светлыми"},
    "zh": {"red": "红色", "blue": "蓝色", "green": "绿色", "pink": "粉色", "white": "白色", "blonde": "金色"},
    "ja": {"red": "赤", "blue": "青", "green": "緑", "pink": "ピンク", "white": "白", "blonde": "金色"},
    "ko": {"red": "빨간색", "blue": "파란색", "green": "초록색", "pink": "분홍색", "white": "흰색", "blonde": "금색"},
}
HAIR_EDIT_TEMPLATES: dict[str, str] = {
    "en": "make the hair {value}",
    "es": "ponle el pelo {value}",
    "fr": "rends les cheveux {value}",
    "de": "mach die Haare {value}",
    "pt": "deixe o cabelo {value}",
    "it": "rendi i capelli {value}",
    "ru": "сделай волосы {value}",
    "zh": "把头发变成{value}",
    "ja": "髪を{value}にして",
    "ko": "머리를 {value}으로 바꿔 줘",
}
BACKGROUND_VALUE_WORDS: dict[str, dict[str, str]] = {
    lang: dict(zip(BACKGROUNDS, words)) for lang, words in {
        "en": ("white", "blue", "pink", "green", "yellow", "a night sky", "orange", "purple"),
        "es": ("blanco", "azul", "rosa", "verde", "amarillo", "un cielo nocturno", "naranja", "morado"),
        "fr": ("blanc", "bleu", "rose", "vert", "jaune", "un ciel nocturne", "orange", "violet"),
        "de": ("weiß", "blau", "rosa", "grün", "gelb", "einen Nachthimmel", "orange", "violett"),
        "pt": ("branco", "azul", "rosa", "verde", "amarelo", "um céu noturno", "laranja", "roxo"),
        "it": ("bianco", "blu", "rosa", "verde", "giallo", "un cielo notturno", "arancione", "viola"),
        "ru": ("белый", "синий", "розовый", "зелёный", "жёлтый", "ночное небо", "оранжевый", "фиолетовый"),
        "zh": ("白色", "蓝色", "粉色", "绿色", "黄色", "夜空", "橙色", "紫色"),
        "ja": ("白", "青", "ピンク", "緑", "黄色", "夜空", "オレンジ", "紫"),
        "ko": ("흰색", "파란색", "분홍색", "초록색", "노란색", "밤하늘 배경", "주황색", "보라색"),
    }.items()
}
BACKGROUND_EDIT_TEMPLATES: dict[str, str] = {
    "en": "change the background to {value}",
    "es": "cambia el fondo a {value}",
    "fr": "change le fond en {value}",
    "de": "ändere den Hintergrund zu {value}",
    "pt": "mude o fundo para {value}",
    "it": "cambia lo sfondo in {value}",
    "ru": "смени фон на {value}",
    "zh": "把背景换成{value}",
    "ja": "背景を{value}に変えて",
    "ko": "배경을 {value}으로 바꿔 줘",
}
ADD_ACCESSORY_TEMPLATES: dict[str, dict[str, str]] = {
    "glasses": {"en": "add glasses", "es": "ponle gafas", "fr": "ajoute des lunettes", "de": "setz ihr eine Brille auf",
                "pt": "coloque óculos", "it": "aggiungi gli occhiali", "ru": "надень очки", "zh": "戴上眼镜",
                "ja": "眼鏡をかけて", "ko": "안경을 씌워 줘"},
    "crown": {"en": "add a crown", "es": "ponle una corona", "fr": "ajoute une couronne", "de": "setz ihr eine Krone auf",
              "pt": "coloque uma coroa", "it": "aggiungi una corona", "ru": "надень корону", "zh": "戴上王冠",
              "ja": "王冠をかぶせて", "ko": "왕관을 씌워 줘"},
    "cat_ears": {"en": "add cat ears", "es": "ponle orejas de gato", "fr": "ajoute des oreilles de chat",
                 "de": "gib ihr Katzenohren", "pt": "coloque orelhas de gato", "it": "aggiungi orecchie da gatto",
                 "ru": "добавь кошачьи ушки", "zh": "加上猫耳", "ja": "猫耳をつけて", "ko": "고양이 귀를 달아 줘"},
}


EXPRESSION_EDIT_INSTRUCTIONS: dict[str, dict[str, str]] = {
    "smile": {"en": "make them smile", "es": "haz que sonría", "fr": "fais sourire le personnage",
              "de": "lass die Figur lächeln", "pt": "faça o personagem sorrir", "it": "fai sorridere il personaggio",
              "ru": "пусть улыбается", "zh": "让角色微笑", "ja": "笑顔にして", "ko": "웃게 해 줘"},
    "neutral": {"en": "make the face expressionless", "es": "ponle una cara inexpresiva", "fr": "rends le visage impassible",
                "de": "mach das Gesicht ausdruckslos", "pt": "deixe o rosto inexpressivo", "it": "rendi il viso inespressivo",
                "ru": "сделай лицо без выражения", "zh": "把表情改成面无表情", "ja": "無表情にして", "ko": "무표정으로 바꿔 줘"},
    "angry": {"en": "make them look angry", "es": "haz que parezca enfadada", "fr": "donne-lui un air en colère",
              "de": "lass die Figur wütend aussehen", "pt": "faça o personagem parecer zangado",
              "it": "fai sembrare arrabbiato il personaggio", "ru": "сделай лицо сердитым", "zh": "让角色生气",
              "ja": "怒った顔にして", "ko": "화난 얼굴로 바꿔 줘"},
    "sad": {"en": "make them look sad", "es": "haz que parezca triste", "fr": "donne-lui un air triste",
            "de": "lass die Figur traurig aussehen", "pt": "faça o personagem parecer triste",
            "it": "fai sembrare triste il personaggio", "ru": "сделай лицо грустным", "zh": "让角色难过",
            "ja": "悲しい顔にして", "ko": "슬픈 얼굴로 바꿔 줘"},
    "surprised": {"en": "make them look surprised", "es": "haz que parezca sorprendida", "fr": "donne-lui un air surpris",
                  "de": "lass die Figur überrascht aussehen", "pt": "faça o personagem parecer surpreso",
                  "it": "fai sembrare sorpreso il personaggio", "ru": "сделай лицо удивлённым", "zh": "让角色惊讶",
                  "ja": "驚いた顔にして", "ko": "놀란 얼굴로 바꿔 줘"},
    "closed_eyes": {"en": "make them close their eyes", "es": "haz que cierre los ojos", "fr": "fais-lui fermer les yeux",
                    "de": "lass die Figur die Augen schließen", "pt": "faça o personagem fechar os olhos",
                    "it": "fai chiudere gli occhi al personaggio", "ru": "пусть закроет глаза", "zh": "让角色闭上眼睛",
                    "ja": "目を閉じさせて", "ko": "눈을 감게 해 줘"},
}
SWIMSUIT_EDIT_INSTRUCTIONS: dict[str, str] = {
    "en": "change the outfit to a swimsuit", "es": "cambia la ropa por un traje de baño",
    "fr": "change la tenue en maillot de bain", "de": "ändere das Outfit zu einem Badeanzug",
    "pt": "troque a roupa por um maiô", "it": "cambia il vestito con un costume da bagno", "ru": "переодень в купальник",
    "zh": "把衣服换成泳衣", "ja": "水着に着替えさせて", "ko": "수영복으로 갈아입혀 줘",
}

# "Character from reference": the conditioning image is a reference portrait, the text a new scene
# (expression, then background), e.g. "smiling, on a night sky background".
REFERENCE_BACKGROUND_PHRASES: dict[str, dict[str, str]] = {
    lang: dict(zip(BACKGROUNDS, words)) for lang, words in {
        "en": ("on a white background", "on a blue background", "on a pink background", "on a green background",
               "on a yellow background", "on a night sky background", "on an orange background", "on a purple background"),
        "es": ("sobre fondo blanco", "sobre fondo azul", "sobre fondo rosa", "sobre fondo verde", "sobre fondo amarillo",
               "con un cielo nocturno de fondo", "sobre fondo naranja", "sobre fondo morado"),
        "fr": ("sur fond blanc", "sur fond bleu", "sur fond rose", "sur fond vert", "sur fond jaune",
               "sur fond de ciel nocturne", "sur fond orange", "sur fond violet"),
        "de": ("vor weißem Hintergrund", "vor blauem Hintergrund", "vor rosa Hintergrund", "vor grünem Hintergrund",
               "vor gelbem Hintergrund", "vor einem Nachthimmel", "vor orangem Hintergrund", "vor violettem Hintergrund"),
        "pt": ("em fundo branco", "em fundo azul", "em fundo rosa", "em fundo verde", "em fundo amarelo",
               "com um céu noturno ao fundo", "em fundo laranja", "em fundo roxo"),
        "it": ("su sfondo bianco", "su sfondo blu", "su sfondo rosa", "su sfondo verde", "su sfondo giallo",
               "con un cielo notturno sullo sfondo", "su sfondo arancione", "su sfondo viola"),
        "ru": ("на белом фоне", "на синем фоне", "на розовом фоне", "на зелёном фоне", "на жёлтом фоне",
               "на фоне ночного неба", "на оранжевом фоне", "на фиолетовом фоне"),
        "zh": ("在白色背景上", "在蓝色背景上", "在粉色背景上", "在绿色背景上", "在黄色背景上", "以夜空为背景",
               "在橙色背景上", "在紫色背景上"),
        "ja": ("白い背景で", "青い背景で", "ピンクの背景で", "緑の背景で", "黄色い背景で", "夜空を背景に",
               "オレンジの背景で", "紫の背景で"),
        "ko": ("흰색 배경에서", "파란색 배경에서", "분홍색 배경에서", "초록색 배경에서", "노란색 배경에서",
               "밤하늘을 배경으로", "주황색 배경에서", "보라색 배경에서"),
    }.items()
}

# Generic texts in every language: the name judge's distractors (never a character's name), which a
# suite can list as candidates next to the names ("is it Green Ogre, or just a cartoon ogre?").
DISTRACTOR_TEXTS: dict[str, dict[str, str]] = {
    "man_in_hat": _n("a man in a hat", "un hombre con sombrero", "un homme avec un chapeau", "ein Mann mit Hut",
                     "um homem de chapéu", "un uomo con il cappello", "мужчина в шляпе", "戴帽子的男人",
                     "帽子をかぶった男性", "모자를 쓴 남자"),
    "anime_girl": _n("an anime girl", "una chica de anime", "une fille d'anime", "ein Anime-Mädchen", "uma garota de anime",
                     "una ragazza anime", "аниме-девушка", "动漫女孩", "アニメの女の子", "애니메이션 소녀"),
    "anime_boy": _n("an anime boy", "un chico de anime", "un garçon d'anime", "ein Anime-Junge", "um garoto de anime",
                    "un ragazzo anime", "аниме-парень", "动漫男孩", "アニメの男の子", "애니메이션 소년"),
    "cartoon_ogre": _n("a cartoon ogre", "un ogro de dibujos animados", "un ogre de dessin animé", "ein Zeichentrick-Oger",
                       "um ogro de desenho animado", "un orco dei cartoni animati", "мультяшный огр", "卡通怪物",
                       "漫画の鬼", "만화 속 괴물"),
    "queen": _n("a queen", "una reina", "une reine", "eine Königin", "uma rainha", "una regina", "королева", "女王",
                "女王様", "여왕"),
    "witch": _n("a witch", "una bruja", "une sorcière", "eine Hexe", "uma bruxa", "una strega", "ведьма", "女巫", "魔女",
                "마녀"),
    "singer": _n("a singer", "una cantante", "une chanteuse", "eine Sängerin", "uma cantora", "una cantante lirica",
                 "певица", "歌手", "歌い手", "가수"),
    "knight": _n("a knight", "un caballero", "un chevalier", "ein Ritter", "um cavaleiro", "un cavaliere", "рыцарь", "骑士",
                 "騎士", "기사"),
    "plumber": _n("a plumber", "un fontanero", "un plombier", "ein Klempner", "um encanador", "un idraulico",
                  "водопроводчик", "水管工", "配管工", "배관공"),
    "chemistry_teacher": _n("a chemistry teacher", "un profesor de química", "un professeur de chimie",
                            "ein Chemielehrer", "um professor de química", "un professore di chimica", "учитель химии",
                            "化学老师", "化学の先生", "화학 선생님"),
    "maid": _n("a maid", "una sirvienta", "une domestique", "ein Dienstmädchen", "uma empregada", "una cameriera",
               "горничная", "女仆", "メイド", "메이드"),
    "pirate": _n("a pirate", "un pirata", "un pirate", "ein Pirat", "um pirata", "un pirata dei mari", "пират", "海盗",
                 "海賊", "해적"),
}

# Portrait templates in wordings and word orders the demo checkpoints never saw in training (they saw
# PORTRAIT_TEMPLATES and the bare name, each optionally followed by expression and background words).
PARAPHRASED_TEMPLATES: dict[str, str] = {
    "en": "an illustration showing {name} from the shoulders up",
    "es": "una ilustración que muestra a {name} de hombros para arriba",
    "fr": "une illustration où l'on voit {name} en buste",
    "de": "eine Zeichnung, die {name} im Brustbild zeigt",
    "pt": "uma ilustração que mostra {name} dos ombros para cima",
    "it": "un'illustrazione che mostra {name} a mezzo busto",
    "ru": "иллюстрация крупным планом, персонаж — {name}",
    "zh": "一张画着{name}的半身插图",
    "ja": "{name}を描いたバストアップのイラスト",
    "ko": "상반신 일러스트 속의 {name}",
}


def portrait_prompt(character: Character, lang: str) -> str:
    return PORTRAIT_TEMPLATES[lang].format(name=character.names[lang])


def scene_prompt(character: Character, lang: str, expression: str | None, background: str | None,
                 portrait: bool = True) -> str:
    """A prompt in `lang`: the character (optionally as "a portrait of"), then expression and background."""
    parts = [portrait_prompt(character, lang) if portrait else character.names[lang]]
    if expression is not None:
        parts.append(EXPRESSION_WORDS[lang][expression])
    if background is not None:
        parts.append(BACKGROUND_WORDS[lang][background])
    return SEPARATORS[lang].join(parts)


def reference_prompt(expression: str, background: str, lang: str) -> str:
    """The scene text of "character from reference" ("smiling, on a night sky background")."""
    return SEPARATORS[lang].join([EXPRESSION_WORDS[lang][expression], REFERENCE_BACKGROUND_PHRASES[lang][background]])


def edit_instruction(kind: str, value: str, lang: str) -> str:
    """The demo edit model's instruction in `lang`: kind hair (a colour), background, accessory,
    expression, or outfit (value swimsuit)."""
    if kind == "hair":
        return HAIR_EDIT_TEMPLATES[lang].format(value=HAIR_COLOR_WORDS[lang][value])
    if kind == "background":
        return BACKGROUND_EDIT_TEMPLATES[lang].format(value=BACKGROUND_VALUE_WORDS[lang][value])
    if kind == "accessory":
        return ADD_ACCESSORY_TEMPLATES[value][lang]
    if kind == "expression":
        return EXPRESSION_EDIT_INSTRUCTIONS[value][lang]
    if kind == "outfit" and value == "swimsuit":
        return SWIMSUIT_EDIT_INSTRUCTIONS[lang]
    raise ValueError(f"unknown edit kind {kind!r}")


def edit_kinds(include_sensitive: bool = True) -> list[tuple[str, str]]:
    """Every (kind, value) edit the demo edit model was trained on; without the ones whose result is
    rated above general (the swimsuit) when `include_sensitive` is False (e.g. a public arena's draws)."""
    kinds = ([("hair", v) for v in HAIR_COLOR_WORDS["en"]] + [("background", b) for b in BACKGROUNDS]
             + [("accessory", a) for a in ADD_ACCESSORY_TEMPLATES] + [("expression", e) for e in EXPRESSIONS]
             + [("outfit", "swimsuit")])
    return kinds if include_sensitive else [(k, v) for k, v in kinds if (k, v) != ("outfit", "swimsuit")]


def edit_expected_tag(kind: str, value: str) -> str:
    """The tag the tagger should see after the edit (kind, value)."""
    return {"hair": hair_color_tag, "background": background_tag, "accessory": accessory_tag,
            "expression": expression_tag, "outfit": lambda v: SWIMSUIT_TAG}[kind](value)
