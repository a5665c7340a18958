"""Command line: `python -m leaderboards <command> [--db URL]`.

  migrate                     create or upgrade the database to the newest schema
  ratings [--bootstrap N]     print the arena board (Bradley–Terry, 95% intervals)
  boards                      print the character and multilingual boards
  register ID SOURCE FAMILY   register a checkpoint (SOURCE: hub:org/name | folder:PATH | file:PATH.safetensors)
  queue ID SUITE              queue an eval run
  runs                        list eval runs and their status
  export DIR                  write every board as CSV into DIR
  export-votes --format csv|parquet --out FILE [--kind generate|edit]
                              the anonymised arena votes (counted votes only; no session or IP data)

`--db` defaults to HUB_DATABASE_URL, else the SQLite file in HUB_DATA_DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from hub.errors import HubInputError
from leaderboards import boards, submissions
from leaderboards.db import current_revision, head_revision, init_db, resolve_database_url


def _families() -> list[str]:
    try:
        from hub.families import FAMILIES

        return sorted(FAMILIES)
    except ImportError:  # pragma: no cover - hub is part of this repository
        return ["flux2-klein", "instruct-pix2pix", "qwen-image-edit", "sd15", "sdxl", "z-image"]


def _print(frame: pd.DataFrame, empty: str) -> None:
    if frame.empty:
        print(empty)
        return
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        print(frame.to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leaderboards", description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="SQLAlchemy database URL (default: HUB_DATABASE_URL or the data dir's SQLite file)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or upgrade the database schema")
    ratings = commands.add_parser("ratings", help="print the arena board")
    ratings.add_argument("--bootstrap", type=int, default=100)
    ratings.add_argument("--min-battles", type=int, default=30)
    commands.add_parser("boards", help="print the character and multilingual boards")
    register = commands.add_parser("register", help="register a checkpoint")
    register.add_argument("id")
    register.add_argument("source")
    register.add_argument("family")
    register.add_argument("--name")
    register.add_argument("--root", action="append", default=[], help="allowed folder for local sources (repeatable)")
    queue = commands.add_parser("queue", help="queue an eval run")
    queue.add_argument("id")
    queue.add_argument("suite")
    queue.add_argument("--adapters", default="")
    commands.add_parser("runs", help="list eval runs")
    export = commands.add_parser("export", help="write the boards as CSV files")
    export.add_argument("directory", type=Path)
    export_votes = commands.add_parser("export-votes", help="write the anonymised arena votes (CSV or Parquet)")
    export_votes.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export_votes.add_argument("--out", type=Path, required=True)
    export_votes.add_argument("--kind", choices=["generate", "edit"], default=None, help="battle kind (default: both)")
    # Also accept --db after the command (python -m leaderboards ratings --db URL).
    for sub in commands.choices.values():
        sub.add_argument("--db", dest="db_after", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    url = args.db_after or args.db or resolve_database_url()

    try:
        db = init_db(url)
    except Exception as err:  # noqa: BLE001 - a CLI reports, it does not trace
        print(f"error: cannot open or migrate the database: {err}", file=sys.stderr)
        return 2
    try:
        if args.command == "migrate":
            print(f"database at revision {current_revision(db.engine)} (head {head_revision()})")
        elif args.command == "ratings":
            board = boards.arena_board(db, num_bootstrap=args.bootstrap, min_battles=args.min_battles)
            _print(board.drop(columns=["component"]) if not board.attrs.get("disconnected") else board, "No arena votes yet.")
        elif args.command == "boards":
            print("# character recognition")
            _print(boards.character_board(db, include_totals=True), "No character results yet.")
            print("\n# multilingual fidelity")
            _print(boards.multilingual_board(db), "No multilingual results yet.")
        elif args.command == "register":
            row = submissions.register_checkpoint(
                db, args.id, args.source, args.family, families=_families(), display_name=args.name,
                allowed_roots=[Path(r) for r in args.root],
            )
            print(f"registered {row.id} ({row.family}) from {row.source}")
        elif args.command == "queue":
            run = submissions.queue_eval(db, args.id, args.suite, adapters=args.adapters)
            print(f"queued run {run.id}: {run.checkpoint_id} on {run.suite_name}")
        elif args.command == "runs":
            _print(submissions.runs_table(db), "No eval runs yet.")
        elif args.command == "export":
            for name, frame in (
                ("arena", boards.arena_board(db)),
                ("characters", boards.character_board(db, include_totals=True)),
                ("multilingual", boards.multilingual_board(db)),
                ("sampling", boards.sampling_table(db)),
            ):
                print(boards.export_csv(frame, args.directory, name))
        elif args.command == "export-votes":
            from leaderboards.arena_votes import export_votes

            print(export_votes(db, args.out, args.format, kind=args.kind))
    except HubInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
