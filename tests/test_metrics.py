"""Metrics on a small written-out ledger (hand-computed values), identities, censoring, figures."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import subs_model as sm
from builders import Ev, make_ledger
from subs_model import insights as I
from subs_model import metrics as M
from subs_model import plots as P

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
AS_OF = "2026-07-31"

# Six licenses (2025 has no leap day, so a 365-day term ends on the same date a year later):
#   A full : subscription 2025-01-10 → end 2026-01-10; renewal 2026-01-05 (early, offset -5)
#   B full : subscription 2025-02-01 → end 2026-02-01; renewal 2026-02-04 (grace day 3, 3 days uncovered)
#   C basic: subscription 2025-03-01 → end 2026-03-01; renewal code bought 2026-02-20, never activated,
#            lapses 2026-03-16; upgrade activated 2026-04-02 (offset 32, 32 days uncovered)
#   D full : subscription 2024-06-01 → end 2025-06-01; nothing after (churned once 2026-06-01 has passed)
#   E full : subscription 2025-04-01 → end 2026-04-01; subscription 2026-04-05 (in grace, offset 4)
#   F full : subscription 2025-05-01 → end 2026-05-01; subscription 2026-07-01 (late, offset 61)
EVENTS = [
    Ev("subscription", "2025-01-10", license="A"), Ev("renewal", "2026-01-05", license="A"),
    Ev("subscription", "2025-02-01", license="B"), Ev("renewal", "2026-02-04", license="B"),
    Ev("subscription", "2025-03-01", license="C"), Ev("renewal", None, issued="2026-02-20T10:00:00", license="C", name="CR"),
    Ev("upgrade", "2026-04-02", license="C", upgrade_of="CR"),
    Ev("subscription", "2024-06-01", license="D"),
    Ev("subscription", "2025-04-01", license="E"), Ev("subscription", "2026-04-05", license="E"),
    Ev("subscription", "2025-05-01", license="F"), Ev("subscription", "2026-07-01", license="F"),
]
FEATURES = pd.DataFrame(
    {"feature_id": ["F1", "F2"], "name": ["new", "fix"], "released_on": ["2026-02-02", "2026-02-02"],
     "requires_subscription": [True, False]}
)


@pytest.fixture(scope="module")
def rep() -> sm.Replay:
    led = make_ledger(EVENTS, licenses={"C": "basic"}).with_features(FEATURES)
    return sm.replay(led, sm.Catalog.default(), as_of=AS_OF)


def test_expiry_outcomes_hand_computed(rep) -> None:
    """Every term end gets the outcome, offset and uncovered days worked out in the comment above."""
    out = M.expiry_outcomes(rep).set_index(["license_id", "end"])
    expect = {
        ("A", "2026-01-10"): ("early_renewal", -5, 0),
        ("B", "2026-02-01"): ("grace_renewal", 3, 3),
        ("C", "2026-03-01"): ("upgrade", 32, 32),
        ("D", "2025-06-01"): ("churned", None, None),
        ("E", "2026-04-01"): ("grace_subscription", 4, 4),
        ("F", "2026-05-01"): ("late_subscription", 61, 61),
    }
    for (lic, end), (outcome, offset, uncovered) in expect.items():
        row = out.loc[(lic, pd.Timestamp(end))]
        assert row["outcome"] == outcome, lic
        assert (pd.isna(row["offset_days"]) if offset is None else row["offset_days"] == offset), lic
        assert (pd.isna(row["uncovered_days"]) if uncovered is None else row["uncovered_days"] == uncovered), lic
    assert len(out) == 11 and (out["outcome"] == "open").sum() == 5  # each later period's end is still open
    assert out.loc[("C", pd.Timestamp("2026-03-01")), "edition"] == "basic"
    assert out.loc[("A", pd.Timestamp("2026-01-10")), "cohort"] == pd.Timestamp("2025-01-01")
    assert out.loc[("A", pd.Timestamp("2026-01-10")), "deadline"] == pd.Timestamp("2026-01-24")


def test_churn_is_censored_before_the_horizon(rep) -> None:
    """As of 2026-05-31, D's end (2025-06-01) is less than 365 days back: open, not churned."""
    out = M.expiry_outcomes(rep, as_of="2026-05-31").set_index("license_id")
    assert out.loc["D", "outcome"] == "open"
    assert M.expiry_outcomes(rep, churn_horizon_days=500).set_index("license_id").loc["D", "outcome"] == "open"


