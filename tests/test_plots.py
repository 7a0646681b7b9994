"""Figure builders of reports 01–04: separate panels where scales or units differ, titled axes in the report
language, money in ₽, a time axis where the data has one, full category names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import subs_model as sm
from subs_model import insights as I
from subs_model import metrics as M
from subs_model import plots as P

ROOT = Path(__file__).resolve().parents[1]
MONTHS = pd.date_range("2020-01-01", periods=8, freq="MS")


@pytest.fixture(scope="module")
def rep() -> sm.Replay:
    return sm.replay(sm.read_ledger(ROOT / "data/sample"), as_of="2026-10-31")


def _y_axes(fig: go.Figure) -> dict[str, go.layout.YAxis]:
    return {k: fig.layout[k] for k in fig.layout if k.startswith("yaxis") and fig.layout[k] is not None}


def _two_panels(fig: go.Figure) -> tuple[go.layout.YAxis, go.layout.YAxis]:
    """The figure's two stacked panels: disjoint y domains, no overlaid axis, each y axis titled."""
    axes = _y_axes(fig)
    assert set(axes) == {"yaxis", "yaxis2"}, axes.keys()
    top, bottom = axes["yaxis"], axes["yaxis2"]
    assert top.overlaying is None and bottom.overlaying is None
    assert top.domain[0] > bottom.domain[1]  # stacked, not overlaid
    assert top.title.text and bottom.title.text
    assert fig.layout.xaxis2.title.text and fig.layout.xaxis.matches == "x2"  # one shared, titled time axis
    return top, bottom


def _revenue_frame() -> pd.DataFrame:
    zeros = [0, 0, 0]
    return pd.DataFrame({"month": MONTHS[:3].tolist() + MONTHS[3:].tolist(),
                         "bookings_kop": zeros + [200_000_000, 150_000_000, 180_000_000, 190_000_000, 210_000_000],
                         "recognised_kop": zeros + [10_000_000, 40_000_000, 90_000_000, 120_000_000, 150_000_000],
                         "breakage_kop": zeros + [0, 1_000_000, 2_000_000, 1_000_000, 3_000_000],
                         "deferred_kop": zeros + [190_000_000, 299_000_000, 387_000_000, 456_000_000, 513_000_000]})


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_revenue_has_monthly_bars_and_the_deferred_balance_in_two_panels(lang) -> None:
    """Bars on the top axis, the balance alone on the bottom one, both in ₽ with titles; months before the
    first money are dropped."""
    fig = P.fig_revenue(_revenue_frame(), lang)
    top, bottom = _two_panels(fig)
    assert top.ticksuffix == bottom.ticksuffix == " ₽"
    bars = [tr for tr in fig.data if tr.type == "bar"]
    line = [tr for tr in fig.data if tr.type == "scatter"]
    assert len(bars) == 3 and all(tr.yaxis == "y" for tr in bars)
    assert len(line) == 1 and line[0].yaxis == "y2" and line[0].name == P.LABELS[lang]["deferred"]
    assert all(pd.Timestamp(tr.x[0]) == MONTHS[3] for tr in fig.data)  # no year of zeros
    assert fig.layout.xaxis2.title.text == P.LABELS[lang]["month"]


