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

import math
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

from .catalog import Catalog
from .forecast import _NO_X, _OUTCOME_METRIC, _OUTCOME_SKU, _OUTCOME_UPG, BLOCK_RUNS, FORECAST_METRICS, FMetric, _Grid
from .forecast_state import State
from .vocab import SUB, UPG, Edition

N_MET = len(FORECAST_METRICS)
# Plain int globals for the compiled walk (numba freezes them when it compiles).
_TERM_ENDS, _NOT_CONTINUED, _CONTINUED, _BOOKINGS = (FMetric.TERM_ENDS.code, FMetric.NOT_CONTINUED.code,
                                                     FMetric.CONTINUED.code, FMetric.BOOKINGS_RUB.code)
_UPG = int(UPG)


def run_blocks(st: State, cat: Catalog, grid: _Grid, runs: int, seed: int, model: str) -> np.ndarray:
    """``[run, metric, month]`` (money in kopecks): every run's model and parameters drawn first (one
    generator, ``default_rng([seed, runs, 2**40])``), then blocks of :data:`BLOCK_RUNS` runs, each
    with its own generator ``default_rng([seed, first run of the block])`` — so the result does not
    depend on how many threads (:func:`subs_model.workers`) run the blocks side by side."""
    from concurrent.futures import ThreadPoolExecutor

    from .workers import workers

    n_m = len(grid.months)
    out = np.zeros((runs, N_MET, n_m), np.int64)
    static = _Acc(1, grid, cat)
    static.coverage(np.zeros(len(st.E), np.int64), np.full(len(st.E), grid.first), st.E, None)
    static.rec += _rec_diff(static, np.zeros(len(st.rec_rate), np.int64), np.maximum(st.rec_start, grid.first),
                            st.rec_end, st.rec_rate * (st.rec_end - np.maximum(st.rec_start, grid.first)))
    base = static.result()[0]

    every = _run_params(st, model, runs, np.random.default_rng([seed, runs, 1 << 40]))

    def block(b0: int) -> None:
        n_r = min(BLOCK_RUNS, runs - b0)
        rng = np.random.default_rng([seed, b0])
        acc = _Acc(n_r, grid, cat)
        params = tuple(p[b0 : b0 + n_r] if p.ndim == 2 else p for p in every)
        new = _arrivals(st, grid, n_r, rng, params, acc)
        _rounds(params, new, st, grid, acc, rng)
        out[b0 : b0 + n_r] = acc.result() + base

    starts = range(0, runs, BLOCK_RUNS)
    n_threads = min(workers(), len(starts))
    if n_threads <= 1:
        for b0 in starts:
            block(b0)
    else:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(block, starts))
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

    def grid_day(self, days: np.ndarray) -> np.ndarray:
        """Days as offsets into the horizon, clipped to it."""
        return np.clip(days - self.grid.first, 0, self.grid.n_days)

    def coverage(self, run: np.ndarray, start: np.ndarray, end: np.ndarray, rate: np.ndarray | None) -> None:
        """Covered days ``start … end-1`` (clipped to the horizon); ``rate`` kopecks a day recognised over them."""
        s = run * self.w + self.grid_day(start)
        e = run * self.w + self.grid_day(end)
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
    """(run, license) entities in play: run, edition, current term end, the Beta posterior of the
    chance to continue (pseudo-counts), and the offset already passed without a continuation
    (``_NO_X``: none)."""

    run: np.ndarray
    edition: np.ndarray
    E: np.ndarray
    pa: np.ndarray
    pb: np.ndarray
    keep: np.ndarray  #: the chance to stay whatever theta (1 − leak)
    x: np.ndarray


