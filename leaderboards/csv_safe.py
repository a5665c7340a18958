"""CSV cells that can never become spreadsheet formulas (OWASP CSV injection advice).

A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so a
spreadsheet shows it as text. Numbers stay numbers. Parquet keeps text as it is (no formulas there).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells and column names are neutralized."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralize_cell)
    out.columns = [neutralize_cell(str(c)) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path_or_buffer: str | Path | Any, **kwargs: Any) -> None:
    kwargs.setdefault("index", False)
    safe_frame(frame).to_csv(path_or_buffer, **kwargs)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return safe_frame(frame).to_csv(index=False).encode("utf-8")


def formula_cells(csv_text: str) -> list[tuple[int, int, str]]:
    """(row, column, cell) of every cell that starts like a formula (for tests of any CSV we write)."""
    return [
        (r, c, cell)
        for r, row in enumerate(csv.reader(io.StringIO(csv_text)))
        for c, cell in enumerate(row)
        if cell.startswith(FORMULA_PREFIXES)
    ]
