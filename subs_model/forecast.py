"""Forecast of the customer base: each license from its own tenure, plus explicit arrivals.

:func:`forecast` takes the state of every license on ``as_of`` (the replay of the ledger up
to that day: nothing later is seen) and follows it month by month, ``runs`` times:

1. **Who continues.** Each license's chance of leaving at a term end, ``theta``, is drawn
   from its posterior under the shifted-beta-geometric model fitted to the ledger per
   edition (:mod:`subs_model.retention`): ``Beta(alpha + churns, beta + continuations)``
   — a license that renewed five times is, on the evidence, a loyal one. Each run takes
   either the pure sBG or the sBG with a leak (everyone may also leave with chance ``c``,
   so retention flattens at ``1 - c`` instead of rising to 1), the latter with its Akaike
   weight, and one draw of that model's estimate: the bands carry both doubts. ``model="pooled"``
   gives every license of an edition the pooled continuation rate instead (the homogeneous
   baseline a forecast should beat).
2. **When and how.** A continuation's day relative to the term end, its outcome (early or
   grace renewal, subscription, upgrade, late subscription) and the period it adds are
   drawn together from the decided continuations of the ledger's history (edition by
   edition), so the rules in force shape the forecast the way they shaped the past. A
   license whose term ended before ``as_of`` and has not continued yet continues only
   with an offset beyond what has passed, with the matching lower probability.
3. **New licenses.** ``arrivals``: ``"trailing"`` (the last 12 months' rate of new
   licenses, zero if there were none), ``"none"``, or a number per month; each new
   license gets a full term and a churn chance from the fitted prior.
4. **Money.** Bookings at catalog prices (kopecks, on the activation day; an upgrade books
   the renewal and the upgrade); recognised revenue spreads each booking over the period
   it adds, and starts from the unearned part of the periods running on ``as_of`` (each
   at its catalog price, released over its remaining days). Breakage (lapsed renewal
   codes) and codes paid but not activated are not forecast.

The result's table is tidy: ``month, metric, mean, p05, p95`` over the runs (money in
rubles, ``*_rub``), with the choices made stated in :attr:`Forecast.description`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .catalog import Catalog
from .days import as_day
from .errors import SubsModelError
from .ledger import Ledger
from .vocab import REN, SUB, Coded, Outcome, categories, numbered

__all__ = ["FORECAST_METRICS", "Forecast", "ForecastError", "forecast", "retention_curves"]

#: Term ends a continuation history needs per edition before the editions are pooled.
MIN_HISTORY = 20
#: Runs a block simulates at once (bounds memory: runs × licenses entities in flight).
BLOCK_RUNS = 10
MONTHS_MAX = 240
ARRIVAL_MAX = 1_000_000


class ForecastError(SubsModelError, ValueError):
    """The arguments of a forecast or a backtest are invalid."""


class FMetric(Coded):
    """What a forecast measures per month; ``code`` is its row in the ``[run, metric, month]`` array."""

    ACTIVE = "active"  # licenses covered on the month's last day
    TERM_ENDS = "term_ends"  # coverage ends falling in the month
    CONTINUED = "continued"  # continuations activated in the month (all outcomes below)
    EARLY_RENEWAL = "early_renewal"
    GRACE_RENEWAL = "grace_renewal"
    EARLY_SUBSCRIPTION = "early_subscription"
    GRACE_SUBSCRIPTION = "grace_subscription"
    UPGRADE = "upgrade"
    LATE_SUBSCRIPTION = "late_subscription"
    NOT_CONTINUED = "not_continued"  # term ends in the month that will not be continued
    NEW_LICENSES = "new_licenses"
    BOOKINGS_RUB = "bookings_rub"
    RECOGNISED_RUB = "recognised_rub"


numbered(FMetric)
FORECAST_METRICS = tuple(categories(FMetric))
CONTINUED_OUTCOMES = (Outcome.EARLY_RENEWAL, Outcome.GRACE_RENEWAL, Outcome.EARLY_SUBSCRIPTION,
                      Outcome.GRACE_SUBSCRIPTION, Outcome.UPGRADE, Outcome.LATE_SUBSCRIPTION)
#: Per continued outcome (in CONTINUED_OUTCOMES order): its metric row and the SKUs it books.
_OUTCOME_METRIC = np.array([FMetric[o.name].code for o in CONTINUED_OUTCOMES])
_OUTCOME_SKU = np.array([REN, REN, SUB, SUB, REN, SUB])
_OUTCOME_UPG = np.array([False, False, False, False, True, False])
_NO_X = np.iinfo(np.int64).min // 4  # "nothing has passed yet": every offset allowed


@dataclass(frozen=True)
class Forecast:
    """Result of :func:`forecast`.

    ``table``: ``month, metric, mean, p05, p95`` (tidy; money metrics end in ``_rub``).
    ``runs``: the raw ``[run, metric, month]`` array (money in kopecks). ``retention``:
    the fitted sBG per edition (``alpha, beta`` with standard errors, licenses seen) and the
    pooled continuation rate. ``description``: the choices, in words — print it.
    """

    table: pd.DataFrame
    runs: np.ndarray
    months: pd.DatetimeIndex
    as_of: pd.Timestamp
    model: str
    arrivals_per_month: float
    arrivals_rule: str
    retention: pd.DataFrame
    base_licenses: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def description(self) -> str:
        """What was forecast, from which state, with which model and arrivals (English; :meth:`description_in` for a report)."""
        return self.description_in("en")

    def description_in(self, lang: str = "en") -> str:
        """:attr:`description` in ``lang`` (ru or en), one line per choice: days as people read them,
        numbers with the language's separators and Russian plural forms (:mod:`subs_model.notes`).

        Examples
        --------
        >>> f = sm.forecast(led, months=6, runs=20)  # doctest: +SKIP
        >>> print(f.description_in("ru").splitlines()[0])  # doctest: +SKIP
        прогноз с 31.10.2026: 6 месяцев, 20 прогонов; 6 310 лицензий покрыты или ещё не решены на 31.10.2026
        """
        from .forecast_text import forecast_lines

        return "\n".join(forecast_lines(self, lang))

    def __str__(self) -> str:
        return self.description

    def metric(self, name: str) -> pd.DataFrame:
        """The rows of one metric (``month, mean, p05, p95``)."""
        t = self.table
        return t[t["metric"] == name].drop(columns="metric").reset_index(drop=True)


def _check(months: Any, runs: Any, seed: Any, arrivals: Any, model: str) -> None:
    """Raise a :class:`ForecastError` naming the first bad argument."""
    whole = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    if not whole(months) or not 1 <= months <= MONTHS_MAX:
        msg = f"forecast: months={months!r}; give a whole number of months from 1 to {MONTHS_MAX}"
        raise ForecastError(msg)
    if not whole(runs) or runs < 2:
        msg = f"forecast: runs={runs!r}; give a whole number >= 2 (a band needs runs)"
        raise ForecastError(msg)
    if not whole(seed) or seed < 0:
        msg = f"forecast: seed={seed!r}; give a whole number >= 0"
        raise ForecastError(msg)
    if isinstance(arrivals, str):
        if arrivals not in ("trailing", "none"):
            msg = f"forecast: arrivals={arrivals!r}; give 'trailing', 'none' or new licenses a month (a number >= 0)"
            raise ForecastError(msg)
    elif isinstance(arrivals, bool) or not isinstance(arrivals, (int, float, np.integer, np.floating)) \
            or not 0 <= float(arrivals) <= ARRIVAL_MAX:
        msg = f"forecast: arrivals={arrivals!r}; give 'trailing', 'none' or new licenses a month from 0 to {ARRIVAL_MAX:,}"
        raise ForecastError(msg)
    if model not in ("sbg", "pooled"):
        msg = f"forecast: model={model!r}; give 'sbg' (each license from its history) or 'pooled' (the homogeneous baseline)"
        raise ForecastError(msg)


def forecast(ledger: Ledger, catalog: Catalog | None = None, as_of: Any = None, months: int = 24, runs: int = 100,
             seed: int = 0, arrivals: str | float = "trailing", *, model: str = "sbg") -> Forecast:
    """Monthly outlook of the current customer base plus new arrivals, with 5–95 % bands.

    Parameters
    ----------
    ledger, catalog : Ledger, Catalog
        The data and its rules (default :meth:`Catalog.default`).
    as_of : date-like, optional
        The forecast starts the day after; only what happened by this day is used
        (default: the ledger's last event day).
    months : int
        Calendar months forecast, from the month of the day after ``as_of``.
    runs, seed : int
        Monte Carlo runs; same seed, same result.
    arrivals : {"trailing", "none"} or float
        New licenses a month: the trailing 12 months' rate (zero if none came), none, or
        this number.
    model : {"sbg", "pooled"}
        ``"sbg"``: each license continues with its own posterior churn chance given its
        history; ``"pooled"``: one rate per edition (the homogeneous baseline).

    Returns
    -------
    Forecast
        ``.table`` (``month, metric, mean, p05, p95``) and ``.description``.

    Examples
    --------
    >>> import subs_model as sm
    >>> f = sm.forecast(sm.read_ledger("data/sample"), sm.Catalog.default(), "2026-10-31", months=12, runs=20)  # doctest: +SKIP
    >>> print(f.description)  # doctest: +SKIP
    >>> f.metric("active").head()  # doctest: +SKIP
    """
    from .forecast_engine import run_blocks
    from .forecast_state import observe

    _check(months, runs, seed, arrivals, model)
    cat = catalog if catalog is not None else Catalog.default()
    as_of_day = None if as_of is None else as_day(as_of, cat.timezone)
    state = observe(ledger, cat, as_of_day, arrivals)
    grid = _Grid.make(state.as_of_day, months)
    arr = run_blocks(state, cat, grid, runs, seed, model)
    return Forecast(
        table=_table(arr, grid), runs=arr, months=grid.months, as_of=pd.Timestamp(state.as_of_day, unit="D"),
        model=model, arrivals_per_month=state.arrivals, arrivals_rule=state.arrivals_rule,
        retention=state.retention_table(), base_licenses=len(state.E), notes=tuple(state.notes),
    )


@dataclass(frozen=True, slots=True)
class _Grid:
    """The forecast's days (``first … last``) and calendar months."""

    first: int  #: the day after as_of
    last: int  #: the last day of the last month
    months: pd.DatetimeIndex
    month_ends: np.ndarray  #: last day of each month (days)
    month_of: np.ndarray  #: month index of each day ``first + i``

    @classmethod
    def make(cls, as_of_day: int, months: int) -> _Grid:
        first = as_of_day + 1
        m0 = np.datetime64(first, "D").astype("datetime64[M]")
        ms = m0 + np.arange(months)
        ends = ((ms + 1).astype("datetime64[D]") - 1).astype(np.int64)
        days = np.arange(first, int(ends[-1]) + 1)
        return cls(first=first, last=int(ends[-1]), months=pd.DatetimeIndex(ms.astype("datetime64[ns]")),
                   month_ends=ends, month_of=np.searchsorted(ends, days))

    @property
    def n_days(self) -> int:
        return self.last - self.first + 1


def _table(arr: np.ndarray, grid: _Grid) -> pd.DataFrame:
    """Mean and 5–95 % band over runs, per month and metric (money in rubles to the kopeck)."""
    x = arr.astype(float)
    money = [FMetric.BOOKINGS_RUB.code, FMetric.RECOGNISED_RUB.code]
    x[:, money] /= 100.0
    mean, lo, hi = x.mean(axis=0), np.quantile(x, 0.05, axis=0), np.quantile(x, 0.95, axis=0)
    n_m = len(grid.months)
    out = pd.DataFrame({
        "month": np.tile(grid.months, len(FORECAST_METRICS)),
        "metric": np.repeat(FORECAST_METRICS, n_m),
        "mean": mean.ravel(), "p05": lo.ravel(), "p95": hi.ravel(),
    })
    m = out["metric"].isin([FMetric.BOOKINGS_RUB.value, FMetric.RECOGNISED_RUB.value])
    out.loc[m, ["mean", "p05", "p95"]] = out.loc[m, ["mean", "p05", "p95"]].round(2)
    return out




def retention_curves(fc: Forecast, tenures: int = 10) -> pd.DataFrame:
    """Renewal rate at term ends ``1 … tenures`` per edition: the fitted sBG curve (``r(t)``,
    rising with tenure; where the edition also has a fit with a leak, the two curves averaged with
    the leak model's Akaike weight, as the runs use them) and the pooled rate (flat), as
    ``edition, tenure, model, retention``."""
    from .retention import SBGFit

    rows = []
    t = np.arange(1, tenures + 1)
    for r in fc.retention.itertuples(index=False):
        if np.isfinite(r.alpha):
            curve = SBGFit(r.alpha, r.beta).retention(t)
            w = getattr(r, "leak_weight", np.nan)
            if np.isfinite(w) and w > 0:
                curve = (1 - w) * curve + w * SBGFit(r.leak_alpha, r.leak_beta, leak=r.leak).retention(t)
            rows.append(pd.DataFrame({"edition": r.edition, "tenure": t, "model": "sbg", "retention": curve}))
        rows.append(pd.DataFrame({"edition": r.edition, "tenure": t, "model": "pooled",
                                  "retention": float(r.pooled_continuation)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["edition", "tenure", "model", "retention"])
