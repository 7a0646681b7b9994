"""The summary page: headline KPIs from one replay, checked against the ledger; escaped, linked, in the report language."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

import subs_model as sm
from subs_model import metrics
from subs_model.notes import NBSP
from subs_model.report_summary import headline_kpis, index_html, ledger_span, month_windows, on_time_window
from subs_model.resources import data_dir

KEYS = ["active", "on_time", "grace", "lapses", "conversion", "upgrade_revenue", "bookings", "recognised"]


@pytest.fixture(scope="module")
def rep():
    return sm.replay(sm.read_ledger(data_dir() / "sample"), sm.Catalog.from_yaml(data_dir() / "catalog.yaml"))


def test_windows_are_the_last_complete_month_and_the_one_before() -> None:
    """as_of on a month end → that month; otherwise the month before; across a year boundary too."""
    assert month_windows(pd.Timestamp("2026-10-31")) == (pd.Timestamp("2026-10-01"), pd.Timestamp("2026-09-01"))
    assert month_windows(pd.Timestamp("2026-01-15")) == (pd.Timestamp("2025-12-01"), pd.Timestamp("2025-11-01"))
    assert month_windows(pd.Timestamp("2024-02-29")) == (pd.Timestamp("2024-02-01"), pd.Timestamp("2024-01-01"))


def test_ledger_span_of_the_sample() -> None:
    """First and last event day of the sample ledger, Moscow days."""
    first, last = ledger_span(sm.read_ledger(data_dir() / "sample"))
    assert str(last) == "2026-10-31" and first.year == 2020


def test_kpis_agree_with_the_ledger(rep) -> None:
    """Bookings equal the October payments summed from the ledger; the on-time rate equals a per-row count."""
    kpis = {k.key: k for k in headline_kpis(rep, "en")}
    assert list(kpis) == KEYS
    o = rep.ledger.orders
    paid = o["paid_at"].dt.tz_convert("Europe/Moscow")
    oct_ = o[(paid >= "2026-10-01") & (paid < "2026-11-01")]
    total = sum(Decimal(a) for a in oct_["amount_rub"])
    assert kpis["bookings"].value.replace(NBSP, " ") == f"{total:,.0f} ₽"
    out = metrics.expiry_outcomes(rep)
    ends = on_time = 0
    for deadline, outcome in zip(out["deadline"], out["outcome"], strict=True):  # reference: a plain loop
        if pd.Timestamp("2026-10-01") <= deadline.tz_localize(None) < pd.Timestamp("2026-10-31"):
            ends += 1
            on_time += outcome in ("early_renewal", "grace_renewal")
    w = on_time_window(out, pd.Timestamp("2026-10-01"), rep.as_of)
    assert (w["ends"], w["on_time"]) == (ends, on_time) and w["grace"] <= w["on_time"] <= w["continued"] <= w["ends"]
    assert kpis["on_time"].value == f"{100 * on_time / ends:.1f}%"
    assert f"{on_time} of {ends:,} term ends" in kpis["on_time"].basis and "October 2026" in kpis["on_time"].basis
    assert kpis["active"].value.replace(",", "") == str(int(rep.active_on("2026-10-31").sum()))


def test_every_kpi_states_its_window_and_denominator_in_russian(rep) -> None:
    """Russian KPIs: Russian months in the right case, ₽, % and п.п., each with its window."""
    kpis = headline_kpis(rep, "ru")
    for k in kpis:
        assert k.basis and k.change, k
        assert "по сравнению с" in k.basis, k.basis
    by = {k.key: k for k in kpis}
    assert "в октябре 2026" in by["on_time"].basis and "сентябрём 2026" in by["on_time"].basis
    assert by["bookings"].value.endswith("₽") and by["on_time"].value.endswith("%") and "п.п." in by["on_time"].change
    assert "из 433 окончаний срока" in by["on_time"].basis.replace(NBSP, " ")  # genitive plural after «из»


def test_index_page_links_kpis_and_escapes_errors(rep) -> None:
    """KPI cards link to their reports; titles, errors and parameters are escaped; an error is one line."""
    runs = {
        "01-cohort-overview": {"status": "ok", "html": True, "title": "Cohort <overview>", "as_of": "2026-10-31",
                               "data_fingerprint": "abc", "parameters": {"data": "<x>"}},
        "02-renewal-timing": {"status": "failed", "html": False, "error": "cell In [3]: ValueError: <script>alert(1)</script>\nTraceback more"},
    }
    page = index_html(runs, headline_kpis(rep, "en"), "en")
    assert '<a class="kpi" href="01-cohort-overview.html">' in page
    assert '<div class="kpi"><div class="l">On-time renewal rate' in page  # its report failed: no link
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; Traceback more" in page
    assert "Cohort &lt;overview&gt;" in page and "&#x27;&lt;x&gt;&#x27;" in page
    assert index_html(runs, None, "ru", kpi_error="boom <b>").count("&lt;b&gt;") == 1


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_index_dates_and_numbers_per_language(rep, lang) -> None:
    """The index in ru and en: no ISO date anywhere a person reads (KPI windows, as_of, finish time), and the
    language's decimal mark in the run time («56,8 с» / "56.8 s")."""
    import re

    runs = {"01-cohort-overview": {"status": "ok", "html": True, "title": "t", "as_of": "2026-10-31", "data_fingerprint": "abc",
                                   "finished": "2026-12-03 13:11:21", "seconds": 56.8, "version": "0.1.0"}}
    page = index_html(runs, headline_kpis(rep, lang), lang)
    text = re.sub(r"<[^>]+>", " ", page.split("<body>", 1)[1])
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text), re.search(r".{40}\d{4}-\d{2}-\d{2}.{20}", text)
    if lang == "ru":
        assert "31.10.2026" in text and "03.12.2026 13:11" in text and f"56,8{NBSP}с" in text
    else:
        assert "31 Oct 2026" in text and "3 Dec 2026 13:11" in text and f"56.8{NBSP}s" in text
        assert not re.search(r"\d,\d{1,2}(?!\d)", text)  # no decimal comma in English


def test_index_keeps_an_as_of_that_is_not_a_day(rep) -> None:
    """A run's as_of or finish time that is not a day (a note, a placeholder) is shown as it is, escaped."""
    runs = {"toy": {"status": "ok", "html": True, "title": "t", "as_of": "last <event> day", "finished": "soon"}}
    page = index_html(runs, None, "ru")
    assert "last &lt;event&gt; day" in page and "soon" in page
