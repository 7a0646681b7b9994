"""Timestamps and calendar days (the rules' §2).

Internally a day is an ``int64`` count of days since 1970-01-01 in the catalog's time
zone (Europe/Moscow by default) and an instant is ``int64`` nanoseconds since the
Unix epoch in UTC. Timestamps with an offset or ``Z`` are converted; naive ones are
taken as local (Moscow) time; historic offsets come from the tz database. Parsing is
explicit ISO 8601 only: day/month order is never guessed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numba as nb
import numpy as np
import pandas as pd

from .errors import LedgerError
from .vocab import NO_DAY, NO_DAY32, NO_TIME, NS_PER_DAY

__all__ = ["NO_DAY", "NO_TIME", "as_day", "days_to_datetime", "parse_dates", "parse_instants", "to_local_days"]

OFFSET_RE = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


def _bad_value(series: pd.Series, mask: np.ndarray, *, where: str, column: str, expected: str) -> LedgerError:
    pos = int(np.flatnonzero(mask)[0])
    n_bad = int(mask.sum())
    value = series.iloc[pos]
    msg = (
        f"{where}: row {pos + 1}, column {column!r}: {value!r} is not {expected}"
        f"{f' ({n_bad} such rows)' if n_bad > 1 else ''}; fix the export or read it with on_bad_rows='quarantine'"
    )
    return LedgerError(msg)


def parse_instants(series: pd.Series, tz: str, *, where: str = "table", column: str = "timestamp") -> np.ndarray:
    """UTC nanoseconds of each value; missing → ``NO_TIME``.

    Accepts datetime64 columns (naive = local ``tz``, aware = converted) and ISO 8601
    text (``2026-03-15T22:30:00Z``, ``…+03:00``, naive ``2026-03-15 10:00``).

    >>> s = pd.Series(["2026-03-15T22:30:00Z", "2026-03-16T01:30:00"])
    >>> (parse_instants(s, "Europe/Moscow") == parse_instants(s, "Europe/Moscow")[0]).all()
    np.True_
    """
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
    if pd.api.types.is_datetime64_dtype(dtype):
        return parse_instants(_localize(series, tz, where=where, column=column), tz, where=where, column=column)
    text = series.astype("string")
    missing = text.isna().to_numpy() | (text.str.strip() == "").fillna(True).to_numpy()
    out = np.full(len(series), NO_TIME, dtype=np.int64)
    if missing.all():
        return out
    text = text.str.strip()
    has_offset = text.str.contains(OFFSET_RE, regex=True).fillna(False).to_numpy() & ~missing
    naive = ~missing & ~has_offset
    for mask, aware in ((has_offset, True), (naive, False)):
        if not mask.any():
            continue
        parsed = pd.to_datetime(text[mask], format="ISO8601", errors="coerce", utc=aware)
        bad = parsed.isna().to_numpy()
        if bad.any():
            full = np.zeros(len(series), dtype=bool)
            full[np.flatnonzero(mask)[bad]] = True
            raise _bad_value(series, full, where=where, column=column, expected="an ISO 8601 timestamp")
        if not aware:
            parsed = _localize(parsed, tz, where=where, column=column)
        out[mask] = parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
    return out


def _localize(naive: pd.Series, tz: str, *, where: str, column: str) -> pd.Series:
    """Naive local times in ``tz``; a time the clock skipped or repeated (a DST change) is an error."""
    try:
        return naive.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except ValueError as exc:  # pandas names the first such time
        msg = (f"{where}: column {column!r}: {exc}; in {tz} that local time was skipped or repeated by a clock change, "
               "so give it with its UTC offset (e.g. 2026-03-08T02:07:00-08:00)")
        raise LedgerError(msg) from exc


def _exact_local_ns(utc_ns: np.ndarray, tz: str) -> np.ndarray:
    idx = pd.DatetimeIndex(utc_ns.view("datetime64[ns]"), tz="UTC").tz_convert(tz).tz_localize(None)
    return idx.as_unit("ns").asi8


def to_local_days(instants: np.ndarray, tz: str) -> np.ndarray:
    """Local calendar day (days since 1970-01-01 in ``tz``) of UTC-ns instants.

    The UTC offset is looked up once per UTC day from the tz database; only instants on
    a day whose offset changes (a DST or zone-rule transition) are converted one by one.

    >>> import numpy as np
    >>> int(to_local_days(np.array([1773613800 * 10**9]), "Europe/Moscow")[0])  # 2026-03-15T22:30Z
    20528
    """
    days, _ = local_days_and_last(instants, tz)
    return days


def day_offsets(instants: np.ndarray, tz: str) -> tuple[int, np.ndarray, np.ndarray]:
    """UTC offset (ns) per UTC day over the instants' span, and which days' offsets change.

    Returns ``(d0, offset, changes)`` with ``offset[d - d0]`` for UTC day ``d``; empty
    arrays when no instant is present or the span is absurd (over a million days).
    """
    d0, d1 = day_span(instants)
    n_days = int(d1) - int(d0) + 2
    if d0 > d1 or n_days > 1_000_000:
        return 0, np.empty(0, np.int64), np.empty(0, np.bool_)
    grid = (int(d0) + np.arange(n_days, dtype=np.int64)) * NS_PER_DAY
    offset = _exact_local_ns(grid, tz) - grid
    changes = np.zeros(n_days, dtype=bool)
    changes[:-1] = offset[:-1] != offset[1:]
    return int(d0), offset, changes


def fix_local_days(instants: np.ndarray, days: np.ndarray, tz: str, d0: int, changes: np.ndarray) -> int:
    """Convert exactly, in place, the days of instants on a day whose offset changes (or all of
    them when there is no offset table); returns the last day."""
    ok = instants != NO_TIME
    if len(changes):
        pos = np.where(ok, np.floor_divide(instants, NS_PER_DAY) - d0, 0)
        redo = ok & changes[pos]
    else:
        redo = ok
    days[redo] = np.floor_divide(_exact_local_ns(instants[redo], tz), NS_PER_DAY)
    return int(days[ok].max()) if ok.any() else NO_DAY


def local_days_and_last(instants: np.ndarray, tz: str) -> tuple[np.ndarray, int]:
    """:func:`to_local_days` and the last local day (``NO_DAY`` when no instant is present)."""
    v = np.ascontiguousarray(instants, dtype=np.int64)
    out = np.empty(len(v), dtype=np.int64)
    d0, offset, changes = day_offsets(v, tz)
    if len(offset) == 0:
        out.fill(NO_DAY)
        return out, fix_local_days(v, out, tz, d0, changes)
    n_change, last = local_days(v, d0, offset, changes, out, NO_DAY)
    if n_change:
        last = fix_local_days(v, out, tz, d0, changes)
    return out, int(last)


def days32(days: np.ndarray) -> np.ndarray:
    """int64 days (``NO_DAY`` missing) as int32 (``NO_DAY32`` missing), as the replay keeps them."""
    return np.where(days == NO_DAY, NO_DAY32, days).astype(np.int32)


def local_days32_and_last(instants: np.ndarray, tz: str) -> tuple[np.ndarray, int]:
    """:func:`local_days_and_last` with the days as int32 (``NO_DAY32`` missing), as the
    replay keeps them: one pass in the usual case, where no offset changes on their days."""
    v = np.ascontiguousarray(instants, dtype=np.int64)
    d0, offset, changes = day_offsets(v, tz)
    if len(offset):
        out = np.empty(len(v), dtype=np.int32)
        n_change, last = local_days(v, d0, offset, changes, out, NO_DAY32)
        if not n_change:
            return out, int(last)
    days, last = local_days_and_last(v, tz)
    return days32(days), last


def parse_dates(series: pd.Series, *, where: str = "table", column: str = "date") -> np.ndarray:
    """Days since 1970-01-01 of ``YYYY-MM-DD`` values (or date/datetime64); missing → ``NO_DAY``."""
    out = np.full(len(series), NO_DAY, dtype=np.int64)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_localize(None)
        vals = series.to_numpy(dtype="datetime64[D]")
        ok = ~np.isnat(vals)
        out[ok] = vals[ok].astype(np.int64)
        return out
    if series.dtype == object and len(series) and all(
        isinstance(v, dt.date) or v is None or (isinstance(v, float) and np.isnan(v)) for v in series.head(5)
    ):
        series = series.map(lambda v: v.isoformat()[:10] if isinstance(v, dt.date) else v)
    text = series.astype("string").str.strip()
    missing = (text.isna() | (text == "")).fillna(True).to_numpy()
    if missing.all():
        return out
    parsed = pd.to_datetime(text[~missing], format="%Y-%m-%d", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        full = np.zeros(len(series), dtype=bool)
        full[np.flatnonzero(~missing)[bad]] = True
        raise _bad_value(series, full, where=where, column=column, expected="a date YYYY-MM-DD")
    out[~missing] = parsed.to_numpy(dtype="datetime64[D]").astype(np.int64)
    return out


def as_day(value: Any, tz: str = "Europe/Moscow") -> int:
    """One day (date, ``YYYY-MM-DD``, datetime or Timestamp) as days since 1970-01-01.

    An aware timestamp is converted to ``tz`` first; a naive one is already local.

    >>> as_day("1970-01-02")
    1
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            ts = pd.Timestamp(dt.date.fromisoformat(value)) if len(value) == 10 else pd.Timestamp(value)
        except ValueError:
            msg = f"day {value!r} is not an ISO date; write it as YYYY-MM-DD"
            raise LedgerError(msg) from None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        ts = pd.Timestamp(value)
    else:
        ts = pd.Timestamp(value)
    if ts is pd.NaT:
        msg = f"day {value!r} is missing; give a date YYYY-MM-DD"
        raise LedgerError(msg)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(tz).tz_localize(None)
    return int(np.datetime64(ts.date(), "D").astype(np.int64))


