"""Tables for people: labelled columns, ₽ and % formats, no index, a totals row, a download link.

:func:`people_table` turns a tidy frame into a table a product manager reads: columns named
in the report language, money (integer kopecks) in rubles with ₽, shares in %, counts with
thousands separators, no 0…n index, an optional totals row, and no "70 rows × 8 columns"
ellipsis (the first ``max_rows`` rows are shown and the rest is in the download). Each table
is also written as formula-safe CSV and XLSX (:func:`subs_model.export.write_table`) beside
the report, with a link to it; the report runner says where through two environment
variables (:data:`EXPORT_DIR_ENV`, :data:`EXPORT_LINK_ENV`).

>>> import pandas as pd
>>> df = pd.DataFrame({"edition": ["full", "basic"], "n": [1200, 300], "amount": [320000, 80000], "share": [0.8, 0.2]})
>>> cols = [Col("edition", "Редакция", "Edition"), Col("n", "Лицензии", "Licenses", "int", total="sum"),
...         Col("amount", "Сумма", "Amount", "rub", total="sum"), Col("share", "Доля", "Share", "pct")]
>>> t = people_table(df, cols, lang="en", name="by-edition", export=False)
>>> [s.replace(notes.NBSP, " ") for s in t.frame["Amount"]]
['3,200 ₽', '800 ₽', '4,000 ₽']
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import notes

__all__ = ["COLUMNS", "EXPORT_DIR_ENV", "EXPORT_LINK_ENV", "KINDS", "Col", "PeopleTable", "auto_cols", "people_table", "unbroken"]

#: Folder where tables are written for download (set by the report runner for each notebook).
EXPORT_DIR_ENV = "SUBS_MODEL_EXPORT_DIR"
#: How the published report links to that folder (a relative URL prefix, e.g. ``01-cohort-overview_files/``).
EXPORT_LINK_ENV = "SUBS_MODEL_EXPORT_LINK"
KINDS = ("text", "int", "rub", "pct", "pp", "float", "days", "date", "month")
_NUMERIC = {"int", "rub", "pct", "pp", "float", "days"}
_SLUG = re.compile(r"[^\w-]+")


@dataclass(frozen=True, slots=True)
class Col:
    """One shown column: its key in the frame, labels in Russian and English, kind and total.

    ``kind`` is one of :data:`KINDS`: ``rub`` takes integer kopecks; ``pct`` a share 0…1;
    ``days`` a number of days. ``total`` is ``"sum"`` (money, counts), ``"mean"``, or None
    (no total in this column); a rate's total is better given precomputed with ``total_value``.
    """

    key: str
    ru: str
    en: str
    kind: str = "text"
    total: str | None = None
    total_value: Any = None
    digits: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            msg = f"column {self.key!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}"
            raise ValueError(msg)

    def label(self, lang: str) -> str:
        """The column label in ``lang``."""
        return self.ru if lang == "ru" else self.en


def unbroken(value: Any) -> str:
    """``value`` as text with the spaces inside a number (its digit groups) and before ``₽`` made
    no-break, so a narrow table cell never breaks «3 000 ₽» apart (the downloads keep the text as it is).

    >>> unbroken("Продление 3 000 ₽ за 30 дней")
    'Продление 3\xa0000\xa0₽ за 30 дней'
    """
    return _NUMBER_SPACE.sub("\u00a0", str(value)).replace(" ₽", "\u00a0₽")


_NUMBER_SPACE = re.compile(r"(?<=\d) (?=\d{3}(?!\d))")


def _fmt(kind: str, value: Any, lang: str, digits: int | None) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    if kind == "int":
        return notes.integer(value, lang)
    if kind == "rub":  # kopecks; a text is money already formatted (a page's rub_table)
        return value if isinstance(value, str) else notes.rub(value, lang, digits or 0)
    if kind == "pct":
        return notes.pct(value, lang, 1 if digits is None else digits)
    if kind == "pp":
        return notes.pp(value, lang, 1 if digits is None else digits)
    if kind == "float":
        return notes.number(value, lang, 2 if digits is None else digits)
    if kind == "days":
        return notes.number(value, lang, 0 if digits is None else digits)
    if kind == "date":
        return notes.date(value, lang)
    if kind == "month":
        return notes.month(value, lang)
    return str(value)


def _named(df: pd.DataFrame, cols: Sequence[Col], lang: str) -> pd.DataFrame:
    """Text columns with the project's vocabulary (editions, SKUs, outcomes…) in ``lang`` (:func:`subs_model.labels`)."""
    from .labels import labels

    names = {**labels(lang), **VALUES[lang]}
    text = [c.key for c in cols if c.kind == "text" and df[c.key].astype(str).isin(names).any()]
    if not text:
        return df
    return df.assign(**{k: df[k].astype(object).replace(names) for k in text})


