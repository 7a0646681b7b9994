"""Maturity rule of every rate (rules §6): hand-derived ledgers where recent ends bias the old definitions,
and Hypothesis properties that adding undecided ends never changes a rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import subs_model as sm
from builders import Ev, make_ledger
from subs_model import metrics as M
from subs_model.errors import MetricsError
from subs_model.vocab import Outcome

AS_OF = "2026-03-31"
AS_OF_TS = pd.Timestamp(AS_OF)
# Grace 15 days: deadline = end + 14; 365-day terms (2024 has a leap day). As of 2026-03-31 (horizon 365 days):
#   L1: subscription 2024-01-10 → end 2025-01-09, nothing after            → churned (known at the horizon)
#   L2: subscription 2024-02-01 → end 2025-01-31, renewal 2025-01-25 (early) → end 2026-01-31, nothing yet:
#       its deadline 2026-02-14 has passed (not renewed on time), its churn is not known yet (open)
#   L3: subscription 2025-01-01 → end 2026-01-01, renewal 2026-01-05 (grace day 4)
#   L4: subscription 2025-02-01 → end 2026-02-01, nothing (deadline passed: not renewed on time; open)
#   L5: subscription 2025-03-01 → end 2026-03-01, renewal 2026-02-20 (early)
#   L6: subscription 2025-03-25 → end 2026-03-25, nothing yet; deadline 2026-04-08 is after as_of
# Ends on or before as_of: 7. Known at the deadline: all but L6 → 6, renewed by then: L2a, L3, L5 → on time 3/6.
# Known at the horizon (end ≤ 2025-03-31): L1, L2a → continued 1/2. The old rate (decided = not open) was 3/4.
EVENTS = [
    Ev("subscription", "2024-01-10", license="L1"),
    Ev("subscription", "2024-02-01", license="L2"), Ev("renewal", "2025-01-25", license="L2"),
    Ev("subscription", "2025-01-01", license="L3"), Ev("renewal", "2026-01-05", license="L3"),
    Ev("subscription", "2025-02-01", license="L4"),
    Ev("subscription", "2025-03-01", license="L5"), Ev("renewal", "2026-02-20", license="L5"),
    Ev("subscription", "2025-03-25", license="L6"),
]


@pytest.fixture(scope="module")
def rep() -> sm.Replay:
    return sm.replay(make_ledger(EVENTS, licenses={"L4": "basic", "L5": "basic"}), sm.Catalog.default(), as_of=AS_OF)


def test_renewal_rates_hand_derived_where_the_old_rate_is_biased(rep) -> None:
    """On time 3/6 and continued 1/2, where the old 'renewal rate' (not open) read 3/4."""
    r = M.renewal_rates(rep).iloc[0]
    assert (r["ends"], r["known_at_deadline"], r["renewed_by_deadline"]) == (7, 6, 3)
    assert r["on_time_rate"] == pytest.approx(3 / 6)
    assert r["in_grace"] == 1 and r["grace_share"] == pytest.approx(1 / 6)
    assert (r["known_at_horizon"], r["continued"], r["continued_rate"]) == (2, 1, 0.5)
    assert r["ends_from"] == pd.Timestamp("2025-01-09") and r["ends_to"] == pd.Timestamp("2026-03-25")
    assert r["deadline_known_to"] == pd.Timestamp("2026-03-01") and r["horizon_known_to"] == pd.Timestamp("2025-01-31")
    out = M.expiry_outcomes(rep)
    decided = out[out["outcome"].ne("open") & (out["end"] <= AS_OF_TS)]
    assert decided["outcome"].isin(M.RENEWED).mean() == pytest.approx(3 / 4)  # the old, biased definition


def test_renewal_rates_by_edition_month_quarter_cohort(rep) -> None:
    """Groups partition the ends; the basic edition (L4, L5) is on time 1/2; months carry their own counts."""
    by_ed = M.renewal_rates(rep, by="edition").set_index("edition")
    assert by_ed["ends"].sum() == 7 and by_ed.loc["basic", "on_time_rate"] == 0.5
    assert by_ed.loc["basic", "known_at_horizon"] == 0 and np.isnan(by_ed.loc["basic", "continued_rate"])
    months = M.renewal_rates(rep, by="month").set_index("month")
    jan = months.loc[pd.Timestamp("2026-01-01")]  # L3 renewed in grace, L2b (2026-01-31) did not renew
    assert (jan["ends"], jan["known_at_deadline"], jan["on_time_rate"], jan["grace_share"]) == (2, 2, 0.5, 0.5)
    feb = months.loc[pd.Timestamp("2026-02-01")]  # L4 ended on 2026-02-01 and did not renew
    assert (feb["ends"], feb["known_at_deadline"], feb["on_time_rate"]) == (1, 1, 0.0)
    mar = months.loc[pd.Timestamp("2026-03-01")]  # L5 renewed early, L6's deadline not passed
    assert (mar["ends"], mar["known_at_deadline"], mar["on_time_rate"]) == (2, 1, 1.0)
    assert M.renewal_rates(rep, by="quarter")["ends"].sum() == 7
    assert M.renewal_rates(rep, by="cohort")["ends"].sum() == 7
    only = M.renewal_rates(rep, edition="full", start="2026-01-01").iloc[0]
    assert (only["ends"], only["known_at_deadline"], only["renewed_by_deadline"]) == (3, 2, 1)  # L3, L2b; L6 not known
    with pytest.raises(MetricsError, match="by='week'"):
        M.renewal_rates(rep, by="week")
    with pytest.raises(MetricsError, match="'pro'"):
        M.renewal_rates(rep, edition="pro")


def test_period_over_period_same_days_a_year_before(rep) -> None:
    """On time: 2026-01-01 … 2026-03-01 (L3, L2b, L4, L5: 2/4) against 2025-01-01 … 2025-03-01 (L1, L2a: 1/2)."""
    p = M.period_over_period(rep).set_index("rate")
    on = p.loc["on_time_rate"]
    assert (on["from"], on["to"]) == (pd.Timestamp("2026-01-01"), pd.Timestamp("2026-03-01"))
    assert (on["count"], on["known"], on["prior_count"], on["prior_known"]) == (2, 4, 1, 2)
    assert on["value"] == 0.5 and on["prior_value"] == 0.5 and on["change"] == 0.0
    cont = p.loc["continued_rate"]  # the latest end known at the horizon is L2a's, 2025-01-31
    assert (cont["from"], cont["to"], cont["known"], cont["count"]) == (pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-31"), 2, 1)
    assert cont["prior_known"] == 0 and np.isnan(cont["prior_value"])


# -- upgrade conversion ----------------------------------------------------------------------------------------
# X: renewal code issued 2026-02-10 for the end 2026-02-15, never activated: lapses 2026-03-02; upgraded 2026-03-07.
# Y: renewal code issued 2026-06-01 for the end 2026-06-05, never activated: lapses 2026-06-20; nothing yet.
# As of 2026-07-31, window 90 days: X known (2026-05-31 ≤ as_of) and converted; Y not known (2026-09-18).
# The old rate (converted / fate decided) read 1/1 as well, but with Z (below) it counts a lapse that is
# still open against nothing: Z lapsed 2025-06-20, upgraded after 200 days — converted under the old rule,
# not within the 90-day window.
UP_EVENTS = [
    Ev("subscription", "2025-02-15", license="X"), Ev("renewal", None, issued="2026-02-10T10:00:00", license="X", name="XR"),
    Ev("upgrade", "2026-03-07", license="X", upgrade_of="XR"),
    Ev("subscription", "2025-06-05", license="Y"), Ev("renewal", None, issued="2026-06-01T10:00:00", license="Y", name="YR"),
    Ev("subscription", "2024-06-05", license="Z"), Ev("renewal", None, issued="2025-06-01T10:00:00", license="Z", name="ZR"),
    Ev("upgrade", "2026-01-06", license="Z", upgrade_of="ZR"),
]


@pytest.fixture(scope="module")
def up_rep() -> sm.Replay:
    return sm.replay(make_ledger(UP_EVENTS), sm.Catalog.default(), as_of="2026-07-31")


def test_upgrade_conversion_within_a_fixed_window(up_rep) -> None:
    """Lapses known after 90 days: X converted (5 days), Z not within 90 days (200), Y not yet known → 1/2."""
    fr = M.forgotten_renewals(up_rep).set_index("license_id")
    assert fr.loc["X", "days_to_upgrade"] == 5 and fr.loc["Z", "days_to_upgrade"] == 200
    c = M.upgrade_conversion(up_rep).iloc[0]
    assert (c["lapsed"], c["known"], c["converted"]) == (3, 2, 1) and c["conversion_rate"] == 0.5
    assert c["known_to"] == pd.Timestamp("2026-03-02")
    assert M.upgrade_conversion(up_rep, upgrade_window_days=365).iloc[0]["known"] == 1  # only Z's lapse + 365 ≤ as_of
    q = M.upgrade_conversion(up_rep, by="quarter").set_index("quarter")
    assert q.loc[pd.Timestamp("2026-04-01"), "known"] == 0 and np.isnan(q.loc[pd.Timestamp("2026-04-01"), "conversion_rate"])


# -- retention ------------------------------------------------------------------------------------------------
# Old cohort 2024-01: P churned at its end (365 days), Q renewed. Young cohort 2025-10: R, S followed 5 months.
# Pooled Kaplan–Meier at 12 months: R and S left the risk set before day 365 → 1/2. The old headline (average of
# per-cohort KM weighted by size) counted the young cohort as 100 %: (2 · 0.5 + 2 · 1) / 4 = 0.75.
RET_EVENTS = [
    Ev("subscription", "2024-01-10", license="P"),
    Ev("subscription", "2024-01-20", license="Q"), Ev("renewal", "2025-01-15", license="Q"),
    Ev("subscription", "2025-10-01", license="R"), Ev("subscription", "2025-10-20", license="S"),
]


def test_pooled_retention_is_not_an_average_of_cohorts() -> None:
    """Pooled KM 1/2 at 12 months; the young cohort's curve stops at its follow-up (NaN at 12 months)."""
    rep = sm.replay(make_ledger(RET_EVENTS), sm.Catalog.default(), as_of="2026-03-31")
    pooled = M.pooled_retention(rep).set_index("months")
    assert pooled.loc[11, "retention"] == 1.0 and pooled.loc[12, "retention"] == 0.5
    assert pooled.loc[12, "followed"] == 2 and pooled.loc[12, "churned"] == 1 and pooled.loc[0, "licenses"] == 4
    assert pooled.index.max() == 26  # the oldest license has 26 whole months of follow-up
    ret = M.cohort_retention(rep, months=(3, 12))
    young = ret[ret["cohort"] == pd.Timestamp("2025-10-01")].set_index("months")
    assert young.loc[3, "km_retention"] == 1.0 and np.isnan(young.loc[12, "km_retention"])
    old_headline = ret.assign(w=ret["cohort_size"] * ret["km_retention"].fillna(1.0)).groupby("months")[["w", "cohort_size"]].sum()
    assert (old_headline["w"] / old_headline["cohort_size"]).loc[12] == 0.75  # what the old note printed
    assert M.pooled_retention(rep, edition="basic").empty


