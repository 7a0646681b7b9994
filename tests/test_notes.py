"""Notes for people: Russian and English plural forms, number formats, Markdown escaping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subs_model import notes
from subs_model.notes import NBSP, Note, count, escape, pct, plural, pp, rub, signed_pct


def _plain(text: str) -> str:
    return text.replace(NBSP, " ")


@pytest.mark.parametrize(("n", "license", "day"), [
    (0, "лицензий", "дней"), (1, "лицензия", "день"), (2, "лицензии", "дня"), (4, "лицензии", "дня"),
    (5, "лицензий", "дней"), (11, "лицензий", "дней"), (12, "лицензий", "дней"), (14, "лицензий", "дней"),
    (21, "лицензия", "день"), (22, "лицензии", "дня"), (25, "лицензий", "дней"), (101, "лицензия", "день"),
    (111, "лицензий", "дней"), (1_000_002, "лицензии", "дня"),
])
def test_russian_plural_forms(n, license, day) -> None:
    """1 лицензия, 2 лицензии, 5 лицензий, 11 лицензий, 21 лицензия; 1 день, 2 дня, 5 дней."""
    assert plural(n, "license", "ru") == license
    assert plural(n, "day", "ru") == day


def test_english_plural_forms_and_counts() -> None:
    """1 day, 2 days, 0 days, 1.5 days; thousands separated by commas."""
    assert [count(n, "day", "en") for n in (0, 1, 2)] == ["0 days", "1 day", "2 days"]
    assert plural(1.5, "day", "en") == "days" and plural(1.5, "day", "ru") == "дня"
    assert count(4103, "time", "en") == "4,103 times"
    assert _plain(count(4103, "time", "ru")) == "4 103 раза"  # not «4103 раз»
    assert _plain(count(5, "license_day", "ru")) == "5 лицензие-дней"


@given(st.integers(min_value=0, max_value=10**9))
def test_russian_form_follows_the_last_two_digits(n) -> None:
    """The Russian form depends only on n mod 100 (property against the grammar rule, stated separately)."""
    last2, last = n % 100, n % 10
    expected = "лицензий" if 11 <= last2 <= 14 else {1: "лицензия", 2: "лицензии", 3: "лицензии", 4: "лицензии"}.get(last, "лицензий")
    assert plural(n, "license", "ru") == expected
    assert plural(n, "license", "ru") == plural(n % 100 + 100, "license", "ru")


def test_genitive_after_iz() -> None:
    """«из 1 лицензии», «из 3 лицензий», «из 21 лицензии», «из 11 лицензий»; English unchanged."""
    assert [count(n, "license", "ru", genitive=True) for n in (1, 3, 11, 21)] == [
        "1 лицензии", "3 лицензий", "11 лицензий", "21 лицензии"]
    assert count(3, "license", "en", genitive=True) == "3 licenses"


def test_number_formats_per_language() -> None:
    """ru: «3 200 ₽», «58,3 %», «−1,5 п.п.»; en: "3,200 ₽", "58.3%", "−1.5 pp"; missing values are a dash."""
    assert _plain(rub(320_000, "ru")) == "3 200 ₽" and _plain(rub(320_000, "en")) == "3,200 ₽"
    assert _plain(rub(123_456_789, "ru", 2)) == "1 234 567,89 ₽"
    assert _plain(pct(0.5833, "ru")) == "58,3 %" and pct(0.5833, "en") == "58.3%"
    assert _plain(pp(-0.015, "ru")) == "−1,5 п.п." and _plain(pp(0.004, "en")) == "+0.4 pp"
    assert _plain(signed_pct(0.042, "ru")) == "+4,2 %" and signed_pct(-0.01, "en") == "−1.0%"
    assert rub(float("nan")) == "—" and pct(None) == "—" and notes.number(float("nan")) == "—"
    assert NBSP in rub(320_000, "ru")  # a number never wraps away from its unit


def test_note_is_markdown_with_escaped_data() -> None:
    """A Note renders as Markdown (paragraphs, lists); data inside is escaped, so no HTML or emphasis leaks."""
    name = "<img src=x onerror=alert(1)> *x*"
    n = Note("en").line(f"Feature {escape(name)} was missed by {count(3, 'license', 'en')}.").bullet("a").bullet("b")
    md = n._repr_markdown_()
    assert "<img" not in md and "&lt;img" in md and r"\*x\*" in md
    assert md.endswith("\n\n- a\n- b") and "3 licenses" in md


@pytest.mark.parametrize(("value", "ru", "en"), [
    ("2026-10-31", "31.10.2026", "31 Oct 2026"), ("2026-03-05", "05.03.2026", "5 Mar 2026"),
    (__import__("datetime").date(2024, 2, 29), "29.02.2024", "29 Feb 2024"), (None, "—", "—"), (float("nan"), "—", "—"),
])
def test_dates_per_language(value, ru, en) -> None:
    """One style per language for a day: ru «31.10.2026», en "31 Oct 2026"; missing → "—"."""
    assert notes.date(value, "ru") == ru and notes.date(value, "en") == en


@given(st.dates(min_value=__import__("datetime").date(1990, 1, 1), max_value=__import__("datetime").date(2100, 12, 31)))
def test_dates_round_trip_and_are_never_iso(day) -> None:
    """Both styles read back to the same day; neither is ISO (YYYY-MM-DD); months agree with days."""
    import datetime as dt

    ru, en = notes.date(day, "ru"), notes.date(day, "en")
    assert dt.datetime.strptime(ru, "%d.%m.%Y").date() == day and dt.datetime.strptime(en, "%d %b %Y").date() == day
    assert day.isoformat() not in ru + en
    assert notes.month(day, "ru") == ru[3:] and notes.month(day, "en") == en.split(" ", 1)[1]


def test_percent_and_separators_per_language() -> None:
    """Russian: «50 %» with a no-break space and a decimal comma; English: "50%" and a decimal point."""
    assert pct(0.5, "ru", 0) == f"50{NBSP}%" and pct(0.5, "en", 0) == "50%"
    assert notes.number(1234567.5, "ru", 1) == f"1{NBSP}234{NBSP}567,5" and notes.number(1234567.5, "en", 1) == "1,234,567.5"
