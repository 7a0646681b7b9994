"""Pricing what-if: determinism across executors, mechanical sanity on common random numbers, bands."""

from __future__ import annotations

import datetime as dt
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import subs_model as sm
from subs_model import rules
from subs_model.days import as_day
from subs_model.whatif import Scenario, ScenarioError, load_scenarios, run_scenarios, sensitivity

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-10-31"


@pytest.fixture(scope="module")
def ledger() -> sm.Ledger:
    return sm.read_ledger(ROOT / "data/sample")


@pytest.fixture(scope="module")
def behaviour(ledger) -> sm.Behaviour:
    """Calibrated once; the tests pass it in so they compare the rules, not the calibration."""
    res = run_scenarios(ledger, [Scenario("baseline")], AS_OF, horizon_months=1, runs=2, executor=ThreadPoolExecutor(1))
    return res.behaviour


def _run(ledger, behaviour, scenarios, runs=6, horizon=12, executor=None):
    return run_scenarios(ledger, scenarios, AS_OF, horizon_months=horizon, runs=runs, seed=7,
                         executor=executor or ThreadPoolExecutor(2), behaviour=behaviour)


def test_same_seed_same_result_whatever_the_executor(ledger, behaviour) -> None:
    """Threads, 1 or 2 local processes and a dask.distributed LocalCluster give identical runs."""
    sc = [Scenario("baseline"), Scenario("grace 30", catalog={"grace_days": 30})]
    ref = _run(ledger, behaviour, sc, runs=4, executor=ThreadPoolExecutor(1))
    others = [ProcessPoolExecutor(1), ProcessPoolExecutor(2)]
    for ex in others:
        with ex:
            got = _run(ledger, behaviour, sc, runs=4, executor=ex)
        for name in ref.runs:
            assert np.array_equal(got.runs[name], ref.runs[name]), type(ex).__name__
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        got = _run(ledger, behaviour, sc, runs=4, executor=client.get_executor())
    for name in ref.runs:
        assert np.array_equal(got.runs[name], ref.runs[name]), "dask"


def test_longer_grace_more_grace_renewals_fewer_upgrades(ledger, behaviour) -> None:
    """Common random numbers: a 30-day window turns upgrades into grace renewals."""
    res = _run(ledger, behaviour, [Scenario("baseline"), Scenario("grace 30", catalog={"grace_days": 30})])
    s = res.summary.set_index("scenario")
    assert s.loc["grace 30", "grace_renewal_diff_p05"] > 0
    assert s.loc["grace 30", "upgrade_diff_p95"] < 0


def test_higher_renewal_price_fewer_renewals(ledger, behaviour) -> None:
    """With a positive elasticity, a dearer renewal means fewer renewals in every run."""
    dear = Scenario("renewal 3600", catalog={"prices": {"full": {"renewal": 3600}, "basic": {"renewal": 3600}}})
    res = _run(ledger, behaviour, [Scenario("baseline"), dear])
    base, alt = res.runs["baseline"], res.runs["renewal 3600"]
    renewals = lambda a: a[:, 3:5].sum(axis=(1, 2))  # noqa: E731 - early + grace renewals per run
    assert (renewals(alt) < renewals(base)).all()
    assert behaviour.elasticity > 0


def test_baseline_reproduces_observed_renewal_rate(ledger) -> None:
    """Calibrated on the ledger, the baseline's first-year renewal rate band covers the observed rate."""
    res = run_scenarios(ledger, [Scenario("baseline")], AS_OF, horizon_months=24, runs=20, seed=3, executor=ThreadPoolExecutor(2))
    s = res.summary.iloc[0]
    assert s["renewal_rate_p05"] - 0.005 <= res.observed_renewal_rate <= s["renewal_rate_p95"] + 0.005


def test_uncertainty_of_the_mean_narrows_as_runs_grow(ledger, behaviour) -> None:
    """The confidence interval of the mean shrinks with more runs (≈ 1/√runs); the outcome range does not collapse."""
    few = _run(ledger, behaviour, [Scenario("baseline")], runs=5).summary.iloc[0]
    many = _run(ledger, behaviour, [Scenario("baseline")], runs=40).summary.iloc[0]
    assert many["bookings_mean_ci"] < few["bookings_mean_ci"]
    assert many["bookings_p95"] > many["bookings_p05"]


