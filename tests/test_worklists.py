"""Lists to work from (subs_model.worklists): hand-derived cases, one license per situation."""

from __future__ import annotations

import pandas as pd
import pytest
from builders import Ev, make_ledger

import subs_model as sm
from subs_model.resources import data_dir, default_catalog
from subs_model.worklists import LIST_NAMES, WorklistError, worklists

AS_OF = "2026-01-05"


@pytest.fixture(scope="module")
def lists():
    led = make_ledger([
        Ev("subscription", "2025-01-01", license="L1"),  # ended 2026-01-01, deadline 2026-01-15: in grace
        Ev("subscription", "2025-01-01", license="L2"),
        Ev("renewal", None, issued="2025-12-20T10:00:00", license="L2", name="R2"),  # paid, issued, not activated
        Ev("subscription", "2024-06-01", license="L3"),
        Ev("renewal", None, issued="2025-05-20T10:00:00", license="L3", name="R3"),  # lapsed 2025-06-16: too long ago
        Ev("subscription", "2024-12-01", license="L4"),
        Ev("renewal", None, issued="2025-11-25T10:00:00", license="L4", name="R4"),  # lapsed 2025-12-16: 20 days ago
        Ev("subscription", "2025-01-10", license="L5"),
        Ev("renewal", None, issued=None, invoiced="2025-12-28T10:00:00", license="L5", name="P5"),  # paid, no code
        Ev("subscription", "2025-06-01", license="L6"),  # covered: on no list
    ])
    rep = sm.replay(led, sm.Catalog.default(), as_of=AS_OF)
    return worklists(rep, led), rep, led


