"""Report pages quote the numbers the metrics API gives: same rate, same counts, same window."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import subs_model as sm
from subs_model import insights as I
from subs_model import metrics as M
from subs_model import notes as N

ROOT = Path(__file__).resolve().parents[1]
DATA, CAT = str(ROOT / "data/sample"), str(ROOT / "data/catalog.yaml")


@pytest.fixture(scope="module")
def rep() -> sm.Replay:
    return I.load(DATA, CAT)


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _n(x: int) -> str:
    return N.integer(int(x), "en")


def rub(kop: int) -> str:
    return N.rub(kop, "en")


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
    assert f"{_pct(recent['on_time_rate'])} of expiries ({_n(recent['renewed_by_deadline'])} of {_n(recent['known_at_deadline'])}" in s
    assert f"to {N.date(recent['deadline_known_to'], 'en')}" in s
    assert f"{_pct(mature['continued_rate'])} ({_n(mature['continued'])} of {_n(mature['known_at_horizon'])}" in s
    pooled = M.pooled_retention(rep, edition=edition).set_index("months")
    note = page.notes["retention"]
    assert f"**{_pct(pooled.loc[12, 'retention'])}** had not churned (followed for 12 months or more: {_n(pooled.loc[12, 'followed'])})" in note
    assert f"**{_pct(pooled.loc[24, 'retention'])}** ({_n(pooled.loc[24, 'followed'])})" in note
    rev = M.revenue(rep, edition=edition)
    last12 = rev[rev["month"] > day - pd.DateOffset(months=12)]
    money = page.notes["revenue"]
    for col in ("bookings_kop", "recognised_kop", "breakage_kop"):
        assert f"**{rub(last12[col].sum())}**" in money, col


def test_timing_page_quotes_period_over_period(rep) -> None:
    """The renewal timing page's quarter-over-quarter line is period_over_period's on-time row."""
    page = I.renewal_timing_page(DATA, CAT, lang="en")
    pop = M.period_over_period(rep).set_index("rate").loc["on_time_rate"]
    assert (f"**{_pct(pop['value'])}** by the deadline ({_n(pop['count'])} of {_n(pop['known'])}) against "
            f"**{_pct(pop['prior_value'])}** ({_n(pop['prior_count'])} of {_n(pop['prior_known'])})") in page.notes["rates"]
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
    assert f"**{N.count(int(last['upgrades'].sum()), 'upgrade', 'en')}** paid for **{rub(last['upgrade_payments_kop'].sum())}**" in note
    known_to = M.upgrade_conversion(rep)["known_to"].iloc[0]
    c = M.upgrade_conversion(rep, start=known_to - pd.DateOffset(months=12) + pd.Timedelta(days=1), end=known_to).iloc[0]
    assert f"window of 90 days closed: **{_n(c['known'])}**), **{_pct(c['conversion_rate'])}** were upgraded" in note
    assert "kept" not in note.lower()  # the old "saved revenue" counted the renewal payment received before the lapse


def test_tables_for_people_show_rubles(rep) -> None:
    """Money in page tables is rubles with ₽, never bare kopecks."""
    page = I.upgrade_revenue_page(DATA, CAT, lang="ru")
    monthly = page.table("monthly")
    assert "upgrade_payments_rub" in monthly.columns and not any(c.endswith("_kop") for c in monthly.columns)
    assert monthly["upgrade_payments_rub"].str.endswith("₽").all()


_DATE = re.compile(r"\d{2}\.\d{2}\.\d{4}|\d{1,2} [A-Z][a-z]{2} \d{4}")  # the notes' dates, ru and en (notes.date)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_notes_of_pages_01_to_04_are_grammatical(lang) -> None:
    """Every note and headline of pages 01–04: counts over 999 with thousands separators, no «дн.», «лицензие-дней»
    or "1 days", and the grace note's count agrees with its noun («4 103 раза», "4,103 renewals")."""
    pages = [f(DATA, CAT, lang=lang) for f in (I.cohort_overview, I.renewal_timing_page, I.grace_usage_page,
                                               I.upgrade_revenue_page)]
    for page in pages:
        for text in [page.summary, *page.notes.values()]:
            assert not _ISO.search(text), text  # dates as people read them in the language, never ISO
            bare = _DATE.sub("", text)
            assert not re.search(r"\d{4,}", bare), text  # 4103 → «4 103» / "4,103"
            assert "дн." not in text and "лицензие" not in text and "license-days" not in text, text
            assert not re.search(r"(?<![\d.,])1 days", text), text
    grace = pages[2]
    n = int(grace.table("summary")["in_grace"].sum())
    assert f"**{N.count(n, 'time' if lang == 'ru' else 'renewal', lang)}**" in grace.notes["grace"]


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_overview_kpis_read_in_the_page_language(lang) -> None:
    """The kpis table names each metric in words of the page's language (no snake_case) and gives formatted text
    values: counts with separators, a rate with its count and denominator, money with ₽."""
    page = I.cohort_overview(DATA, CAT, lang=lang)
    k = page.table("kpis")
    assert list(k.columns) == ["metric", "value"]
    assert not k["metric"].str.contains("_").any()
    assert k["metric"].str.contains("[а-я]" if lang == "ru" else "[a-z]").all()
    assert k["value"].map(type).eq(str).all()
    assert k["value"].iloc[-1].endswith("₽")
    assert (" из " if lang == "ru" else " of ") in k["value"].iloc[2]
    assert k["value"].iloc[2].startswith(page.notes["outcomes"].split("**")[3])  # the outcomes note's on-time rate


def test_forgotten_by_month_counts_every_code_and_its_payment(rep) -> None:
    """forgotten_by_month: one row per lapse month and fate; the counts add up to the lapsed codes and the
    kopecks to their orders' amounts (summed exactly from the ledger's decimal rubles)."""
    fr = M.forgotten_renewals(rep)
    m = I.forgotten_by_month(rep, fr)
    assert list(m.columns) == ["month", "fate", "count", "at_stake_kop"]
    assert int(m["count"].sum()) == len(fr)
    assert (m["month"].dt.day == 1).all() and not m.duplicated(["month", "fate"]).any()
    amounts = rep.ledger.orders.set_index("order_id")["amount_rub"]
    expected = sum(int(Decimal(str(amounts[o])) * 100) for o in fr["order_id"])  # reference: per row, exact
    assert int(m["at_stake_kop"].sum()) == expected
    first = fr[fr["lapsed_on"].dt.to_period("M") == fr["lapsed_on"].min().to_period("M")]
    row = m[m["month"] == m["month"].min()]
    assert int(row["count"].sum()) == len(first)
