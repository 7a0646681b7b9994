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

Price sensitivity is not identifiable from one price regime: ``upgrade_elasticity``,
``reference_prices`` and the timing support are taken from ``prior``, and so is the
renewal-price ``elasticity`` unless the catalog records a renewal price change with
decided term ends on both sides — then it is estimated (:mod:`subs_model.elasticity`),
its 90 % interval becomes ``elasticity_range`` and ``elasticity_source`` says so. The
probabilities are converted back to the reference prices with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import _kernel as K
from .behaviour import Behaviour, LeadTime
from .catalog import Catalog
from .days import NO_DAY, NO_TIME, as_day, parse_instants, to_local_days
from .ledger import Ledger
from .prepared import first_activations
from .replay import replay
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


def calibrate(ledger: Ledger, catalog: Catalog, as_of: Any = None, *, prior: Behaviour | None = None,
              heterogeneity: bool = False) -> Behaviour:
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
    heterogeneity : bool
        Also fit each edition's Beta mixing distribution of the propensity to continue
        (the sBG model, :func:`calibrate_retention`, maximum likelihood with censoring):
        ``continue_concentration`` is ``alpha + beta`` and ``p_continue`` the mean for a
        new license, ``beta / (alpha + beta)`` (with the price and return corrections of
        the pooled estimate applied as a ratio). Off by default: what-if runs start the
        current base from the prior, not from each license's history (use
        :func:`subs_model.forecast` for that).

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
    rep = replay(ledger, catalog, as_of)
    obs = observe_orders(ledger, catalog, rep)
    ends = observed_term_ends(obs, ledger, rep, catalog, prior)
    returns, q = observed_returns(ends, obs, prior)
    prior = _measured_elasticity(ends, obs, catalog, prior, q)
    cont = _continuation(ends, obs, catalog, prior, q)
    if heterogeneity:
        cont.update(_heterogeneity(rep, ends, obs, cont["p_continue"], prior))
    return prior.with_changes(
        **_arrivals(obs, prior),
        **cont,
        **_what_followed(ends, obs, prior, q),
        **forgotten_codes(ends, obs, prior),
        **_lapsed(obs, rep, catalog, prior),
        **returns,
        lead_times=_lead_times(obs, prior),
    )


def _measured_elasticity(ends: _TermEnds, obs: _Orders, catalog: Catalog, prior: Behaviour, q: float) -> Behaviour:
    """``prior`` with the renewal-price elasticity the ledger's price changes show, if any."""
    from .elasticity import estimate_from_ends

    est = estimate_from_ends(ends.E, obs.edition[ends.per_lic], ends.cont, ends.decided, catalog, q,
                             prior.reference_prices["renewal"] * 100)
    if not est.measured:
        return prior
    e = max(0.0, float(est.estimate))
    lo = max(0.0, est.low) if np.isfinite(est.low) else 0.0
    hi = est.high if np.isfinite(est.high) else max(e, prior.elasticity_range[1])
    return prior.with_changes(elasticity=e, elasticity_range=(min(lo, e), max(hi, e)), elasticity_source=est.source())


@dataclass(frozen=True, slots=True)
class _Orders:
    """What the ledger shows of each order, by order row (and of each license, by number)."""

    p: Any  #: the replay's prepared arrays
    tz: str
    as_of_day: int
    n_o: int
    times: np.ndarray  #: UTC ns of each stage of STAGE_COLS, then of the code's first activation (NO_TIME: none)
    act_ns: np.ndarray  #: UTC ns of the first activation of each order's code
    req_day: np.ndarray  #: local day of each order's request
    sku: np.ndarray
    lic: np.ndarray  #: license number of each order
    edition: np.ndarray  #: edition code of each license number
    nxt: np.ndarray  #: each order's next non-upgrade order of its license (-1: none)
    first_of_lic: np.ndarray  #: each license's first non-upgrade order (-1: none)


@dataclass(frozen=True, slots=True)
class _TermEnds:
    """Every period's end and the continuation that followed it (by period row)."""

    E: np.ndarray  #: end day
    per_lic: np.ndarray  #: license number
    cont_order: np.ndarray  #: the next main order after the end (-1: none)
    closing: np.ndarray  #: the day the renewal window closes
    decided: np.ndarray  #: the whole timing support lies before as_of
    has_next: np.ndarray
    off: np.ndarray  #: request day of cont_order minus the end
    cont: np.ndarray  #: continued within the timing support
    lo: int
    hi: int
    knobs: dict[str, np.ndarray]


