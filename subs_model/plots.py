"""Figure builders: one per metric, tidy frames in, ``plotly.graph_objects.Figure`` out.

No metric maths, no I/O, no ``.show()`` here. One template and one label table make
every chart look alike; ``lang="ru"`` (default) or ``"en"`` picks the labels. Money
arrives in integer kopecks (``*_kop`` columns) and is shown in rubles as «3 200 ₽»
through :mod:`subs_model.money`, the one place that converts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from .labels import labels
from .money import rub, rubles

__all__ = [
    "LABELS",
    "fig_active_licenses",
    "fig_competing_risks",
    "fig_expiry_calendar",
    "fig_forgotten_renewals",
    "fig_grace_usage",
    "fig_lead_times",
    "fig_outcomes",
    "fig_renewal_rates",
    "fig_renewal_timing",
    "fig_retention",
    "fig_revenue",
    "fig_scenario_fan",
    "fig_tornado",
    "fig_upgrade_revenue",
    "rub",
    "safe_text",
]

PALETTE = ["#2E5EAA", "#5AA9E6", "#7FC8A9", "#F4A259", "#E76F51", "#BC4B51", "#8D99AE", "#C9ADA7"]
#: Order stages top to bottom, as an order runs (:data:`subs_model.metrics.timing.STAGE_PAIRS`).
_STAGE_ORDER = ("request_to_invoice", "invoice_to_paid", "paid_to_ticket", "to_code", "code_to_activation")
_SKU_COLORS = {"subscription": PALETTE[0], "renewal": PALETTE[1], "upgrade": PALETTE[3]}
OUTCOME_COLORS = {
    "early_renewal": "#2E5EAA", "grace_renewal": "#5AA9E6", "early_subscription": "#7FC8A9",
    "grace_subscription": "#A8DADC", "upgrade": "#F4A259", "late_subscription": "#E9C46A",
    "churned": "#BC4B51", "open": "#C8C8C8",
}

pio.templates["subs_model"] = go.layout.Template(
    layout=go.Layout(
        font={"family": "Inter, Segoe UI, Roboto, Arial, sans-serif", "size": 13, "color": "#222"},
        colorway=PALETTE,
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis={"gridcolor": "#EEE", "zeroline": False, "automargin": True},
        yaxis={"gridcolor": "#EEE", "zeroline": False, "automargin": True},
        # Below everything, in container coordinates: the legend pushes the plot up as it wraps, so it
        # never runs over the x-axis title at notebook width (a paper-coordinate y did; tests/test_lab.py).
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0, "xanchor": "left"},
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
        separators=", ",
        hoverlabel={"namelength": -1},
    )
)

_CHART_LABELS: Mapping[str, Mapping[str, str]] = {
    "ru": {
        "lapsed_pending": "Не продлили в срок, дальше ещё неизвестно",
        "outcomes_title": "Чем закончился срок подписки", "expiry_month": "Месяц окончания", "expiries": "Окончаний",
        "timing_title": "Когда активируют продолжение относительно окончания", "offset": "Дней от окончания (0 = первый день без подписки)",
        "count": "Число", "grace_window": "Льготный период",
        "rates_title": "Доля продлений по месяцу окончания", "renewal_rate": "Продлили (всего)",
        "on_time_rate": "Продлили к дедлайну", "grace_share": "Продлили в льготный период",
        "continued_rate": "Продолжили за год (любым способом)", "ends_in_month": "окончаний в месяце",
        "upgrade_payments": "Оплаты апгрейдов (по месяцу оплаты)", "breakage": "Сгоревшие оплаты продлений",
        "pooled": "Все лицензии (Каплан–Мейер)",
        "grace_renewal_rate": "Продлили в льготный период", "incomplete": "месяц ещё не завершён", "share": "Доля",
        "grace_title": "В какой день льготного периода продлевают", "grace_day": "День льготного периода",
        "forgotten_title": "Забытые продления по месяцу сгорания: что было дальше",
        "lapse_month": "Месяц сгорания кода", "at_stake": "Оплата продлений, ₽", "fate": "Исход", "lapsed_codes": "Сгоревших кодов", "upgrade_title": "Апгрейды: выручка и доля конверсии", "month": "Месяц", "revenue": "Выручка",
        "conversion_rate": "Апгрейд в окне после сгорания (по месяцу сгорания)",
        "revenue_title": "Выручка: поступления, признанная, сгоревшая, отложенная", "bookings": "Поступления (по дате акта)",
        "recognised": "Признанная выручка", "deferred": "Отложенная выручка (остаток)",
        "per_month_rub": "За месяц, ₽", "balance_rub": "Остаток, ₽",
        "retention_title": "Удержание когорт (Каплан–Мейер)", "months_since_start": "Месяцев с первой подписки",
        "retention": "Не ушли", "cohort": "Когорта",
        "risks_title": "Как продолжают после окончания (накопленная вероятность)", "cumulative_incidence": "Накопленная вероятность",
        "active_title": "Активные лицензии", "day": "Дата", "active": "Активных лицензий", "lead_title": "Сроки этапов заказа, часы: медиана, 25–75 % и 10–90 % заказов", "stage": "Этап",
        "median_days": "Дней (медиана)", "hours": "Часов от начала этапа",
        "lead_hover": "%{y}: медиана %{customdata[2]:.1f} ч; 25–75 %: %{customdata[1]:.1f}–%{customdata[3]:.1f} ч; "
                      "10–90 %: %{customdata[0]:.1f}–%{customdata[4]:.1f} ч (заказов: %{customdata[5]:,})",
        "request_to_invoice": "Заявка → счёт", "invoice_to_paid": "Счёт → оплата", "paid_to_ticket": "Оплата → заявка в ТП",
        "to_code": "Оплата (апгрейд: заявка в ТП) → код", "code_to_activation": "Код → активация",
        "calendar_title": "Ближайшие окончания и ожидаемые поступления", "week": "Неделя", "expected_cash": "Ожидаемые поступления",
        "expected_rub": "Ожидается, ₽", "paid_rub": "Оплачено, ₽",
        "no_data": "Нет данных",
    },
    "en": {
        "lapsed_pending": "Not renewed on time, rest not known yet", "outcomes_title": "How subscription terms ended", "expiry_month": "Month of expiry", "expiries": "Expiries",
        "timing_title": "When customers continue, relative to the end", "offset": "Days from the end (0 = first day without coverage)",
        "count": "Count", "grace_window": "Grace window",
        "rates_title": "Renewal rate by month of expiry", "renewal_rate": "Renewed (any way)",
        "on_time_rate": "Renewed by the deadline", "grace_share": "Renewed in grace",
        "continued_rate": "Continued within a year (any way)", "ends_in_month": "ends in the month",
        "upgrade_payments": "Upgrade payments (by paid month)", "breakage": "Lapsed renewal payments (breakage)",
        "pooled": "All licenses (Kaplan–Meier)",
        "grace_renewal_rate": "Renewed in grace", "incomplete": "month not yet decided", "share": "Share",
        "grace_title": "Which grace day customers renew on", "grace_day": "Grace day",
        "forgotten_title": "Forgotten renewals by month of the lapse: what happened next",
        "lapse_month": "Month the code lapsed", "at_stake": "Renewal payments, ₽", "fate": "Fate", "lapsed_codes": "Lapsed codes", "upgrade_title": "Upgrades: revenue and conversion", "month": "Month", "revenue": "Revenue",
        "conversion_rate": "Upgraded within the window (by lapse month)",
        "revenue_title": "Revenue: bookings, recognised, breakage, deferred", "bookings": "Bookings (by act date)",
        "recognised": "Recognised revenue", "deferred": "Deferred revenue (balance)",
        "per_month_rub": "Per month, ₽", "balance_rub": "Balance, ₽",
        "retention_title": "Cohort retention (Kaplan–Meier)", "months_since_start": "Months since first subscription",
        "retention": "Not churned", "cohort": "Cohort",
        "risks_title": "How expiries are followed up (cumulative incidence)", "cumulative_incidence": "Cumulative incidence",
        "active_title": "Active licenses", "day": "Date", "active": "Active licenses", "lead_title": "Order stage lead times, hours: median, 25–75 % and 10–90 % of orders", "stage": "Stage",
        "median_days": "Days (median)", "hours": "Hours from the start of the stage",
        "lead_hover": "%{y}: median %{customdata[2]:.1f} h; 25–75%: %{customdata[1]:.1f}–%{customdata[3]:.1f} h; "
                      "10–90%: %{customdata[0]:.1f}–%{customdata[4]:.1f} h (orders: %{customdata[5]:,})",
        "request_to_invoice": "Request → invoice", "invoice_to_paid": "Invoice → paid", "paid_to_ticket": "Paid → helpdesk ticket",
        "to_code": "Paid (upgrade: ticket) → code", "code_to_activation": "Code → activation",
        "calendar_title": "Upcoming expiries and expected cash", "week": "Week", "expected_cash": "Expected cash",
        "expected_rub": "Expected, ₽", "paid_rub": "Paid, ₽",
        "no_data": "No data",
    },
}

#: Every label a chart shows: the enum values' (:func:`subs_model.labels.labels`) and the charts' own.
LABELS: Mapping[str, Mapping[str, str]] = {lang: {**labels(lang), **chart} for lang, chart in _CHART_LABELS.items()}


def _t(lang: str) -> Mapping[str, str]:
    if lang not in LABELS:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    return LABELS[lang]


# ASCII punctuation that Markdown (and MathJax's `$`) may read as syntax; `&`, `<`, `>` become entities instead.
_MD_PUNCT = re.compile(r"([!-%'-/:;=?@\[-`{-~])")


def safe_text(value: Any, *, markdown: bool = False) -> str:
    """Text from data or configuration (a feature or scenario name) made inert for a report.

    ``&``, ``<`` and ``>`` become HTML entities, so neither a browser nor plotly (which
    renders a subset of HTML tags in labels) turns the value into markup; both show the
    entities as the original characters. With ``markdown=True`` (text placed in a Markdown
    note) every other ASCII punctuation character is backslash-escaped and line breaks
    become spaces, so the value cannot open a link, an emphasis, a heading or a formula.
    Build notes from escaped values; never escape a finished note (that would break its
    intended markup).

    >>> safe_text("<img src=x onerror=alert(1)>")
    '&lt;img src=x onerror=alert(1)&gt;'
    >>> print(safe_text("[a](javascript:x) *b*", markdown=True))
    \\[a\\]\\(javascript\\:x\\) \\*b\\*
    """
    text = str(value)
    if markdown:
        text = _MD_PUNCT.sub(r"\\\1", " ".join(text.splitlines()))
    return html.escape(text, quote=False)


def _rub(kopecks: Any, lang: str) -> str:
    """Kopecks as rubles in ``lang`` for a hover: «3 200 ₽», "3,200.50 ₽" (kopecks shown when there are any)."""
    from .notes import rub as rub_lang

    return rub_lang(kopecks, lang, 2 if int(round(kopecks)) % 100 else 0)


def _fig(title: str, lang: str) -> go.Figure:
    fig = go.Figure()
    # number formats per language: ru «1 234,5», en "1,234.5" (the template's default is Russian)
    fig.update_layout(template="subs_model", title={"text": title, "x": 0.01}, separators=", " if lang == "ru" else ".,")
    return fig


def _empty(fig: go.Figure, lang: str) -> go.Figure:
    fig.add_annotation(text=_t(lang)["no_data"], showarrow=False, font={"size": 16, "color": "#888"},
                       xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def _money_axis(fig: go.Figure, axis: str = "yaxis", title: str | None = None) -> None:
    # whole rubles at plotly's automatic (round) tick steps: «2 000 000 ₽», never «6 614 ₽»
    fig.update_layout({axis: {"ticksuffix": " ₽", "tickformat": ",.0f", **({"title": {"text": title}} if title else {})}})


def _panels(title: str, lang: str, heights: tuple[float, ...]) -> go.Figure:
    """Panels stacked over one shared x axis, for series whose scales or units differ (×5 or more, or a
    share beside money): each gets its own titled y axis instead of an overlaid right axis."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=len(heights), cols=1, shared_xaxes=True, vertical_spacing=0.07, row_heights=list(heights))
    fig.update_layout(template="subs_model", title={"text": title, "x": 0.01}, separators=", " if lang == "ru" else ".,",
                      height=420 + 180 * (len(heights) - 1))
    return fig