@given(st.integers(0, 900), st.integers(30, 400))
@settings(max_examples=25, deadline=None)
def test_no_churn_within_horizon_and_outcomes_partition(days_back, horizon) -> None:
    """For any as_of and horizon: no churned end is within the horizon; outcomes partition the ends."""
    led = make_ledger(EVENTS, licenses={"C": "basic"})
    as_of = pd.Timestamp("2027-12-31") - pd.Timedelta(days=days_back)
    rep = sm.replay(led, as_of=as_of.date().isoformat())
    out = M.expiry_outcomes(rep, churn_horizon_days=horizon)
    churned = out[out["outcome"] == "churned"]
    assert (churned["end"] + pd.Timedelta(days=horizon) <= as_of).all()
    assert out["outcome"].isin(M.OUTCOMES).all() and out["outcome"].notna().all()
    assert len(out) == len(rep.periods)


def test_renewal_timing_rates(rep) -> None:
    """Only D's end (2025-06-01, churned) is past the horizon on 2026-07-31: decided 1, renewed 0. The old rule
    (every end not open) counted A, B, C, E, F as renewed though their churn could not be seen yet: 5/6."""
    t = M.renewal_timing(rep, by=("edition",))
    total = t.rates[["expiries", "decided", "renewed", "in_grace"]].sum()
    assert total.to_dict() == {"expiries": 11, "decided": 1, "renewed": 0, "in_grace": 0}
    t60 = M.renewal_timing(rep, churn_horizon_days=60, by=("edition",))  # a 60-day horizon: ends up to 2026-06-01
    total60 = t60.rates[["decided", "renewed", "in_grace"]].sum().to_dict()
    assert total60 == {"decided": 6, "renewed": 4, "in_grace": 2}  # F's subscription after 61 days is churn here
    assert sorted(t.offsets["offset_days"]) == [-5, 3, 4, 32, 61]
    monthly = M.renewal_timing(rep).rates
    assert not monthly.loc[monthly["expiry_month"] == pd.Timestamp("2027-01-01"), "complete"].any()
    assert not monthly.loc[monthly["expiry_month"] == pd.Timestamp("2026-02-01"), "complete"].any()  # churn not yet countable
    assert monthly.loc[monthly["expiry_month"] == pd.Timestamp("2025-06-01"), "complete"].all()


def test_grace_usage_and_features_missed(rep) -> None:
    """B (day 3) and E (day 4) continued in grace: 7 uncovered days, 3.5 each; F1 released while B was uncovered."""
    g = M.grace_usage(rep)
    assert dict(zip(g.by_day["offset_days"], g.by_day["count"], strict=True)) == {3: 1, 4: 1}
    full = g.summary.set_index("edition").loc["full"]
    assert (full["in_grace"], full["uncovered_days"], full["uncovered_per_renewal"]) == (2, 7, 3.5)
    assert g.features.set_index("feature_id")["licenses_uncovered"].to_dict() == {"F1": 1}


def test_forgotten_renewals(rep) -> None:
    """C's renewal lapsed on 2026-03-16 without an activation and was upgraded 17 days later."""
    f = M.forgotten_renewals(rep)
    assert len(f) == 1
    row = f.iloc[0]
    assert (row["license_id"], row["kind"], row["fate"], row["days_to_upgrade"]) == ("C", "never_activated", "upgraded", 17)
    assert row["lapsed_on"] == pd.Timestamp("2026-03-16")


def test_upgrade_revenue(rep) -> None:
    """One upgrade (800 ₽ paid April 2026) converting the one lapsed renewal (March) within 17 ≤ 90 days."""
    u = M.upgrade_revenue(rep).set_index("month")
    assert u.loc[pd.Timestamp("2026-04-01"), "upgrade_payments_kop"] == 80_000
    assert u["upgrade_payments_kop"].sum() == 80_000  # the renewal paid before the lapse is not counted again
    assert u.loc[pd.Timestamp("2026-03-01"), ["lapsed_renewals", "known", "converted", "conversion_rate"]].tolist() == [1, 1, 1, 1.0]
    # With a 10-day window the upgrade (17 days after the lapse) does not count as a conversion.
    assert M.upgrade_revenue(rep, upgrade_window_days=10).set_index("month").loc[pd.Timestamp("2026-03-01"), "converted"] == 0