def test_nothing_retroactive(ledger, behaviour) -> None:
    """A scenario adds a catalog version from the day after as_of; earlier versions are untouched."""
    cat = Scenario("g", catalog={"grace_days": 30}).catalog_for(sm.Catalog.default(), "2026-11-01")
    assert [v.grace_days for v in cat.versions] == [15, 30]
    assert cat.version_at("2026-10-31").grace_days == 15
    res = _run(ledger, behaviour, [Scenario("baseline"), Scenario("g", catalog={"grace_days": 30})], runs=3, horizon=1)
    active = res.summary.set_index("scenario")["active_mean"]
    assert active["g"] >= active["baseline"] - 50  # one month in: same customer base


def test_scenario_file_and_errors(tmp_path) -> None:
    """data/scenarios.yaml loads (baseline first); bad definitions are refused with the field named."""
    scs = load_scenarios(ROOT / "data/scenarios.yaml")
    assert scs[0].name == "baseline" and scs[0].is_baseline and len(scs) >= 4
    with pytest.raises(ScenarioError, match="unknown catalog change"):
        Scenario("x", catalog={"grace": 30})
    (tmp_path / "s.yaml").write_text("scenarios:\n  - name: a\n  - name: a\n")
    with pytest.raises(ScenarioError, match="unique"):
        load_scenarios(tmp_path / "s.yaml")


def test_sensitivity_tornado_table(ledger, behaviour) -> None:
    """One knob at a time: a longer window lowers bookings (fewer upgrades), a dearer renewal changes them."""
    sens = sensitivity(ledger, AS_OF, {"grace_days": ("catalog", [7, 30])}, runs=4, horizon_months=12,
                       executor=ThreadPoolExecutor(2), behaviour=behaviour)
    g = sens.set_index("value")["bookings_diff"]
    assert g[30] < 0 < g[7]


# -- tiny, empty and short-horizon ledgers ------------------------------------------------------------------------
def _tiny(n: int) -> sm.Ledger:
    """``n`` licenses, each with one subscription activated in 2026 (n = 0: an empty ledger)."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from builders import Ev, make_ledger

    if n == 0:
        led = make_ledger([Ev("subscription", "2026-01-10")])
        return sm.Ledger(licenses=led.licenses.iloc[:0], orders=led.orders.iloc[:0], activations=led.activations.iloc[:0])
    return make_ledger([Ev("subscription", f"2026-0{1 + k}-10", license=f"L{k}") for k in range(n)],
                       licenses={f"L{k}": "full" for k in range(n)})


@pytest.mark.parametrize(("n", "horizon"), [(0, 12), (3, 2), (3, 1), (3, 12)])
def test_tiny_and_empty_ledgers_give_results_with_notes(n, horizon) -> None:
    """0 or 3 licenses, 1-, 2- or 12-month horizons: a result for every scenario and month, and notes saying why it is thin."""
    sc = [Scenario("baseline"), Scenario("grace 30", catalog={"grace_days": 30})]
    res = run_scenarios(_tiny(n), sc, AS_OF, horizon_months=horizon, runs=3, executor=ThreadPoolExecutor(1))
    assert list(res.summary["scenario"]) == ["baseline", "grace 30"]
    assert len(res.table) == 2 * len(sm.whatif.METRICS) * horizon
    assert res.runs["baseline"].shape == (3, len(sm.whatif.METRICS), horizon)
    if n == 0:
        assert (res.summary["bookings_mean"] == 0).all() and (res.summary["active_mean"] == 0).all()
        assert any("nothing to simulate" in note for note in res.notes)
    else:
        assert any(f"only {n} licenses are covered" in note for note in res.notes)
        assert res.behaviour.arrivals_per_month == pytest.approx(n / 12)  # arrivals at the ledger's pace, none invented
    assert any("under 24" in note for note in res.notes) == (horizon < 24)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"horizon_months": 0}, "run_scenarios: horizon_months=0; give a whole number of months from 1 to 240"),
    ({"horizon_months": 2.5}, "run_scenarios: horizon_months=2.5; give a whole number of months from 1 to 240"),
    ({"seed": -1}, "run_scenarios: seed=-1; give a whole number >= 0"),
])
def test_meaningless_requests_are_one_line_errors(kwargs, message) -> None:
    """A horizon under one month (or fractional), or a negative seed, is refused before any work."""
    with pytest.raises(ScenarioError) as err:
        run_scenarios(_tiny(3), [Scenario("baseline")], AS_OF, runs=2, **kwargs)
    assert str(err.value) == message


def test_whatif_cli_on_a_two_month_horizon_prints_notes(tmp_path, capsys) -> None:
    """subs-model whatif --horizon 2 on the sample: exit 0, the table, and the short-horizon note."""
    from subs_model.cli import main

    path = tmp_path / "s.yaml"
    path.write_text("scenarios:\n  - name: baseline\n  - name: grace 30\n    catalog: {grace_days: 30}\n", encoding="utf-8")
    code = main(["whatif", str(path), "--data", str(ROOT / "data/sample"), "--horizon", "2", "--runs", "2",
                 "--as-of", AS_OF, "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "note: the horizon of 2 months is under 24" in out
    assert (tmp_path / "out" / "scenarios.csv").exists()


def test_initial_state_uses_the_grace_of_the_versions_in_force_after_the_end() -> None:
    """R10: a license is carried into the forecast while its grace window is open under the versions in force
    after its end, not under the grace of the version in force on as_of (15 days until 2026-03-20, 30 after)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from builders import Ev, make_ledger

    from subs_model.whatif import _initial_state

    led = make_ledger([Ev("subscription", "2025-03-01", license="L1"), Ev("subscription", "2025-03-15", license="L2")])
    cat = sm.Catalog.default().with_version(sm.Catalog.default(grace_days=30, effective_from="2026-03-20").versions[0])
    as_of = as_day("2026-03-25")
    # L1 ends 2026-03-01: its window closed on 03-16 under the first version (the second came later),
    # although 03-01 + 30 days of the version in force on as_of would still be open. L2 ends 03-15: its
    # window reaches into the second version, which keeps it open until 04-14.
    assert rules.closing_day(dt.date(2026, 3, 1), cat) == dt.date(2026, 3, 16)
    assert rules.closing_day(dt.date(2026, 3, 15), cat) == dt.date(2026, 4, 14)
    (ends, _, _), _, _, _ = _initial_state(led, cat, as_of)
    assert ends.tolist() == [as_day("2026-03-15")]