def _total(col: Col, values: pd.Series) -> Any:
    if col.total_value is not None:
        return col.total_value
    if col.total == "sum":
        return values.sum()
    if col.total == "mean":
        return values.mean()
    return None


@dataclass
class PeopleTable:
    """A formatted table: ``frame`` (labels, text cells, totals row), its HTML, and the files written for download."""

    frame: pd.DataFrame
    kinds: list[str]
    lang: str
    caption: str = ""
    shown_rows: int = 0
    files: list[Path] = field(default_factory=list)
    link: str = ""
    has_total: bool = False

    def _styler(self) -> Any:
        shown = self.frame.head(self.shown_rows) if self.shown_rows < len(self.frame) - self.has_total else self.frame
        if self.has_total and self.shown_rows < len(self.frame) - 1:
            shown = pd.concat([shown, self.frame.tail(1)])
        sty = shown.style.hide(axis="index").format(escape="html").format_index(escape="html", axis=1)
        text_cols = [shown.columns[j] for j, kind in enumerate(self.kinds) if kind == "text"]
        if text_cols:  # «3 000 ₽» in a name or a band never breaks apart in a narrow cell (escaped first)
            sty = sty.format(unbroken, escape="html", subset=text_cols)
        styles = [
            {"selector": "", "props": "border-collapse:collapse;font-size:.92em;max-width:100%;table-layout:auto"},
            {"selector": "th", "props": "text-align:left;vertical-align:bottom;padding:.3em .6em;border-bottom:2px solid #888"},
            {"selector": "td", "props": "padding:.25em .6em;border-bottom:1px solid #e2e2e2;vertical-align:top;text-align:left"},
        ]
        for j, kind in enumerate(self.kinds):
            if kind in _NUMERIC or kind in ("date", "month"):
                # numbers never wrap; their headers do (a long header must not widen the table past the page)
                styles.append({"selector": f"td.col{j}", "props": "text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums"})
                styles.append({"selector": f"th.col_heading.col{j}", "props": "text-align:right;min-width:4.5em"})
        for j, kind in enumerate(self.kinds):  # long texts (descriptions) get room instead of a word per line
            longest = shown.iloc[:, j].astype(str).str.len().max() if kind == "text" and len(shown) else 0
            if longest > 12:
                styles.append({"selector": f"td.col{j}", "props": f"min-width:{14 if longest > 30 else 9}em"})
        sty = sty.set_table_styles(styles)
        if self.has_total:
            last = len(shown) - 1
            sty = sty.apply(lambda _: pd.DataFrame("font-weight:600;border-top:2px solid #888", index=shown.index[[last]],
                                                   columns=shown.columns).reindex(shown.index).fillna(""), axis=None)
        if self.caption:
            sty = sty.set_caption(html.escape(self.caption))
        return sty

    def to_html(self) -> str:
        """The table as HTML (data escaped), wrapped so a wide table scrolls instead of widening the page."""
        body = self._styler().to_html()
        foot = []
        n = len(self.frame) - self.has_total
        if self.shown_rows < n:
            foot.append(f"{'показаны первые' if self.lang == 'ru' else 'first'} {notes.integer(self.shown_rows, self.lang)} "
                        f"{'из' if self.lang == 'ru' else 'of'} {notes.integer(n, self.lang)} "
                        f"{'строк' if self.lang == 'ru' else 'rows shown'}")
        if self.link:
            word = "скачать" if self.lang == "ru" else "download"
            foot.append(f'{word}: <a href="{html.escape(self.link)}.xlsx" download>XLSX</a> · '
                        f'<a href="{html.escape(self.link)}.csv" download>CSV</a>')
        tail = f'<div class="sm-table-foot" style="font-size:.85em;color:#555">{" · ".join(foot)}</div>' if foot else ""
        return f'<div class="sm-table" style="max-width:100%;overflow-x:auto">{body}{tail}</div>'

    def _repr_html_(self) -> str:
        return self.to_html()


