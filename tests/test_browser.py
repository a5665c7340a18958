"""The page in a real headless Chromium, every tab: generate, an edit with a painted mask, character
references, the LoRA comparison, the X/Y grid, the leaderboard (progress polling, filters, sorting, CSV),
a submission, the language menu and Japanese / Spanish browsers, a withheld image, and an arena battle in
Japanese with a keyboard vote and an undo.

One app and one browser for the module. Screenshots go to $BROWSER_SCREENSHOTS (a folder) when set, else
to the test's temporary folder; each test checks that its screenshot was written.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.hub_app import running_app
from tests.needs import missing

CHROMIUM = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else (shutil.which("chromium") or shutil.which("chromium-browser"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LONG = 120_000  # ms: a generation on a busy 2-core machine

pytestmark = [pytest.mark.timeout(300)]
if CHROMIUM is None:
    missing("REQUIRE_CHROMIUM", "Debian chromium is not installed (.ci/run installs it)", module=True)


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    with running_app(folder / "data", f"sqlite:///{folder / 'hub.sqlite3'}", votes_per_minute=1000) as (url, ctx):
        yield url, ctx, folder


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("BROWSER_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser, url: str, locale: str = "en-US", path: str = ""):
    from playwright.sync_api import expect

    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.goto(url + path, wait_until="domcontentloaded")
    expect(page.locator("#tab-generate-button, button[role=tab]").first).to_be_visible(timeout=60_000)
    # The language is applied and the server's text written (tab labels included) before anything is typed.
    page.wait_for_function("() => window.__sakugaReady === true", timeout=30_000)
    return page


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).first.click()


def shoot(page, shots: Path, name: str, full_page: bool = True) -> Path:
    """A screenshot; `full_page=False` keeps what is on screen (toasts are fixed to the viewport)."""
    path = shots / f"{name}.png"
    if not full_page:  # the toast has slid in: none of its animations still runs
        page.wait_for_function(TOASTS_SETTLED, timeout=LONG)
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000
    return path


# The toast's slide-in, not its countdown bar (which runs for the toast's whole life).
TOASTS_SETTLED = """() => document.getAnimations().filter((a) => {
    const target = a.effect && a.effect.target;
    return target && target.closest && target.closest('[class*="toast"]') && !/countdown/.test(a.animationName || '');
}).every((a) => a.playState !== 'running')"""


def toast(page, text: str):
    from playwright.sync_api import expect

    found = page.get_by_text(text, exact=False).first
    expect(found).to_be_visible(timeout=LONG)
    return found


EDITOR_ZOOM = """() => {
    const zoom = [...document.querySelectorAll('#edit-editor *')].map((e) => e.textContent.trim())
        .find((t) => /^\\d+%$/.test(t));
    return zoom ? parseInt(zoom) : 0;
}"""


def upload_to_editor(page, path: Path) -> None:
    """Upload into the Edit tab's image editor and wait until the picture is shown: the empty editor
    shows an 800 px canvas at 36%, a 64 px upload enlarged over 100%. The tab's content may still be
    mounting after the tab was selected; then the upload is tried again."""
    from playwright.sync_api import expect

    editor = page.locator("#edit-editor")
    expect(editor.locator("canvas").last).to_be_visible(timeout=30_000)
    for _ in range(3):
        editor.locator("input[type=file]").first.set_input_files(str(path))
        try:
            page.wait_for_function(f"() => ({EDITOR_ZOOM})() > 100", timeout=10_000)
            return
        except Exception:  # noqa: BLE001 - tried again below
            continue
    raise AssertionError("the image editor never showed the upload")


def set_number(page, elem_id: str, value: int) -> None:
    """Type into a slider's number box (fewer steps keep the suite fast on a CPU)."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def portrait(path: Path, hair=(60, 180, 190)) -> Path:
    image = Image.new("RGB", (64, 64), (240, 236, 250))
    draw = ImageDraw.Draw(image)
    draw.ellipse((12, 8, 52, 48), fill=hair)
    draw.ellipse((18, 16, 46, 44), fill=(252, 224, 200))
    draw.rectangle((22, 48, 42, 63), fill=(200, 60, 90))
    image.save(path)
    return path