def days_to_datetime(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 → ``datetime64[ns]`` at midnight (``NO_DAY`` → NaT)."""
    days = np.asarray(days, dtype=np.int64)
    ns = days * NS_PER_DAY
    ns[days == NO_DAY] = NO_TIME  # NaT
    return ns.view("datetime64[ns]")


# -- compiled helpers (the replay's joins call local_day inline) --------------------------------------------
@nb.njit(cache=True, nogil=True)
def day_span(ns):
    """First and last UTC day of the instants present (``NO_TIME`` excluded); (1, 0) when none."""
    big = np.iinfo(np.int64).max
    mn = big
    mx = NO_TIME  # NO_TIME is the least int64: it never raises the maximum
    for k in range(ns.shape[0]):  # branch-free min / max of the instants (vectorised)
        x = ns[k]
        mx = max(mx, x)
        mn = min(mn, x if x != NO_TIME else big)
    if mx == NO_TIME:
        return np.int64(1), np.int64(0)
    return mn // NS_PER_DAY, mx // NS_PER_DAY


@nb.njit(cache=True, inline="always")
def local_day(x, d0, offset, changes):
    """Local day of the instant ``x`` (present) from the per-UTC-day offsets (``offset[d -
    d0]`` for UTC day ``d``), and whether the offset changes on its day (then the day must
    be converted exactly)."""
    pos = x // NS_PER_DAY - d0
    return (x + offset[pos]) // NS_PER_DAY, np.int64(changes[pos])


@nb.njit(cache=True, nogil=True)
def local_days(ns, d0, offset, changes, out, none):
    """Local day of each instant from per-UTC-day offsets (``none`` where the instant is
    missing); returns how many fall on a day whose offset changes (the caller converts
    those exactly) and the last day."""
    n_change = 0
    last = NO_DAY
    for k in range(ns.shape[0]):
        x = ns[k]
        if x == NO_TIME:
            out[k] = none
            continue
        d, changing = local_day(x, d0, offset, changes)
        n_change += changing
        out[k] = d
        last = max(last, d)
    return n_change, last
