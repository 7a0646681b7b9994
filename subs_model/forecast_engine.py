"""The forecast's Monte Carlo engine: whole columns of (run, license) entities, round by round.

A block of runs holds one entity per run and base license plus that run's new arrivals.
Each *round* takes every entity whose coverage ends inside the horizon, decides whether
it continues (its own churn chance, conditioned on the days already passed without a
continuation), draws the continuation's offset, outcome and added period from history,
and books it. Coverage and revenue go into day-level difference arrays per run (so a
month's active licenses and recognised revenue are two cumulative sums), counts into
``[run, metric, month]`` by one ``bincount``. No per-license Python: a round is a few dozen
numpy passes over the entities still in play; terms are a year, so a 24-month horizon
takes about three rounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .catalog import Catalog
from .forecast import _NO_X, _OUTCOME_METRIC, _OUTCOME_SKU, _OUTCOME_UPG, BLOCK_RUNS, FORECAST_METRICS, FMetric, _Grid
from .forecast_state import State
from .vocab import SUB, UPG, Edition

N_MET = len(FORECAST_METRICS)


def run_blocks(st: State, cat: Catalog, grid: _Grid, runs: int, seed: int, model: str) -> np.ndarray:
    """``[run, metric, month]`` (money in kopecks): blocks of :data:`BLOCK_RUNS` runs, each
    with its own generator ``default_rng([seed, first run of the block])``."""
    n_m = len(grid.months)
    out = np.zeros((runs, N_MET, n_m), np.int64)
    static = _Acc(1, grid, cat)
    static.coverage(np.zeros(len(st.E), np.int64), np.full(len(st.E), grid.first), st.E, None)
    static.rec += _rec_diff(static, np.zeros(len(st.rec_rate), np.int64), np.maximum(st.rec_start, grid.first),
                            st.rec_end, st.rec_rate * (st.rec_end - np.maximum(st.rec_start, grid.first)))
    base = static.result()[0]
    for b0 in range(0, runs, BLOCK_RUNS):
        n_r = min(BLOCK_RUNS, runs - b0)
        rng = np.random.default_rng([seed, b0])
        acc = _Acc(n_r, grid, cat)
        ents = _entities(st, grid, n_r, rng, model, acc)
        _rounds(ents, st, grid, acc, rng)
        out[b0 : b0 + n_r] = acc.result() + base
    return out


class _Acc:
    """Accumulators of one block: coverage and recognition by (run, day), counts by (run, metric, month)."""

    def __init__(self, n_runs: int, grid: _Grid, cat: Catalog) -> None:
        self.n_r, self.grid, self.cat = n_runs, grid, cat
        self.w = grid.n_days + 1
        self.active = np.zeros(n_runs * self.w, np.int64)
        self.rec = np.zeros(n_runs * self.w, np.float64)
        self.counts = np.zeros(n_runs * N_MET * len(grid.months), np.float64)
        self.prices = cat.price_table()

    def _day(self, days: np.ndarray) -> np.ndarray:
        return np.clip(days - self.grid.first, 0, self.grid.n_days)

    def coverage(self, run: np.ndarray, start: np.ndarray, end: np.ndarray, rate: np.ndarray | None) -> None:
        """Covered days ``start … end-1`` (clipped to the horizon); ``rate`` kopecks a day recognised over them."""
        s = run * self.w + self._day(start)
        e = run * self.w + self._day(end)
        n = len(self.active)
        self.active += np.bincount(s, minlength=n) - np.bincount(e, minlength=n)
        if rate is not None:
            self.rec += np.bincount(s, weights=rate, minlength=n) - np.bincount(e, weights=rate, minlength=n)

    def count(self, run: np.ndarray, metric: Any, day: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Add 1 (or ``weights``) to ``metric`` in the month of ``day`` (days inside the horizon only)."""
        g = self.grid
        m = (day >= g.first) & (day <= g.last)
        month = g.month_of[day[m] - g.first]
        met = metric[m] if isinstance(metric, np.ndarray) else metric
        idx = (run[m] * N_MET + met) * len(g.months) + month
        self.counts += np.bincount(idx, weights=None if weights is None else weights[m], minlength=len(self.counts))

    def price(self, day: np.ndarray, edition: np.ndarray, sku: np.ndarray) -> np.ndarray:
        return self.prices[self.cat.version_index(day), edition, sku].astype(np.float64)

    def result(self) -> np.ndarray:
        """``[run, metric, month]``: counts, money (kopecks, rounded), active on each month's last day."""
        g = self.grid
        n_m = len(g.months)
        out = self.counts.reshape(self.n_r, N_MET, n_m)
        at = g.month_ends - g.first
        days_month = np.bincount(g.month_of, minlength=n_m)
        active = np.cumsum(self.active.reshape(self.n_r, self.w), axis=1)[:, at]
        rec_day = np.cumsum(self.rec.reshape(self.n_r, self.w), axis=1)[:, : g.n_days]
        rec_month = np.add.reduceat(rec_day, np.r_[0, np.cumsum(days_month)[:-1]], axis=1)
        out[:, FMetric.ACTIVE.code] = active
        out[:, FMetric.RECOGNISED_RUB.code] = rec_month
        return np.rint(out).astype(np.int64)