def test_revenue_hand_computed_and_identity(rep) -> None:
    """January 2025, subscriptions: A's 4 000 ₽ (paid 01-10, 365 days) and D's (from 2024-06-01) recognised."""
    r = M.revenue(rep)
    jan = r[(r["month"] == pd.Timestamp("2025-01-01")) & (r["sku"] == "subscription")]
    assert jan["bookings_kop"].sum() == 400_000  # A paid in January
    a_jan = 400_000 * 22 // 365  # 2025-01-10 … 01-31: 22 days → 24 109
    d_jan = 400_000 * 245 // 365 - 400_000 * 214 // 365  # D: days 215 … 245 of its term → 33 973
    assert jan["recognised_kop"].sum() == a_jan + d_jan == 58_082
    monthly = r.groupby("month")[["bookings_kop", "recognised_kop", "breakage_kop", "deferred_kop"]].sum()
    assert (monthly["bookings_kop"].cumsum()
            == monthly["recognised_kop"].cumsum() + monthly["breakage_kop"].cumsum() + monthly["deferred_kop"]).all()
    led = rep.ledger
    total = int(sm.pricing.parse_kopecks(led.orders["amount_rub"]).sum())
    assert r["bookings_kop"].sum() == total  # every order was paid by AS_OF


def test_cohort_retention(rep) -> None:
    """Cohort sizes add up to the licenses; D (2024-06) churned at 365 days: KM 1 at 6 months, 0 at 12."""
    ret = M.cohort_retention(rep, months=(6, 12))
    sizes = ret.drop_duplicates("cohort")["cohort_size"].sum()
    assert sizes == 6
    d = ret[ret["cohort"] == pd.Timestamp("2024-06-01")].set_index("months")
    assert d.loc[6, "km_retention"] == 1.0 and d.loc[12, "km_retention"] == 0.0
    assert d.loc[12, "active_share"] == 0.0
    a = ret[ret["cohort"] == pd.Timestamp("2025-01-01")].set_index("months")
    assert a.loc[12, "active_share"] == 1.0  # the renewal's period starts on 2026-01-10


def test_active_licenses_and_lead_times(rep) -> None:
    """On 2026-02-02 full licenses A, E, F are covered (B sits in grace) and basic C; code → activation is 12 h."""
    act = M.active_licenses(rep, freq="D").set_index(["day", "edition"])["active"]
    assert act.loc[(pd.Timestamp("2026-02-02"), "full")] == 3
    assert act.loc[(pd.Timestamp("2026-02-02"), "basic")] == 1
    stages, misses = M.lead_times(rep)
    c2a = stages[(stages["stage"] == "code_to_activation") & (stages["sku"] == "subscription")]
    assert c2a["median_days"].iloc[0] == pytest.approx(0.5)
    assert len(misses) == 1 and bool(misses["request_in_window"].iloc[0]) and not misses["code_after_deadline"].iloc[0]


def test_expiry_calendar_expected_cash(rep) -> None:
    """A's end 2027-01-10 is the only one in 26 weeks. The shares come from ends whose fate is fully known
    (2024-08 … 2025-07): only D, which churned → 0 ₽. The old rule read the recent full ends, 4 of 5
    continued (2/5 renewal, 2/5 subscription) → 2 880 ₽, though their churn was not yet countable."""
    cal = M.expiry_calendar(rep)
    assert cal["expiries"].sum() == 1
    assert cal["expected_cash_kop"].sum() == 0
    # A horizon of 60 days makes A, B, D, E, F mature: 2/5 renewals at 3 200 ₽, 1/5 subscription at 4 000 ₽
    # (E; F's subscription 61 days after its end counts as churn under a 60-day horizon).
    cal60 = M.expiry_calendar(rep, churn_horizon_days=60, lookback_days=800)
    assert cal60["expected_cash_kop"].sum() == 320_000 * 2 // 5 + 400_000 // 5 == 208_000


