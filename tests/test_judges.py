"""Judges on tiny random models built here, saved and loaded back through the real loaders.

Preprocessing is checked on known pixels: transparency onto white, padding to a square with white,
resizing to the size read from the model's config, BGR channel order, 64-token text padding.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.images import pad_square, to_rgb
from evals.judges.base import JudgeLoadError
from evals.judges.reference import ReferenceJudge
from evals.judges.registry import DEMO_RANDOM_TAGGER, build_judge, clear_cache, ensure_demo_random_tagger, suite_tags
from evals.judges.tagger import TaggerJudge, build_random_tagger
from hub.errors import HubInputError

TAGS = [("general", 9), ("sensitive", 9), ("questionable", 9), ("explicit", 9), ("1girl", 0), ("umbrella", 0), ("rain", 0), ("hatsune_miku", 4)]


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory) -> Path:
    return build_random_tagger(tmp_path_factory.mktemp("tagger"), TAGS, input_size=48, seed=0)


@pytest.fixture(scope="module")
def tagger(tagger_dir) -> TaggerJudge:
    return TaggerJudge.load(f"folder:{tagger_dir}", thresholds={"general": 0.35, "character": 0.85}, device="cpu")


# ------------------------------------------------------------------------------------ tagger


def test_random_tagger_folder_is_wd_v3_format(tagger_dir):
    assert sorted(p.name for p in tagger_dir.iterdir()) == ["config.json", "model.safetensors", "selected_tags.csv"]
    lines = (tagger_dir / "selected_tags.csv").read_text().splitlines()
    assert lines[0] == "tag_id,name,category,count"
    assert lines[1].split(",")[1:3] == ["general", "9"]  # WD v3: the first 4 rows are ratings
    assert lines[-1].split(",")[1:3] == ["hatsune_miku", "4"]


def test_tagger_reads_input_size_from_config(tagger):
    assert tagger.input_size == 48
    assert len(tagger.tags) == len(TAGS)
    assert tagger.preprocess([Image.new("RGB", (10, 30))]).shape == (1, 3, 48, 48)


def test_transparency_goes_onto_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 255, 255))  # one opaque blue pixel
    rgb = np.asarray(to_rgb(rgba))
    assert tuple(rgb[1, 1]) == (255, 255, 255)
    assert tuple(rgb[0, 0]) == (0, 0, 255)
    half = Image.new("RGBA", (1, 1), (0, 0, 0, 128))  # half-transparent black -> mid grey
    assert abs(int(np.asarray(to_rgb(half))[0, 0, 0]) - 127) <= 1


def test_pad_to_square_with_white_content_centred():
    wide = Image.new("RGB", (8, 4), (0, 0, 0))
    square = np.asarray(pad_square(wide))
    assert square.shape == (8, 8, 3)
    assert (square[:2] == 255).all() and (square[6:] == 255).all()  # 2 rows of white above and below
    assert (square[2:6] == 0).all()


def test_tagger_preprocessing_on_known_pixels(tmp_path):
    # A tagger whose input size equals the padded image size: no resampling, exact values.
    folder = build_random_tagger(tmp_path / "t", TAGS, input_size=8)
    judge = TaggerJudge.load(folder, device="cpu")
    image = Image.new("RGB", (8, 4), (255, 0, 0))  # pure red, wide
    x = judge.preprocess_array(image)  # (3, 8, 8), normalised with mean=std=0.5 -> [-1, 1]
    assert x.shape == (3, 8, 8)
    # BGR order: channel 0 is blue, channel 2 is red.
    centre = x[:, 4, 4]
    np.testing.assert_allclose(centre, [-1.0, -1.0, 1.0])
    # Padding rows are white: 1.0 in every channel.
    np.testing.assert_allclose(x[:, 0, 0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(x[:, 7, 3], [1.0, 1.0, 1.0])
    # Resizing to the model's size: a 16x16 image becomes 8x8.
    assert judge.preprocess_array(Image.new("RGB", (16, 16), (0, 255, 0))).shape == (3, 8, 8)


def test_batched_predictions_match_one_at_a_time(tagger):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40 + 4 * i, 48, 3), dtype=np.uint8)) for i in range(5)]
    batched = tagger.predict(images, batch_size=5)
    single = np.concatenate([tagger.predict([im], batch_size=1) for im in images])
    assert batched.shape == (5, len(TAGS))
    assert ((batched >= 0) & (batched <= 1)).all()  # sigmoid outputs
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_per_category_thresholds(tagger):
    probs = np.zeros((1, len(TAGS)), dtype=np.float32)
    names = [t for t, _ in TAGS]
    probs[0, names.index("1girl")] = 0.40  # general, above 0.35
    probs[0, names.index("umbrella")] = 0.30  # general, below
    probs[0, names.index("hatsune_miku")] = 0.80  # character, below 0.85
    assert tagger.decide(probs) == [{"1girl": pytest.approx(0.40)}]
    probs[0, names.index("hatsune_miku")] = 0.90
    assert set(tagger.decide(probs)[0]) == {"hatsune_miku", "1girl"}
    assert tagger.threshold_for("hatsune_miku") == 0.85 and tagger.threshold_for("rain") == 0.35
    assert tagger.has_tag("hatsune_miku") and not tagger.has_tag("shrek")


def test_tagger_refuses_pickled_weights_and_mismatched_tags(tmp_path, tagger_dir):
    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "selected_tags.csv"):
        (folder / name).write_bytes((tagger_dir / name).read_bytes())
    torch.save({}, folder / "pytorch_model.bin")
    with pytest.raises(JudgeLoadError, match=r"model\.safetensors is missing"):
        TaggerJudge.load(folder)
    short = tmp_path / "short"
    short.mkdir()
    for name in ("config.json", "model.safetensors"):
        (short / name).write_bytes((tagger_dir / name).read_bytes())
    (short / "selected_tags.csv").write_text("tag_id,name,category,count\n0,general,9,1\n")
    with pytest.raises(JudgeLoadError, match=r"selected_tags\.csv has 1 tags but the model has 8 classes"):
        TaggerJudge.load(short)


def test_tagger_loads_a_folder_written_by_timm_itself(tmp_path):
    """The Hub's WD v3 folders are written by timm (`push_to_hub`/`save_for_hf`): same loader."""
    import timm
    from timm.models._hub import save_for_hf

    from evals.judges.tagger import write_selected_tags

    # WD v3 ViT settings, shrunk: no class token, average pooling, gelu_tanh, fixed input size.
    model_args = {"img_size": 32, "class_token": False, "global_pool": "avg", "fc_norm": False, "act_layer": "gelu_tanh"}
    model = timm.create_model("test_vit", num_classes=6, **model_args)
    model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, 32, 32)}
    save_for_hf(model, tmp_path, model_args=model_args, safe_serialization=True)
    write_selected_tags(tmp_path / "selected_tags.csv", TAGS[:4] + [("1girl", 0), ("hatsune_miku", 4)])
    judge = TaggerJudge.load(tmp_path, device="cpu")
    assert judge.input_size == 32
    probs = judge.predict([Image.new("RGB", (50, 20), (0, 0, 0))])
    with torch.no_grad():
        x = torch.from_numpy(judge.preprocess_array(Image.new("RGB", (50, 20), (0, 0, 0))))[None]
        expected = torch.sigmoid(model.eval()(x)).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)  # same weights, same numbers