def observe_orders(ledger: Ledger, catalog: Catalog, rep: Any) -> _Orders:
    """Each order's stage instants, request day and next main order (the replay's numbering)."""
    tz = catalog.timezone
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
    nxt, first_of_lic = _next_main_orders(times, req_day, p.o_sku, p.o_lic, len(p.license_edition), n_o)
    return _Orders(p=p, tz=tz, as_of_day=as_day(rep.as_of), n_o=n_o, times=times, act_ns=act_ns, req_day=req_day,
                   sku=p.o_sku, lic=p.o_lic, edition=p.license_edition, nxt=nxt, first_of_lic=first_of_lic)


def _next_main_orders(times: np.ndarray, req_day: np.ndarray, sku: np.ndarray, lic: np.ndarray, n_lic: int,
                      n_o: int) -> tuple[np.ndarray, np.ndarray]:
    """Orders by license and request time: for each order the next non-upgrade order after it,
    and each license's first non-upgrade order (-1: none)."""
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
    first_of_lic = np.full(n_lic, -1, np.int64)
    first_of_lic[first_main.index.to_numpy()] = first_main.to_numpy()
    return nxt, first_of_lic


def _arrivals(obs: _Orders, prior: Behaviour) -> dict[str, Any]:
    """Arrivals (new licenses a month, fitted log-linearly), edition mix and the legacy base."""
    p = obs.p
    first_req = pd.Series(obs.req_day).groupby(obs.lic).min()
    leg_lics = np.unique(p.leg_lic) if len(p.leg_lic) else np.empty(0, np.int64)
    new = first_req[~first_req.index.isin(leg_lics)]
    new = new[new.to_numpy() != NO_DAY]
    months = pd.PeriodIndex(pd.to_datetime(new.to_numpy(), unit="D"), freq="M")
    counts = pd.Series(1, index=months).groupby(level=0).sum()
    if len(counts):
        last_month = pd.Period(pd.Timestamp(obs.as_of_day, unit="D"), freq="M") - 1
        full_range = pd.period_range(counts.index.min(), last_month, freq="M")
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
    share_basic = _rate(obs.edition[new.index.to_numpy()] == Edition.BASIC.code) if len(new) else prior.share_basic
    spread = prior.legacy_end_spread_days
    if len(p.leg_end) and len(new):
        spread = int(max(p.leg_end.max() - min(int(new.min()), int(p.leg_end.min())), 1))
    return {
        "arrivals_per_month": float(level),
        "arrivals_growth": float(growth),
        "seasonality": tuple(season),
        "share_basic": float(share_basic),
        "legacy_licenses": int(len(leg_lics)),
        "legacy_end_spread_days": int(spread),
    }


def observed_term_ends(obs: _Orders, ledger: Ledger, rep: Any, catalog: Catalog, prior: Behaviour) -> _TermEnds:
    """Each period's end, its closing day, and the order that continued it (if any, and when)."""
    per = rep.periods
    order_ids = pd.Index(ledger.orders["order_id"].astype("str"))
    order_pos = order_ids.get_indexer(per["order_id"].astype("str").fillna("").to_numpy())
    per_lic = pd.Index(obs.p.license_ids.to_pandas()).get_indexer(per["license_id"].to_numpy())
    E = per["end"].to_numpy().astype("datetime64[D]").astype(np.int64)
    cont_order = np.where(order_pos >= 0, obs.nxt[np.maximum(order_pos, 0)], obs.first_of_lic[per_lic])
    knobs = catalog.knob_arrays()
    closing = K.closing_days(E, knobs["from_day"], knobs["grace"])
    lo = min(int(prior.timing[ed][0]) for ed in EDITIONS)
    hi = max(int(prior.timing[ed][0]) + len(prior.timing[ed][1]) - 1 for ed in EDITIONS)
    decided = E + hi <= obs.as_of_day
    has_next = cont_order >= 0
    off = np.where(has_next, obs.req_day[np.maximum(cont_order, 0)] - E, np.iinfo(np.int64).max)
    cont = has_next & (off >= lo) & (off <= hi)
    return _TermEnds(E=E, per_lic=per_lic, cont_order=cont_order, closing=closing, decided=decided, has_next=has_next,
                     off=off, cont=cont, lo=lo, hi=hi, knobs=knobs)


