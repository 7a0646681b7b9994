"""The cohort simulator: customers behave, the catalog's rules decide.

Licenses arrive month by month (plus legacy licenses from the old rules). At each end of
coverage every customer decides, with the probabilities of a :class:`Behaviour`, whether
to continue, on which day to order, what to buy, whether to forget the code, and how long
each order stage takes. Whether the resulting activation lands in the grace window, what
it costs and how many days it adds is decided by the :class:`Catalog` through the same
rule arithmetic as the replay engine (:mod:`subs_model._kernel`). The output is a
:class:`Ledger` in the data contract, so everything downstream runs on simulated and
real data alike — and the replay of a simulated ledger agrees with the simulator.

Licenses are independent, so one compiled kernel follows each license round after round
(one *round* per coverage end), on all cores, writing its orders to slots of its chunk.
Random numbers are counter-based — a hash of (seed key, round, license, draw) — so a
license sees the same draws whatever happens to the others or to the catalog: scenarios
run on common random numbers, and the result does not depend on the number of threads.
Lead times are lognormal, drawn by inverse transform from tabulated quantiles.
"""

from __future__ import annotations

import datetime as dt
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.std import tqdm  # a console bar; tqdm.auto warns "IProgress not found" in every notebook without ipywidgets

from . import _kernel as K
from .behaviour import Behaviour
from .catalog import FIRST_DAY, LAST_DAY, Catalog
from .days import as_day
from .errors import SimulationError
from .ledger import COLUMNS, Ledger
from .vocab import EDITIONS, NO_TIME, NS_PER_DAY, REN, STAGE_TICKET, STAGES, SUB, UPG, Edition, categories
from .workers import workers

N_STAGES = len(STAGES)

__all__ = ["SimCore", "simulate", "simulate_core"]



@dataclass(frozen=True, slots=True)
class SimCore:
    """The simulator's output before it becomes string-keyed tables.

    Orders are arrays indexed by order; times are *local* (Moscow wall clock) ns since
    1970-01-01, ``NO_TIME`` where a stage has not happened by the end of the horizon.
    """

    n_licenses: int
    edition: np.ndarray  # per license: its Edition code
    legacy_start: np.ndarray  # per license, -1 = no legacy period (days)
    legacy_until: np.ndarray
    o_lic: np.ndarray
    o_sku: np.ndarray
    o_times: np.ndarray  # (n_orders, 6): requested, invoiced, paid, ticket, code issued, activated
    o_upgrade_of: np.ndarray  # order index of the renewal an upgrade converts, else -1
    o_accepted: np.ndarray  # the simulator's own verdict: this order's activation is accepted
    customer_years: int
    rounds: int


# -- counter-based random numbers ------------------------------------------------------------------
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)
_SLACK = 1.15  # slots per chunk over the pilot's orders per license
PROPENSITY_ROUND = 1022  # the draw of a license's propensity to continue (heterogeneous behaviour)
FIRST_ROUND = 1023  # the draws of a new license's first subscription (rounds are 0 … max_rounds-1)
MAX_ROUNDS = 1000
#: Most licenses one simulation may hold (carried over plus expected arrivals): beyond it the
#: arrays of a run would not fit the memory of a workstation.
SIM_LICENSES_MAX = 20_000_000
_EPOCH = dt.date(1970, 1, 1)


