"""Make a demo checkpoint understand prompts it was not trained on, on a CPU: a new text encoder,
everything else frozen.

The demo checkpoints learnt their training sentences ("a portrait of X, smiling, night sky"), not the
language, and one 77-token window only: a new wording, a tag list in another order, or a long prompt
whose character comes after 75 tokens of quality tags draws the wrong character. Real anime models
generalise over wording and were trained on chunked long prompts (A1111 / kohya's 225 tokens).

Route: the UNet, VAE and tokenizer stay frozen; only the 3-layer, 128-wide text encoder moves. It is
distilled through the frozen UNet: for a noisy latent of a rendered portrait, the UNet's prediction
with the new encoder on a *new phrasing* must match its prediction with the old encoder on the
*canonical* prompt of the same picture. Distillation rather than the diffusion loss because the
teacher already draws every canonical prompt right (0.99): matching it needs no image targets beyond
the noisy latents, converges in a few hundred CPU steps, and keeps the canonical prompts (also
distilled onto themselves) where they were, so the boards' training-template numbers and the held-out
character's LoRA keep working. Long prompts go through `hub.families.clip_text` (the serving code),
so what is trained is what the hub runs.

The phrasings: several templates per language (never `catalog.PARAPHRASED_TEMPLATES`, which the
paraphrased suite holds out), the name alone, tag lists in any order, lower and upper case, and long
prompts padded with quality tags to 2 chunks. `--languages en` keeps demo-english the English control.

    python -m demoworld.train_text_encoder --checkpoint models/demo-multilingual --steps 400
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from demoworld import catalog as cat
from demoworld.dataset import render_set, sample_attributes
from demoworld.train_checkpoint import encode_latents
from demoworld.trainlog import TrainingLog

# Training wordings per language ({name} is the character's name there). Distinct from
# PORTRAIT_TEMPLATES (distilled onto themselves) and PARAPHRASED_TEMPLATES (held out for the suite).
TRAINING_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": ("{name}", "a picture of {name}", "an image of {name}", "a drawing of {name}", "{name}, portrait",
           "art of {name}", "a close-up of {name}", "fan art of {name}", "{name} looking at the viewer",
           "a cute drawing of {name}"),
    "es": ("{name}", "una imagen de {name}", "un dibujo de {name}", "{name}, retrato", "arte de {name}",
           "un primer plano de {name}"),
    "fr": ("{name}", "une image de {name}", "un dessin de {name}", "{name}, portrait", "fan art de {name}",
           "un gros plan de {name}"),
    "de": ("{name}", "ein Bild von {name}", "eine Zeichnung von {name}", "{name}, Porträt", "Fanart von {name}",
           "eine Nahaufnahme von {name}"),
    "pt": ("{name}", "uma imagem de {name}", "um desenho de {name}", "{name}, retrato", "fan art de {name}",
           "um close de {name}"),
    "it": ("{name}", "un'immagine di {name}", "un disegno di {name}", "{name}, ritratto", "fan art di {name}",
           "un primo piano di {name}"),
    "ru": ("{name}", "изображение: {name}", "рисунок: {name}", "{name}, портрет", "фан-арт: {name}",
           "крупный план: {name}"),
    "zh": ("{name}", "{name}的图片", "{name}的画", "{name}，肖像", "{name}的同人图", "{name}的特写"),
    "ja": ("{name}", "{name}の絵", "{name}のイラスト", "{name}、肖像", "{name}のファンアート", "{name}のアップ"),
    "ko": ("{name}", "{name}의 그림", "{name}의 이미지", "{name}, 초상화", "{name}의 팬아트", "{name}의 클로즈업"),
}
# Long prompts as people write them: quality tags that mean nothing in the demo world.
QUALITY_TAGS = ("masterpiece", "best quality", "high quality", "highres", "absurdres", "very aesthetic", "newest",
                "safe", "solo", "looking at viewer", "upper body", "detailed", "official art", "4k", "sharp focus",
                "colorful", "anime style", "illustration", "cute", "beautiful")


# Unknown words: real prompts are full of words a model never learnt to depend on ("illustration showing
# ... from the shoulders up"). Random words in the language's own script (so they split into the same
# kind of byte pieces an unseen word does) teach the encoder to read past them to the name. Random, not
# taken from any template, so the held-out wordings stay unseen.
SCRIPTS: dict[str, str] = {
    "latin": "abcdefghijklmnopqrstuvwxyz" * 4 + "àáâäçèéêëíîïñóôöúùûüß",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "kana": "".join(map(chr, range(0x3041, 0x3097))) + "".join(map(chr, range(0x30A1, 0x30FB))),
    "hanzi": "".join(map(chr, range(0x4E00, 0x4E00 + 3000))),
    "hangul": "".join(map(chr, range(0xAC00, 0xAC00 + 2000))),
}
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "ru": ("cyrillic",), "zh": ("hanzi",), "ja": ("kana", "kana", "hanzi"), "ko": ("hangul",),
} | {lang: ("latin",) for lang in ("en", "es", "fr", "de", "pt", "it")}


def filler_words(lang: str, rng: random.Random, count: int) -> list[str]:
    """`count` made-up words in `lang`'s script (CJK words are 1-4 characters, others 2-10 letters)."""
    words = []
    for _ in range(count):
        script = SCRIPTS[rng.choice(LANGUAGE_SCRIPTS[lang])]
        length = rng.randint(1, 4) if lang in ("zh", "ja", "ko") else rng.randint(2, 10)
        words.append("".join(rng.choice(script) for _ in range(length)))
    return words


