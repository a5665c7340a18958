"""Command line: run a suite against a checkpoint, or report its results.

    python -m evals run --checkpoint ID --suite SUITE [--limit N] [--seeds N] [--languages en ja ...]
                        [--lora ID:WEIGHT ...] [--judge ID ...] [--batch-size N] [--db URL] [--config PATH]
    python -m evals report --checkpoint ID [--suite SUITE] [--format table|json] [--db URL] [--config PATH]
    python -m evals suites            # list and validate the prompt suites

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
from typing import Sequence

from hub.errors import HubInputError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals", description="Sakuga Hub evals")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="generate and score a prompt suite for a checkpoint")
    run.add_argument("--checkpoint", required=True, help="checkpoint id from the hub config")
    run.add_argument("--suite", required=True, help="suite name (see `python -m evals suites`)")
    run.add_argument("--limit", type=int, default=None, help="only the first N items of the suite")
    run.add_argument("--seeds", type=int, default=2, help="seeds per prompt (0..N-1), default 2")
    run.add_argument("--languages", nargs="+", default=None, help="languages to run (default: all of the suite)")
    run.add_argument("--lora", action="append", default=[], metavar="ID:WEIGHT", help="apply a registered LoRA")
    run.add_argument("--judge", action="append", default=[], metavar="ID", help="use this configured judge for its role")
    run.add_argument("--batch-size", type=int, default=4, help="images per engine call and per transaction")
    run.add_argument("--steps", type=int, default=None, help="override the checkpoint's default steps")
    run.add_argument("--size", type=int, default=None, help="override width and height (square)")
    run.add_argument("--db", default=None, help="SQLAlchemy URL (default: HUB_DATABASE_URL or the config's)")
    run.add_argument("--config", default=None, help="hub config (default: spaces_config.yaml)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    report = sub.add_parser("report", help="print the results of a checkpoint")
    report.add_argument("--checkpoint", required=True)
    report.add_argument("--suite", default=None)
    report.add_argument("--lora", default=None, metavar="ID:WEIGHT,...", help="results with these adapters only")
    report.add_argument("--format", choices=("table", "json"), default="table")
    report.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds for the intervals")
    report.add_argument("--db", default=None)
    report.add_argument("--config", default=None)

    sub.add_parser("suites", help="list and validate the prompt suites")
    return parser


def _run(args: argparse.Namespace) -> int:
    from evals.runner import RunOptions, build_runner, parse_adapters

    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.size is not None:
        overrides["width"] = overrides["height"] = args.size
    options = RunOptions(
        checkpoint=args.checkpoint,
        suite=args.suite,
        adapters=parse_adapters(",".join(args.lora)),
        seeds=args.seeds,
        limit=args.limit,
        languages=tuple(args.languages) if args.languages else None,
        judges=tuple(args.judge),
        batch_size=args.batch_size,
        overrides=overrides,
    )
    engine = _LazyEngine(args.config)
    try:
        runner = build_runner(args.config, args.db, engine=engine)
        runner.check(options)  # bad input fails here, before a run is recorded or a model is loaded
        result = runner.run(options, progress=not args.no_progress)
    finally:
        engine.close()
    print(result.summary_line(), flush=True)
    return 0


class _LazyEngine:
    """Creates the engine on first use, so `run` fails fast on bad input without loading models."""

    def __init__(self, config_path: str | None):
        self._config_path = config_path
        self._engine = None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    def __getattr__(self, name: str):
        if self._engine is None:
            from hub.config import load_config
            from hub.engine import Engine

            self._engine = Engine(load_config(self._config_path))
        return getattr(self._engine, name)


def _report(args: argparse.Namespace) -> int:
    from hub.config import load_config
    from leaderboards.db import init_db

    from evals.report import build_report, format_table
    from evals.runner import format_adapters, parse_adapters

    url = args.db
    if url is None:
        url = load_config(args.config).resolved_database_url
    db = init_db(url)
    adapters = format_adapters(parse_adapters(args.lora)) if args.lora is not None else None
    report = build_report(db, args.checkpoint, args.suite, adapters=adapters, num_bootstrap=args.bootstrap)
    if args.format == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(format_table(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("EVALS_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "report":
            return _report(args)
        from evals.suites import main as suites_main

        return suites_main()
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
