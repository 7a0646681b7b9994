"""Figure builders of the forecast report: tidy frames in, ``plotly.graph_objects.Figure`` out.

No forecast maths, no I/O, no ``.show()``. The look is the package's (the ``subs_model``
template of :mod:`subs_model.plots`); ``lang`` picks Russian (default) or English labels.
Money metrics (``*_rub``) arrive in rubles.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import notes
from .plots import PALETTE, safe_text

__all__ = ["fig_backtest", "fig_outlook", "fig_retention_by_tenure"]

LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "month": "Месяц", "mean": "прогноз (среднее)", "band": "90 % прогонов", "actual": "факт",
        "sbg": "модель (история каждой лицензии)", "pooled": "базовая (одна ставка)", "cutoff": "прогноз от",
        "tenure": "Окончание срока №", "retention": "Доля продливших", "no_data": "Нет данных",
        "active": "Активные лицензии на конец месяца", "bookings_rub": "Поступления, ₽ в месяц",
        "recognised_rub": "Признанная выручка, ₽ в месяц", "continued": "Продления в месяц",
        "term_ends": "Окончания сроков в месяц", "new_licenses": "Новые лицензии в месяц",
        "backtest": "Прогнозы из прошлого против факта: {metric}", "retention_title": "Продления по стажу (модель sBG)",
        "full": "полная", "basic": "базовая",
    },
    "en": {
        "month": "Month", "mean": "forecast (mean)", "band": "90 % of runs", "actual": "actual",
        "sbg": "model (each license's history)", "pooled": "baseline (one rate)", "cutoff": "forecast from",
        "tenure": "Term end no.", "retention": "Share renewing", "no_data": "No data",
        "active": "Active licenses at month end", "bookings_rub": "Bookings, ₽ a month",
        "recognised_rub": "Recognised revenue, ₽ a month", "continued": "Continuations a month",
        "term_ends": "Term ends a month", "new_licenses": "New licenses a month",
        "backtest": "Past forecasts against what happened: {metric}", "retention_title": "Renewal by tenure (sBG model)",
        "full": "full", "basic": "basic",
    },
}


def _t(lang: str) -> Mapping[str, str]:
    if lang not in LABELS:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    return LABELS[lang]


def _fig(title: str, lang: str, empty: bool) -> go.Figure:
    import subs_model.plots  # noqa: F401 - registers the "subs_model" template

    fig = go.Figure()
    fig.update_layout(template="subs_model", title={"text": safe_text(title), "x": 0.01}, separators=", " if lang == "ru" else ".,")
    if empty:
        fig.add_annotation(text=_t(lang)["no_data"], showarrow=False, font={"size": 16, "color": "#888"},
                           xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _band(fig: go.Figure, x: pd.Series, lo: pd.Series, hi: pd.Series, color: str, name: str, group: str) -> None:
    fig.add_scatter(x=x, y=hi, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip", legendgroup=group)
    fig.add_scatter(x=x, y=lo, mode="lines", line={"width": 0}, fill="tonexty", fillcolor=_rgba(color, 0.18),
                    name=name, legendgroup=group)


def fig_outlook(table: pd.DataFrame, metric: str = "active", lang: str = "ru") -> go.Figure:
    """The forecast of one metric: mean line and 5–95 % band by month (``Forecast.table``)."""
    t = _t(lang)
    d = table[table["metric"] == metric]
    fig = _fig(t.get(metric, metric), lang, d.empty)
    if d.empty:
        return fig
    _band(fig, d["month"], d["p05"], d["p95"], PALETTE[0], t["band"], "band")
    fig.add_scatter(x=d["month"], y=d["mean"], mode="lines+markers", name=t["mean"], line_color=PALETTE[0])
    fig.update_layout(xaxis_title=t["month"])
    if metric.endswith("_rub"):
        fig.update_layout(yaxis={"ticksuffix": " ₽", "tickformat": ",.0f"})
    return fig


def fig_backtest(table: pd.DataFrame, metric: str = "active", lang: str = "ru") -> go.Figure:
    """Forecasts from each past cutoff (the model with its band, the pooled baseline dashed) and the actuals
    (``Backtest.table``)."""
    t = _t(lang)
    d = table[table["metric"] == metric]
    fig = _fig(t["backtest"].format(metric=t.get(metric, metric)), lang, d.empty)
    if d.empty:
        return fig
    actual = d.drop_duplicates("month").sort_values("month")
    for i, (cutoff, g) in enumerate(d[d["model"] == "sbg"].groupby("cutoff", sort=True)):
        color = PALETTE[(i + 1) % len(PALETTE)]
        label = f"{t['cutoff']} {notes.date(cutoff, lang)}"
        _band(fig, g["month"], g["p05"], g["p95"], color, f"{label}: {t['band']}", label)
        fig.add_scatter(x=g["month"], y=g["forecast"], mode="lines", name=f"{label}: {t['sbg']}", line_color=color,
                        legendgroup=label)
        p = d[(d["model"] == "pooled") & (d["cutoff"] == cutoff)]
        fig.add_scatter(x=p["month"], y=p["forecast"], mode="lines", name=f"{label}: {t['pooled']}",
                        line={"color": color, "dash": "dash"}, legendgroup=label)
    fig.add_scatter(x=actual["month"], y=actual["actual"], mode="lines+markers", name=t["actual"],
                    line={"color": "#222", "width": 2})
    fig.update_layout(xaxis_title=t["month"])
    if metric.endswith("_rub"):
        fig.update_layout(yaxis={"ticksuffix": " ₽", "tickformat": ",.0f"})
    return fig


def fig_retention_by_tenure(curves: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Renewal rate at each term end by tenure: the fitted sBG curve per edition and the pooled
    rate beside it (``retention_curves`` of :mod:`subs_model.forecast`)."""
    t = _t(lang)
    fig = _fig(t["retention_title"], lang, curves.empty)
    if curves.empty:
        return fig
    for i, (ed, g) in enumerate(curves.groupby("edition", sort=False)):
        color = PALETTE[(2 * i) % len(PALETTE)]
        name = t.get(str(ed), safe_text(ed))
        s = g[g["model"] == "sbg"]
        fig.add_scatter(x=s["tenure"], y=s["retention"], mode="lines+markers", name=f"{name}: {t['sbg']}", line_color=color)
        p = g[g["model"] == "pooled"]
        fig.add_scatter(x=p["tenure"], y=p["retention"], mode="lines", name=f"{name}: {t['pooled']}",
                        line={"color": color, "dash": "dash"})
    fig.update_layout(xaxis_title=t["tenure"], yaxis={"title": t["retention"], "tickformat": ".0%",
                                                       "range": [float(np.clip(curves["retention"].min() - 0.05, 0, 1)), 1]})
    return fig
