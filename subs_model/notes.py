"""Words and numbers for people: plural forms, number formats and Markdown notes in Russian or English.

Notes in reports are Markdown computed from the numbers (no ``print`` output): a count
agrees with its noun (1 лицензия, 2 лицензии, 5 лицензий; 1 day, 2 days), numbers use the
language's separators (ru: «3 200 ₽», «58,3 %»; en: "3,200 ₽", "58.3%"), and money is
given in kopecks and shown in rubles.

>>> count(21, "license", "ru"), count(1, "day", "en"), count(2, "day", "en")
('21 лицензия', '1 day', '2 days')
>>> [s.replace(NBSP, " ") for s in (rub(320000, "ru"), rub(320000, "en"), pct(0.5833, "ru"), pct(0.5833, "en"))]
['3 200 ₽', '3,200 ₽', '58,3 %', '58.3%']
>>> date("2026-10-31", "ru"), date("2026-10-31", "en"), month("2026-10-01", "ru"), month("2026-10-01", "en")
('31.10.2026', '31 Oct 2026', '10.2026', 'Oct 2026')
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["DATE_FORMATS", "NOUNS", "Note", "count", "date", "escape", "integer", "month", "number", "pct", "plural", "pp",
           "rub", "signed_pct"]

NBSP = "\u00a0"  # between a number and its unit, and as the Russian thousands separator: no wrap inside a number
THIN = "\u202f"

#: Noun forms: Russian (one, few, many) and English (one, other).
NOUNS: dict[str, tuple[tuple[str, str, str], tuple[str, str]]] = {
    "license": (("лицензия", "лицензии", "лицензий"), ("license", "licenses")),
    "day": (("день", "дня", "дней"), ("day", "days")),
    "hour": (("час", "часа", "часов"), ("hour", "hours")),
    "month": (("месяц", "месяца", "месяцев"), ("month", "months")),
    "year": (("год", "года", "лет"), ("year", "years")),
    "time": (("раз", "раза", "раз"), ("time", "times")),
    "renewal": (("продление", "продления", "продлений"), ("renewal", "renewals")),
    "upgrade": (("апгрейд", "апгрейда", "апгрейдов"), ("upgrade", "upgrades")),
    "order": (("заказ", "заказа", "заказов"), ("order", "orders")),
    "customer": (("клиент", "клиента", "клиентов"), ("customer", "customers")),
    "code": (("код", "кода", "кодов"), ("code", "codes")),
    "term_end": (("окончание срока", "окончания срока", "окончаний срока"), ("term end", "term ends")),
    "license_day": (("лицензие-день", "лицензие-дня", "лицензие-дней"), ("license-day", "license-days")),
    "report": (("отчёт", "отчёта", "отчётов"), ("report", "reports")),
}


def _ru_form(n: int) -> int:
    """0 for 1, 21, 101 (лицензия); 1 for 2–4, 22–24 (лицензии); 2 otherwise, and 11–14 (лицензий)."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return 1
    return 2


def plural(n: float, noun: str | Sequence[str], lang: str = "ru") -> str:
    """The form of ``noun`` (a key of :data:`NOUNS`, or the forms themselves) that agrees with ``n``.

    Fractions take the Russian genitive singular (1,5 дня) and the English plural (1.5 days).

    >>> [plural(n, "license") for n in (1, 2, 5, 11, 21, 112)]
    ['лицензия', 'лицензии', 'лицензий', 'лицензий', 'лицензия', 'лицензий']
    >>> plural(1.5, "day", "ru"), plural(1.5, "day", "en")
    ('дня', 'days')
    """
    if isinstance(noun, str):
        ru, en = NOUNS[noun]
        forms: Sequence[str] = ru if lang == "ru" else en
    else:
        forms = noun
    whole = float(n).is_integer()
    if lang == "ru":
        return forms[_ru_form(int(n))] if whole else forms[1]
    return forms[0] if whole and abs(n) == 1 else forms[-1]