@dataclass
class _Entities:
    """(run, license) entities in play: run, edition, current term end, continuation propensity,
    and the offset already passed without a continuation (``_NO_X``: none)."""

    run: np.ndarray
    edition: np.ndarray
    E: np.ndarray
    q: np.ndarray
    x: np.ndarray


def _run_params(st: State, model: str, n_r: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per run and edition code: alpha, beta (drawn from the fit's asymptotic normal, so the
    bands carry the estimate's uncertainty), whether the sBG model is used, and the pooled
    rate (drawn from its Beta posterior given the decided term ends)."""
    n_ed = len(Edition)
    a, b = np.ones((n_r, n_ed)), np.ones((n_r, n_ed))
    use = np.zeros(n_ed, bool)
    for e in range(n_ed):
        f = st.fits.get(e)
        if model == "sbg" and f is not None:
            use[e] = True
            if f.cov is not None:
                draw = rng.multivariate_normal([f.alpha, f.beta], np.asarray(f.cov), size=n_r)
                a[:, e], b[:, e] = np.maximum(draw[:, 0], 0.05 * f.alpha), np.maximum(draw[:, 1], 0.05 * f.beta)
            else:
                a[:, e], b[:, e] = f.alpha, f.beta
    n_dec = st.decided.astype(float)
    k = st.pooled * n_dec
    pooled = np.where(n_dec > 0, rng.beta(k + 1, n_dec - k + 1, size=(n_r, n_ed)), st.pooled)
    return a, b, use, pooled


def _propensity(params: tuple[np.ndarray, ...], run: np.ndarray, ed: np.ndarray, n_churn: np.ndarray,
                n_cont: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each entity's chance to continue at a term end: 1 − θ, θ ~ Beta(α + churns, β + continuations)
    under the sBG posterior, or the pooled rate of its edition."""
    a, b, use, pooled = params
    q = pooled[run, ed]
    m = use[ed]
    if m.any():
        q[m] = 1.0 - rng.beta(a[run[m], ed[m]] + n_churn[m], b[run[m], ed[m]] + n_cont[m])
    return q


def _entities(st: State, grid: _Grid, n_r: int, rng: np.random.Generator, model: str, acc: _Acc) -> _Entities:
    """The base (one entity per run and license) and each run's arrivals, whose first
    subscription is booked and covered here."""
    n = len(st.E)
    run = np.repeat(np.arange(n_r), n)
    lic = np.tile(np.arange(n), n_r)
    ed = st.edition[lic]
    params = _run_params(st, model, n_r, rng)
    q = _propensity(params, run, ed, st.n_churn[lic], st.n_cont[lic], rng)
    base = _Entities(run=run, edition=ed, E=st.E[lic], q=q, x=st.as_of_day - st.E[lic])
    new = _arrivals(st, grid, n_r, rng, params, acc)
    return _Entities(*(np.concatenate([getattr(base, k), getattr(new, k)]) for k in ("run", "edition", "E", "q", "x")))


def _arrivals(st: State, grid: _Grid, n_r: int, rng: np.random.Generator, params: tuple[np.ndarray, ...],
              acc: _Acc) -> _Entities:
    """New licenses: Poisson a month (the first month pro rata to its forecast days), a day
    uniform in the month, an edition by the recent mix, a subscription for a term."""
    n_m = len(grid.months)
    days_in = np.bincount(grid.month_of, minlength=n_m)
    full = grid.months.days_in_month.to_numpy()
    counts = rng.poisson(_arrival_rates(st, n_r, rng)[:, None] * days_in / full, size=(n_r, n_m))
    run = np.repeat(np.repeat(np.arange(n_r), n_m), counts.ravel())
    month = np.repeat(np.tile(np.arange(n_m), n_r), counts.ravel())
    m_first = np.r_[0, np.cumsum(days_in)[:-1]] + grid.first
    day = m_first[month] + np.floor(rng.random(len(month)) * days_in[month]).astype(np.int64)
    ed = rng.choice(len(st.arrival_share), size=len(day), p=st.arrival_share).astype(np.int64)
    knobs = acc.cat.knob_arrays()
    E = day + knobs["term"][acc.cat.version_index(day)]
    price = acc.price(day, ed, np.full(len(day), SUB))
    acc.count(run, FMetric.NEW_LICENSES.code, day)
    acc.count(run, FMetric.BOOKINGS_RUB.code, day, price)
    acc.coverage(run, day, E, price / np.maximum(E - day, 1))
    zeros = np.zeros(len(day), np.int64)
    q = _propensity(params, run, ed, zeros, zeros, rng)
    return _Entities(run=run, edition=ed, E=E, q=q, x=np.full(len(day), _NO_X))


def _arrival_rates(st: State, n_r: int, rng: np.random.Generator) -> np.ndarray:
    """New licenses a month per run: a trailing rate from ``n`` arrivals in 12 months is uncertain
    (Gamma(n, 1/12) posterior); a given rate is taken as it is."""
    if st.arrivals_n is None or st.arrivals_n == 0:
        return np.full(n_r, st.arrivals)
    return rng.gamma(st.arrivals_n, 1.0 / 12.0, size=n_r)


def _draw_history(st: State, ed: np.ndarray, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Per entity: the share of history's continuations later than ``x`` days after the end, and
    one of them drawn (offset, gap, period length, outcome index)."""
    n = len(ed)
    S = np.zeros(n)
    off, gap, length, outc = (np.zeros(n, np.int64) for _ in range(4))
    u = rng.random(n)
    for e, h in st.history.items():
        m = np.flatnonzero(ed == e)
        N = len(h.off)
        if not len(m) or N == 0:
            continue
        lo = np.searchsorted(h.off, x[m], side="right")
        S[m] = (N - lo) / N
        j = np.minimum(lo + np.floor(u[m] * (N - lo)).astype(np.int64), N - 1)
        off[m], gap[m], length[m], outc[m] = h.off[j], h.gap[j], h.length[j], h.outcome[j]
    return S, off, gap, length, outc


def _rounds(ents: _Entities, st: State, grid: _Grid, acc: _Acc, rng: np.random.Generator) -> None:
    """Term end after term end until every entity has left or passed the horizon."""
    # An entity is in play while a continuation could still be activated inside the horizon
    # (early renewals come before the end).
    reach = -min((int(h.off[0]) for h in st.history.values() if len(h.off)), default=0)
    reach = max(reach, 0)
    alive = ents.E <= grid.last + reach
    while True:
        idx = np.flatnonzero(alive)
        if not len(idx):
            return
        run, ed, te = ents.run[idx], ents.edition[idx], ents.E[idx]
        acc.count(run, FMetric.TERM_ENDS.code, te)
        S, off, gap, length, outc = _draw_history(st, ed, ents.x[idx], rng)
        q = ents.q[idx]
        p = q * S / np.maximum(1.0 - q + q * S, 1e-300)
        cont = rng.random(len(idx)) < p
        acc.count(run[~cont], FMetric.NOT_CONTINUED.code, te[~cont])
        a = te + off
        go = cont & (a <= grid.last)
        c = idx[go]
        a, rc, ec = a[go], run[go], ed[go]
        start = te[go] + gap[go]
        new_end = start + length[go]
        oc = outc[go]
        price = acc.price(a, ec, _OUTCOME_SKU[oc])
        up = _OUTCOME_UPG[oc]
        price[up] += acc.price(a[up], ec[up], np.full(int(up.sum()), UPG))
        acc.count(rc, _OUTCOME_METRIC[oc], a)
        acc.count(rc, FMetric.CONTINUED.code, a)
        acc.count(rc, FMetric.BOOKINGS_RUB.code, a, price)
        rs = np.maximum(start, a)
        acc.coverage(rc, np.maximum(start, grid.first), new_end, None)
        acc.rec += _rec_diff(acc, rc, rs, new_end, price)
        alive[idx] = False
        ents.E[c] = new_end
        ents.x[c] = _NO_X
        alive[c] = new_end <= grid.last + reach


def _rec_diff(acc: _Acc, run: np.ndarray, start: np.ndarray, end: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Difference array of ``amount`` recognised evenly over ``start … end-1`` (days before the
    horizon's first day land on it)."""
    rate = amount / np.maximum(end - start, 1)
    before = np.maximum(acc.grid.first - start, 0) * rate  # caught up on the first day
    s = run * acc.w + acc._day(start)
    e = run * acc.w + acc._day(end)
    n = len(acc.rec)
    d = np.bincount(s, weights=rate + before, minlength=n) - np.bincount(e, weights=rate, minlength=n)
    d -= np.bincount(s + 1, weights=before, minlength=n + 1)[:n]  # the catch-up only on that day
    return d
