"""Number and date formats of a finished chart, per language: separators, date ticks and hovers, percent ticks.

The figure builders draw; :func:`localise` then makes everything a person reads on the chart
follow the report language, with the same styles as the notes and tables
(:data:`subs_model.notes.DATE_FORMATS`, :func:`subs_model.notes.pct`):

- separators: ru «1 234,5», en "1,234.5" (plotly ``layout.separators``; thousands grouped from four digits on);
- dates on axes and in hovers: ru «31.10.2026» / «10.2026» / «2026», en "31 Oct 2026" / "Oct 2026" / "2026"
  (``tickformatstops`` by tick spacing, ``hoverformat``, and ``%{x|…}`` in hover templates);
- percentages in Russian: «50 %» with a narrow no-break space — plotly's ``%`` format cannot
  put a space before the sign, so a Russian percent axis gets explicit ticks and a percent in a
  hover template is given as preformatted ``hovertext``. English keeps plotly's "50%".

The report pages call it once per figure (``Page.figure``); it changes the figure in place and
returns it, and applying it twice changes nothing more.

>>> import plotly.graph_objects as go
>>> fig = localise(go.Figure(go.Scatter(x=[0, 1], y=[0.2, 0.7])).update_yaxes(tickformat=".0%"), "ru")
>>> [t.replace(NNBSP, " ") for t in fig.layout.yaxis.ticktext][:3]
['0 %', '10 %', '20 %']
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import numpy as np

from . import notes

__all__ = ["NNBSP", "localise"]

NNBSP = "\u202f"  # narrow no-break space between a number and % in Russian
_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0)
_PCT_HOVER = re.compile(r"%\{(x|y|z|customdata(?:\[(\d+)\])?):[+,]?\.(\d+)%\}")
_DATE_HOVER = re.compile(r"%\{(x|y)\|([^}]*)\}")


def _axis_names(fig: Any) -> list[str]:
    """The axes set in the layout, the default pair, and those the traces refer to (a template-only axis is not in the layout)."""
    names = {k for k in fig.layout.to_plotly_json() if re.fullmatch(r"[xy]axis\d*", k)} | {"xaxis", "yaxis"}
    names |= {_trace_axis(tr, letter) for tr in fig.data for letter in ("x", "y") if hasattr(tr, f"{letter}axis")}
    return sorted(names)


def _trace_axis(trace: Any, letter: str) -> str:
    ref = getattr(trace, f"{letter}axis", None) or letter
    return f"{letter}axis{ref[1:]}"


def _values(trace: Any, letter: str) -> np.ndarray | None:
    v = getattr(trace, letter, None)
    if v is None:
        return None
    return np.asarray(v, dtype=object).ravel() if not isinstance(v, np.ndarray) else v.ravel()


def _is_date(v: Any) -> bool:
    return isinstance(v, dt.date | np.datetime64) or (isinstance(v, str) and bool(re.fullmatch(r"\d{4}-\d\d-\d\d.*", v)))


def _granularity(values: list[np.ndarray]) -> str:
    """``"month"`` when every date is a first of a month, else ``"day"``."""
    import pandas as pd

    days = pd.to_datetime(pd.Series(np.concatenate([np.asarray(v, dtype=object) for v in values])), errors="coerce").dropna()
    return "month" if len(days) and bool((days.dt.day == 1).all()) else "day"


def _date_axes(fig: Any) -> dict[str, str]:
    """Axis name → ``"day"`` or ``"month"`` for the axes that carry dates."""
    found: dict[str, list[np.ndarray]] = {}
    for tr in fig.data:
        for letter in ("x", "y"):
            v = _values(tr, letter)
            if v is not None and len(v) and (v.dtype.kind == "M" or _is_date(v[0])):
                found.setdefault(_trace_axis(tr, letter), []).append(v)
    for name in _axis_names(fig):
        if fig.layout[name].type == "date":
            found.setdefault(name, [])
    return {name: _granularity(vs) if vs else "day" for name, vs in found.items()}


def _localise_dates(fig: Any, lang: str) -> None:
    fmt = notes.DATE_FORMATS[lang]
    axes = _date_axes(fig)
    if not axes:
        return
    stops = [{"dtickrange": [None, 27 * 86_400_000], "value": fmt["day"]}, {"dtickrange": ["M1", "M11"], "value": fmt["month"]},
             {"dtickrange": ["M12", None], "value": fmt["year"]}]
    for name, unit in axes.items():
        # an explicit tick format on a date axis is replaced: one style per language
        fig.layout[name].update(tickformat=None, tickformatstops=stops, hoverformat=fmt[unit])
    for tr in fig.data:
        template = getattr(tr, "hovertemplate", None)
        if not isinstance(template, str):
            continue

        def swap(m: re.Match, tr: Any = tr) -> str:
            unit = "day" if "%d" in m.group(2) else "month" if "%m" in m.group(2) or "%b" in m.group(2) else "year"
            return f"%{{{m.group(1)}|{fmt[unit]}}}"

        tr.hovertemplate = _DATE_HOVER.sub(swap, template)


def _nice_step(span: float, dtick: Any) -> float:
    if isinstance(dtick, int | float) and dtick > 0:
        return float(dtick)
    return next((s for s in _STEPS if span / s <= 8), 1.0)


def _pct_ticks(fig: Any, name: str) -> None:
    """Explicit ticks «0 %», «25 %», … for a Russian percent axis, over its range or its data."""
    ax = fig.layout[name]
    if ax.range is not None:
        lo, hi = (float(v) for v in ax.range)
    else:
        letter = name[0]
        vals = [np.asarray(_values(tr, letter), dtype=float) for tr in fig.data
                if _trace_axis(tr, letter) == name and _values(tr, letter) is not None]
        vals = [v[np.isfinite(v)] for v in vals if v.size]
        vals = [v for v in vals if v.size]
        if not vals:
            return
        lo, hi = min(0.0, *(float(v.min()) for v in vals)), max(0.0, *(float(v.max()) for v in vals))
    if not hi > lo:
        return
    step = _nice_step(hi - lo, ax.dtick)
    digits = next(d for d in range(4) if abs(round(step * 100, d) - step * 100) < 1e-9 or d == 3)  # 2.5 % steps: «7,5 %»
    first = math.ceil(lo / step - 1e-9)
    ticks = [round(k * step, 10) for k in range(first, math.floor(hi / step + 1e-9) + 1)]
    ax.update(tickmode="array", tickvals=ticks, ticktext=[notes.pct(v, "ru", digits).replace(notes.NBSP, NNBSP) for v in ticks],
              tickformat=None, dtick=None)


def _hover_pct(trace: Any) -> None:
    """``%{y:.1%}`` in a hover template → preformatted Russian text in ``hovertext`` (one percent per template)."""
    template = getattr(trace, "hovertemplate", None)
    if not isinstance(template, str) or getattr(trace, "hovertext", None) is not None:
        return
    m = _PCT_HOVER.search(template)
    if m is None:
        return
    var, col, digits = m.group(1), m.group(2), int(m.group(3))
    src = trace.customdata if var.startswith("customdata") else getattr(trace, var, None)
    if src is None:
        return
    arr = np.asarray(src, dtype=object)
    if col is not None:
        arr = arr[:, int(col)] if arr.ndim == 2 else arr
    text = [notes.pct(float(v), "ru", digits).replace(notes.NBSP, NNBSP) if v is not None and v == v else "—" for v in arr.ravel()]
    trace.hovertext = text
    trace.hovertemplate = template[:m.start()] + "%{hovertext}" + template[m.end():]


def localise(fig: Any, lang: str = "ru") -> Any:
    """Make ``fig``'s separators, dates and percentages follow ``lang`` (in place); returns ``fig``.

    >>> import pandas as pd, plotly.graph_objects as go
    >>> f = localise(go.Figure(go.Bar(x=pd.to_datetime(["2026-09-01", "2026-10-01"]), y=[1500, 2500])), "en")
    >>> f.layout.separators, f.layout.xaxis.hoverformat
    ('.,', '%b %Y')
    """
    if lang not in notes.DATE_FORMATS:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    fig.layout.separators = ", " if lang == "ru" else ".,"
    _localise_dates(fig, lang)
    dates = _date_axes(fig)
    for name in _axis_names(fig):
        if name not in dates:  # «8 500», "8,500": plotly groups thousands only from five digits unless told
            fig.layout[name].separatethousands = True
    if lang == "ru":
        for name in _axis_names(fig):
            fmt = fig.layout[name].tickformat
            if isinstance(fmt, str) and fmt.endswith("%"):
                _pct_ticks(fig, name)
        for tr in fig.data:
            _hover_pct(tr)
    return fig