def people_table(
    df: pd.DataFrame, cols: Sequence[Col], lang: str = "ru", *, name: str = "table", caption: str = "",
    totals: bool | None = None, max_rows: int = 40, export: bool | str | Path = True,
) -> PeopleTable:
    """A table for people from ``df``: the columns of ``cols``, in that order, labelled and formatted in ``lang``.

    Parameters
    ----------
    df : DataFrame
        Tidy data; money in integer kopecks, shares 0…1. The index is ignored.
    cols : sequence of Col
        What to show and how.
    lang : {"ru", "en"}
    name : str
        File name (without extension) of the download, e.g. ``"expiry-outcomes"``.
    totals : bool, optional
        Add a totals row (default: when a column has a total).
    max_rows : int
        Rows shown in the page; the download holds all of them.
    export : bool or path
        Write CSV and XLSX (formula-safe) for download: to this folder, or (True) to the folder
        the report runner gives in ``SUBS_MODEL_EXPORT_DIR`` (nothing when it is not set).

    Examples
    --------
    >>> import pandas as pd
    >>> cols = [Col("e", "Редакция", "Edition"), Col("d", "Дни", "Days", "days", total="sum")]
    >>> t = people_table(pd.DataFrame({"e": ["full", "basic"], "d": [1, 2]}), cols, export=False)
    >>> t.frame.values.tolist()
    [['Кассир 5', '1'], ['Кассир 5 (Базовая версия)', '2'], ['Итого', '3']]
    """
    missing = [c.key for c in cols if c.key not in df.columns]
    if missing:
        msg = f"table {name!r}: no column(s) {missing} in the frame (it has {list(df.columns)})"
        raise KeyError(msg)
    with_total = any(c.total or c.total_value is not None for c in cols) if totals is None else totals
    labels = [c.label(lang) for c in cols]
    df = _named(df, cols, lang)
    shown = pd.DataFrame({lab: [_fmt(c.kind, v, lang, c.digits) for v in df[c.key].tolist()] for lab, c in zip(labels, cols, strict=True)})
    raw = pd.DataFrame({lab: df[c.key].to_numpy() for lab, c in zip(labels, cols, strict=True)})
    for lab, c in zip(labels, cols, strict=True):
        if c.kind == "rub" and pd.api.types.is_numeric_dtype(df[c.key].dtype):
            raw[lab] = df[c.key].to_numpy() / 100  # rubles in the spreadsheet, as numbers
    if with_total:
        word = "Итого" if lang == "ru" else "Total"
        total_row = {lab: (_fmt(c.kind, t, lang, c.digits) if (t := _total(c, df[c.key])) is not None else "")
                     for lab, c in zip(labels, cols, strict=True)}
        first = total_row[labels[0]]
        total_row[labels[0]] = f"{word}: {first}" if first else word
        shown = pd.concat([shown, pd.DataFrame([total_row])], ignore_index=True)
    table = PeopleTable(shown, [c.kind for c in cols], lang, caption, min(max_rows, len(df)), has_total=with_total)
    folder = Path(export) if isinstance(export, str | Path) else Path(os.environ[EXPORT_DIR_ENV]) if export and os.environ.get(EXPORT_DIR_ENV) else None
    if folder is not None:
        from .export import write_table

        slug = _SLUG.sub("-", name).strip("-") or "table"
        table.files = write_table(raw, folder / slug, sheet=slug[:31])
        prefix = os.environ.get(EXPORT_LINK_ENV, "") if not isinstance(export, str | Path) else ""
        table.link = f"{prefix}{slug}"
    return table


