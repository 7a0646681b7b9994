"""Forecasts that hold up: heterogeneous behaviour, the forecast, arrivals, backtests, the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import subs_model as sm
from subs_model.backtest import backtest
from subs_model.forecast import FORECAST_METRICS, ForecastError, forecast
from subs_model.simulate import propensities

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-10-31"
CAT = sm.Catalog.default()
HETERO = {"full": 2.5, "basic": 2.0}


@pytest.fixture(scope="module")
def sample() -> sm.Ledger:
    return sm.read_ledger(ROOT / "data/sample")


# -- behaviour -------------------------------------------------------------------------------------
def test_heterogeneity_round_trips_through_yaml_and_old_files_still_load(tmp_path) -> None:
    """continue_concentration survives to_yaml/from_yaml; a file without it loads homogeneous."""
    b = sm.Behaviour(continue_concentration=HETERO)
    path = tmp_path / "b.yaml"
    b.to_yaml(path)
    assert sm.Behaviour.from_yaml(path) == b
    old = {k: v for k, v in yaml.safe_load(path.read_text()).items() if k != "continue_concentration"}
    assert sm.Behaviour.from_dict(old).continue_concentration == {}
    assert sm.Behaviour.from_dict(old).churn_beta("full") is None
    alpha, beta = b.churn_beta("full")
    assert beta / (alpha + beta) == pytest.approx(b.p_continue["full"])  # p_continue stays the mean


@pytest.mark.parametrize(("raw", "message"), [
    ({"continue_concentration": {"full": 0}}, "behaviour.continue_concentration.full: 0 is not a number above 0"),
    ({"continue_concentration": {"pro": 2}}, "behaviour.continue_concentration: unknown key(s) ['pro']"),
    ({"continue_concentration": [2]}, "behaviour.continue_concentration: [2] is not a mapping"),
    ({"continue_concentration": {"full": 2}, "p_continue": {"full": 1.0}},
     "behaviour.continue_concentration.full: a spread of propensities needs a mean strictly between 0 and 1"),
])
def test_bad_heterogeneity_is_a_one_line_error(raw, message) -> None:
    """A non-positive concentration, an unknown edition, a non-mapping or a degenerate mean is refused, naming it."""
    with pytest.raises(sm.BehaviourError) as err:
        sm.Behaviour.from_dict(raw)
    assert str(err.value).startswith(message)


def test_propensities_follow_the_beta_and_are_one_without_heterogeneity() -> None:
    """Drawn propensities have the Beta's mean and variance; without heterogeneity every factor is exactly 1."""
    ed = np.r_[np.zeros(100_000, np.int64), np.ones(100_000, np.int64)]
    assert np.array_equal(propensities(sm.Behaviour(), ed, np.uint64(5)), np.ones(len(ed)))
    b = sm.Behaviour(continue_concentration={"full": 2.5})
    q = propensities(b, ed, np.uint64(5)) * np.where(ed == 0, b.p_continue["full"], 1.0)
    p, k = b.p_continue["full"], 2.5
    assert q[:100_000].mean() == pytest.approx(p, abs=0.005)
    assert q[:100_000].var() == pytest.approx(p * (1 - p) / (k + 1), rel=0.05)
    assert np.all(q[100_000:] == 1.0)  # basic: homogeneous
    assert np.array_equal(propensities(b, ed, np.uint64(5)), propensities(b, ed, np.uint64(5)))


def test_heterogeneous_simulation_is_reproducible_and_changes_only_continuation() -> None:
    """Same seed, same ledger; a heterogeneous base keeps the same arrivals as the homogeneous one."""
    kw = {"start": "2023-01-01", "end": "2025-12-31", "seed": 4}
    b = sm.Behaviour(arrivals_per_month=30, legacy_licenses=20, continue_concentration=HETERO)
    one, two = sm.simulate(b, CAT, **kw), sm.simulate(b, CAT, **kw)
    pd.testing.assert_frame_equal(one.orders, two.orders)
    flat = sm.simulate(b.with_changes(continue_concentration={}), CAT, **kw)
    pd.testing.assert_frame_equal(one.licenses, flat.licenses)
    assert not one.orders.equals(flat.orders)