# ------------------------------------------------------------------------------------- the tabs


def test_generate_tab_shows_image_in_gallery(hub, browser, shots):
    from playwright.sync_api import expect

    url, ctx, _ = hub
    page = open_page(browser, url)
    for name in ("Generate", "Edit", "X/Y grid", "Character LoRA", "Arena", "Leaderboard", "Submit"):
        expect(page.get_by_role("tab", name=name, exact=True).first).to_be_visible()
    default = ctx.config.checkpoint(ctx.config.default_checkpoint)
    expect(page.get_by_text(default.description).first).to_be_visible()
    page.get_by_label("Prompt", exact=True).first.fill("1girl, aqua twintails, smile")
    set_number(page, "generate-steps", 6)
    page.locator("#generate-button").click()
    image = page.locator("#generate-gallery img").first
    expect(image).to_be_visible(timeout=LONG)
    expect(page.locator("#generate-info")).to_contain_text(default.id, timeout=30_000)
    assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) > 0
    shoot(page, shots, "01-generate")
    assert ctx.engine.stats["images"] >= 1
    page.context.close()


def test_edit_with_a_painted_mask_changes_only_what_was_painted(hub, browser, shots):
    from playwright.sync_api import expect

    from hub.recipe import read_recipe

    url, ctx, folder = hub
    source = folder / "edit-source.png"
    Image.new("RGB", (64, 64), (200, 120, 40)).save(source)
    page = open_page(browser, url)
    tab(page, "Edit")
    editor = page.locator("#edit-editor")
    upload_to_editor(page, source)
    canvas = editor.locator("canvas").last
    editor.get_by_role("button", name="Brush", exact=True).click()
    editor.get_by_role("button", name="Brush Size").click()
    editor.locator("input[type=range]").first.fill("6")  # a thin brush (percent of the default range)
    page.keyboard.press("Escape")
    # The picture is drawn centred in the canvas at the editor's zoom: paint a stroke down its left side.
    box = canvas.bounding_box()
    side = 64 * float(editor.get_by_text("%").first.inner_text().strip().rstrip("%")) / 100
    left, top = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2
    page.mouse.move(left + side * 0.12, top + side * 0.25)
    page.mouse.down()
    page.mouse.move(left + side * 0.12, top + side * 0.75, steps=10)
    page.mouse.move(left + side * 0.25, top + side * 0.75, steps=10)
    page.mouse.up()
    page.locator("#edit-prompt textarea").fill("a window")
    set_number(page, "edit-steps", 8)
    page.locator("#edit-button").click()
    result = page.locator("#edit-gallery img").first
    expect(result).to_be_visible(timeout=LONG)
    shoot(page, shots, "02-edit-painted-mask")
    outputs = sorted((ctx.data_dir / "outputs").rglob("*.png"), key=lambda p: p.stat().st_mtime)
    recipe = read_recipe(outputs[-1])
    assert recipe.task == "inpaint"
    edited = np.asarray(Image.open(outputs[-1]).convert("RGB"), dtype=np.int16)
    original = np.asarray(Image.open(source).convert("RGB"), dtype=np.int16)
    right = np.abs(edited[:, 36:] - original[:, 36:]).max()  # far from the stroke: the original, pasted back
    painted = np.abs(edited[20:44, 6:12] - original[20:44, 6:12]).mean()
    assert right <= 2 and painted > 5, (right, painted)
    page.context.close()


