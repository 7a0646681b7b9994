"""Pricing what-if: determinism across executors, mechanical sanity on common random numbers, bands."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import subs_model as sm
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
