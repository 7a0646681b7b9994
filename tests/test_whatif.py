"""Pricing what-if: determinism across executors, mechanical sanity on common random numbers, bands."""

from __future__ import annotations

import datetime as dt
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- the compiled measurement against the plain-numpy one it replaced ---------------------------------------
# The numpy version of a run's measurement as it was before the compiled passes
# (subs_model/_whatif_kernel.py): every month found by np.searchsorted, every step a pass of
# numpy over the accepted activations in replay order. Kept here, not in the product, as the
# reference the compiled passes must match to the integer (and the renewal rate to the bit).
def _reference_prepare(core, init_end):
    from subs_model import _join as J
    from subs_model.days import NO_DAY, NO_TIME, NS_PER_DAY, days32
    from subs_model.prepared import Prepared, issues_before, order_events, target_numbers

    n_lic = core.n_licenses
    t = core.o_times
    issue_ns = t[:, 4]
    issued = issue_ns != NO_TIME
    act_rows = np.flatnonzero(t[:, 5] != NO_TIME)
    act_perm, act_ptr = order_events(core.o_lic[act_rows], t[act_rows, 5], n_lic, None)
    act = act_rows[act_perm]
    iss_day = np.where(issued, issue_ns // NS_PER_DAY, NO_DAY)
    o_perm, o_rank, o_ptr, n_ts = J.license_order(core.o_lic, np.where(issued, issue_ns, NO_TIME), n_lic)
    n_sku, n_day32 = core.o_sku[o_perm], days32(iss_day[o_perm])
    iss_num, iss_ptr, iss_ts_p, iss_day_p = J.issue_events(o_ptr, n_sku, n_ts, n_day32)
    leg_lic = np.arange(len(init_end), dtype=np.int64)
    leg_perm, leg_ptr = order_events(leg_lic, init_end, n_lic, None)
    return Prepared(
        license_ids=None, license_dtype=None, license_edition=core.edition, o_lic=core.o_lic, o_sku=core.o_sku,
        o_target=core.o_upgrade_of, o_invoice_day=None, o_perm=o_perm, o_rank=o_rank, o_ptr=o_ptr, n_sku=n_sku,
        n_issue_day=n_day32, n_target=target_numbers(o_rank, core.o_upgrade_of), n_oid=None,
        act_num=o_rank[act], act_iss=issues_before(act_ptr, t[act, 5], iss_ptr, iss_ts_p), act_day=t[act, 5] // NS_PER_DAY,
        act_static=np.zeros(len(act), np.int64), act_code=None, act_perm=act_perm, act_ptr=act_ptr,
        iss_num=iss_num, iss_day=iss_day_p, iss_ptr=iss_ptr, leg_lic=leg_lic[leg_perm], leg_start=(init_end - 365)[leg_perm],
        leg_end=init_end[leg_perm], leg_perm=leg_perm, leg_ptr=leg_ptr, last_event_day=0,
    )


def _reference_measure(core, cat, init_end, start_day, month_ends):  # noqa: PLR0915 - the old code, kept whole
    from subs_model import _kernel as K
    from subs_model.days import NO_DAY, NO_TIME, NS_PER_DAY
    from subs_model.metrics import recognise_spread
    from subs_model.replay import scan_prepared
    from subs_model.vocab import ACCEPTED, EDITIONS, REN, SUB, UPG
    from subs_model.whatif_measure import BY_EDITION, METRICS, Metric

    p = _reference_prepare(core, init_end)
    knobs = dict(cat.knob_arrays())
    knobs["legacy_prior"] = np.ones_like(knobs["legacy_prior"])
    end_day = int(month_ends[-1])
    r = scan_prepared(p, knobs, end_day)
    n_m = len(month_ends)
    out = np.zeros((len(METRICS), n_m), np.int64)
    t = core.o_times
    paid_day = np.where(t[:, 2] != NO_TIME, t[:, 2] // NS_PER_DAY, NO_DAY)
    inv_day = np.where(t[:, 1] != NO_TIME, t[:, 1] // NS_PER_DAY, start_day)
    amount = cat.price_table()[cat.version_index(inv_day), core.edition[core.o_lic], core.o_sku]
    paid = (paid_day >= start_day) & (paid_day <= end_day)
    pm = np.searchsorted(month_ends, paid_day[paid])
    out[Metric.BOOKINGS.code] = np.bincount(pm, weights=amount[paid], minlength=n_m)[:n_m].astype(np.int64)
    ed_paid = core.edition[core.o_lic[paid]]
    for ed, metric in zip(EDITIONS, BY_EDITION[Metric.BOOKINGS], strict=True):
        m = ed_paid == ed.code
        out[metric.code] = np.bincount(pm[m], weights=amount[paid][m], minlength=n_m)[:n_m].astype(np.int64)
    acc = np.flatnonzero(r["reason"] == ACCEPTED)
    orders = p.o_perm[p.act_num[acc]]
    lic = core.o_lic[orders]
    pstart, pend, aday = r["pstart"][acc].astype(np.int64), r["pend"][acc].astype(np.int64), p.act_day[acc]
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
    s_all, e_all = np.r_[init_end - 365, pstart], np.r_[init_end, pend]
    ed_all = core.edition[np.r_[np.arange(len(init_end)), lic]]
    n_ed = len(EDITIONS)
    first_m = np.searchsorted(month_ends, s_all) * n_ed + ed_all
    stop_m = np.searchsorted(month_ends, e_all) * n_ed + ed_all
    size = (n_m + 1) * n_ed
    by_ed = np.cumsum((np.bincount(first_m, minlength=size) - np.bincount(stop_m, minlength=size)).reshape(n_m + 1, n_ed), axis=0)[:n_m]
    for ed, metric in zip(EDITIONS, BY_EDITION[Metric.ACTIVE], strict=True):
        out[metric.code] = by_ed[:, ed.code]
    out[Metric.ACTIVE.code] = by_ed.sum(axis=1)
    prev_end = np.full(len(acc), NO_DAY, np.int64)
    order = np.argsort(lic, kind="stable")
    l_s, e_s = lic[order], pend[order]
    prev = np.full(len(order), NO_DAY, np.int64)
    same = np.zeros(len(l_s), bool)
    same[1:] = l_s[1:] == l_s[:-1]
    prev[same] = e_s[np.flatnonzero(same) - 1]
    init_for = np.full(core.n_licenses, NO_DAY, np.int64)
    init_for[: len(init_end)] = init_end
    prev[~same] = init_for[l_s[~same]]
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
        (Metric.SUBSCRIPTION_CONTINUATION, in_h & (sku == SUB) & (aday < closing + 365)),
        (Metric.UPGRADE, in_h & (sku == UPG)),
    ):
        out[metric.code] = np.bincount(am[mask], minlength=n_m)[:n_m]
    last_end = np.full(core.n_licenses, NO_DAY, np.int64)
    np.maximum.at(last_end, np.r_[np.arange(len(init_end)), lic], e_all)
    lapsed = (last_end >= start_day) & (last_end <= end_day)
    out[Metric.LAPSED.code] = np.bincount(np.searchsorted(month_ends, last_end[lapsed]), minlength=n_m)[:n_m]
    all_lic = np.r_[np.arange(len(init_end)), lic]
    order = np.argsort(all_lic, kind="stable")
    all_lic, s, e = all_lic[order], s_all[order], e_all[order]
    nxt_same = np.zeros(len(all_lic), bool)
    nxt_same[:-1] = all_lic[1:] == all_lic[:-1]
    nxt_s = np.r_[s[1:], NO_DAY][: len(s)]
    ends = (e >= start_day) & (e < start_day + 365)
    renewed = nxt_same & (nxt_s - e <= 365)
    return out, (float(renewed[ends].mean()) if ends.any() else float("nan"))


def _small_run(seed: int, n: int, horizon: int, catalog_knobs: dict, arrivals: float = 15.0):
    """A small simulated base continued ``horizon`` months under a scenario's catalog."""
    from subs_model.simulate import simulate_core
    from subs_model.whatif import _months

    as_of_day = as_day(AS_OF)
    start_day, _, month_ends = _months(as_of_day, horizon)
    cat = Scenario("s", catalog=catalog_knobs).catalog_for(sm.Catalog.default(), pd.Timestamp(start_day, unit="D"))
    rng = np.random.default_rng(seed)
    init = (as_of_day + rng.integers(-14, 366, n), rng.integers(0, 2, n), rng.random(n) < 0.9)
    beh = sm.Behaviour(arrivals_per_month=arrivals, p_forget=0.2, p_late_renewal=0.5)
    core = simulate_core(beh, cat, start_day, int(month_ends[-1]), np.random.default_rng([seed, 1]), progress=False,
                         initial=init)
    return core, cat, init[0], start_day, month_ends


SHIPPED_CATALOGS = [sc.catalog for sc in load_scenarios(ROOT / "data/scenarios.yaml")]


@pytest.mark.parametrize("knobs", SHIPPED_CATALOGS, ids=[sc.name for sc in load_scenarios(ROOT / "data/scenarios.yaml")])
@pytest.mark.parametrize(("seed", "horizon"), [(1, 36), (2, 13), (3, 1)])
def test_compiled_measurement_equals_the_numpy_reference(knobs, seed, horizon) -> None:
    """Every [metric, month] count and the renewal rate of a run are those of the numpy version,
    and the engine input is the same array for array."""
    from subs_model import whatif_measure as WM

    core, cat, init_end, start_day, month_ends = _small_run(seed, 400, horizon, knobs)
    got, rate = WM._measure(core, cat, init_end, start_day, month_ends)
    want, want_rate = _reference_measure(core, cat, init_end, start_day, month_ends)
    assert np.array_equal(got, want)
    assert rate == want_rate or (np.isnan(rate) and np.isnan(want_rate))
    assert got[[WM.Metric.BOOKINGS.code, WM.Metric.ACTIVE.code, WM.Metric.EARLY_RENEWAL.code]].sum(axis=1).min() > 0
    _, seq = WM._prepare_core(core, init_end)
    assert sorted(seq) == list(range(core.n_licenses))  # the simulator's orders come license by license
    new, old = WM._prepare_by_number(core, init_end), _reference_prepare(core, init_end)
    for name in old.__slots__:
        a, b = getattr(new, name), getattr(old, name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b), name
        else:
            assert a == b or (a is None and b is None), name


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 60), horizon=st.integers(1, 40), grace=st.integers(0, 60),
       basis=st.sampled_from(["from_activation", "from_expiry", None]), arrivals=st.sampled_from([0.0, 3.0]))