def test_competing_risks_incidence(rep) -> None:
    """Aalen–Johansen incidences are non-decreasing and sum to at most one."""
    cif = M.expiry_competing_risks(rep)
    wide = cif.pivot(index="day", columns="event", values="cumulative_incidence").fillna(0)
    assert (wide.diff().fillna(0) >= -1e-12).all().all()
    assert (wide.sum(axis=1) <= 1 + 1e-9).all()


def _empty_replay() -> sm.Replay:
    led = sm.Ledger(
        licenses=pd.DataFrame({"license_id": pd.Series(dtype="str"), "customer_id": pd.Series(dtype="str"), "edition": pd.Series(dtype="str")}),
        orders=pd.DataFrame({c: pd.Series(dtype="str") for c in sm.ledger.COLUMNS["orders"]}),
        activations=pd.DataFrame({c: pd.Series(dtype="str") for c in sm.ledger.COLUMNS["activations"]}),
    )
    return sm.replay(led, as_of="2026-01-01")


def _all_figures(rep: sm.Replay, lang: str) -> list[go.Figure]:
    out = M.expiry_outcomes(rep)
    timing = M.renewal_timing(rep, outcomes=out)
    g = M.grace_usage(rep, outcomes=out)
    stages, _ = M.lead_times(rep)
    grace = rep.catalog.versions[-1].grace_days
    return [
        P.fig_outcomes(M.outcome_counts(out, rep.as_of), lang),
        P.fig_renewal_timing(timing.offsets, grace, lang),
        P.fig_renewal_rates(M.renewal_rates(rep, by="month", outcomes=out), lang),
        P.fig_grace_usage(g.by_day, lang),
        P.fig_forgotten_renewals(I.forgotten_by_month(rep, M.forgotten_renewals(rep)), lang),
        P.fig_upgrade_revenue(M.upgrade_revenue(rep), lang),
        P.fig_revenue(M.revenue(rep), lang),
        P.fig_retention(M.cohort_retention(rep, outcomes=out, period="year"), lang, pooled=M.pooled_retention(rep, outcomes=out)),
        P.fig_competing_risks(M.expiry_competing_risks(rep, outcomes=out), grace, lang),
        P.fig_active_licenses(M.active_licenses(rep), lang),
        P.fig_lead_times(stages, lang),
        P.fig_expiry_calendar(M.expiry_calendar(rep, outcomes=out), lang),
    ]


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_figure_builds_on_the_sample(lang) -> None:
    """Each figure builds on the sample data with data in it, titled in the chosen language."""
    rep = sm.replay(sm.read_ledger(ROOT / "data/sample"), as_of="2026-10-31")
    figs = _all_figures(rep, lang)
    assert all(isinstance(f, go.Figure) and len(f.data) > 0 for f in figs)
    assert figs[0].layout.title.text == P.LABELS[lang]["outcomes_title"]


def test_every_figure_builds_on_an_empty_ledger() -> None:
    """On an empty ledger every builder returns a figure saying there is no data."""
    figs = _all_figures(_empty_replay(), "en")
    assert all(isinstance(f, go.Figure) for f in figs)
    assert all(any(a.text == "No data" for a in f.layout.annotations) for f in figs)


def test_rub_formatting() -> None:
    """Money as «3 200 ₽» (narrow no-break space), kopecks after a comma."""
    assert P.rub(320_000) == "3\u202f200 ₽"
    assert P.rub(-80_050) == "-800,50 ₽"
    with pytest.raises(ValueError, match="use 'ru' or 'en'"):
        P.fig_outcomes(pd.DataFrame(), "de")


def test_sample_identities() -> None:
    """On the sample: bookings = recognised + breakage + deferred at every month end, deferred never negative
    (lapsed renewals no longer ratchet it up); outcomes partition the ends."""
    rep = sm.replay(sm.read_ledger(ROOT / "data/sample"), as_of="2026-10-31")
    r = M.revenue(rep)
    for _, g in r.groupby(["sku", "edition"]):
        assert (g["bookings_kop"].cumsum() - g["recognised_kop"].cumsum() - g["breakage_kop"].cumsum() == g["deferred_kop"]).all()
        assert (g["deferred_kop"] >= 0).all()
    assert r["breakage_kop"].sum() > 0
    out = M.expiry_outcomes(rep)
    assert len(out) == len(rep.periods)
    assert np.isin(out["outcome"].astype(str), M.OUTCOMES).all()


