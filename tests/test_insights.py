"""Report pages quote the numbers the metrics API gives: same rate, same counts, same window."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import subs_model as sm
from subs_model import insights as I
from subs_model import metrics as M
from subs_model.money import rub

ROOT = Path(__file__).resolve().parents[1]
DATA, CAT = str(ROOT / "data/sample"), str(ROOT / "data/catalog.yaml")


@pytest.fixture(scope="module")
def rep() -> sm.Replay:
    return I.load(DATA, CAT)


def _pct(x: float) -> str:
    return f"{x:.1%}"


@pytest.mark.parametrize("edition", ["all", "basic"])
def test_overview_quotes_the_api(rep, edition) -> None:
    """The overview's on-time and continued rates, their counts and windows, the pooled retention at 12 and 24
    months and the 12-month money are the API's."""
    page = I.cohort_overview(DATA, CAT, lang="en", edition=edition)
    day = rep.as_of
    recent = M.renewal_rates(rep, edition=edition, start=day - pd.DateOffset(months=12) + pd.Timedelta(days=1)).iloc[0]
    mature_end = day - pd.Timedelta(days=365)
    mature = M.renewal_rates(rep, edition=edition, start=mature_end - pd.DateOffset(months=12) + pd.Timedelta(days=1),
                             end=mature_end).iloc[0]
    s = page.summary
    assert f"{_pct(recent['on_time_rate'])} of expiries ({recent['renewed_by_deadline']} of {recent['known_at_deadline']}" in s
    assert f"to {recent['deadline_known_to'].date()}" in s
    assert f"{_pct(mature['continued_rate'])} ({mature['continued']} of {mature['known_at_horizon']}" in s
    pooled = M.pooled_retention(rep, edition=edition).set_index("months")
    note = page.notes["retention"]
    assert f"**{_pct(pooled.loc[12, 'retention'])}** had not churned (followed for 12 months or more: {pooled.loc[12, 'followed']})" in note
    assert f"**{_pct(pooled.loc[24, 'retention'])}** ({pooled.loc[24, 'followed']})" in note
    rev = M.revenue(rep, edition=edition)
    last12 = rev[rev["month"] > day - pd.DateOffset(months=12)]
    money = page.notes["revenue"]
    for col in ("bookings_kop", "recognised_kop", "breakage_kop"):
        assert f"**{rub(last12[col].sum())}**" in money, col


def test_timing_page_quotes_period_over_period(rep) -> None:
    """The renewal timing page's quarter-over-quarter line is period_over_period's on-time row."""
    page = I.renewal_timing_page(DATA, CAT, lang="en")
    pop = M.period_over_period(rep).set_index("rate").loc["on_time_rate"]
    assert (f"**{_pct(pop['value'])}** by the deadline ({pop['count']} of {pop['known']}) against "
            f"**{_pct(pop['prior_value'])}** ({pop['prior_count']} of {pop['prior_known']})") in page.notes["rates"]
    by_month = page.table("by_month")
    api = M.renewal_rates(rep, by="month")
    pd.testing.assert_frame_equal(by_month.reset_index(drop=True), api)


def test_upgrade_page_quotes_payments_and_conversion_within_the_window(rep) -> None:
    """Upgrade payments of the last 12 months by paid date, and conversion over the latest 12 months of lapses
    whose 90-day window has closed — upgrade_revenue and upgrade_conversion."""
    page = I.upgrade_revenue_page(DATA, CAT, lang="en")
    up = M.upgrade_revenue(rep)
    last = up[up["month"] > rep.as_of - pd.DateOffset(months=12)]
    note = page.notes["upgrade"]
    assert f"**{last['upgrades'].sum()}** upgrades paid for **{rub(last['upgrade_payments_kop'].sum())}**" in note
    known_to = M.upgrade_conversion(rep)["known_to"].iloc[0]
    c = M.upgrade_conversion(rep, start=known_to - pd.DateOffset(months=12) + pd.Timedelta(days=1), end=known_to).iloc[0]
    assert f"window of 90 days closed: **{c['known']}**), **{_pct(c['conversion_rate'])}** were upgraded" in note
    assert "kept" not in note.lower()  # the old "saved revenue" counted the renewal payment received before the lapse


def test_tables_for_people_show_rubles(rep) -> None:
    """Money in page tables is rubles with ₽, never bare kopecks."""
    page = I.upgrade_revenue_page(DATA, CAT, lang="ru")
    monthly = page.table("monthly")
    assert "upgrade_payments_rub" in monthly.columns and not any(c.endswith("_kop") for c in monthly.columns)
    assert monthly["upgrade_payments_rub"].str.endswith("₽").all()
