"""Pricing what-if: scenarios on the real customer base, Monte Carlo bands, sensitivity.

``run_scenarios`` calibrates customer behaviour from the ledger as of ``as_of``, takes
every license that is covered (or still inside its grace window) on that day with its
real coverage end, edition and history, adds new arrivals, and simulates
``horizon_months`` ahead under each scenario's catalog and behaviour — ``runs`` times.
Every run is replayed by the rules engine (the compiled scan, on integer arrays), and its
monthly bookings, recognised revenue, active licenses, continuations by outcome,
upgrades and lapses are recorded. Results are the mean and the 5–95 % band per scenario
and month, and each scenario's difference to the baseline with its own band.

The renewal-price elasticity is an axis of every result: each price scenario is run at
every elasticity of a grid across the behaviour's ``elasticity_range`` (the intent to
continue at today's price held fixed), and every table says which elasticity its numbers
rest on; see :func:`run_scenarios`, :mod:`subs_model.breakeven` and
:mod:`subs_model.elasticity`.

Common random numbers: run ``r`` of every scenario uses the same seed, and the simulator
draws per license and round from a counter-based stream, so the same customer makes the
same choices wherever the rules let them — differences between scenarios are the rules',
not noise. Runs are independent tasks for any ``concurrent.futures.Executor`` (local
processes by default, a ``dask.distributed`` client's ``get_executor()`` for a cluster);
the result does not depend on the executor or the number of workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from . import _kernel as K
from .behaviour import ELASTICITY_MAX, Behaviour
from .calibrate import calibrate
from .catalog import Catalog
from .days import NO_DAY, as_day
from .ledger import Ledger
from .metrics import RENEWED, expiry_outcomes
from .replay import replay
from .scenario import CATALOG_KNOBS, Scenario, ScenarioError, load_scenarios
from .vocab import EDITIONS, REN, Edition, Source
from .whatif_measure import BY_EDITION, METRICS, MONEY, STOCKS, Metric, run_task, deferred_release
from .workers import threads_per_process, workers

__all__ = ["BY_EDITION", "CATALOG_KNOBS", "METRICS", "MONEY", "STOCKS", "Metric", "Scenario", "ScenarioError", "Start",
           "WhatIf", "at_elasticity", "deferred_release", "depends_on_elasticity", "elasticity_grid", "load_scenarios", "prepare_start",
           "run_scenarios", "sensitivity", "simulate_grid"]

#: Longest forecast, in months (the simulated days stay well inside the catalog's day range).
HORIZON_MONTHS_MAX = 240
#: Below this many licenses covered on ``as_of`` the results carry a note that the bands are wide.
SMALL_BASE = 30


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
    ids = pd.Index(p.license_ids.to_pandas())[live] if p.license_ids is not None else pd.Index([])
    return (last[live], ed.astype(np.int64), had_sub[live]), observed, float(recent_new) / 12.0, ids


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
    start: Start | None = None,
    tenure: bool = True,
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
    ``start`` reuses a :func:`prepare_start` of the same ledger, day and horizon (calibration
    and customer base computed once for several calls; ``elasticities`` then extend its grid).
    ``tenure`` (default) starts each license of the base from its own history, as
    :func:`subs_model.forecast.forecast` does (the sBG posterior relative to its edition's
    rate); ``tenure=False`` gives every license of an edition the same chance.

    Examples
    --------
    >>> res = run_scenarios(led, [Scenario("baseline"), Scenario("renewal 3000", catalog={"prices": {
    ...     "full": {"renewal": 3000}, "basic": {"renewal": 3000}}})], as_of="2026-10-31", runs=50)  # doctest: +SKIP
    >>> res.by_elasticity[["scenario", "elasticity", "bookings_diff_mean"]]  # doctest: +SKIP
    """
    _check_arguments(scenarios, runs, horizon_months, seed)
    st = start or prepare_start(ledger, as_of, horizon_months, catalog=catalog, prior=prior, behaviour=behaviour,
                                elasticities=elasticities, tenure=tenure)
    if start is not None and elasticities is not None:
        st = replace(st, grid=elasticity_grid(st.behaviour, elasticities))
        st = replace(st, behaviour=_widened(st.behaviour, st.grid))
    if len(st.months) != horizon_months:
        msg = f"run_scenarios: horizon_months={horizon_months} but the start given covers {len(st.months)} months; give the same horizon"
        raise ScenarioError(msg)
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
    #: each base license's chance to continue relative to its edition's, from its own history
    #: (the forecast's sBG posterior; :func:`tenure_propensity`), or None for one rate per edition
    propensity: np.ndarray | None = None

    @property
    def decision_day(self) -> int:
        """The day whose renewal prices the calibrated behaviour holds at (rebasing day)."""
        return min(int(np.min(self.initial[0])), self.start_day) if len(self.initial[0]) else self.start_day