def test_compiled_measurement_equals_the_numpy_reference_property(seed, n, horizon, grace, basis, arrivals) -> None:
    """On tiny bases (none at all included), any horizon, window and renewal basis."""
    from subs_model import whatif_measure as WM

    knobs = {"grace_days": grace} | ({"renewal_basis": basis} if basis else {})
    core, cat, init_end, start_day, month_ends = _small_run(seed, n, horizon, knobs, arrivals)
    got, rate = WM._measure(core, cat, init_end, start_day, month_ends)
    want, want_rate = _reference_measure(core, cat, init_end, start_day, month_ends)
    assert np.array_equal(got, want)
    assert rate == want_rate or (np.isnan(rate) and np.isnan(want_rate))


@pytest.mark.parametrize("seed", [4, 5])
def test_orders_in_any_row_order_measure_as_the_reference(seed) -> None:
    """Orders not written license by license (rows shuffled) take the general path, same counts."""
    import dataclasses

    from subs_model import whatif_measure as WM

    core, cat, init_end, start_day, month_ends = _small_run(seed, 300, 24, {"grace_days": 20})
    perm = np.random.default_rng(seed).permutation(len(core.o_lic))
    new_row = np.empty_like(perm)
    new_row[perm] = np.arange(len(perm))
    up = core.o_upgrade_of[perm]
    shuffled = dataclasses.replace(core, o_lic=core.o_lic[perm], o_sku=core.o_sku[perm], o_times=core.o_times[perm],
                                   o_upgrade_of=np.where(up >= 0, new_row[np.maximum(up, 0)], -1),
                                   o_accepted=core.o_accepted[perm])
    _, seq = WM._prepare_core(shuffled, init_end)
    assert np.array_equal(seq, np.arange(core.n_licenses))  # licenses keep their numbers
    got, rate = WM._measure(shuffled, cat, init_end, start_day, month_ends)
    want, want_rate = _reference_measure(shuffled, cat, init_end, start_day, month_ends)
    assert np.array_equal(got, want) and rate == want_rate
    assert np.array_equal(got, WM._measure(core, cat, init_end, start_day, month_ends)[0])