def _sim_day(value: Any, name: str) -> int:
    """``start``/``end`` as a day number: ``YYYY-MM-DD``, a date or a day number, inside the catalog's range."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) != 10 or text[4] != "-" or text[7] != "-":
                raise ValueError(text)
            day = (dt.date.fromisoformat(text) - _EPOCH).days
        except ValueError:
            msg = f"simulate: {name} {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2021-01-01"
            raise SimulationError(msg) from None
    else:
        day = as_day(value)
    lo, hi = (FIRST_DAY - _EPOCH).days, (LAST_DAY - _EPOCH).days
    if not lo <= day <= hi:
        msg = f"simulate: {name} {value!r} is out of range; give a day from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
        raise SimulationError(msg)
    return day
# Draw columns of a round (uniforms); lead-time normals start at the columns below.
U_CONT, U_TIMING, U_BUY, U_FORGET, U_HOUR, U_LAPSE, U_DELAY, U_RETURN, U_RET_DELAY, U_HOUR2, U_HOUR3 = range(11)
Z_MAIN, Z_FOLLOW, Z_RETURN = 64, 80, 96


@nb.njit(cache=True, inline="always")
def _u(key, rnd, lic, col):
    """A uniform in (0, 1): a SplitMix64 hash of (key, round, license, column).

    Each license's draws depend only on its own id, the round and the column, so a
    license sees the same numbers whatever happens to the others or to the catalog —
    common random numbers across scenarios — and only the draws a decision needs are made.
    """
    z = np.uint64(lic) * _C3 + np.uint64(key) + ((np.uint64(rnd) << np.uint64(20)) + np.uint64(col)) * _C1
    z = (z ^ (z >> np.uint64(30))) * _C2
    z = (z ^ (z >> np.uint64(27))) * _C3
    z = z ^ (z >> np.uint64(31))
    return (np.float64(z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


# Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
_NA = np.array([-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
                1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00])
_NB = np.array([-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
                6.680131188771972e01, -1.328068155288572e01])
_NC = np.array([-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
                -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00])
_ND = np.array([7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00])


@nb.njit(cache=True)
def _ndtri(p):
    """Standard normal quantile of ``p`` in (0, 1)."""
    if p < 0.02425:
        q = np.sqrt(-2.0 * np.log(p))
        return ((((((_NC[0] * q + _NC[1]) * q + _NC[2]) * q + _NC[3]) * q + _NC[4]) * q + _NC[5])
                / ((((_ND[0] * q + _ND[1]) * q + _ND[2]) * q + _ND[3]) * q + 1.0))
    if p > 1.0 - 0.02425:
        q = np.sqrt(-2.0 * np.log(1.0 - p))
        return -((((((_NC[0] * q + _NC[1]) * q + _NC[2]) * q + _NC[3]) * q + _NC[4]) * q + _NC[5])
                 / ((((_ND[0] * q + _ND[1]) * q + _ND[2]) * q + _ND[3]) * q + 1.0))
    q = p - 0.5
    r = q * q
    return ((((((_NA[0] * r + _NA[1]) * r + _NA[2]) * r + _NA[3]) * r + _NA[4]) * r + _NA[5]) * q
            / (((((_NB[0] * r + _NB[1]) * r + _NB[2]) * r + _NB[3]) * r + _NB[4]) * r + 1.0))


LEAD_GRID = 4096  # cells of the tabulated lead-time quantiles


@nb.njit(cache=True)
def _lead_table(median_h, sigma):
    """Lead-time quantiles in ns, ``[stage, j]`` at probability ``j / LEAD_GRID`` (lognormal)."""
    g = LEAD_GRID
    out = np.zeros((median_h.shape[0], g + 1), np.float64)
    for s in range(median_h.shape[0]):
        for j in range(1, g):
            out[s, j] = median_h[s] * np.exp(sigma[s] * _ndtri(j / g)) * 3.6e12
    return out


@nb.njit(cache=True, inline="always")
def _lead_ns(u, stage, table, median_h, sigma):
    """A lognormal lead time (ns) by inverse transform: tabulated quantiles, linearly
    interpolated; the two outermost cells (the tails) computed exactly."""
    x = u * LEAD_GRID
    j = np.int64(x)
    if j == 0 or j >= LEAD_GRID - 1:
        return np.int64(median_h[stage] * np.exp(sigma[stage] * _ndtri(u)) * 3.6e12)
    a = table[stage, j]
    return np.int64(a + (table[stage, j + 1] - a) * (x - j))


@nb.njit(cache=True, inline="always")
def _chain(t, request_ns, key, rnd, lic, col, upgrade, table, median_h, sigma, horizon_ns):
    """Stage instants (request, invoice, paid, ticket, code, activation) into ``t`` (6 slots).

    Lead times are lognormal; instants are whole seconds, as exports carry them. A stage
    after the horizon has not happened, nor has any later one (the order is in progress: R9).
    """
    for c in range(6):
        t[c] = NO_TIME
    cur = request_ns
    if cur > horizon_ns:
        return
    t[0] = cur
    for stage in range(N_STAGES):  # invoice, payment, ticket, code, activation
        if stage == STAGE_TICKET and not upgrade:
            continue
        cur = cur + _lead_ns(_u(key, rnd, lic, col + stage), stage, table, median_h, sigma)
        if cur > horizon_ns:
            return
        t[stage + 1] = (cur // 1_000_000_000) * 1_000_000_000


@nb.njit(cache=True, inline="always")
def _hour_ns(u):
    """An office-hours instant of the day (09:00–18:00) from a uniform."""
    return np.int64((9.0 + 9.0 * u) * 3.6e12)


@nb.njit(cache=True, inline="always")
def _delay(u, mean_days):
    """Whole days ~ exponential with the given mean (floored)."""
    return np.int64(np.floor(-np.log1p(-min(u, 1.0 - 1e-12)) * mean_days))


@nb.njit(cache=True, inline="always")
def _after_subscription(end, act_ns, from_day, term, sub_basis, ren_basis):
    """The license's end after an accepted subscription activation at ``act_ns`` (R3)."""
    day = act_ns // NS_PER_DAY
    v = K.version_on(day, from_day)
    _, ne = K.extend(SUB, end, True, day, term[v], sub_basis[v], ren_basis[v])
    return max(end, ne)


@nb.njit(cache=True, inline="always")
def _put(buf_lic, buf_sku, buf_t, buf_up, buf_ok, slot, cap, lic, sku, t, up, ok):
    if slot < cap:
        buf_lic[slot] = lic
        buf_sku[slot] = sku
        for c in range(6):
            buf_t[slot, c] = t[c]
        buf_up[slot] = up
        buf_ok[slot] = ok