def test_character_from_references_and_the_short_refusal(hub, browser, shots):
    from playwright.sync_api import expect

    from hub.recipe import read_recipe

    url, ctx, folder = hub
    reference = portrait(folder / "reference.png")
    page = open_page(browser, url)
    page.locator("#generate-mode").get_by_text("Character from references").click()
    page.locator("#generate-references input[type=file]").set_input_files(str(reference))
    expect(page.locator("#generate-references")).to_contain_text("reference", timeout=30_000)
    page.get_by_label("Prompt", exact=True).first.fill("1girl, on a beach")
    set_number(page, "generate-steps", 4)
    page.locator("#generate-button").click()
    expect(page.locator("#generate-gallery img").first).to_be_visible(timeout=LONG)
    newest = max((ctx.data_dir / "outputs").rglob("*.png"), key=lambda p: p.stat().st_mtime)
    recipe = read_recipe(newest)
    assert recipe.task == "reference" and len(recipe.references) == 1
    shoot(page, shots, "03-generate-references")
    # An edit with references on a checkpoint that takes none: the engine's short message.
    tab(page, "Edit")
    upload_to_editor(page, portrait(folder / "to-edit.png", hair=(230, 90, 150)))
    page.get_by_text("Reference images (instruction edits)").click()
    page.locator("#edit-references input[type=file]").set_input_files(str(reference))
    expect(page.locator("#edit-references")).to_contain_text("reference", timeout=30_000)  # uploaded
    expect(page.locator("#edit-editor canvas").last).to_be_visible()
    page.locator("#edit-prompt textarea").fill("make her hair red")
    page.locator("#edit-button").click()
    toast(page, "Reference images go with instruction edits")
    shoot(page, shots, "04-edit-references-refused", full_page=False)
    page.context.close()


def test_lora_comparison_shows_both_images(hub, browser, shots):
    from playwright.sync_api import expect

    from hub.recipe import read_recipe

    url, ctx, _ = hub
    page = open_page(browser, url)
    tab(page, "Character LoRA")
    expect(page.locator("#lora-card")).to_contain_text("stellaknight", timeout=30_000)
    set_number(page, "lora-steps", 6)
    page.locator("#lora-compare-button").click()
    images = [page.locator(f"#lora-{side} img") for side in ("with", "without")]
    for image in images:
        expect(image).to_be_visible(timeout=LONG)
    shoot(page, shots, "05-lora-compare")
    newest = sorted((ctx.data_dir / "outputs").rglob("*.png"), key=lambda p: p.stat().st_mtime)[-2:]
    loras = sorted(read_recipe(path).loras for path in newest)
    assert loras == [(), (("demo-lora-star-knight", 1.0),)]
    page.context.close()


def test_xy_grid_and_the_cell_limit(hub, browser, shots):
    from playwright.sync_api import expect

    url, ctx, _ = hub
    page = open_page(browser, url)
    tab(page, "X/Y grid")
    page.locator("#grid-y-values textarea, #grid-y-values input").first.fill("2, 5")
    set_number(page, "grid-steps", 4)
    page.locator("#grid-button").click()
    expect(page.locator("#grid-image img")).to_be_visible(timeout=LONG)
    expect(page.locator("#grid-info")).to_contain_text("4 cells", timeout=30_000)
    expect(page.locator("#grid-cells img")).to_have_count(4, timeout=30_000)
    shoot(page, shots, "06-xy-grid")
    calls = ctx.engine.stats["pipeline_calls"]
    page.locator("#grid-y-values textarea, #grid-y-values input").first.fill("1, 2, 3, 4, 5, 6, 7, 8, 9")
    page.locator("#grid-button").click()
    toast(page, "The grid has 18 cells; the limit is 16")
    assert ctx.engine.stats["pipeline_calls"] == calls
    page.context.close()


# ------------------------------------------------------------------------------------- leaderboard


def add_eval_results(ctx, folder: Path, checkpoint: str, hit: float, status: str) -> int:
    """A character-recognition run for `checkpoint` with its scored samples (2 tiers x 2 languages)."""
    from leaderboards.results import get_or_create_suite
    from leaderboards.schema import EvalRun, Sample, Score, utcnow

    rng = np.random.default_rng(len(checkpoint))
    items = [{"item_id": f"{tier}{i}", "language": lang, "text": f"{tier}{i} {lang}", "meta": {"tier": tier}}
             for tier in ("popular", "niche") for i in range(4) for lang in ("en", "ja")]
    image = folder / f"sample-{checkpoint}.png"
    portrait(image)
    with ctx.db.session() as s:
        suite = get_or_create_suite(s, "browser-characters", "b1", items)
        s.flush()
        ids = {(p.item_id, p.language): p.id for p in suite.prompts}
        for item in items:
            for seed in range(3):
                sample = Sample(cache_key=f"{checkpoint}-{item['item_id']}-{item['language']}-{seed}", checkpoint_id=checkpoint,
                                adapters="", suite_id=suite.id, prompt_id=ids[(item["item_id"], item["language"])],
                                item_id=item["item_id"], language=item["language"], prompt_text=item["text"], seed=seed,
                                settings_hash="h", checkpoint_version="v1", image_path=str(image))
                s.add(sample)
                s.flush()
                s.add(Score(sample_id=sample.id, judge_id="tagger", metric="character_hit", value=float(rng.random() < hit)))
        run = EvalRun(checkpoint_id=checkpoint, suite_id=suite.id, suite_name=suite.name, adapters="", status=status,
                      settings_hash="h", checkpoint_version="v1", n_generated=24,
                      finished_at=utcnow() if status == "complete" else None,
                      settings={"kind": "character_recognition", "judges": {"tagger": {"id": "tagger"}}})
        s.add(run)
        s.flush()
        return run.id


