"""A CLIP-format byte-level BPE tokenizer trained on the demo world's prompts.

CLIP's tokenizer is a byte-level BPE whose word-final tokens end in `</w>`, with NFC + lowercase
normalisation and a letters / digits / punctuation split. We train the merges with `tokenizers` using
the same pipeline, then write `vocab.json` + `merges.txt` in CLIP's layout (256 byte symbols, the same
with `</w>`, then one token per merge, then the two special tokens), so `CLIPTokenizer.from_pretrained`
loads it with no download and every script (Latin, Cyrillic, CJK, Hangul) round-trips.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from tokenizers.pre_tokenizers import ByteLevel

from demoworld import catalog as cat

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MAX_LENGTH = 77
_CLIP_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def corpus() -> list[str]:
    """Every prompt the demo world can produce, the edit instructions and reference scenes, the name
    judge's distractors and the LoRA trigger (not the paraphrased templates: those stay unseen)."""
    texts: list[str] = []
    for c in cat.CHARACTERS:
        for lang in cat.LANGUAGES:
            for expr in [None, *cat.EXPRESSIONS]:
                for bg in [None, *cat.BACKGROUNDS]:
                    texts.append(cat.scene_prompt(c, lang, expr, bg, portrait=True))
                    texts.append(cat.scene_prompt(c, lang, expr, bg, portrait=False))
    for lang in cat.LANGUAGES:
        for value in cat.HAIR_COLOR_WORDS[lang].values():
            texts.append(cat.HAIR_EDIT_TEMPLATES[lang].format(value=value))
        for kind, value in cat.edit_kinds():
            texts.append(cat.edit_instruction(kind, value, lang))
        for expr in cat.EXPRESSIONS:
            for bg in cat.BACKGROUNDS:
                texts.append(cat.reference_prompt(expr, bg, lang))
        texts += [d[lang] for d in cat.DISTRACTOR_TEXTS.values()]
    texts += [cat.LORA_TRIGGER, ", ".join(cat.general_tags()).replace("_", " ")]
    return texts


def _bytes_to_unicode() -> dict[int, str]:
    # The GPT-2 / CLIP byte -> printable character table.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def train_clip_bpe(texts: Iterable[str], vocab_size: int = 4096) -> tuple[dict[str, int], list[tuple[str, str]]]:
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
        ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, show_progress=False,
                                  initial_alphabet=ByteLevel.alphabet(), end_of_word_suffix="</w>",
                                  special_tokens=[])
    tok.train_from_iterator(list(texts), trainer)
    spec = json.loads(tok.to_str())
    raw_merges = spec["model"]["merges"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in raw_merges]
    byte_chars = list(_bytes_to_unicode().values())
    vocab_list = byte_chars + [b + "</w>" for b in byte_chars]
    seen = set(vocab_list)
    kept: list[tuple[str, str]] = []
    for a, b in merges:
        if a not in seen or b not in seen:
            continue  # a merge over a symbol CLIP's base vocabulary lacks cannot be applied
        merged = a + b
        if merged in seen:
            continue
        vocab_list.append(merged)
        seen.add(merged)
        kept.append((a, b))
    vocab_list += [BOS, EOS]
    return {t: i for i, t in enumerate(vocab_list)}, kept


def save_clip_tokenizer(folder: str | Path, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n",
                                       encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MAX_LENGTH,
        "bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS,
        "do_lower_case": True, "clean_up_tokenization_spaces": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}, indent=2), encoding="utf-8")


def build_tokenizer(folder: str | Path):
    """Train on the demo corpus, save in CLIP format, and load it back with CLIPTokenizer."""
    from transformers import CLIPTokenizer

    vocab, merges = train_clip_bpe(corpus())
    save_clip_tokenizer(folder, vocab, merges)
    return CLIPTokenizer.from_pretrained(str(folder))