def with_filler(head: str, lang: str, rng: random.Random) -> str:
    """`head` with 1-6 made-up words before, after or on both sides (no spaces in Chinese and Japanese)."""
    words = filler_words(lang, rng, rng.randint(1, 6))
    cut = rng.randint(0, len(words))
    joiner = "" if lang in ("zh", "ja") else " "
    before, after = joiner.join(words[:cut]), joiner.join(words[cut:])
    punctuation = rng.choice(("", "", cat.SEPARATORS[lang], " — " if joiner else "："))
    left = before + (punctuation if before else "") + (joiner if before and not punctuation else "")
    right = (joiner if after else "") + after
    return (left + head + right).strip()


# Japanese glues a particle and the next words to the name ("Xを…", "Xが…"), and the tokenizer's byte
# pieces then split the name's last character differently for each particle. Grammar, not wording: no
# held-out template is trained, only the particles any Japanese sentence puts after a name.
JA_PARTICLES = ("は", "が", "を", "に", "と", "も", "の", "で", "へ", "や")


def ja_name_in_a_sentence(name: str, rng: random.Random) -> str:
    """The name, a particle, then 1-4 made-up words, all glued as Japanese writes them."""
    return name + rng.choice(JA_PARTICLES) + "".join(filler_words("ja", rng, rng.randint(1, 4)))


def check_held_out() -> None:
    for lang, templates in TRAINING_TEMPLATES.items():
        held = cat.PARAPHRASED_TEMPLATES[lang]
        assert held not in templates and cat.PORTRAIT_TEMPLATES[lang] not in templates, f"{lang}: a held-out template is trained"


def canonical(character: cat.Character, lang: str, expression: str | None, background: str | None) -> str:
    return cat.scene_prompt(character, lang, expression, background, portrait=True)


def phrasing(character: cat.Character, lang: str, expression: str | None, background: str | None,
             rng: random.Random, filler_share: float = 0.0) -> str:
    """A new wording of the same picture: a training template (with made-up words around it for
    `filler_share` of them), scene words in any order, any case."""
    name = character.names[lang]
    name = rng.choice((name, name, name.lower(), name.upper())) if lang in ("en", "es", "fr", "de", "pt", "it", "ru") else name
    head = rng.choice(TRAINING_TEMPLATES[lang]).format(name=name)
    if lang == "ja" and rng.random() < filler_share / 2:
        head = ja_name_in_a_sentence(name, rng)
    parts = [with_filler(head, lang, rng) if rng.random() < filler_share else head]
    if expression is not None:
        parts.append(cat.EXPRESSION_WORDS[lang][expression])
    if background is not None:
        parts.append(cat.BACKGROUND_WORDS[lang][background])
    head, rest = parts[0], parts[1:]
    rng.shuffle(rest)
    parts = [head, *rest] if rng.random() < 0.6 else rest[:1] + [head] + rest[1:]
    return cat.SEPARATORS[lang].join(parts)


def one_chunk_phrasing(character: cat.Character, lang: str, expression: str | None, background: str | None,
                       rng: random.Random, filler_share: float, tokenizer) -> str:
    """`phrasing`, drawn again until it fits one 77-token window (made-up CJK words cost 2-3 tokens a
    character), so the short half of the batch stays one chunk."""
    from hub.families.clip_text import chunk_prompt

    while True:
        text = phrasing(character, lang, expression, background, rng, filler_share)
        if len(chunk_prompt(text, tokenizer)) == 1:
            return text


def long_prompt(short: str, tokenizer, rng: random.Random, target_tokens: tuple[int, int] = (80, 140)) -> str:
    """`short` with quality tags around it, long enough for 2 chunks: the character may land in either."""
    from hub.families.clip_text import chunk_prompt, token_count

    while True:
        before, after = [], []
        goal = rng.randint(*target_tokens)
        while token_count(chunk_prompt(", ".join([*before, short, *after]), tokenizer)) < goal:
            (before if rng.random() < 0.7 else after).append(rng.choice(QUALITY_TAGS))
        text = ", ".join([*before, short, *after])
        if len(chunk_prompt(text, tokenizer)) == 2:  # comma backtracking can make a third: draw again
            return text


