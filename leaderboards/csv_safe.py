"""CSV cells that can never become spreadsheet formulas (OWASP CSV injection advice).

The hub's CSV downloads (arena votes, boards) carry text that users typed: battle prompts, display
names. Opened in a spreadsheet, a cell such as `=HYPERLINK("http://x","click")` would run as a
formula. So every text cell (and column name) starting with `=`, `+`, `-`, `@`, a tab or a carriage
return gets a leading `'`, which spreadsheets show as text. Numbers stay numbers (a negative score is
not a formula); the text is still readable, with the quote. Parquet keeps text as it is (no formulas
there), so only CSV writers go through here.

Rows end in CRLF (RFC 4180). That is not cosmetic: with a "\n" terminator Python's csv writer (3.11)
leaves a cell holding a bare "\r" unquoted, and readers split the row there, so "x\r=cmd" would open a
new row whose first cell is a formula. With CRLF every cell holding "\r" or "\n" is quoted.

Plain data: stdlib and pandas only (see DESIGN.md, `leaderboards` imports nothing of the hub).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
LINE_TERMINATOR = "\r\n"  # see the module docstring: cells with a line break inside are then quoted
# What a number cell looks like in a CSV ("-0.25", "+3", "-1e-05"): a spreadsheet reads it as a number.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def neutralize_cell(value: Any) -> Any:
    """`value` with a leading `'` when it is text starting like a formula; anything else unchanged
    (numbers, dates, None: a spreadsheet never reads those as formulas)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _is_text_column(series: pd.Series) -> bool:
    """Columns that may hold user text: object, string and categorical ones."""
    dtype = series.dtype
    return dtype == object or pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells, column names and (text) index labels are neutralized; `frame` is untouched."""
    out = frame.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if _is_text_column(column):
            if isinstance(column.dtype, pd.CategoricalDtype):
                column = column.astype(object)
            out.isetitem(position, column.map(neutralize_cell))
    # A CSV header is text whatever the name's type, so names are neutralized as text.
    out.columns = [neutralize_cell(str(name)) for name in out.columns]
    if not isinstance(out.index, pd.MultiIndex) and out.index.dtype == object:
        out.index = out.index.map(neutralize_cell)
    return out


def write_csv(frame: pd.DataFrame, path_or_buffer: str | Path | Any, **kwargs: Any) -> None:
    """`frame.to_csv(path_or_buffer, **kwargs)` through `safe_frame` (index=False and CRLF rows unless asked)."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("lineterminator", LINE_TERMINATOR)
    safe_frame(frame).to_csv(path_or_buffer, **kwargs)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The safe CSV of `frame` (no index) as UTF-8 bytes, e.g. to hash or serve from memory."""
    return safe_frame(frame).to_csv(index=False, lineterminator=LINE_TERMINATOR).encode("utf-8")


def formula_cells(csv_text: str) -> list[tuple[int, int, str]]:
    """(row, column, cell) of every cell of `csv_text` that starts like a formula: empty for any CSV
    the hub writes (tests check its downloads with this). A plain number ("-0.25", a negative score
    written from a number column) is a number to a spreadsheet, not a formula, so it is not listed;
    "-1+2" or "-inf" is. Read the file with `newline=""` so a bare "\r" ends a row as a spreadsheet sees it."""
    return [
        (r, c, cell)
        for r, row in enumerate(csv.reader(io.StringIO(csv_text, newline="")))  # as a reader opens the file
        for c, cell in enumerate(row)
        if cell.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(cell)
    ]