#: Labels and kinds of the columns the report pages' tables carry (API names → what people read).
COLUMNS: dict[str, tuple[str, str, str]] = {
    "metric": ("Показатель", "Metric", "text"), "value": ("Значение", "Value", "text"),
    "month": ("Месяц", "Month", "month"), "week": ("Неделя", "Week", "date"), "edition": ("Редакция", "Edition", "text"),
    "sku": ("Товар", "Product", "text"), "group": ("Группа", "Group", "text"), "rate": ("Показатель", "Rate", "text"),
    "months": ("Месяцев", "Months", "int"), "licenses": ("Лицензий", "Licenses", "int"),
    "followed": ("Под наблюдением", "Followed", "int"), "churned": ("Ушли", "Churned", "int"),
    "retention": ("Удержание", "Retention", "pct"),
    "bookings_rub": ("Поступления", "Bookings", "text"), "recognised_rub": ("Признано", "Recognised", "text"),
    "breakage_rub": ("Сгорело", "Breakage", "text"), "deferred_rub": ("Отложено", "Deferred", "text"),
    "ends": ("Окончаний", "Term ends", "int"), "ends_from": ("Окончания с", "Ends from", "date"),
    "ends_to": ("Окончания по", "Ends to", "date"),
    "known_at_deadline": ("Срок продления прошёл", "Past the deadline", "int"),
    "renewed_by_deadline": ("Продлены к сроку", "Renewed by the deadline", "int"),
    "on_time_rate": ("Продление вовремя", "On-time rate", "pct"),
    "continued_by_deadline": ("Продолжены к сроку", "Continued by the deadline", "int"),
    "on_time_continuation_rate": ("Продолжение вовремя", "On-time continuation", "pct"),
    "in_grace": ("В льготный период", "In grace", "int"), "grace_share": ("Доля льготного периода", "Grace share", "pct"),
    "deadline_known_to": ("Известно по", "Known to", "date"),
    "known_at_horizon": ("Прошёл год после окончания", "Past the horizon", "int"),
    "continued": ("Продолжены", "Continued", "int"), "continued_rate": ("Доля продолживших", "Continued rate", "pct"),
    "horizon_known_to": ("Известно по (горизонт)", "Horizon known to", "date"),
    "known_on": ("Известно на", "Known on", "text"), "from": ("С", "From", "date"), "to": ("По", "To", "date"),
    "count": ("Число", "Count", "int"), "known": ("Решённых", "Decided", "int"), "prior_from": ("Год назад с", "Year before from", "date"),
    "prior_to": ("Год назад по", "Year before to", "date"), "prior_count": ("Год назад число", "Year before count", "int"),
    "prior_known": ("Год назад решённых", "Year before decided", "int"), "prior_value": ("Год назад", "Year before", "pct"),
    "change": ("Изменение", "Change", "pp"),
    "uncovered_days": ("Дней без подписки", "Uncovered days", "int"),
    "uncovered_per_renewal": ("Дней без подписки на продление", "Uncovered days per renewal", "float"),
    "feature_id": ("Функция", "Feature", "text"), "name": ("Название", "Name", "text"),
    "released_on": ("Выпущена", "Released on", "date"), "licenses_uncovered": ("Лицензий без подписки", "Licenses uncovered", "int"),
    "stage": ("Этап", "Stage", "text"), "orders": ("Заказов", "Orders", "int"),
    "median_days": ("Медиана, дней", "Median, days", "float"), "p90_days": ("90-й процентиль, дней", "90th percentile, days", "float"),
    "mean_days": ("Среднее, дней", "Mean, days", "float"),
    "upgrades": ("Апгрейдов", "Upgrades", "int"), "upgrade_payments_rub": ("Оплаты апгрейдов", "Upgrade payments", "text"),
    "lapsed_renewals": ("Сгоревших продлений", "Lapsed renewals", "int"), "converted": ("Получили апгрейд", "Upgraded", "int"),
    "conversion_rate": ("Конверсия", "Conversion", "pct"), "expiries": ("Окончаний", "Expiries", "int"),
    "expected_cash_rub": ("Ожидаемые поступления", "Expected cash", "text"), "lapsed": ("Сгорело", "Lapsed", "int"),
    "lapsed_from": ("Сгорели с", "Lapsed from", "date"), "lapsed_to": ("Сгорели по", "Lapsed to", "date"),
    "known_to": ("Известно по", "Known to", "date"), "upgrade_window_days": ("Окно апгрейда, дней", "Upgrade window, days", "days"),
    # the what-if's scenario table (means and 5–95 % bands over the Monte Carlo runs, over the horizon)
    "scenario": ("Сценарий", "Scenario", "text"), "description": ("Что меняется", "What changes", "text"),
    "bookings_mean": ("Поступления, среднее", "Bookings, mean", "text"),
    "bookings_band": ("Поступления: 5–95 % прогонов", "Bookings: 5–95% of runs", "text"),
    "bookings_diff_mean": ("Разница с базой", "Difference to baseline", "text"),
    "bookings_diff_band": ("Разница: 5–95 % прогонов", "Difference: 5–95% of runs", "text"),
    "active_mean": ("Активных в конце, среднее", "Active at the end, mean", "int"),
    "renewal_rate_mean": ("Доля продлений", "Renewal rate", "pct"),
    "grace_renewal_mean": ("Продлений в льготный период, среднее", "Grace renewals, mean", "int"),
    "upgrade_mean": ("Апгрейдов, среднее", "Upgrades, mean", "int"),
    "lapsed_mean": ("Сгоревших кодов продления, среднее", "Lapsed renewal codes, mean", "int"),
    # the what-if's break-even and price-test tables
    "pays_off_if": ("Окупается, если эластичность", "Pays off if the elasticity is", "text"),
    "break_even": ("Эластичность безубыточности", "Break-even elasticity", "float"),
    "low": ("90 %: от", "90%: from", "float"), "high": ("90 %: до", "90%: to", "float"),
    "elasticity": ("Эластичность", "Elasticity", "float"),
    "renewal_price_rub": ("Цена продления, ₽", "Renewal price, ₽", "int"),
    "central_elasticity": ("Центральная эластичность", "Central elasticity", "float"),
    "decisions_ab": ("Решений для A/B-теста", "Decisions for an A/B test", "int"),
    "per_group": ("В каждой группе", "Per group", "int"),
    "months_at_observed_rate": ("Месяцев при текущем потоке", "Months at the observed rate", "float"),
    "decisions_all_customers": ("Решений, если менять цену всем", "Decisions, all customers", "int"),
    "term_ends_per_month": ("Окончаний в месяц", "Term ends a month", "float"),
    # the forecast's backtest summary and retention fits
    "model": ("Модель", "Model", "text"), "mape": ("Средняя ошибка (MAPE)", "Mean error (MAPE)", "pct"),
    "coverage": ("Доля месяцев в полосе 5–95 %", "Share of months inside the 5–95% band", "pct"),
    "alpha": ("α (sBG)", "α (sBG)", "float"), "alpha_se": ("α: станд. ошибка", "α: std. error", "float"),
    "beta": ("β (sBG)", "β (sBG)", "float"), "beta_se": ("β: станд. ошибка", "β: std. error", "float"),
    "leak_alpha": ("α (sBG с утечкой)", "α (sBG with a leak)", "float"),
    "leak_beta": ("β (sBG с утечкой)", "β (sBG with a leak)", "float"),
    "leak": ("Утечка: уходят при любой склонности", "Leak: leave whatever their propensity", "pct"),
    "leak_se": ("Утечка: станд. ошибка", "Leak: std. error", "pct"),
    "leak_weight": ("Вес модели с утечкой (Акаике)", "Weight of the leak model (Akaike)", "pct"),
    "new_license_continuation": ("Продление новой лицензии", "New license renews", "pct"),
    "pooled_continuation": ("Продление, одна ставка", "Renews, one rate", "pct"),
    "decided_term_ends": ("Решённых окончаний", "Decided term ends", "int"),
}

