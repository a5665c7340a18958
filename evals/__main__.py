"""Command line: run a suite against a checkpoint, report its results, register checkpoints, queue runs.

    python -m evals run --checkpoint ID --suite SUITE [--limit N] [--seeds N] [--languages en ja ...]
                        [--lora ID:WEIGHT ...] [--judge ID ...] [--batch-size N] [--db URL] [--config PATH]
                        [--backend local|ray] [--workers N]   # ray: shards over Ray workers (docs/SCALING.md)
    python -m evals report --checkpoint ID [--suite SUITE] [--format table|json] [--db URL] [--config PATH]
    python -m evals suites                                  # list and validate the prompt suites
    python -m evals register ID SOURCE FAMILY [--name N] [--root DIR]   # hub:org/name[@rev] | folder: | file:
    python -m evals queue ID SUITE [--lora ID:WEIGHT ...] [--seeds N]   # the app's worker runs it
    python -m evals refresh ID                               # pin a hub: checkpoint to its newest commit
    python -m evals reproduce [--out FILE] [--seeds N --limit N]  # regenerate (or, reduced, check) the README's tables
    python -m evals gallery SUITE CHARACTER_ID IMAGE...      # store an author's reference gallery (3-20 images)
    python -m evals calibrate --judge ID --suite SUITE [--source render|galleries] [--seeds N] [--max-false-hits F]

`run` prints a progress bar on stderr and, as its last line on stdout,
`generated=N reused=M scored=K unjudged=U run_id=R status=complete`. Exit status 0 on success, 2 for bad
input (unknown checkpoint or suite, broken suite file, judge that fails to load), 1 for other failures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from core.keys import parse_adapters
from hub.errors import HubInputError

# Each command imports what it needs inside its function: `--help` and a refused argument answer in
# about 50 ms, where importing the engine side (torch, diffusers) first would take 2.6 s.


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals", description="Sakuga Hub evals")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="generate and score a prompt suite for a checkpoint")
    run.add_argument("--checkpoint", required=True, help="checkpoint id from the hub config")
    run.add_argument("--suite", required=True, help="suite name (see `python -m evals suites`)")
    run.add_argument("--limit", type=int, default=None, help="only the first N items of the suite")
    run.add_argument("--seeds", type=int, default=2, help="seeds per item (derived from suite, item and index), default 2")
    run.add_argument("--languages", nargs="+", default=None, help="languages to run (default: all of the suite)")
    run.add_argument("--lora", action="append", default=[], metavar="ID:WEIGHT", help="apply a registered LoRA")
    run.add_argument("--judge", action="append", default=[], metavar="ID", help="use this configured judge for its role")
    run.add_argument("--batch-size", type=int, default=4, help="images per engine call and per transaction")
    run.add_argument("--steps", type=int, default=None, help="override the checkpoint's default steps")
    run.add_argument("--size", type=int, default=None, help="override width and height (square)")
    run.add_argument("--db", default=None, help="SQLAlchemy URL (default: HUB_DATABASE_URL or the config's)")
    run.add_argument("--config", default=None, help="hub config (default: spaces_config.yaml)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--backend", choices=("local", "ray"), default=None,
                     help="where to generate: this process, or engine replicas on Ray (default: the config's engine.backend)")
    run.add_argument("--workers", type=int, default=None,
                     help="with --backend ray: shards generated at once, each on its own replica (default: engine.ray.eval_workers)")

    report = sub.add_parser("report", help="print the results of a checkpoint")
    report.add_argument("--checkpoint", required=True)
    report.add_argument("--suite", default=None)
    report.add_argument("--lora", default=None, metavar="ID:WEIGHT,...", help="results with these adapters only")
    report.add_argument("--format", choices=("table", "json"), default="table")
    report.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds for the intervals")
    report.add_argument("--db", default=None)
    report.add_argument("--config", default=None)

    sub.add_parser("suites", help="list and validate the prompt suites")

    register = sub.add_parser("register", help="register a model author's checkpoint")
    register.add_argument("id")
    register.add_argument("source", help="hub:org/name[@revision] | folder:PATH | file:PATH.safetensors")
    register.add_argument("family")
    register.add_argument("--name", default=None)
    register.add_argument("--root", action="append", default=[], help="allowed folder for local sources (repeatable)")
    register.add_argument("--db", default=None)
    register.add_argument("--config", default=None)

    queue = sub.add_parser("queue", help="queue an eval run for the app's worker")
    queue.add_argument("id")
    queue.add_argument("suite")
    queue.add_argument("--lora", action="append", default=[], metavar="ID:WEIGHT")
    queue.add_argument("--seeds", type=int, default=2)
    queue.add_argument("--db", default=None)
    queue.add_argument("--config", default=None)

    refresh = sub.add_parser("refresh", help="pin a hub: checkpoint to the newest commit of its branch (a new version)")
    refresh.add_argument("id")
    refresh.add_argument("--db", default=None)
    refresh.add_argument("--config", default=None)
    reproduce = sub.add_parser("reproduce", help="regenerate the README's measured tables from the committed weights")
    reproduce.add_argument("--out", type=Path, default=None, help="also write the tables (markdown) here")
    reproduce.add_argument("--db", default=None)
    reproduce.add_argument("--config", default=None)
    reproduce.add_argument("--no-progress", action="store_true")
    reproduce.add_argument("--seeds", type=int, default=None, help="seeds per item for every row (a reduced plan)")
    reproduce.add_argument("--limit", type=int, default=None, help="items per suite (a reduced plan)")
    reproduce.add_argument("--tables", nargs="+", default=None, metavar="ID",
                           help="only these tables (ids as in the README's `<!-- reproduce:ID -->` markers)")

    gallery = sub.add_parser("gallery", help="store an author's reference gallery of one character (3-20 images)")
    gallery.add_argument("suite")
    gallery.add_argument("character_id")
    gallery.add_argument("images", nargs="+", metavar="IMAGE")
    gallery.add_argument("--config", default=None)

    calibrate = sub.add_parser("calibrate", help="calibrate a name or reference judge on images of known characters")
    calibrate.add_argument("--judge", required=True, help="a configured judge of kind name or reference")
    calibrate.add_argument("--suite", required=True, help="a character suite")
    calibrate.add_argument("--source", choices=("render", "galleries"), default=None,
                           help="known truth: demo-world renders (default with a demo world) or authors' galleries")
    calibrate.add_argument("--seeds", type=int, default=4, help="renders per character (render source)")
    calibrate.add_argument("--max-false-hits", type=float, default=0.05, help="highest false-hit rate allowed")
    calibrate.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                           help="render options, cycled over the seeds (e.g. background=blue,expression=sad)")
    calibrate.add_argument("--format", choices=("table", "json"), default="table")
    calibrate.add_argument("--config", default=None)
    return parser


def _reproduce(args: argparse.Namespace) -> int:
    from evals.reproduce import TABLES, reproduce, select_tables

    tables = TABLES if args.tables is None else select_tables(args.tables)
    runner = _runner(args)
    try:
        result = reproduce(runner, tables, progress=not args.no_progress, seeds=args.seeds, limit=args.limit)
    finally:
        runner.engine.shutdown()
    print(result.text)
    if args.out is not None:
        args.out.write_text(result.text + "\n", encoding="utf-8")
    if not result.ok:  # a number on the board no longer reproduces: that is a failure, not a note
        print("reproduce: FAILED: " + "; ".join(result.failures), file=sys.stderr)
        return 1
    return 0


def _runner(args: argparse.Namespace):  # noqa: ANN202 - evals.runner.EvalRunner
    from evals.runner import build_runner

    backend, workers = getattr(args, "backend", None), getattr(args, "workers", None)
    if backend is None and workers is None:
        return build_runner(args.config, args.db)
    from hub.config import load_config

    config = load_config(args.config)
    if (backend or config.engine.backend) != "ray":
        if workers is not None:
            raise HubInputError("--workers needs --backend ray (or engine.backend: ray in the config)")
        return build_runner(args.config, args.db)
    from evals.distributed import ray_config
    from hub.engines import get_engine

    engine = get_engine(ray_config(config, workers=workers))  # joins (or starts) Ray: a bad address stops here
    return build_runner(args.config, args.db, engine=engine)


def _run(args: argparse.Namespace) -> int:
    from evals.plan import RunOptions

    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.size is not None:
        overrides["width"] = overrides["height"] = args.size
    options = RunOptions(
        checkpoint=args.checkpoint, suite=args.suite, adapters=parse_adapters(",".join(args.lora)), seeds=args.seeds,
        limit=args.limit, languages=tuple(args.languages) if args.languages else None, judges=tuple(args.judge),
        batch_size=args.batch_size, overrides=overrides,
    )
    runner = _runner(args)
    try:
        runner.check(options)  # bad input fails here, before a run is recorded or a model is loaded
        result = runner.run(options, progress=not args.no_progress)
    finally:
        runner.engine.shutdown()
    print(result.summary_line(), flush=True)
    return 0


def _report(args: argparse.Namespace) -> int:
    from core.keys import canonical_adapters
    from evals.report import build_report, format_table
    from hub.config import load_config
    from leaderboards.db import init_db

    db = init_db(args.db or load_config(args.config).resolved_database_url)
    adapters = canonical_adapters(args.lora) if args.lora is not None else None
    report = build_report(db, args.checkpoint, args.suite, adapters=adapters, num_bootstrap=args.bootstrap)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.format == "json" else format_table(report))
    return 0


def _register(args: argparse.Namespace) -> int:
    from evals.registration import register_checkpoint
    from hub.revisions import default_resolver

    runner = _runner(args)
    row = register_checkpoint(runner.db, args.id, args.source, args.family, resolver=default_resolver(),
                              display_name=args.name, allowed_roots=[Path(r) for r in args.root])
    pinned = f" at {row.revision[:12]}" if row.source.startswith("hub:") and row.revision else ""
    print(f"registered {row.id} ({row.family}) from {row.source}{pinned}")
    return 0


def _queue(args: argparse.Namespace) -> int:
    from evals.plan import RunOptions

    runner = _runner(args)
    run_id = runner.queue(RunOptions(checkpoint=args.id, suite=args.suite, adapters=parse_adapters(",".join(args.lora)),
                                     seeds=args.seeds))
    print(f"queued run {run_id}: {args.id} on {args.suite}")
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from hub.revisions import RevisionError

    runner = _runner(args)
    spec = runner.engine.checkpoint_spec(args.id)
    if spec.source_kind != "hub":
        raise HubInputError(f"{args.id!r} is not a hub: checkpoint; its version is its weights' hash")
    try:
        commit = runner.engine.registry.revision_resolver.resolve(spec.hub_repo, spec.pinned_revision)
    except RevisionError as err:
        raise HubInputError(str(err)) from None
    runner.engine.registry.revision_store.set(spec.id, commit)
    print(f"{spec.id} pinned to {commit}")
    return 0


def _gallery(args: argparse.Namespace) -> int:
    from evals.galleries import save_gallery
    from hub.config import load_config

    record = save_gallery(load_config(args.config).data_path, args.suite, args.character_id, args.images)
    print(f"gallery of '{record.character_id}' in suite '{record.suite}': {record.n_images} images, "
          f"sha256 {record.sha256} at {record.path}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from evals.calibrate import run_calibration
    from hub.config import load_config
    from hub.demo_hooks import load_demo_hooks

    config = load_config(args.config)
    variants = []
    for text in args.variant:
        pairs = [part.partition("=") for part in text.split(",") if part.strip()]
        if any(not sep or not key.strip() for key, sep, _ in pairs):
            raise HubInputError(f"--variant {text!r}: expected KEY=VALUE[,KEY=VALUE]")
        variants.append({key.strip(): value.strip() for key, _, value in pairs})
    result = run_calibration(config, args.judge, args.suite, data_dir=config.data_path, source=args.source, seeds=args.seeds,
                             max_false_hits=args.max_false_hits, render_input=load_demo_hooks(config).render_input,
                             variants=variants or ({},))
    print(json.dumps(asdict(result), indent=2) if args.format == "json" else "\n".join(result.report_lines()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("EVALS_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    args = _parser().parse_args(argv)
    commands = {"run": _run, "report": _report, "register": _register, "queue": _queue, "refresh": _refresh,
                "reproduce": _reproduce, "gallery": _gallery, "calibrate": _calibrate}
    try:
        if args.command in commands:
            return commands[args.command](args)
        from evals.suites import main as suites_main

        return suites_main()
    except KeyError as exc:
        print(f"error: unknown checkpoint {exc}", file=sys.stderr)
        return 2
    except HubInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # config errors (ConfigError is a ValueError) and anything unexpected
        from hub.config import ConfigError

        if isinstance(exc, ConfigError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