def test_simulate_calibrate_round_trip_recovers_alpha_and_beta() -> None:
    """~100 k licenses with Beta propensities: calibrate(heterogeneity=True) gets alpha and beta within 10 %.

    Lapses are always followed up and nobody forgets or returns, so that what the ledger
    shows as a continuation is the customer's intent (the model's definition)."""
    beh = sm.Behaviour(arrivals_per_month=1400, arrivals_growth=0.0, legacy_licenses=0, p_forget=0.0, p_return=0.0,
                       p_late_renewal=0.0, p_upgrade=0.5, p_subscription_after_lapse=0.5, continue_concentration=HETERO)
    led = sm.simulate(beh, CAT, start="2021-01-01", end="2026-12-31", seed=3)
    assert len(led.licenses) > 95_000
    fits = sm.calibrate_retention(led, CAT).set_index("edition")
    got = sm.calibrate(led, CAT, heterogeneity=True)
    for ed in ("full", "basic"):
        alpha, beta = beh.churn_beta(ed)
        assert fits.loc[ed, "alpha"] == pytest.approx(alpha, rel=0.10)
        assert fits.loc[ed, "beta"] == pytest.approx(beta, rel=0.10)
        assert 0 < fits.loc[ed, "alpha_se"] < 0.1 * alpha
        g_alpha, g_beta = got.churn_beta(ed)
        assert g_alpha == pytest.approx(alpha, rel=0.10) and g_beta == pytest.approx(beta, rel=0.10)


def test_covariate_shifts_round_trip_through_yaml_and_are_checked(tmp_path) -> None:
    """continue_shift survives to_yaml/from_yaml; a file without it has none; bad shifts are one-line errors."""
    b = sm.Behaviour(continue_concentration=HETERO, continue_shift={"legacy": 0.5, "cohort": {2023: -0.3}})
    path = tmp_path / "b.yaml"
    b.to_yaml(path)
    assert sm.Behaviour.from_yaml(path) == b
    assert sm.Behaviour().continue_shift == {}
    assert b.shift_of(np.array([True, False, False]), np.array([0, 2023, 2022])).tolist() == [0.5, -0.3, 0.0]
    for raw, message in [({"age": 1}, "behaviour.continue_shift: unknown key(s) ['age']"),
                         ({"legacy": 11}, "behaviour.continue_shift.legacy: 11 is not a number from -10 to 10"),
                         ({"cohort": [1]}, "behaviour.continue_shift.cohort: [1] is not a mapping"),
                         ({"cohort": {1999: 0.1}}, "behaviour.continue_shift.cohort (year 1999): 1999 is not a whole")]:
        with pytest.raises(sm.BehaviourError) as err:
            sm.Behaviour.from_dict({"continue_shift": raw})
        assert str(err.value).startswith(message)


def test_propensities_shift_the_mean_by_covariates_and_nothing_else() -> None:
    """Legacy and cohort shifts move each license's mean on the log-odds scale (with and without a spread);
    a shift that applies to nobody leaves every draw as it was."""
    from scipy.special import expit, logit

    n = 200_000
    ed = np.zeros(n, np.int64)
    legacy = np.arange(n) % 4 == 0
    arr_day = np.where(legacy, -1, np.datetime64("2023-06-01", "D").astype(np.int64))
    p = 0.8
    for conc in ({}, {"full": 2.5}):
        b = sm.Behaviour(continue_concentration=conc, continue_shift={"legacy": 0.7, "cohort": {2023: -0.4}})
        q = propensities(b, ed, np.uint64(5), legacy=legacy, arr_day=arr_day) * p
        assert q[legacy].mean() == pytest.approx(expit(logit(p) + 0.7), abs=0.004)
        assert q[~legacy].mean() == pytest.approx(expit(logit(p) - 0.4), abs=0.004)
        if not conc:
            assert np.unique(q[legacy]).size == 1  # alike customers: the shifted mean itself
        unused = b.with_changes(continue_shift={"cohort": {2030: 1.0}})
        plain = b.with_changes(continue_shift={})
        assert np.array_equal(propensities(unused, ed, np.uint64(5), legacy=legacy, arr_day=arr_day),
                              propensities(plain, ed, np.uint64(5), legacy=legacy, arr_day=arr_day))