def test_competing_risks_exact_with_ties_and_repeatable(rep) -> None:
    """Hand-computed Aalen–Johansen with two events on one day; every call gives the same numbers."""
    end = pd.Timestamp("2026-01-01")
    out = pd.DataFrame({
        "outcome": ["early_renewal", "early_subscription", "churned", "grace_renewal"],
        "end": [end] * 4,
        "offset_days": [-10.0, -10.0, np.nan, 5.0],
    })
    # day 50 (−10): 4 at risk, a renewal and a subscription → 1/4 each, S = 1/2;
    # day 65 (+5): 2 at risk, a renewal → renewal 1/4 + 1/2 · 1/2 = 1/2; the churned one is censored.
    cif = M.expiry_competing_risks(rep, as_of="2027-06-01", outcomes=out)
    wide = cif.pivot(index="day", columns="event", values="cumulative_incidence")
    assert wide.loc[-15, "renewal"] == 0 and wide.loc[-10, "renewal"] == 0.25
    assert wide.loc[-10, "subscription"] == 0.25 and wide.loc[0, "renewal"] == 0.25
    assert wide.loc[5, "renewal"] == 0.5 and wide.loc[300, "subscription"] == 0.25
    # The sample has many expiries followed up on the same day: random tie-breaking would show.
    sample = sm.replay(sm.read_ledger(Path(__file__).parents[1] / "data" / "sample"))
    outcomes = M.expiry_outcomes(sample)
    first = M.expiry_competing_risks(sample, outcomes=outcomes)
    pd.testing.assert_frame_equal(first, M.expiry_competing_risks(sample, outcomes=outcomes))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.booleans()), max_size=60),
    times=st.lists(st.floats(0, 60, allow_nan=False), min_size=1, max_size=6),
)
def test_km_by_group_is_lifelines_per_group(rows, times) -> None:
    """One pass over all groups gives what lifelines' KaplanMeierFitter gives each group alone
    (ties, deaths at day 0, groups dying out, times before the first and after the last event)."""
    from lifelines import KaplanMeierFitter

    g = np.array([r[0] for r in rows], np.int64)
    d = np.array([r[1] for r in rows], np.int64)
    e = np.array([r[2] for r in rows], bool)
    got = M.km_by_group(g, d, e, times, n_groups=5)
    assert got.shape == (5, len(times))
    for k in range(5):
        m = g == k
        if not m.any():
            assert (got[k] == 1.0).all()
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = KaplanMeierFitter().fit(d[m], event_observed=e[m]).survival_function_at_times(times).to_numpy()
        np.testing.assert_allclose(got[k], want, rtol=1e-12, atol=1e-15)


@settings(max_examples=200, deadline=None)
@given(
    day=st.integers(-800, 20000),
    months=st.integers(0, 60),
)
def test_month_adder_clips_to_month_end(day, months) -> None:
    """Day + k months as pandas' DateOffset does it (31 January + 1 month = 28/29 February)."""
    days = np.array([day, day + 1, day + 45], np.int64)
    got = M.MonthAdder(days)(months)
    want = (pd.to_datetime(days, unit="D") + pd.DateOffset(months=months)).to_numpy().astype("datetime64[D]").astype(np.int64)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(
    lic=st.lists(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 30)), max_size=4), min_size=1, max_size=6),
    probe=st.lists(st.integers(-5, 90), min_size=6, max_size=6),
)
def test_covered_at_reads_the_last_period_started(lic, probe) -> None:
    """A license is covered on a day when its last period starting on or before it still runs."""
    periods = [sorted((s, s + n) for s, n in p) for p in lic]
    start = np.array([s for p in periods for s, _ in p], np.int64)
    end = np.array([e for p in periods for _, e in p], np.int64)
    first = np.r_[0, np.cumsum([len(p) for p in periods])].astype(np.int64)
    days = np.array(probe[: len(periods)], np.int64)
    got = M.covered_at(first, start, end, days)
    for g, p in enumerate(periods):
        begun = [(s, e) for s, e in p if s <= days[g]]
        assert got[g] == (bool(begun) and days[g] < begun[-1][1])


def test_km_by_group_refuses_negative_durations() -> None:
    with pytest.raises(ValueError, match="durations must be whole days >= 0"):
        M.km_by_group(np.array([0, 0]), np.array([3, -1]), np.array([True, False]), [1.0])