def test_tagger_embeddings_are_unit_vectors(tagger):
    emb = tagger.embed([Image.new("RGB", (20, 20), (10, 200, 30)), Image.new("RGB", (20, 20), (200, 10, 30))])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


# ------------------------------------------------------------------------------------ SigLIP


def _word_tokenizer(words, pad="<pad>"):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {pad: 0, "<unk>": 1, "</s>": 2}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=pad, unk_token="<unk>", eos_token="</s>"), len(vocab)


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory) -> Path:
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    tokenizer, vocab_size = _word_tokenizer("a girl with an umbrella in the rain red blue cat una chica".split())
    torch.manual_seed(0)
    config = SiglipConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=64, projection_size=32,
                         pad_token_id=0, bos_token_id=None, eos_token_id=2),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
    )
    folder = tmp_path_factory.mktemp("siglip")
    SiglipModel(config).save_pretrained(folder)
    SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_siglip_text_padded_to_64_tokens(siglip_dir):
    judge = build_judge({"id": "sig", "kind": "siglip", "source": f"folder:{siglip_dir}"}, use_cache=False)
    tokens = judge.tokenize(["a girl", "una chica in the rain with a red umbrella"])
    assert tokens["input_ids"].shape == (2, 64)
    assert (tokens["input_ids"][0, 2:] == 0).all()  # padded with the pad id up to 64