def test_simulate_calibrate_round_trip_recovers_the_covariate_shifts() -> None:
    """~100 k licenses with legacy and cohort shifts: calibrate_shifts gets each shift within 3 standard errors
    (each under 0.05), a cohort without a shift near 0, and the concentration and mean of each edition within 10 %."""
    truth = {"legacy": 0.6, "cohort 2023": -0.4, "cohort 2024": 0.3, "cohort 2022": 0.0}
    beh = sm.Behaviour(arrivals_per_month=1400, arrivals_growth=0.0, legacy_licenses=4000, p_forget=0.0, p_return=0.0,
                       p_late_renewal=0.0, p_upgrade=0.5, p_subscription_after_lapse=0.5, continue_concentration=HETERO,
                       continue_shift={"legacy": 0.6, "cohort": {2023: -0.4, 2024: 0.3}})
    led = sm.simulate(beh, CAT, start="2021-01-01", end="2026-12-31", seed=3)
    got = sm.calibrate_shifts(led, CAT).set_index(["term", "edition"])
    for term, value in truth.items():
        est, se = got.loc[(term, ""), ["estimate", "se"]]
        assert abs(est - value) < 3 * se and se < 0.05
    for ed in ("full", "basic"):
        assert got.loc[("concentration", ed), "estimate"] == pytest.approx(HETERO[ed], rel=0.10)
        assert got.loc[("mean", ed), "estimate"] == pytest.approx(beh.p_continue[ed], rel=0.10)


# -- forecast ----------------------------------------------------------------------------------------
def test_forecast_table_is_tidy_banded_and_reproducible(sample) -> None:
    """month, metric, mean, p05, p95 for every metric and month; p05 <= mean <= p95; same seed, same table."""
    f = forecast(sample, CAT, AS_OF, months=6, runs=20, seed=3)
    assert list(f.table.columns) == ["month", "metric", "mean", "p05", "p95"]
    assert len(f.table) == 6 * len(FORECAST_METRICS)
    assert set(f.table["metric"]) == set(FORECAST_METRICS)
    assert (f.table["p05"] <= f.table["mean"] + 1e-9).all() and (f.table["mean"] <= f.table["p95"] + 1e-9).all()
    assert f.table["month"].iloc[0] == pd.Timestamp("2026-11-01")
    pd.testing.assert_frame_equal(f.table, forecast(sample, CAT, AS_OF, months=6, runs=20, seed=3).table)
    assert not f.table.equals(forecast(sample, CAT, AS_OF, months=6, runs=20, seed=4).table)
    assert "arrivals:" in f.description and "trailing 12 months" in f.description
    t = f.table.pivot(index="month", columns="metric", values="mean")
    parts = ["early_renewal", "grace_renewal", "early_subscription", "grace_subscription", "upgrade", "late_subscription"]
    assert np.allclose(t[parts].sum(axis=1), t["continued"])


def test_forecast_starts_from_the_books(sample) -> None:
    """The first month's recognised revenue is about the deferred balance released over a month, and active
    licenses on its last day are near the licenses covered on as_of."""
    f = forecast(sample, CAT, AS_OF, months=3, runs=10, arrivals="none")
    rep = sm.replay(sample, CAT, AS_OF)
    covered = ((rep.periods["start"] <= pd.Timestamp(AS_OF)) & (rep.periods["end"] > pd.Timestamp(AS_OF))).sum()
    active0 = f.metric("active")["mean"].iloc[0]
    assert 0.9 * covered < active0 < 1.1 * covered
    assert f.metric("new_licenses")["mean"].sum() == 0


@pytest.mark.parametrize(("arrivals", "expected"), [("none", 0.0), (50, 50.0), (0, 0.0)])
def test_arrivals_are_explicit(sample, arrivals, expected) -> None:
    """'none' and a number are used as given (and said so)."""
    f = forecast(sample, CAT, AS_OF, months=12, runs=10, arrivals=arrivals)
    assert f.arrivals_per_month == expected
    assert f.metric("new_licenses")["mean"].mean() == pytest.approx(expected, rel=0.1, abs=1e-9)


def _stopped_selling(sample: sm.Ledger) -> sm.Ledger:
    """The sample without the licenses first ordered in the two years before AS_OF: sales ended on 2024-10-31."""
    first = sample.orders.groupby("license_id")["requested_at"].transform("min")
    keep = set(sample.orders.loc[first < pd.Timestamp("2024-10-31", tz="Europe/Moscow"), "license_id"])
    part = lambda t: t[t["license_id"].isin(keep)].reset_index(drop=True)
    return sm.Ledger(licenses=part(sample.licenses), orders=part(sample.orders), activations=part(sample.activations),
                     legacy_periods=sample.legacy_periods)