def board_text(page, board: str) -> str:
    return page.locator(f"#board-{board}").inner_text()


# The numbers of one board column in display order. Gradio 6's dataframe draws its rows as grid cells
# (aria-rowindex is the displayed order); a cell reads "★ 0.80 [0.70, 0.90]": the first number counts.
COLUMN_NUMBERS = """([board, title]) => {
    const root = document.querySelector('#board-' + board);
    const head = root && root.querySelector('th[title="' + title + '"]');
    if (!head) return [];
    const cells = [...root.querySelectorAll('[role=gridcell][aria-colindex="' + head.getAttribute('aria-colindex') + '"]')];
    cells.sort((a, b) => Number(a.getAttribute('aria-rowindex')) - Number(b.getAttribute('aria-rowindex')));
    return cells.map((c) => (c.innerText.match(/-?[0-9]+(\\.[0-9]+)?/) || [null])[0])
        .filter((t) => t !== null).map(Number);
}"""


def wait_for_sorted_column(page, board: str, title: str, descending: bool) -> list[float]:
    """Wait until the column reads in order (a cell reads "0.80 [0.70, 0.90]"), with two different
    values at least so that an unsorted column cannot pass; returns the numbers, top to bottom."""
    in_order = "v[i - 1] >= x" if descending else "v[i - 1] <= x"
    page.wait_for_function(
        f"""(args) => {{ const v = ({COLUMN_NUMBERS})(args);
            return v.length >= 2 && new Set(v).size >= 2 && v.every((x, i) => i === 0 || {in_order}); }}""",
        arg=[board, title], timeout=30_000)
    return page.evaluate(COLUMN_NUMBERS, [board, title])