# ``parallel=True`` without a prange: no threading layer is started (threads come from
# :func:`simulate_core`, fork-safe), but numba's parallel pipeline compiles this loop about
# twice as fast as the plain one (docs/performance.md).
@nb.njit(cache=True, nogil=True, parallel=True)
def _simulate_chunks(
    key, chunks, stride, cap, edition, arr_day, first_end, has_sub0, is_legacy,
    end_day, earliest, max_rounds, min_off,
    cdf, cdf_len, guide, lo_off, p_cont, prop, p_up, P, table, median_h, sigma, horizon_ns,
    from_day, term, grace, sub_basis, ren_basis, legacy_prior,
    o_lic, o_sku, o_t, o_up, o_ok, n_out, cy_out, rounds_out,
):
    """Every license of each chunk, round after round, until it churns or the horizon ends.

    Chunk ``chunks[c]`` holds licenses ``chunks[c], chunks[c] + stride, …`` (strided, so
    every chunk is a like sample of the base and makes about as many orders). Its orders go
    to slots ``c*cap …``; ``n_out[c]`` is how many it made (a
    chunk that needs more than ``cap`` is counted but not written: rerun it larger).
    ``P``: p_subscription_instead, p_late_renewal, p_forget, p_subscription_after_lapse,
    p_return, upgrade_delay_days, lapse_subscription_delay_days, return_delay_days.
    """
    p_sub_instead, p_late, p_forget, p_sub_lapse, p_return = P[0], P[1], P[2], P[3], P[4]
    up_delay, lapse_delay, ret_delay = P[5], P[6], P[7]
    never = np.iinfo(np.int64).max
    n_c = chunks.shape[0]
    n_lic = edition.shape[0]
    for c in range(n_c):
        t = np.empty(6, np.int64)
        base = c * cap
        k = 0
        cy = 0
        rmax = 0
        for lic in range(chunks[c], n_lic, stride):
            ed = edition[lic]
            has_sub = has_sub0[lic]
            if arr_day[lic] >= 0:  # a new license: its first subscription
                req = arr_day[lic] * NS_PER_DAY + _hour_ns(_u(key, FIRST_ROUND, lic, 0))
                _chain(t, req, key, FIRST_ROUND, lic, Z_MAIN, False, table, median_h, sigma, horizon_ns)
                _put(o_lic, o_sku, o_t, o_up, o_ok, base + k, base + cap, lic, SUB, t, -1, t[5] != NO_TIME)
                k += 1
                if t[5] == NO_TIME:
                    continue
                day = t[5] // NS_PER_DAY
                v = K.version_on(day, from_day)
                _, E = K.extend(SUB, 0, False, day, term[v], sub_basis[v], ren_basis[v])
                has_sub = True
            else:
                E = first_end[lic]
            rnd = 0
            while rnd < max_rounds and E + min_off <= end_day:
                r = rnd
                rnd += 1
                cy += 1
                v = K.version_on(E, from_day)
                closing = K.closing_day(E, from_day, grace)
                cont = _u(key, r, lic, U_CONT) < p_cont[v, ed] * prop[lic]
                if not cont:
                    notice = closing  # the day the customer is gone: churn, maybe a return later
                else:
                    u = _u(key, r, lic, U_TIMING)
                    j = guide[ed, np.int64(u * (guide.shape[1] - 1))]
                    while cdf[ed, j] <= u:  # searchsorted(cdf, u, side="right"), from its guide
                        j += 1
                    off = lo_off[ed] + min(j, cdf_len[ed] - 1)
                    req_day = max(E + off, earliest)
                    if req_day > end_day:
                        break
                    u = _u(key, r, lic, U_BUY)
                    ren = u >= p_sub_instead if not K.window_closed(req_day, closing) else u < p_late
                    forget = ren and _u(key, r, lic, U_FORGET) < p_forget
                    req = req_day * NS_PER_DAY + _hour_ns(_u(key, r, lic, U_HOUR))
                    _chain(t, req, key, r, lic, Z_MAIN, False, table, median_h, sigma, horizon_ns)
                    if forget:
                        t[5] = NO_TIME
                    act = t[5]
                    act_day = act // NS_PER_DAY if act != NO_TIME else never
                    sku = REN if ren else SUB
                    if ren:
                        prior = K.has_prior(has_sub, is_legacy[lic],
                                            legacy_prior[K.version_on(min(act_day, end_day), from_day)])
                        ok = act != NO_TIME and not K.window_closed(act_day, closing) and prior
                    else:
                        ok = act != NO_TIME
                    main = k
                    _put(o_lic, o_sku, o_t, o_up, o_ok, base + k, base + cap, lic, sku, t, -1, ok)
                    k += 1
                    if ok:
                        va = K.version_on(act_day, from_day)
                        _, ne = K.extend(sku, E, True, act_day, term[va], sub_basis[va], ren_basis[va])
                        E = max(E, ne)
                        has_sub = True
                        continue
                    if not ren:
                        break  # a subscription still in progress at the horizon
                    # A renewal that lapsed (forgotten, or activated too late): upgrade, subscription, or churn.
                    if forget:
                        if t[4] == NO_TIME:
                            break
                        notice = max(closing, t[4] // NS_PER_DAY)
                    elif act == NO_TIME:
                        break
                    else:
                        notice = act_day
                    if notice > end_day:
                        break
                    f = _u(key, r, lic, U_LAPSE)
                    pu = p_up[K.version_on(notice, from_day), ed]
                    if f < pu + p_sub_lapse:
                        is_up = f < pu
                        rq_day = notice + _delay(_u(key, r, lic, U_DELAY), up_delay if is_up else lapse_delay)
                        if rq_day > end_day:
                            break
                        rq = rq_day * NS_PER_DAY + _hour_ns(_u(key, r, lic, U_HOUR2))
                        _chain(t, rq, key, r, lic, Z_FOLLOW, is_up, table, median_h, sigma, horizon_ns)
                        _put(o_lic, o_sku, o_t, o_up, o_ok, base + k, base + cap, lic, UPG if is_up else SUB, t,
                             main if is_up else -1, t[5] != NO_TIME)
                        k += 1
                        if t[5] == NO_TIME:
                            break
                        E = _after_subscription(E, t[5], from_day, term, sub_basis, ren_basis)
                        has_sub = True
                        continue
                # Churn (no intent, or a lapse not followed up) and, for some, a return later.
                if _u(key, r, lic, U_RETURN) >= p_return:
                    break
                rq_day = notice + _delay(_u(key, r, lic, U_RET_DELAY), ret_delay)
                if rq_day > end_day:
                    break
                rq = rq_day * NS_PER_DAY + _hour_ns(_u(key, r, lic, U_HOUR3))
                _chain(t, rq, key, r, lic, Z_RETURN, False, table, median_h, sigma, horizon_ns)
                _put(o_lic, o_sku, o_t, o_up, o_ok, base + k, base + cap, lic, SUB, t, -1, t[5] != NO_TIME)
                k += 1
                if t[5] == NO_TIME:
                    break
                E = _after_subscription(E, t[5], from_day, term, sub_basis, ren_basis)
                has_sub = True
            rmax = max(rmax, rnd)
        n_out[c] = k
        cy_out[c] = cy
        rounds_out[c] = rmax


@nb.njit(cache=True, nogil=True)
def _simulate(
    key, chunks, stride, cap, edition, arr_day, first_end, has_sub0, is_legacy,
    end_day, earliest, max_rounds, min_off,
    cdf, cdf_len, guide, lo_off, p_cont, prop, p_up, P, table, median_h, sigma, horizon_ns,
    from_day, term, grace, sub_basis, ren_basis, legacy_prior,
):
    """:func:`_simulate_chunks` into slots allocated here (malloc: numpy would ask for
    transparent huge pages, whose zeroing and compaction cost more than the simulation)."""
    n_c = chunks.shape[0]
    o_lic = np.empty(n_c * cap, np.int64)
    o_sku = np.empty(n_c * cap, np.int64)
    o_t = np.empty((n_c * cap, 6), np.int64)
    o_up = np.empty(n_c * cap, np.int64)
    o_ok = np.empty(n_c * cap, np.bool_)
    n_out = np.zeros(n_c, np.int64)
    cy_out = np.zeros(n_c, np.int64)
    rounds_out = np.zeros(n_c, np.int64)
    _simulate_chunks(key, chunks, stride, cap, edition, arr_day, first_end, has_sub0, is_legacy, end_day, earliest, max_rounds, min_off, cdf, cdf_len, guide, lo_off, p_cont, prop, p_up, P, table, median_h, sigma, horizon_ns, from_day, term, grace, sub_basis, ren_basis, legacy_prior, o_lic, o_sku, o_t, o_up, o_ok, n_out, cy_out, rounds_out)
    return (o_lic, o_sku, o_t, o_up, o_ok), (n_out, cy_out, rounds_out)


@nb.njit(cache=True)
def _alloc(n):
    """Order arrays allocated by malloc (see :func:`_simulate` on huge pages)."""
    return np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, 6), np.int64), np.empty(n, np.int64), np.empty(n, np.bool_)