def test_a_base_that_stopped_selling_gets_no_arrivals(sample) -> None:
    """Sales ended two years before as_of: trailing arrivals are zero, said in a note, and the base shrinks."""
    f = forecast(_stopped_selling(sample), CAT, AS_OF, months=24, runs=10)
    assert f.arrivals_per_month == 0
    assert any("no new license" in n for n in f.notes)
    active = f.metric("active")["mean"].to_numpy()
    assert active[-1] < active[0]


def test_run_scenarios_forecasts_no_arrivals_when_sales_stopped(sample) -> None:
    """Regression (issue 18): run_scenarios on a base that stopped selling simulates no arrivals and shrinks."""
    from concurrent.futures import ThreadPoolExecutor

    from subs_model.whatif import Scenario, run_scenarios

    res = run_scenarios(_stopped_selling(sample), [Scenario("baseline")], AS_OF, horizon_months=24, runs=2,
                        executor=ThreadPoolExecutor(1))
    assert res.behaviour.arrivals_per_month == 0
    active = res.table[res.table["metric"] == "active"]["mean"].to_numpy()
    assert active[-1] < 0.8 * active[0]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"months": 0}, "forecast: months=0; give a whole number of months from 1 to 240"),
    ({"runs": 1}, "forecast: runs=1; give a whole number >= 2"),
    ({"arrivals": "recent"}, "forecast: arrivals='recent'; give 'trailing', 'none' or new licenses a month"),
    ({"arrivals": -1}, "forecast: arrivals=-1; give 'trailing', 'none' or new licenses a month from 0"),
    ({"seed": -2}, "forecast: seed=-2; give a whole number >= 0"),
])
def test_bad_forecast_arguments_are_one_line_errors(sample, kwargs, message) -> None:
    """Meaningless months, runs, arrivals or seeds are refused before any work."""
    with pytest.raises(ForecastError) as err:
        forecast(sample, CAT, AS_OF, **kwargs)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(("seed", "concentration"), [(7, HETERO), (9, {"full": 1.0, "basic": 1.0})])
def test_heterogeneous_base_forecast_holds_within_3_percent_for_24_months(seed, concentration) -> None:
    """The goal: on heterogeneous customers, active licenses within 3 % of the truth every month for 24 months,
    the 90 % band covering it in >= 75 % of months; the pooled baseline misses by more at the end. Seed 9 (very
    different customers) is the ledger the pure sBG covered in 63 % of months (its retention of long-standing
    customers too high): the leak model's share of the runs fixes that."""
    beh = sm.Behaviour(arrivals_growth=0.0, seasonality=(1.0,) * 12, continue_concentration=concentration)
    led = sm.simulate(beh, CAT, start="2021-01-01", end="2028-12-31", seed=seed)
    bt = backtest(led, CAT, ["2026-10-31"], months=24, as_of="2028-10-31", runs=100)
    t = bt.table[bt.table["metric"] == "active"]
    sbg, pooled = t[t["model"] == "sbg"], t[t["model"] == "pooled"]
    assert len(sbg) == 24
    assert sbg["ape"].max() < 0.03
    assert sbg["covered"].mean() >= 0.75
    assert pooled["ape"].iloc[-1] > 2 * sbg["ape"].iloc[-1]


# -- backtest ----------------------------------------------------------------------------------------
def _known_by(led: sm.Ledger, cutoff: str) -> sm.Ledger:
    """The ledger as it stood at the end of ``cutoff`` (reference truncation, row by row in pandas)."""
    end = pd.Timestamp(cutoff, tz="Europe/Moscow") + pd.Timedelta(days=1)
    o = led.orders[led.orders["requested_at"] < end].copy()
    for c in ("invoiced_at", "paid_at", "ticket_at", "code_issued_at"):
        late = o[c] >= end
        o.loc[late, c] = pd.NaT
        if c == "paid_at":
            o.loc[late, ["act_number", "amount_rub"]] = None
        if c == "code_issued_at":
            o.loc[late, "code"] = None
    a = led.activations[led.activations["activated_at"] < end]
    return sm.Ledger(licenses=led.licenses, orders=o.reset_index(drop=True), activations=a.reset_index(drop=True),
                     legacy_periods=led.legacy_periods)


