"""One what-if run: simulate, replay on integer arrays, measure by month.

A run continues the real customer base (each license's coverage end, edition, history)
with :func:`subs_model.simulate.simulate_core`, replays the simulated orders with the
compiled rules engine, and counts per month: bookings, recognised revenue, active
licenses (also per edition), continuations by outcome, upgrades and lapses
(:class:`Metric`). :func:`deferred_release` adds what the revenue deferred on ``as_of``
recognises in each month (the same in every run).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from . import _join as J
from . import _kernel as K
from .behaviour import Behaviour
from .catalog import Catalog
from .days import NO_DAY, NO_TIME, NS_PER_DAY, days32
from .ledger import Ledger
from .metrics import recognise_spread
from .prepared import Prepared, issues_before, order_events, target_numbers
from .replay import replay, scan_prepared
from .simulate import SimCore, simulate_core
from .vocab import ACCEPTED, EDITIONS, REN, SUB, UPG, Coded, categories, numbered

__all__ = ["BY_EDITION", "METRICS", "MONEY", "STOCKS", "Metric", "deferred_release"]


class Metric(Coded):
    """What a what-if run measures per month; ``code`` is its row in a run's ``[metric, month]`` array."""

    BOOKINGS = "bookings"
    RECOGNISED = "recognised"
    ACTIVE = "active"
    EARLY_RENEWAL = "early_renewal"
    GRACE_RENEWAL = "grace_renewal"
    SUBSCRIPTION_CONTINUATION = "subscription_continuation"
    UPGRADE = "upgrade"
    LAPSED = "lapsed"
    BOOKINGS_FULL = "bookings_full"
    BOOKINGS_BASIC = "bookings_basic"
    ACTIVE_FULL = "active_full"
    ACTIVE_BASIC = "active_basic"


numbered(Metric)
METRICS = tuple(categories(Metric))
MONEY = (Metric.BOOKINGS.value, Metric.RECOGNISED.value, Metric.BOOKINGS_FULL.value, Metric.BOOKINGS_BASIC.value)
#: The edition split of a metric: its metrics per edition (engine-code order).
BY_EDITION = {Metric.BOOKINGS: (Metric.BOOKINGS_FULL, Metric.BOOKINGS_BASIC), Metric.ACTIVE: (Metric.ACTIVE_FULL, Metric.ACTIVE_BASIC)}
#: Metrics that are a stock on a day (licenses active at a month end), not a flow over the month.
STOCKS = (Metric.ACTIVE, Metric.ACTIVE_FULL, Metric.ACTIVE_BASIC)
#: A subscription activated up to this many days after the window closed counts as a continuation.
CONTINUATION_DAYS = 365