def test_leaderboard_progress_polls_filters_sort_and_full_precision_csv(hub, browser, shots):
    from playwright.sync_api import expect
    from sqlalchemy import func, select

    from leaderboards.boards import BoardSource, board
    from leaderboards.schema import EvalRun, utcnow

    url, ctx, folder = hub
    add_eval_results(ctx, folder, "demo-multilingual", 0.8, "complete")
    running = add_eval_results(ctx, folder, "demo-english", 0.3, "running")
    with ctx.db.session() as s:
        total = s.scalar(select(func.count()).select_from(EvalRun))
        done = s.scalar(select(func.count()).select_from(EvalRun).where(EvalRun.status == "complete"))
    page = open_page(browser, url)
    tab(page, "Leaderboard")
    progress = page.locator("#eval-progress")
    expect(progress).to_contain_text(f"{done} of {total} eval runs done", timeout=30_000)
    expect(progress).to_contain_text("running: demo-english")
    expect(page.locator("#eval-progress-images img").first).to_be_visible(timeout=30_000)
    page.get_by_role("tab", name="Character recognition").click()
    expect(page.locator("#board-characters")).to_contain_text("demo-multilingual", timeout=60_000)
    assert "demo-english" not in board_text(page, "characters")  # a running run is not on the board yet
    # The filters are pre-filled with what is shown.
    language_filter = page.locator("#filter-characters-language")
    expect(language_filter).to_contain_text("ja")
    # The run finishes: the 10 s poll shows it and the board fills, without a reload.
    with ctx.db.session() as s:
        run = s.get(EvalRun, running)
        run.status, run.finished_at = "complete", utcnow()
    expect(progress).to_contain_text(f"{done + 1} of {total} eval runs done", timeout=25_000)
    expect(page.locator("#board-characters")).to_contain_text("demo-english", timeout=30_000)
    shoot(page, shots, "07-leaderboard")
    # Narrow a filter: the Japanese column goes away.
    language_filter.locator(".token", has_text="ja").locator(".token-remove").click()
    expect(page.locator("#board-characters th[title='ja']")).to_have_count(0, timeout=30_000)
    expect(page.locator("#board-characters th[title='en']")).to_have_count(1)
    # Sort by a column from its header menu.
    header = page.locator("#board-characters th[title='en']")
    header.hover()
    header.locator("button[aria-label='Open cell menu']").click()
    page.get_by_text("Sort ascending", exact=True).click()
    ascending = wait_for_sorted_column(page, "characters", "en", descending=False)
    header.hover()
    header.locator("button[aria-label='Open cell menu']").click()
    page.get_by_text("Sort descending", exact=True).click()
    assert wait_for_sorted_column(page, "characters", "en", descending=True) == sorted(ascending, reverse=True)
    # The CSV: full precision, the filter applied, English column names.
    with page.expect_download() as download:
        page.locator("#download-characters").click()
    path = download.value.path()
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["language"] for row in rows} == {"all", "en"}
    full = board("characters").table(BoardSource(ctx.db))
    expected = full[(full["language"] == "en") & (full["group"] == "all")].set_index("checkpoint")["value"]
    for row in rows:
        if row["language"] == "en" and row["group"] == "all":
            assert float(row["value"]) == pytest.approx(expected[row["checkpoint"]], abs=1e-12)
    assert any(len(row["value"].split(".")[-1]) > 4 for row in rows)  # not rounded for display
    page.context.close()


# ------------------------------------------------------------------------------------------ submit


def test_submission_registers_and_queues(hub, browser, shots):
    from playwright.sync_api import expect
    from safetensors.numpy import save_file

    url, ctx, _ = hub
    uploads = ctx.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.zeros(4, dtype=np.float32)}, str(uploads / "browser-model.safetensors"))
    page = open_page(browser, url)
    tab(page, "Submit")
    page.locator("#submit-id input, #submit-id textarea").first.fill("browser-model")
    page.locator("#submit-name input, #submit-name textarea").first.fill("Browser Model")
    page.locator("#submit-kind").get_by_text("Single .safetensors file").click()
    page.locator("#submit-location input, #submit-location textarea").first.fill("browser-model.safetensors")
    page.locator("#submit-register").click()
    expect(page.locator("#submit-register-message")).to_contain_text("Registered browser-model", timeout=60_000)
    page.locator("#submit-run-limit input").fill("2")
    page.locator("#submit-queue").click()
    expect(page.locator("#submit-queue-message")).to_contain_text("Queued run", timeout=60_000)
    expect(page.locator("#submit-runs")).to_contain_text("browser-model", timeout=30_000)
    shoot(page, shots, "08-submit")
    page.context.close()


def test_reference_gallery_upload(hub, browser, shots):
    from playwright.sync_api import expect

    url, ctx, folder = hub
    files = [str(portrait(folder / f"gallery-{i}.png", hair=(60 + 20 * i, 180, 190))) for i in range(3)]
    page = open_page(browser, url)
    tab(page, "Submit")
    page.locator("#gallery-suite input").fill("demo-characters")  # aqua_diva is a demo-world character
    page.locator("#gallery-suite input").press("Enter")
    # The character choices follow the suite: wait until the suite's characters are offered, then pick one.
    page.locator("#gallery-character input").click()
    option = page.get_by_role("option", name="aqua_diva", exact=True)
    expect(option).to_be_visible(timeout=LONG)
    option.click()
    expect(page.locator("#gallery-character input")).to_have_value("aqua_diva")
    page.locator("#gallery-files input[type=file]").set_input_files(files)
    page.locator("#gallery-save").click()
    expect(page.locator("#gallery-message")).to_contain_text("Saved 3 images", timeout=60_000)
    expect(page.locator("#gallery-table")).to_contain_text("aqua_diva")
    shoot(page, shots, "09-gallery")
    page.context.close()