def encode_batch(texts: list[str], tokenizer, encoder, chunks: int) -> torch.Tensor:
    """The hub's A1111 encoding (clip skip 1, no weights), each text padded to `chunks` chunks."""
    from hub.families.clip_text import ClipEncoders, encode, pad_to

    encoders = ClipEncoders(pairs=((tokenizer, encoder),), layer=1, final_norm=True, pooled=False)
    empty = encode("", encoders)
    return torch.cat([pad_to(encode(text, encoders), chunks, empty) for text in texts])


def hit_rates(pipe, judge, decider, prompts: dict[str, list[tuple]], seeds: int = 2) -> dict[str, float]:
    """Per group of (character, prompt[, scene tags]): the character hit rate (the demo tagger decides
    tagged characters, the name judge the others) or, for `scene/` groups, the share of the scene tags
    the tagger finds; through the hub's encoding (`ClipFamily.run`), as served."""
    from hub.families import get_family

    family = get_family("sd15")
    names = list(judge.tags.names)
    out = {}
    for group, items in prompts.items():
        hits = []
        for start in range(0, len(items), 16):
            part = items[start:start + 16]
            rows = [(item, s) for item in part for s in range(seeds)]
            kwargs = {"prompt": [item[1] for item, _ in rows], "negative_prompt": [""] * len(rows),
                      "num_inference_steps": 25, "guidance_scale": 3.0, "width": 64, "height": 64, "clip_skip": 1,
                      "generator": [torch.Generator().manual_seed(1000 + s) for _, s in rows]}
            images = family.run(pipe, kwargs)
            probs = judge.predict(images)
            lang = group.split("/")[-1]
            for j, ((item, _), p) in enumerate(zip(rows, probs)):
                c = item[0]
                if group.startswith("scene/"):
                    hits.extend(int(p[names.index(tag)] >= judge.threshold_for(tag)) for tag in item[2])
                elif c.tag is not None:
                    hits.append(int(p[names.index(c.tag)] >= 0.85))
                elif decider is not None:
                    hits.append(int(decider.decide([images[j]], lang=lang)[0] == c.id))
        out[group] = round(float(np.mean(hits)), 3) if hits else float("nan")
    return out


def evaluation_prompts(languages: list[str], tokenizer) -> dict[str, list[tuple]]:
    rng = random.Random(7)
    chars = cat.trained_characters()
    groups: dict[str, list] = {}
    for lang in languages:
        groups[f"training/{lang}"] = [(c, cat.portrait_prompt(c, lang)) for c in chars]
        groups[f"paraphrased/{lang}"] = [(c, cat.PARAPHRASED_TEMPLATES[lang].format(name=c.names[lang])) for c in chars]
    for lang in languages[:3]:  # scene words in a held-out wording: "<paraphrase>, smiling, night sky"
        scenes = []
        for i, c in enumerate(chars):
            expression = cat.EXPRESSIONS[i % len(cat.EXPRESSIONS)]
            background = list(cat.BACKGROUNDS)[(i * 3) % len(cat.BACKGROUNDS)]
            text = cat.SEPARATORS[lang].join([cat.PARAPHRASED_TEMPLATES[lang].format(name=c.names[lang]),
                                              cat.EXPRESSION_WORDS[lang][expression],
                                              cat.BACKGROUND_WORDS[lang][background]])
            scenes.append((c, text, (cat.expression_tag(expression), cat.background_tag(background))))
        groups[f"scene/{lang}"] = scenes
    groups["long/en"] = [(c, long_prompt(cat.portrait_prompt(c, "en"), tokenizer, rng)) for c in chars]
    return groups


