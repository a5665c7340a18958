"""Command line: `python -m leaderboards <command> [--db URL]`.

  migrate                     create or upgrade the database to the newest schema
  ratings [--bootstrap N]     print the arena board (Bradley–Terry, 95% intervals)
  boards [--board ID]         print every leaderboard (or one), as the Leaderboard tab shows it
  export DIR                  write every board as CSV (full precision) into DIR
  export-votes --format csv|parquet --out FILE [--kind generate|edit]
                              the anonymised arena votes, as the public arenas publish theirs
  runs                        list eval runs and their status
  checkpoints                 list registered checkpoints and their versions

Registering checkpoints and queueing runs need the hub's model families and suites:
`python -m evals register|queue` (see `python -m evals --help`).
`--db` defaults to HUB_DATABASE_URL, else the SQLite file in HUB_DATA_DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from core.errors import InputError
from leaderboards import arena_votes, boards, submissions
from leaderboards.db import current_revision, head_revision, init_db, resolve_database_url


def _print(frame: pd.DataFrame, empty: str) -> None:
    if frame.empty:
        print(empty)
        return
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250):
        print(frame.to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leaderboards", description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="SQLAlchemy database URL (default: HUB_DATABASE_URL or the data dir's SQLite file)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or upgrade the database schema")
    ratings = commands.add_parser("ratings", help="print the arena board")
    ratings.add_argument("--bootstrap", type=int, default=100)
    ratings.add_argument("--min-battles", type=int, default=30)
    show = commands.add_parser("boards", help="print the leaderboards")
    show.add_argument("--board", choices=[b.id for b in boards.BOARDS], default=None)
    export = commands.add_parser("export", help="write the boards as CSV files")
    export.add_argument("directory", type=Path)
    export_votes = commands.add_parser("export-votes", help="write the anonymised arena votes (CSV or Parquet)")
    export_votes.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export_votes.add_argument("--out", type=Path, required=True)
    export_votes.add_argument("--kind", choices=["generate", "edit"], default=None, help="battle kind (default: both)")
    commands.add_parser("runs", help="list eval runs")
    commands.add_parser("checkpoints", help="list registered checkpoints")
    for moved in ("register", "queue"):
        commands.add_parser(moved, help=f"moved: python -m evals {moved}", add_help=False).add_argument("rest", nargs="*")
    # Also accept --db after the command (python -m leaderboards ratings --db URL).
    for sub in commands.choices.values():
        sub.add_argument("--db", dest="db_after", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)
    if args.command in ("register", "queue"):
        print(f"error: '{args.command}' moved to `python -m evals {args.command}` (it needs the hub's families and suites)",
              file=sys.stderr)
        return 2
    url = args.db_after or args.db or resolve_database_url()
    try:
        db = init_db(url)
    except Exception as err:  # noqa: BLE001 - a CLI reports, it does not trace
        print(f"error: cannot open or migrate the database: {err}", file=sys.stderr)
        return 2
    try:
        source = boards.BoardSource(db)
        if args.command == "migrate":
            print(f"database at revision {current_revision(db.engine)} (head {head_revision()})")
        elif args.command == "ratings":
            board = boards.arena_board(db, num_bootstrap=args.bootstrap, min_battles=args.min_battles)
            _print(board.drop(columns=["component"]) if not board.attrs.get("disconnected") else board, "No arena votes yet.")
        elif args.command == "boards":
            for spec in boards.BOARDS:
                if args.board in (None, spec.id):
                    print(f"# {spec.title}")
                    _print(spec.display(spec.table(source)), spec.empty)
                    print()
        elif args.command == "export":
            for spec in boards.BOARDS:
                print(boards.export_csv(spec.table(source), args.directory, spec.id))
            print(boards.export_csv(boards.sampling_table(db), args.directory, "sampling"))
        elif args.command == "export-votes":
            print(arena_votes.export_votes(db, args.out, args.format, kind=args.kind))
        elif args.command == "runs":
            _print(submissions.runs_table(db), "No eval runs yet.")
        elif args.command == "checkpoints":
            _print(submissions.checkpoints_table(db), "No checkpoints yet.")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