def test_siglip_lowercases_text_only_where_the_judge_says_its_model_was_trained_so(siglip_dir):
    as_written = build_judge({"id": "sig", "kind": "siglip", "source": f"folder:{siglip_dir}"}, use_cache=False)
    lowered = build_judge({"id": "sig2", "kind": "siglip", "source": f"folder:{siglip_dir}", "options": {"lowercase": True}},
                          use_cache=False)
    shout, plain = ["A Girl in the RAIN"], ["a girl in the rain"]
    assert lowered.tokenize(shout)["input_ids"].tolist() == lowered.tokenize(plain)["input_ids"].tolist()
    # Read as written, the capitalised words are not the model's words.
    assert as_written.tokenize(shout)["input_ids"].tolist() != as_written.tokenize(plain)["input_ids"].tolist()
    names = build_judge({"id": "names", "kind": "name", "source": f"folder:{siglip_dir}", "options": {"lowercase": True}},
                        use_cache=False)
    assert names.scorer.lowercase


def test_siglip_score_is_sigmoid_of_scaled_cosine_plus_bias(siglip_dir):
    judge = build_judge({"id": "sig", "kind": "siglip", "source": f"folder:{siglip_dir}"}, use_cache=False)
    images = [Image.new("RGB", (40, 30), (255, 0, 0)), Image.new("RGBA", (30, 30), (0, 0, 255, 200))]
    texts = ["a red cat", "a girl with an umbrella"]
    scores = judge.scores(images, texts)
    # Reference: the model's own forward pass, diagonal of logits_per_image, through a sigmoid.
    inputs = judge.processor(text=texts, images=[to_rgb(im) for im in images], padding="max_length",
                             max_length=64, return_tensors="pt")
    with torch.no_grad():
        logits = judge.model(**inputs).logits_per_image
    expected = torch.sigmoid(torch.diagonal(logits)).numpy()
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    emb = judge.image_embeddings(images)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # Batched and one at a time agree.
    single = np.concatenate([judge.scores([im], [t]) for im, t in zip(images, texts)])
    np.testing.assert_allclose(scores, single, atol=1e-5)


# -------------------------------------------------------------------------------------- CLIP


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    folder = tmp_path_factory.mktemp("clip")
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_clip_judge_matches_torchmetrics_clipscore(clip_dir):
    from torchmetrics.multimodal.clip_score import CLIPScore

    from evals.judges.clip import _FeatureTensors, load_clip_pair

    judge = build_judge({"id": "clip", "kind": "clip", "source": f"folder:{clip_dir}"}, use_cache=False)
    images = [Image.new("RGB", (32, 32), (200, 30, 30)), Image.new("RGB", (32, 32), (30, 30, 200))]
    texts = ["a red cat", "blue dog"]
    scores = judge.scores(images, texts)
    assert scores.shape == (2,) and (scores >= 0).all()
    # One pair at a time through the public CLIPScore metric gives the same numbers.
    for image, text, score in zip(images, texts, scores):
        metric = CLIPScore(model_name_or_path=lambda: (lambda m, p: (_FeatureTensors(m), p))(*load_clip_pair(clip_dir)))
        tensor = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
        with torch.no_grad():
            value = float(metric(tensor, text))
        assert value == pytest.approx(float(score), abs=1e-3)
    emb = judge.image_embeddings(images)
    assert emb.shape == (2, 16)


# --------------------------------------------------------------------------------- reference


class _ColourEmbedder:
    """Mean colour as a unit vector: two images of the same colour are 'the same character'."""

    def image_embeddings(self, images):
        vecs = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(0) + 1e-3 for im in images])
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def test_reference_judge_against_a_gallery(tmp_path):
    gallery = tmp_path / "refs"
    gallery.mkdir()
    for i, colour in enumerate([(0, 200, 0), (10, 190, 5), (255, 0, 0)]):
        Image.new("RGB", (16, 16), colour).save(gallery / f"{i}.png")
    judge = ReferenceJudge(_ColourEmbedder(), threshold=0.95, min_fraction=0.5)
    green, blue = Image.new("RGB", (16, 16), (0, 210, 0)), Image.new("RGB", (16, 16), (0, 0, 255))
    same, other = judge.judge([green, blue], gallery)
    assert same.same and same.fraction == pytest.approx(2 / 3)  # agrees with 2 of 3 references
    assert not other.same and other.fraction == 0.0
    assert same.max_cosine > 0.99
    with pytest.raises(JudgeLoadError, match="has no images"):
        (tmp_path / "empty").mkdir()
        judge.judge([green], tmp_path / "empty")


def test_reference_judge_from_config_reuses_another_judges_embedder(tagger, tmp_path):
    judge = build_judge(
        {"id": "ref", "kind": "reference", "source": "judge:tagger", "thresholds": {"same": 0.99}},
        others={"tagger": tagger},
        use_cache=False,
    )
    gallery = tmp_path / "g"
    gallery.mkdir()
    image = Image.new("RGB", (24, 24), (120, 40, 200))
    image.save(gallery / "a.png")
    (verdict,) = judge.judge([image], gallery)
    assert verdict.same and verdict.max_cosine == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------------------------- registry