def test_a_forecast_from_a_cutoff_sees_only_what_was_known_then(sample) -> None:
    """Forecasting from 2025-10-31 on the whole ledger equals forecasting on the ledger cut at that day."""
    full = forecast(sample, CAT, "2025-10-31", months=6, runs=10)
    cut = forecast(_known_by(sample, "2025-10-31"), CAT, "2025-10-31", months=6, runs=10)
    pd.testing.assert_frame_equal(full.table, cut.table)


def test_backtest_compares_with_actuals_and_the_baseline(sample) -> None:
    """Per cutoff, model, month and metric: forecast, actual, error, covered; a summary per model and metric."""
    bt = backtest(sample, CAT, ["2025-04-30", "2025-10-31"], months=12, as_of=AS_OF, runs=20)
    assert {"cutoff", "model", "month", "metric", "forecast", "p05", "p95", "actual", "error", "ape", "covered"} <= set(bt.table)
    assert set(bt.table["model"]) == {"sbg", "pooled"}
    assert np.allclose(bt.table["error"], bt.table["forecast"] - bt.table["actual"])
    # months after as_of are not compared: 12 from 2025-04-30, 12 from 2025-10-31 (to 2026-10)
    n = bt.table[(bt.table["metric"] == "active") & (bt.table["model"] == "sbg")].groupby("cutoff").size()
    assert list(n) == [12, 12]
    assert set(bt.summary.columns) == {"metric", "model", "mape", "coverage", "months"}
    assert "pooled baseline" in bt.description