def observed_returns(ends: _TermEnds, obs: _Orders, prior: Behaviour) -> tuple[dict[str, Any], float]:
    """Churned customers who came back (``p_return``, delay), and the share of churners whose
    return falls inside the timing support (counted as continuing)."""
    # A churned customer's return is seen only beyond the timing support (earlier, it looks
    # like a late continuation): delays are left-truncated at ``a`` and right-truncated at
    # the horizon. The exponential is memoryless, so ``delay - a`` is exponential too.
    churn = ends.decided & ~ends.cont
    a_cut = (ends.E + ends.hi + 1 - ends.closing)[churn]
    nxt_churn = np.where(ends.has_next[churn], obs.req_day[np.maximum(ends.cont_order[churn], 0)], NO_DAY)
    horizon = int(3 * prior.return_delay_days) + int(a_cut.max(initial=0))
    closing = ends.closing[churn]
    ok = closing + horizon <= obs.as_of_day
    p_return, ret_delay = prior.p_return, prior.return_delay_days
    if ok.sum() >= 20:
        delay = nxt_churn[ok] - closing[ok]
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
    q = p_return * (1 - np.exp(-float(np.median(a_cut)) / ret_delay)) if len(a_cut) and ret_delay > 0 else 0.0
    return {"p_return": float(p_return), "return_delay_days": float(ret_delay)}, q


def _continuation(ends: _TermEnds, obs: _Orders, catalog: Catalog, prior: Behaviour, q: float) -> dict[str, Any]:
    """Per edition: whether a term end was continued (``p_continue``, at the reference renewal
    price, returns inside the timing support taken out) and on which day (``timing``)."""
    E, off, cont, lo, hi = ends.E, ends.off, ends.cont, ends.lo, ends.hi
    ed_end = obs.edition[ends.per_lic]
    prices = catalog.price_table()
    ver_e = catalog.version_index(E)
    ref_ren = prior.reference_prices["renewal"] * 100
    p_continue = dict(prior.p_continue)
    timing = dict(prior.timing)
    for ed in Edition:
        e, name = ed.code, ed.value
        m = ends.decided & (ed_end == e)
        if m.sum() >= 20:
            price_factor = (prices[ver_e[m], e, REN] / ref_ren) ** (-prior.elasticity)
            c_obs = cont[m].mean()
            c_true = (c_obs - q) / (1 - q) if q < 1 else c_obs
            p_continue[name] = float(np.clip(c_true * m.sum() / price_factor.sum(), 0, 1))
            offs = off[m & cont]
            if len(offs):
                w = np.bincount(offs - lo, minlength=hi - lo + 1).astype(float)
                timing[name] = (lo, tuple((w / w.sum()).tolist()))
    return {"p_continue": p_continue, "timing": timing}