#: Values of the metrics' ``rate`` and ``known_on`` columns as people read them.
VALUES: dict[str, dict[str, str]] = {
    "ru": {"on_time_rate": "Продлили к дедлайну", "on_time_continuation_rate": "Продолжили к дедлайну (любым способом)",
           "grace_share": "Продлили в льготный период", "continued_rate": "Продолжили за год (любым способом)",
           "renewal_rate": "Продлили (всего)", "deadline": "на дедлайн", "horizon": "через год",
           "above": "выше порога", "below": "ниже порога", "all": "Все",
           "active": "Активные лицензии", "term_ends": "Окончания сроков", "continued": "Продолжения",
           "new_licenses": "Новые лицензии", "bookings_rub": "Поступления", "recognised_rub": "Признанная выручка",
           "sbg": "модель (история каждой лицензии)", "pooled": "базовая (одна ставка)"},
    "en": {"on_time_rate": "Renewed by the deadline", "on_time_continuation_rate": "Continued by the deadline (any way)",
           "grace_share": "Renewed in grace", "continued_rate": "Continued within a year (any way)",
           "renewal_rate": "Renewed (any way)", "deadline": "at the deadline", "horizon": "after a year",
           "above": "above the threshold", "below": "below the threshold", "all": "All",
           "active": "Active licenses", "term_ends": "Term ends", "continued": "Continuations",
           "new_licenses": "New licenses", "bookings_rub": "Bookings", "recognised_rub": "Recognised revenue",
           "sbg": "model (each license's history)", "pooled": "baseline (one rate)"},
}