def test_actual_active_licenses_match_the_metrics_module(sample) -> None:
    """The backtest's actual active count on each month's last day agrees with metrics.active_licenses."""
    from subs_model.backtest import actuals
    from subs_model.metrics import active_licenses

    rep = sm.replay(sample, CAT, AS_OF)
    act = actuals(rep, pd.Timestamp("2025-11-01").value // 86_400_000_000_000, 11)
    mine = act[act["metric"] == "active"]["actual"].to_numpy()
    ref = active_licenses(rep, AS_OF, freq="ME").groupby("day")["active"].sum()
    ref = ref[(ref.index >= "2025-11-01") & (ref.index <= "2026-09-30")].to_numpy()
    assert np.array_equal(mine, ref)


def test_backtest_refuses_a_cutoff_at_or_after_the_actuals(sample) -> None:
    """A cutoff with nothing after it to compare is an error naming it."""
    with pytest.raises(ForecastError, match="cutoff '2026-10-31' is not before"):
        backtest(sample, CAT, ["2026-10-31"], months=3, as_of=AS_OF)


# -- figures and the command line ----------------------------------------------------------------------
def test_figure_builders_return_figures_with_bands_and_escape_nothing_into_markup(sample) -> None:
    """Outlook, backtest and retention figures are plotly Figures with the band traces; empty input says 'no data'."""
    import plotly.graph_objects as go

    from subs_model.forecast import retention_curves
    from subs_model.forecast_plots import fig_backtest, fig_outlook, fig_retention_by_tenure

    f = forecast(sample, CAT, AS_OF, months=6, runs=10)
    fig = fig_outlook(f.table, "active", "en")
    assert isinstance(fig, go.Figure) and len(fig.data) == 3  # band edge, band, mean
    assert fig.data[2].y[0] == pytest.approx(f.metric("active")["mean"].iloc[0])
    assert fig_outlook(f.table, "bookings_rub").layout.yaxis.ticksuffix == " ₽"
    curves = retention_curves(f)
    full = curves[(curves["edition"] == "full") & (curves["model"] == "sbg")]["retention"].to_numpy()
    assert np.all(np.diff(full) > 0)  # retention rises with tenure under the fitted mixture
    assert isinstance(fig_retention_by_tenure(curves, "ru"), go.Figure)
    bt = backtest(sample, CAT, ["2025-10-31"], months=3, as_of=AS_OF, runs=5)
    assert any(tr.name == "actual" for tr in fig_backtest(bt.table, "active", "en").data)
    empty = fig_outlook(f.table.iloc[:0], "active", "en")
    assert empty.layout.annotations[0].text == "No data"
    with pytest.raises(ValueError, match="lang 'de' is not supported"):
        fig_outlook(f.table, "active", "de")


def test_cli_forecast_and_backtest_write_formula_safe_tables(tmp_path, capsys) -> None:
    """subs-model forecast / backtest: exit 0, the description printed, CSV and XLSX written; bad arrivals exit 2."""
    from subs_model.cli import main

    data = str(ROOT / "data/sample")
    assert main(["forecast", "--data", data, "--as-of", AS_OF, "--months", "3", "--runs", "5", "--arrivals", "none",
                 "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "arrivals: 0.0 new licenses a month (none: the base only)" in out
    t = pd.read_csv(tmp_path / "f" / "forecast.csv")
    assert list(t.columns) == ["month", "metric", "mean", "p05", "p95"] and (tmp_path / "f" / "forecast.xlsx").exists()
    assert (tmp_path / "f" / "retention.csv").exists()
    assert main(["backtest", "2026-04-30", "--data", data, "--as-of", AS_OF, "--months", "3", "--runs", "5",
                 "--out", str(tmp_path / "b")]) == 0
    assert "pooled baseline" in capsys.readouterr().out
    assert set(pd.read_csv(tmp_path / "b" / "backtest_summary.csv")["model"]) == {"sbg", "pooled"}
    assert main(["forecast", "--data", data, "--months", "0", "--out", str(tmp_path / "x")]) == 2
    assert "forecast: months=0" in capsys.readouterr().err


@pytest.mark.parametrize("n", [0, 3])
def test_tiny_and_empty_ledgers_forecast_with_notes(n) -> None:
    """No license, or three without any decided history: a full table, zeros or the base running out, and notes why."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from builders import Ev, make_ledger

    led = make_ledger([Ev("subscription", f"2026-0{1 + k}-10", license=f"L{k}") for k in range(max(n, 1))],
                      licenses={f"L{k}": "full" for k in range(max(n, 1))})
    if n == 0:
        led = sm.Ledger(licenses=led.licenses.iloc[:0], orders=led.orders.iloc[:0], activations=led.activations.iloc[:0])
    f = forecast(led, CAT, AS_OF, months=3, runs=3)
    assert len(f.table) == 3 * len(FORECAST_METRICS)
    assert any("no decided continuation" in note for note in f.notes)
    if n == 0:
        assert (f.table["mean"] == 0).all() and f.base_licenses == 0
    else:
        assert f.base_licenses == 3 and f.metric("continued")["mean"].sum() == 0


def test_simulator_takes_each_initial_license_propensity() -> None:
    """simulate_core(initial=…, propensity=…): factors of 1 change nothing; 0 stops the base continuing; a wrong
    length is an error. (The hook run_scenarios uses to start each license from its own tenure.)"""
    from subs_model.errors import SimulationError
    from subs_model.forecast_state import observe
    from subs_model.simulate import simulate_core

    n = 200
    init = (np.full(n, 20_500, np.int64), np.zeros(n, np.int64), np.ones(n, bool))  # ends 2026-02-16
    beh = sm.Behaviour(arrivals_per_month=0, legacy_licenses=0, p_return=0.0)
    kw = {"start": "2026-01-01", "end": "2027-06-30", "initial": init}
    plain = simulate_core(beh, CAT, rng=3, **kw)
    ones = simulate_core(beh, CAT, rng=3, propensity=np.ones(n), **kw)
    assert np.array_equal(plain.o_times, ones.o_times) and np.array_equal(plain.o_sku, ones.o_sku)
    none = simulate_core(beh, CAT, rng=3, propensity=np.zeros(n), **kw)
    assert len(none.o_lic) == 0 < len(plain.o_lic)
    with pytest.raises(SimulationError, match="one finite factor >= 0 per initial license"):
        simulate_core(beh, CAT, rng=3, propensity=np.ones(n + 1), **kw)
    st = observe(sm.read_ledger(ROOT / "data/sample"), CAT, pd.Timestamp(AS_OF).value // 86_400_000_000_000, "none")
    q = st.continue_mean()
    assert q.shape == st.E.shape == st.license_ids.shape and np.all((q > 0) & (q < 1))


def test_each_license_continues_under_both_structures_weighted_by_the_evidence() -> None:
    """The state keeps the pure sBG and the sBG with a leak per edition with the leak model's Akaike weight;
    each license's chance to continue is the weighted mean of the two posteriors; the table shows both."""
    from subs_model.forecast_state import observe
    from subs_model.retention import posterior_continue
    from subs_model.vocab import Edition

    beh = sm.Behaviour(arrivals_growth=0.0, seasonality=(1.0,) * 12, continue_concentration={"full": 1.0, "basic": 1.0})
    led = sm.simulate(beh, CAT, start="2021-01-01", end="2026-10-31", seed=9)
    st = observe(led, CAT, pd.Timestamp(AS_OF).value // 86_400_000_000_000, "none")
    full = Edition.FULL.code
    f, g, w = st.fits[full], st.leaky[full], st.leak_weight[full]
    assert g is not None and g.leak_fitted and 0 < g.leak < 0.5 and 0.27 <= w < 1
    m = st.edition == full
    pure = posterior_continue(f.alpha, f.beta, 0.0, st.n_cont[m], st.n_churn[m])
    leaky = posterior_continue(g.alpha, g.beta, g.leak, st.n_cont[m], st.n_churn[m])
    assert np.allclose(st.continue_mean()[m], (1 - w) * pure + w * leaky)
    table = st.retention_table().set_index("edition")
    assert table.loc["full", "leak"] == pytest.approx(g.leak) and table.loc["full", "leak_weight"] == pytest.approx(w)


_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


@pytest.fixture(scope="module")
def page_texts():
    """Report 06's summary and backtest bullets in each language, on the sample (few runs)."""
    from subs_model.forecast_report import forecast_page
    from subs_model.resources import data_dir

    pages = {lang: forecast_page(data=str(data_dir() / "sample"), months=6, runs=20, backtest_months=6, lang=lang)
             for lang in ("ru", "en")}
    return pages


def test_forecast_page_texts_in_the_report_language(page_texts) -> None:
    """ru: no English words (but the MAPE and sBG names), days as 31.10.2026, plurals agree; en: no Cyrillic, no ISO days."""
    from subs_model import notes as N

    ru, en = (page_texts[lang] for lang in ("ru", "en"))
    ru_text, en_text = ru.summary + ru.backtest_summary, en.summary + en.backtest_summary
    day = ru.forecast.as_of
    assert N.date(day, "ru").replace(".", "\\.") in ru_text and N.date(day, "en") in en_text
    assert day.date().isoformat() not in ru_text + en_text
    words = re.sub(r"\b(MAPE|sBG)\b", "", ru_text.replace("\\", ""))
    assert not re.search(r"[A-Za-z]{2,}", words), re.findall(r"[A-Za-z]{2,}\w*", words)[:5]
    assert not _CYRILLIC.search(en_text)
    assert N.count(len(ru.forecast.months), "month", "ru") in ru_text  # «6 месяцев»
    assert N.count(int(ru.forecast.base_licenses), "license", "ru") in ru_text
    # The API keeps English, and the page's English lines are those of the API.
    assert en.forecast.description == en.forecast.description_in("en") and not _CYRILLIC.search(en.forecast.description)
    assert en.backtest.description == en.backtest.description_in("en") and "pooled baseline" in en.backtest.description
    assert ru.forecast.description == en.forecast.description  # the Forecast object does not depend on the page
    with pytest.raises(ValueError, match="lang 'de'"):
        ru.forecast.description_in("de")


def test_russian_counts_agree_with_their_number() -> None:
    """The Russian lines pick the plural form of each count: 1 прогон / 2 прогона / 5 прогонов, 1 дата / 2 даты."""
    from types import SimpleNamespace

    import numpy as np

    from subs_model.forecast_text import backtest_lines, forecast_lines

    for runs, word in ((1, "1 прогон"), (2, "2 прогона"), (5, "5 прогонов"), (21, "21 прогон")):
        fc = SimpleNamespace(as_of=pd.Timestamp("2026-10-31"), months=range(3), runs=np.zeros((runs, 1, 3)), base_licenses=21,
                             arrivals_per_month=2.5, arrivals_rule="none: the base only", model="pooled", notes=())
        first = forecast_lines(fc, "ru")[0]
        assert f"{word};" in first and "3 месяца" in first and "21 лицензия" in first and "31.10.2026" in first
    summary = pd.DataFrame({"metric": ["active", "active"], "model": ["sbg", "pooled"], "mape": [0.1, 0.2],
                            "coverage": [0.5, 0.5], "months": [1, 1]})
    lines = backtest_lines(summary, pd.Timestamp("2026-10-31"), ["2025-10-31"], 12, "ru")
    assert "1 дата в прошлом" in lines[0] and "до 12 месяцев" in lines[0]
    assert lines[1].startswith("активные лицензии: MAPE 10,0") and "лучше" in lines[1] and lines[1].endswith("1 месяц")