def _bought_subscription(ends: _TermEnds, obs: _Orders) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decided, continued term ends (a mask), their continuing orders, and which of
    those are subscriptions."""
    dc = ends.decided & ends.cont
    c_orders = ends.cont_order[dc]
    return dc, c_orders, obs.sku[c_orders] == SUB


def _what_followed(ends: _TermEnds, obs: _Orders, prior: Behaviour, q: float) -> dict[str, Any]:
    """What a continuation bought: a subscription instead of an on-time renewal
    (``p_subscription_instead``), a renewal when late (``p_late_renewal``)."""
    E, off, cont, decided = ends.E, ends.off, ends.cont, ends.decided
    dc, _, bought_sub = _bought_subscription(ends, obs)
    knobs = ends.knobs
    on_time = ~K.windows_closed(E[dc], (E + off)[dc], knobs["from_day"], knobs["grace"])  # R4: by the deadline
    p_sub_instead = _rate(bought_sub[on_time]) if on_time.any() else prior.p_subscription_instead
    # Late "continuations" include the returns that fell inside the timing support.
    n_returns_inside = q * (1 - cont[decided].mean()) / max(1 - q, 1e-9) * decided.sum() if decided.any() else 0.0
    late_n = (~on_time).sum() - n_returns_inside
    p_late_ren = float(np.clip((~bought_sub[~on_time]).sum() / late_n, 0, 1)) if late_n > 0 else prior.p_late_renewal
    return {"p_subscription_instead": float(p_sub_instead), "p_late_renewal": float(p_late_ren)}


def forgotten_codes(ends: _TermEnds, obs: _Orders, prior: Behaviour) -> dict[str, Any]:
    """Renewal codes issued but never activated (``p_forget``), 30 days after the window closed."""
    dc, c_orders, bought_sub = _bought_subscription(ends, obs)
    ren_c = c_orders[~bought_sub]
    ren_closing = ends.closing[dc][~bought_sub]
    issued = obs.times[ren_c, 4] != NO_TIME
    observed = issued & (ren_closing + 30 <= obs.as_of_day)
    p_forget = _rate(obs.act_ns[ren_c[observed]] == NO_TIME) if observed.any() else prior.p_forget
    return {"p_forget": float(p_forget)}


def _lapsed(obs: _Orders, rep: Any, catalog: Catalog, prior: Behaviour) -> dict[str, Any]:
    """Lapsed renewals: upgraded (``p_upgrade``, delay, at the reference upgrade price),
    replaced by a subscription soon after (probability, delay), or neither."""
    sku, req_day, tz = obs.sku, obs.req_day, obs.tz
    codes = rep.codes
    status = codes["status"].astype("str").to_numpy()
    lapsed = np.flatnonzero((sku == REN) & np.isin(status, [CodeStatus.LAPSED.value, CodeStatus.UPGRADED.value]))
    dl = codes["deadline"].to_numpy().astype("datetime64[D]").astype(np.int64)
    act_day = np.where(obs.act_ns != NO_TIME, to_local_days(obs.act_ns, tz), NO_DAY)
    issue_day = to_local_days(obs.times[:, 4], tz)
    # The customer learns of the lapse at the rejected activation, or when the window closes.
    notice = np.where(act_day[lapsed] != NO_DAY, act_day[lapsed],
                      np.maximum(K.lapse_days(dl[lapsed]), issue_day[lapsed]))
    window = max(4 * prior.lapse_subscription_delay_days, 60)
    seen = notice + window <= obs.as_of_day
    up_orders = np.flatnonzero(sku == UPG)
    up_target = obs.p.o_target[up_orders]
    upgraded_by = np.full(obs.n_o, -1, np.int64)
    ok_t = up_target >= 0
    upgraded_by[up_target[ok_t]] = up_orders[ok_t]
    was_up = upgraded_by[lapsed] >= 0
    p_upgrade, up_delay = prior.p_upgrade, prior.upgrade_delay_days
    p_sub_lapse, sub_delay = prior.p_subscription_after_lapse, prior.lapse_subscription_delay_days
    if seen.sum() >= 20:
        prices = catalog.price_table()
        up_price = prices[catalog.version_index(notice[seen]), obs.edition[obs.lic[lapsed[seen]]], UPG]
        factor = (up_price / (prior.reference_prices["upgrade"] * 100)) ** (-prior.upgrade_elasticity)
        p_upgrade = float(np.clip(was_up[seen].sum() / factor.sum(), 0, 1))
        d = req_day[upgraded_by[lapsed[seen & was_up]]] - notice[seen & was_up]
        up_delay = _geom_mean_to_exp_mean(float(d.mean())) if len(d) else up_delay
        # Not upgraded: a subscription ordered soon after?
        nl = lapsed[seen & ~was_up]
        nxt_o = obs.nxt[nl]
        gap = np.where(nxt_o >= 0, req_day[np.maximum(nxt_o, 0)] - notice[seen & ~was_up], np.iinfo(np.int64).max)
        soon = (gap >= 0) & (gap <= window)
        if len(nl):
            p_sub_lapse = float(soon.mean()) * (1 - p_upgrade)
            if soon.any():
                sub_delay = _geom_mean_to_exp_mean(float(gap[soon].mean()))
    return {
        "p_upgrade": float(p_upgrade),
        "upgrade_delay_days": float(up_delay),
        "p_subscription_after_lapse": float(min(p_sub_lapse, 1 - p_upgrade)),
        "lapse_subscription_delay_days": float(sub_delay),
    }


def _lead_times(obs: _Orders, prior: Behaviour) -> dict[str, LeadTime]:
    """Lead time of each order stage: median hours and log-spread, where 20 or more are seen."""
    times, act_ns, n_o = obs.times, obs.act_ns, obs.n_o
    lead: dict[str, LeadTime] = dict(prior.lead_times)
    is_up = obs.sku == UPG
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
    return lead


def _heterogeneity(rep: Any, ends: _TermEnds, obs: _Orders, p_pooled: dict[str, float],
                   prior: Behaviour) -> dict[str, Any]:
    """``continue_concentration`` and the matching ``p_continue`` from the sBG fit per edition."""
    from .retention_fit import calibrate_retention

    fits = calibrate_retention(rep).set_index("edition")
    ed_end = obs.edition[ends.per_lic]
    p_continue = dict(p_pooled)
    conc = dict(prior.continue_concentration)
    for ed in Edition:
        f = fits.loc[ed.value]
        m = ends.decided & (ed_end == ed.code)
        if not np.isfinite(f["alpha"]) or m.sum() < 20:
            continue
        raw = float(ends.cont[m].mean())
        ratio = p_pooled[ed.value] / raw if raw > 0 else 1.0  # price and return corrections of the pooled estimate
        p_continue[ed.value] = float(np.clip(f["new_license_continuation"] * ratio, 1e-6, 1 - 1e-6))
        conc[ed.value] = float(min(f["concentration"], 1e6))
    return {"p_continue": p_continue, "continue_concentration": conc}