def fig_outcomes(rates: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Stacked bars: term ends by month and outcome. ``rates``: month, outcome, count."""
    t = _t(lang)
    fig = _fig(t["outcomes_title"], lang)
    if rates.empty:
        return _empty(fig, lang)
    for outcome, g in rates.groupby("outcome", observed=True, sort=False):
        fig.add_bar(x=g["month"], y=g["count"], name=t[str(outcome)], marker_color=OUTCOME_COLORS.get(str(outcome)))
    fig.update_layout(barmode="stack", xaxis_title=t["expiry_month"], yaxis_title=t["expiries"])
    return fig


def fig_renewal_timing(offsets: pd.DataFrame, grace_days: int, lang: str = "ru") -> go.Figure:
    """Bars by offset day and outcome, the grace window shaded. ``offsets``: offset_days, outcome, count."""
    t = _t(lang)
    fig = _fig(t["timing_title"], lang)
    if offsets.empty:
        return _empty(fig, lang)
    fig.add_vrect(x0=-0.5, x1=grace_days - 0.5, fillcolor="#5AA9E6", opacity=0.12, line_width=0,
                  annotation_text=t["grace_window"], annotation_position="top left")
    g = offsets.groupby(["offset_days", "outcome"], observed=True)["count"].sum().reset_index()
    for outcome, gg in g.groupby("outcome", observed=True, sort=False):
        fig.add_bar(x=gg["offset_days"], y=gg["count"], name=t[str(outcome)], marker_color=OUTCOME_COLORS.get(str(outcome)))
    fig.update_layout(barmode="stack", bargap=0.05, xaxis_title=t["offset"], yaxis_title=t["count"])
    return fig


def fig_renewal_rates(rates: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """On-time rate (known at each end's deadline) and continued rate (known at the churn horizon) by month
    of the end, from :func:`subs_model.metrics.renewal_rates` ``by="month"``. A point is drawn only where its
    rate has a denominator; a month still partly undecided for a rate is drawn hollow. The hover gives the
    counts."""
    t = _t(lang)
    fig = _fig(t["rates_title"], lang)
    if rates.empty:
        return _empty(fig, lang)
    lines = (("on_time_rate", "renewed_by_deadline", "known_at_deadline", PALETTE[0]),
             ("grace_share", "in_grace", "known_at_deadline", PALETTE[3]),
             ("continued_rate", "continued", "known_at_horizon", PALETTE[2]))
    for col, num, den, color in lines:
        r = rates[rates[den] > 0]
        complete = (r[den] == r["ends"]).to_numpy()
        fig.add_scatter(x=r["month"], y=r[col], mode="lines+markers", name=t[col], line_color=color,
                        marker={"symbol": np.where(complete, "circle", "circle-open"), "size": 7},
                        customdata=np.c_[r[num], r[den], r["ends"]],
                        hovertemplate="%{x|%Y-%m}: %{y:.1%} (%{customdata[0]} / %{customdata[1]}; "
                                      + t["ends_in_month"] + " %{customdata[2]})<extra></extra>")
    fig.update_layout(yaxis={"tickformat": ".0%", "range": [0, 1], "title": t["share"]}, xaxis_title=t["expiry_month"])
    return fig


def fig_grace_usage(by_day: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Continuations by grace day (0 = the first day without coverage)."""
    t = _t(lang)
    fig = _fig(t["grace_title"], lang)
    if by_day.empty:
        return _empty(fig, lang)
    for outcome, g in by_day.groupby("outcome", observed=True, sort=False):
        fig.add_bar(x=g["offset_days"], y=g["count"], name=t[str(outcome)], marker_color=OUTCOME_COLORS.get(str(outcome)),
                    customdata=g["share"], hovertemplate="%{x}: %{y} (%{customdata:.1%})<extra></extra>")
    fig.update_layout(barmode="stack", xaxis_title=t["grace_day"], yaxis_title=t["count"], xaxis={"dtick": 1})
    return fig


_FATE_COLORS = {"upgraded": "#F4A259", "replaced_by_subscription": "#7FC8A9", "churned": "#BC4B51", "open": "#C8C8C8"}


def fig_forgotten_renewals(monthly: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Lapsed renewal codes by month of the lapse, stacked by fate: the count (top panel) and the renewal
    payments they carried, ₽ (bottom panel). ``monthly``: month, fate, count, at_stake_kop
    (:func:`subs_model.insights.forgotten_by_month`)."""
    t = _t(lang)
    if monthly.empty:
        return _empty(_fig(t["forgotten_title"], lang), lang)
    fig = _panels(t["forgotten_title"], lang, (0.5, 0.5))
    for fate, g in monthly.groupby("fate", observed=True, sort=False):
        name, color = t[str(fate)], _FATE_COLORS.get(str(fate))
        money = [_rub(v, lang) for v in g["at_stake_kop"]]
        fig.add_bar(x=g["month"], y=g["count"], name=name, marker_color=color, legendgroup=str(fate),
                    customdata=money, hovertemplate="%{x|%Y-%m}: %{y} (%{customdata})<extra>" + name + "</extra>",
                    row=1, col=1)
        fig.add_bar(x=g["month"], y=rubles(g["at_stake_kop"]), name=name, marker_color=color, legendgroup=str(fate),
                    showlegend=False, customdata=money, hovertemplate="%{x|%Y-%m}: %{customdata}<extra>" + name + "</extra>",
                    row=2, col=1)
    fig.update_layout(barmode="stack", bargap=0.1)
    fig.update_yaxes(title_text=t["lapsed_codes"], row=1, col=1)
    _money_axis(fig, "yaxis2", t["at_stake"])
    fig.update_xaxes(title_text=t["lapse_month"], row=2, col=1)
    return fig


def fig_upgrade_revenue(monthly: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Two panels over one month axis: upgrade payments by paid month (bars, ₽, top) and the conversion of
    lapsed renewals within the window by lapse month (line, share, bottom; months whose window has not closed
    are left out)."""
    t = _t(lang)
    if monthly.empty:
        return _empty(_fig(t["upgrade_title"], lang), lang)
    fig = _panels(t["upgrade_title"], lang, (0.55, 0.45))
    fig.add_bar(x=monthly["month"], y=rubles(monthly["upgrade_payments_kop"]), name=t["upgrade_payments"],
                marker_color=PALETTE[3], customdata=[_rub(v, lang) for v in monthly["upgrade_payments_kop"]],
                hovertemplate="%{x|%Y-%m}: %{customdata}<extra></extra>", row=1, col=1)
    known = monthly[monthly["known"] > 0]
    fig.add_scatter(x=known["month"], y=known["conversion_rate"], name=t["conversion_rate"],
                    mode="lines+markers", line_color=PALETTE[0], customdata=np.c_[known["converted"], known["known"]],
                    hovertemplate="%{x|%Y-%m}: %{y:.1%} (%{customdata[0]} / %{customdata[1]})<extra></extra>", row=2, col=1)
    _money_axis(fig, "yaxis", t["paid_rub"])
    fig.update_yaxes(title_text=t["share"], tickformat=".0%", range=[0, 1], dtick=0.25, row=2, col=1)
    fig.update_xaxes(title_text=t["month"], row=2, col=1)
    return fig


def fig_revenue(monthly: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Two panels over one month axis, ₽: bookings, recognised revenue and breakage by month (bars, top) and the
    deferred balance at each month end (line, bottom) — the balance is several times a month's money and would
    flatten the bars on a shared axis. Months before the first money are left out."""
    t = _t(lang)
    if monthly.empty:
        return _empty(_fig(t["revenue_title"], lang), lang)
    cols = ["bookings_kop", "recognised_kop", "breakage_kop", "deferred_kop"]
    m = monthly.groupby("month")[cols].sum().reset_index()
    money = m[cols].ne(0).any(axis=1).to_numpy()
    m = m.iloc[int(money.argmax()):] if money.any() else m
    fig = _panels(t["revenue_title"], lang, (0.6, 0.4))
    for col, color in (("bookings_kop", PALETTE[0]), ("recognised_kop", PALETTE[2]), ("breakage_kop", PALETTE[5])):
        fig.add_bar(x=m["month"], y=rubles(m[col]), name=t[col.removesuffix("_kop")], marker_color=color,
                    customdata=[_rub(v, lang) for v in m[col]], hovertemplate="%{x|%Y-%m}: %{customdata}<extra></extra>",
                    row=1, col=1)
    fig.add_scatter(x=m["month"], y=rubles(m["deferred_kop"]), name=t["deferred"], mode="lines", line_color=PALETTE[4],
                    customdata=[_rub(v, lang) for v in m["deferred_kop"]], hovertemplate="%{x|%Y-%m}: %{customdata}<extra></extra>",
                    row=2, col=1)
    fig.update_layout(barmode="group")
    _money_axis(fig, "yaxis", t["per_month_rub"])
    _money_axis(fig, "yaxis2", t["balance_rub"])
    fig.update_xaxes(title_text=t["month"], row=2, col=1)
    return fig


def fig_retention(retention: pd.DataFrame, lang: str = "ru", pooled: pd.DataFrame | None = None) -> go.Figure:
    """Kaplan–Meier retention: one line per cohort (``cohort_retention``, e.g. ``period="year"``), each stopping
    at its follow-up, and the pooled curve over all licenses (``pooled_retention``) in bold. Steps at whole
    months: churn happens at term ends."""
    t = _t(lang)
    fig = _fig(t["retention_title"], lang)
    if retention.empty and (pooled is None or pooled.empty):
        return _empty(fig, lang)
    r = retention[retention["km_retention"].notna()]
    for cohort, g in r.groupby("cohort"):
        label = f"{t['cohort']} {pd.Timestamp(cohort).year}" if (r["cohort"].dt.month == 1).all() else f"{t['cohort']} {pd.Timestamp(cohort):%Y-%m}"
        fig.add_scatter(x=g["months"], y=g["km_retention"], mode="lines", name=label, line_shape="hv",
                        customdata=g["at_risk"], hovertemplate="%{x}: %{y:.1%} (n = %{customdata})<extra></extra>")
    if pooled is not None and not pooled.empty:
        fig.add_scatter(x=pooled["months"], y=pooled["retention"], mode="lines", name=t["pooled"], line_shape="hv",
                        line={"color": "#222", "width": 3}, customdata=pooled["followed"],
                        hovertemplate="%{x}: %{y:.1%} (n = %{customdata})<extra></extra>")
    fig.update_layout(yaxis={"tickformat": ".0%", "range": [0, 1.02], "title": t["retention"]}, xaxis_title=t["months_since_start"])
    return fig


def fig_competing_risks(cif: pd.DataFrame, grace_days: int, lang: str = "ru") -> go.Figure:
    """Cumulative incidence of renewal / subscription / upgrade by day relative to the end."""
    t = _t(lang)
    fig = _fig(t["risks_title"], lang)
    if cif.empty:
        return _empty(fig, lang)
    fig.add_vrect(x0=0, x1=grace_days, fillcolor="#5AA9E6", opacity=0.12, line_width=0)
    colors = {"renewal": PALETTE[0], "subscription": PALETTE[2], "upgrade": PALETTE[3]}
    for event, g in cif.groupby("event", sort=False):
        fig.add_scatter(x=g["day"], y=g["cumulative_incidence"], mode="lines", name=t[str(event)], line_color=colors.get(str(event)),
                        line_shape="hv")
    fig.update_layout(yaxis={"tickformat": ".0%", "title": t["cumulative_incidence"]}, xaxis_title=t["offset"])
    return fig


def fig_active_licenses(active: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Active licenses over time, stacked by edition."""
    t = _t(lang)
    fig = _fig(t["active_title"], lang)
    if active.empty:
        return _empty(fig, lang)
    for edition, g in active.groupby("edition", sort=False):
        fig.add_scatter(x=g["day"], y=g["active"], name=t.get(str(edition), safe_text(edition)), stackgroup="one", mode="lines")
    fig.update_layout(xaxis_title=t["day"], yaxis_title=t["active"])
    return fig


def fig_lead_times(stages: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Lead time of each order stage by SKU, in hours, as boxes from :func:`subs_model.metrics.lead_times`:
    the box spans the 25th–75th percentile of orders with the median inside, the whiskers reach the 10th and
    90th (the tail that a median hides). Stages are rows, so their names are never cut."""
    t = _t(lang)
    fig = _fig(t["lead_title"], lang)
    if stages.empty:
        return _empty(fig, lang)
    order = [name for name in _STAGE_ORDER if name in set(stages["stage"])]
    hours = {q: stages[f"{q}_days"].to_numpy() * 24 for q in ("p10", "p25", "median", "p75", "p90")}
    for sku, idx in stages.groupby("sku", sort=False).indices.items():
        g = stages.iloc[idx]
        h = {q: v[idx] for q, v in hours.items()}
        fig.add_box(y=[t[s] for s in g["stage"]], lowerfence=h["p10"], q1=h["p25"], median=h["median"], q3=h["p75"],
                    upperfence=h["p90"], orientation="h", name=t[str(sku)], marker_color=_SKU_COLORS.get(str(sku)),
                    customdata=np.c_[h["p10"], h["p25"], h["median"], h["p75"], h["p90"], g["orders"]],
                    hovertemplate=t["lead_hover"] + "<extra></extra>")
    labels_in_order = [t[s] for s in order]
    fig.update_layout(boxmode="group", xaxis={"title": t["hours"], "rangemode": "tozero"},
                      yaxis={"title": {"text": t["stage"], "standoff": 14}, "categoryorder": "array", "categoryarray": labels_in_order[::-1]},
                      height=160 + 90 * len(order))
    return fig


def fig_expiry_calendar(calendar: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Two panels over one week axis: upcoming expiries by week (bars, top) and the cash to expect from them
    (bars, ₽, bottom)."""
    t = _t(lang)
    if calendar.empty:
        return _empty(_fig(t["calendar_title"], lang), lang)
    w = calendar.groupby("week")[["expiries", "expected_cash_kop"]].sum().reset_index()
    fig = _panels(t["calendar_title"], lang, (0.5, 0.5))
    fig.add_bar(x=w["week"], y=w["expiries"], name=t["expiries"], marker_color=PALETTE[1],
                hovertemplate="%{x|%Y-%m-%d}: %{y}<extra></extra>", row=1, col=1)
    fig.add_bar(x=w["week"], y=rubles(w["expected_cash_kop"]), name=t["expected_cash"], marker_color=PALETTE[0],
                customdata=[_rub(v, lang) for v in w["expected_cash_kop"]], hovertemplate="%{x|%Y-%m-%d}: %{customdata}<extra></extra>",
                row=2, col=1)
    fig.update_yaxes(title_text=t["expiries"], row=1, col=1)
    _money_axis(fig, "yaxis2", t["expected_rub"])
    fig.update_xaxes(title_text=t["week"], row=2, col=1)
    # weeks by their Monday as digits: plotly's own month names are English whatever the report language
    fig.update_xaxes(tickformat="%d.%m.%Y" if lang == "ru" else "%Y-%m-%d")
    return fig


WHATIF_LABELS = {
    "ru": {"fan_bookings": "Поступления по сценариям (среднее и 5–95 %)", "fan_active": "Активные лицензии по сценариям",
           "tornado": "Чувствительность: эффект на поступления за горизонт", "effect": "Изменение поступлений к базовому",
           "low": "меньше", "high": "больше"},
    "en": {"fan_bookings": "Bookings by scenario (mean and 5–95 %)", "fan_active": "Active licenses by scenario",
           "tornado": "Sensitivity: effect on bookings over the horizon", "effect": "Change in bookings vs baseline",
           "low": "lower", "high": "higher"},
}


def fig_scenario_fan(table: pd.DataFrame, metric: str, lang: str = "ru", names: Mapping[str, str] | None = None) -> go.Figure:
    """Mean line and 5–95 % band per scenario over the months of the horizon; ``names`` maps a
    scenario's key to what the legend shows (:func:`subs_model.scenario.titles`)."""
    t = _t(lang)
    title = WHATIF_LABELS[lang]["fan_bookings" if metric in ("bookings", "recognised") else "fan_active"]
    fig = _fig(title, lang)
    d = table[table["metric"] == metric]
    if d.empty:
        return _empty(fig, lang)
    money = metric in ("bookings", "recognised")  # kopecks: drawn in rubles
    scale = rubles if money else np.asarray

    for i, (key, g) in enumerate(d.groupby("scenario", sort=False)):
        name = (names or {}).get(key, key)
        color = PALETTE[i % len(PALETTE)]
        fig.add_scatter(x=g["month"], y=scale(g["p95"]), mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip",
                        legendgroup=safe_text(name))
        fig.add_scatter(x=g["month"], y=scale(g["p05"]), mode="lines", line={"width": 0}, fill="tonexty",
                        fillcolor=_rgba(color, 0.15), showlegend=False, hoverinfo="skip", legendgroup=safe_text(name))
        fig.add_scatter(x=g["month"], y=scale(g["mean"]), mode="lines", name=safe_text(name), line_color=color,
                        legendgroup=safe_text(name))
    fig.update_layout(xaxis_title=t["month"])
    if money:
        _money_axis(fig)
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _knob_value(v: Any, lang: str) -> str:
    """A knob's value as the report's language writes it: «3 600», «0,5» (ru); "3,600", "0.5" (en)."""
    from . import notes

    x = float(v)
    if x.is_integer():
        return notes.number(x, lang, 0)
    return notes.number(x, lang, 2).rstrip("0")


def fig_tornado(sens: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Horizontal bars: each knob's low and high value and their effect on bookings (share of baseline)."""
    w = WHATIF_LABELS[lang]
    fig = _fig(w["tornado"], lang)
    if sens.empty:
        return _empty(fig, lang)
    order = sens.groupby("knob")["bookings_diff_pct"].apply(lambda s: s.abs().max()).sort_values().index.tolist()
    for j, which in enumerate(("low", "high")):
        rows = sens.sort_values("value").groupby("knob").nth(0 if which == "low" else -1).set_index("knob").reindex(order)
        fig.add_bar(y=[safe_text(k) for k in order], x=rows["bookings_diff_pct"], orientation="h", name=w[which],
                    marker_color=PALETTE[4] if j == 0 else PALETTE[0],
                    text=[f"{safe_text(k)} = {_knob_value(v, lang)}" for k, v in zip(order, rows["value"], strict=True)],
                    hovertemplate="%{text}: %{x:.1%}<extra></extra>")
    fig.update_layout(barmode="overlay", xaxis={"tickformat": ".0%", "title": w["effect"]})
    return fig
