"""Renewal-price elasticity measured from the price changes a catalog records.

When a catalog version changes the renewal price (R10), customers whose term ended just
before the change decided at the old price and those whose term ended just after at the
new one. :func:`estimate_elasticity` compares them: every **decided** term end (its whole
ordering window lies before ``as_of``; undecided ones are censored, left out) within
``window_days`` of a change, whether a renewal or subscription was ordered in that window
(as :func:`subs_model.calibrate` counts a continuation), at the renewal price in force on
the end day. The model is the simulator's:

    P(continue) = q + (1 - q) · min(1, exp(a_edition) · (price / reference) ** -elasticity)

with ``q`` the share of churners whose return falls inside the window (estimated by the
calibration), one level ``a`` per edition (so the editions' mixes do not pass for a price
effect), one elasticity. It is fitted by maximum likelihood on the (edition, price) cells;
the 90 % interval is the profile-likelihood interval (where twice the log-likelihood drops
by 2.706). With no price change among the decided term ends, the result says so and holds
no estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .behaviour import Behaviour
from .catalog import Catalog
from .ledger import Ledger

__all__ = ["ElasticityEstimate", "estimate_elasticity"]

#: Half-width, in days, of the window of term ends on each side of a price change.
WINDOW_DAYS = 365
#: Fewest decided term ends on each side of a change for it to count.
MIN_PER_SIDE = 30
#: Chi-square(1) quantile of a 90 % profile-likelihood interval.
CHI2_90 = 2.705543454095404
#: Elasticities searched (a negative value would say a dearer renewal keeps more customers).
SEARCH = (-5.0, 20.0)


@dataclass(frozen=True, slots=True)
class ElasticityEstimate:
    """The renewal-price elasticity a ledger shows (``estimate`` None when it shows none).

    ``low``, ``high``: 90 % profile-likelihood interval (NaN where the likelihood does not
    drop enough inside the searched range); ``decisions``: decided term ends used;
    ``changes``: the days the renewal price changed; ``prices``: the table of cells
    (edition, renewal price in rubles, decisions, continued, share); ``statement``: the
    result in words (English, for the API; :meth:`statement_in` says it in a report's
    language); ``seen``: the price changes found, measurable or not; ``window_days``: the
    days on each side of a change whose term ends were used.
    """

    estimate: float | None
    low: float
    high: float
    decisions: int
    changes: tuple[str, ...]
    prices: pd.DataFrame
    statement: str
    seen: tuple[str, ...] = ()
    window_days: int = WINDOW_DAYS

    @property
    def measured(self) -> bool:
        return self.estimate is not None

    def statement_in(self, lang: str = "en") -> str:
        """:attr:`statement` in ``lang`` (ru or en), days and plurals as people read them (:mod:`subs_model.notes`).

        Examples
        --------
        >>> est = ElasticityEstimate(None, math.nan, math.nan, 0, (), pd.DataFrame(), "…")
        >>> est.statement_in("ru")
        'в данных нет изменения цены продления: в каталоге одна цена продления за всё время'
        """
        from . import notes as N

        if lang not in ("ru", "en"):
            msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
            raise ValueError(msg)
        ru = lang == "ru"
        window = N.count(self.window_days, "day", lang, genitive=True)
        if not self.seen and not self.measured:
            return ("в данных нет изменения цены продления: в каталоге одна цена продления за всё время" if ru else
                    "the ledger holds no renewal price change: the catalog has one renewal price throughout")
        if not self.measured:
            days = ", ".join(N.date(d, lang) for d in self.seen)
            return (f"в данных нет измеримого изменения цены продления: у изменений цены ({days}) меньше "
                    f"{N.count(MIN_PER_SIDE, 'term_end', lang, genitive=True)} с решённым исходом по одну из сторон в пределах {window}"
                    if ru else
                    f"the ledger holds no measurable renewal price change: the change(s) of {days} have fewer than "
                    f"{MIN_PER_SIDE} decided term ends on one side within {window}")
        days = ", ".join(N.date(d, lang) for d in self.changes)
        e, lo, hi = (N.number(x, lang, 2) for x in (self.estimate, self.low, self.high))
        return (f"эластичность по цене продления {e} (90 %: {lo}–{hi}); использовано {N.count(self.decisions, 'term_end', lang)} "
                f"с решённым исходом в пределах {window} от изменения цены ({days})" if ru else
                f"renewal-price elasticity {e} (90 %: {lo}–{hi}) from {N.count(self.decisions, 'term_end', lang)} decided within "
                f"{window} of the price change(s) of {days}")

    def source(self) -> str:
        """How a :class:`Behaviour` names where its elasticity comes from."""
        return (f"estimated from {self.decisions} renewal decisions around the price change(s) of "
                f"{', '.join(self.changes)} (90 %: {self.low:.2f}–{self.high:.2f})")


def estimate_elasticity(ledger: Ledger, catalog: Catalog, as_of: Any = None, *, prior: Behaviour | None = None,
                        window_days: int = WINDOW_DAYS) -> ElasticityEstimate:
    """Estimate the renewal-price elasticity from the ledger's price changes (see the module).

    Examples
    --------
    >>> import subs_model as sm
    >>> led = sm.simulate(sm.Behaviour(arrivals_per_month=40, legacy_licenses=50), sm.Catalog.default(),
    ...                   start="2022-01-01", end="2025-12-31", seed=2)
    >>> est = sm.estimate_elasticity(led, sm.Catalog.default())
    >>> est.measured, est.statement[:40]
    (False, 'the ledger holds no renewal price change')
    """
    from .calibrate import observe_orders, observed_returns, observed_term_ends
    from .replay import replay

    prior = prior or Behaviour()
    rep = replay(ledger, catalog, as_of)
    obs = observe_orders(ledger, catalog, rep)
    ends = observed_term_ends(obs, ledger, rep, catalog, prior)
    _, q = observed_returns(ends, obs, prior)
    return estimate_from_ends(ends.E, obs.edition[ends.per_lic], ends.cont, ends.decided, catalog, q,
                              prior.reference_prices["renewal"] * 100, window_days=window_days)


def estimate_from_ends(E: np.ndarray, edition: np.ndarray, cont: np.ndarray, decided: np.ndarray, catalog: Catalog,
                       q: float, ref_kopecks: float, *, window_days: int = WINDOW_DAYS) -> ElasticityEstimate:
    """The estimate from term ends (day, edition code, continued, decided) — the arrays the
    calibration computes anyway, so that it can use the estimate without a second replay."""
    from .vocab import EDITIONS, REN

    prices = catalog.price_table()[:, :, REN]  # [version, edition] kopecks
    from_days = catalog.knob_arrays()["from_day"]
    change_at = [int(from_days[v]) for v in range(1, len(from_days)) if (prices[v] != prices[v - 1]).any()]
    empty = pd.DataFrame(columns=["edition", "renewal_price_rub", "decisions", "continued", "share"])
    if not change_at:
        return ElasticityEstimate(None, math.nan, math.nan, 0, (), empty,
                                  "the ledger holds no renewal price change: the catalog has one renewal price throughout",
                                  window_days=window_days)
    ok = decided & (edition >= 0)
    used = np.zeros(len(E), bool)
    days = []
    for c in change_at:
        before, after = ok & (E >= c - window_days) & (E < c), ok & (E >= c) & (E < c + window_days)
        if before.sum() >= MIN_PER_SIDE and after.sum() >= MIN_PER_SIDE:
            used |= before | after
            days.append(pd.Timestamp(c, unit="D").date().isoformat())
    if not days:
        seen = ", ".join(pd.Timestamp(c, unit="D").date().isoformat() for c in change_at)
        return ElasticityEstimate(None, math.nan, math.nan, int(ok.sum()), (), empty,
                                  f"the ledger holds no measurable renewal price change: the change(s) of {seen} have fewer "
                                  f"than {MIN_PER_SIDE} decided term ends on one side within {window_days} days",
                                  tuple(pd.Timestamp(c, unit="D").date().isoformat() for c in change_at), window_days)
    price = prices[catalog.version_index(E[used]), edition[used]].astype(float)
    cells = pd.DataFrame({"edition": edition[used], "price": price, "cont": cont[used].astype(int)}) \
        .groupby(["edition", "price"], as_index=False).agg(decisions=("cont", "size"), continued=("cont", "sum"))
    est, low, high = _fit(cells, q, ref_kopecks)
    table = pd.DataFrame({
        "edition": [EDITIONS[int(e)].value for e in cells["edition"]], "renewal_price_rub": cells["price"] / 100,
        "decisions": cells["decisions"], "continued": cells["continued"], "share": cells["continued"] / cells["decisions"],
    })
    n = int(used.sum())
    statement = (f"renewal-price elasticity {est:.2f} (90 %: {low:.2f}–{high:.2f}) from {n} decided term ends within "
                 f"{window_days} days of the price change(s) of {', '.join(days)}")
    return ElasticityEstimate(float(est), float(low), float(high), n, tuple(days), table, statement, tuple(days), window_days)


def _loglik(e: float, a: np.ndarray, x: np.ndarray, k: np.ndarray, n: np.ndarray, g: np.ndarray, q: float) -> float:
    p = q + (1 - q) * np.minimum(np.exp(a[g] - e * x), 1.0)
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float((k * np.log(p) + (n - k) * np.log1p(-p)).sum())


def _profile(e: float, x: np.ndarray, k: np.ndarray, n: np.ndarray, g: np.ndarray, q: float, n_g: int) -> tuple[float, np.ndarray]:
    """Log-likelihood at elasticity ``e``, maximised over the edition levels (each 1-D)."""
    from scipy.optimize import minimize_scalar

    a = np.zeros(n_g)
    total = 0.0
    for j in range(n_g):
        m = g == j
        x_j, k_j, n_j = x[m], k[m], n[m]
        cap = float(np.min(e * x_j))  # exp(a - e·x) <= 1 somewhere: beyond, the likelihood is flat
        res = minimize_scalar(lambda aj: -_loglik(e, np.array([aj]), x_j, k_j, n_j, np.zeros(len(x_j), np.int64), q),
                              bounds=(cap - 15.0, cap + 1e-9), method="bounded", options={"xatol": 1e-7})
        a[j] = res.x
        total += -res.fun
    return total, a


def _fit(cells: pd.DataFrame, q: float, ref: float) -> tuple[float, float, float]:
    """Maximum-likelihood elasticity and its 90 % profile-likelihood interval."""
    from scipy.optimize import brentq, minimize_scalar

    g = pd.factorize(cells["edition"])[0].astype(np.int64)
    n_g = int(g.max()) + 1
    x = np.log(cells["price"].to_numpy() / ref)
    k, n = cells["continued"].to_numpy(float), cells["decisions"].to_numpy(float)
    prof = lambda e: _profile(e, x, k, n, g, q, n_g)[0]  # noqa: E731
    res = minimize_scalar(lambda e: -prof(e), bounds=SEARCH, method="bounded", options={"xatol": 1e-5})
    e_hat, ll_max = float(res.x), -float(res.fun)
    drop = lambda e: 2 * (ll_max - prof(e)) - CHI2_90  # noqa: E731
    low = brentq(drop, SEARCH[0], e_hat, xtol=1e-4) if drop(SEARCH[0]) > 0 else math.nan
    high = brentq(drop, e_hat, SEARCH[1], xtol=1e-4) if drop(SEARCH[1]) > 0 else math.nan
    return e_hat, low, high
