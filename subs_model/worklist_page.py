"""The report page of the lists to work from (notebook ``07-worklists``): a note, four tables.

Each table is a :func:`~subs_model.tables.people_table` (Russian or English headers, ₽, dates
as dates) and is also written beside the report as formula-safe CSV and XLSX for download.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import notes
from .insights import load
from .money import kopecks
from .tables import Col, PeopleTable, people_table
from .worklists import LABELS, Worklists, worklists

__all__ = ["WorklistPage", "worklists_page"]

#: What each list shows: (column, kind, total); headers and titles come from worklists.LABELS.
_SHOWN: dict[str, list[tuple[str, str, str | None]]] = {
    "in_grace": [("license_id", "text", None), ("customer_id", "text", None), ("edition", "text", None),
                 ("covered_until", "date", None), ("deadline", "date", None), ("days_left", "days", None),
                 ("renewal_waiting", "text", None)],
    "paid_not_activated": [("license_id", "text", None), ("customer_id", "text", None), ("code", "text", None),
                           ("act_number", "text", None), ("paid_on", "date", None), ("amount_kop", "rub", "sum"),
                           ("deadline", "date", None), ("days_left", "days", None)],
    "lapsed_not_upgraded": [("license_id", "text", None), ("customer_id", "text", None), ("code", "text", None),
                            ("act_number", "text", None), ("amount_kop", "rub", "sum"), ("lapsed_on", "date", None),
                            ("days_since_lapse", "days", None)],
    "stuck_orders": [("order_id", "text", None), ("license_id", "text", None), ("sku", "text", None),
                     ("act_number", "text", None), ("paid_on", "date", None), ("amount_kop", "rub", "sum"),
                     ("days_waiting", "days", None), ("deadline", "date", None), ("days_left", "days", None)],
}


def _cols(name: str) -> list[Col]:
    return [Col(key, LABELS["ru"][key], LABELS["en"][key], kind, total) for key, kind, total in _SHOWN[name]]


@dataclass(frozen=True)
class WorklistPage:
    """The lists of one day and how to show them."""

    lists: Worklists
    lang: str

    def headline(self) -> Any:
        """One Markdown paragraph: how many rows each list has, on which day, with which windows."""
        from IPython.display import Markdown

        return Markdown(self.summary)

    @property
    def summary(self) -> str:
        w, lang, c = self.lists, self.lang, self.lists.counts()
        day = notes.date(w.as_of, lang)
        if lang == "ru":
            return (f"На {day}: в льготном периоде {notes.count(c['in_grace'], 'license', lang)}; "
                    f"{notes.count(c['paid_not_activated'], 'renewal', lang)} оплачено и не активировано "
                    f"(крайний день в ближайшие {notes.count(w.near_days, 'day', lang)}); "
                    f"{notes.count(c['lapsed_not_upgraded'], 'code', lang)} продления сгорело за последние "
                    f"{notes.count(w.upgrade_window_days, 'day', lang)} без апгрейда у лицензий без подписки; "
                    f"{notes.count(c['stuck_orders'], 'order', lang)} оплачено без выданного кода.")
        return (f"On {day}: {notes.count(c['in_grace'], 'license', lang)} in grace; "
                f"{notes.count(c['paid_not_activated'], 'renewal', lang)} paid and not activated "
                f"(deadline within {notes.count(w.near_days, 'day', lang)}); "
                f"{notes.count(c['lapsed_not_upgraded'], 'code', lang)} lapsed in the last "
                f"{notes.count(w.upgrade_window_days, 'day', lang)} without an upgrade on uncovered licenses; "
                f"{notes.count(c['stuck_orders'], 'order', lang)} paid without a code.")

    def show(self, name: str, max_rows: int = 40) -> PeopleTable:
        """List ``name`` for people (its download holds every row)."""
        df = getattr(self.lists, name)
        if "amount_rub" in df.columns:
            df = df.assign(amount_kop=kopecks(df["amount_rub"]))
        return people_table(df, _cols(name), self.lang, name=name.replace("_", "-"),
                            caption=LABELS[self.lang][name], max_rows=max_rows)


def worklists_page(data: str, catalog: str | None = None, as_of: str = "", near_days: int = 30,
                   upgrade_window_days: int = 90, lang: str = "ru") -> WorklistPage:
    """Replay ``data`` under ``catalog`` up to ``as_of`` and cut the four lists (see :mod:`subs_model.worklists`).

    >>> page = worklists_page("data/sample", "data/catalog.yaml", "2026-10-31")  # doctest: +SKIP
    >>> page.show("in_grace")  # doctest: +SKIP
    """
    if lang not in LABELS:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    from .report_cache import read_ledger  # the run's kept ledger in a report kernel, else io.read_ledger

    rep = load(data, catalog, as_of or None)
    return WorklistPage(worklists(rep, read_ledger(data), near_days=near_days, upgrade_window_days=upgrade_window_days),
                        lang)

