"""Figures of the pricing what-if: the elasticity fan with the break-even points, each scenario's difference to the baseline.

Builders take the tidy tables of :func:`subs_model.whatif.run_scenarios` and
:func:`subs_model.break_even` and return a figure; no maths beyond unit conversion, no
display, no files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["DIFF_LABELS", "LABELS", "fig_elasticity_fan", "fig_scenario_diff"]

LABELS = {
    "ru": {"title": "Разница с базовым сценарием по эластичности: {objective}", "x": "Эластичность по цене продления",
           "y": "Разница с базовым, ₽", "y_active": "Разница с базовым, лицензий", "band": "5–95 % прогонов",
           "central": "центральная {e}", "break_even": "безубыточность «{name}»: {e}", "no_data": "Нет ценовых сценариев",
           "objectives": {"bookings": "поступления за горизонт", "recognised": "признанная выручка за горизонт",
                          "active": "активные лицензии на конец горизонта"}},
    "en": {"title": "Difference to the baseline by elasticity: {objective}", "x": "Renewal-price elasticity",
           "y": "Difference to the baseline, ₽", "y_active": "Difference to the baseline, licenses", "band": "5–95 % of runs",
           "central": "central {e}", "break_even": "break-even “{name}”: {e}", "no_data": "No price scenario",
           "objectives": {"bookings": "bookings over the horizon", "recognised": "recognised revenue over the horizon",
                          "active": "active licenses at the end of the horizon"}},
}
DIFF_LABELS = {
    "ru": {"diff_bookings": "Поступления: разница с базовым сценарием (среднее и 5–95 % парной разницы)",
           "diff_active": "Активные лицензии: разница с базовым сценарием (среднее и 5–95 % парной разницы)",
           "diff_axis_bookings": "Разница с базовым, ₽ в месяц", "diff_axis_active": "Разница с базовым, лицензий",
           "only_baseline": "Только базовый сценарий: сравнивать не с чем"},
    "en": {"diff_bookings": "Bookings: difference to the baseline (mean and 5–95 % of the paired difference)",
           "diff_active": "Active licenses: difference to the baseline (mean and 5–95 % of the paired difference)",
           "diff_axis_bookings": "Difference to baseline, ₽ a month", "diff_axis_active": "Difference to baseline, licenses",
           "only_baseline": "Only the baseline: nothing to compare"},
}
_COLORS = ["#2E5EAA", "#E76F51", "#7FC8A9", "#F4A259", "#BC4B51", "#5AA9E6", "#8D99AE", "#C9ADA7"]


def _fill(hex_color: str, alpha: float = 0.18) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[:2], 16)},{int(h[2:4], 16)},{int(h[4:], 16)},{alpha})"


def fig_elasticity_fan(by_elasticity: pd.DataFrame, objective: str = "bookings", lang: str = "ru", *,
                       break_even: pd.DataFrame | None = None, central: float | None = None) -> Any:
    """Each scenario's mean difference to the baseline (line) and its 5–95 % band over runs,
    against the renewal-price elasticity; the break-even points and the central elasticity marked.

    ``by_elasticity`` is :attr:`WhatIf.by_elasticity` (money in kopecks: shown in rubles).
    Scenarios that do not move with the elasticity are drawn too (flat lines).

    Examples
    --------
    >>> df = pd.DataFrame({"scenario": ["b", "b", "s", "s"], "elasticity": [0.0, 2.0, 0.0, 2.0],
    ...                    "bookings_diff_mean": [0, 0, -100, 300], "bookings_diff_p05": [0, 0, -150, 250],
    ...                    "bookings_diff_p95": [0, 0, -50, 350]})
    >>> len(fig_elasticity_fan(df, lang="en").data)
    2
    """
    import plotly.graph_objects as go

    from . import plots

    if lang not in LABELS:
        msg = f"fig_elasticity_fan: lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    t = LABELS[lang]
    money = objective != "active"
    scale = 100.0 if money else 1.0
    fig = go.Figure()
    fig.update_layout(template="subs_model", title={"text": t["title"].format(objective=t["objectives"][objective]), "x": 0.01},
                      xaxis={"title": t["x"]}, yaxis={"title": t["y"] if money else t["y_active"], "tickformat": ",.0f",
                                                      "ticksuffix": " ₽" if money else ""},
                      separators=", " if lang == "ru" else ".,",
                      legend={"orientation": "h", "y": -0.25}, margin={"b": 110})
    names = list(dict.fromkeys(by_elasticity["scenario"]))[1:]  # the first is the baseline: zero everywhere
    if not names:
        fig.add_annotation(text=t["no_data"], showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return fig
    for k, name in enumerate(names):
        d = by_elasticity[by_elasticity["scenario"] == name].sort_values("elasticity")
        color = _COLORS[k % len(_COLORS)]
        label = plots.safe_text(name)
        x = d["elasticity"].tolist()
        lo, hi = (d[f"{objective}_diff_p05"] / scale).tolist(), (d[f"{objective}_diff_p95"] / scale).tolist()
        fig.add_scatter(x=x + x[::-1], y=hi + lo[::-1], fill="toself", fillcolor=_fill(color), line={"width": 0},
                        hoverinfo="skip", showlegend=False, name=f"{label} · {t['band']}")
        fig.add_scatter(x=x, y=(d[f"{objective}_diff_mean"] / scale).tolist(), mode="lines+markers", name=label,
                        line={"color": color, "width": 2},
                        hovertemplate=f"{label}<br>e=%{{x:.2f}}: %{{y:,.0f}}<extra></extra>")
    fig.add_hline(y=0, line={"color": "#888", "width": 1})
    if central is not None:
        fig.add_vline(x=central, line={"color": "#888", "dash": "dot"},
                      annotation_text=t["central"].format(e=f"{central:g}".replace(".", "," if lang == "ru" else ".")), annotation_position="top left")
    if break_even is not None:
        for k, row in enumerate(break_even.itertuples()):
            if isinstance(row.break_even, float) and not math.isnan(row.break_even):
                color = _COLORS[names.index(row.scenario) % len(_COLORS)] if row.scenario in names else "#444"
                e = f"{row.break_even:.2f}".replace(".", "," if lang == "ru" else ".")
                fig.add_scatter(x=[row.low, row.break_even, row.high], y=[0, 0, 0], mode="lines+markers",
                                marker={"size": [0, 12, 0], "symbol": "diamond", "color": color}, line={"color": color, "width": 4},
                                name=t["break_even"].format(name=plots.safe_text(row.scenario), e=e),
                                hovertemplate="%{x:.2f}<extra></extra>")
    return fig


def fig_scenario_diff(table: pd.DataFrame, metric: str, lang: str = "ru", names: Mapping[str, str] | None = None) -> Any:
    """Each scenario's difference to the baseline by month: the mean line and the 5–95 % band of
    the paired difference over runs (common random numbers), with a zero line for the baseline.

    Overlapping absolute fans hide differences of a few percent; the paired difference shows
    them, and whether its band excludes zero. ``table`` is :attr:`subs_model.whatif.WhatIf.table`
    (``scenario, metric, month, diff_mean, diff_p05, diff_p95``; the first scenario is the
    baseline, money in kopecks, drawn in rubles); ``names`` maps a scenario's key to the legend
    text (:func:`subs_model.scenario.titles`). The y axis is titled in ₽ or licenses.

    Examples
    --------
    >>> t = pd.DataFrame({"scenario": ["b", "b", "s", "s"], "metric": "active", "month": ["2027-01", "2027-02"] * 2,
    ...                   "diff_mean": [0, 0, 3.0, 5.0], "diff_p05": [0, 0, 1.0, 2.0], "diff_p95": [0, 0, 5.0, 8.0]})
    >>> [tr.name for tr in fig_scenario_diff(t, "active", "en", {"s": "Shown"}).data if tr.showlegend]
    ['Shown']
    """
    from .plots import LABELS as PLOT_LABELS
    from .plots import _empty, _fig, _money_axis, _rgba, rubles, safe_text

    w = DIFF_LABELS[lang]
    money = metric in ("bookings", "recognised")  # kopecks: drawn in rubles
    fig = _fig(w["diff_bookings" if money else "diff_active"], lang)
    d = table[table["metric"] == metric]
    if d.empty:
        return _empty(fig, lang)
    keys = list(dict.fromkeys(d["scenario"]))
    if len(keys) < 2:
        fig.add_annotation(text=w["only_baseline"], showarrow=False, font={"size": 16, "color": "#888"},
                           xref="paper", yref="paper", x=0.5, y=0.5)
        return fig
    # each scenario in the colour the elasticity fan of the same report gives it (_COLORS, by its place after the baseline)
    scale = rubles if money else (lambda v: pd.Series(v, dtype=float).to_numpy())
    for i, key in enumerate(keys[1:]):  # the baseline is the zero line
        g = d[d["scenario"] == key]
        name, color = safe_text((names or {}).get(key, key)), _COLORS[i % len(_COLORS)]
        fig.add_scatter(x=g["month"], y=scale(g["diff_p95"]), mode="lines", line={"width": 0}, showlegend=False,
                        hoverinfo="skip", legendgroup=name)
        fig.add_scatter(x=g["month"], y=scale(g["diff_p05"]), mode="lines", line={"width": 0}, fill="tonexty",
                        fillcolor=_rgba(color, 0.15), showlegend=False, hoverinfo="skip", legendgroup=name)
        fig.add_scatter(x=g["month"], y=scale(g["diff_mean"]), mode="lines", name=name, line_color=color, legendgroup=name,
                        showlegend=True)
    fig.add_hline(y=0, line={"color": "#444", "width": 1, "dash": "dot"})
    fig.update_layout(xaxis_title=PLOT_LABELS[lang]["month"])
    if money:
        _money_axis(fig, title=w["diff_axis_bookings"])
    else:
        fig.update_layout(yaxis={"title": {"text": w["diff_axis_active"]}, "tickformat": ",.0f"})
    return fig
