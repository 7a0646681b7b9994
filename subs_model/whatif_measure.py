"""One what-if run: simulate, replay on integer arrays, measure by month.

A run continues the real customer base (each license's coverage end, edition, history)
with :func:`subs_model.simulate.simulate_core`, replays the simulated orders with the
compiled rules engine, and counts per month in the compiled passes of
:mod:`subs_model._whatif_kernel`: bookings, recognised revenue, active licenses (also per
edition), continuations by outcome, upgrades and lapses (:class:`Metric`).
:func:`deferred_release` adds what the revenue deferred on ``as_of`` recognises in each
month (the same in every run).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from . import _whatif_kernel as W
from .behaviour import Behaviour
from .catalog import Catalog
from .days import NO_DAY
from .ledger import Ledger
from .metrics import recognise_spread
from .prepared import Prepared
from .replay import replay, scan_prepared
from .simulate import SimCore, simulate_core
from .vocab import EDITIONS, UPG, Coded, categories, numbered
from .workers import limited

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


# -- one run: simulate, replay on integer arrays, measure ---------------------------------------------------
def _prepare_core(core: SimCore, init_end: np.ndarray) -> tuple[Prepared, np.ndarray]:
    """Engine input from simulator arrays (no strings): every order's code is its own index, and
    the base's licenses ``0 … len(init_end) - 1`` each have their current period as a legacy
    one. Also which simulated license each license number of the replay is.

    The simulator writes each license's orders together: then the licenses are numbered in
    the order of their rows and an order's number is its row (:func:`_whatif_kernel.prepare_grouped`,
    nothing moves); otherwise by license number (:func:`_whatif_kernel.prepare_orders`). The
    metrics add up over licenses, so both give the same run. ``o_invoice_day`` is not built
    (the scan does not read it)."""
    seq, o_ptr = W.license_blocks(core.o_lic, core.n_licenses)
    if len(seq) != core.n_licenses or not len(seq):
        return _prepare_by_number(core, init_end), np.arange(core.n_licenses, dtype=np.int64)
    o_lic, n_day, n_target, act_perm, act_ptr, act_num, act_iss, act_day, iss_num, iss_ptr, iss_day = W.prepare_grouped(
        core.o_sku, core.o_times, core.o_upgrade_of, o_ptr)
    has_init = seq < len(init_end)
    leg_lic = np.flatnonzero(has_init)
    leg_row = seq[leg_lic]
    numbers = np.arange(len(o_lic), dtype=np.int32)
    return Prepared(
        license_ids=None, license_dtype=None, license_edition=core.edition[seq], o_lic=o_lic, o_sku=core.o_sku,
        o_target=core.o_upgrade_of, o_invoice_day=None, o_perm=numbers, o_rank=numbers, o_ptr=o_ptr, n_sku=core.o_sku,
        n_issue_day=n_day, n_target=n_target, n_oid=None, act_num=act_num, act_iss=act_iss, act_day=act_day,
        act_static=np.zeros(len(act_num), np.int64), act_code=None, act_perm=act_perm, act_ptr=act_ptr,
        iss_num=iss_num, iss_day=iss_day, iss_ptr=iss_ptr, leg_lic=leg_lic, leg_start=init_end[leg_row] - 365,
        leg_end=init_end[leg_row], leg_perm=leg_row.astype(np.int32), leg_ptr=np.r_[0, np.cumsum(has_init)],
        last_event_day=0,
    ), seq


def _prepare_by_number(core: SimCore, init_end: np.ndarray) -> Prepared:
    """:func:`_prepare_core` for orders in any row order: licenses keep their numbers."""
    (o_perm, o_rank, o_ptr, n_sku, n_day, n_target, act_perm, act_ptr, act_num, act_iss, act_day,
     iss_num, iss_ptr, iss_day) = W.prepare_orders(core.o_lic, core.o_sku, core.o_times, core.o_upgrade_of,
                                                   core.n_licenses)
    n_init = len(init_end)
    legacy = np.arange(n_init, dtype=np.int64)
    return Prepared(
        license_ids=None, license_dtype=None, license_edition=core.edition, o_lic=core.o_lic, o_sku=core.o_sku,
        o_target=core.o_upgrade_of, o_invoice_day=None,
        o_perm=o_perm, o_rank=o_rank, o_ptr=o_ptr, n_sku=n_sku, n_issue_day=n_day, n_target=n_target, n_oid=None,
        act_num=act_num, act_iss=act_iss, act_day=act_day, act_static=np.zeros(len(act_num), np.int64), act_code=None,
        act_perm=act_perm, act_ptr=act_ptr, iss_num=iss_num, iss_day=iss_day, iss_ptr=iss_ptr,
        leg_lic=legacy, leg_start=init_end - 365, leg_end=init_end, leg_perm=legacy.astype(np.int32),
        leg_ptr=np.minimum(np.arange(core.n_licenses + 1, dtype=np.int64), n_init), last_event_day=0,
    )


def _measure(core: SimCore, cat: Catalog, init_end: np.ndarray, start_day: int, month_ends: np.ndarray,
             table: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Monthly metrics of one simulated run, replayed by the engine (array [metric, month]), and
    the first-year renewal rate of that same replay (share of the coverage ends in the first
    year followed by coverage within 365 days). ``table``: :func:`_whatif_kernel.month_table`
    of ``month_ends`` (made here if not given)."""
    p, seq = _prepare_core(core, init_end)
    knobs = dict(cat.knob_arrays())
    knobs["legacy_prior"] = np.ones_like(knobs["legacy_prior"])  # the initial periods are real subscriptions
    r = scan_prepared(p, knobs, int(month_ends[-1]))
    table = W.month_table(month_ends) if table is None else table
    n_ed = len(EDITIONS)
    carrier = np.full(len(core.o_sku), -1, np.int64)  # per order row: the activation its payment is spread over
    active, cont, lapsed, renewed, ends, ups = W.measure_periods(
        init_end, seq, core.edition, n_ed, p.act_ptr, p.act_num, p.act_day, r["reason"], r["pstart"], r["pend"],
        p.o_perm, core.o_sku, knobs["from_day"], knobs["grace"], start_day, month_ends, table, carrier)
    book, rec = W.measure_money(core.o_lic, core.o_sku, core.o_times, core.o_upgrade_of, core.edition, n_ed,
                                cat.price_table(), knobs["from_day"], start_day, month_ends, table, carrier, ups,
                                r["pstart"], r["pend"], p.act_day)
    out = np.zeros((len(METRICS), len(month_ends)), np.int64)
    out[Metric.BOOKINGS.code] = book.sum(axis=0)
    out[Metric.RECOGNISED.code] = rec
    out[Metric.ACTIVE.code] = active.sum(axis=1)
    for k, ed in enumerate(EDITIONS):
        out[BY_EDITION[Metric.BOOKINGS][k].code] = book[ed.code]
        out[BY_EDITION[Metric.ACTIVE][k].code] = active[:, ed.code]
    for row, metric in ((W.EARLY, Metric.EARLY_RENEWAL), (W.GRACE, Metric.GRACE_RENEWAL),
                        (W.SUBSCRIPTION, Metric.SUBSCRIPTION_CONTINUATION), (W.UPGRADE, Metric.UPGRADE)):
        out[metric.code] = cont[row]
    out[Metric.LAPSED.code] = lapsed
    return out, (renewed / ends if ends else float("nan"))


def run_task(payload: dict) -> list[tuple[tuple[str, float | None], int, np.ndarray, float]]:
    """A batch of runs of one scenario at one elasticity (module-level so any executor can ship it):
    per run its key, number, monthly metrics and renewal rate. ``payload["threads"]`` (optional)
    caps the threads the runs use (:func:`subs_model.workers.limited`)."""
    beh, cat = payload["behaviour"], payload["catalog"]
    beh = beh if isinstance(beh, Behaviour) else Behaviour.from_dict(beh)
    cat = cat if isinstance(cat, Catalog) else Catalog.from_dict(cat)
    init = payload["initial"]
    start_day, month_ends = payload["start_day"], np.asarray(payload["month_ends"])
    table = W.month_table(month_ends)
    out = []
    with limited(payload.get("threads")):  # 1 in a pool that fills the CPUs: no threads inside (workers.py)
        for r in payload["runs"]:
            core = simulate_core(beh, cat, int(start_day), int(month_ends[-1]),
                                 np.random.default_rng([payload["seed"], r]), progress=False, initial=init,
                                 propensity=payload.get("propensity"))
            metrics, rate = _measure(core, cat, np.asarray(init[0]), int(start_day), month_ends, table)
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