# -- maturity as a property -----------------------------------------------------------------------------------
DECIDED = st.sampled_from([o.value for o in Outcome if o is not Outcome.OPEN])


def _frame(rows: list[tuple[int, str]]) -> pd.DataFrame:
    """Outcomes rows from (days before as_of of the end, outcome); grace 15 days."""
    end = AS_OF_TS - pd.to_timedelta([d for d, _ in rows], unit="D")
    return pd.DataFrame({
        "end": end, "deadline": end + pd.Timedelta(days=14),
        "outcome": pd.Categorical([o for _, o in rows], categories=list(M.OUTCOMES)),
        "edition": pd.Categorical(["full"] * len(rows), categories=["full", "basic"]),
        "cohort": end.to_period("M").start_time,
    })


@settings(max_examples=60, deadline=None)
@given(
    decided=st.lists(st.tuples(st.integers(365, 900), DECIDED), min_size=1, max_size=12),
    recent=st.lists(st.tuples(st.integers(15, 364), st.sampled_from([*M.RENEWED, Outcome.OPEN.value])), max_size=12),
    fresh=st.lists(st.tuples(st.integers(0, 14), st.sampled_from([*M.RENEWALS, Outcome.OPEN.value])), max_size=12),
)
def test_adding_undecided_ends_never_changes_a_rate(rep, decided, recent, fresh) -> None:
    """Ends past the deadline but not the horizon leave continued_rate alone; ends before their deadline
    leave every deadline rate alone (outcomes as such ends can have them)."""
    base = M.renewal_rates(rep, outcomes=_frame(decided)).iloc[0]
    with_recent = M.renewal_rates(rep, outcomes=_frame(decided + recent)).iloc[0]
    assert with_recent["continued_rate"] == base["continued_rate"]
    assert with_recent["known_at_horizon"] == base["known_at_horizon"]
    with_fresh = M.renewal_rates(rep, outcomes=_frame(decided + recent + fresh)).iloc[0]
    for rate in ("on_time_rate", "on_time_continuation_rate", "grace_share", "continued_rate"):
        assert with_fresh[rate] == with_recent[rate], rate


