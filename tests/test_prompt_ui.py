"""Prompts as the community writes them, through the served app: recipes brought in over HTTP
(`/read_recipe`) from this hub's PNGs and from PNGs written in A1111, ComfyUI and NovelAI formats, the
token count, A1111 syntax on `/generate`, and the demo checkpoints' examples, which draw their characters."""

from __future__ import annotations

import json

import pytest
from gradio_client import handle_file
from PIL import Image, PngImagePlugin

from hub.recipe import Recipe, read_recipe, save_png
from tests.hub_app import running_app

pytestmark = [pytest.mark.timeout(600)]


def _png(path, chunks: dict[str, str]):
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (64, 64), (200, 180, 160)).save(path, pnginfo=info)
    return path


def _comfy_chunks(lora_file: str) -> dict[str, str]:
    graph = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 11, "steps": 12, "cfg": 4.5, "sampler_name": "dpmpp_2m_sde",
                                                  "scheduler": "karras", "denoise": 1.0, "model": ["10", 0],
                                                  "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl/demo-english.safetensors"}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": lora_file, "strength_model": 0.7, "strength_clip": 0.7,
                                                      "model": ["4", 0], "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 96, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a portrait of Fox Ninja", "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
    }
    kinds = {"model": "MODEL", "clip": "CLIP", "positive": "CONDITIONING", "negative": "CONDITIONING",
             "latent_image": "LATENT", "samples": "LATENT", "vae": "VAE", "images": "IMAGE"}
    links = [[n, int(value[0]), value[1], int(node_id), 0, kinds[name]]
             for n, (node_id, name, value) in enumerate(
                 ((node_id, name, value) for node_id, node in graph.items() for name, value in node["inputs"].items()
                  if isinstance(value, list)), start=1)]
    return {"prompt": json.dumps(graph), "workflow": json.dumps({"nodes": [], "links": links})}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prompt-ui")
    with running_app(tmp / "data", f"sqlite:///{tmp / 'hub.sqlite3'}") as (url, ctx):
        from gradio_client import Client

        yield url, ctx, Client(url, verbose=False), tmp


def test_read_recipe_maps_our_pngs_and_other_tools(app):
    url, ctx, client, tmp = app
    lora = ctx.engine.lora_specs()[0]
    ours = Recipe(prompt="a portrait of Aqua Diva, (smiling:1.2)", negative_prompt="blurry", steps=9, sampler="dpmpp_2m_karras",
                  cfg=2.5, seed=42, width=64, height=64, model="demo-multilingual", loras=((lora.id, 0.6),), clip_skip=2)
    save_png(Image.new("RGB", (64, 64)), ours, tmp / "ours.png")
    got = client.predict(handle_file(str(tmp / "ours.png")), api_name="/read_recipe")
    assert (got["prompt"], got["negative_prompt"], got["steps"], got["sampler"], got["cfg"], got["seed"]) == \
        (ours.prompt, "blurry", 9, "dpmpp_2m_karras", 2.5, 42)
    assert (got["checkpoint"], got["loras"], got["clip_skip"], got["unmapped"]) == ("demo-multilingual", [[lora.id, 0.6]], 2, [])

    # A1111 / Forge: LoRAs as prompt tags, the modern sampler + schedule, a model named by its file, a LoRA unknown here.
    a1111 = ("a portrait of Aqua Diva, (smile:1.1), <lora:" + lora.id + ":0.8>, <lora:not-here:1>\n"
             "Negative prompt: lowres\nSteps: 14, Sampler: DPM++ 2M SDE, Schedule type: Karras, CFG scale: 3.5, "
             "Seed: 123, Size: 64x64, Model hash: 0123456789, Model: demo-english, Clip skip: 2, Version: v1.10.1")
    got = client.predict(handle_file(str(_png(tmp / "a1111.png", {"parameters": a1111}))), api_name="/read_recipe")
    assert got["prompt"] == "a portrait of Aqua Diva, (smile:1.1)"
    assert (got["sampler"], got["steps"], got["cfg"], got["seed"], got["width"], got["clip_skip"]) == \
        ("dpmpp_2m_sde_karras", 14, 3.5, 123, 64, 2)
    assert got["checkpoint"] == "demo-english" and got["loras"] == [[lora.id, 0.8]]
    assert got["unmapped"] == ["LoRA not-here (not registered here)"]

    # ComfyUI: sampler_name + scheduler, EmptyLatentImage size, the checkpoint and LoRA loaders' file names.
    got = client.predict(handle_file(str(_png(tmp / "comfy.png", _comfy_chunks(f"loras/{lora.id}.safetensors")))),
                         api_name="/read_recipe")
    assert got["source"] == "ComfyUI"
    assert (got["prompt"], got["negative_prompt"], got["sampler"], got["steps"], got["cfg"], got["seed"]) == \
        ("a portrait of Fox Ninja", "blurry", "dpmpp_2m_sde_karras", 12, 4.5, 11)
    assert (got["width"], got["height"], got["checkpoint"], got["loras"]) == (64, 96, "demo-english", [[lora.id, 0.7]])

    # NovelAI: its own JSON comment; its model is not served here, and says so.
    comment = {"prompt": "a portrait of Pink Magical Girl", "steps": 20, "height": 64, "width": 64, "scale": 5.0, "seed": 77,
               "sampler": "k_euler_ancestral", "uc": "lowres"}
    nai = _png(tmp / "nai.png", {"Software": "NovelAI", "Title": "NovelAI generated image", "Description": comment["prompt"],
                                 "Source": "NovelAI Diffusion V3 4BDE2A90", "Comment": json.dumps(comment)})
    got = client.predict(handle_file(str(nai)), api_name="/read_recipe")
    assert (got["source"], got["prompt"], got["negative_prompt"], got["sampler"], got["cfg"], got["seed"], got["steps"]) == \
        ("NovelAI", comment["prompt"], "lowres", "euler_a", 5.0, 77, 20)
    assert got["checkpoint"] is None and any("NovelAI" in item for item in got["unmapped"])

    # No recipe, or not an image: a short refusal, and the server goes on.
    with pytest.raises(Exception, match="No recipe found in this image"):
        client.predict(handle_file(str(_png(tmp / "plain.png", {"Comment": "hello"}))), api_name="/read_recipe")
    (tmp / "fake.png").write_bytes(b"not a png at all")
    with pytest.raises(Exception, match="not a readable image"):
        client.predict(handle_file(str(tmp / "fake.png")), api_name="/read_recipe")
    assert client.predict(handle_file(str(tmp / "ours.png")), api_name="/read_recipe")["seed"] == 42


