"""Parsing the raw text of ledger columns: ISO 8601 timestamps, dates and ruble amounts.

Each parser takes a whole column and returns its values with a mask (or reason) of the
values that do not parse; nothing is guessed (day/month order, formats).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .days import NO_DAY, NO_TIME, OFFSET_RE
from .quarantine import R


TRUE = {"true", "1", "yes", "да", "t", "y"}
FALSE = {"false", "0", "no", "нет", "f", "n"}


def raw_text(s: pd.Series) -> pd.Series:
    """The text of a raw column. Values were trimmed once when read (:func:`ledger._trim`,
    the one whitespace policy), so validation compares exactly the values the ledger keeps."""
    return s if isinstance(s.dtype, pd.StringDtype) else s.astype("str")


def isin_text(s: pd.Series, values: pd.Series) -> np.ndarray:
    """Membership of string values (Arrow's hash set: pandas' isin is far slower on strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(values) or not len(s):
        return np.zeros(len(s), bool)
    arr = pa.array(raw_text(s).array)
    vals = pa.array(raw_text(values).array)
    return pc.fill_null(pc.is_in(arr, value_set=vals), False).to_numpy(zero_copy_only=False)


def is_empty(s: pd.Series) -> pd.Series:
    return pd.Series((s.isna() | (raw_text(s) == "")).to_numpy(), index=s.index)


def instant_values(s: pd.Series, tz: str) -> tuple[np.ndarray, np.ndarray]:
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
    text = raw_text(s)
    empty = (text.isna() | (text == "")).to_numpy()
    if empty.all():
        return out, bad
    arr = pa.array(text.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    filled = arr.filter(pa.array(~empty))
    import re

    first_aware = bool(re.search(OFFSET_RE, filled[0].as_py())) if len(filled) else False
    # Fast path: a column that is all with offsets, or all naive, like its first value (a
    # failing cast can cost far more than a succeeding one, so only the likely one is tried).
    vals = _cast(filled, first_aware)
    if vals is not None:
        _store(out, bad, np.flatnonzero(~empty), vals, first_aware, tz)
        return out, bad
    offset = pc.fill_null(pc.match_substring_regex(arr, OFFSET_RE), False).to_numpy(zero_copy_only=False) & ~empty
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


def day_values(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    out = np.full(len(s), NO_DAY, np.int64)
    text = raw_text(s)
    empty = is_empty(s).to_numpy()
    ok_shape = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy()
    parsed = pd.to_datetime(text.where(ok_shape), format="%Y-%m-%d", errors="coerce")
    good = parsed.notna().to_numpy()
    out[good] = parsed[good].to_numpy(dtype="datetime64[D]").astype(np.int64)
    return out, ~good & ~empty


def amount_reasons(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Kopecks (-1 where missing or bad) and the reason of each bad amount (or '').

    Plain ``1234`` / ``1234.5`` / ``1234.56`` values of up to 16 digits before the point take
    an exact Arrow decimal path; only the others go through the slower classification below.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(raw_text(s).array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    plain = pc.fill_null(pc.match_substring_regex(arr, r"^\d{1,16}(?:\.\d{1,2})?$"), False).to_numpy(zero_copy_only=False)
    empty = is_empty(s).to_numpy()
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
    text = raw_text(s).str.replace(r"[\s\u00a0]", "", regex=True).str.replace(",", ".", regex=False)
    empty = is_empty(s).to_numpy()
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