def prepare_start(ledger: Ledger, as_of: Any, horizon_months: int = 36, *, catalog: Catalog | None = None,
            prior: Behaviour | None = None, behaviour: Behaviour | None = None,
            elasticities: Sequence[float] | None = None, tenure: bool = True) -> Start:
    """Calibrate (unless ``behaviour`` is given), read the customer base on ``as_of`` and the
    deferred balance: the :class:`Start` that :func:`run_scenarios` and the break-even search share.
    ``tenure`` starts each base license from its own history (:func:`tenure_propensity`)."""
    cat0 = catalog or Catalog.default()
    as_of_day = as_day(as_of, cat0.timezone)
    as_of_ts = pd.Timestamp(as_of_day, unit="D")
    beh, initial, observed, notes, ids = _starting_point(ledger, cat0, as_of_day, prior, behaviour)
    propensity = None
    if tenure and len(ids) and len(ledger.orders):
        propensity, note = tenure_propensity(ledger, cat0, as_of_day, ids)
        notes.append(note)
    grid = elasticity_grid(beh, elasticities)
    beh = _widened(beh, grid)
    notes.append(f"renewal-price elasticity: {beh.elasticity:g} (central, {beh.elasticity_source}), "
                 f"range {beh.elasticity_range[0]:g}–{beh.elasticity_range[1]:g}")
    empty = _coverage_notes(notes, beh, len(initial[0]), as_of_ts, horizon_months, calibrated=behaviour is None)
    start_day, months, month_ends = _months(as_of_day, horizon_months)
    released = deferred_release(ledger, cat0, as_of_day, month_ends) if len(ledger.orders) else np.zeros(horizon_months, np.int64)
    return Start(beh, cat0, initial, observed, tuple(notes), empty, as_of_ts, start_day, months, month_ends, released, grid,
                 propensity)


def simulate_grid(st: Start, scenarios: Sequence[Scenario], grid: Sequence[float | None], runs: int, seed: int,
                  executor: Executor | None = None) -> tuple[dict[tuple[str, float], np.ndarray], dict[tuple[str, float], np.ndarray]]:
    """Runs ``0 … runs-1`` of every scenario at every elasticity of ``grid`` (common random
    numbers): ``{(scenario, elasticity): [run, metric, month]}`` with the released deferred
    balance in recognised revenue, and the first-year renewal rate per run. A scenario whose
    renewal prices equal today's is simulated once for the whole grid."""
    payloads = _payloads(scenarios, st, runs, seed, grid)
    h = len(st.months)
    if st.empty:
        results = [(pl["key"], r, np.zeros((len(METRICS), h), np.int64), float("nan")) for pl in payloads for r in pl["runs"]]
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


def depends_on_elasticity(cat: Catalog, cat0: Catalog, day: int) -> bool:
    """Whether a scenario's catalog prices a renewal, on or after ``day``, other than today's catalog does on ``day``.

    Examples
    --------
    >>> cut = Scenario("cut", catalog={"prices": {"full": {"renewal": 3000}}}).catalog_for(Catalog.default(), "2026-11-01")
    >>> depends_on_elasticity(cut, Catalog.default(), 20_700), depends_on_elasticity(Catalog.default(), Catalog.default(), 20_700)
    (True, False)
    """
    today = cat0.price_table()[int(cat0.version_index(np.array([day]))[0]), :, REN]
    idx = np.unique(np.r_[cat.version_index(np.array([day])), np.flatnonzero(cat.knob_arrays()["from_day"] > day)])
    return bool((cat.price_table()[idx, :, REN] != today[None, :]).any())


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
    initial, observed, recent_arrivals, ids = _initial_state(ledger, cat0, as_of_day)
    if behaviour is None:
        # New licenses at the pace of the last year — none if the ledger had none.
        beh = beh.with_changes(arrivals_per_month=recent_arrivals, legacy_licenses=0)
    return beh, initial, observed, notes, ids