def test_revenue_on_the_sample_keeps_every_kopeck(rep) -> None:
    """The bars add up to the revenue table from the first month with money on."""
    rev = M.revenue(rep)
    fig = P.fig_revenue(rev, "ru")
    bookings = next(tr for tr in fig.data if tr.name == P.LABELS["ru"]["bookings"])
    assert np.isclose(np.sum(bookings.y), rev["bookings_kop"].sum() / 100)
    assert pd.Timestamp(bookings.x[0]) == rev.loc[rev["bookings_kop"] != 0, "month"].min()


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_lead_times_show_the_tail_in_hours_with_full_stage_names(rep, lang) -> None:
    """One box per SKU over the stages: 25–75 % box, median, whiskers at the 10th and 90th percentile, in hours;
    every stage label is its full name (none starts with an arrow) and the x axis says hours."""
    stages, _ = M.lead_times(rep)
    assert (stages["p10_days"] <= stages["p25_days"]).all() and (stages["p25_days"] <= stages["median_days"]).all()
    assert (stages["median_days"] <= stages["p75_days"]).all() and (stages["p75_days"] <= stages["p90_days"]).all()
    fig = P.fig_lead_times(stages, lang)
    t = P.LABELS[lang]
    assert {tr.type for tr in fig.data} == {"box"} and len(fig.data) == stages["sku"].nunique()
    shown = {y for tr in fig.data for y in tr.y}
    assert shown == {t[s] for s in stages["stage"]}
    assert not any(label.startswith("→") for label in shown)
    assert fig.layout.xaxis.title.text == t["hours"] and fig.layout.yaxis.title.text == t["stage"]
    ren = next(tr for tr in fig.data if tr.name == t["renewal"])
    want = stages[stages["sku"] == "renewal"]
    np.testing.assert_allclose(ren.upperfence, want["p90_days"] * 24)
    np.testing.assert_allclose(ren.median, want["median_days"] * 24)
    assert list(fig.layout.yaxis.categoryarray)[-1] == t["request_to_invoice"]  # first stage drawn on top


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_forgotten_renewals_by_month_with_money(rep, lang) -> None:
    """Forgotten renewals over a month axis, stacked by fate: counts on top, the payments at stake in ₽ below,
    one legend entry per fate."""
    m = I.forgotten_by_month(rep, M.forgotten_renewals(rep))
    fig = P.fig_forgotten_renewals(m, lang)
    top, bottom = _two_panels(fig)
    assert bottom.ticksuffix == " ₽" and top.title.text == P.LABELS[lang]["lapsed_codes"]
    assert fig.layout.barmode == "stack"
    assert all(isinstance(pd.Timestamp(tr.x[0]), pd.Timestamp) and pd.Timestamp(tr.x[0]).day == 1 for tr in fig.data)
    assert fig.layout.xaxis2.title.text == P.LABELS[lang]["lapse_month"]
    legend = [tr.name for tr in fig.data if tr.showlegend is not False]
    assert len(legend) == m["fate"].nunique() == len(set(legend))
    money = sum(np.sum(tr.y) for tr in fig.data if tr.yaxis == "y2")
    assert np.isclose(money, m["at_stake_kop"].sum() / 100)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_no_untitled_right_axis_in_reports_01_to_04(lang) -> None:
    """No figure of pages 01–04 overlays a second y axis; every y axis that carries data is titled."""
    data = str(ROOT / "data/sample")
    for f in (I.cohort_overview, I.renewal_timing_page, I.grace_usage_page, I.upgrade_revenue_page):
        page = f(data, lang=lang)
        for name, fig in page.figures.items():
            used = {tr.yaxis or "y" for tr in fig.data}
            for key, axis in _y_axes(fig).items():
                assert axis.overlaying is None and axis.side != "right", (f.__name__, name, key)
                if "y" + key.removeprefix("yaxis") in used:
                    assert axis.title.text, (f.__name__, name, key)


def test_dual_unit_charts_of_report_04_are_panels(rep) -> None:
    """Upgrade payments (₽) and conversion (share), expiries and expected cash (₽): each on its own panel."""
    top, bottom = _two_panels(P.fig_upgrade_revenue(M.upgrade_revenue(rep), "ru"))
    assert top.ticksuffix == " ₽" and bottom.tickformat == ".0%" and tuple(bottom.range) == (0, 1)
    top, bottom = _two_panels(P.fig_expiry_calendar(M.expiry_calendar(rep), "en"))
    assert top.ticksuffix is None and bottom.ticksuffix == " ₽"


def test_panel_charts_say_no_data_when_empty() -> None:
    """An empty frame gives the one-panel 'no data' figure, not empty panels."""
    empty = pd.DataFrame(columns=["month", "fate", "count", "at_stake_kop"])
    for fig in (P.fig_forgotten_renewals(empty, "en"), P.fig_revenue(_revenue_frame().iloc[:0], "en")):
        assert [a.text for a in fig.layout.annotations] == ["No data"]


@pytest.fixture(scope="module", params=["ru", "en"])
def page_figures(request) -> tuple[str, list[go.Figure]]:
    """Every figure of pages 01–04 as the notebooks show it (``Page.figure``), in one language."""
    lang = request.param
    data, cat = ROOT / "data/sample", ROOT / "data/catalog.yaml"
    pages = [f(data, cat, lang=lang) for f in (I.cohort_overview, I.renewal_timing_page, I.grace_usage_page, I.upgrade_revenue_page)]
    return lang, [p.figure(name) for p in pages for name in p.figures]


def _axes(fig: go.Figure) -> dict[str, object]:
    return {k: fig.layout[k] for k in fig.layout.to_plotly_json() if k[1:5] == "axis"}