def test_demo_random_tagger_is_built_once_and_knows_the_suite_tags(tmp_path):
    clear_cache()
    spec = {"id": DEMO_RANDOM_TAGGER, "kind": "tagger", "source": "builtin:demo-random-tagger", "version": "random-1",
            "thresholds": {"general": 0.35, "character": 0.85}}
    judge = build_judge(spec, data_dir=tmp_path)
    folder = tmp_path / "judges" / DEMO_RANDOM_TAGGER
    assert (folder / "model.safetensors").is_file()
    assert judge.info.id == DEMO_RANDOM_TAGGER and judge.info.version == "random-1"
    assert judge.has_tag("hatsune_miku") and judge.has_tag("umbrella")  # from the shipped suites
    assert judge is build_judge(spec, data_dir=tmp_path)  # cached per process
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    ensure_demo_random_tagger(tmp_path)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    tags = dict(suite_tags())
    assert tags["hatsune_miku"] == 4 and tags["1girl"] == 0


def test_registry_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(JudgeLoadError, match=r"judge 'x': unknown kind 'oracle'"):
        build_judge({"id": "x", "kind": "oracle", "source": "folder:/nope"}, use_cache=False)
    with pytest.raises(JudgeLoadError, match=r"judge 'x': .*missing|not found"):
        build_judge({"id": "x", "kind": "tagger", "source": f"folder:{tmp_path / 'nothing'}"}, use_cache=False)
    with pytest.raises(JudgeLoadError, match=r"unknown builtin 'nope'"):
        build_judge({"id": "x", "kind": "tagger", "source": "builtin:nope"}, use_cache=False)

    # A Hub id that cannot be fetched (no network here): a clear message, never a traceback.
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(JudgeLoadError, match=r"judge 'wd': cannot fetch 'SmilingWolf/wd-vit-tagger-v3' from the Hub"):
        build_judge({"id": "wd", "kind": "tagger", "source": "hub:SmilingWolf/wd-vit-tagger-v3"}, use_cache=False)
    assert issubclass(JudgeLoadError, HubInputError)


# ------------------------------------------------------------------------- name judge, CCIP


def test_name_kind_is_registered_for_the_name_role(siglip_dir):
    from evals.judges.base import NameJudge
    from evals.judges.registry import judge_kind, kind_names, kinds_for_role

    assert "name" in kind_names() and kinds_for_role("name") == ("name",)
    assert judge_kind("name").protocol is NameJudge
    judge = build_judge({"id": "names", "kind": "name", "source": f"folder:{siglip_dir}", "version": "3"}, use_cache=False)
    assert isinstance(judge, NameJudge) and judge.info.kind == "name" and judge.info.version == "3"
    (verdict,) = judge.recognise([Image.new("RGB", (32, 32), (255, 0, 0))],
                                 [{"names": ["a red cat"], "other_names": ["a blue cat"], "distractors": ["a girl"]}])
    assert 0.0 <= verdict.probability <= 1.0 and verdict.rank in (1, 2, 3)


def test_reference_judge_without_ccip_installed_falls_back_to_embeddings(tagger, tmp_path):
    import importlib.util

    if importlib.util.find_spec("imgutils") is not None:
        pytest.skip("dghs-imgutils is installed here: CCIP would decide")
    judge = build_judge({"id": "ref", "kind": "reference", "source": "judge:tagger", "version": "1", "options": {"ccip": "auto"}},
                        others={"tagger": tagger}, data_dir=tmp_path, use_cache=False)
    assert judge.ccip is None and judge.info.version == "1"  # no "+ccip": the embeddings decided
    assert judge.data_dir == tmp_path  # where authors' galleries are found


def test_reference_judge_embeds_a_replaced_gallery_afresh(tmp_path):
    gallery = tmp_path / "g"
    gallery.mkdir()
    Image.new("RGB", (16, 16), (0, 200, 0)).save(gallery / "a.png")
    judge = ReferenceJudge(_ColourEmbedder(), threshold=0.95)
    green = Image.new("RGB", (16, 16), (0, 210, 0))
    assert judge.judge([green], gallery)[0].same
    import os

    Image.new("RGB", (16, 16), (255, 0, 0)).save(gallery / "a.png")  # same path, new picture
    os.utime(gallery / "a.png", ns=(1, 1))  # whatever the sizes, the modification time differs
    assert not judge.judge([green], gallery)[0].same
