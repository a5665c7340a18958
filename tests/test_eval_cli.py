"""`python -m evals run|report` in subprocesses: CLI to database rows, rerun generates 0, a run killed
midway resumes without duplicates, bad input gives a clear message and exit status 2."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_eval_runner import write_world  # noqa: E402  (shared tiny world: suites + config)


@pytest.fixture(scope="module")
def prebuilt(tmp_path_factory):
    """The demo pipeline and demo tagger, built once and copied into each test's data dir (saves minutes)."""
    from hub.builtin import ensure_builtin_checkpoint

    from evals.judges.registry import ensure_demo_random_tagger

    root = tmp_path_factory.mktemp("prebuilt")
    write_world(root)
    data = root / "data"
    ensure_builtin_checkpoint("demo-random", data / "builtin")
    ensure_demo_random_tagger(data, root / "prompts")
    return data


@pytest.fixture()
def world(tmp_path, prebuilt, monkeypatch):
    import shutil

    config = write_world(tmp_path)
    shutil.copytree(prebuilt, tmp_path / "data")
    db_url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(tmp_path / "data"),
        "HUB_PROMPTS_DIR": str(tmp_path / "prompts"),
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("HUB_DATABASE_URL", None)
    for key in ("HUB_DATA_DIR", "HUB_PROMPTS_DIR"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    return {"config": str(config), "db": db_url, "env": env, "root": tmp_path}


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def evals_inproc(world, capsys, *args, check=True):
    """The same CLI entry point in this process (no interpreter start-up: keeps the suite fast)."""
    from evals.__main__ import main

    capsys.readouterr()
    code = main([*args, "--db", world["db"], "--config", world["config"]])
    out = capsys.readouterr()
    if check and code != 0:
        raise AssertionError(f"exit {code}\nstdout:\n{out.out}\nstderr:\n{out.err}")
    return Result(code, out.out, out.err)


def evals(world, *args, check=True, timeout=300):
    cmd = [sys.executable, "-m", "evals", *args, "--db", world["db"], "--config", world["config"]]
    proc = subprocess.run(cmd, cwd=REPO, env=world["env"], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def last_line(proc) -> dict[str, str]:
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("generated=")
    return dict(part.split("=", 1) for part in line.split())


def query(world, sql):
    engine = create_engine(world["db"])
    with engine.connect() as conn:
        rows = conn.execute(text(sql)).all()
    engine.dispose()
    return rows


def test_run_writes_rows_rerun_generates_zero_and_report(world, capsys):
    first = evals(world, "run", "--checkpoint", "demo-random", "--suite", "tiny-chars", "--seeds", "1", "--languages", "en", "ja")
    stats = last_line(first)
    assert stats["generated"] == "6" and stats["reused"] == "0" and stats["status"] == "complete"
    assert "generate demo-random" in first.stderr  # the progress bar
    assert query(world, "select count(*) from samples")[0][0] == 6
    assert query(world, "select status, n_generated from eval_runs") == [("complete", 6)]
    assert query(world, "select count(*) from scores where metric = 'character_hit'")[0][0] == 4  # shrek: no judge

    again = last_line(evals_inproc(world, capsys, "run", "--checkpoint", "demo-random", "--suite", "tiny-chars", "--seeds", "1", "--languages", "en", "ja"))
    assert again["generated"] == "0" and again["reused"] == "6"
    assert query(world, "select count(*) from samples")[0][0] == 6

    report = json.loads(evals_inproc(world, capsys, "report", "--checkpoint", "demo-random", "--format", "json").stdout)
    suite = report["suites"]["tiny-chars"]
    hits = query(world, "select s.language, sc.value from samples s join scores sc on sc.sample_id = s.id "
                        "where sc.metric = 'character_hit'")
    ja = [value for language, value in hits if language == "ja"]
    assert suite["by_language"]["ja"]["hit_rate"]["mean"] == pytest.approx(sum(ja) / len(ja))
    assert {"lower", "upper", "n", "n_items", "gap_to_english"} <= set(suite["by_language"]["ja"]["hit_rate"])
    assert set(suite["by_group"]) == {"popular", "niche"} and suite["unjudged_items"] == ["shrek"]
    table = evals_inproc(world, capsys, "report", "--checkpoint", "demo-random", "--suite", "tiny-chars").stdout
    assert "hit_rate" in table and "popular" in table and "NOT JUDGED" in table and "shrek" in table


def test_multilingual_run_and_report(world, capsys):
    stats = last_line(evals_inproc(world, capsys, "run", "--checkpoint", "demo-random", "--suite", "tiny-ml", "--seeds", "1", "--no-progress"))
    assert stats["generated"] == "6"
    report = json.loads(evals_inproc(world, capsys, "report", "--checkpoint", "demo-random", "--suite", "tiny-ml", "--format", "json").stdout)
    by_language = report["suites"]["tiny-ml"]["by_language"]
    assert set(by_language) == {"en", "ja", "es"}
    for metric in ("tag_recall", "anchored_alignment", "crosslingual_cosine"):
        assert "gap_to_english" in by_language["es"][metric]


def test_killed_run_resumes_without_duplicates(world, capsys):
    args = ["run", "--checkpoint", "demo-random", "--suite", "tiny-chars", "--seeds", "4", "--batch-size", "1", "--steps", "4"]
    total = 3 * 3 * 4
    cmd = [sys.executable, "-m", "evals", *args, "--db", world["db"], "--config", world["config"]]
    proc = subprocess.Popen(cmd, cwd=REPO, env=world["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 240
        done = 0
        while time.time() < deadline:
            time.sleep(0.2)
            try:
                done = query(world, "select count(*) from samples")[0][0]
            except Exception:  # database not created yet
                continue
            if done >= 3 or proc.poll() is not None:
                break
        assert proc.poll() is None, "the run finished before it could be killed; make it longer"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    stored = query(world, "select count(*) from samples")[0][0]
    assert 3 <= stored < total
    assert query(world, "select status from eval_runs") == [("running",)]  # killed: never marked complete

    resumed = last_line(evals_inproc(world, capsys, *args, "--no-progress"))
    assert int(resumed["reused"]) == stored
    assert int(resumed["generated"]) == total - stored
    assert query(world, "select count(*), count(distinct cache_key) from samples")[0] == (total, total)
    # No duplicate scores either, and every judged sample has its score.
    assert query(world, "select count(*) from (select sample_id, judge_id, metric, count(*) c from scores group by 1, 2, 3 having c > 1)")[0][0] == 0
    assert query(world, "select count(*) from scores where metric = 'character_hit'")[0][0] == 2 * 3 * 4
    # No stray temporary files from the killed batch count as samples.
    pngs = list((world["root"] / "data" / "samples").rglob("*.png"))
    assert len([p for p in pngs if not p.name.endswith(".tmp.png")]) == total


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--checkpoint", "nope", "--suite", "tiny-chars"], "unknown checkpoint 'nope'"),
        (["run", "--checkpoint", "demo-random", "--suite", "nope"], "unknown suite 'nope'"),
        (["run", "--checkpoint", "demo-random", "--suite", "tiny-chars", "--languages", "ko"], "has no language 'ko'"),
        (["run", "--checkpoint", "demo-random", "--suite", "tiny-chars", "--judge", "broken-tagger"], "judge 'broken-tagger'"),
        (["report", "--checkpoint", "demo-random"], "no complete eval of 'demo-random'"),
    ],
)
def test_bad_input_exit_2_with_clear_message(world, capsys, args, message):
    proc = evals_inproc(world, capsys, *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    rows = query(world, "select status from eval_runs") if (world["root"] / "cli.sqlite3").exists() else []
    assert all(status != "complete" for (status,) in rows)


def test_broken_suite_file_is_reported(world, capsys):
    (world["root"] / "prompts" / "broken.yaml").write_text("suite: broken\nkind: [oops\n", encoding="utf-8")
    proc = evals_inproc(world, capsys, "run", "--checkpoint", "demo-random", "--suite", "tiny-chars", check=False)
    assert proc.returncode == 2
    assert "broken.yaml: bad YAML" in proc.stderr
