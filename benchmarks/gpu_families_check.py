"""Device check (issue 12): Anima, Z-Image inpaint and Z-Image-Omni edits on CUDA (bf16), plus the
compiled LoRA hot-swap path on Anima. Prints one line per check, writes DIR/families.json as each ends
(`--out DIR`) and exits 1 when any check failed. `DEV=cpu` rehearses it on a CPU (no compiled check)."""
import argparse, os, sys, tempfile, time, traceback
from pathlib import Path
sys.path.insert(0, os.getcwd())
from benchmarks._live_report import LiveReport
import numpy as np
from PIL import Image
from hub.config import load_config
from hub.engine import Engine, EditRequest, GenerationRequest
from tests.conftest import write_config
from tests.tiny_models import (checkpoint_entry, save_random_transformer_lora, save_tiny_anima, save_tiny_z_image,
                               save_tiny_z_image_omni)
from hub.builtin import ensure_builtin_checkpoint

DEV = os.environ.get("DEV", "cuda")
parser = argparse.ArgumentParser()
parser.add_argument("--out", default=None, help="folder for families.json")
OUT = parser.parse_args().out
report = LiveReport(Path(OUT) / "families.json" if OUT else None, device=DEV)
def px(item): return np.asarray(item.image, dtype=np.int16)
root = Path(tempfile.mkdtemp())
(root / "data" / "builtin").mkdir(parents=True)
for name in ("demo-random", "demo-random-b"):
    ensure_builtin_checkpoint(name, root / "data" / "builtin")
anima = save_tiny_anima(root / "anima")
from diffusers import CosmosTransformer3DModel
tr = CosmosTransformer3DModel.from_pretrained(anima / "transformer")
lora_a = save_random_transformer_lora(tr, root / "lora-a", seed=1)
lora_b = save_random_transformer_lora(tr, root / "lora-b", seed=2)
cks = [checkpoint_entry("tiny-anima", "anima", anima, 4.0, "default", 32),
       checkpoint_entry("tiny-z-image", "z-image", save_tiny_z_image(root / "z"), 2.0, "default"),
       checkpoint_entry("tiny-z-omni", "z-image-omni", save_tiny_z_image_omni(root / "zo"), 2.0, "default")]
loras = [{"id": "a", "name": "a", "source": f"folder:{lora_a}", "base_family": "anima"},
         {"id": "b", "name": "b", "source": f"folder:{lora_b}", "base_family": "anima"}]

def check(name, fn):
    t = time.time()
    try:
        report[name] = f"ok: {fn()} ({time.time() - t:.1f}s)"
    except Exception as err:  # the next checks still run; the failure makes the exit code
        traceback.print_exc()
        report[name] = f"failed: {type(err).__name__}: {err}"
        report.expect(False, f"{name}: {type(err).__name__}: {err}")

def plain():
    e = Engine(load_config(write_config(root, checkpoints_extra=cks, loras=loras)), device=DEV)
    G = lambda **k: e.generate(GenerationRequest("1girl, @artist", checkpoint="tiny-anima", **k))
    def t2i():
        a, b, c = G(seed=3), G(seed=3), G(seed=4)
        assert np.array_equal(px(a[0]), px(b[0])) and not np.array_equal(px(a[0]), px(c[0]))
        return f"dtype={e.pipeline('tiny-anima').transformer.dtype} size={a[0].image.size}"
    def lora():
        base, la, lb, none = G(seed=5), G(seed=5, loras=(("a", 1.0),)), G(seed=5, loras=(("b", 1.0),)), G(seed=5)
        assert not np.array_equal(px(base[0]), px(la[0])) and not np.array_equal(px(la[0]), px(lb[0]))
        assert np.array_equal(px(base[0]), px(none[0]))
        return f"stats={e.stats}"
    def i2i():
        src = G(seed=1)[0].image
        out = e.edit(EditRequest(image=src, prompt="smile", checkpoint="tiny-anima", strength=0.6))
        return out[0].recipe.task
    def zinpaint():
        src = Image.new("RGB", (64, 64), (200, 120, 40)); mask = Image.new("L", (64, 64), 0); mask.paste(255, (0, 0, 64, 32))
        out = e.edit(EditRequest(image=src, prompt="hat", mask=mask, strength=0.9, checkpoint="tiny-z-image"))[0]
        d = np.abs(np.asarray(out.image, dtype=int) - np.asarray(src, dtype=int))
        assert d[36:].max() == 0 and d[:28].mean() > 1
        return f"inside={d[:28].mean():.1f} beyond-band={d[36:].max()}"
    def zomni():
        ref = Image.new("RGB", (64, 64), (20, 200, 40))
        out = e.edit(EditRequest(image=Image.new("RGB", (64, 64), "white"), prompt="like the reference", checkpoint="tiny-z-omni", references=(ref,)))
        gen = e.generate(GenerationRequest("a cat", checkpoint="tiny-z-omni", references=(ref, ref)))
        return f"vae={e.pipeline('tiny-z-omni').vae.dtype} {out[0].recipe.task} {gen[0].recipe.task}"
    for name, fn in (("anima text2img bf16", t2i), ("anima lora switch", lora), ("anima img2img", i2i),
                     ("z-image inpaint keeps rest", zinpaint), ("z-image-omni edit+reference", zomni)):
        check(name, fn)
    e.shutdown()

def compiled():
    (root / "c").mkdir(exist_ok=True)
    e = Engine(load_config(write_config(root / "c", checkpoints_extra=cks, loras=loras, engine={"compile": True, "batch_window_ms": 0})), device="cuda")
    G = lambda **k: e.generate(GenerationRequest("1girl", checkpoint="tiny-anima", seed=5, **k))[0]
    def run():
        times = []
        for loras_ in ((("a", 1.0),), (("b", 1.0),), (), (("a", 1.0),)):
            t = time.time(); img = G(loras=loras_); times.append(round(time.time() - t, 1))
            yield loras_, img
        print("   times", times)
    outs = list(run())
    assert not np.array_equal(px(outs[0][1]), px(outs[1][1]))
    assert np.abs(px(outs[0][1]) - px(outs[3][1])).max() <= 2
    return f"compiled={e.models.loaded['tiny-anima'].is_compiled} lora_loads={e.stats['lora_loads']}"

plain()
if DEV == "cuda":
    check("anima compiled + LoRA hot-swap", compiled)
raise SystemExit(report.exit_code())
