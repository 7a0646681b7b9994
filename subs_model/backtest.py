"""Backtest: forecasts from past cutoffs, each from what was known then, against what happened.

For each cutoff the forecast sees only the replay of the ledger up to that day (the
replay's ``as_of``: no order, payment or activation after it), once with each license's
own history (sBG, the model) and once with one pooled rate per edition (the homogeneous
baseline). The actuals come from the replay up to the ledger's ``as_of``, with the same
definitions; only months wholly observed by then are compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .catalog import Catalog
from .days import as_day
from .forecast import CONTINUED_OUTCOMES, FMetric, ForecastError, _Grid, forecast
from .ledger import Ledger
from .money import rubles

__all__ = ["Backtest", "actuals", "backtest"]

#: The metrics a backtest compares (``not_continued`` is left out: its actual is not decided
#: until a year after the term end).
COMPARED = (FMetric.ACTIVE, FMetric.TERM_ENDS, FMetric.CONTINUED, FMetric.NEW_LICENSES, FMetric.BOOKINGS_RUB,
            FMetric.RECOGNISED_RUB)
MODELS = ("sbg", "pooled")


@dataclass(frozen=True)
class Backtest:
    """Result of :func:`backtest`.

    ``table``: per cutoff, model, month and metric — ``forecast`` (mean), ``p05``, ``p95``,
    ``actual``, ``error`` (forecast − actual), ``ape`` (|error| / actual, NaN where the actual
    is 0) and ``covered`` (the 90 % band held the actual). ``summary``: per model and metric —
    ``mape`` (mean of ``ape``), ``coverage`` (share of months covered), ``months`` compared.
    ``description``: the result in English words (the API's); :meth:`description_in` says it
    in a report's language. ``cutoffs``, ``months``: what was asked.
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    as_of: pd.Timestamp
    description: str
    cutoffs: tuple[Any, ...] = ()
    months: int = 0

    def __str__(self) -> str:
        return self.description

    def description_in(self, lang: str = "en") -> str:
        """:attr:`description` in ``lang`` (ru or en): days as people read them, Russian plural forms."""
        from .forecast_text import backtest_lines

        return "\n".join(backtest_lines(self.summary, self.as_of, self.cutoffs, self.months, lang))


def actuals(rep: Any, first_day: int, months: int) -> pd.DataFrame:
    """What happened in the forecast's months (from ``first_day``), with the forecast's
    definitions: ``month, metric, actual`` (money in rubles). Flows count days from
    ``first_day`` on; ``active`` is counted on each month's last day."""
    from .metrics import expiry_outcomes, revenue

    grid = _Grid.make(first_day - 1, months)
    per = rep.periods
    s = np.sort(per["start"].to_numpy().astype("datetime64[D]").astype(np.int64))
    e = np.sort(per["end"].to_numpy().astype("datetime64[D]").astype(np.int64))
    me = grid.month_ends
    vals: dict[str, np.ndarray] = {FMetric.ACTIVE.value: (np.searchsorted(s, me, "right") - np.searchsorted(e, me, "right")).astype(float)}
    out = expiry_outcomes(rep, rep.as_of)
    end = out["end"].to_numpy().astype("datetime64[D]").astype(np.int64)
    a = end + out["offset_days"].fillna(0).to_numpy().astype(np.int64)
    outcome = out["outcome"].astype("str").to_numpy()
    cont = np.isin(outcome, [o.value for o in CONTINUED_OUTCOMES])
    vals[FMetric.TERM_ENDS.value] = _per_month(grid, end)
    vals[FMetric.CONTINUED.value] = _per_month(grid, a[cont])
    for o in CONTINUED_OUTCOMES:
        vals[o.value] = _per_month(grid, a[outcome == o.value])
    first = per.groupby(per["license_id"].to_numpy(), sort=False)["start"].min()
    vals[FMetric.NEW_LICENSES.value] = _per_month(grid, first.to_numpy().astype("datetime64[D]").astype(np.int64))
    rev = revenue(rep, rep.as_of)
    by_month = rev.groupby("month")[["bookings_kop", "recognised_kop"]].sum() if len(rev) else pd.DataFrame(columns=["bookings_kop", "recognised_kop"])
    by_month = by_month.reindex(grid.months, fill_value=0)
    vals[FMetric.BOOKINGS_RUB.value] = rubles(by_month["bookings_kop"].to_numpy())
    vals[FMetric.RECOGNISED_RUB.value] = rubles(by_month["recognised_kop"].to_numpy())
    return pd.DataFrame([{"month": m, "metric": k, "actual": float(v[i])} for k, v in vals.items()
                         for i, m in enumerate(grid.months)])


def _per_month(grid: _Grid, days: np.ndarray) -> np.ndarray:
    """Count of ``days`` falling in each month of the grid."""
    d = days[(days >= grid.first) & (days <= grid.last)]
    return np.bincount(grid.month_of[d - grid.first], minlength=len(grid.months)).astype(float)


def backtest(ledger: Ledger, catalog: Catalog | None = None, cutoffs: Sequence[Any] = (), months: int = 12, *,
             as_of: Any = None, runs: int = 100, seed: int = 0, arrivals: str | float = "trailing") -> Backtest:
    """Forecast from each past cutoff with what was known then, and compare with what happened.

    Parameters
    ----------
    ledger, catalog : Ledger, Catalog
    cutoffs : sequence of date-like
        Days the forecasts start after (month ends compare whole months best).
    months : int
        Months forecast from each cutoff; months not wholly observed by ``as_of`` are dropped.
    as_of : date-like, optional
        The day the actuals are known to (default: the ledger's last event day).
    runs, seed, arrivals
        As for :func:`subs_model.forecast`.

    Returns
    -------
    Backtest

    Examples
    --------
    >>> bt = sm.backtest(led, sm.Catalog.default(), ["2024-10-31", "2025-04-30"], months=12)  # doctest: +SKIP
    >>> bt.summary  # doctest: +SKIP
    """
    from .replay import replay

    cat = catalog if catalog is not None else Catalog.default()
    if not len(cutoffs):
        msg = "backtest: no cutoffs; give one or more past days, e.g. ['2025-04-30', '2025-10-31']"
        raise ForecastError(msg)
    rep = replay(ledger, cat, None if as_of is None else as_of)
    end_day = as_day(rep.as_of, cat.timezone)
    rows = []
    for c in cutoffs:
        c_day = as_day(c, cat.timezone)
        if c_day >= end_day:
            msg = f"backtest: cutoff {c!r} is not before the actuals' last day {rep.as_of.date()}; give an earlier cutoff"
            raise ForecastError(msg)
        act = actuals(rep, c_day + 1, months)
        for model in MODELS:
            f = forecast(ledger, cat, pd.Timestamp(c_day, unit="D"), months, runs, seed, arrivals, model=model)
            rows.append(_compare(f.table, act, c_day, end_day, model))
    table = pd.concat(rows, ignore_index=True)
    summary = _summary(table)
    from .forecast_text import backtest_lines

    desc = "\n".join(backtest_lines(summary, rep.as_of, cutoffs, months, "en"))
    return Backtest(table=table, summary=summary, as_of=rep.as_of, description=desc, cutoffs=tuple(cutoffs), months=months)


def _compare(fc: pd.DataFrame, act: pd.DataFrame, c_day: int, end_day: int, model: str) -> pd.DataFrame:
    """Forecast beside actual for the compared metrics and the months wholly observed."""
    t = fc.merge(act, on=["month", "metric"])
    t = t[t["metric"].isin([m.value for m in COMPARED])]
    month_end = (t["month"] + pd.offsets.MonthEnd(0)).to_numpy().astype("datetime64[D]").astype(np.int64)
    t = t[month_end <= end_day].rename(columns={"mean": "forecast"})
    t.insert(0, "model", model)
    t.insert(0, "cutoff", pd.Timestamp(c_day, unit="D"))
    t["error"] = t["forecast"] - t["actual"]
    t["ape"] = np.where(t["actual"] != 0, (t["error"] / t["actual"].where(t["actual"] != 0)).abs(), np.nan)
    t["covered"] = (t["p05"] <= t["actual"]) & (t["actual"] <= t["p95"])
    return t.reset_index(drop=True)


def _summary(table: pd.DataFrame) -> pd.DataFrame:
    """MAPE and band coverage per model and metric."""
    g = table.groupby(["metric", "model"], sort=False)
    out = g.agg(mape=("ape", "mean"), coverage=("covered", "mean"), months=("ape", "size")).reset_index()
    return out