def tenure_propensity(ledger: Ledger, cat: Catalog, as_of_day: int, ids: pd.Index) -> tuple[np.ndarray, str]:
    """Each license of ``ids``' chance to continue relative to its edition's, from its own
    history: the forecast's posterior mean under the edition's sBG fit (:mod:`subs_model.retention`)
    over the edition's pooled rate — a license that renewed often is likelier to renew again.
    The what-if multiplies the calibrated ``p_continue`` by it, so the base keeps its calibrated
    level and gains the spread by tenure; 1 where no fit or no history. Also a note saying so."""
    from .forecast_state import observe

    st = observe(ledger, cat, as_of_day, "none")
    pooled = st.pooled[st.edition].astype(np.float64)
    rel = np.where(pooled > 0, st.continue_mean() / np.where(pooled > 0, pooled, 1.0), 1.0)
    factor = pd.Series(rel, index=pd.Index(st.license_ids)).groupby(level=0).first().reindex(ids).fillna(1.0).to_numpy()
    fitted = [e.value for e in Edition if st.fits.get(e.code) is not None]
    note = (f"each license continues from its own history (sBG posterior, fitted for {', '.join(fitted) or 'no edition'}; "
            f"relative chance to continue {np.quantile(factor, 0.05):.2f}–{np.quantile(factor, 0.95):.2f} "
            "for 90 % of the base)") if len(factor) else "no base license to start from"
    return factor, note


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
    """Picklable tasks, each a batch of runs of one scenario at one elasticity: its catalog,
    behaviour, seeds and the initial state (shipped once per batch, not once per run). A
    scenario that does not depend on the elasticity is run once for the grid (key
    ``(name, None)``); run ``r`` has the seed ``[seed, r]`` everywhere (common random numbers),
    so batching changes nothing in the results."""
    payloads = []
    batch = max(1, -(-runs // (2 * workers())))
    cat0, beh, day, start_day = st.catalog, st.behaviour, st.decision_day, st.start_day
    for sc in scenarios:
        if "elasticity" in sc.behaviour:
            msg = (f"scenario {sc.name!r} sets the elasticity itself; the elasticity is the what-if's axis: "
                   "give it as run_scenarios(elasticities=[...]) or in the behaviour, not in a scenario")
            raise ScenarioError(msg)
        cat = sc.catalog_for(cat0, pd.Timestamp(start_day, unit="D"))
        axis = grid if depends_on_elasticity(cat, cat0, day) else (None,)
        for e in axis:
            b = sc.behaviour_for(at_elasticity(beh, beh.elasticity if e is None else e, cat0, day))
            b_raw, c_raw = b, cat  # frozen objects: unpickled without re-validation (20 ms a task from a dict)
            for r0 in range(0, runs, batch):
                payloads.append({
                    "scenario": sc.name, "key": (sc.name, e), "runs": list(range(r0, min(r0 + batch, runs))), "seed": seed,
                    "behaviour": b_raw, "catalog": c_raw, "initial": st.initial, "propensity": st.propensity,
                    "start_day": start_day,
                    "month_ends": st.month_ends,
                })
    return payloads


def _run_payloads(payloads: list[dict[str, Any]], executor: Executor | None) -> list[Any]:
    """Every task's result, on ``executor`` or on local processes started (and stopped) here.
    Tasks on local processes use :func:`~subs_model.workers.threads_per_process` threads each
    (1 when the processes fill the CPUs, as by default)."""
    own = executor is None
    ex = executor or ProcessPoolExecutor(max_workers=workers())
    threads = _task_threads(ex)
    payloads = [dict(pl, threads=threads) for pl in payloads]
    try:
        batches = list(ex.map(run_task, payloads) if own else [f.result() for f in [ex.submit(run_task, pl) for pl in payloads]])
        return [r for b in batches for r in b]
    finally:
        if own:
            ex.shutdown()


def _task_threads(executor: Executor) -> int | None:
    """Threads a task may use on ``executor``'s worker processes: the CPUs shared among them
    (a process pool's size is its ``_max_workers``; ``concurrent.futures`` has no public name
    for it); None (the worker's own setting) for other executors, whose processes this
    machine cannot see (a dask cluster) or that run tasks in this process (threads)."""
    size = getattr(executor, "_max_workers", None) if isinstance(executor, ProcessPoolExecutor) else None
    return threads_per_process(size) if isinstance(size, int) else None


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



def sensitivity(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """See :func:`subs_model.tornado.sensitivity` (kept here, where it was first published)."""
    from .tornado import sensitivity as tornado_sensitivity

    return tornado_sensitivity(*args, **kwargs)