@nb.njit(cache=True, nogil=True)
def _gather(sel, src_at, n, dst_at, b_lic, b_sku, b_t, b_up, b_ok, o_lic, o_sku, o_t, o_up, o_ok):
    """Copy the orders each chunk wrote (``n[i]`` slots from ``src_at[i]``) to ``dst_at[i]``;
    an upgrade's target moves from a slot within its chunk to the final index."""
    for i in range(sel.shape[0]):
        s0 = src_at[i]
        d0 = dst_at[i]
        for k in range(n[i]):
            o_lic[d0 + k] = b_lic[s0 + k]
            o_sku[d0 + k] = b_sku[s0 + k]
            for c in range(6):
                o_t[d0 + k, c] = b_t[s0 + k, c]
            up = b_up[s0 + k]
            o_up[d0 + k] = d0 + up if up >= 0 else -1
            o_ok[d0 + k] = b_ok[s0 + k]


@nb.njit(cache=True)
def _uniforms(key, rnd, n, col):
    """``_u(key, rnd, lic, col)`` for licenses ``0 … n-1``."""
    out = np.empty(n, np.float64)
    for lic in range(n):
        out[lic] = _u(key, rnd, lic, col)
    return out


def propensities(beh: Behaviour, edition: np.ndarray, key: np.uint64, *, legacy: np.ndarray | None = None,
                 arr_day: np.ndarray | None = None) -> np.ndarray:
    """Each license's propensity to continue, relative to its edition's mean ``p_continue``.

    A license's mean is ``p_continue`` shifted on the log-odds scale by the behaviour's
    ``continue_shift`` for its covariates (``legacy``: carried over from the old rules;
    cohort: the year of ``arr_day``, its arrival; carried-over licenses have none). Where the
    behaviour has a ``continue_concentration`` for the edition, a license draws
    ``q ~ Beta(k m, k (1 - m))`` around its mean ``m`` once (inverse transform of its own
    counter-based uniform, round :data:`PROPENSITY_ROUND`); elsewhere ``q = m``. The kernel
    continues it with ``p_cont * q / p`` — the price response of :func:`_tables` still
    applies. Without heterogeneity and shifts the factor is exactly 1, and without shifts the
    draws are those of before, so such behaviours simulate exactly as they did.
    """
    prop = np.ones(len(edition), np.float64)
    if not beh.continue_concentration and not beh.continue_shift:
        return prop
    from scipy.special import betaincinv, expit, logit

    shift = np.zeros(len(edition))
    if beh.continue_shift:
        years = (np.asarray(arr_day, np.int64).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
                 if arr_day is not None else np.zeros(len(edition), np.int64))
        years = np.where(np.asarray(arr_day) >= 0, years, 0) if arr_day is not None else years
        shift = beh.shift_of(np.zeros(len(edition), bool) if legacy is None else legacy, years)
    u = _uniforms(key, PROPENSITY_ROUND, len(edition), 0) if beh.continue_concentration else None
    for e, ed in enumerate(EDITIONS):
        m = edition == e
        if not m.any():
            continue
        p = float(beh.p_continue[ed])
        moved = m & (shift != 0)
        mean = np.full(len(edition), p)
        if moved.any():
            mean[moved] = expit(logit(p) + shift[moved])
        ab = beh.churn_beta(ed)
        if ab is None:
            prop[m] = mean[m] / p
        elif not moved.any():
            alpha, beta = ab  # churn ~ Beta(alpha, beta): continuation ~ Beta(beta, alpha)
            prop[m] = betaincinv(beta, alpha, u[m]) / p
        else:
            k = float(beh.continue_concentration[ed])
            prop[m] = betaincinv(k * mean[m], k * (1 - mean[m]), u[m]) / p
    return prop