def number(x: float, lang: str = "ru", digits: int = 0) -> str:
    """``x`` with the language's separators: ru «12 345,6», en "12,345.6"; "—" for a missing value."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    text = f"{x:,.{digits}f}"
    if lang == "ru":
        text = text.replace(",", NBSP).replace(".", ",")
    return text.replace("-", "−")


def integer(n: Any, lang: str = "ru") -> str:
    """A whole number with thousands separators."""
    return number(n, lang, 0)


def count(n: int, noun: str | Sequence[str], lang: str = "ru", *, genitive: bool = False) -> str:
    """``n`` and the noun in the form that agrees with it: «5 лицензий», "1 day".

    ``genitive`` for Russian after «из», «для», «около»: «из 1 лицензии», «из 3 лицензий».

    >>> count(433, "term_end"), count(433, "term_end", genitive=True), count(21, "license", genitive=True)
    ('433 окончания срока', '433 окончаний срока', '21 лицензии')
    """
    if lang == "ru" and genitive and float(n).is_integer():
        ru = NOUNS[noun][0] if isinstance(noun, str) else noun
        one = abs(int(n)) % 10 == 1 and abs(int(n)) % 100 != 11
        return f"{integer(n, lang)} {ru[1] if one else ru[2]}"
    return f"{integer(n, lang)} {plural(n, noun, lang)}"


def rub(kopecks: Any, lang: str = "ru", digits: int = 0) -> str:
    """Money given in integer kopecks, shown in rubles with ₽ (rounded to whole rubles by default)."""
    if kopecks is None or (isinstance(kopecks, float) and math.isnan(kopecks)):
        return "—"
    return f"{number(kopecks / 100, lang, digits)}{NBSP}₽"


def pct(share: Any, lang: str = "ru", digits: int = 1) -> str:
    """A share (0.583) as a percentage: ru «58,3 %», en "58.3%"."""
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "—"
    text = number(share * 100, lang, digits)
    return f"{text}{NBSP}%" if lang == "ru" else f"{text}%"


def signed_pct(change: float, lang: str = "ru", digits: int = 1) -> str:
    """A relative change with its sign: «+4,2 %», "−1.0%"."""
    text = pct(change, lang, digits)
    return text if text.startswith(("−", "—")) else f"+{text}"


def pp(change: float, lang: str = "ru", digits: int = 1) -> str:
    """A change of a rate in percentage points: «+1,5 п.п.», "−0.4 pp"."""
    if change is None or math.isnan(change):
        return "—"
    text = number(change * 100, lang, digits)
    sign = "" if text.startswith("−") else "+"
    return f"{sign}{text}{NBSP}{'п.п.' if lang == 'ru' else 'pp'}"


#: One style per language for days and months people read (strftime / plotly's d3 time format):
#: ru «31.10.2026», «10.2026»; en "31 Oct 2026", "Oct 2026". Charts use the same (:mod:`subs_model.chart_formats`).
DATE_FORMATS: dict[str, dict[str, str]] = {
    "ru": {"day": "%d.%m.%Y", "month": "%m.%Y", "year": "%Y"},
    "en": {"day": "%d %b %Y", "month": "%b %Y", "year": "%Y"},
}
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _when(x: Any, lang: str, unit: str) -> str:
    if x is None or (not isinstance(x, str) and _isna(x)) or x == "":
        return "—"
    import pandas as pd

    ts = pd.Timestamp(x)
    if lang == "ru":
        return ts.strftime(DATE_FORMATS["ru"][unit])
    # month names spelled here, not by the C locale of the host
    return f"{ts.day} {_EN_MONTHS[ts.month - 1]} {ts.year}" if unit == "day" else f"{_EN_MONTHS[ts.month - 1]} {ts.year}"


def _isna(x: Any) -> bool:
    try:
        return bool(x != x)  # NaN, NaT
    except (TypeError, ValueError):
        return False


def date(x: Any, lang: str = "ru") -> str:
    """A calendar day as people read it: ru «31.10.2026», en "31 Oct 2026"; "—" when missing.

    Takes anything :class:`pandas.Timestamp` reads (``"2026-10-31"``, a ``date``, a timestamp).

    >>> date("2026-03-05", "ru"), date("2026-03-05", "en"), date(None)
    ('05.03.2026', '5 Mar 2026', '—')
    """
    return _when(x, lang, "day")


def month(x: Any, lang: str = "ru") -> str:
    """A calendar month: ru «10.2026», en "Oct 2026"; "—" when missing.

    >>> month("2026-10-17", "ru"), month("2026-10-17", "en")
    ('10.2026', 'Oct 2026')
    """
    return _when(x, lang, "month")


# ASCII punctuation that Markdown (and MathJax's `$`) may read as syntax; `&`, `<`, `>` become entities instead.
_MD_PUNCT = re.compile(r"([!-%'-/:;=?@\[-`{-~])")


def escape(text: Any) -> str:
    r"""Text from data (a feature or scenario name) made inert in a Markdown note.

    The same rule as :func:`subs_model.plots.safe_text` with ``markdown=True``: line breaks
    become spaces, ASCII punctuation is backslash-escaped, ``&``, ``<``, ``>`` become entities.
    Escape values, never a finished note.

    >>> print(escape("<img src=x onerror=alert(1)> *bold*"))
    &lt;img src\=x onerror\=alert\(1\)&gt; \*bold\*
    """
    import html

    return html.escape(_MD_PUNCT.sub(r"\\\1", " ".join(str(text).splitlines())), quote=False)


class Note:
    """A Markdown note built line by line; ``display(note)`` in a notebook renders it as Markdown.

    >>> n = Note("ru").line(f"Продлили {count(5, 'license', 'ru')} за {count(2, 'day', 'ru')}.")
    >>> n.markdown()
    'Продлили 5 лицензий за 2 дня.'
    """

    __slots__ = ("lang", "_lines")

    def __init__(self, lang: str = "ru") -> None:
        self.lang = lang
        self._lines: list[str] = []

    def line(self, text: str) -> Note:
        """Add a paragraph (Markdown)."""
        self._lines.append(text)
        return self

    def bullet(self, text: str) -> Note:
        """Add a list item (Markdown)."""
        self._lines.append(f"- {text}")
        return self

    def markdown(self) -> str:
        """The note as Markdown text."""
        out: list[str] = []
        for i, text in enumerate(self._lines):
            if i and not (text.startswith("- ") and self._lines[i - 1].startswith("- ")):
                out.append("")
            out.append(text)
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __str__(self) -> str:
        return self.markdown()