# ---------------------------------------------------------------------------------------- languages


def test_language_menu_switches_the_page_in_place_and_is_remembered(hub, browser, shots):
    from playwright.sync_api import expect

    url, _, _ = hub
    page = open_page(browser, url)
    page.get_by_label("Prompt", exact=True).first.fill("typed before the switch")
    menu = page.locator("#language-menu")
    menu.locator("input").click()
    page.get_by_role("option", name="Español (traducción automática)").click()
    # The page turns Spanish in place (what was typed stays): every tab, the help, and the server's text.
    for name in ("Generar", "Editar", "Cuadrícula X/Y", "LoRA de personaje", "Clasificación", "Enviar"):
        expect(page.get_by_role("tab", name=name, exact=True).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Las traducciones distintas del inglés son automáticas")).to_be_visible()
    expect(page.locator("#generate-note")).to_contain_text("familia", timeout=30_000)
    expect(menu.locator("input")).to_have_value("Español (traducción automática)", timeout=30_000)
    expect(page.get_by_label("Prompt", exact=True).first).to_have_value("typed before the switch")
    assert "hub_lang=es" in page.evaluate("document.cookie")
    shoot(page, shots, "10-language-switch-es")
    page.reload(wait_until="domcontentloaded")  # remembered
    expect(page.get_by_role("tab", name="Editar", exact=True).first).to_be_visible(timeout=60_000)
    page.wait_for_function("() => window.__sakugaLanguage === 'es'", timeout=30_000)
    menu.locator("input").click()
    page.get_by_role("option", name="English").click()
    expect(page.get_by_role("tab", name="Edit", exact=True).first).to_be_visible(timeout=60_000)
    page.context.close()


def test_japanese_and_spanish_browsers_get_their_language_and_errors(hub, browser, shots):
    from playwright.sync_api import expect

    url, ctx, _ = hub
    page = open_page(browser, url, locale="ja-JP")
    for name in ("生成", "編集", "X/Yグリッド", "キャラクターLoRA", "アリーナ", "ランキング", "登録"):
        expect(page.get_by_role("tab", name=name, exact=True).first).to_be_visible()
    expect(page.get_by_label("ネガティブプロンプト")).to_be_visible()
    expect(page.locator("#language-menu input")).to_have_value("日本語 (機械翻訳)")
    tab(page, "編集")
    page.locator("#edit-button").click()
    toast(page, "先に編集する画像をアップロードしてください。")
    shoot(page, shots, "11-japanese", full_page=False)
    page.context.close()

    page = open_page(browser, url, locale="es-ES")
    expect(page.get_by_role("tab", name="Cuadrícula X/Y", exact=True).first).to_be_visible()
    tab(page, "Cuadrícula X/Y")
    expect(page.get_by_text("Cuadrícula de comparación con la misma semilla")).to_be_visible()
    page.locator("#grid-y-values textarea, #grid-y-values input").first.fill("1, 2, 3, 4, 5, 6, 7, 8, 9")
    page.locator("#grid-button").click()
    toast(page, "La cuadrícula tiene 18 celdas; el límite es 16. Usa menos valores.")
    shoot(page, shots, "12-spanish-grid-error", full_page=False)
    page.context.close()

    # ?lang= names an unknown code: a warning in the browser's language, the page stays usable.
    page = open_page(browser, url, locale="es-ES", path="?lang=xx")
    toast(page, "Código de idioma desconocido 'xx'")
    expect(page.get_by_role("tab", name="Generar", exact=True).first).to_be_visible()
    page.context.close()


# ------------------------------------------------------------------------------------- the filter


def test_withheld_image_shows_a_placeholder_and_the_reason(hub, browser, shots, tmp_path):
    """The committed demo tagger as the hub's content filter, at `general`: a demo-world swimsuit portrait
    (`sensitive`) edited by demo-edit, which keeps the outfit, comes back as the placeholder and the reason."""
    from playwright.sync_api import expect

    from demoworld import hooks

    url, ctx, _ = hub
    content_filter = ctx.content_filter
    saved = content_filter.max_rating
    content_filter.max_rating = "general"
    try:
        swimsuit = tmp_path / "swimsuit.png"
        hooks.render_input({"character": "aqua_diva", "seed": 100, "size": 64, "outfit": "swimsuit"}).save(swimsuit)
        page = open_page(browser, url)
        tab(page, "Edit")
        page.locator("#edit-checkpoint input").click()
        page.get_by_role("option", name="Demo edit (demo world)").click()
        expect(page.locator("#edit-checkpoint input")).to_have_value("Demo edit (demo world)")
        upload_to_editor(page, swimsuit)
        page.locator("#edit-prompt textarea").fill("make her smile")
        set_number(page, "edit-steps", 8)
        page.locator("#edit-button").click()
        expect(page.locator("#edit-gallery img").first).to_be_visible(timeout=LONG)
        expect(page.locator("#edit-gallery")).to_contain_text("Withheld by the content filter: rated sensitive", timeout=30_000)
        shoot(page, shots, "13-withheld")
        newest = max((ctx.data_dir / "outputs").rglob("*.png"), key=lambda p: p.stat().st_mtime)
        pixels = np.asarray(Image.open(newest).convert("RGB"), dtype=np.float32)
        assert np.abs(np.diff(pixels[:8, :8], axis=0)).max() < 10  # the stored file is the smooth placeholder
        page.context.close()
    finally:
        content_filter.max_rating = saved


# -------------------------------------------------------------------------------------- the arena


def test_arena_in_japanese_keyboard_vote_and_undo(hub, browser, shots):
    from playwright.sync_api import expect
    from sqlalchemy import select

    from hub.ui.arena_tab import arena_candidates
    from leaderboards.results import get_or_create_suite
    from leaderboards.schema import Sample, Vote

    url, ctx, folder = hub
    prompt = "hatsune miku, twintails, smile"
    with ctx.db.session() as s:  # stored eval samples: the battle is served from them, no generation
        suite = get_or_create_suite(s, "characters", "browser-arena", [{"item_id": "miku", "language": "en", "text": prompt,
                                                                        "meta": {"tier": "popular"}}])
        for model, hair in zip(arena_candidates(ctx), [(40, 190, 190), (230, 90, 150)]):
            path = portrait(folder / f"arena-{model}.png", hair=hair)
            s.add(Sample(cache_key=f"browser-arena-{model}", checkpoint_id=model, adapters="", suite_id=suite.id, item_id="miku",
                         language="en", prompt_text=prompt, seed=1, settings_hash="x", image_path=str(path)))
    page = open_page(browser, url, locale="ja-JP")
    tab(page, "アリーナ")
    page.locator("#arena-prompt textarea").fill(prompt)
    page.locator("#arena-new-battle").click()
    expect(page.locator("#arena-vote-model_b")).to_be_enabled(timeout=60_000)
    expect(page.locator("#arena-vote-model_a")).to_contain_text("Aが良い  [1]")
    page.wait_for_function("() => [...document.querySelectorAll('.arena-image img')].every(i => i.complete && i.naturalWidth > 0)")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("2")
    expect(page.locator("#arena-result")).to_contain_text("Bが良い に投票しました", timeout=30_000)
    undo = page.locator("#arena-undo")
    expect(undo).to_contain_text("投票を取り消す（30秒以内）")
    shoot(page, shots, "14-arena-japanese")
    undo.click()
    expect(page.locator("#arena-result")).to_contain_text("投票を取り消しました", timeout=30_000)
    from leaderboards.schema import Battle

    with ctx.db.session() as s:
        (vote,) = list(s.scalars(select(Vote).order_by(Vote.id.desc()).limit(1)))
        battle = s.get(Battle, vote.battle_id)
    assert vote.undone_at is not None and vote.outcome == "model_b"
    assert battle.image_source == "samples"  # served from the stored eval samples, nothing generated
    page.get_by_role("button", name="あなた専用のランキング").click()
    page.locator("#arena-personal-show").click()
    expect(page.locator("#arena-personal-note")).to_contain_text("20票で表示されます", timeout=30_000)
    page.context.close()