def test_generate_takes_a1111_syntax_lora_tags_and_clip_skip(app):
    url, ctx, client, tmp = app
    lora = ctx.engine.lora_specs()[0]
    prompt = f"a portrait of Aqua Diva, (smiling:1.2) <lora:{lora.id}:0.5>"
    gallery, info = client.predict(prompt, "", "demo-multilingual", "", 64, 64, 3, 3.0, "DPM++ 2M Karras", 5, 1, None, 2,
                                   api_name="/generate")
    recipe = read_recipe(gallery[0]["image"])
    assert recipe.prompt == "a portrait of Aqua Diva, (smiling:1.2)" and recipe.loras == ((lora.id, 0.5),)
    assert (recipe.sampler, recipe.clip_skip, recipe.extra.get("prompt_syntax")) == ("dpmpp_2m_karras", 2, "weighted")
    assert "tokens" in info
    with pytest.raises(Exception, match="between -2 and 4"):
        client.predict("(a portrait of Aqua Diva:5)", api_name="/generate")
    with pytest.raises(Exception, match="Unknown LoRA 'nope'"):
        client.predict("a portrait <lora:nope:1>", api_name="/generate")


@pytest.mark.claims
def test_demo_examples_draw_their_characters(app):
    """Every example of the demo checkpoints draws the character its prompt names (the demo tagger decides)."""
    from demoworld import catalog as cat
    from evals.judges.tagger import TaggerJudge
    from hub.engine import GenerationRequest
    from tests.test_demoworld import TAGGER

    url, ctx, client, tmp = app
    judge = TaggerJudge.load(str(TAGGER), device="cpu")
    checked = 0
    for checkpoint in ("demo-multilingual", "demo-english"):
        for example in ctx.engine.checkpoint_spec(checkpoint).examples:
            character = next(c for c in cat.CHARACTERS if any(name in example.prompt for name in c.names.values()))
            image = ctx.engine.generate(GenerationRequest(prompt=example.prompt, checkpoint=checkpoint, seed=example.seed))[0]
            probability = judge.predict([image.image])[0][list(judge.tags.names).index(character.tag)]
            assert probability >= 0.85, f"{checkpoint} example {example.prompt!r} does not draw {character.id}"
            checked += 1
    assert checked >= 6
