"""Files for people: CSV and Excel exports that a spreadsheet cannot turn into formulas.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as
a formula by Excel and LibreOffice (CSV/formula injection). Such cells get a leading
apostrophe, which spreadsheets show as text and do not evaluate; numbers stay numbers.
"""

from __future__ import annotations

import csv as csv_module
from pathlib import Path

import pandas as pd

__all__ = ["FORMULA_START", "neutralise", "write_table"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells cannot run as spreadsheet formulas.

    >>> neutralise(pd.DataFrame({"a": ["=1+1", "ok", "@SUM(A1)"]}))["a"].tolist()
    ["'=1+1", 'ok', "'@SUM(A1)"]
    """
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if col.dtype == object or isinstance(col.dtype, pd.StringDtype) or isinstance(col.dtype, pd.CategoricalDtype):
            text = col.astype("str")
            risky = text.str.startswith(FORMULA_START).fillna(False)
            if risky.any():
                out[c] = text.where(~risky, "'" + text)
    return out


def write_table(df: pd.DataFrame, path: str | Path, *, sheet: str = "data", xlsx: bool = True) -> list[Path]:
    """Write ``df`` as ``path`` .csv and .xlsx (formula-safe); returns the files written.

    ``xlsx=False`` writes only the CSV (for tables that may outgrow a worksheet, such as a replay).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    safe = neutralise(df)
    csv = p.with_suffix(".csv")
    # Quote every text field: a bare carriage return inside a value would otherwise split the row.
    safe.to_csv(csv, index=False, encoding="utf-8-sig", quoting=csv_module.QUOTE_NONNUMERIC)
    if not xlsx:
        return [csv]
    naive = safe.copy()
    for c in naive.columns:  # Excel has no time zones
        if isinstance(naive[c].dtype, pd.DatetimeTZDtype):
            naive[c] = naive[c].dt.tz_localize(None)
    naive.to_excel(p.with_suffix(".xlsx"), index=False, sheet_name=sheet[:31], engine="openpyxl")
    return [csv, p.with_suffix(".xlsx")]
