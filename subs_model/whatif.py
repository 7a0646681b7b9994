"""Pricing what-if: scenarios on the real customer base, Monte Carlo bands, sensitivity.

``run_scenarios`` calibrates customer behaviour from the ledger as of ``as_of``, takes
every license that is covered (or still inside its grace window) on that day with its
real coverage end, edition and history, adds new arrivals, and simulates
``horizon_months`` ahead under each scenario's catalog and behaviour — ``runs`` times.
Every run is replayed by the rules engine (the compiled scan, on integer arrays), and its
monthly bookings, recognised revenue, active licenses, continuations by outcome,
upgrades and lapses are recorded. Results are the mean and the 5–95 % band per scenario
and month, and each scenario's difference to the baseline with its own band.

Common random numbers: run ``r`` of every scenario uses the same seed, and the simulator
draws per license and round from a counter-based stream, so the same customer makes the
same choices wherever the rules let them — differences between scenarios are the rules',
not noise. Runs are independent tasks for any ``concurrent.futures.Executor`` (local
processes by default, a ``dask.distributed`` client's ``get_executor()`` for a cluster);
the result does not depend on the executor or the number of workers.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _kernel as K
from .behaviour import ELASTICITY_MAX, Behaviour, BehaviourError
from .calibrate import calibrate
from .catalog import KNOBS, Catalog, CatalogError, CatalogVersion, Edition, Sku, _parse_day, _parse_enum, rub_to_kopecks
from .days import NO_DAY, NO_TIME, NS_PER_DAY, as_day, days32
from .errors import SubsModelError, read_yaml
from .ledger import Ledger
from .metrics import RENEWED, _recognise, expiry_outcomes
from .replay import _event_order, Prepared, issues_before, replay, scan_prepared, target_numbers
from .simulate import SimCore, simulate_core
from .vocab import ACCEPTED, EDITIONS, REN, SUB, UPG, Coded, Source, categories, numbered

SKU_RENEWAL = REN
from .workers import workers

__all__ = ["METRICS", "Scenario", "ScenarioError", "WhatIf", "load_scenarios", "run_scenarios", "sensitivity"]

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
CATALOG_KNOBS = KNOBS  # the catalog knobs a scenario may change
#: A subscription activated up to this many days after the window closed counts as a continuation.
CONTINUATION_DAYS = 365
#: Longest forecast, in months (the simulated days stay well inside the catalog's day range).
HORIZON_MONTHS_MAX = 240
#: Below this many licenses covered on ``as_of`` the results carry a note that the bands are wide.
SMALL_BASE = 30


class ScenarioError(SubsModelError, ValueError):
    """A scenario definition is invalid."""


@dataclass(frozen=True)
class Scenario:
    """A named change of the rules (a new catalog version from a day) and/or of behaviour.

    Parameters
    ----------
    name : str
    effective_from : str, optional
        First day of the new catalog version (default: the day after ``as_of``). Nothing
        retroactive: periods accepted before stay as they are (R2, R10).
    catalog : mapping
        Knob changes (``grace_days``, ``term_days``, ``subscription_basis``,
        ``renewal_basis``, ``legacy_counts_as_prior``) and ``prices`` as
        ``{edition: {sku: rubles}}`` (editions not named keep their prices).
    behaviour : mapping
        Behaviour parameter changes (e.g. ``elasticity``, ``p_forget``).

    Examples
    --------
    >>> s = Scenario("grace 30", catalog={"grace_days": 30})
    >>> s.catalog_for(Catalog.default(), "2026-11-01").version_at("2026-12-01").grace_days
    30
    """

    name: str
    effective_from: str | None = None
    catalog: Mapping[str, Any] = field(default_factory=dict)
    behaviour: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        where = f"scenario {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            msg = f"{where}: the name must be a non-empty text; give each scenario a name"
            raise ScenarioError(msg)
        for part in ("catalog", "behaviour"):
            if not isinstance(getattr(self, part), Mapping):
                msg = f"{where}.{part}: {getattr(self, part)!r} is not a mapping of changes; write it as '{part}: {{name: value}}'"
                raise ScenarioError(msg)
        unknown = sorted(map(str, set(self.catalog) - set(CATALOG_KNOBS) - {"prices"}))
        if unknown:
            msg = f"{where}: unknown catalog change(s) {unknown}; use {list(CATALOG_KNOBS) + ['prices']}"
            raise ScenarioError(msg)
        try:
            if self.effective_from is not None:
                day = _parse_day(self.effective_from, where=f"{where}.effective_from")
                object.__setattr__(self, "effective_from", day.isoformat())
            # Every change is checked now, with the validation of the catalog and the behaviour,
            # not when a run reaches it.
            CatalogVersion._validated(where=f"{where}.catalog", effective_from=dt.date(2020, 1, 1), prices={},
                                      **{k: self.catalog[k] for k in CATALOG_KNOBS if k in self.catalog})
            if "prices" in self.catalog:
                _check_price_changes(self.catalog["prices"], where=f"{where}.catalog.prices")
            if self.behaviour:
                Behaviour.from_dict(self.behaviour, where=f"{where}.behaviour")
        except (CatalogError, BehaviourError) as exc:
            raise ScenarioError(str(exc)) from None

    @property
    def is_baseline(self) -> bool:
        return not self.catalog and not self.behaviour

    def catalog_for(self, base: Catalog, default_from: Any) -> Catalog:
        """``base`` plus this scenario's version (from ``effective_from``), or ``base`` itself."""
        if not self.catalog:
            return base
        start = _parse_day(self.effective_from, where=f"scenario {self.name!r}.effective_from") if self.effective_from \
            else pd.Timestamp(default_from).date()
        prev = base.version_at(start)
        raw = prev.to_dict()
        raw["effective_from"] = start.isoformat()
        raw["name"] = f"{self.name} ({start.isoformat()})"
        for k in CATALOG_KNOBS:
            if k in self.catalog:
                raw[k] = self.catalog[k]
        if "prices" in self.catalog:
            prices = copy.deepcopy(raw["prices"])
            for ed, skus in self.catalog["prices"].items():
                prices.setdefault(ed, {}).update(skus)
                if "upgrade" not in skus and ("subscription" in skus or "renewal" in skus):
                    prices[ed].pop("upgrade", None)  # derived again: subscription - renewal (R8)
            raw["prices"] = prices
        version = CatalogVersion.from_dict(raw, where=f"scenario {self.name!r}")
        kept = tuple(v for v in base.versions if v.effective_from != version.effective_from)
        return Catalog((*kept, version), timezone=base.timezone)

    def behaviour_for(self, base: Behaviour) -> Behaviour:
        """``base`` with this scenario's behaviour changes."""
        if not self.behaviour:
            return base
        raw = {**base.to_dict(), **self.behaviour}
        if "elasticity" in self.behaviour and "elasticity_range" not in self.behaviour:
            lo, hi = base.elasticity_range
            e = self.behaviour["elasticity"]
            raw["elasticity_range"] = [min(lo, e), max(hi, e)] if isinstance(e, (int, float)) else None
        return Behaviour.from_dict(raw, where=f"scenario {self.name!r}")