def test_in_grace_lists_uncovered_licenses_with_an_open_window(lists):
    """L1, L2 (ended 2026-01-01, deadline 2026-01-15) are in grace; L4 lapsed, L5 and L6 are covered."""
    g = lists[0].in_grace
    assert g["license_id"].tolist() == ["L1", "L2"]
    assert g["deadline"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-15", "2026-01-15"]
    assert g["covered_until"].dt.strftime("%Y-%m-%d").tolist() == ["2025-12-31", "2025-12-31"]
    assert g["days_left"].tolist() == [10, 10]
    assert g.set_index("license_id")["renewal_waiting"].to_dict() == {"L1": "", "L2": "C3"}


def test_paid_not_activated_lists_issued_renewals_near_their_deadline(lists):
    """R2 is paid and issued, its deadline 10 days away; the cut respects near_days."""
    w, rep, led = lists
    p = w.paid_not_activated
    assert p[["license_id", "order_id", "days_left"]].values.tolist() == [["L2", "R2", 10]]
    assert worklists(rep, led, near_days=9).paid_not_activated.empty


def test_lapsed_not_upgraded_keeps_the_upgrade_window(lists):
    """R4 lapsed on 2025-12-16 (deadline + 1), 20 days before as_of; R3 lapsed 203 days before: outside 90."""
    w, rep, led = lists
    lapsed = w.lapsed_not_upgraded
    assert lapsed[["order_id", "days_since_lapse"]].values.tolist() == [["R4", 20]]
    assert lapsed["lapsed_on"].dt.strftime("%Y-%m-%d").tolist() == ["2025-12-16"]
    assert worklists(rep, led, upgrade_window_days=19).lapsed_not_upgraded.empty
    assert set(worklists(rep, led, upgrade_window_days=400).lapsed_not_upgraded["order_id"]) == {"R3", "R4"}


def test_stuck_orders_are_paid_without_a_code_with_their_deadline(lists):
    """P5 was paid on 2025-12-28 without a code: 8 days waiting, its license's deadline 2026-01-24."""
    s = lists[0].stuck_orders
    assert s[["order_id", "sku", "days_waiting"]].values.tolist() == [["P5", "renewal", 8]]
    assert s["deadline"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-24"]
    assert s["days_left"].tolist() == [19]


def test_an_earlier_day_sees_less_and_a_later_one_is_refused(lists):
    """On 2025-12-31 nobody is in grace yet; a day after the replay's as_of is refused with the fix."""
    _, rep, led = lists
    assert worklists(rep, led, "2025-12-31").in_grace.empty
    with pytest.raises(WorklistError, match="replay up to that day first"):
        worklists(rep, led, "2026-02-01")


@pytest.mark.parametrize("bad", [-1, 1.5, True, "30"])
def test_bad_windows_are_refused_naming_the_value(lists, bad):
    """near_days must be a whole number of days >= 0."""
    _, rep, led = lists
    with pytest.raises(WorklistError, match=r"near_days=.* must be a whole number"):
        worklists(rep, led, near_days=bad)


def test_lists_for_people_have_russian_headers_and_plain_dates(lists):
    """for_people: Russian headers, dates without a time of day; an unknown language is refused."""
    w = lists[0]
    df = w.for_people("in_grace", "ru")
    assert list(df.columns[:3]) == ["Лицензия", "Клиент", "Редакция"]
    assert str(df["Крайний день продления"].iloc[0]) == "2026-01-15"
    assert w.counts() == {name: len(getattr(w, name)) for name in LIST_NAMES}
    with pytest.raises(WorklistError, match="lang 'de'"):
        w.for_people("in_grace", "de")


def test_sample_lists_are_consistent_with_the_replay():
    """On the sample: every in-grace license is uncovered on as_of, every listed code has the status listed."""
    led = sm.read_ledger(data_dir() / "sample")
    rep = sm.replay(led, sm.Catalog.from_yaml(default_catalog()), as_of="2026-10-31")
    w = worklists(rep, led)
    active = rep.active_on("2026-10-31")
    covered = set(active[active].index.astype(str))
    assert not set(w.in_grace["license_id"]) & covered
    status = rep.codes.set_index("order_id")["status"].astype(str)
    assert set(status[w.paid_not_activated["order_id"]]) <= {"issued"}
    assert set(status[w.lapsed_not_upgraded["order_id"]]) <= {"lapsed"}
    assert set(status[w.stuck_orders["order_id"]]) <= {"pending"}
    assert (w.paid_not_activated["days_left"].between(0, 30)).all()
    assert pd.Index(w.stuck_orders["order_id"]).is_unique


def test_the_page_quotes_the_api_counts_and_shows_rubles(tmp_path, monkeypatch):
    """The report page: its headline quotes each list's count; tables show ₽ and download as XLSX/CSV."""
    from subs_model.tables import EXPORT_DIR_ENV
    from subs_model.worklist_page import worklists_page

    monkeypatch.setenv(EXPORT_DIR_ENV, str(tmp_path))
    page = worklists_page(str(data_dir() / "sample"), str(default_catalog()), "2026-10-31", lang="en")
    counts = page.lists.counts()
    assert f"{counts['in_grace']} licenses in grace" in page.summary
    assert f"{counts['stuck_orders']} orders paid without a code" in page.summary
    t = page.show("paid_not_activated")
    assert "Amount" in t.frame.columns and t.frame["Amount"].str.contains("₽").all()
    assert {f.suffix for f in t.files} == {".csv", ".xlsx"} and all(f.exists() for f in t.files)
    written = page.lists.write(tmp_path / "lists", "ru")
    assert len(written) == 2 * len(LIST_NAMES)
    back = pd.read_csv(next(f for f in written if f.name == "in-grace.csv"))
    assert back.columns[0] == "Лицензия" and len(back) == counts["in_grace"]


def test_report_parameters_of_the_lists_are_checked_before_a_kernel_starts():
    """near_days < 0 or upgrade_window_days = 0 given to the suite is refused in one line, naming the value."""
    from subs_model.report_params import DOMAINS

    assert DOMAINS["near_days"]("near_days", -1) == "parameter 'near_days' must be 0 or more, got -1"
    assert "greater than 0" in DOMAINS["upgrade_window_days"]("upgrade_window_days", 0)
    assert DOMAINS["near_days"]("near_days", 0) == ""
