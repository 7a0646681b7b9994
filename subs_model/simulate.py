"""The cohort simulator: customers behave, the catalog's rules decide.

Licenses arrive month by month (plus legacy licenses from the old rules). At each end of
coverage every customer decides, with the probabilities of a :class:`Behaviour`, whether
to continue, on which day to order, what to buy, whether to forget the code, and how long
each order stage takes. Whether the resulting activation lands in the grace window, what
it costs and how many days it adds is decided by the :class:`Catalog` through the same
rule arithmetic as the replay engine (:mod:`subs_model._kernel`). The output is a
:class:`Ledger` in the data contract, so everything downstream runs on simulated and
real data alike — and the replay of a simulated ledger agrees with the simulator.

The simulation is vectorised over licenses, one *round* (one coverage end per license)
at a time. Each round draws its random numbers for every license, live or not, from a
stream of its own, so a license sees the same draws whatever the catalog: scenarios run
on common random numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from . import _kernel as K
from .behaviour import Behaviour
from .catalog import Catalog
from .days import NO_TIME, NS_PER_DAY, as_day
from .ledger import COLUMNS, Ledger

__all__ = ["SimCore", "simulate", "simulate_core"]

NS_HOUR = 3_600 * 10**9
SUB, REN, UPG = K.SUB, K.REN, K.UPG
EDITIONS = ("full", "basic")
U_COLS = 11  # uniform draws per license per round (normals are drawn per order, columns 64+)


@dataclass(frozen=True, slots=True)
class SimCore:
    """The simulator's output before it becomes string-keyed tables.

    Orders are arrays indexed by order; times are *local* (Moscow wall clock) ns since
    1970-01-01, ``NO_TIME`` where a stage has not happened by the end of the horizon.
    """

    n_licenses: int
    edition: np.ndarray  # per license: 0 full, 1 basic
    legacy_start: np.ndarray  # per license, -1 = no legacy period (days)
    legacy_until: np.ndarray
    o_lic: np.ndarray
    o_sku: np.ndarray
    o_times: np.ndarray  # (n_orders, 6): requested, invoiced, paid, ticket, code issued, activated
    o_upgrade_of: np.ndarray  # order index of the renewal an upgrade converts, else -1
    o_accepted: np.ndarray  # the simulator's own verdict: this order's activation is accepted
    customer_years: int
    rounds: int


@nb.njit(cache=True)
def _uniforms(key, rnd, lic, first_col, n_cols):  # pragma: no cover - compiled
    """Counter-based uniforms in (0, 1): a SplitMix64 hash of (key, round, license, column).

    Each license's draws depend only on its own id, the round and the column, so a
    license sees the same numbers whatever happens to the others or to the catalog —
    common random numbers across scenarios — and only the licenses that need a draw pay
    for it.
    """
    out = np.empty((lic.shape[0], n_cols), np.float64)
    c1 = np.uint64(0x9E3779B97F4A7C15)
    c2 = np.uint64(0xBF58476D1CE4E5B9)
    c3 = np.uint64(0x94D049BB133111EB)
    r = np.uint64(rnd) << np.uint64(20)
    for i in range(lic.shape[0]):
        base = np.uint64(lic[i]) * c3 + np.uint64(key)
        for j in range(n_cols):
            z = base + (r + np.uint64(first_col + j)) * c1
            z = (z ^ (z >> np.uint64(30))) * c2
            z = (z ^ (z >> np.uint64(27))) * c3
            z = z ^ (z >> np.uint64(31))
            out[i, j] = (np.float64(z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)
    return out


@nb.njit(cache=True)
def _normals(key, rnd, lic, first_col, n_cols):  # pragma: no cover - compiled
    """Standard normals by Box–Muller from pairs of counter-based uniforms."""
    u = _uniforms(key, rnd, lic, first_col, 2 * n_cols)
    out = np.empty((lic.shape[0], n_cols), np.float64)
    for i in range(lic.shape[0]):
        for j in range(n_cols):
            out[i, j] = np.sqrt(-2.0 * np.log(u[i, j])) * np.cos(2.0 * np.pi * u[i, n_cols + j])
    return out


def _delay(u: np.ndarray, mean_days: float) -> np.ndarray:
    """Whole days ~ exponential with the given mean (floored)."""
    return np.floor(-np.log1p(-np.minimum(u, 1 - 1e-12)) * mean_days).astype(np.int64)


@nb.njit(cache=True)
def _chain(request_ns, z, median_h, sigma, upgrade, horizon_ns):  # pragma: no cover - compiled
    """Stage instants (request, invoice, paid, ticket, code, activation) from lognormal leads.

    Whole seconds, as exports carry them; a stage after the horizon has not happened, nor
    has any later one (the order is in progress: R9).
    """
    n = request_ns.shape[0]
    t = np.full((n, 6), NO_TIME, np.int64)
    for i in range(n):
        cur = request_ns[i]
        t[i, 0] = cur
        k = 0
        for stage in range(5):  # invoice, payment, ticket, code, activation
            if stage == 2 and not upgrade:
                continue
            hours = median_h[stage] * np.exp(sigma[stage] * z[i, k])
            k += 1
            cur = cur + np.int64(hours * 3.6e12)
            col = stage + 1
            t[i, col] = (cur // 1_000_000_000) * 1_000_000_000
        for col in range(6):
            if t[i, col] != NO_TIME and t[i, col] > horizon_ns:
                for c2 in range(col, 6):
                    t[i, c2] = NO_TIME
                break
    return t


class _Stages:
    """Stage timestamps of a batch of orders from the behaviour's lead times."""

    def __init__(self, beh: Behaviour, horizon_ns: int) -> None:
        from .behaviour import STAGES

        self.median = np.array([beh.lead_times[s].median_hours for s in STAGES])
        self.sigma = np.array([beh.lead_times[s].sigma for s in STAGES])
        self.horizon_ns = horizon_ns

    def chain(self, request_ns: np.ndarray, z: np.ndarray, upgrade: bool) -> np.ndarray:
        return _chain(request_ns, np.ascontiguousarray(z), self.median, self.sigma, upgrade, self.horizon_ns)


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
) -> SimCore:
    """Run the simulation and return its arrays (see :func:`simulate` for the ledger).

    ``initial`` continues an existing customer base instead of legacy carry-overs: per
    license its current coverage end (day), edition (0 full, 1 basic) and whether it ever
    had a subscription. Those licenses take ids ``0 … n-1`` and nobody orders before
    ``start`` (a customer whose usual order day has passed orders on ``start``).
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    beh = behaviour
    start_day, end_day = as_day(start), as_day(end)
    if end_day < start_day:
        msg = f"simulate: end {end!r} is before start {start!r}"
        raise ValueError(msg)
    horizon_ns = (end_day + 1) * NS_PER_DAY - 1
    arrivals_rng, legacy_rng, rounds_rng = gen.spawn(3)
    knobs = catalog.knob_arrays()
    prices = catalog.price_table()  # [version, edition, sku] kopecks
    stages = _Stages(beh, horizon_ns)

    # -- licenses: monthly arrivals and legacy carry-overs ---------------------------------------
    months = pd.period_range(pd.Timestamp(start_day, unit="D"), pd.Timestamp(end_day, unit="D"), freq="M")
    season = np.asarray(beh.seasonality)[months.month.to_numpy() - 1]
    rate = beh.arrivals_per_month * (1 + beh.arrivals_growth) ** np.arange(len(months)) * season
    counts = arrivals_rng.poisson(rate)
    m_start = np.array([max(as_day(m.start_time.date()), start_day) for m in months], dtype=np.int64)
    m_end = np.array([min(as_day(m.end_time.date()), end_day) for m in months], dtype=np.int64)
    n_new = int(counts.sum())
    month_of = np.repeat(np.arange(len(months)), counts)
    arr_day = m_start[month_of] + np.floor(arrivals_rng.random(n_new) * (m_end - m_start + 1)[month_of]).astype(np.int64)
    n_leg = beh.legacy_licenses if initial is None else len(initial[0])
    n_lic = n_leg + n_new
    edition = np.empty(n_lic, np.int64)
    edition[n_leg:] = arrivals_rng.random(n_new) < beh.share_basic
    legacy_until = np.full(n_lic, -1, np.int64)
    legacy_start = np.full(n_lic, -1, np.int64)
    has_sub = np.zeros(n_lic, np.bool_)
    if initial is None:
        edition[:n_leg] = legacy_rng.random(n_leg) < beh.share_basic
        legacy_until[:n_leg] = start_day - 1 + np.floor(legacy_rng.random(n_leg) * max(beh.legacy_end_spread_days, 1)).astype(np.int64)
        legacy_start[:n_leg] = legacy_until[:n_leg] - 364
        first_end = legacy_until[:n_leg] + 1
    else:
        first_end = np.asarray(initial[0], np.int64)
        edition[:n_leg] = np.asarray(initial[1], np.int64)
        has_sub[:n_leg] = np.asarray(initial[2], bool)
    is_legacy = legacy_until >= 0

    chunks: list[tuple[np.ndarray, ...]] = []  # lic, sku, times, upgrade_of, accepted
    n_orders = 0

    def emit(lic, sku, times, upgrade_of=None, accepted=None):
        nonlocal n_orders
        idx = np.arange(n_orders, n_orders + len(lic))
        up = np.full(len(lic), -1, np.int64) if upgrade_of is None else upgrade_of
        ok = times[:, 5] != NO_TIME if accepted is None else accepted
        chunks.append((lic, np.full(len(lic), sku, np.int64) if np.isscalar(sku) else sku, times, up, ok))
        n_orders += len(lic)
        return idx

    def activate(lic, sku_code, end, has_end, times):
        """Accepted activations within the horizon: (lic, new end) to carry forward."""
        act = times[:, 5]
        ok = act != NO_TIME
        day = act[ok] // NS_PER_DAY
        _, _, new_end = K.extend(
            np.full(int(ok.sum()), sku_code, np.int64), end[ok], has_end[ok], day,
            knobs["from_day"], knobs["term"], knobs["sub_basis"], knobs["ren_basis"],
        )
        has_sub[lic[ok]] = True
        return lic[ok], new_end

    # First subscription of each new license.
    a_u = arrivals_rng.random(n_new)
    a_z = arrivals_rng.standard_normal((n_new, 5))
    new_lic = np.arange(n_leg, n_lic)
    req = arr_day * NS_PER_DAY + ((9 + 9 * a_u) * NS_HOUR).astype(np.int64)
    t = stages.chain(req, a_z, upgrade=False)
    emit(new_lic, SUB, t)
    f_lic, f_end = activate(new_lic, SUB, np.zeros(n_new, np.int64), np.zeros(n_new, np.bool_), t)
    f_lic = np.concatenate([np.arange(n_leg), f_lic])
    f_end = np.concatenate([first_end, f_end])
    earliest = start_day if initial is not None else np.iinfo(np.int64).min

    cdf = {e: np.cumsum(beh.timing_pmf(ed)) for e, ed in enumerate(EDITIONS)}
    lo_off = {e: int(beh.timing[ed][0]) for e, ed in enumerate(EDITIONS)}
    min_off = min(lo_off.values())
    ref_ren = beh.reference_prices["renewal"] * 100
    ref_up = beh.reference_prices["upgrade"] * 100
    p_cont_ed = np.array([beh.p_continue[ed] for ed in EDITIONS])
    customer_years = 0
    rounds = 0
    show = progress if progress is not None else n_lic > 200_000
    bar = tqdm(total=None, desc="simulating rounds", disable=not show, leave=False)
    key = np.uint64(rounds_rng.integers(0, 2**63))
    while len(f_lic) and rounds < max_rounds:
        live = f_end + min_off <= end_day
        f_lic, f_end = f_lic[live], f_end[live]
        if not len(f_lic):
            break
        U = _uniforms(key, rounds, f_lic, 0, U_COLS)
        rounds += 1
        customer_years += len(f_lic)
        bar.update(1)
        lic, E = f_lic, f_end
        ed = edition[lic]
        ver_e = catalog.version_index(E)
        ren_price = prices[ver_e, ed, REN]
        p_cont = np.clip(p_cont_ed[ed] * (ren_price / ref_ren) ** (-beh.elasticity), 0, 1)
        cont = U[:, 0] < p_cont
        off = np.empty(len(lic), np.int64)
        for e in cdf:
            m = ed == e
            off[m] = lo_off[e] + np.minimum(np.searchsorted(cdf[e], U[m, 1], side="right"), len(cdf[e]) - 1)
        closing = K.closing_days(E, knobs["from_day"], knobs["grace"])
        req_day = np.maximum(E + off, earliest)
        on_time = req_day < closing
        buy_ren = np.where(on_time, U[:, 2] >= beh.p_subscription_instead, U[:, 2] < beh.p_late_renewal)
        forget = buy_ren & (U[:, 3] < beh.p_forget)
        in_h = cont & (req_day <= end_day)
        c_idx = np.flatnonzero(in_h)
        req_ns = req_day[c_idx] * NS_PER_DAY + ((9 + 9 * U[c_idx, 4]) * NS_HOUR).astype(np.int64)
        t = stages.chain(req_ns, _normals(key, rounds - 1, lic[c_idx], 64, 5), upgrade=False)
        t[forget[c_idx], 5] = NO_TIME
        act = t[:, 5]
        act_day = np.where(act != NO_TIME, act // NS_PER_DAY, np.iinfo(np.int64).max)
        issue_day = np.where(t[:, 4] != NO_TIME, t[:, 4] // NS_PER_DAY, np.iinfo(np.int64).max)
        cl = closing[c_idx]
        ren = buy_ren[c_idx]
        v_act = catalog.version_index(np.minimum(act_day, end_day))
        prior = has_sub[lic[c_idx]] | (is_legacy[lic[c_idx]] & knobs["legacy_prior"][v_act])
        ren_ok = ren & (act != NO_TIME) & (act_day < cl) & prior
        accepted = (act != NO_TIME) & (~ren | ren_ok)
        order_idx = emit(lic[c_idx], np.where(ren, REN, SUB), t, accepted=accepted)
        next_lic, next_end = [], []
        if accepted.any():
            sel = np.flatnonzero(accepted)
            sku_sel = np.where(ren[sel], REN, SUB)
            _, _, ne = K.extend(sku_sel, E[c_idx][sel], np.ones(len(sel), np.bool_), act_day[sel],
                                knobs["from_day"], knobs["term"], knobs["sub_basis"], knobs["ren_basis"])
            has_sub[lic[c_idx][sel]] = True
            next_lic.append(lic[c_idx][sel])
            next_end.append(ne)
        # A renewal that lapsed (forgotten, or activated too late): upgrade, subscription, or churn.
        lapsed = ren & ~ren_ok & ((act != NO_TIME) | (forget[c_idx] & (issue_day != np.iinfo(np.int64).max)))
        notice = np.where(forget[c_idx], np.maximum(cl, issue_day), act_day)
        lapsed &= notice <= end_day
        l_idx = np.flatnonzero(lapsed)
        gl = c_idx[l_idx]  # positions in the frontier
        up_price = prices[catalog.version_index(notice[l_idx]), ed[gl], UPG]
        p_up = np.clip(beh.p_upgrade * (up_price / ref_up) ** (-beh.upgrade_elasticity), 0, 1)
        f = U[gl, 5]
        go_up = f < p_up
        go_sub = ~go_up & (f < p_up + beh.p_subscription_after_lapse)
        churned_lapse = ~go_up & ~go_sub
        for mask, mean, sku_code, is_up in (
            (go_up, beh.upgrade_delay_days, UPG, True),
            (go_sub, beh.lapse_subscription_delay_days, SUB, False),
        ):
            if not mask.any():
                continue
            pos = gl[mask]
            rq_day = notice[l_idx][mask] + _delay(U[pos, 6], mean)
            keep = rq_day <= end_day
            pos, rq_day = pos[keep], rq_day[keep]
            rq = rq_day * NS_PER_DAY + ((9 + 9 * U[pos, 9]) * NS_HOUR).astype(np.int64)
            tt = stages.chain(rq, _normals(key, rounds - 1, lic[pos], 80, 5), upgrade=is_up)
            target = order_idx[np.searchsorted(c_idx, pos)] if is_up else None
            emit(lic[pos], sku_code, tt, target)
            nl, ne = activate(lic[pos], SUB, E[pos], np.ones(len(pos), np.bool_), tt)
            next_lic.append(nl)
            next_end.append(ne)
        # Churn (no intent, or a lapse not followed up) and, for some, a return later.
        churn_pos = np.concatenate([np.flatnonzero(~cont), gl[churned_lapse]])
        base = np.concatenate([closing[~cont], notice[l_idx][churned_lapse]])
        ret = U[churn_pos, 7] < beh.p_return
        pos = churn_pos[ret]
        rq_day = base[ret] + _delay(U[pos, 8], beh.return_delay_days)
        keep = rq_day <= end_day
        pos, rq_day = pos[keep], rq_day[keep]
        if len(pos):
            rq = rq_day * NS_PER_DAY + ((9 + 9 * U[pos, 10]) * NS_HOUR).astype(np.int64)
            tt = stages.chain(rq, _normals(key, rounds - 1, lic[pos], 96, 5), upgrade=False)
            emit(lic[pos], SUB, tt)
            nl, ne = activate(lic[pos], SUB, E[pos], np.ones(len(pos), np.bool_), tt)
            next_lic.append(nl)
            next_end.append(ne)
        f_lic = np.concatenate(next_lic) if next_lic else np.empty(0, np.int64)
        f_end = np.concatenate(next_end) if next_end else np.empty(0, np.int64)
    bar.close()
    o_lic = np.concatenate([c[0] for c in chunks])
    o_sku = np.concatenate([c[1] for c in chunks])
    o_times = np.concatenate([c[2] for c in chunks])
    o_up = np.concatenate([c[3] for c in chunks])
    o_ok = np.concatenate([c[4] for c in chunks])
    return SimCore(n_lic, edition, legacy_start, legacy_until, o_lic, o_sku, o_times, o_up, o_ok, customer_years, rounds)


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
            "edition": pd.Series(np.array(EDITIONS, dtype=object)[core.edition], dtype="str"),
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
    gen = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sim_rng, id_rng = gen.spawn(2)
    core = simulate_core(behaviour, catalog, start, end, sim_rng, progress=progress)
    return core_to_ledger(core, catalog, id_rng)