def test_month_table_answers_what_searchsorted_answers() -> None:
    from subs_model import _whatif_kernel as W
    from subs_model.whatif import _months

    for horizon in (1, 2, 36):
        _, _, month_ends = _months(as_day(AS_OF), horizon)
        table = W.month_table(month_ends)
        days = np.arange(month_ends[0] - 400, month_ends[-1] + 400)
        got = [W.month_of.py_func(int(d), int(month_ends[0]), table, len(month_ends)) for d in days]
        assert np.array_equal(got, np.searchsorted(month_ends, days))


def test_tasks_on_a_process_pool_share_the_cpus_out() -> None:
    """Tasks on local processes that fill the CPUs run single-threaded; other executors keep their setting."""
    from subs_model.whatif import _task_threads
    from subs_model.workers import cpus

    with ProcessPoolExecutor(cpus()) as ex:
        assert _task_threads(ex) == 1
    with ProcessPoolExecutor(1) as ex:
        assert _task_threads(ex) == cpus()
    assert _task_threads(ThreadPoolExecutor(2)) is None


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 3_000), spread=st.sampled_from([1, 5, 400, 10**9]))
def test_tally_counts_each_distinct_payment(seed, n, spread) -> None:
    """The distinct payments of a run and their counts are np.unique's (the table grows past 256)."""
    from subs_model import _whatif_kernel as W

    rng = np.random.default_rng(seed)
    A, D, RS = (rng.integers(0, spread, n) for _ in range(3))
    ua, ud, ur, count = W._tally(A, D, RS, n)
    got = sorted(zip(ua.tolist(), ud.tolist(), ur.tolist(), count.tolist()))
    keys, want = np.unique(np.c_[A, D, RS].reshape(n, 3), axis=0, return_counts=True)
    assert got == [(*k, c) for k, c in zip(keys.tolist(), want.tolist())]