def _tables(beh: Behaviour, catalog: Catalog) -> dict[str, np.ndarray]:
    """Behaviour as kernel arrays; price responses tabulated per catalog version and edition."""
    prices = catalog.price_table().astype(np.float64)  # [version, edition, sku]
    p_cont_ed = np.array([beh.p_continue[ed] for ed in EDITIONS])
    ref_ren = beh.reference_prices["renewal"] * 100
    ref_up = beh.reference_prices["upgrade"] * 100
    pmfs = [np.cumsum(beh.timing_pmf(ed)) for ed in EDITIONS]
    cdf = np.full((len(EDITIONS), max(len(p) for p in pmfs) + 1), 2.0)  # padding stops every search
    for e, p in enumerate(pmfs):
        cdf[e, : len(p)] = p
    median_h = np.array([beh.lead_times[s].median_hours for s in STAGES], np.float64)
    sigma = np.array([beh.lead_times[s].sigma for s in STAGES], np.float64)
    return {
        "cdf": cdf,
        "cdf_len": np.array([len(p) for p in pmfs], np.int64),
        "lo_off": np.array([int(beh.timing[ed][0]) for ed in EDITIONS], np.int64),
        "p_cont": np.clip(p_cont_ed[None, :] * (prices[:, :, REN] / ref_ren) ** (-beh.elasticity), 0, 1),
        "p_up": np.clip(beh.p_upgrade * (prices[:, :, UPG] / ref_up) ** (-beh.upgrade_elasticity), 0, 1),
        "P": np.array([beh.p_subscription_instead, beh.p_late_renewal, beh.p_forget, beh.p_subscription_after_lapse,
                       beh.p_return, beh.upgrade_delay_days, beh.lapse_subscription_delay_days, beh.return_delay_days]),
        "median_h": median_h,
        "sigma": sigma,
        "table": _lead_table(median_h, sigma),
        "guide": np.stack([np.searchsorted(c, np.arange(1025) / 1024, side="right") for c in cdf]).astype(np.int64),
    }