@settings(max_examples=25, deadline=None)
@given(later=st.integers(1, 400))
def test_decided_on_time_outcomes_do_not_change_as_time_passes(later) -> None:
    """Ends whose deadline passed by as_of keep their on-time counts at any later as_of."""
    rep = sm.replay(make_ledger(EVENTS), sm.Catalog.default(), as_of="2027-06-30")
    t1 = AS_OF_TS
    t2 = t1 + pd.Timedelta(days=later)
    cut = t1 - pd.Timedelta(days=15)  # every end up to here has its deadline before t1
    a = M.renewal_rates(rep, as_of=t1, end=cut).iloc[0]
    b = M.renewal_rates(rep, as_of=t2, end=cut).iloc[0]
    assert (a["known_at_deadline"], a["renewed_by_deadline"]) == (b["known_at_deadline"], b["renewed_by_deadline"])
    assert a["ends"] == a["known_at_deadline"]


def _lapses(rows: list[tuple[int, int | None]]) -> pd.DataFrame:
    """Lapsed renewal codes from (days before as_of of the lapse, days to the upgrade or None)."""
    lapse = AS_OF_TS - pd.to_timedelta([d for d, _ in rows], unit="D")
    up = pd.array([u for _, u in rows], dtype="Int64")
    return pd.DataFrame({"lapsed_on": lapse, "days_to_upgrade": up,
                         "edition": pd.Categorical(["full"] * len(rows), categories=["full", "basic"])})


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(1, 200),
    known=st.lists(st.tuples(st.integers(200, 900), st.one_of(st.none(), st.integers(0, 199))), min_size=1, max_size=12),
    pending=st.lists(st.tuples(st.integers(0, 199), st.one_of(st.none(), st.integers(0, 199))), max_size=12),
)
def test_adding_undecided_lapses_never_changes_the_conversion_rate(rep, window, known, pending) -> None:
    """Lapses whose window has not closed (lapse + window > as_of) change neither the rate nor its denominator,
    whatever happened to them so far."""
    pending = [(d, u if u is None or u <= d else d) for d, u in pending if d < window]  # nothing after as_of
    base = M.upgrade_conversion(rep, upgrade_window_days=window, forgotten=(None, _lapses(known))).iloc[0]
    more = M.upgrade_conversion(rep, upgrade_window_days=window, forgotten=(None, _lapses(known + pending))).iloc[0]
    assert (more["known"], more["converted"]) == (base["known"], base["converted"])
    assert more["conversion_rate"] == base["conversion_rate"] or (np.isnan(more["conversion_rate"]) and np.isnan(base["conversion_rate"]))


def test_every_filtered_metric_takes_edition_and_a_period(rep) -> None:
    """edition= and start/end select the same rows as filtering the whole table afterwards."""
    out = M.expiry_outcomes(rep)
    sel = M.expiry_outcomes(rep, edition="basic", start="2026-01-01", end="2026-03-31")
    want = out[(out["edition"] == "basic") & (out["end"] >= "2026-01-01") & (out["end"] <= "2026-03-31")]
    assert sel["license_id"].tolist() == want["license_id"].tolist() == ["L4", "L5"]
    act = M.active_licenses(rep, edition="full", start="2025-06-01", end="2025-12-31")
    assert set(act["edition"]) == {"full"} and act["day"].min() >= pd.Timestamp("2025-06-01")
    assert M.forgotten_renewals(rep, edition="basic").empty
    with pytest.raises(MetricsError, match="'pro'"):
        M.expiry_outcomes(rep, edition="pro")
