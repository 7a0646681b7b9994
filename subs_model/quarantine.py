"""The quarantine: why a row was set aside, the rows set aside, and the ledger of the rest.

:class:`QuarantineReason` is the fixed enum of reasons (in priority order; a row keeps its
first), ``Quarantine`` holds each table's quarantined rows as columns while the checks run, and
:func:`assemble_ledger` builds the :class:`Ledger` of accepted rows with its ``quarantine`` frame
(file, line, table, column, reason, message, raw row) and ``load_summary``.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import LedgerError
from .ledger import TIMESTAMP_COLUMNS, Ledger
from .money import decimal_rubles
from .workers import workers


class QuarantineReason(enum.StrEnum):
    """Why a row was quarantined (checked in this order; a row gets its first reason)."""

    EMPTY_REQUIRED = "empty_required"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_DATE = "bad_date"
    BAD_BOOL = "bad_bool"
    UNKNOWN_SKU = "unknown_sku"
    UNKNOWN_EDITION = "unknown_edition"
    NON_NUMERIC_AMOUNT = "non_numeric_amount"
    NEGATIVE_AMOUNT = "negative_amount"
    TOO_MANY_DECIMALS = "too_many_decimals"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    AMOUNT_MISSING = "amount_missing"
    STAGE_MISSING = "stage_missing"
    STAGE_OUT_OF_ORDER = "stage_out_of_order"
    ACT_MISSING = "act_missing"
    CODE_MISSING = "code_missing"
    TICKET_ON_NON_UPGRADE = "ticket_on_non_upgrade"
    UPGRADE_WITHOUT_TARGET = "upgrade_without_target"
    UPGRADE_TARGET_NOT_RENEWAL = "upgrade_target_not_renewal"
    LEGACY_END_BEFORE_START = "legacy_end_before_start"
    ACTIVATION_WITHOUT_TIMESTAMP = "activation_without_timestamp"
    DUPLICATE_LICENSE_ID = "duplicate_license_id"
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    DUPLICATE_CODE = "duplicate_code"
    DUPLICATE_ACT_NUMBER = "duplicate_act_number"
    DUPLICATE_FEATURE_ID = "duplicate_feature_id"
    UNKNOWN_LICENSE = "unknown_license"
    REFERENCES_QUARANTINED = "references_quarantined"


R = QuarantineReason
PRIORITY = {r.value: i for i, r in enumerate(QuarantineReason)}
MESSAGES = {
    R.EMPTY_REQUIRED: "required value is empty; fill it in the export",
    R.BAD_TIMESTAMP: "not an ISO 8601 timestamp from 1678-01-01 to 2261-12-31 (e.g. 2026-03-15T10:00:00+03:00); day/month order is never guessed",
    R.BAD_DATE: "not a date YYYY-MM-DD",
    R.BAD_BOOL: "not true/false",
    R.UNKNOWN_SKU: "sku must be subscription, renewal or upgrade",
    R.UNKNOWN_EDITION: "edition must be full or basic",
    R.NON_NUMERIC_AMOUNT: "amount is not a number in rubles (e.g. 3200.00)",
    R.NEGATIVE_AMOUNT: "amount is negative",
    R.TOO_MANY_DECIMALS: "amount has more than 2 decimals (kopecks)",
    R.AMOUNT_OUT_OF_RANGE: "amount is over 9999999999999999.99 rubles (16 digits before the point); check the value",
    R.AMOUNT_MISSING: "the order is paid but has no amount",
    R.STAGE_MISSING: "a later stage is filled while an earlier one is empty (R9)",
    R.STAGE_OUT_OF_ORDER: "a later stage is dated before an earlier one (R9)",
    R.ACT_MISSING: "the order is paid but has no act number",
    R.CODE_MISSING: "the code is issued but the code is empty",
    R.TICKET_ON_NON_UPGRADE: "ticket_at is only for upgrades",
    R.UPGRADE_WITHOUT_TARGET: "an upgrade must name the renewal's act number (upgrade_of_act)",
    R.UPGRADE_TARGET_NOT_RENEWAL: "upgrade_of_act names an act of an order that is not a renewal",
    R.LEGACY_END_BEFORE_START: "valid_until is before start",
    R.ACTIVATION_WITHOUT_TIMESTAMP: "activated_at is empty",
    R.DUPLICATE_LICENSE_ID: "license_id appears more than once with different content",
    R.DUPLICATE_ORDER_ID: "order_id appears more than once with different content",
    R.DUPLICATE_CODE: "the same code is on more than one order",
    R.DUPLICATE_ACT_NUMBER: "the same act number is on more than one order",
    R.DUPLICATE_FEATURE_ID: "feature_id appears more than once with different content",
    R.UNKNOWN_LICENSE: "license_id is not in licenses",
    R.REFERENCES_QUARANTINED: "refers to a row that was quarantined",
}


def source_lines(path: Path | None, n: int) -> np.ndarray:
    # CSV: header is line 1, so row i is line i + 2 (exports carry no embedded newlines);
    # Parquet: the row number.
    if path is not None and path.suffix.lower() in (".csv", ".xlsx", ".xlsm"):  # a sheet's header is row 1 too
        return np.arange(n) + 2
    return np.arange(n) + 1


class Quarantine:
    """Quarantined rows as columns, one array per table: each row's first reason by priority
    (``NONE`` while the row is kept), the column it blames and its message (both as numbers
    into ``columns`` / ``messages``). No object per row: millions of bad rows stay cheap."""

    NONE = np.iinfo(np.int8).max

    def __init__(self, sizes: Mapping[str, int]) -> None:
        self.prio = {t: np.full(n, self.NONE, np.int8) for t, n in sizes.items()}
        self.col = {t: np.zeros(n, np.int16) for t, n in sizes.items()}
        self.msg = {t: np.zeros(n, np.int16) for t, n in sizes.items()}
        self.columns: list[str] = [""]
        self.messages: list[str] = [""]
        self._lock = threading.Lock()

    def _id(self, names: list[str], name: str) -> int:
        with self._lock:
            if name not in names:
                names.append(name)
            return names.index(name)

    def add(self, table: str, rows: np.ndarray, reason: R | str, column: str = "", message: str = "") -> None:
        reason = R(reason)
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return
        p = PRIORITY[reason.value]
        prio = self.prio[table]
        better = rows[p < prio[rows]]  # an earlier reason of the same or higher priority stays
        prio[better] = p
        self.col[table][better] = self._id(self.columns, column)
        self.msg[table][better] = self._id(self.messages, message or MESSAGES[reason])

    def rows_of(self, table: str) -> np.ndarray:
        return np.flatnonzero(self.prio[table] != self.NONE)

    def get(self, table: str, row: int) -> tuple[str, str, str]:
        """(reason, column, message) of a quarantined row."""
        return _REASONS[self.prio[table][row]], self.columns[self.col[table][row]], self.messages[self.msg[table][row]]


_REASONS = [r.value for r in QuarantineReason]


#: Bad rows turned into quarantine text per step: bounds the memory of the intermediate columns.
_RAW_CHUNK = 262_144


def raw_rows(sub: pd.DataFrame) -> Any:
    """``col=value; …`` of each row, empty values left out (an Arrow string array, built from
    whole columns at a time: no Python string per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pieces = []
    for c in sub.columns:
        v = sub[c] if isinstance(sub[c].dtype, pd.StringDtype) else sub[c].astype("str")
        arr = pa.array(v.array)
        arr = (arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr).cast(pa.large_string())
        keep = pc.fill_null(pc.not_equal(pc.utf8_trim_whitespace(arr), ""), False)
        named = pc.binary_join_element_wise(pa.scalar(c + "=", pa.large_string()), arr, pa.scalar("", pa.large_string()))
        pieces.append(pc.if_else(keep, named, pa.scalar(None, pa.large_string())))
    if not pieces:
        return pa.array([""] * len(sub), pa.large_string())
    # Empty values are null pieces, which the join skips: the values stay exactly as written.
    joined = pc.binary_join_element_wise(*pieces, pa.scalar("; ", pa.large_string()), null_handling="skip")
    return joined.cast(pa.large_string())


def accepted_rows(df: pd.DataFrame, parsed: dict[str, Any], drop: np.ndarray, tz: str) -> pd.DataFrame:
    """The rows of ``df`` not in ``drop``; timestamps as tz-aware instants. The raw frame stays as read."""
    keep_mask = np.ones(len(df), bool)
    keep_mask[drop] = False
    keep = np.flatnonzero(keep_mask)
    stamps = [c for c in df.columns if c in TIMESTAMP_COLUMNS and c in parsed]
    text = df.drop(columns=stamps)  # the text of timestamps is replaced by their instants
    out = text.copy(deep=False) if keep_mask.all() else text.iloc[keep]  # copy-on-write
    out = out.reset_index(drop=True)
    for c in stamps:
        ns = parsed[c][0] if keep_mask.all() else parsed[c][0][keep]
        out[c] = pd.DatetimeIndex(ns.view("datetime64[ns]"), tz="UTC").tz_convert(tz)
    if "_amount" in parsed and "amount_rub" in df.columns:  # the money policy: exact decimal rubles once read
        kop = parsed["_amount"][0] if keep_mask.all() else parsed["_amount"][0][keep]
        out["amount_rub"] = decimal_rubles(kop).array
    return out[list(df.columns)]


def assemble_ledger(raw, files, parsed, q: Quarantine, merged, source: str, on_bad_rows: str, tz: str) -> Ledger:
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        return _assemble_tables(raw, files, parsed, q, merged, source, on_bad_rows, tz, pool)


def _assemble_tables(raw, files, parsed, q: Quarantine, merged, source: str, on_bad_rows: str, tz: str, pool) -> Ledger:
    summary = []
    tables: dict[str, pd.DataFrame] = {}
    if on_bad_rows == "quarantine":  # the accepted rows of every table, side by side
        accepted = {name: pool.submit(accepted_rows, df, parsed[name], np.union1d(q.rows_of(name), merged.get(name, [])).astype(np.int64), tz)
                    for name, df in raw.items()}
    parts: dict[str, list[Any]] = {k: [] for k in ("file", "line", "table", "column", "reason", "message", "raw")}
    file_names: list[str] = []
    for t_i, (name, df) in enumerate(raw.items()):
        path = files.get(name)
        lines = source_lines(path, len(df))
        bad = q.rows_of(name)
        if on_bad_rows == "raise" and len(bad):
            r = int(bad[0])
            reason, col, message = q.get(name, r)
            msg = (
                f"{path}: line {lines[r]}, column {col or '-'}: {reason}: {message} "
                f"(value {df[col].iloc[r]!r})" if col else f"{path}: line {lines[r]}: {reason}: {message}"
            )
            raise LedgerError(msg + "; fix the row or read with on_bad_rows='quarantine'")
        if on_bad_rows == "raise":
            tables[name] = accepted_rows(df, parsed[name], merged.get(name, np.empty(0, np.int64)), tz)
        else:
            tables[name] = accepted[name].result()
        file_names.append(str(path) if path else name)
        add_quarantine_part(parts, t_i, df, bad, lines[bad], q.col[name][bad], q.prio[name][bad], q.msg[name][bad])
        summary += summary_rows(name, q, bad, merged.get(name, np.empty(0, np.int64)))
    quarantine = quarantine_frame(parts, file_names, list(raw), q)
    load_summary = pd.DataFrame(summary, columns=["table", "reason", "read", "accepted", "merged", "quarantined"])
    return Ledger(
        licenses=tables["licenses"], orders=tables["orders"], activations=tables["activations"],
        legacy_periods=tables.get("legacy_periods"), features=tables.get("features"), source=source,
        quarantine=quarantine, load_summary=load_summary,
    )


def add_quarantine_part(parts: dict[str, list[Any]], t_i: int, df: pd.DataFrame, rows: np.ndarray, lines: np.ndarray,
              col: np.ndarray, prio: np.ndarray, msg: np.ndarray) -> None:
    """The quarantine columns of ``rows`` of ``df`` (table number ``t_i``) appended to ``parts``.
    Columns, not a record per row: codes into the reason, column and message lists."""
    parts["file"].append(np.full(len(rows), t_i, np.int16))
    parts["table"].append(np.full(len(rows), t_i, np.int16))
    parts["line"].append(np.asarray(lines, np.int64))
    parts["column"].append(col)
    parts["reason"].append(prio)
    parts["message"].append(msg)
    parts["raw"] += [raw_rows(df.iloc[rows[i:i + _RAW_CHUNK]]) for i in range(0, len(rows), _RAW_CHUNK)]


def summary_rows(name: str, q: Quarantine, bad: np.ndarray, merged: np.ndarray) -> list[dict[str, Any]]:
    """The load summary of a table: its totals row, then a row per reason (by name)."""
    n = len(q.prio[name])
    counts = np.bincount(q.prio[name][bad], minlength=len(_REASONS))
    n_merged = int((~np.isin(merged, bad)).sum())
    out = [{"table": name, "reason": "", "read": n, "accepted": n - len(bad), "merged": n_merged, "quarantined": len(bad)}]
    return out + [{"table": name, "reason": k, "read": 0, "accepted": 0, "merged": 0, "quarantined": int(counts[i])}
                  for i, k in sorted(enumerate(_REASONS), key=lambda x: x[1]) if counts[i]]


def quarantine_frame(parts: dict[str, list[Any]], file_names: list[str], table_names: list[str], q: Quarantine) -> pd.DataFrame:
    """The quarantine table: repeated texts (file, table, column, reason, message) as
    categoricals, the raw rows as one Arrow string column."""
    import pyarrow as pa

    def cat(key: str, names: list[str]) -> pd.Categorical:
        codes = np.concatenate(parts[key]).astype(np.int16) if parts[key] else np.empty(0, np.int16)
        unique = list(dict.fromkeys(names))  # several tables may come from one file (a workbook)
        if len(unique) < len(names):
            codes = np.array([unique.index(n) for n in names], np.int16)[codes]
        return pd.Categorical.from_codes(codes, categories=pd.Index(unique, dtype=object), validate=False)

    raw = pa.chunked_array(parts["raw"], pa.large_string())
    return pd.DataFrame({
        "file": cat("file", file_names),
        "line": np.concatenate(parts["line"]) if parts["line"] else np.empty(0, np.int64),
        "table": cat("table", table_names),
        "column": cat("column", q.columns),
        "reason": cat("reason", _REASONS),
        "message": cat("message", q.messages),
        "raw": raw.to_pandas(),
    })