def simulate_core(
    behaviour: Behaviour,
    catalog: Catalog,
    start: Any = "2021-01-01",
    end: Any = "2026-12-31",
    rng: np.random.Generator | int = 1,
    *,
    progress: bool | None = None,
    max_rounds: int = 80,
    initial: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    propensity: np.ndarray | None = None,
) -> SimCore:
    """Run the simulation and return its arrays (see :func:`simulate` for the ledger).

    ``initial`` continues an existing customer base instead of legacy carry-overs: per
    license its current coverage end (day), edition (0 full, 1 basic) and whether it ever
    had a subscription. Those licenses take ids ``0 … n-1`` and nobody orders before
    ``start`` (a customer whose usual order day has passed orders on ``start``).
    ``propensity`` (with ``initial``): each of those licenses' chance to continue relative to
    its edition's ``p_continue`` — e.g. its posterior mean given its history
    (:meth:`subs_model.forecast_state.State.continue_mean` divided by ``p_continue``), so a
    what-if starts each license from its own tenure; new arrivals draw theirs as usual.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    start_day, end_day = _sim_day(start, "start"), _sim_day(end, "end")
    if end_day < start_day:
        msg = f"simulate: end {end!r} is before start {start!r}; give an end on or after the start"
        raise SimulationError(msg)
    if not 0 < max_rounds <= MAX_ROUNDS:
        msg = f"simulate: max_rounds={max_rounds} must be between 1 and {MAX_ROUNDS}"
        raise SimulationError(msg)
    arrivals_rng, legacy_rng, rounds_rng = gen.spawn(3)
    lics = _licenses(behaviour, start, end, start_day, end_day, initial, arrivals_rng, legacy_rng)
    tab = _tables(behaviour, catalog)
    key = np.uint64(rounds_rng.integers(0, 2**63))
    prop = propensities(behaviour, lics.edition, key, legacy=lics.is_legacy, arr_day=lics.arr_day)
    if propensity is not None:
        given = np.asarray(propensity, np.float64)
        if initial is None or given.shape != (len(initial[0]),) or not np.all(np.isfinite(given)) or np.any(given < 0):
            msg = ("simulate: propensity needs an initial base and one finite factor >= 0 per initial license, "
                   f"got shape {given.shape} for {0 if initial is None else len(initial[0])} licenses")
            raise SimulationError(msg)
        prop[: len(given)] = given
    rounds = _Rounds(
        key=key, n_lic=lics.n_lic, prop=prop, n_chunks=max(1, -(-lics.n_lic // 1024)), lics=lics,
        end_day=end_day, earliest=start_day if initial is not None else np.iinfo(np.int64).min, max_rounds=max_rounds,
        min_off=int(tab["lo_off"].min()), tab=tab, horizon_ns=(end_day + 1) * NS_PER_DAY - 1, knobs=catalog.knob_arrays(),
    )
    parts = _run_chunks(rounds, start_day, end_day, progress)
    return _gather_orders(parts, lics)


@dataclass(frozen=True, slots=True)
class _Licenses:
    """The simulated licenses (carried over first, then arrivals), by license number."""

    n_lic: int
    edition: np.ndarray  #: 0 full, 1 basic
    arr_day: np.ndarray  #: arrival day (-1: carried over)
    legacy_start: np.ndarray  #: legacy period (-1: none)
    legacy_until: np.ndarray
    has_sub: np.ndarray  #: ever had a subscription
    first_end: np.ndarray  #: end of the coverage the first round continues
    is_legacy: np.ndarray


def _licenses(beh: Behaviour, start: Any, end: Any, start_day: int, end_day: int,
              initial: tuple[np.ndarray, np.ndarray, np.ndarray] | None, arrivals_rng: np.random.Generator,
              legacy_rng: np.random.Generator) -> _Licenses:
    """Monthly arrivals (Poisson, growth and seasonality) and the legacy carry-overs, or the
    ``initial`` base; raises if the expected count is over :data:`SIM_LICENSES_MAX`."""
    day0, day1 = np.array([start_day, end_day]).astype("datetime64[D]")
    months = np.arange(day0.astype("datetime64[M]"), day1.astype("datetime64[M]") + 1)  # calendar months
    season = np.asarray(beh.seasonality)[months.astype(np.int64) % 12]
    rate = beh.arrivals_per_month * (1 + beh.arrivals_growth) ** np.arange(len(months)) * season
    n_leg = beh.legacy_licenses if initial is None else len(initial[0])
    expected = n_leg + float(rate.sum())
    if expected > SIM_LICENSES_MAX:
        msg = (
            f"simulate: about {expected:,.0f} licenses would be simulated ({start!r} … {end!r}), over the limit of "
            f"{SIM_LICENSES_MAX:,}; lower arrivals_per_month, arrivals_growth or legacy_licenses, or shorten the period"
        )
        raise SimulationError(msg)
    counts = arrivals_rng.poisson(rate)
    m_start = np.maximum(months.astype("datetime64[D]").astype(np.int64), start_day)
    m_end = np.minimum((months + 1).astype("datetime64[D]").astype(np.int64) - 1, end_day)
    n_new = int(counts.sum())
    month_of = np.repeat(np.arange(len(months)), counts)
    n_lic = n_leg + n_new
    arr_day = np.full(n_lic, -1, np.int64)
    arr_day[n_leg:] = m_start[month_of] + np.floor(arrivals_rng.random(n_new) * (m_end - m_start + 1)[month_of]).astype(np.int64)
    edition = np.empty(n_lic, np.int64)
    edition[n_leg:] = arrivals_rng.random(n_new) < beh.share_basic
    legacy_until = np.full(n_lic, -1, np.int64)
    legacy_start = np.full(n_lic, -1, np.int64)
    has_sub = np.zeros(n_lic, np.bool_)
    first_end = np.zeros(n_lic, np.int64)
    if initial is None:
        edition[:n_leg] = legacy_rng.random(n_leg) < beh.share_basic
        legacy_until[:n_leg] = start_day - 1 + np.floor(legacy_rng.random(n_leg) * max(beh.legacy_end_spread_days, 1)).astype(np.int64)
        legacy_start[:n_leg] = legacy_until[:n_leg] - 364
        first_end[:n_leg] = legacy_until[:n_leg] + 1
    else:
        first_end[:n_leg] = np.asarray(initial[0], np.int64)
        edition[:n_leg] = np.asarray(initial[1], np.int64)
        has_sub[:n_leg] = np.asarray(initial[2], bool)
    return _Licenses(n_lic=n_lic, edition=edition, arr_day=arr_day, legacy_start=legacy_start, legacy_until=legacy_until,
                     has_sub=has_sub, first_end=first_end, is_legacy=legacy_until >= 0)


@dataclass(frozen=True, slots=True)
class _Rounds:
    """The rounds kernel bound to its licenses and tables: licenses go in chunks of every
    ``n_chunks``-th license, each chunk writing its own slots."""

    key: np.uint64
    n_lic: int
    n_chunks: int
    lics: _Licenses
    end_day: int
    earliest: int
    max_rounds: int
    min_off: int
    tab: dict[str, Any]
    horizon_ns: int
    knobs: dict[str, np.ndarray]
    prop: np.ndarray  #: per license: its propensity to continue relative to its edition's mean (1: alike)

    def run1(self, chunks: np.ndarray, cap: int) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """The kernel on ``chunks`` with ``cap`` slots each: (slots, stats)."""
        lics, tab, knobs = self.lics, self.tab, self.knobs
        return _simulate(self.key, chunks, self.n_chunks, cap, lics.edition, lics.arr_day, lics.first_end, lics.has_sub,
                         lics.is_legacy, self.end_day, self.earliest, self.max_rounds, self.min_off, tab["cdf"],
                         tab["cdf_len"], tab["guide"], tab["lo_off"], tab["p_cont"], self.prop, tab["p_up"], tab["P"], tab["table"],
                         tab["median_h"], tab["sigma"], self.horizon_ns, knobs["from_day"], knobs["term"], knobs["grace"],
                         knobs["sub_basis"], knobs["ren_basis"], knobs["legacy_prior"])

    def run(self, chunks: np.ndarray, cap: int) -> list[tuple]:
        """(chunks, slots, stats) per worker thread: the kernel runs without the GIL."""
        groups = [g for g in np.array_split(chunks, min(workers(), len(chunks))) if len(g)]
        if len(groups) == 1:
            return [(groups[0], *self.run1(groups[0], cap))]
        with ThreadPoolExecutor(len(groups)) as pool:
            futures = [pool.submit(self.run1, g, cap) for g in groups]
            return [(g, *f.result()) for g, f in zip(groups, futures, strict=True)]

    def size(self, chunks: np.ndarray) -> int:
        """Licenses in ``chunks``."""
        return int(((self.n_lic - chunks + self.n_chunks - 1) // self.n_chunks).sum())


def _run_chunks(rounds: _Rounds, start_day: int, end_day: int, progress: bool | None) -> list[tuple]:
    """Every chunk run: (slots, stats, the chunks of the run to keep) per run.

    A pilot chunk sizes the others' slots (chunks are like samples); a chunk that still
    needs more is rerun with room for all it made (same draws, same orders)."""
    n_lic, size, run = rounds.n_lic, rounds.size, rounds.run
    years = (end_day - start_day + 1) / max(int(rounds.knobs["term"].min()), 1)
    pilot = np.zeros(1, np.int64)
    with warnings.catch_warnings():  # the first call compiles (once per machine: cached) in this thread
        warnings.simplefilter("ignore", nb.NumbaPerformanceWarning)  # about parallel=True, on purpose
        parts = [(out, stats, np.zeros(1, np.int64)) for _, out, stats in run(pilot, size(pilot) * int(3 + 2 * years))]
    per_lic = parts[0][1][0][0] / max(size(pilot), 1)
    show = progress if progress is not None else n_lic > 500_000
    rest = np.arange(1, rounds.n_chunks)
    per_call = max(len(rest), 1) if not show else 32
    with tqdm(total=n_lic, desc="simulating licenses", unit="lic", disable=not show, leave=False) as bar:
        bar.update(size(pilot))
        for b in range(0, len(rest), per_call):
            chunks = rest[b : b + per_call]
            cap = int(per_lic * size(chunks[:1]) * _SLACK) + 64
            for group, out, stats in run(chunks, cap):
                over = np.flatnonzero(stats[0] > cap)
                parts.append((out, stats, np.setdiff1d(np.arange(len(group)), over)))
                if len(over):
                    parts += [(o, st, np.arange(len(g))) for g, o, st in run(group[over], int(stats[0][over].max()))]
            bar.update(size(chunks))
    return parts


def _gather_orders(parts: list[tuple], lics: _Licenses) -> SimCore:
    """The written slots gathered chunk by chunk into one run of orders."""
    total = sum(int(st[0][sel].sum()) for _, st, sel in parts)
    o_lic, o_sku, o_times, o_up, o_ok = _alloc(total)
    offset, customer_years, rounds = 0, 0, 0
    jobs = []
    for out, (n_out, cy, rmax), sel in parts:
        dst = offset + np.r_[0, np.cumsum(n_out[sel])[:-1]]
        jobs.append((sel, sel * (len(out[0]) // len(n_out)), n_out[sel], dst, *out, o_lic, o_sku, o_times, o_up, o_ok))
        offset += int(n_out[sel].sum())
        customer_years += int(cy[sel].sum())
        rounds = max(rounds, int(rmax[sel].max(initial=0)))
    with ThreadPoolExecutor(min(workers(), len(jobs))) as pool:
        list(pool.map(lambda job: _gather(*job), jobs))
    return SimCore(lics.n_lic, lics.edition, lics.legacy_start, lics.legacy_until, o_lic, o_sku, o_times, o_up, o_ok,
                   customer_years, rounds)


def _ids(prefix: str, ints: np.ndarray, width: int) -> pa.Array:
    text = pc.utf8_lpad(pc.cast(pa.array(ints, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def _str(arr: pa.Array) -> pd.Series:
    return pd.Series(pd.array(arr, dtype="str"))


def _stamps(local_ns: np.ndarray, tz: str) -> pd.Series:
    idx = pd.DatetimeIndex(local_ns.view("datetime64[ns]")).tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    return pd.Series(idx)


def _rub_text(kopecks: np.ndarray) -> pa.Array:
    rub = pc.cast(pa.array(kopecks // 100), pa.string())
    kop = pc.utf8_lpad(pc.cast(pa.array(kopecks % 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(rub, kop, ".")


def core_to_ledger(core: SimCore, catalog: Catalog, rng: np.random.Generator) -> Ledger:
    """String-keyed tables of the data contract from the simulator arrays."""
    tz = catalog.timezone
    n_o = len(core.o_lic)
    order = np.lexsort((np.arange(n_o), core.o_times[:, 0]))  # chronological order ids
    rank = np.empty(n_o, np.int64)
    rank[order] = np.arange(n_o)
    lic, sku, times, up = core.o_lic[order], core.o_sku[order], core.o_times[order], core.o_upgrade_of[order]
    up = np.where(up >= 0, rank[np.maximum(up, 0)], -1)
    wl = max(6, len(str(core.n_licenses)))
    wo = max(7, len(str(n_o)))
    lic_ids = _ids("L", np.arange(core.n_licenses), wl)
    paid = times[:, 2] != NO_TIME
    issued = times[:, 4] != NO_TIME
    act_ids = _ids("ACT-", np.arange(1, n_o + 1), wo)
    code_num = rng.permutation(n_o) + 10**8
    codes = pc.binary_join_element_wise("KS5-", pc.cast(pa.array(code_num), pa.string()), "")
    inv_day = np.where(times[:, 1] != NO_TIME, times[:, 1] // NS_PER_DAY, 0)
    kop = catalog.price_table()[catalog.version_index(inv_day), core.edition[lic], sku]
    null = lambda mask: pa.array(~mask)  # noqa: E731 - validity → null mask
    sku_names = np.array(["subscription", "renewal", "upgrade"], dtype=object)
    orders = pd.DataFrame(
        {
            "order_id": _str(_ids("O", np.arange(1, n_o + 1), wo)),
            "license_id": _str(lic_ids.take(pa.array(lic))),
            "sku": pd.Series(sku_names[sku], dtype="str"),
            "requested_at": _stamps(times[:, 0], tz),
            "invoiced_at": _stamps(times[:, 1], tz),
            "paid_at": _stamps(times[:, 2], tz),
            "ticket_at": _stamps(times[:, 3], tz),
            "code_issued_at": _stamps(times[:, 4], tz),
            "act_number": _str(pc.if_else(null(paid), pa.nulls(n_o, pa.large_string()), act_ids.cast(pa.large_string()))),
            "amount_rub": _str(pc.if_else(null(paid), pa.nulls(n_o, pa.large_string()), _rub_text(kop).cast(pa.large_string()))),
            "code": _str(pc.if_else(null(issued), pa.nulls(n_o, pa.large_string()), codes.cast(pa.large_string()))),
            "upgrade_of_act": _str(act_ids.cast(pa.large_string()).take(pa.array(up, mask=up < 0))),
        }
    )
    act_rows = np.flatnonzero(times[:, 5] != NO_TIME)
    act_rows = act_rows[np.argsort(times[act_rows, 5], kind="stable")]
    activations = pd.DataFrame(
        {
            "code": orders["code"].iloc[act_rows].reset_index(drop=True),
            "license_id": orders["license_id"].iloc[act_rows].reset_index(drop=True),
            "activated_at": _stamps(times[act_rows, 5], tz),
        }
    )
    licenses = pd.DataFrame(
        {
            "license_id": _str(lic_ids),
            "customer_id": _str(_ids("K", np.arange(core.n_licenses), wl)),
            "edition": pd.Series(np.array(categories(Edition), dtype=object)[core.edition], dtype="str"),
        }
    )
    leg = np.flatnonzero(core.legacy_until >= 0)
    legacy = pd.DataFrame(
        {
            "license_id": _str(lic_ids.take(pa.array(leg))),
            "start": [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in core.legacy_start[leg]],
            "valid_until": [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in core.legacy_until[leg]],
        }
    )
    legacy["start"] = legacy["start"].astype("str")
    legacy["valid_until"] = legacy["valid_until"].astype("str")
    return Ledger(
        licenses=licenses,
        orders=orders[list(COLUMNS["orders"])],
        activations=activations,
        legacy_periods=legacy if len(leg) else None,
        source="simulated",
    )


def simulate(
    behaviour: Behaviour,
    catalog: Catalog,
    start: Any = "2021-01-01",
    end: Any = "2026-12-31",
    seed: int | np.random.Generator = 1,
    *,
    progress: bool | None = None,
) -> Ledger:
    """Simulate customer cohorts under ``catalog`` and return their ledger.

    Parameters
    ----------
    behaviour : Behaviour
        What customers do (see :class:`Behaviour`).
    catalog : Catalog
        What the rules decide: grace window, term, bases, prices (versioned).
    start, end : date-like
        The simulated period; orders and activations after ``end`` do not appear
        (orders in progress keep their earlier stages).
    seed : int or numpy.random.Generator
        All randomness comes from this generator: same seed, same ledger.
    progress : bool, optional
        Show a progress bar (default: for large runs).

    Returns
    -------
    Ledger
        The tables of the data contract: licenses, orders (every stage timestamp, act
        numbers, codes, amounts at catalog prices), activations, legacy periods.

    Examples
    --------
    >>> import subs_model as sm
    >>> led = sm.simulate(sm.Behaviour(arrivals_per_month=5, legacy_licenses=3), sm.Catalog.default(),
    ...                   start="2024-01-01", end="2024-12-31", seed=1)
    >>> sorted(led.tables())
    ['activations', 'legacy_periods', 'licenses', 'orders']
    """
    if not isinstance(seed, np.random.Generator) and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        msg = f"simulate: seed {seed!r} is not a whole number >= 0; give one, e.g. 1"
        raise SimulationError(msg)
    gen = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sim_rng, id_rng = gen.spawn(2)
    core = simulate_core(behaviour, catalog, start, end, sim_rng, progress=progress)
    return core_to_ledger(core, catalog, id_rng)