# -- elasticity: an explicit axis of every result ---------------------------------------------------------------------
CUT = Scenario("renewal 3000", catalog={"prices": {"full": {"renewal": 3000}, "basic": {"renewal": 3000}}})


@pytest.fixture(scope="module")
def fan(ledger, behaviour):
    """Baseline, a price cut and a grace change over the default elasticity grid."""
    return run_scenarios(ledger, [Scenario("baseline"), CUT, Scenario("grace 30", catalog={"grace_days": 30})], AS_OF,
                         horizon_months=12, runs=6, seed=7, executor=ThreadPoolExecutor(2), behaviour=behaviour)


def test_every_result_states_its_elasticity(fan, tmp_path) -> None:
    """No result without its elasticity: tables, summary, the grid, the CSV files and every XLSX data sheet."""
    import openpyxl

    from subs_model.whatif_export import export_whatif

    assert fan.elasticities == (0.0, 0.5, 1.0, 1.2, 1.5, 2.0) and fan.elasticity == 1.2
    for df in (fan.table, fan.summary, fan.by_elasticity, fan.table_by_elasticity):
        assert "elasticity" in df and df["elasticity"].notna().all()
    assert set(fan.by_elasticity["elasticity"]) == set(fan.elasticities)
    assert (fan.summary["elasticity"] == 1.2).all()
    files = export_whatif(fan, tmp_path)
    for f in files:
        if f.suffix == ".csv" and f.stem != "metadata":
            header = f.read_text(encoding="utf-8-sig").splitlines()[0]
            assert "elasticity" in header, f.name
    wb = openpyxl.load_workbook(tmp_path / "scenarios.xlsx")
    for name in wb.sheetnames:
        if name in ("metadata", "glossary"):
            continue
        header = next(wb[name].iter_rows(max_row=1, values_only=True))
        assert "elasticity" in header, name


def test_range_bands_and_baseline_at_todays_price(fan) -> None:
    """Today's price: the baseline and a grace change do not move with the elasticity; a price cut does,
    more with a higher elasticity, and its band over the range holds every elasticity's Monte Carlo band."""
    runs = fan.runs_by_elasticity
    for e in fan.elasticities:
        assert np.array_equal(runs["baseline", e], runs["baseline", 1.2])
        assert np.array_equal(runs["grace 30", e], runs["grace 30", 1.2])
    cut = fan.by_elasticity[fan.by_elasticity["scenario"] == "renewal 3000"].sort_values("elasticity")
    assert np.all(np.diff(cut["bookings_diff_mean"]) > 0)
    s = fan.summary.set_index("scenario").loc["renewal 3000"]
    assert s["bookings_diff_band_low"] == cut["bookings_diff_p05"].min() < 0 < cut["bookings_diff_p95"].max() == s["bookings_diff_band_high"]
    assert s["bookings_diff_range_low"] == cut["bookings_diff_mean"].iloc[0]
    assert (s["elasticity_low"], s["elasticity_high"]) == (0.0, 2.0)