def _check_price_changes(raw: Any, *, where: str) -> None:
    """Price changes ``{edition: {sku: rubles}}``: known editions and SKUs, valid amounts."""
    if not isinstance(raw, Mapping):
        msg = f"{where}: {raw!r} is not a mapping; write it as {{full: {{renewal: 3000}}, basic: {{renewal: 3000}}}}"
        raise ScenarioError(msg)
    for ed, skus in raw.items():
        _parse_enum(Edition, ed, where=where)
        if not isinstance(skus, Mapping):
            msg = f"{where}.{ed}: {skus!r} is not a mapping sku -> rubles; write it as {{renewal: 3000}}"
            raise ScenarioError(msg)
        for sku, value in skus.items():
            _parse_enum(Sku, sku, where=f"{where}.{ed}")
            rub_to_kopecks(value, where=f"{where}.{ed}.{sku}")


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Scenarios from YAML (see ``data/scenarios.yaml``); the first one is the baseline."""
    p = Path(path)
    raw = read_yaml(p, ScenarioError, "the scenarios file") or {}
    items = raw.get("scenarios") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        msg = f"{p}: expected 'scenarios:' with a list of {{name, catalog, behaviour}}"
        raise ScenarioError(msg)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "name" not in item:
            msg = f"{p}: scenarios[{i}] needs a 'name'"
            raise ScenarioError(msg)
        extra = sorted(set(item) - {"name", "effective_from", "catalog", "behaviour", "description"})
        if extra:
            msg = f"{p}: scenarios[{i}] ({item['name']}): unknown field(s) {extra}"
            raise ScenarioError(msg)
        eff = item.get("effective_from")
        try:
            out.append(Scenario(str(item["name"]), eff if eff is None or isinstance(eff, dt.date) else str(eff),
                                item.get("catalog") or {}, item.get("behaviour") or {}, str(item.get("description", "") or "")))
        except ScenarioError as exc:
            msg = f"{p}: scenarios[{i}]: {exc}"
            raise ScenarioError(msg) from None
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        msg = f"{p}: scenario names must be unique, got {names}"
        raise ScenarioError(msg)
    return out


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
    act_perm, act_ptr = _event_order(core.o_lic[act_rows], act_ts, n_lic, None)
    act = act_rows[act_perm]
    iss_day = np.where(issued, issue_ns // NS_PER_DAY, NO_DAY)
    o_perm, o_rank, o_ptr, n_ts = K.license_order(core.o_lic, iss_ts, n_lic)
    n_sku, n_day = core.o_sku[o_perm], iss_day[o_perm]
    n_day32 = days32(n_day)
    iss_num, iss_ptr, iss_ts_p, iss_day_p = K.issue_events(o_ptr, n_sku, n_ts, n_day32)
    n_init = len(init_end)
    leg_lic = np.arange(n_init, dtype=np.int64)
    leg_perm, leg_ptr = _event_order(leg_lic, init_end, n_lic, None)
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
    rec = _recognise(amount[pay][keep], D[keep], rs[keep], np.zeros(int(keep.sum()), np.int64), ms, me, month_ends, 1)
    out[Metric.RECOGNISED.code] = rec[:, 0]
    # Active licenses on each month end: initial periods plus accepted ones.
    s_all = np.r_[init_end - 365, pstart]
    e_all = np.r_[init_end, pend]
    # A license's periods never overlap, so covered licenses = periods started - periods ended.
    out[Metric.ACTIVE.code] = np.searchsorted(np.sort(s_all), month_ends, side="right") - np.searchsorted(np.sort(e_all), month_ends, side="right")
    ed_all = core.edition[np.r_[np.arange(len(init_end)), lic]]
    for ed, metric in zip(EDITIONS, BY_EDITION[Metric.ACTIVE], strict=True):
        m = ed_all == ed.code
        out[metric.code] = (np.searchsorted(np.sort(s_all[m]), month_ends, side="right")
                            - np.searchsorted(np.sort(e_all[m]), month_ends, side="right"))
    # Continuations by outcome, by activation month: against the license's previous end.
    prev_end = np.full(len(acc), NO_DAY, np.int64)
    order = np.lexsort((aday, lic))
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
    order = np.lexsort((s, lic))
    lic, s, e = lic[order], s[order], e[order]
    nxt_same = np.zeros(len(lic), bool)
    nxt_same[:-1] = lic[1:] == lic[:-1]
    nxt_s = np.r_[s[1:], NO_DAY][: len(s)]
    ends = (e >= start_day) & (e < start_day + 365)
    renewed = nxt_same & (nxt_s - e <= 365)
    return float(renewed[ends].mean()) if ends.any() else float("nan")


def _task(payload: dict) -> tuple[tuple[str, float | None], int, np.ndarray, float]:
    """One run of one scenario (module-level so any executor can ship it)."""
    beh = Behaviour.from_dict(payload["behaviour"])
    cat = Catalog.from_dict(payload["catalog"])
    init = payload["initial"]
    start_day, month_ends = payload["start_day"], np.asarray(payload["month_ends"])
    core = simulate_core(beh, cat, int(start_day), int(month_ends[-1]), np.random.default_rng(payload["seed"]),
                         progress=False, initial=init)
    metrics, rate = _measure(core, cat, np.asarray(init[0]), int(start_day), month_ends)
    return payload["key"], payload["run"], metrics, rate


@dataclass(frozen=True)
class WhatIf:
    """Result of :func:`run_scenarios`.

    Every table carries an ``elasticity`` column: the renewal-price elasticity its numbers
    rest on. ``table``, ``summary`` and ``runs`` are at the central elasticity
    (``elasticity``); ``by_elasticity`` and ``table_by_elasticity`` hold every value of the
    grid ``elasticities``; ``summary`` also gives each difference to the baseline at the ends
    of the range (``*_diff_range_low/high``) and the band over Monte Carlo and the range
    together (``*_diff_band_low/high``: the lowest 5 % and highest 95 % point over the grid).
    Money is in kopecks (integers in ``runs``); exports convert it to rubles.
    """

    table: pd.DataFrame  # scenario, elasticity, metric, month, mean, p05, p95, mean_ci, diff_mean, diff_p05, diff_p95
    summary: pd.DataFrame  # per scenario: totals over the horizon with bands, and vs baseline
    runs: dict[str, np.ndarray]  # scenario -> [run, metric, month] at the central elasticity
    renewal_rates: dict[str, np.ndarray]  # scenario -> per-run renewal rate of the first year
    behaviour: Behaviour
    observed_renewal_rate: float
    as_of: pd.Timestamp
    scenarios: tuple[Scenario, ...]
    notes: tuple[str, ...] = ()  # what limits the reading of the results (tiny base, short horizon, …)
    elasticities: tuple[float, ...] = ()
    by_elasticity: pd.DataFrame | None = None  # the summary's columns, a row per scenario and elasticity
    table_by_elasticity: pd.DataFrame | None = None  # the monthly table at every elasticity of the grid
    runs_by_elasticity: dict[tuple[str, float], np.ndarray] = field(default_factory=dict)
    seed: int = 1
    horizon_months: int = 0
    n_runs: int = 0
    catalog: Catalog | None = None
    fingerprint: str = ""  # of the ledger the run started from

    @property
    def elasticity(self) -> float:
        """The central elasticity ``table``, ``summary`` and ``runs`` rest on."""
        return float(self.behaviour.elasticity)

    @property
    def elasticity_range(self) -> tuple[float, float]:
        """The range the grid spans (the behaviour's range, widened to the grid given)."""
        return (min(self.elasticities), max(self.elasticities)) if self.elasticities else tuple(self.behaviour.elasticity_range)


def _grace_knobs(cat: Catalog) -> tuple[np.ndarray, np.ndarray]:
    knobs = cat.knob_arrays()
    return knobs["from_day"], knobs["grace"]


def _initial_state(ledger: Ledger, cat: Catalog, as_of_day: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], float, float]:
    """Licenses covered or in grace on as_of (end, edition, had a subscription), observed renewal rate, arrivals."""
    rep = replay(ledger, cat, as_of=pd.Timestamp(as_of_day, unit="D"))
    v = rep.keys["license"]
    ends = rep.periods["end"].to_numpy().astype("datetime64[D]").astype(np.int64)
    src = rep.periods["source"].astype("str").to_numpy()
    p = rep.prepared
    n = len(p.license_edition)
    last = np.full(n, NO_DAY, np.int64)
    np.maximum.at(last, v, ends)
    had_sub = np.zeros(n, bool)
    had_sub[v[src != Source.LEGACY.value]] = True
    # Covered on as_of or still inside the grace window after the last end (R4, R7, under the
    # versions in force after that end, R10).
    has_end = last != NO_DAY
    live = has_end & ~K.windows_closed(np.where(has_end, last, 0), np.full(n, as_of_day, np.int64),
                                       *_grace_knobs(cat))
    ed = np.maximum(p.license_edition[live], 0)
    out = expiry_outcomes(rep)
    recent = out[(out["end"] <= pd.Timestamp(as_of_day - 365, unit="D")) & (out["end"] > pd.Timestamp(as_of_day - 730, unit="D"))]
    decided = recent[recent["outcome"] != "open"]
    observed = float(decided["outcome"].isin(RENEWED).mean()) if len(decided) else float("nan")
    first = rep.periods.groupby(v)["start"].min() if len(v) else pd.Series(dtype="datetime64[ns]")
    recent_new = ((first > pd.Timestamp(as_of_day - 365, unit="D")) & (first <= pd.Timestamp(as_of_day, unit="D"))).sum()
    return (last[live], ed.astype(np.int64), had_sub[live]), observed, float(recent_new) / 12.0


