"""Shared pieces of the metrics: the outcome groups, day and month arithmetic, the periods seen as of a day."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..days import NO_DAY, as_day

from ..errors import MetricsError
from ..replay import Replay
from ..vocab import LEGACY, Edition, Outcome, Source, categories


DAY = np.timedelta64(1, "D")


RENEWED = tuple(o.value for o in Outcome if o not in (Outcome.CHURNED, Outcome.OPEN))
IN_GRACE = (Outcome.GRACE_RENEWAL.value, Outcome.GRACE_SUBSCRIPTION.value)
RENEWALS = (Outcome.EARLY_RENEWAL.value, Outcome.GRACE_RENEWAL.value)
SUBSCRIPTIONS = (Outcome.EARLY_SUBSCRIPTION.value, Outcome.GRACE_SUBSCRIPTION.value, Outcome.LATE_SUBSCRIPTION.value)
#: Continued by the deadline: a renewal, or a full-price subscription where a renewal would have been accepted.
ON_TIME = (*RENEWALS, Outcome.EARLY_SUBSCRIPTION.value, Outcome.GRACE_SUBSCRIPTION.value)


def int_or_na(values: np.ndarray, valid: np.ndarray) -> pd.arrays.IntegerArray:
    """Nullable integers: ``values`` where ``valid``, else NA."""
    v = np.where(valid, values, 0).astype(np.int64)
    return pd.arrays.IntegerArray(v, ~np.asarray(valid, dtype=bool))


def as_of_day(rep: Replay, as_of: Any) -> pd.Timestamp:
    if as_of is None:
        return rep.as_of
    day = pd.Timestamp(np.datetime64(as_day(as_of, rep.catalog.timezone), "D"))
    return min(day, rep.as_of)


def to_days(col: pd.Series) -> np.ndarray:
    """datetime64 column → int days (NaT → NO_DAY)."""
    v = col.to_numpy(dtype="datetime64[ns]")
    out = v.astype("datetime64[D]").astype(np.int64)
    out[np.isnat(v)] = NO_DAY
    return out


@dataclass(frozen=True, slots=True)
class _View:
    """Periods seen as of a day, as integer columns (rows in the replay's license/start order)."""

    rows: np.ndarray  # positions in rep.periods
    lic: np.ndarray  # license rank
    order: np.ndarray  # order row, -1 legacy
    start: np.ndarray
    end: np.ndarray
    act: np.ndarray  # activation day, NO_DAY for legacy
    src: np.ndarray  # Source codes
    edition: np.ndarray  # per row: Edition codes, -1 unknown


def replay_view(rep: Replay, as_of: pd.Timestamp) -> _View:
    p = rep.periods
    src = p["source"].cat.codes.to_numpy().astype(np.int64) if isinstance(p["source"].dtype, pd.CategoricalDtype) else (
        pd.Categorical(p["source"].astype("str"), categories=categories(Source)).codes.astype(np.int64)
    )
    start, end, act = to_days(p["start"]), to_days(p["end"]), to_days(p["activated_on"])
    as_of_d = int(to_days(pd.Series([as_of]))[0])
    legacy = src == LEGACY
    seen = np.where(legacy, start <= as_of_d, act <= as_of_d)
    rows = np.flatnonzero(seen)
    keys = rep.keys
    lic = keys["license"][rows] if "license" in keys else pd.factorize(p["license_id"])[0][rows]
    order = keys["order"][rows] if "order" in keys else np.full(len(rows), -1, np.int64)
    prep = rep.prepared
    edition = prep.license_edition[lic] if len(lic) else np.empty(0, np.int64)
    return _View(rows, lic, order, start[rows], end[rows], act[rows], src[rows], edition)


def month_start(col: pd.Series) -> np.ndarray:
    """First day of each timestamp's month (datetime64[ns]), without Period objects."""
    return month_starts_ns(month_index(to_days(col)))


def to_datetime64(days: np.ndarray) -> np.ndarray:
    from ..days import days_to_datetime

    return days_to_datetime(days)


def group_first(lic: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the value at the first row of its (contiguous) license group."""
    if not len(lic):
        return values
    starts = np.r_[True, lic[1:] != lic[:-1]]
    return values[np.flatnonzero(starts)][np.cumsum(starts) - 1]


def month_index(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of int days (``NO_DAY`` → ``NO_DAY``).

    Many days span few dates: they read a table of the span's months (numpy's day → month
    conversion costs about 40 ns a value; a table lookup a few).
    """
    days = np.asarray(days, dtype=np.int64)
    if len(days) >= 4096:
        lo, hi = int(days.min()), int(days.max())
        if lo != NO_DAY and hi - lo < len(days):
            table = np.arange(lo, hi + 1).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
            return table[days - lo]
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_starts_ns(months: np.ndarray) -> np.ndarray:
    """First instant (datetime64[ns]) of each month index (``NO_DAY`` → NaT)."""
    months = np.asarray(months, dtype=np.int64)
    ok = months != NO_DAY
    if len(months) >= 4096 and ok.all():
        lo, hi = int(months.min()), int(months.max())
        table = np.arange(lo, hi + 1).astype("datetime64[M]").astype("datetime64[ns]")
        return table[months - lo]
    return months.astype("datetime64[M]").astype("datetime64[ns]")


def exact_sums(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Integer sums by index. ``bincount`` adds in float64, exact while every partial sum
    stays below 2**53 kopecks (about 90 trillion rubles); checked, with an exact fallback."""
    if not len(values):
        return np.zeros(size, np.int64)
    if np.abs(values).sum(dtype=np.float64) < 2.0**52:
        return np.rint(np.bincount(index, weights=values.astype(np.float64), minlength=size)).astype(np.int64)
    out = np.zeros(size, np.int64)
    np.add.at(out, index, values)
    return out


class MonthAdder:
    """Day + k calendar months for many days (day of month clipped to the target month's length).

    Months are numbered once; each call then reads month starts from a table of the few
    months the days span (numpy's month → day conversion costs about 20 ns a value).
    """

    def __init__(self, days: np.ndarray) -> None:
        self.month = month_index(days)
        self.m0 = int(self.month.min()) if len(days) else 0
        self.at = self.month - self.m0  # each day's month in the table
        self.span = int(self.at.max()) + 1 if len(days) else 0
        self.dom = days - self._starts(0, self.span)[self.at]

    def _starts(self, k: int, n: int) -> np.ndarray:
        """First day of months ``m0 + k .. m0 + k + n - 1``."""
        return np.arange(self.m0 + k, self.m0 + k + n).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)

    def __call__(self, k: int) -> np.ndarray:
        table = self._starts(k, self.span + 1)  # one month more: the last month's length
        start = table[self.at]
        return start + np.minimum(self.dom, table[self.at + 1] - start - 1)


def select_rows(df: pd.DataFrame, col: str, edition: str | None = None, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Rows of one edition (``None``, ``""`` or ``"all"``: every edition) whose ``col`` lies in ``[start, end]``."""
    keep = np.ones(len(df), bool)
    if edition not in (None, "", "all"):
        if edition not in categories(Edition):
            msg = f"edition {edition!r} is not one of 'all', {', '.join(repr(e) for e in categories(Edition))}; pass one of them"
            raise MetricsError(msg)
        keep &= (df["edition"].astype("str") == edition).to_numpy()
    if start not in (None, ""):
        keep &= (df[col] >= pd.Timestamp(start)).to_numpy()
    if end not in (None, ""):
        keep &= (df[col] <= pd.Timestamp(end)).to_numpy()
    return df if keep.all() else df[keep]
