"""Calibration: estimate a :class:`Behaviour` from a ledger, through its replay.

Every estimate is a plain frequency or quantile of something the ledger shows, counted
only where the observation is complete by ``as_of`` (censored cases are left out):

- arrivals: new licenses per month (month of their first order), fitted log-linearly
  (level, monthly growth, calendar-month seasonality); edition mix; legacy count;
- at each term end (every period's end): whether a subscription or renewal order
  followed within the timing support (``p_continue``), on which day relative to the
  end (``timing``), what was bought (``p_subscription_instead``, ``p_late_renewal``);
- renewal codes issued but never activated (``p_forget``);
- lapsed renewals: upgraded (``p_upgrade``, delay), replaced by a subscription, or not;
- churned customers who came back (``p_return``, delay);
- lead time of each order stage (median and log-spread).

Price sensitivity is not identifiable from one price regime: ``elasticity``,
``upgrade_elasticity``, ``reference_prices`` and the timing support are taken from
``prior``; the probabilities are converted back to the reference prices with them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import _kernel as K
from .behaviour import Behaviour, LeadTime
from .catalog import Catalog
from .days import NO_DAY, NO_TIME, as_day, parse_instants, to_local_days
from .ledger import Ledger
from .replay import first_activations, replay
from .vocab import EDITIONS, REN, STAGES, SUB, UPG, CodeStatus, Edition, Stage

__all__ = ["calibrate"]

NS_HOUR = 3_600 * 10**9
STAGE_COLS = ("requested_at", "invoiced_at", "paid_at", "ticket_at", "code_issued_at")


def _geom_mean_to_exp_mean(mean_floor: float) -> float:
    """Mean of Exp whose floor has the observed mean (inverse of ``1 / (e^(1/m) - 1)``)."""
    if not np.isfinite(mean_floor) or mean_floor <= 0:
        return 0.0
    return float(1.0 / np.log1p(1.0 / mean_floor))


def _truncated_exp_mean(obs_mean: float, span: float) -> float:
    """Mean ``m`` of an exponential whose part below ``span`` has mean ``obs_mean`` (bisection)."""
    lo, hi = 1e-6, 1e6
    for _ in range(200):
        m = (lo + hi) / 2
        r = span / m
        trunc = m - span / np.expm1(r) if r < 700 else m
        if trunc < obs_mean:
            lo = m
        else:
            hi = m
    return float((lo + hi) / 2)


def _rate(num: np.ndarray) -> float:
    return float(num.mean()) if len(num) else float("nan")


def calibrate(ledger: Ledger, catalog: Catalog, as_of: Any = None, *, prior: Behaviour | None = None) -> Behaviour:
    """Estimate customer behaviour from a ledger (simulated or real).

    Parameters
    ----------
    ledger, catalog : Ledger, Catalog
        The data and the rules it was lived under.
    as_of : date-like, optional
        The observation day (default: the ledger's last event day).
    prior : Behaviour, optional
        Supplies what one ledger cannot identify (price sensitivity, reference prices,
        the timing support) and any estimate without data. Default :class:`Behaviour()`.

    Examples
    --------
    >>> import subs_model as sm
    >>> led = sm.simulate(sm.Behaviour(arrivals_per_month=40, legacy_licenses=50), sm.Catalog.default(),
    ...                   start="2022-01-01", end="2025-12-31", seed=2)
    >>> b = sm.calibrate(led, sm.Catalog.default())
    >>> 0 < b.p_continue["full"] < 1
    True
    """
    prior = prior or Behaviour()
    tz = catalog.timezone
    rep = replay(ledger, catalog, as_of)
    as_of_day = as_day(rep.as_of)
    p = rep.prepared
    o = ledger.orders
    n_o = len(o)
    times = np.column_stack(
        [
            parse_instants(o[c], tz, where="orders", column=c) if c in o.columns else np.full(n_o, NO_TIME)
            for c in STAGE_COLS
        ]
    )
    # Activation instant of each order's code: its first activation on record.
    act_ns = first_activations(ledger, p, tz)
    times = np.column_stack([times, act_ns])
    req_day = to_local_days(times[:, 0], tz)
    sku = p.o_sku
    lic = p.o_lic
    edition = p.license_edition

    # -- arrivals, edition mix, legacy ------------------------------------------------------------------
    first_req = pd.Series(req_day).groupby(lic).min()
    leg_lics = np.unique(p.leg_lic) if len(p.leg_lic) else np.empty(0, np.int64)
    new = first_req[~first_req.index.isin(leg_lics)]
    new = new[new.to_numpy() != NO_DAY]
    months = pd.PeriodIndex(pd.to_datetime(new.to_numpy(), unit="D"), freq="M")
    counts = pd.Series(1, index=months).groupby(level=0).sum()
    if len(counts):
        full_range = pd.period_range(counts.index.min(), pd.Period(pd.Timestamp(as_of_day, unit="D"), freq="M") - 1, freq="M")
        counts = counts.reindex(full_range, fill_value=0)
    level, growth, season = prior.arrivals_per_month, prior.arrivals_growth, prior.seasonality
    if len(counts) >= 13:
        m = np.arange(len(counts))
        X = np.column_stack([m] + [(counts.index.month == k).astype(float) for k in range(1, 13)])
        y = np.log(np.maximum(counts.to_numpy(), 0.5))
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        s = np.exp(coef[1:])
        s_norm = s / s.mean()
        month0 = counts.index[0].month
        level = float(np.exp(coef[1 + month0 - 1]) / s_norm[month0 - 1])
        growth = float(np.exp(coef[0]) - 1)
        season = tuple(float(x) for x in s_norm)
    share_basic = _rate(edition[new.index.to_numpy()] == Edition.BASIC.code) if len(new) else prior.share_basic
    legacy_n = len(leg_lics)
    spread = prior.legacy_end_spread_days
    if len(p.leg_end) and len(new):
        spread = int(max(p.leg_end.max() - min(int(new.min()), int(p.leg_end.min())), 1))

    # -- term ends and what followed ---------------------------------------------------------------------
    per = rep.periods
    order_pos = pd.Index(o["order_id"].astype("str")).get_indexer(per["order_id"].astype("str").fillna("").to_numpy())
    per_lic = pd.Index(p.license_ids.to_pandas()).get_indexer(per["license_id"].to_numpy())
    E = per["end"].to_numpy().astype("datetime64[D]").astype(np.int64)
    # Orders by license and request time; for each order the next non-upgrade order after it.
    has_req = req_day != NO_DAY
    ordr = np.flatnonzero(has_req)
    ordr = ordr[np.lexsort((ordr, times[ordr, 0], lic[ordr]))]
    is_main = sku[ordr] != UPG
    pos = np.arange(len(ordr))
    cand = np.where(is_main, pos, len(ordr))
    next_pos = np.minimum.accumulate(cand[::-1])[::-1]  # first main position >= i
    after = np.append(next_pos[1:], len(ordr))[: len(ordr)]  # first main position > i (none without orders)
    ok_next = after < len(ordr)
    ok_next[ok_next] &= lic[ordr[after[ok_next]]] == lic[ordr[ok_next]]
    nxt = np.full(n_o, -1, np.int64)
    nxt[ordr[ok_next]] = ordr[after[ok_next]]
    main_sorted = ordr[is_main]
    first_main = pd.Series(main_sorted).groupby(lic[main_sorted]).first()
    first_of_lic = np.full(len(edition), -1, np.int64)
    first_of_lic[first_main.index.to_numpy()] = first_main.to_numpy()
    cont_order = np.where(order_pos >= 0, nxt[np.maximum(order_pos, 0)], first_of_lic[per_lic])
    knobs = catalog.knob_arrays()
    closing = K.closing_days(E, knobs["from_day"], knobs["grace"])
    lo = min(int(prior.timing[ed][0]) for ed in EDITIONS)
    hi = max(int(prior.timing[ed][0]) + len(prior.timing[ed][1]) - 1 for ed in EDITIONS)
    decided = E + hi <= as_of_day
    has_next = cont_order >= 0
    off = np.where(has_next, req_day[np.maximum(cont_order, 0)] - E, np.iinfo(np.int64).max)
    cont = has_next & (off >= lo) & (off <= hi)
    # -- churn and return ------------------------------------------------------------------------------
    # A churned customer's return is seen only beyond the timing support (earlier, it looks
    # like a late continuation): delays are left-truncated at ``a`` and right-truncated at
    # the horizon. The exponential is memoryless, so ``delay - a`` is exponential too.
    churn = decided & ~cont
    a_cut = (E + hi + 1 - closing)[churn]
    nxt_churn = np.where(has_next[churn], req_day[np.maximum(cont_order[churn], 0)], NO_DAY)
    horizon = int(3 * prior.return_delay_days) + int(a_cut.max(initial=0))
    ok = closing[churn] + horizon <= as_of_day
    p_return, ret_delay = prior.p_return, prior.return_delay_days
    if ok.sum() >= 20:
        delay = nxt_churn[ok] - closing[churn][ok]
        came = (nxt_churn[ok] != NO_DAY) & (delay >= a_cut[ok]) & (delay <= horizon)
        if came.any():
            excess = (delay - a_cut[ok])[came]
            span = float(horizon - np.median(a_cut[ok]))
            ret_delay = _truncated_exp_mean(float(excess.mean()), span)
            a_med = float(np.median(a_cut[ok]))
            seen_share = np.exp(-a_med / ret_delay) - np.exp(-horizon / ret_delay)
            p_return = float(np.clip(came.mean() / seen_share, 0, 1))
        else:
            p_return = 0.0
    # Share of churners whose return falls inside the timing support (counted as continuing).
    q = p_return * (1 - np.exp(-float(np.median(a_cut)) / ret_delay)) if len(a_cut) and ret_delay > 0 else 0.0

    ed_end = edition[per_lic]
    prices = catalog.price_table()
    ver_e = catalog.version_index(E)
    ref_ren = prior.reference_prices["renewal"] * 100
    ref_up = prior.reference_prices["upgrade"] * 100
    p_continue = dict(prior.p_continue)
    timing = dict(prior.timing)
    for ed in Edition:
        e, name = ed.code, ed.value
        m = decided & (ed_end == e)
        if m.sum() >= 20:
            price_factor = (prices[ver_e[m], e, REN] / ref_ren) ** (-prior.elasticity)
            c_obs = cont[m].mean()
            c_true = (c_obs - q) / (1 - q) if q < 1 else c_obs
            p_continue[name] = float(np.clip(c_true * m.sum() / price_factor.sum(), 0, 1))
            offs = off[m & cont]
            if len(offs):
                w = np.bincount(offs - lo, minlength=hi - lo + 1).astype(float)
                timing[name] = (lo, tuple((w / w.sum()).tolist()))
    dc = decided & cont
    c_orders = cont_order[dc]
    on_time = ~K.windows_closed(E[dc], (E + off)[dc], knobs["from_day"], knobs["grace"])  # R4: by the deadline
    bought_sub = sku[c_orders] == SUB
    p_sub_instead = _rate(bought_sub[on_time]) if on_time.any() else prior.p_subscription_instead
    # Late "continuations" include the returns that fell inside the timing support.
    n_returns_inside = q * (1 - cont[decided].mean()) / max(1 - q, 1e-9) * decided.sum() if decided.any() else 0.0
    late_n = (~on_time).sum() - n_returns_inside
    p_late_ren = float(np.clip((~bought_sub[~on_time]).sum() / late_n, 0, 1)) if late_n > 0 else prior.p_late_renewal

    # -- forgotten renewals ------------------------------------------------------------------------------
    ren_c = c_orders[~bought_sub]
    ren_closing = closing[dc][~bought_sub]
    issued = times[ren_c, 4] != NO_TIME
    observed = issued & (ren_closing + 30 <= as_of_day)
    p_forget = _rate(act_ns[ren_c[observed]] == NO_TIME) if observed.any() else prior.p_forget

    # -- lapsed renewals and their fate ---------------------------------------------------------------------
    codes = rep.codes
    status = codes["status"].astype("str").to_numpy()
    lapsed = np.flatnonzero((sku == REN) & np.isin(status, [CodeStatus.LAPSED.value, CodeStatus.UPGRADED.value]))
    dl = codes["deadline"].to_numpy().astype("datetime64[D]").astype(np.int64)
    act_day = np.where(act_ns != NO_TIME, to_local_days(act_ns, tz), NO_DAY)
    issue_day = to_local_days(times[:, 4], tz)
    # The customer learns of the lapse at the rejected activation, or when the window closes.
    notice = np.where(act_day[lapsed] != NO_DAY, act_day[lapsed], np.maximum(K.lapse_days(dl[lapsed]), issue_day[lapsed]))
    window = max(4 * prior.lapse_subscription_delay_days, 60)
    seen = notice + window <= as_of_day
    up_orders = np.flatnonzero(sku == UPG)
    up_target = p.o_target[up_orders]
    upgraded_by = np.full(n_o, -1, np.int64)
    ok_t = up_target >= 0
    upgraded_by[up_target[ok_t]] = up_orders[ok_t]
    was_up = upgraded_by[lapsed] >= 0
    p_upgrade, up_delay = prior.p_upgrade, prior.upgrade_delay_days
    p_sub_lapse, sub_delay = prior.p_subscription_after_lapse, prior.lapse_subscription_delay_days
    if seen.sum() >= 20:
        up_price = prices[catalog.version_index(notice[seen]), edition[lic[lapsed[seen]]], UPG]
        factor = (up_price / ref_up) ** (-prior.upgrade_elasticity)
        p_upgrade = float(np.clip(was_up[seen].sum() / factor.sum(), 0, 1))
        d = req_day[upgraded_by[lapsed[seen & was_up]]] - notice[seen & was_up]
        up_delay = _geom_mean_to_exp_mean(float(d.mean())) if len(d) else up_delay
        # Not upgraded: a subscription ordered soon after?
        nl = lapsed[seen & ~was_up]
        nxt_o = nxt[nl]
        gap = np.where(nxt_o >= 0, req_day[np.maximum(nxt_o, 0)] - notice[seen & ~was_up], np.iinfo(np.int64).max)
        soon = (gap >= 0) & (gap <= window)
        if len(nl):
            p_sub_lapse = float(soon.mean()) * (1 - p_upgrade)
            if soon.any():
                sub_delay = _geom_mean_to_exp_mean(float(gap[soon].mean()))

    # -- lead times -------------------------------------------------------------------------------------
    lead: dict[str, LeadTime] = dict(prior.lead_times)
    is_up = sku == UPG
    pairs = {
        Stage.INVOICE: (times[:, 0], times[:, 1], np.ones(n_o, bool)),
        Stage.PAYMENT: (times[:, 1], times[:, 2], np.ones(n_o, bool)),
        Stage.TICKET: (times[:, 2], times[:, 3], is_up),
        Stage.CODE: (np.where(is_up, times[:, 3], times[:, 2]), times[:, 4], np.ones(n_o, bool)),
        Stage.ACTIVATION: (times[:, 4], act_ns, np.ones(n_o, bool)),
    }
    for stage in STAGES:
        a, b, m = pairs[stage]
        m = m & (a != NO_TIME) & (b != NO_TIME) & (b > a)
        if m.sum() >= 20:
            h = (b[m] - a[m]) / NS_HOUR
            lead[stage] = LeadTime(float(np.median(h)), float(np.std(np.log(h))))

    return prior.with_changes(
        arrivals_per_month=float(level),
        arrivals_growth=float(growth),
        seasonality=tuple(season),
        share_basic=float(share_basic),
        legacy_licenses=int(legacy_n),
        legacy_end_spread_days=int(spread),
        p_continue=p_continue,
        timing=timing,
        p_subscription_instead=float(p_sub_instead),
        p_late_renewal=float(p_late_ren),
        p_forget=float(p_forget),
        p_upgrade=float(p_upgrade),
        upgrade_delay_days=float(up_delay),
        p_subscription_after_lapse=float(min(p_sub_lapse, 1 - p_upgrade)),
        lapse_subscription_delay_days=float(sub_delay),
        p_return=float(p_return),
        return_delay_days=float(ret_delay),
        lead_times=lead,
    )