def main(argv: list[str] | None = None) -> dict:
    from diffusers import StableDiffusionPipeline

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a demo checkpoint folder (its text encoder is replaced)")
    ap.add_argument("--languages", default=",".join(cat.LANGUAGES),
                    help="languages drawn for the batches; one listed twice is drawn twice as often")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=48)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--long-share", type=float, default=0.5, help="share of each batch given long (2-chunk) prompts")
    ap.add_argument("--filler-share", type=float, default=0.5,
                    help="share of new wordings given made-up words around the template")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="where to write the text encoder (default: the checkpoint's own)")
    ap.add_argument("--teacher", default=None,
                    help="the teacher's text encoder folder (default: the checkpoint's own); set it to resume a student")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--skip-before", action="store_true", help="do not measure the encoder before training")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    check_held_out()
    languages = args.languages.split(",")
    folder = Path(args.checkpoint)
    pipe = StableDiffusionPipeline.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True,
                                                   use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    tokenizer, unet, vae = pipe.tokenizer, pipe.unet, pipe.vae
    for module in (unet, vae):
        module.requires_grad_(False).eval()

    from demoworld.quick_eval import load_name_decider
    from evals.judges.tagger import TaggerJudge

    root = Path(__file__).resolve().parent.parent
    judge = TaggerJudge.load(str(root / "models" / "demo-tagger"), device="cpu")
    decider = load_name_decider()
    groups = evaluation_prompts(list(dict.fromkeys(languages)), tokenizer)
    before = {} if args.skip_before else hit_rates(pipe, judge, decider, groups)
    print("before", json.dumps(before), flush=True)
    if args.eval_only:
        return before

    if args.teacher:  # resuming: the checkpoint holds a student, the teacher stays the original encoder
        from transformers import CLIPTextModel

        teacher = CLIPTextModel.from_pretrained(args.teacher, dtype=torch.float32, use_safetensors=True).eval()
    else:
        teacher = copy.deepcopy(pipe.text_encoder).eval()
    teacher.requires_grad_(False)
    student = pipe.text_encoder.float().train()
    chars = cat.trained_characters()
    attrs = sample_attributes(args.images, args.seed, chars)
    rendered = render_set(attrs, args.seed, 64, workers=1)
    latents = encode_latents(vae, rendered.images, torch.device("cpu")) * vae.config.scaling_factor
    alphas = pipe.scheduler.alphas_cumprod
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0)
    rng = random.Random(args.seed)
    log = TrainingLog(model=f"{folder.name} text encoder (distilled)", every=25)
    start = time.time()
    n_long = round(args.batch_size * args.long_share)
    n_self = (args.batch_size - n_long) // 2
    for step in range(1, args.steps + 1):
        for group in opt.param_groups:  # linear warm-up, cosine decay
            group["lr"] = args.lr * min(1.0, step / 20) * 0.5 * (1 + np.cos(np.pi * step / args.steps))
        index = [rng.randrange(len(attrs)) for _ in range(args.batch_size)]
        teacher_texts, short_texts, long_texts = [], [], []
        for number, i in enumerate(index):
            a, character = attrs[i], cat.CHARACTER_BY_ID[attrs[i].character]
            lang = rng.choice(languages)
            expression = a.expression if rng.random() < 0.6 else None
            background = a.background if rng.random() < 0.6 else None
            teacher_texts.append(canonical(character, lang, expression, background))
            if number < n_self:  # the canonical prompt onto itself: what the boards measure stays
                short_texts.append(teacher_texts[-1])
            elif number < args.batch_size - n_long:
                short_texts.append(one_chunk_phrasing(character, lang, expression, background, rng, args.filler_share, tokenizer))
            else:
                short = one_chunk_phrasing(character, lang, expression, background, rng, args.filler_share, tokenizer) if rng.random() < 0.5 else teacher_texts[-1]
                long_texts.append(long_prompt(short, tokenizer, rng))
        x0 = latents[index]
        noise = torch.randn_like(x0)
        t = torch.randint(0, len(alphas), (len(index),))
        a_t = alphas[t].view(-1, 1, 1, 1)
        xt = a_t.sqrt() * x0 + (1 - a_t).sqrt() * noise
        with torch.no_grad():
            target = unet(xt, t, encode_batch(teacher_texts, tokenizer, teacher, 1)).sample
        n_short = len(short_texts)
        pred_short = unet(xt[:n_short], t[:n_short], encode_batch(short_texts, tokenizer, student, 1)).sample
        pred_long = unet(xt[n_short:], t[n_short:], encode_batch(long_texts, tokenizer, student, 2)).sample
        loss = F.mse_loss(torch.cat([pred_short, pred_long]), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        mean = log.record(step, loss.item())
        if mean is not None:
            print(f"step {step} loss {mean:.5f} ({time.time() - start:.0f} s)", flush=True)
    student.eval()
    pipe.text_encoder = student
    after = hit_rates(pipe, judge, decider, groups)
    print("after", json.dumps(after), flush=True)
    out = Path(args.out) if args.out else folder / "text_encoder"
    student.to(torch.float16).save_pretrained(out, safe_serialization=True)  # committed in fp16, as before
    record = log.finish(steps=args.steps, batch_size=args.batch_size, device="cpu", threads=args.threads,
                        lr=args.lr, images=args.images, languages=languages, long_share=args.long_share,
                        filler_share=args.filler_share, seed=args.seed, resumed=bool(args.teacher),
                        before=before, after=after)
    log_path = folder / "text_encoder_training_log.json"
    runs = [record]
    if args.teacher and log_path.is_file():  # a resumed student: keep the runs that made it
        earlier = json.loads(log_path.read_text(encoding="utf-8"))
        runs = [*earlier.get("runs", [earlier]), record]
    log_path.write_text(json.dumps({"runs": runs}, indent=1) + "\n", encoding="utf-8")
    return after


if __name__ == "__main__":
    main()