def test_recognised_revenue_releases_the_deferred_balance(ledger, fan) -> None:
    """The first forecast month recognises about what the last observed month did (not just new payments)."""
    rev = sm.metrics.revenue(sm.replay(ledger, sm.Catalog.default(), as_of=AS_OF))
    last = rev.groupby("month")["recognised_kop"].sum().iloc[-1]
    first = fan.table.query("scenario == 'baseline' and metric == 'recognised'")["mean"].iloc[0]
    assert 0.85 * last <= first <= 1.15 * last


def test_a_scenario_cannot_fix_the_elasticity_and_the_grid_is_validated(ledger, behaviour) -> None:
    """The elasticity is the axis: a scenario setting it, or a bad grid, is refused before simulating."""
    with pytest.raises(ScenarioError, match="elasticity is the what-if's axis"):
        _run(ledger, behaviour, [Scenario("baseline"), Scenario("e", behaviour={"elasticity": 2.0})], runs=2, horizon=1)
    for bad in ([], [-1.0], [float("nan")], "1,2"):
        with pytest.raises(ScenarioError, match="elasticities="):
            run_scenarios(ledger, [Scenario("baseline")], AS_OF, horizon_months=1, runs=2, behaviour=behaviour, elasticities=bad)


def test_tornado_at_the_scenarios_prices_shows_the_elasticity(ledger, behaviour) -> None:
    """At today's prices the elasticity bar is empty; at a price cut's prices it is not. Knob names in the language."""
    knobs = {"elasticity": ("elasticity", [0.5, 2.0]), "grace_days": ("catalog", [7, 30])}
    kw = {"runs": 4, "horizon_months": 12, "executor": ThreadPoolExecutor(2), "behaviour": behaviour}
    today = sensitivity(ledger, AS_OF, knobs, **kw).set_index(["knob_id", "value"])
    at_cut = sensitivity(ledger, AS_OF, knobs, at=CUT, lang="en", **kw)
    assert (today.loc["elasticity", "bookings_diff"] == 0).all()
    e = at_cut[at_cut["knob_id"] == "elasticity"].set_index("value")["bookings_diff"]
    assert e[0.5] < 0 < e[2.0]  # a cut gains more when customers answer the price more
    assert set(at_cut["knob"]) == {"renewal-price elasticity", "grace window, days"}
    assert (at_cut["scenario"] == "renewal 3000").all() and at_cut["elasticity"].notna().all()
    assert "эластичность по цене продления" in set(today.reset_index()["knob"])


def test_the_what_if_starts_each_license_from_its_own_history() -> None:
    """tenure: licenses that renewed more often get a higher relative chance to continue (sBG posterior),
    the Start carries one factor per base license and says so in its notes; tenure=False gives none."""
    from subs_model.forecast_state import observe
    from subs_model.resources import data_dir, default_catalog
    from subs_model.whatif import prepare_start, tenure_propensity

    led = sm.read_ledger(data_dir() / "sample")
    cat = sm.Catalog.from_yaml(default_catalog())
    day = as_day("2026-10-31")
    st = observe(led, cat, day, "none")
    ids = pd.Index(st.license_ids)
    factor, note = tenure_propensity(led, cat, day, ids)
    assert factor.shape == (len(ids),) and np.isfinite(factor).all() and (factor > 0).all()
    fitted = [e for e in sm.Edition if st.fits.get(e.code) is not None]
    assert fitted, "the sample fits at least one edition"
    m = st.edition == fitted[0].code
    loyal, young = m & (st.n_cont >= 3), m & (st.n_cont == 0) & (st.n_churn == 0)
    assert factor[loyal].mean() > 1 > factor[young].mean()
    assert "own history" in note
    start = prepare_start(led, "2026-10-31", 12, catalog=cat)
    assert start.propensity is not None and len(start.propensity) == len(start.initial[0])
    assert any("own history" in n for n in start.notes)
    assert prepare_start(led, "2026-10-31", 12, catalog=cat, tenure=False).propensity is None