def test_page_figures_format_numbers_and_dates_per_language(page_figures) -> None:
    """Separators per language; date axes tick and hover in the language's style (never ISO); Russian percent
    ticks and hovers «50 %» (narrow no-break space), English "50%"."""
    import re

    from subs_model.chart_formats import NNBSP
    from subs_model.notes import DATE_FORMATS

    lang, figs = page_figures
    fmt = DATE_FORMATS[lang]
    n_pct = n_dates = 0
    for fig in figs:
        title = fig.layout.title.text
        assert fig.layout.separators == (", " if lang == "ru" else ".,"), title
        for name, ax in _axes(fig).items():
            if ax.tickformatstops:
                n_dates += 1
                assert [s.value for s in ax.tickformatstops] == [fmt["day"], fmt["month"], fmt["year"]], (title, name)
                assert ax.hoverformat in (fmt["day"], fmt["month"]) and ax.tickformat is None, (title, name)
            if ax.ticktext and str(ax.ticktext[0]).endswith("%"):
                n_pct += 1
                assert all(t.endswith(f"{NNBSP}%") and "." not in t for t in ax.ticktext), (title, ax.ticktext)
            if lang == "ru":
                assert not str(ax.tickformat or "").endswith("%"), (title, name)
            assert ax.tickformatstops or ax.separatethousands, (title, name)  # «8 500», never «8500»
        for tr in fig.data:
            hover = tr.hovertemplate or ""
            assert not re.search(r"\|%Y-%m", hover), (title, hover)  # ISO dates in a hover
            for m in re.finditer(r"%\{[xy]\|([^}]*)\}", hover):
                assert m.group(1) in fmt.values(), (title, hover)
            if lang == "ru":
                assert not re.search(r":[+,]?\.\d+%\}", hover), (title, hover)  # plotly's «58,3%» without the space
                assert all(f"{NNBSP}%" in t or t == "—" for t in (tr.hovertext or [] if "%{hovertext}" in hover else [])), title
    assert n_dates >= 8 and (n_pct >= 4 if lang == "ru" else n_pct == 0)


def test_russian_percent_ticks_cover_the_range() -> None:
    """Explicit Russian ticks span the axis range at a round step; English keeps plotly's format."""
    from subs_model.chart_formats import NNBSP, localise

    fig = go.Figure(go.Scatter(x=[1, 2], y=[0.1, 0.9], hovertemplate="%{y:.1%}")).update_yaxes(tickformat=".0%", range=[0, 1])
    ru = localise(go.Figure(fig), "ru")
    assert list(ru.layout.yaxis.tickvals) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert list(ru.layout.yaxis.ticktext) == [f"{v}{NNBSP}%" for v in (0, 20, 40, 60, 80, 100)]
    assert list(ru.data[0].hovertext) == [f"10,0{NNBSP}%", f"90,0{NNBSP}%"] and ru.data[0].hovertemplate == "%{hovertext}"
    en = localise(go.Figure(fig), "en")
    assert en.layout.yaxis.tickformat == ".0%" and en.layout.yaxis.tickvals is None and en.data[0].hovertemplate == "%{y:.1%}"
    small = localise(go.Figure(go.Bar(x=["a", "b"], y=[-0.012, 0.031])).update_yaxes(tickformat=".1%"), "ru")
    assert small.layout.yaxis.ticktext[0] == f"−1{NNBSP}%" and small.layout.yaxis.ticktext[-1] == f"3{NNBSP}%"


def test_russian_percent_ticks_at_a_fractional_step_keep_their_decimals() -> None:
    """A 2.5 % step reads «−7,5 %», never a rounded «−8 %» beside «−5 %»."""
    from subs_model.chart_formats import NNBSP, localise

    fig = localise(go.Figure(go.Bar(x=[-0.12, 0.05], y=["a", "b"], orientation="h")).update_xaxes(tickformat=".0%"), "ru")
    assert list(fig.layout.xaxis.ticktext) == [f"{t}{NNBSP}%" for t in ("−10,0", "−7,5", "−5,0", "−2,5", "0,0", "2,5", "5,0")]


@pytest.mark.parametrize(("lang", "price", "elasticity"), [("ru", "3\u00a0600", "0,5"), ("en", "3,600", "0.5")])
def test_tornado_bar_labels_write_knob_values_in_the_report_language(lang, price, elasticity) -> None:
    """«цена продления, ₽ = 3 600», "renewal-price elasticity = 0.5": thousands and decimals as the language writes them."""
    from subs_model.plots import fig_tornado

    sens = pd.DataFrame({"knob": ["price", "price", "elasticity", "elasticity"], "value": [2800, 3600, 0.5, 2.0],
                         "bookings_diff_pct": [0.04, -0.1, -0.04, 0.05]})
    texts = [s for tr in fig_tornado(sens, lang).data for s in tr.text]
    assert f"price = {price}" in texts and f"elasticity = {elasticity}" in texts and "elasticity = 2" in texts
