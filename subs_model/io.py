"""Reading real exports: validated with pandera, bad rows quarantined, timestamps in Moscow days.

``read_ledger(path)`` reads the tables of a folder (or explicit files) of CSV or Parquet
with pyarrow — every CSV column as text, so ids keep their leading zeros and nothing is
guessed — validates every row at once (pandera, lazy) and returns the :class:`Ledger`
of accepted rows. Each rejected row goes to ``ledger.quarantine`` with its file, line,
column, reason (a fixed enum, :class:`QuarantineReason`), a message and the raw row;
``ledger.load_summary`` counts rows read / accepted / quarantined per table and reason,
and for every table ``read == accepted + quarantined``. Identical duplicate rows are
merged (counted in ``merged``); conflicting ones are all quarantined. A row that refers
to a quarantined row is quarantined too, with ``references_quarantined`` and the row it
refers to. Rule violations (a late renewal, a reused code) are not bad input: they stay
in the ledger and the replay rejects them.

Whole-file problems (an unreadable file, an unknown table, a missing or unknown column)
raise an error naming the file and the fix.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa_

from .days import NO_DAY, NO_TIME, _OFFSET_RE
from .errors import LedgerError
from .ledger import COLUMNS, DATE_COLUMNS, REQUIRED, TABLES, TIMESTAMP_COLUMNS, Ledger, _find_files, _read_table
from .profiles import Profile, load_profile, to_canonical
from .workers import workers

__all__ = ["QuarantineReason", "read_ledger"]

STAGES = ("requested_at", "invoiced_at", "paid_at", "ticket_at", "code_issued_at")


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
    R.BAD_TIMESTAMP: "not an ISO 8601 timestamp (e.g. 2026-03-15T10:00:00+03:00); day/month order is never guessed",
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
TRUE = {"true", "1", "yes", "да", "t", "y"}
FALSE = {"false", "0", "no", "нет", "f", "n"}


def _strip(s: pd.Series) -> pd.Series:
    """The text of a raw column. Values were trimmed once when read (:func:`ledger._trim`,
    the one whitespace policy), so validation compares exactly the values the ledger keeps."""
    return s if isinstance(s.dtype, pd.StringDtype) else s.astype("str")


def _text(s: pd.Series) -> pd.Series:
    return _strip(s)


def _isin(s: pd.Series, values: pd.Series) -> np.ndarray:
    """Membership of string values (Arrow's hash set: pandas' isin is far slower on strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(values) or not len(s):
        return np.zeros(len(s), bool)
    arr = pa.array(_text(s).array)
    vals = pa.array(_text(values).array)
    return pc.fill_null(pc.is_in(arr, value_set=vals), False).to_numpy(zero_copy_only=False)


def _empty(s: pd.Series) -> pd.Series:
    return pd.Series((s.isna() | (_text(s) == "")).to_numpy(), index=s.index)


def _instants(s: pd.Series, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC ns of ISO 8601 values (NO_TIME when empty) and a mask of unparseable ones.

    Values with an offset or ``Z`` are converted; naive ones are local (``tz``). Arrow's
    strict ISO 8601 parser handles a clean column in one pass; a column with bad values
    falls back to a per-subset parse that finds them.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(s.dtype):
        from .days import parse_instants

        return parse_instants(s, tz), np.zeros(len(s), bool)
    out = np.full(len(s), NO_TIME, np.int64)
    bad = np.zeros(len(s), bool)
    text = _text(s)
    empty = (text.isna() | (text == "")).to_numpy()
    if empty.all():
        return out, bad
    arr = pa.array(text.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    filled = arr.filter(pa.array(~empty))
    import re

    first_aware = bool(re.search(_OFFSET_RE, filled[0].as_py())) if len(filled) else False
    # Fast path: a column that is all with offsets, or all naive, like its first value (a
    # failing cast can cost far more than a succeeding one, so only the likely one is tried).
    vals = _cast(filled, first_aware)
    if vals is not None:
        _store(out, bad, np.flatnonzero(~empty), vals, first_aware, tz)
        return out, bad
    offset = pc.fill_null(pc.match_substring_regex(arr, _OFFSET_RE), False).to_numpy(zero_copy_only=False) & ~empty
    for mask, aware in ((offset, True), (~offset & ~empty, False)):
        if not mask.any():
            continue
        idx = np.flatnonzero(mask)
        sub = arr.filter(pa.array(mask))
        vals = _cast(sub, aware)
        if vals is None:  # some values are not ISO 8601: values of another shape are bad ...
            shape = pc.fill_null(pc.match_substring_regex(sub, f"^{_ISO_SHAPE}$"), False).to_numpy(zero_copy_only=False)
            vals = _cast(sub.filter(pa.array(shape)), aware) if not shape.all() else None
            if vals is not None:  # ... and the rest parse as the clean columns do
                bad[idx[~shape]] = True
                _store(out, bad, idx[shape], vals, aware, tz)
                continue
            text_sub = pd.Series(sub.to_pandas())  # an ISO-shaped value that is no instant: find it
            parsed = pd.to_datetime(text_sub, format="ISO8601", errors="coerce", utc=aware)
            ok = parsed.notna().to_numpy() & text_sub.str.fullmatch(_ISO_SHAPE).fillna(False).to_numpy()
            # pandas parses 1677 or 2262 at a coarser unit; nanoseconds (the ledger's unit) cannot hold them.
            wall = (parsed.dt.tz_convert(None) if aware else parsed).to_numpy()
            ok &= (wall >= np.datetime64(_FIRST_INSTANT)) & (wall < np.datetime64(_END_INSTANT))
            bad[idx[~ok]] = True
            idx = idx[ok]
            vals = wall[ok].astype("datetime64[ns]")
        _store(out, bad, idx, vals, aware, tz)
    return out, bad


#: Timestamps are held in nanoseconds (1677-09-21 … 2262-04-11); a day clear of both ends
#: is required, so a naive time moved to UTC cannot leave the range.
_FIRST_INSTANT, _END_INSTANT = "1678-01-01", "2262-01-01"
_ISO_SHAPE = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:[zZ]|[+-]\d{2}(?::?\d{2})?)?"


def _cast(arr: Any, aware: bool) -> np.ndarray | None:
    """Arrow's strict ISO 8601 cast: UTC (``aware``) or wall-clock ns, or None if any value fails."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        cast = pc.cast(arr, pa.timestamp("ns", tz="UTC") if aware else pa.timestamp("ns"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return cast.cast(pa.int64()).to_numpy(zero_copy_only=False).view("datetime64[ns]")


def _store(out: np.ndarray, bad: np.ndarray, idx: np.ndarray, vals: np.ndarray, aware: bool, tz: str) -> None:
    """Write UTC ns at ``idx``; naive values are local to ``tz`` (a time that does not exist there is bad)."""
    if not aware and len(vals):
        loc = pd.DatetimeIndex(vals).tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        nat = loc.isna()
        bad[idx[nat]] = True
        idx, vals = idx[~nat], loc[~nat].tz_convert(None).as_unit("ns").to_numpy()
    out[idx] = vals.view(np.int64)


def _dates(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    out = np.full(len(s), NO_DAY, np.int64)
    text = _text(s)
    empty = _empty(s).to_numpy()
    ok_shape = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy()
    parsed = pd.to_datetime(text.where(ok_shape), format="%Y-%m-%d", errors="coerce")
    good = parsed.notna().to_numpy()
    out[good] = parsed[good].to_numpy(dtype="datetime64[D]").astype(np.int64)
    return out, ~good & ~empty


def _amount_reasons(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Kopecks (-1 where missing or bad) and the reason of each bad amount (or '').

    Plain ``1234`` / ``1234.5`` / ``1234.56`` values of up to 16 digits before the point take
    an exact Arrow decimal path; only the others go through the slower classification below.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(_text(s).array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    plain = pc.fill_null(pc.match_substring_regex(arr, r"^\d{1,16}(?:\.\d{1,2})?$"), False).to_numpy(zero_copy_only=False)
    empty = _empty(s).to_numpy()
    out = np.full(len(s), -1, np.int64)
    reason = pd.Series(np.full(len(s), "", dtype=object), index=s.index)
    if plain.any():
        dec = pc.cast(arr.filter(pa.array(plain)), pa.decimal128(18, 2))
        out[plain] = np.frombuffer(dec.buffers()[1], dtype=np.int64, count=2 * len(dec))[::2]
    rest = ~plain & ~empty
    if rest.any():
        k, r = _amount_slow(s[rest])
        out[rest] = k
        reason[rest] = r.to_numpy()
    return out, reason


_RUBLE_DIGITS = 16


def _amount_slow(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    text = _text(s).str.replace(r"[\s\u00a0]", "", regex=True).str.replace(",", ".", regex=False)
    empty = _empty(s).to_numpy()
    num = text.str.fullmatch(r"-?\d+(?:\.\d+)?").fillna(False).to_numpy()
    neg = text.str.startswith("-").fillna(False).to_numpy()
    dec = text.str.extract(r"\.(\d+)$")[0].str.len().fillna(0).to_numpy() > 2
    # More than 16 digits of rubles (leading zeros aside) do not fit int64 kopecks.
    big = text.str.extract(r"^-?0*(\d*)")[0].str.len().fillna(0).to_numpy() > _RUBLE_DIGITS
    reason = np.full(len(s), "", dtype=object)
    reason[~num & ~empty] = R.NON_NUMERIC_AMOUNT.value
    reason[num & neg] = R.NEGATIVE_AMOUNT.value
    reason[num & ~neg & dec] = R.TOO_MANY_DECIMALS.value
    reason[num & ~neg & ~dec & big] = R.AMOUNT_OUT_OF_RANGE.value
    out = np.full(len(s), -1, np.int64)
    good = num & ~neg & ~dec & ~big
    if good.any():
        parts = text[good].str.split(".", n=1, expand=True)
        rub = parts[0].astype("int64").to_numpy()
        kop = (parts[1].fillna("0").str.ljust(2, "0") if parts.shape[1] > 1 else pd.Series("00", index=parts.index)).astype("int64").to_numpy()
        out[good] = rub * 100 + kop
    return out, pd.Series(reason, index=s.index)


STAGE_CHECKS = (R.STAGE_MISSING, R.STAGE_OUT_OF_ORDER)


def _check(fn, reason: R) -> pa_.Check:
    return pa_.Check(fn, name=reason.value)


def _schema(table: str, parsed: dict[str, Any]) -> pa_.DataFrameSchema:
    """The pandera schema of a raw (all-text) table; every check is named by its reason.

    A check whose failing rows were found while parsing (bad timestamps, dates, amounts, the
    order contract) is a check of the column it blames, so pandera reports it per column.
    The stage-sequence checks (R9), whose column differs from row to row, are checks of
    ``order_id``, their rows blamed on their columns afterwards.
    """
    nonempty = lambda col: _check(lambda s: ~_empty(s), R.EMPTY_REQUIRED)  # noqa: E731
    cols: dict[str, pa_.Column] = {}

    def failing(mask: np.ndarray, reason: R) -> pa_.Check:
        """A column check from the mask of failing rows (nulls included: they may be the fault)."""
        return pa_.Check(lambda s, m=np.asarray(mask, bool): pd.Series(~m[s.index.to_numpy()], index=s.index),
                         name=reason.value, ignore_na=False)

    def column(name: str, *more: pa_.Check, nullable: bool = True) -> None:
        if name in cols:
            cols[name] = pa_.Column(checks=[*cols[name].checks, *more], nullable=cols[name].nullable)
        else:
            cols[name] = pa_.Column(checks=list(more), nullable=nullable)

    if table == "licenses":
        cols["license_id"] = pa_.Column(checks=[nonempty("license_id")], nullable=False)
        cols["edition"] = pa_.Column(checks=[nonempty("edition"), _check(lambda s: _empty(s) | _text(s).isin(["full", "basic"]), R.UNKNOWN_EDITION)], nullable=False)
    elif table == "orders":
        for c in ("order_id", "license_id"):
            cols[c] = pa_.Column(checks=[nonempty(c)], nullable=False)
        cols["sku"] = pa_.Column(checks=[nonempty("sku"), _check(lambda s: _empty(s) | _text(s).isin(["subscription", "renewal", "upgrade"]), R.UNKNOWN_SKU)], nullable=False)
        for c in STAGES:
            column(c, failing(parsed[c][1], R.BAD_TIMESTAMP))
        amount = parsed["_amount"][1].to_numpy()
        column("amount_rub", *(failing(amount == r.value, r) for r in (R.NON_NUMERIC_AMOUNT, R.NEGATIVE_AMOUNT, R.TOO_MANY_DECIMALS, R.AMOUNT_OUT_OF_RANGE)))
        rows = parsed["_rows"]
        for c, r in (("amount_rub", R.AMOUNT_MISSING), ("act_number", R.ACT_MISSING), ("code", R.CODE_MISSING),
                     ("ticket_at", R.TICKET_ON_NON_UPGRADE), ("upgrade_of_act", R.UPGRADE_WITHOUT_TARGET)):
            column(c, failing(rows[r], r))
        # The stage-sequence checks blame a column that differs from row to row
        # (:func:`_stage_columns`); they hang on order_id, so pandera reports their rows as
        # a column's (reshaping a whole-table check's failures took it 0.13 s a check).
        column("order_id", *(failing(rows[r], r) for r in STAGE_CHECKS))
    elif table == "activations":
        cols["code"] = pa_.Column(checks=[nonempty("code")], nullable=False)
        cols["license_id"] = pa_.Column(checks=[nonempty("license_id")], nullable=False)
        cols["activated_at"] = pa_.Column(checks=[_check(lambda s: ~_empty(s), R.ACTIVATION_WITHOUT_TIMESTAMP)], nullable=False)
        column("activated_at", failing(parsed["activated_at"][1], R.BAD_TIMESTAMP))
    elif table == "legacy_periods":
        for c in ("license_id", "start", "valid_until"):
            cols[c] = pa_.Column(checks=[nonempty(c)], nullable=False)
        start, until = parsed["start"][0], parsed["valid_until"][0]
        column("start", failing(parsed["start"][1], R.BAD_DATE))
        column("valid_until", failing(parsed["valid_until"][1], R.BAD_DATE),
               failing((until < start) & (start != NO_DAY) & (until != NO_DAY), R.LEGACY_END_BEFORE_START))
    elif table == "features":
        for c in ("feature_id", "released_on", "requires_subscription"):
            cols[c] = pa_.Column(checks=[nonempty(c)], nullable=False)
        column("released_on", failing(parsed["released_on"][1], R.BAD_DATE))
        cols["requires_subscription"] = pa_.Column(
            checks=[nonempty("requires_subscription"), _check(lambda s: _empty(s) | _text(s).str.lower().isin(TRUE | FALSE), R.BAD_BOOL)], nullable=False)
    return pa_.DataFrameSchema(cols, coerce=False, strict=False)


def _order_row_checks(df: pd.DataFrame, ts: dict[str, tuple[np.ndarray, np.ndarray]], amount: np.ndarray) -> dict[R, np.ndarray]:
    """R9 and the order contract, per row (True = the row breaks it)."""
    upgrade = _text(df["sku"]).eq("upgrade").fillna(False).to_numpy(bool)
    t = {c: ts[c][0] for c in STAGES}
    have = {c: t[c] != NO_TIME for c in STAGES}
    chain = [c for c in STAGES]
    missing = np.zeros(len(df), bool)
    out_of_order = np.zeros(len(df), bool)
    # The stage sequence of each order: upgrades have the ticket between paid and code.
    for i, c in enumerate(chain):
        if c == "ticket_at":
            continue
        for later in chain[i + 1 :]:
            if later == "ticket_at":
                continue
            missing |= have[later] & ~have[c]
            out_of_order |= have[later] & have[c] & (t[later] < t[c])
    tk = have["ticket_at"]
    missing |= upgrade & have["code_issued_at"] & ~tk
    missing |= upgrade & tk & ~have["paid_at"]
    out_of_order |= upgrade & tk & have["paid_at"] & (t["ticket_at"] < t["paid_at"])
    out_of_order |= upgrade & tk & have["code_issued_at"] & (t["code_issued_at"] < t["ticket_at"])
    return {
        R.AMOUNT_MISSING: have["paid_at"] & (amount < 0) & _empty(df["amount_rub"]).to_numpy(),
        R.STAGE_MISSING: missing,
        R.STAGE_OUT_OF_ORDER: out_of_order,
        R.ACT_MISSING: have["paid_at"] & _empty(df["act_number"]).to_numpy(),
        R.CODE_MISSING: have["code_issued_at"] & _empty(df["code"]).to_numpy(),
        R.TICKET_ON_NON_UPGRADE: tk & ~upgrade,
        R.UPGRADE_WITHOUT_TARGET: upgrade & _empty(df["upgrade_of_act"]).to_numpy(),
    }


def _stage_columns(reason: R, rows: np.ndarray, p: dict[str, Any]) -> dict[str, np.ndarray]:
    """The column to blame for each row breaking the stage sequence (R9): the first stage
    that is filled after a gap, or dated before the stage before it."""
    out, left = {}, rows
    have = {c: p[c][0][left] != NO_TIME for c in STAGES}
    prev_t = np.full(len(left), np.iinfo(np.int64).min)
    gap = np.zeros(len(left), bool)
    blamed = np.zeros(len(left), bool)
    for c in STAGES:
        t = p[c][0][left]
        h = have[c]
        bad = ~blamed & h & (gap if reason == R.STAGE_MISSING else (t < prev_t))
        if bad.any():
            out[c] = left[bad]
            blamed |= bad
        gap |= ~h & (c != "ticket_at")
        prev_t = np.where(h, t, prev_t)
    if (~blamed).any():
        out[""] = left[~blamed]
    return out


def _lines(path: Path | None, n: int) -> np.ndarray:
    # CSV: header is line 1, so row i is line i + 2 (exports carry no embedded newlines);
    # Parquet: the row number.
    if path is not None and path.suffix.lower() in (".csv", ".xlsx", ".xlsm"):  # a sheet's header is row 1 too
        return np.arange(n) + 2
    return np.arange(n) + 1


class _Q:
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
#: Orders tables longer than this run their cross-table hash passes one after the other.
SERIAL_CROSS_CHECK_ROWS = 2_000_000


def _value_codes(s: pd.Series) -> np.ndarray:
    """Each row's value as a number (equal values, equal numbers; -1 missing), by Arrow's hash encoding."""
    import pyarrow as pa

    arr = pa.array(_text(s).array)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return np.asarray(arr.dictionary_encode().indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _repeats(s: pd.Series) -> np.ndarray:
    """Rows whose value occurs more than once (nulls count as one value)."""
    codes = _value_codes(s)
    return np.bincount(codes + 1)[codes + 1] > 1


def _identical_rows(df: pd.DataFrame, key: str) -> np.ndarray:
    """Rows that repeat an earlier row exactly (to merge). Only rows whose ``key`` repeats
    can, so the whole-row comparison runs on those alone."""
    cand = np.flatnonzero(_repeats(df[key]))
    if not len(cand):
        return np.empty(0, np.int64)
    return cand[df.iloc[cand].duplicated(keep="first").to_numpy()]


def _duplicates(df: pd.DataFrame, key: str, reason: R, q: _Q, table: str) -> np.ndarray:
    """Rows dropped as identical duplicates; every row of a conflicting key goes to quarantine."""
    dup_any = _repeats(df[key]) & ~_empty(df[key]).to_numpy()
    if not dup_any.any():
        return np.empty(0, np.int64)
    idx = np.flatnonzero(dup_any)
    sub = df.iloc[idx]
    uniq = sub.drop_duplicates()
    versions = uniq.groupby(_text(uniq[key]).to_numpy()).size()
    conflict = (versions.reindex(_text(sub[key]).to_numpy()).to_numpy() > 1)
    q.add(table, idx[conflict], reason, key)
    identical = sub.duplicated(keep="first").to_numpy() & ~conflict
    return idx[identical]


def read_ledger(
    path: str | Path | Mapping[str, str | Path], on_bad_rows: str = "quarantine", tz: str = "Europe/Moscow",
    profile: str | Path | Profile | None = None, quarantine_to: str | Path | None = None,
    quarantine_head: int = 1_048_575,
) -> Ledger:
    """Read and validate the ledger tables; bad rows are quarantined (or raise).

    Parameters
    ----------
    path : folder, or mapping table name → file
        ``licenses``, ``orders``, ``activations`` and optionally ``legacy_periods`` and
        ``features`` as ``.csv`` or ``.parquet`` (with a profile: as it names them, or its
        workbook; the workbook's path may be given).
    on_bad_rows : {"quarantine", "raise"}
        ``"raise"`` fails on the first bad row with its file, line, column and reason.
    tz : str
        Time zone of naive timestamps and of the calendar days (Europe/Moscow).
    profile : path of a profile YAML, or :class:`~subs_model.profiles.Profile`, optional
        How the export is written (encoding, delimiter, formats, headers, sheets); without
        one the strict contract holds (UTF-8, ``,``, ISO 8601, canonical names).
    quarantine_to : path, optional
        Write the whole quarantine to this path as ``.csv`` (``out/quarantine`` →
        ``out/quarantine.csv``; no file when no row is quarantined), formula-safe, and keep
        only its first ``quarantine_head`` rows in ``ledger.quarantine``; ``load_summary``
        still counts every row. A large plain ``orders.csv`` (no profile, ``on_bad_rows=
        "quarantine"``) is then read in chunks, so memory holds its key columns rather than
        the whole table, and the quarantine's raw rows go to the file as they are built.
    quarantine_head : int
        Rows of the quarantine kept in memory with ``quarantine_to`` (default: as many as
        an XLSX sheet holds, 1,048,575).

    Returns
    -------
    Ledger
        Accepted rows (timestamps as tz-aware datetimes in ``tz``), with ``quarantine``
        (file, line, table, column, reason, message, raw row) and ``load_summary`` (with
        ``trimmed``: values whose surrounding white space was removed, per table).

    Examples
    --------
    >>> led = read_ledger("data/sample")  # doctest: +SKIP
    >>> led.load_summary  # doctest: +SKIP
    >>> led = read_ledger("exports/2026-11", profile="data/profiles/1c.yaml")  # doctest: +SKIP
    """
    if on_bad_rows not in ("quarantine", "raise"):
        msg = f"on_bad_rows={on_bad_rows!r}: use 'quarantine' or 'raise'"
        raise ValueError(msg)
    prof = load_profile(profile)
    if isinstance(path, Mapping):
        files = {str(k): Path(v) for k, v in path.items()}
        for name in files:
            if name not in COLUMNS:
                msg = f"{files[name]}: unknown table {name!r}; tables are {', '.join(COLUMNS)}"
                raise LedgerError(msg)
        source = ", ".join(str(p) for p in files.values())
    else:
        folder = Path(path)
        if (folder / "current").is_dir():  # a ledger store: read its current version
            folder = folder / "current"
        if folder.is_symlink():  # resolved once: an ingest switching `current` meanwhile cannot mix two versions
            folder = Path(os.path.realpath(folder))
        files = _find_files(folder, prof)
        source = str(folder)
    missing = [t for t in TABLES if t not in files]
    if missing:
        from .errors import LedgerFileError

        where = f" (profile {prof.name!r}: {', '.join(prof.files.get(m, prof.sheets.get(m, m)) for m in missing)})" if prof else ""
        msg = f"{source}: missing table(s) {missing}{where}; add {', '.join(m + '.csv' for m in missing)} (or .parquet)"
        raise LedgerFileError(msg)
    streamed = _streams(files, prof, on_bad_rows, quarantine_to)
    if streamed:
        from .ledger import _canonical, _check_header, _header

        names = _canonical(files[streamed], streamed, _header(files[streamed], streamed, "utf-8", ","), None)
        _check_header(files[streamed], streamed, names, None)
        miss = [c for c in REQUIRED[streamed] if c not in names]
        if miss:
            msg = f"{files[streamed]}: missing required column(s) {miss}; add them (columns of {streamed}: {list(COLUMNS[streamed])})"
            raise LedgerError(msg)
    reads = {name: _read_table(p, name, prof) for name, p in files.items() if name != streamed}
    raw = {name: r.df for name, r in reads.items()}
    for name, df in raw.items():
        miss = [c for c in REQUIRED[name] if c not in df.columns]
        if miss:
            msg = f"{files[name]}: missing required column(s) {miss}; add them (columns of {name}: {list(COLUMNS[name])})"
            raise LedgerError(msg)
        for c in COLUMNS[name]:
            if c not in df.columns:
                df[c] = pd.Series(pd.NA, index=df.index, dtype="str")
        raw[name] = df.reset_index(drop=True)
    trimmed = {name: r.trimmed for name, r in reads.items()}
    if streamed:
        led, trimmed[streamed] = _validate_streamed(raw, files, streamed, source, tz, Path(quarantine_to), quarantine_head)
        return _with_trimmed(led, trimmed)
    if prof is None:
        return _head(_with_trimmed(_validate_tables(raw, files, source, on_bad_rows, tz), trimmed), quarantine_to, quarantine_head)
    original = raw
    converted, mismatch = {}, {}
    for name, df in raw.items():
        converted[name], mismatch[name] = to_canonical(df, prof, reads[name].typed)
    # Quarantine mode, then the messages and raw rows of the declared formats; raise after.
    led = _with_trimmed(_validate_tables(converted, files, source, "quarantine", tz), trimmed)
    led = _profile_quarantine(led, original, mismatch, files, prof)
    if on_bad_rows == "raise" and len(led.quarantine):
        r = led.quarantine.iloc[0]
        msg = (f"{r['file']}: line {r['line']}, column {r['column'] or '-'}: {r['reason']}: {r['message']} ({r['raw']}); "
               f"fix the row or read with on_bad_rows='quarantine'")
        raise LedgerError(msg)
    return _head(led, quarantine_to, quarantine_head)


def _head(led: Ledger, quarantine_to: str | Path | None, head: int) -> Ledger:
    """With ``quarantine_to``: the whole quarantine written there as CSV, the ledger keeping its first ``head`` rows."""
    if quarantine_to is None:
        return led
    if len(led.quarantine):
        from .export import write_table

        write_table(led.quarantine, quarantine_to, xlsx=False)
    return led if len(led.quarantine) <= head else dataclasses.replace(led, quarantine=led.quarantine.iloc[:head].copy())


def _with_trimmed(led: Ledger, trimmed: dict[str, int]) -> Ledger:
    """``led`` whose load summary says, per table, how many values had white space trimmed."""
    s = led.load_summary.copy()
    s["trimmed"] = np.where(s["reason"] == "", s["table"].map(trimmed).fillna(0), 0).astype(np.int64)
    return dataclasses.replace(led, load_summary=s)


def _profile_quarantine(led: Ledger, original: dict[str, pd.DataFrame], mismatch: dict[str, dict[str, np.ndarray]],
                        files: dict[str, Path], prof: Profile) -> Ledger:
    """The quarantine of a profiled read: raw rows as the export wrote them, and a message
    naming the declared format for values that did not match it."""
    q = led.quarantine
    if not len(q):
        return led
    q = q.copy()
    first_line = {name: int(_lines(files.get(name), 1)[0]) if name in files else 1 for name in original}
    row = (q["line"] - q["table"].map(first_line)).to_numpy()
    messages = q["message"].astype(object).to_numpy(copy=True)
    for name, df in original.items():
        sel = np.flatnonzero((q["table"] == name).to_numpy())
        if not len(sel):
            continue
        q.iloc[sel, q.columns.get_loc("raw")] = _raw_rows(df.iloc[row[sel]])
        for col, bad in mismatch[name].items():
            hit = sel[(q["column"].to_numpy()[sel] == col) & bad[row[sel]]]
            if len(hit):
                msg = f"does not match the declared format {prof.format_of(col)} (profile {prof.name!r}); fix the value or the profile"
                messages[hit] = msg
    q["message"] = pd.Categorical(messages)
    return dataclasses.replace(led, quarantine=q)


def _validate_tables(raw: dict[str, pd.DataFrame], files: dict[str, Path], source: str, on_bad_rows: str, tz: str) -> Ledger:
    q = _Q({n: len(df) for n, df in raw.items()})
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        parsed, merged = _check_tables(raw, q, tz, pool)
    _cross_table(raw, parsed, q, merged)
    return _assemble(raw, files, parsed, q, merged, source, on_bad_rows, tz)


def _check_tables(raw: dict[str, pd.DataFrame], q: _Q, tz: str, pool, keys: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Each table's own checks (``keys=False``: the per-row ones only, not its key's duplicates):
    the parsed columns and the rows merged as identical duplicates of each table."""
    # Tables are checked side by side (Arrow and numpy release the GIL); the largest first.
    names = sorted(raw, key=lambda n: -raw[n].size)
    # Column parsing first, a task per column, so both workers stay busy; then the checks.
    jobs = [(n, c) for n in names for c in COLUMNS[n] if c in TIMESTAMP_COLUMNS or c in DATE_COLUMNS]
    jobs += [(n, "_amount") for n in names if n == "orders"]
    parsed_cols = dict(zip(jobs, pool.map(lambda job: _parse_column(raw[job[0]], job[1], tz), jobs), strict=True))
    pre = {n: {c: v for (t, c), v in parsed_cols.items() if t == n} for n in names}
    done = dict(zip(names, pool.map(lambda n: _validate_table(n, raw[n], pre[n], q, keys), names), strict=True))
    parsed = {n: done[n][0] for n in raw}
    merged = {n: done[n][1] for n in raw if done[n][1] is not None}
    return parsed, merged


def _parse_column(df: pd.DataFrame, column: str, tz: str) -> Any:
    """A timestamp, date or amount column parsed, with the mask of values that do not parse."""
    if column == "_amount":
        return _amount_reasons(df["amount_rub"])
    return _instants(df[column], tz) if column in TIMESTAMP_COLUMNS else _dates(df[column])


def _validate_table(name: str, df: pd.DataFrame, parsed: dict[str, Any], q: _Q, keys: bool = True) -> tuple[dict[str, Any], np.ndarray | None]:
    """One table's own checks on its parsed columns: quarantined rows (into ``q``) and the
    rows merged as identical duplicates."""
    p = dict(parsed)
    dropped = None
    if name == "orders":
        p["_rows"] = _order_row_checks(df, p, p["_amount"][0])
    failures = _run_schema(_schema(name, p), df)
    for check in sorted(failures):  # in check-name order, as pandera's lazy report groups them
        by_col = failures[check]
        if check == "not_nullable":
            for column in sorted(by_col):
                reason = R.ACTIVATION_WITHOUT_TIMESTAMP if column == "activated_at" else R.EMPTY_REQUIRED
                q.add(name, by_col[column], reason, column)
            continue
        reason = R(check)
        if reason not in STAGE_CHECKS:  # in the table's column order: a row's first bad column is blamed
            for column in [c for c in COLUMNS[name] if c in by_col]:
                q.add(name, by_col[column], reason, column)
            continue
        rows = np.unique(np.concatenate(list(by_col.values())))
        for col, rr in _stage_columns(reason, rows, p).items():
            q.add(name, rr, reason, col)
    key = {"licenses": "license_id", "orders": "order_id", "features": "feature_id"}.get(name)
    if not keys:
        return p, None
    if key:
        reason = {"licenses": R.DUPLICATE_LICENSE_ID, "orders": R.DUPLICATE_ORDER_ID, "features": R.DUPLICATE_FEATURE_ID}[name]
        dropped = _duplicates(df, key, reason, q, name)
    elif name in ("activations", "legacy_periods"):
        dropped = _identical_rows(df, "code" if name == "activations" else "license_id")
    return p, dropped


def _run_schema(schema: pa_.DataFrameSchema, df: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """The failing rows of each check of ``schema``: check name → column → row positions.

    Each check is run by pandera on its column, as ``schema.validate(df, lazy=True)`` would;
    only the failure report is built here, as arrays: pandera's own report is a frame with a
    row per failure, which for millions of bad rows took gigabytes and minutes.
    ``df`` has a RangeIndex, so index labels are row positions.
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for column, spec in schema.columns.items():
        s = df[column]
        if not spec.nullable:
            null = np.flatnonzero(s.isna().to_numpy())
            if len(null):
                out.setdefault("not_nullable", {})[column] = null
        for check in spec.checks:
            passed = check(s).check_output  # nulls are left out unless the check says ignore_na=False
            rows = passed.index.to_numpy()[~passed.to_numpy(dtype=bool)]
            if len(rows):
                have = out.setdefault(check.name, {})
                have[column] = np.union1d(have[column], rows) if column in have else rows.astype(np.int64)
    return out


def _cross_table(raw: dict[str, pd.DataFrame], parsed, q: _Q, merged: dict[str, np.ndarray]) -> None:
    """Codes and acts unique across orders; licenses known; references to quarantined rows.

    The hash passes (uniqueness, membership, act lookup) do not depend on each other, so
    they run side by side first; the rules that combine them follow in order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    o = raw["orders"]
    lic = raw["licenses"]
    lic_bad = q.rows_of("licenses")
    lic_ids = _text(lic["license_id"])
    good_mask = np.ones(len(lic), bool)
    good_mask[lic_bad] = False
    good_lic = lic_ids[good_mask].dropna()
    bad_lic = lic_ids[~good_mask].dropna()
    bad_lic = bad_lic[~_isin(bad_lic, good_lic)]
    dropped = np.zeros(len(o), bool)
    dropped[merged.get("orders", np.empty(0, np.int64))] = True
    sku = _text(o["sku"]).fillna("")
    acts = _text(o["act_number"])
    up = np.flatnonzero((sku == "upgrade").to_numpy() & ~_empty(o["upgrade_of_act"]).to_numpy())

    def repeated_among_kept(col: str) -> np.ndarray:
        """Rows whose value repeats among the kept rows' values: one hash encoding of the
        whole column (no filtered copy of millions of strings, no second hash table)."""
        keep = ~_empty(o[col]).to_numpy() & ~dropped
        codes = _value_codes(o[col])
        counts = np.bincount(codes[keep] + 1, minlength=int(codes.max(initial=-1)) + 2)
        return keep & (counts[codes + 1] > 1)

    def license_refs(table: str) -> tuple[np.ndarray, np.ndarray]:
        ids = _text(raw[table]["license_id"])
        return _isin(ids, good_lic), _isin(ids, bad_lic)

    def act_targets() -> np.ndarray:
        """Row of the first order carrying each upgrade's target act (-1: none). The acts are
        looked up in the few upgrades' targets, then those rows' acts indexed: a hash set of
        a million acts cost more than the rest of the lookup."""
        wanted = pa.array(_text(o["upgrade_of_act"]).iloc[up].array)
        all_acts = pa.array(acts.array)
        named = np.flatnonzero(pc.fill_null(pc.is_in(all_acts, value_set=wanted), False).to_numpy(zero_copy_only=False))
        pos = pc.index_in(wanted, value_set=all_acts.take(pa.array(named)))
        pos = np.asarray(pos.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        return np.append(named, -1)[pos]  # -1 (not found) reads the appended -1

    ref_tables = [t for t in ("orders", "legacy_periods") if t in raw]
    # Side by side unless the hash tables of millions of strings would add up (memory bound).
    with ThreadPoolExecutor(max_workers=workers() if len(o) <= SERIAL_CROSS_CHECK_ROWS else 1) as pool:
        # Longest first: each of these hashes about a million strings.
        refs = {t: pool.submit(license_refs, t) for t in ref_tables}
        targets = pool.submit(act_targets) if len(up) else None
        repeated = {col: pool.submit(repeated_among_kept, col) for col in ("code", "act_number")}
        for col, reason in (("code", R.DUPLICATE_CODE), ("act_number", R.DUPLICATE_ACT_NUMBER)):
            q.add("orders", np.flatnonzero(repeated[col].result()), reason, col)
        for table in ref_tables:
            in_good, in_bad = refs[table].result()
            unknown = ~in_good & ~in_bad & ~_empty(raw[table]["license_id"]).to_numpy()
            q.add(table, np.flatnonzero(unknown), R.UNKNOWN_LICENSE, "license_id")
            q.add(table, np.flatnonzero(in_bad), R.REFERENCES_QUARANTINED, "license_id", "its license row was quarantined")
        # Upgrades: the target act must be a renewal's; a quarantined target taints the upgrade.
        if targets is not None:
            tgt = targets.result()
            found = tgt >= 0
            tgt_i = np.where(found, tgt, 0)
            not_ren = found & ~(sku == "renewal").to_numpy()[tgt_i]
            q.add("orders", up[not_ren], R.UPGRADE_TARGET_NOT_RENEWAL, "upgrade_of_act")
            bad_orders = q.rows_of("orders")
            tainted = found & ~not_ren & np.isin(tgt_i, bad_orders) & ~np.isin(up, bad_orders)
            q.add("orders", up[tainted], R.REFERENCES_QUARANTINED, "upgrade_of_act", "the renewal order it upgrades was quarantined")
    # Activations of a code whose order was quarantined: quarantined with it, said so.
    bad_orders = q.rows_of("orders")
    codes = _text(o["code"])
    is_bad = np.zeros(len(o), bool)
    is_bad[bad_orders] = True
    # A code carried by a kept order as well would be a duplicate code, quarantined with both
    # orders, so every code of a quarantined order is a quarantined code.
    bad_codes = codes[is_bad].dropna()
    a = raw["activations"]
    ref = _isin(a["code"], bad_codes)
    q.add("activations", np.flatnonzero(ref), R.REFERENCES_QUARANTINED, "code", "the order carrying this code was quarantined")


#: Bad rows turned into quarantine text per step: bounds the memory of the intermediate columns.
_RAW_CHUNK = 262_144


def _raw_rows(sub: pd.DataFrame) -> Any:
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


def _accepted(df: pd.DataFrame, parsed: dict[str, Any], drop: np.ndarray, tz: str) -> pd.DataFrame:
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
    return out[list(df.columns)]


def _assemble(raw, files, parsed, q: _Q, merged, source: str, on_bad_rows: str, tz: str) -> Ledger:
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        return _assemble_tables(raw, files, parsed, q, merged, source, on_bad_rows, tz, pool)


def _assemble_tables(raw, files, parsed, q: _Q, merged, source: str, on_bad_rows: str, tz: str, pool) -> Ledger:
    summary = []
    tables: dict[str, pd.DataFrame] = {}
    if on_bad_rows == "quarantine":  # the accepted rows of every table, side by side
        accepted = {name: pool.submit(_accepted, df, parsed[name], np.union1d(q.rows_of(name), merged.get(name, [])).astype(np.int64), tz)
                    for name, df in raw.items()}
    parts: dict[str, list[Any]] = {k: [] for k in ("file", "line", "table", "column", "reason", "message", "raw")}
    file_names: list[str] = []
    for t_i, (name, df) in enumerate(raw.items()):
        path = files.get(name)
        lines = _lines(path, len(df))
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
            tables[name] = _accepted(df, parsed[name], merged.get(name, np.empty(0, np.int64)), tz)
        else:
            tables[name] = accepted[name].result()
        file_names.append(str(path) if path else name)
        _add_part(parts, t_i, df, bad, lines[bad], q.col[name][bad], q.prio[name][bad], q.msg[name][bad])
        summary += _summary_rows(name, q, bad, merged.get(name, np.empty(0, np.int64)))
    quarantine = _quarantine_frame(parts, file_names, list(raw), q)
    load_summary = pd.DataFrame(summary, columns=["table", "reason", "read", "accepted", "merged", "quarantined"])
    return Ledger(
        licenses=tables["licenses"], orders=tables["orders"], activations=tables["activations"],
        legacy_periods=tables.get("legacy_periods"), features=tables.get("features"), source=source,
        quarantine=quarantine, load_summary=load_summary,
    )


def _add_part(parts: dict[str, list[Any]], t_i: int, df: pd.DataFrame, rows: np.ndarray, lines: np.ndarray,
              col: np.ndarray, prio: np.ndarray, msg: np.ndarray) -> None:
    """The quarantine columns of ``rows`` of ``df`` (table number ``t_i``) appended to ``parts``.
    Columns, not a record per row: codes into the reason, column and message lists."""
    parts["file"].append(np.full(len(rows), t_i, np.int16))
    parts["table"].append(np.full(len(rows), t_i, np.int16))
    parts["line"].append(np.asarray(lines, np.int64))
    parts["column"].append(col)
    parts["reason"].append(prio)
    parts["message"].append(msg)
    parts["raw"] += [_raw_rows(df.iloc[rows[i:i + _RAW_CHUNK]]) for i in range(0, len(rows), _RAW_CHUNK)]


def _summary_rows(name: str, q: _Q, bad: np.ndarray, merged: np.ndarray) -> list[dict[str, Any]]:
    """The load summary of a table: its totals row, then a row per reason (by name)."""
    n = len(q.prio[name])
    counts = np.bincount(q.prio[name][bad], minlength=len(_REASONS))
    n_merged = int((~np.isin(merged, bad)).sum())
    out = [{"table": name, "reason": "", "read": n, "accepted": n - len(bad), "merged": n_merged, "quarantined": len(bad)}]
    return out + [{"table": name, "reason": k, "read": 0, "accepted": 0, "merged": 0, "quarantined": int(counts[i])}
                  for i, k in sorted(enumerate(_REASONS), key=lambda x: x[1]) if counts[i]]


def _quarantine_frame(parts: dict[str, list[Any]], file_names: list[str], table_names: list[str], q: _Q) -> pd.DataFrame:
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


#: The streamed path (:func:`read_ledger` with ``quarantine_to``): an ``orders.csv`` of more
#: bytes than this is checked :data:`_CHUNK_ROWS` rows at a time.
_STREAM_BYTES = 64 << 20
_CHUNK_ROWS = 250_000
#: The columns of orders the cross-table checks read; kept whole on the streamed path.
_KEY_COLUMNS = ("order_id", "license_id", "sku", "act_number", "code", "upgrade_of_act")


def _row_hash(df: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's whole content (a missing value differs from an empty text).

    Two rows of one order id with equal hashes are taken as identical duplicates: for rows
    that differ, the chance of that is about 2^-64 a pair."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fields = []
    for c in df.columns:
        arr = pa.array(df[c].astype("str").array, pa.large_string())
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        marked = pc.binary_join_element_wise(pa.scalar("\x01", pa.large_string()), arr, pa.scalar("", pa.large_string()))
        fields.append(pc.fill_null(marked, pa.scalar("\x00", pa.large_string())))
    if not fields:
        return np.zeros(len(df), np.uint64)
    joined = pc.binary_join_element_wise(*fields, pa.scalar("\x02", pa.large_string()))
    return pd.util.hash_array(joined.to_numpy(zero_copy_only=False), categorize=False)


def _streams(files: dict[str, Path], prof: Profile | None, on_bad_rows: str, quarantine_to: Any) -> str | None:
    """The table read in chunks (orders, as a large plain CSV), or None: every table whole."""
    path = files.get("orders")
    if quarantine_to is None or prof is not None or on_bad_rows != "quarantine" or path is None:
        return None
    if path.suffix.lower() != ".csv" or path.stat().st_size <= _STREAM_BYTES:
        return None
    return "orders"


def _validate_streamed(raw: dict[str, pd.DataFrame], files: dict[str, Path], name: str, source: str, tz: str,
                       out: Path, head: int) -> tuple[Ledger, int]:
    """:func:`_validate_tables` with table ``name`` read twice in chunks, and the quarantine
    written to ``out`` .csv as it is built; returns the ledger (its quarantine: the first
    ``head`` rows) and how many values of ``name`` were trimmed.

    Pass 1 runs each chunk's own checks (parse, schema, stage order) and keeps only the key
    columns and a row hash whole, for the duplicate and cross-table checks. Pass 2 reads the
    chunks again: their quarantined rows go to the CSV, their accepted rows to the ledger.
    Quarantine decisions, messages, lines and order are those of the whole-table path.
    """
    import pyarrow as pa

    from .export import CsvStream
    from .ledger import _csv_batches

    path = files[name]
    q = _Q({n: len(df) for n, df in raw.items()})
    keys: dict[str, list[Any]] = {c: [] for c in _KEY_COLUMNS}
    hashes, prio, col, msg = [], [], [], []
    trimmed = 0
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        parsed, merged = _check_tables(raw, q, tz, pool)
        for read in _csv_batches(path, name, _CHUNK_ROWS):  # pass 1
            df = read.df
            trimmed += read.trimmed
            qc = _Q({name: len(df)})
            qc.columns, qc.messages, qc._lock = q.columns, q.messages, q._lock  # one list of names
            _check_tables({name: df}, qc, tz, pool, keys=False)
            prio.append(qc.prio[name])
            col.append(qc.col[name])
            msg.append(qc.msg[name])
            for c in _KEY_COLUMNS:
                keys[c].append(pa.array(df[c].astype("str").array, pa.large_string()))
            hashes.append(_row_hash(df))
            del df, read, qc
    q.prio[name], q.col[name], q.msg[name] = np.concatenate(prio), np.concatenate(col), np.concatenate(msg)
    del prio, col, msg
    key_frame = pa.table({c: pa.chunked_array(v, pa.large_string()) for c, v in keys.items()}).combine_chunks().to_pandas()
    del keys
    key_frame["_row"] = np.concatenate(hashes)
    del hashes
    merged[name] = _duplicates(key_frame[["order_id", "_row"]], "order_id", R.DUPLICATE_ORDER_ID, q, name)
    key_frame = key_frame.drop(columns=["_row", "order_id"])
    _cross_table({**raw, name: key_frame}, parsed, q, merged)
    del key_frame

    tables = list(files)
    file_names = [str(files[t]) if files.get(t) else t for t in tables]
    summary: list[dict[str, Any]] = []
    accepted: dict[str, pd.DataFrame] = {}
    kept: list[pd.DataFrame] = []
    total = sum(len(q.rows_of(t)) for t in tables)
    stream = CsvStream(Path(out).with_suffix(".csv")) if total else None

    def emit(parts: dict[str, list[Any]]) -> None:
        frame = _quarantine_frame(parts, file_names, tables, q)
        if stream is not None:
            stream.write(frame)
        if not kept or sum(map(len, kept)) < head:
            kept.append(frame.iloc[:head - sum(map(len, kept))])

    try:
        for t_i, t in enumerate(tables):
            bad = q.rows_of(t)
            m = merged.get(t, np.empty(0, np.int64))
            summary += _summary_rows(t, q, bad, m)
            parts: dict[str, list[Any]] = {k: [] for k in ("file", "line", "table", "column", "reason", "message", "raw")}
            if t != name:
                lines = _lines(files.get(t), len(raw[t]))
                _add_part(parts, t_i, raw[t], bad, lines[bad], q.col[t][bad], q.prio[t][bad], q.msg[t][bad])
                emit(parts)
                accepted[t] = _accepted(raw[t], parsed[t], np.union1d(bad, m).astype(np.int64), tz)
                continue
            drop = np.zeros(len(q.prio[t]), bool)
            drop[bad] = True
            drop[m] = True
            pieces = []
            start = 0
            for read in _csv_batches(path, name, _CHUNK_ROWS):  # pass 2
                df = read.df
                stop = start + len(df)
                rows = np.flatnonzero(q.prio[t][start:stop] != q.NONE)
                glob = rows + start
                _add_part(parts, t_i, df, rows, glob + 2, q.col[t][glob], q.prio[t][glob], q.msg[t][glob])
                emit(parts)
                parts = {k: [] for k in parts}
                keep = np.flatnonzero(~drop[start:stop])
                if len(keep) or not pieces:
                    sub = df.iloc[keep].reset_index(drop=True)
                    stamps = {c: _instants(sub[c], tz) for c in sub.columns if c in TIMESTAMP_COLUMNS}
                    pieces.append(_accepted(sub, stamps, np.empty(0, np.int64), tz))
                start = stop
                del df, read
            accepted[t] = pieces[0] if len(pieces) == 1 else pd.concat(pieces, ignore_index=True)
    except BaseException:
        if stream is not None:
            stream.close(keep=False)
        raise
    if stream is not None:
        stream.close()
    quarantine = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0].reset_index(drop=True)
    load_summary = pd.DataFrame(summary, columns=["table", "reason", "read", "accepted", "merged", "quarantined"])
    led = Ledger(
        licenses=accepted["licenses"], orders=accepted["orders"], activations=accepted["activations"],
        legacy_periods=accepted.get("legacy_periods"), features=accepted.get("features"), source=source,
        quarantine=quarantine, load_summary=load_summary,
    )
    return led, trimmed