def _run_params(st: State, model: str, n_r: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Per run and edition code: alpha, beta, the chance to stay whatever theta (``1 - leak``),
    whether the sBG model is used, and the pooled rate. Under the sBG model each run takes its
    edition's sBG with a leak (with the Akaike weight of that model, :func:`leak_weight`) or the
    pure sBG, and one draw of that estimate (:meth:`SBGFit.draws`), so the bands carry the
    uncertainty of the model's structure and of its estimate; the pooled rate is drawn from its
    Beta posterior given the decided term ends."""
    n_ed = len(Edition)
    a, b, keep = np.ones((n_r, n_ed)), np.ones((n_r, n_ed)), np.ones((n_r, n_ed))
    use = np.zeros(n_ed, bool)
    for e in range(n_ed):
        f, g = st.fits.get(e), st.leaky.get(e)
        if model == "sbg" and f is not None:
            use[e] = True
            d = f.draws(n_r, rng)
            if g is not None:
                d = np.where((rng.random(n_r) < st.leak_weight.get(e, 0.0))[:, None], g.draws(n_r, rng), d)
            a[:, e], b[:, e], keep[:, e] = d[:, 0], d[:, 1], 1.0 - d[:, 2]
    n_dec = st.decided.astype(float)
    k = st.pooled * n_dec
    pooled = np.where(n_dec > 0, rng.beta(k + 1, n_dec - k + 1, size=(n_r, n_ed)), st.pooled)
    return a, b, keep, use, pooled


def _posterior(params: tuple[np.ndarray, ...], run: np.ndarray, ed: np.ndarray) -> tuple[np.ndarray, ...]:
    """A new license's prior of its chance to continue, as (churns, continuations) pseudo-counts and
    the chance to stay whatever theta: ``(alpha, beta, 1 - leak)`` under the sBG model; the pooled
    rate ``p`` of its edition as a point mass (``(1 − p) K, p K, 1`` with ``K`` so large that nothing
    is learnt)."""
    a, b, keep, use, pooled = params
    big = 1e12
    m = use[ed]
    pa = np.where(m, a[run, ed], (1.0 - pooled[run, ed]) * big)
    pb = np.where(m, b[run, ed], pooled[run, ed] * big)
    return pa, pb, np.where(m, keep[run, ed], 1.0)


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
    pa, pb, keep = _posterior(params, run, ed)
    return _Entities(run=run, edition=ed, E=E, pa=pa, pb=pb, keep=keep, x=np.full(len(day), _NO_X))


def _arrival_rates(st: State, n_r: int, rng: np.random.Generator) -> np.ndarray:
    """New licenses a month per run: a trailing rate from ``n`` arrivals in 12 months is uncertain
    (Gamma(n, 1/12) posterior); a given rate is taken as it is."""
    if st.arrivals_n is None or st.arrivals_n == 0:
        return np.full(n_r, st.arrivals)
    return rng.gamma(st.arrivals_n, 1.0 / 12.0, size=n_r)


def _rounds(params: tuple[np.ndarray, ...], ents: _Entities, st: State, grid: _Grid, acc: _Acc,
            rng: np.random.Generator) -> None:
    """Term end after term end until every entity has left or passed the horizon (the compiled walk)."""
    # An entity is in play while a continuation could still be activated inside the horizon
    # (early renewals come before the end).
    reach = max(-min((int(h.off[0]) for h in st.history.values() if len(h.off)), default=0), 0)
    hs = [st.history.get(e) for e in range(len(Edition))]
    sizes = np.array([0 if h is None else len(h.off) for h in hs], np.int64)
    ptr = np.r_[0, np.cumsum(sizes)].astype(np.int64)

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(h, name) for h in hs if h is not None] + [np.empty(0, np.int64)]).astype(np.int32)

    # One row per continuation (offset, gap, period, outcome): a draw reads one cache line, not four.
    hist = np.ascontiguousarray(np.stack([joined("off"), joined("gap"), joined("length"), joined("outcome")], axis=1))

    n_m = len(grid.months)
    a, b, keep, use, pooled = params
    _walk(np.int64(rng.integers(0, 2**62)), st.E, st.edition, st.n_churn.astype(np.int64), st.n_cont.astype(np.float64),
          st.as_of_day, a, b, keep, use, pooled, ents.run, ents.edition, ents.E, ents.pa, ents.pb, ents.keep, ents.x,
          ptr,
          np.ascontiguousarray(hist[:, 0]), hist, _OUTCOME_METRIC, _OUTCOME_SKU,
          _OUTCOME_UPG, acc.prices.astype(np.float64), acc.cat.knob_arrays()["from_day"].astype(np.int64),
          grid.first, grid.last, reach, grid.month_of, acc.counts.reshape(acc.n_r, N_MET, n_m),
          acc.active.reshape(acc.n_r, acc.w), acc.rec.reshape(acc.n_r, acc.w))


@nb.njit(cache=True, nogil=True)
def _walk(seed, b_E, b_ed, b_churn, b_cont, as_of_day, A, B, K, use, pooled, run, ed, E, pa, pb, keep, x, ptr, h_off,
          hist, out_metric, out_sku, out_upg, prices, from_days, first, last, reach, month_of, counts, active,
          rec):
    """The base (every run × license, its posterior from the run's ``A``, ``B``, ``K`` (1 − leak) and
    its own churns and continuations, or the run's ``pooled`` rate where ``use`` is off) and then the
    arrivals (``run, ed, E, pa, pb, keep, x``), each walked by :func:`_walk_one`."""
    np.random.seed(seed)
    big = 1e12  # a pooled rate: pseudo-counts so large that nothing is learnt
    for r in range(A.shape[0]):
        for i in range(b_E.shape[0]):
            e = b_ed[i]
            if use[e]:
                j = _theta_churns(b_churn[i], b_cont[i], A[r, e], B[r, e], 1.0 - K[r, e])
                ai, bi, ki = A[r, e] + j, B[r, e] + b_cont[i], K[r, e]
            else:
                ai, bi, ki = (1.0 - pooled[r, e]) * big, pooled[r, e] * big, 1.0
            _walk_one(r, e, b_E[i], as_of_day - b_E[i], ai, bi, ki, ptr, h_off, hist, out_metric, out_sku,
                      out_upg, prices, from_days, first, last, reach, month_of, counts, active, rec)
    for i in range(run.shape[0]):
        _walk_one(run[i], ed[i], E[i], x[i], pa[i], pb[i], keep[i], ptr, h_off, hist, out_metric, out_sku, out_upg,
                  prices, from_days, first, last, reach, month_of, counts, active, rec)


@nb.njit(cache=True, nogil=True, inline="always")
def _theta_churns(k, n, a, b, c):
    """Of a license's ``k`` churns, how many its own ``theta`` caused (the rest: the leak ``c``), drawn
    from the posterior weights of :func:`subs_model.retention.churn_weights`; ``k`` without a leak."""
    if k == 0 or c <= 0.0:
        return k
    w = np.empty(k + 1)
    top = -np.inf
    for j in range(k + 1):
        w[j] = (math.lgamma(k + 1.0) - math.lgamma(j + 1.0) - math.lgamma(k - j + 1.0) + (k - j) * math.log(c)
                + j * math.log1p(-c) + math.lgamma(a + j) + math.lgamma(b + n) - math.lgamma(a + b + n + j))
        top = max(top, w[j])
    total = 0.0
    for j in range(k + 1):
        w[j] = math.exp(w[j] - top)
        total += w[j]
    u = np.random.random() * total
    for j in range(k):
        u -= w[j]
        if u < 0.0:
            return j
    return k


@nb.njit(cache=True, nogil=True, inline="always")
def _walk_one(r, e, te, xi, ai, bi, ki, ptr, h_off, hist, out_metric, out_sku, out_upg, prices, from_days,
              first, last, reach, month_of, counts, active, rec):
    """Each entity, term end after term end: continue with ``q S / (1 − q + q S)`` (``q``: the
    posterior mean chance to continue, ``k b / (a + b)`` with ``k`` = 1 − leak, which learns from each continuation,
    ``b += 1`` — the Beta–geometric predictive, so no churn chance needs drawing; ``S``: share of
    history's continuations later than the ``x`` days already passed), draw one of those
    continuations (offset, gap, period, outcome), book it and cover it; stop at a churn or
    when nothing more can land inside the horizon. Writes into ``counts`` [run, metric, month]
    and the day difference arrays ``active`` and ``rec`` [run, day]."""
    n_days = last - first + 1
    h0, h1 = ptr[e], ptr[e + 1]
    while te <= last + reach:
        inside = first <= te <= last
        if inside:
            counts[r, _TERM_ENDS, month_of[te - first]] += 1.0
        lo, hi = h0, h1  # first continuation later than xi (binary search; usually none has passed)
        if h1 == h0 or xi < h_off[h0]:
            hi = h0
        while lo < hi:
            mid = (lo + hi) >> 1
            if h_off[mid] <= xi:
                lo = mid + 1
            else:
                hi = mid
        n_later = h1 - lo
        S = n_later / max(h1 - h0, 1)
        qi = ki * bi / (ai + bi)
        p = qi * S / max(1.0 - qi + qi * S, 1e-300)
        if n_later == 0 or np.random.random() >= p:
            if inside:
                counts[r, _NOT_CONTINUED, month_of[te - first]] += 1.0
            break
        j = min(lo + np.int64(np.random.random() * n_later), h1 - 1)
        a = te + hist[j, 0]
        if a > last:
            break
        start = te + hist[j, 1]
        new_end = start + hist[j, 2]
        oc = hist[j, 3]
        v = 0
        while v + 1 < from_days.shape[0] and from_days[v + 1] <= a:
            v += 1
        price = prices[v, e, out_sku[oc]] + (prices[v, e, _UPG] if out_upg[oc] else 0.0)
        if a >= first:
            m = month_of[a - first]
            counts[r, out_metric[oc], m] += 1.0
            counts[r, _CONTINUED, m] += 1.0
            counts[r, _BOOKINGS, m] += price
        active[r, min(max(start - first, 0), n_days)] += 1
        active[r, min(max(new_end - first, 0), n_days)] -= 1
        rs = max(start, a, first)
        if new_end > rs:
            rate = price / (new_end - rs)
            rec[r, min(rs - first, n_days)] += rate
            rec[r, min(new_end - first, n_days)] -= rate
        te = new_end
        xi = _NO_X
        bi += 1.0


def _rec_diff(acc: _Acc, run: np.ndarray, start: np.ndarray, end: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Difference array of ``amount`` recognised evenly over ``start … end-1`` (days before the
    horizon's first day land on it)."""
    rate = amount / np.maximum(end - start, 1)
    before = np.maximum(acc.grid.first - start, 0) * rate  # caught up on the first day
    s = run * acc.w + acc.grid_day(start)
    e = run * acc.w + acc.grid_day(end)
    n = len(acc.rec)
    d = np.bincount(s, weights=rate + before, minlength=n) - np.bincount(e, weights=rate, minlength=n)
    d -= np.bincount(s + 1, weights=before, minlength=n + 1)[:n]  # the catch-up only on that day
    return d