def auto_cols(df: pd.DataFrame) -> list[Col]:
    """A :class:`Col` for each column of ``df``: the label and kind of :data:`COLUMNS`, else one
    read from the name and dtype (``*_kop`` money, ``*_rate``/``*_share`` shares, dates, counts).

    >>> [c.en for c in auto_cols(pd.DataFrame({"ends": [1], "on_time_rate": [0.5], "fee_kop": [100]}))]
    ['Term ends', 'On-time rate', 'Fee']
    """
    cols = []
    for name in df.columns:
        key = str(name)
        if key in COLUMNS:
            ru, en, kind = COLUMNS[key]
            if kind == "text" and pd.api.types.is_float_dtype(df[name].dtype):  # "value": a rate, not a preformatted text
                kind = "pct" if key == "value" else "float"
            elif kind == "text" and key.endswith("_rub"):  # money formatted by the page: right-aligned, no total
                kind = "rub"
        else:
            base = key.removesuffix("_kop")
            ru = en = base.replace("_", " ").capitalize()
            dtype = df[name].dtype
            kind = ("rub" if key.endswith("_kop") else "pct" if key.endswith(("_rate", "_share"))
                    else "date" if pd.api.types.is_datetime64_any_dtype(dtype)
                    else "int" if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
                    else "float" if pd.api.types.is_float_dtype(dtype) else "text")
        total = "sum" if kind == "rub" and pd.api.types.is_numeric_dtype(df[name].dtype) else None
        cols.append(Col(key, ru, en, kind, total))
    return cols