def _band(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and the 5–95 % range of outcomes over runs (the spread a decision should expect)."""
    return x.mean(axis=axis), np.quantile(x, 0.05, axis=axis), np.quantile(x, 0.95, axis=axis)


def _ci(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Half-width of the 95 % confidence interval of the mean over runs: shrinks as runs grow."""
    return 1.96 * x.std(axis=axis, ddof=1) / np.sqrt(x.shape[axis])


def run_scenarios(
    ledger: Ledger,
    scenarios: Sequence[Scenario],
    as_of: Any,
    horizon_months: int = 36,
    runs: int = 200,
    seed: int = 1,
    executor: Executor | None = None,
    *,
    catalog: Catalog | None = None,
    prior: Behaviour | None = None,
    behaviour: Behaviour | None = None,
    elasticities: Sequence[float] | None = None,
) -> WhatIf:
    """Simulate each scenario ``runs`` times from the real state of ``ledger`` on ``as_of``,
    at every renewal-price elasticity of a grid.

    The first scenario is the baseline (add ``Scenario("baseline")`` for today's rules).
    ``executor`` is any ``concurrent.futures.Executor``; by default two local processes.
    ``behaviour`` skips calibration (otherwise it is estimated from the ledger).
    ``elasticities`` is the grid (default: five points across the behaviour's
    ``elasticity_range``, e.g. 0, 0.5, 1, 1.5, 2); the central elasticity is always added.
    At every elasticity the intent to continue at today's renewal price is the calibrated
    one, so the elasticity changes only how customers answer a *different* price; a scenario
    whose renewal prices equal today's is simulated once and holds at every elasticity.

    Examples
    --------
    >>> res = run_scenarios(led, [Scenario("baseline"), Scenario("renewal 3000", catalog={"prices": {
    ...     "full": {"renewal": 3000}, "basic": {"renewal": 3000}}})], as_of="2026-10-31", runs=50)  # doctest: +SKIP
    >>> res.by_elasticity[["scenario", "elasticity", "bookings_diff_mean"]]  # doctest: +SKIP
    """
    _check_arguments(scenarios, runs, horizon_months, seed)
    st = prepare_start(ledger, as_of, horizon_months, catalog=catalog, prior=prior, behaviour=behaviour, elasticities=elasticities)
    grid = st.grid
    arr, rates = simulate_grid(st, scenarios, grid, runs, seed, executor)
    tables = {e: _tables(scenarios, {sc.name: arr[sc.name, e] for sc in scenarios},
                         {sc.name: rates[sc.name, e] for sc in scenarios}, st.months, e) for e in grid}
    central = float(st.behaviour.elasticity)
    table, summary = tables[central]
    by_e = pd.concat([tables[e][1] for e in grid], ignore_index=True)
    summary = _with_range(summary, by_e)
    return WhatIf(
        table=table, summary=summary, runs={sc.name: arr[sc.name, central] for sc in scenarios},
        renewal_rates={sc.name: rates[sc.name, central] for sc in scenarios},
        behaviour=st.behaviour, observed_renewal_rate=st.observed, as_of=st.as_of, scenarios=tuple(scenarios),
        notes=st.notes, elasticities=grid, by_elasticity=by_e,
        table_by_elasticity=pd.concat([tables[e][0] for e in grid], ignore_index=True),
        runs_by_elasticity=arr, seed=int(seed), horizon_months=int(horizon_months), n_runs=int(runs), catalog=st.catalog,
        fingerprint=ledger_fingerprint(ledger),
    )


@dataclass(frozen=True)
class Start:
    """Everything a what-if simulation starts from, computed once (see :func:`prepare`):
    behaviour (widened to the grid), the customer base on ``as_of``, the months of the horizon,
    the deferred balance each month releases, and the notes."""

    behaviour: Behaviour
    catalog: Catalog
    initial: tuple[np.ndarray, np.ndarray, np.ndarray]
    observed: float
    notes: tuple[str, ...]
    empty: bool
    as_of: pd.Timestamp
    start_day: int
    months: np.ndarray
    month_ends: np.ndarray
    released: np.ndarray
    grid: tuple[float, ...]

    @property
    def decision_day(self) -> int:
        """The day whose renewal prices the calibrated behaviour holds at (rebasing day)."""
        return min(int(np.min(self.initial[0])), self.start_day) if len(self.initial[0]) else self.start_day


def prepare_start(ledger: Ledger, as_of: Any, horizon_months: int = 36, *, catalog: Catalog | None = None,
            prior: Behaviour | None = None, behaviour: Behaviour | None = None,
            elasticities: Sequence[float] | None = None) -> Start:
    """Calibrate (unless ``behaviour`` is given), read the customer base on ``as_of`` and the
    deferred balance: the :class:`Start` that :func:`run_scenarios` and the break-even search share."""
    cat0 = catalog or Catalog.default()
    as_of_day = as_day(as_of, cat0.timezone)
    as_of_ts = pd.Timestamp(as_of_day, unit="D")
    beh, initial, observed, notes = _starting_point(ledger, cat0, as_of_day, prior, behaviour)
    grid = elasticity_grid(beh, elasticities)
    beh = _widened(beh, grid)
    notes.append(f"renewal-price elasticity: {beh.elasticity:g} (central, {beh.elasticity_source}), "
                 f"range {beh.elasticity_range[0]:g}–{beh.elasticity_range[1]:g}")
    empty = _coverage_notes(notes, beh, len(initial[0]), as_of_ts, horizon_months, calibrated=behaviour is None)
    start_day, months, month_ends = _months(as_of_day, horizon_months)
    released = deferred_release(ledger, cat0, as_of_day, month_ends) if len(ledger.orders) else np.zeros(horizon_months, np.int64)
    return Start(beh, cat0, initial, observed, tuple(notes), empty, as_of_ts, start_day, months, month_ends, released, grid)


def simulate_grid(st: Start, scenarios: Sequence[Scenario], grid: Sequence[float | None], runs: int, seed: int,
                  executor: Executor | None = None) -> tuple[dict[tuple[str, float], np.ndarray], dict[tuple[str, float], np.ndarray]]:
    """Runs ``0 … runs-1`` of every scenario at every elasticity of ``grid`` (common random
    numbers): ``{(scenario, elasticity): [run, metric, month]}`` with the released deferred
    balance in recognised revenue, and the first-year renewal rate per run. A scenario whose
    renewal prices equal today's is simulated once for the whole grid."""
    payloads = _payloads(scenarios, st, runs, seed, grid)
    h = len(st.months)
    if st.empty:
        results = [(pl["key"], pl["run"], np.zeros((len(METRICS), h), np.int64), float("nan")) for pl in payloads]
    else:
        results = _run_payloads(payloads, executor)
    arr, rates = _collect(results, scenarios, runs, h, grid)
    for a in arr.values():
        a[:, Metric.RECOGNISED.code] += st.released  # the balance deferred on as_of is recognised in the horizon too
    return arr, rates


#: Points of the default elasticity grid across the behaviour's range.
GRID_POINTS = 5
#: Most elasticities one what-if takes (each multiplies the runs of every price scenario).
GRID_MAX = 25


def elasticity_grid(beh: Behaviour, elasticities: Sequence[float] | None = None) -> tuple[float, ...]:
    """The sorted elasticities a what-if runs: ``elasticities`` (default: ``GRID_POINTS`` across
    ``beh.elasticity_range``) plus the central ``beh.elasticity``.

    Examples
    --------
    >>> elasticity_grid(Behaviour())
    (0.0, 0.5, 1.0, 1.2, 1.5, 2.0)
    """
    if elasticities is None:
        lo, hi = beh.elasticity_range
        elasticities = np.linspace(lo, hi, GRID_POINTS) if hi > lo else [lo]
    vals = list(elasticities) if isinstance(elasticities, (list, tuple, np.ndarray)) else None
    if not vals or len(vals) > GRID_MAX or not all(
            isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and np.isfinite(x) and 0 <= x <= ELASTICITY_MAX
            for x in vals):
        msg = (f"run_scenarios: elasticities={elasticities!r}; give 1 to {GRID_MAX} finite numbers from 0 to "
               f"{ELASTICITY_MAX:g}, e.g. [0, 0.5, 1, 1.5, 2]")
        raise ScenarioError(msg)
    return tuple(sorted({round(float(x), 6) for x in vals} | {round(float(beh.elasticity), 6)}))


def _widened(beh: Behaviour, grid: Sequence[float]) -> Behaviour:
    """``beh`` with its elasticity range widened to hold the grid."""
    lo, hi = beh.elasticity_range
    return beh.with_changes(elasticity_range=(min(lo, min(grid)), max(hi, max(grid))))


def at_elasticity(beh: Behaviour, elasticity: float, catalog: Catalog, day: int) -> Behaviour:
    """``beh`` at another renewal-price elasticity, with the same intent to continue at the
    renewal prices in force on ``day`` (each edition's ``p_continue`` is rebased: the calibrated
    behaviour holds at today's price whatever the elasticity).

    Examples
    --------
    >>> b = at_elasticity(Behaviour(), 2.0, Catalog.default(), 20_000)
    >>> (b.elasticity, round(b.p_continue["full"], 3))
    (2.0, 0.8)
    """
    e0, e = float(beh.elasticity), float(elasticity)
    if e == e0:
        return beh
    version = catalog.versions[int(catalog.version_index(np.array([day]))[0])]
    ref = beh.reference_prices["renewal"] * 100
    p = {ed.value: float(np.clip(beh.p_continue[ed.value] * (version.price("renewal", ed.value) / ref) ** (e - e0), 0, 1))
         for ed in EDITIONS}
    lo, hi = beh.elasticity_range
    return beh.with_changes(elasticity=e, p_continue=p, elasticity_range=(min(lo, e), max(hi, e)))


def _depends_on_elasticity(cat: Catalog, cat0: Catalog, day: int) -> bool:
    """Whether a scenario's catalog prices a renewal, on or after ``day``, other than today's catalog does on ``day``."""
    today = cat0.price_table()[int(cat0.version_index(np.array([day]))[0]), :, SKU_RENEWAL]
    idx = np.unique(np.r_[cat.version_index(np.array([day])), np.flatnonzero(cat.knob_arrays()["from_day"] > day)])
    return bool((cat.price_table()[idx, :, SKU_RENEWAL] != today[None, :]).any())


def deferred_release(ledger: Ledger, catalog: Catalog, as_of_day: int, month_ends: np.ndarray) -> np.ndarray:
    """Kopecks of the revenue deferred on ``as_of_day`` that each month of the horizon recognises.

    Payments made by ``as_of_day`` whose activation added coverage keep being recognised
    evenly over it (rules §6): this is their part after ``as_of_day``, month by month (the
    same in every run and scenario). A payment whose code is not activated by then stays
    deferred: the what-if does not simulate the fate of codes already bought.
    """
    from .metrics import _order_frame, _view

    as_of_ts = pd.Timestamp(as_of_day, unit="D")
    rep = replay(ledger, catalog, as_of=as_of_ts)
    o = _order_frame(rep)
    v = _view(rep, as_of_ts)
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
    rec = _recognise(o["amount"][paid][keep], D[keep], v.start[pi][keep], np.zeros(int(keep.sum()), np.int64),
                     np.zeros(int(keep.sum()), np.int64), me, ends, 1)
    return rec[1:, 0].astype(np.int64)


def ledger_fingerprint(ledger: Ledger) -> str:
    """SHA-256 (first 16 hex digits) of the ledger's content, as the store computes it."""
    from .store import content_hash

    tables = {k: getattr(ledger, k) for k in ("licenses", "orders", "activations", "legacy_periods") if getattr(ledger, k) is not None}
    try:
        return content_hash(tables)[:16]
    except (KeyError, ValueError, TypeError):  # a table the store's canonical form does not know: hash it plainly
        return content_hash({k: v.astype("str") for k, v in tables.items()})[:16]


def _check_arguments(scenarios: Sequence[Scenario], runs: Any, horizon_months: Any, seed: Any) -> None:
    """Raise a :class:`ScenarioError` naming the first bad argument of :func:`run_scenarios`."""
    if not scenarios:
        msg = "run_scenarios: give at least one scenario (the first is the baseline)"
        raise ScenarioError(msg)
    if isinstance(runs, bool) or not isinstance(runs, (int, np.integer)) or runs < 2:
        msg = f"run_scenarios: runs={runs!r}; at least 2 runs are needed for a band"
        raise ScenarioError(msg)
    if isinstance(horizon_months, bool) or not isinstance(horizon_months, (int, np.integer)) \
            or not 1 <= horizon_months <= HORIZON_MONTHS_MAX:
        msg = f"run_scenarios: horizon_months={horizon_months!r}; give a whole number of months from 1 to {HORIZON_MONTHS_MAX}"
        raise ScenarioError(msg)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        msg = f"run_scenarios: seed={seed!r}; give a whole number >= 0"
        raise ScenarioError(msg)
    names = [sc.name for sc in scenarios]
    if len(set(names)) != len(names):
        msg = f"run_scenarios: scenario names must be unique, got {names}"
        raise ScenarioError(msg)


def _starting_point(ledger: Ledger, cat0: Catalog, as_of_day: int, prior: Behaviour | None,
                    behaviour: Behaviour | None) -> tuple[Behaviour, Any, float, list[str]]:
    """The behaviour to simulate (given, or calibrated with arrivals at last year's pace), the
    licenses' state on ``as_of_day``, the observed renewal rate, and the notes so far."""
    notes: list[str] = []
    if behaviour is None and len(ledger.orders) == 0:
        beh = prior or Behaviour()  # nothing to calibrate from
        notes.append("the ledger has no orders: behaviour is the prior's, not calibrated")
    else:
        beh = behaviour or calibrate(ledger, cat0, as_of=pd.Timestamp(as_of_day, unit="D"), prior=prior)
    initial, observed, recent_arrivals = _initial_state(ledger, cat0, as_of_day)
    if behaviour is None:
        # New licenses at the pace of the last year — none if the ledger had none.
        beh = beh.with_changes(arrivals_per_month=recent_arrivals, legacy_licenses=0)
    return beh, initial, observed, notes


def _coverage_notes(notes: list[str], beh: Behaviour, n_base: int, as_of_ts: pd.Timestamp, horizon_months: int,
                    calibrated: bool) -> bool:
    """Append to ``notes`` what limits the forecast (a small or empty base, no arrivals, a
    short horizon); True when there is nothing to simulate."""
    day = as_of_ts.date().isoformat()
    empty = n_base == 0 and beh.arrivals_per_month == 0
    if empty:
        notes.append(f"no license is covered on {day} and none is expected to arrive: nothing to simulate, every result is 0")
    elif n_base == 0:
        notes.append(f"no license is covered on {day}: the forecast holds new arrivals only")
    elif n_base < SMALL_BASE:
        notes.append(f"only {n_base} licenses are covered on {day}: the bands are wide and the calibration leans on the prior")
    if calibrated and not empty and beh.arrivals_per_month == 0:
        notes.append(f"no new license in the year before {day}: no arrivals are simulated")
    if horizon_months < 24:
        notes.append(f"the horizon of {horizon_months} months is under 24: renewal rates count only renewals inside it and "
                     "understate the first-year rate")
    return empty


def _months(as_of_day: int, horizon_months: int) -> tuple[int, np.ndarray, np.ndarray]:
    """The first simulated day, the months of the horizon and each month's last day (the
    first month's end no earlier than the first day)."""
    start_day = as_of_day + 1
    first_month = np.datetime64(start_day, "D").astype("datetime64[M]")
    months = first_month + np.arange(horizon_months)
    month_ends = ((months + 1).astype("datetime64[D]") - 1).astype(np.int64)
    month_ends[0] = max(month_ends[0], start_day)
    return start_day, months, month_ends


def _payloads(scenarios: Sequence[Scenario], st: Start, runs: int, seed: int, grid: Sequence[float]) -> list[dict[str, Any]]:
    """One picklable task per scenario, elasticity and run: its catalog, behaviour, seed and the
    initial state. A scenario that does not depend on the elasticity has one task per run
    (key ``(name, None)``); run ``r`` has the seed ``[seed, r]`` everywhere (common random numbers)."""
    payloads = []
    cat0, beh, day, start_day = st.catalog, st.behaviour, st.decision_day, st.start_day
    for sc in scenarios:
        if "elasticity" in sc.behaviour:
            msg = (f"scenario {sc.name!r} sets the elasticity itself; the elasticity is the what-if's axis: "
                   "give it as run_scenarios(elasticities=[...]) or in the behaviour, not in a scenario")
            raise ScenarioError(msg)
        cat = sc.catalog_for(cat0, pd.Timestamp(start_day, unit="D"))
        axis = grid if _depends_on_elasticity(cat, cat0, day) else (None,)
        for e in axis:
            b = sc.behaviour_for(at_elasticity(beh, beh.elasticity if e is None else e, cat0, day))
            b_raw, c_raw = b.to_dict(), cat.to_dict()
            for r in range(runs):
                payloads.append({
                    "scenario": sc.name, "key": (sc.name, e), "run": r, "seed": [seed, r], "behaviour": b_raw,
                    "catalog": c_raw, "initial": st.initial, "start_day": start_day, "month_ends": st.month_ends,
                })
    return payloads


def _run_payloads(payloads: list[dict[str, Any]], executor: Executor | None) -> list[Any]:
    """Every task's result, on ``executor`` or on local processes started (and stopped) here."""
    own = executor is None
    ex = executor or ProcessPoolExecutor(max_workers=workers())
    try:
        return list(ex.map(_task, payloads, chunksize=max(1, len(payloads) // 16)) if own
                    else [f.result() for f in [ex.submit(_task, pl) for pl in payloads]])
    finally:
        if own:
            ex.shutdown()


def _collect(results: list[Any], scenarios: Sequence[Scenario], runs: int, horizon_months: int,
             grid: Sequence[float]) -> tuple[dict[tuple[str, float], np.ndarray], dict[tuple[str, float], np.ndarray]]:
    """Each (scenario, elasticity)'s monthly metrics (run × metric × month) and renewal rate per
    run; a scenario simulated once (key ``(name, None)``) holds at every elasticity."""
    arr = {(sc.name, e): np.zeros((runs, len(METRICS), horizon_months), np.int64) for sc in scenarios for e in grid}
    rates = {(sc.name, e): np.zeros(runs) for sc in scenarios for e in grid}
    for (name, e), r, m, rate in results:
        for g in (grid if e is None else (e,)):
            arr[name, g][r] = m
            rates[name, g][r] = rate
    return arr, rates


def _tables(scenarios: Sequence[Scenario], arr: dict[str, np.ndarray], rates: dict[str, np.ndarray],
            months: np.ndarray, elasticity: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The monthly table (bands of each metric and of its difference to the baseline) and the
    summary over the horizon, a row per scenario, both at ``elasticity`` (a column of each)."""
    base = scenarios[0].name
    month_ts = months.astype("datetime64[ns]")
    rows, summary = [], []
    for sc in scenarios:
        x = arr[sc.name].astype(float)
        rows += _monthly_rows(sc.name, x, x - arr[base], month_ts)
        summary.append(_summary_row(sc, x, arr[base], rates[sc.name]))
    table, summ = pd.concat(rows, ignore_index=True), pd.DataFrame(summary)
    table.insert(1, "elasticity", float(elasticity))
    summ.insert(1, "elasticity", float(elasticity))
    return table, summ


def _with_range(summary: pd.DataFrame, by_e: pd.DataFrame) -> pd.DataFrame:
    """``summary`` plus, per metric, the mean difference to the baseline at the low and the high
    end of the elasticity grid and the band over Monte Carlo and the grid together."""
    g = by_e.groupby("scenario", sort=False)
    lo_e, hi_e = by_e["elasticity"].min(), by_e["elasticity"].max()
    at = lambda e: by_e[by_e["elasticity"] == e].set_index("scenario")  # noqa: E731
    low, high = at(lo_e), at(hi_e)
    out = summary.copy()
    for metric in METRICS:
        d = f"{metric}_diff"
        out[f"{d}_range_low"] = out["scenario"].map(low[f"{d}_mean"])
        out[f"{d}_range_high"] = out["scenario"].map(high[f"{d}_mean"])
        out[f"{d}_band_low"] = out["scenario"].map(g[f"{d}_p05"].min())
        out[f"{d}_band_high"] = out["scenario"].map(g[f"{d}_p95"].max())
    out.insert(2, "elasticity_low", float(lo_e))
    out.insert(3, "elasticity_high", float(hi_e))
    return out


def _monthly_rows(name: str, x: np.ndarray, d: np.ndarray, month_ts: np.ndarray) -> list[pd.DataFrame]:
    """A frame per metric: the monthly band of scenario ``name`` (runs ``x``) and of its difference ``d``."""
    mean, lo, hi = _band(x)
    dmean, dlo, dhi = _band(d)
    ci = _ci(x)
    return [pd.DataFrame({
        "scenario": name, "metric": metric, "month": month_ts, "mean": mean[k], "p05": lo[k], "p95": hi[k],
        "mean_ci": ci[k], "diff_mean": dmean[k], "diff_p05": dlo[k], "diff_p95": dhi[k],
    }) for k, metric in enumerate(METRICS)]


def _summary_row(sc: Scenario, x: np.ndarray, base: np.ndarray, rates: np.ndarray) -> dict[str, Any]:
    """The totals over the horizon of a scenario (active: at the end) and their difference to the baseline."""
    tot = x.sum(axis=2)
    at_end = [m.code for m in STOCKS]
    tot[:, at_end] = x[:, at_end, -1]  # active licenses: at the end, not summed
    dt = tot - np.c_[[base[:, k].sum(axis=1) if k not in at_end else base[:, k, -1] for k in range(len(METRICS))]].T
    row = {"scenario": sc.name, "description": sc.description}
    for k, metric in enumerate(METRICS):
        m, lo_, hi_ = _band(tot[:, k])
        dm, dlo_, dhi_ = _band(dt[:, k])
        row.update({f"{metric}_mean": m, f"{metric}_p05": lo_, f"{metric}_p95": hi_, f"{metric}_mean_ci": _ci(tot[:, k]),
                    f"{metric}_diff_mean": dm, f"{metric}_diff_p05": dlo_, f"{metric}_diff_p95": dhi_})
    rm, rlo, rhi = _band(rates)
    row.update({"renewal_rate_mean": rm, "renewal_rate_p05": rlo, "renewal_rate_p95": rhi})
    return row


SENSITIVITY = {
    "grace_days": ("catalog", [7, 30]),
    "renewal_price": ("price", [2800, 3600]),
    "upgrade_price": ("upgrade_price", [500, 1200]),
    "elasticity": ("elasticity", [0.5, 2.0]),
}
#: Knob names as a report shows them.
KNOB_LABELS = {
    "ru": {"grace_days": "льготный период, дней", "renewal_price": "цена продления, ₽", "upgrade_price": "цена апгрейда, ₽",
           "elasticity": "эластичность по цене продления", "term_days": "срок подписки, дней"},
    "en": {"grace_days": "grace window, days", "renewal_price": "renewal price, ₽", "upgrade_price": "upgrade price, ₽",
           "elasticity": "renewal-price elasticity", "term_days": "term, days"},
}


def _variant(at: Scenario, name: str, kind: str, knob: str, value: Any) -> Scenario:
    """Scenario ``at`` with one more change: a catalog knob, a price or a behaviour parameter."""
    cat = copy.deepcopy(dict(at.catalog))
    beh = dict(at.behaviour)
    if kind == "catalog":
        cat[knob] = value
    elif kind in ("price", "upgrade_price"):
        sku = "renewal" if kind == "price" else "upgrade"
        prices = cat.setdefault("prices", {})
        for e in EDITIONS:
            prices.setdefault(e.value, {})[sku] = value
    else:
        beh[knob] = value
    return Scenario(name, at.effective_from, cat, beh)


def sensitivity(
    ledger: Ledger, as_of: Any, knobs: Mapping[str, tuple[str, Sequence[Any]]] | None = None, *, runs: int = 40,
    horizon_months: int = 36, seed: int = 1, executor: Executor | None = None, catalog: Catalog | None = None,
    behaviour: Behaviour | None = None, at: Scenario | None = None, lang: str = "ru",
) -> pd.DataFrame:
    """One knob at a time over a range, at the prices of scenario ``at`` → effect on the
    bookings over the horizon and on active licenses at its end.

    Each bar of the tornado is the change when the knob moves to its low or high value,
    everything else as in ``at`` (default: today's rules — where the elasticity has no effect,
    since the calibrated behaviour holds at today's price; give the price scenario you decide
    on). Knob kinds: ``catalog`` (a catalog knob), ``price`` / ``upgrade_price`` (rubles, both
    editions), ``elasticity`` (the renewal-price elasticity), ``behaviour`` (another
    behaviour parameter). Returns a tidy table: ``knob`` (its name in ``lang``), ``knob_id``,
    ``value``, ``scenario`` (``at``'s name), ``elasticity`` (the one the row rests on),
    ``bookings_diff`` (kopecks), ``bookings_diff_pct``, ``active_diff``, ``active_diff_pct``
    — mean differences to ``at`` over common random numbers.
    """
    knobs = knobs or SENSITIVITY
    if lang not in KNOB_LABELS:
        msg = f"sensitivity: lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ScenarioError(msg)
    at = at or Scenario("baseline")
    scenarios = [Scenario(at.name, at.effective_from, at.catalog, at.behaviour)]
    labels: dict[str, tuple[str, Any]] = {}
    grid: list[float] = []
    for knob, (kind, values) in knobs.items():
        for v in values:
            if kind == "elasticity":
                grid.append(v)
                labels[f"{knob}={v}"] = (knob, v)
                continue
            name = f"{knob}={v}"
            labels[name] = (knob, v)
            scenarios.append(_variant(at, name, kind, knob, v))
    res = run_scenarios(ledger, scenarios, as_of, horizon_months=horizon_months, runs=runs, seed=seed, executor=executor,
                        catalog=catalog, behaviour=behaviour, elasticities=grid or None)
    central = res.elasticity
    by_e = res.by_elasticity.set_index(["scenario", "elasticity"])
    base = by_e.loc[(at.name, central)]
    rows = []
    pct = lambda diff, of: diff / of if of else float("nan")  # noqa: E731 - no share of an empty baseline
    for name, (knob, v) in labels.items():
        if knob == "elasticity" and knobs[knob][0] == "elasticity":
            r, e = by_e.loc[(at.name, round(float(v), 6))], round(float(v), 6)
            d_book, d_act = r["bookings_mean"] - base["bookings_mean"], r["active_mean"] - base["active_mean"]
        else:
            r, e = by_e.loc[(name, central)], central
            d_book, d_act = r["bookings_diff_mean"], r["active_diff_mean"]
        rows.append({
            "knob": KNOB_LABELS[lang].get(knob, knob), "knob_id": knob, "value": v, "scenario": at.name, "elasticity": e,
            "bookings_diff": d_book, "bookings_diff_pct": pct(d_book, base["bookings_mean"]),
            "active_diff": d_act, "active_diff_pct": pct(d_act, base["active_mean"]),
        })
    return pd.DataFrame(rows)