# -- one run: simulate, replay on integer arrays, measure ---------------------------------------------------
def _prepare_core(core: SimCore, init_end: np.ndarray) -> Prepared:
    """Engine input from simulator arrays (no strings): every order's code is its own index."""
    n_lic = core.n_licenses
    t = core.o_times
    issue_ns = t[:, 4]
    issued = issue_ns != NO_TIME
    act = t[:, 5] != NO_TIME
    act_rows = np.flatnonzero(act)
    act_ts = t[act_rows, 5]  # local wall-clock ns: only their order within a license matters here
    iss_ts = np.where(issued, issue_ns, NO_TIME)
    act_perm, act_ptr = order_events(core.o_lic[act_rows], act_ts, n_lic, None)
    act = act_rows[act_perm]
    iss_day = np.where(issued, issue_ns // NS_PER_DAY, NO_DAY)
    o_perm, o_rank, o_ptr, n_ts = J.license_order(core.o_lic, iss_ts, n_lic)
    n_sku, n_day = core.o_sku[o_perm], iss_day[o_perm]
    n_day32 = days32(n_day)
    iss_num, iss_ptr, iss_ts_p, iss_day_p = J.issue_events(o_ptr, n_sku, n_ts, n_day32)
    n_init = len(init_end)
    leg_lic = np.arange(n_init, dtype=np.int64)
    leg_perm, leg_ptr = order_events(leg_lic, init_end, n_lic, None)
    return Prepared(
        license_ids=None, license_dtype=None, license_edition=core.edition, o_lic=core.o_lic, o_sku=core.o_sku,
        o_target=core.o_upgrade_of,
        o_invoice_day=np.where(t[:, 1] != NO_TIME, t[:, 1] // NS_PER_DAY, NO_DAY),
        o_perm=o_perm, o_rank=o_rank, o_ptr=o_ptr, n_sku=n_sku, n_issue_day=n_day32,
        n_target=target_numbers(o_rank, core.o_upgrade_of), n_oid=None,
        act_num=o_rank[act], act_iss=issues_before(act_ptr, t[act, 5], iss_ptr, iss_ts_p), act_day=t[act, 5] // NS_PER_DAY,
        act_static=np.zeros(len(act), np.int64), act_code=None, act_perm=act_perm, act_ptr=act_ptr,
        iss_num=iss_num, iss_day=iss_day_p, iss_ptr=iss_ptr,
        leg_lic=leg_lic[leg_perm], leg_start=(init_end - 365)[leg_perm], leg_end=init_end[leg_perm], leg_perm=leg_perm,
        leg_ptr=leg_ptr, last_event_day=0,
    )


def _measure(core: SimCore, cat: Catalog, init_end: np.ndarray, start_day: int, month_ends: np.ndarray) -> tuple[np.ndarray, float]:
    """Monthly metrics of one simulated run, replayed by the engine (array [metric, month]), and
    the first-year renewal rate of that same replay."""
    p = _prepare_core(core, init_end)
    knobs = dict(cat.knob_arrays())
    knobs["legacy_prior"] = np.ones_like(knobs["legacy_prior"])  # the initial periods are real subscriptions
    end_day = int(month_ends[-1])
    r = scan_prepared(p, knobs, end_day)
    n_m = len(month_ends)
    out = np.zeros((len(METRICS), n_m), np.int64)
    t = core.o_times
    paid_day = np.where(t[:, 2] != NO_TIME, t[:, 2] // NS_PER_DAY, NO_DAY)
    prices = cat.price_table()
    inv_day = np.where(t[:, 1] != NO_TIME, t[:, 1] // NS_PER_DAY, start_day)
    amount = prices[cat.version_index(inv_day), core.edition[core.o_lic], core.o_sku]
    paid = (paid_day >= start_day) & (paid_day <= end_day)
    pm = np.searchsorted(month_ends, paid_day[paid])
    out[Metric.BOOKINGS.code] = np.bincount(pm, weights=amount[paid], minlength=n_m)[:n_m].astype(np.int64)
    ed_paid = core.edition[core.o_lic[paid]]
    for ed, metric in zip(EDITIONS, BY_EDITION[Metric.BOOKINGS], strict=True):
        m = ed_paid == ed.code
        out[metric.code] = np.bincount(pm[m], weights=amount[paid][m], minlength=n_m)[:n_m].astype(np.int64)
    # Accepted activations: the periods they added, in replay order (license, time).
    acc = np.flatnonzero(r["reason"] == ACCEPTED)
    orders = p.o_perm[p.act_num[acc]]
    lic = core.o_lic[orders]
    pstart, pend, aday = r["pstart"][acc].astype(np.int64), r["pend"][acc].astype(np.int64), p.act_day[acc]
    # Recognised revenue of payments made in the horizon, over the periods their activation added.
    carrier = np.full(len(core.o_sku), -1, np.int64)
    carrier[orders] = np.arange(len(acc))
    up = orders[core.o_sku[orders] == UPG]
    tgt = core.o_upgrade_of[up]
    ok = (tgt >= 0) & (carrier[tgt] < 0)
    carrier[tgt[ok]] = carrier[up[ok]]
    pay = np.flatnonzero(paid & (carrier >= 0))
    ci = carrier[pay]
    D = pend[ci] - pstart[ci]
    rs = np.where(D > 0, pstart[ci], aday[ci])
    last = np.where(D > 0, rs + D - 1, rs)
    keep = rs <= end_day
    ms = np.searchsorted(month_ends, np.maximum(rs[keep], start_day))
    me = np.searchsorted(month_ends, np.minimum(last[keep], end_day))
    rec = recognise_spread(amount[pay][keep], D[keep], rs[keep], np.zeros(int(keep.sum()), np.int64), ms, me, month_ends, 1)
    out[Metric.RECOGNISED.code] = rec[:, 0]
    # Active licenses on each month end: initial periods plus accepted ones.
    s_all = np.r_[init_end - 365, pstart]
    e_all = np.r_[init_end, pend]
    # A license's periods never overlap, so covered licenses = periods started - periods ended
    # by each month end: a period covers month end m from the first m with end_day >= start
    # to the last with end_day < end (counted per edition, summed; no sort of the periods).
    ed_all = core.edition[np.r_[np.arange(len(init_end)), lic]]
    n_ed = len(EDITIONS)
    first_m = np.searchsorted(month_ends, s_all) * n_ed + ed_all
    stop_m = np.searchsorted(month_ends, e_all) * n_ed + ed_all
    size = (n_m + 1) * n_ed
    by_ed = np.cumsum((np.bincount(first_m, minlength=size) - np.bincount(stop_m, minlength=size)).reshape(n_m + 1, n_ed), axis=0)[:n_m]
    for ed, metric in zip(EDITIONS, BY_EDITION[Metric.ACTIVE], strict=True):
        out[metric.code] = by_ed[:, ed.code]
    out[Metric.ACTIVE.code] = by_ed.sum(axis=1)
    # Continuations by outcome, by activation month: against the license's previous end.
    prev_end = np.full(len(acc), NO_DAY, np.int64)
    order = np.argsort(lic, kind="stable")  # replay order is (license, time): a stable sort by license keeps time order
    l_s, e_s = lic[order], pend[order]
    prev = np.full(len(order), NO_DAY, np.int64)
    same = np.zeros(len(l_s), bool)  # np.r_[False, …] would have one row too many without activations
    same[1:] = l_s[1:] == l_s[:-1]
    prev[same] = e_s[np.flatnonzero(same) - 1]
    init_for = np.full(core.n_licenses, NO_DAY, np.int64)
    init_for[: len(init_end)] = init_end
    first = ~same
    prev[first] = init_for[l_s[first]]
    prev_end[order] = prev
    has_prev = prev_end != NO_DAY
    sku = core.o_sku[orders]
    am = np.searchsorted(month_ends, aday)
    in_h = (aday >= start_day) & (aday <= end_day) & has_prev
    closing = K.closing_days(np.where(has_prev, prev_end, 0), knobs["from_day"], knobs["grace"])
    early = aday < prev_end
    for metric, mask in (
        (Metric.EARLY_RENEWAL, in_h & (sku == REN) & early),
        (Metric.GRACE_RENEWAL, in_h & (sku == REN) & ~early),
        (Metric.SUBSCRIPTION_CONTINUATION, in_h & (sku == SUB) & (aday < closing + CONTINUATION_DAYS)),
        (Metric.UPGRADE, in_h & (sku == UPG)),
    ):
        out[metric.code] = np.bincount(am[mask], minlength=n_m)[:n_m]
    # Lapses: coverage ends in the month with no later period by the end of the horizon.
    last_end = np.full(core.n_licenses, NO_DAY, np.int64)
    np.maximum.at(last_end, np.r_[np.arange(len(init_end)), lic], e_all)
    lapsed = (last_end >= start_day) & (last_end <= end_day)
    out[Metric.LAPSED.code] = np.bincount(np.searchsorted(month_ends, last_end[lapsed]), minlength=n_m)[:n_m]
    return out, _renewal_rate(np.r_[np.arange(len(init_end)), lic], s_all, e_all, start_day)


def _renewal_rate(lic: np.ndarray, s: np.ndarray, e: np.ndarray, start_day: int) -> float:
    """Share of coverage ends in the first year that are followed by coverage within 365 days."""
    order = np.argsort(lic, kind="stable")  # within a license, periods come in start order (they tile, R13)
    lic, s, e = lic[order], s[order], e[order]
    nxt_same = np.zeros(len(lic), bool)
    nxt_same[:-1] = lic[1:] == lic[:-1]
    nxt_s = np.r_[s[1:], NO_DAY][: len(s)]
    ends = (e >= start_day) & (e < start_day + 365)
    renewed = nxt_same & (nxt_s - e <= 365)
    return float(renewed[ends].mean()) if ends.any() else float("nan")


def run_task(payload: dict) -> list[tuple[tuple[str, float | None], int, np.ndarray, float]]:
    """A batch of runs of one scenario at one elasticity (module-level so any executor can ship it):
    per run its key, number, monthly metrics and renewal rate."""
    beh, cat = payload["behaviour"], payload["catalog"]
    beh = beh if isinstance(beh, Behaviour) else Behaviour.from_dict(beh)
    cat = cat if isinstance(cat, Catalog) else Catalog.from_dict(cat)
    init = payload["initial"]
    start_day, month_ends = payload["start_day"], np.asarray(payload["month_ends"])
    out = []
    for r in payload["runs"]:
        core = simulate_core(beh, cat, int(start_day), int(month_ends[-1]), np.random.default_rng([payload["seed"], r]),
                             progress=False, initial=init, propensity=payload.get("propensity"))
        metrics, rate = _measure(core, cat, np.asarray(init[0]), int(start_day), month_ends)
        out.append((payload["key"], r, metrics, rate))
    return out


def deferred_release(ledger: Ledger, catalog: Catalog, as_of_day: int, month_ends: np.ndarray) -> np.ndarray:
    """Kopecks of the revenue deferred on ``as_of_day`` that each month of the horizon recognises.

    Payments made by ``as_of_day`` whose activation added coverage keep being recognised
    evenly over it (rules §6): this is their part after ``as_of_day``, month by month (the
    same in every run and scenario). A payment whose code is not activated by then stays
    deferred: the what-if does not simulate the fate of codes already bought.
    """
    from .metrics._common import replay_view
    from .metrics.revenue import order_frame

    as_of_ts = pd.Timestamp(as_of_day, unit="D")
    rep = replay(ledger, catalog, as_of=as_of_ts)
    o = order_frame(rep)
    v = replay_view(rep, as_of_ts)
    period_of = np.full(len(o["sku"]), -1, np.int64)
    own = v.order >= 0
    period_of[v.order[own]] = np.flatnonzero(own)
    ups = np.flatnonzero((o["sku"] == UPG) & (o["target"] >= 0) & (period_of >= 0))
    free = period_of[o["target"][ups]] < 0
    period_of[o["target"][ups][free]] = period_of[ups[free]]
    paid = np.flatnonzero((o["paid_day"] != NO_DAY) & (o["paid_day"] <= as_of_day) & (period_of >= 0))
    pi = period_of[paid]
    D = v.end[pi] - v.start[pi]
    last = v.start[pi] + D - 1
    keep = (D > 0) & (last > as_of_day)
    ends = np.r_[as_of_day, month_ends].astype(np.int64)
    me = np.searchsorted(ends, np.minimum(last[keep], ends[-1]))
    rec = recognise_spread(o["amount"][paid][keep], D[keep], v.start[pi][keep], np.zeros(int(keep.sum()), np.int64),
                     np.zeros(int(keep.sum()), np.int64), me, ends, 1)
    return rec[1:, 0].astype(np.int64)
