"""Report 05's two parts computed together (whatif_page.pricing_pages) give what they give apart."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from subs_model import insights
from subs_model.resources import data_dir
from subs_model.whatif_page import pricing_decision_page, pricing_pages

SMALL = {"horizon_months": 12, "seed": 3, "lang": "en"}


def _same(a, b) -> None:
    assert a.tables.keys() == b.tables.keys() and a.notes == b.notes and a.summary == b.summary
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    for name in a.figures:
        assert a.figures[name].to_json() == b.figures[name].to_json(), name


def test_pricing_pages_equal_the_two_parts_computed_apart() -> None:
    data, cat, scs = str(data_dir() / "sample"), str(data_dir() / "catalog.yaml"), str(data_dir() / "scenarios.yaml")
    page, decision = pricing_pages(data, cat, "", scs, renewal_price=3300, runs=6, elasticity_runs=3, break_even_runs=2,
                                   **SMALL)
    decided = pricing_decision_page(data, cat, "", scs, runs=3, break_even_runs=2, **SMALL)
    alone = insights.pricing_whatif_page(data, cat, "", scs, renewal_price=3300, runs=6, tornado=decided.tables["tornado"],
                                         **SMALL)
    _same(page, alone)
    _same(decision, decided)
    # The scenario part's table is at the central elasticity, even for the inline price scenario.
    assert "Notebook parameters: renewal at 3,300\u00a0₽" in set(page.tables["scenarios"]["scenario"])  # titled, not "inline"
    assert decision.tables["by_elasticity"]["elasticity"].nunique() > 1  # the range is the decision part's


def test_pricing_pages_refuses_an_unknown_language() -> None:
    with pytest.raises(ValueError, match="lang 'de'"):
        pricing_pages(str(data_dir() / "sample"), lang="de")


def test_scenario_part_describes_the_tornado_at_a_price_scenarios_prices() -> None:
    """The summary's tornado sentence is the shown tornado's (at the first price scenario's prices, where
    the elasticity has an effect), in the report's language, and names the scenario it rests on."""
    data, cat, scs = str(data_dir() / "sample"), str(data_dir() / "catalog.yaml"), str(data_dir() / "scenarios.yaml")
    page, decision = pricing_pages(data, cat, "", scs, runs=4, elasticity_runs=2, break_even_runs=2, **SMALL)
    tornado = decision.tables["tornado"]
    from subs_model.scenario import load_scenarios

    at = {sc.name: sc for sc in load_scenarios(scs)}[str(tornado["scenario"].iloc[0])]
    assert at.name != "baseline"
    assert f"At the prices of “{at.title_in('en')}”" in page.notes["summary"].replace("\\", "")  # by its title (Markdown-escaped)
    knobs = set(tornado["knob"])
    assert "renewal-price elasticity" in knobs  # labels in the page's language (en here)
    assert tornado.loc[tornado["knob_id"] == "elasticity", "bookings_diff"].abs().max() > 0


KEYS = ("baseline", "grace 30", "renewal 3000", "renewal 3500", "from expiry")  # the shipped scenarios' names (keys)


def _read_text(page) -> str:
    """Everything a person reads on a page: notes, table cells and headers, chart titles, axis titles and legends."""
    parts = [*page.notes.values(), page.summary]
    for name, df in page.tables.items():
        if name not in ("sensitivity", "tornado"):  # the tornado's rows, drawn by their knobs (the figure), not shown as a table
            parts += [df.astype(str).to_string()]
    for fig in page.figures.values():
        lay = fig.layout
        parts += [str(lay.title.text), str(lay.yaxis.title.text), str(lay.xaxis.title.text)]
        parts += [str(tr.name) for tr in fig.data if tr.name is not None]
    return "\n".join(parts)


@pytest.fixture(scope="module", params=["ru", "en"])
def both_parts(request):
    data, cat, scs = str(data_dir() / "sample"), str(data_dir() / "catalog.yaml"), str(data_dir() / "scenarios.yaml")
    return request.param, pricing_pages(data, cat, "", scs, grace_days=20, runs=4, elasticity_runs=2, break_even_runs=2,
                                        horizon_months=12, seed=3, lang=request.param)


def test_scenarios_read_by_their_title_in_the_report_language(both_parts) -> None:
    """Tables, notes, break-even sentences, legends: each scenario by its title in the page's language, never its key."""
    from subs_model.scenario import load_scenarios

    lang, (page, decision) = both_parts
    text = _read_text(page) + _read_text(decision)
    for sc in load_scenarios(data_dir() / "scenarios.yaml"):
        assert sc.title_in(lang) in text, sc.title_in(lang)
        other = sc.title_in("en" if lang == "ru" else "ru")
        assert other not in text, other
    for key in KEYS if lang == "ru" else KEYS[1:]:  # "baseline" is also an English word
        assert not re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", text, re.IGNORECASE), key
    assert page.lang == decision.lang == lang  # both parts label their tables in the report's language
    shown_tables = "".join(part.show(name).to_html() for part, name in ((page, "scenarios"), (decision, "break_even"),
                                                                        (decision, "test_design")))
    assert bool(re.search(r"[А-Яа-яЁё]", shown_tables)) == (lang == "ru")
    inline = "Параметры блокнота: льготный период 20 дней" if lang == "ru" else "Notebook parameters: 20-day grace window"
    assert inline in page.tables["scenarios"]["scenario"].tolist()
    descriptions = page.tables["scenarios"]["description"].tolist()
    assert ("30 дней на активацию продления вместо 15" if lang == "ru" else "a 30-day window to activate a renewal") in descriptions
    assert bool(re.search(r"[А-Яа-яЁё]", page.notes["summary"])) == (lang == "ru")  # the knob named in the tornado line too
    if lang == "ru":
        assert not re.search(r"[a-z]{3,} [a-z]{3,}", "\n".join(page.notes.values()) + "\n".join(decision.notes.values())
                             .replace("as_of", ""))


def test_scenario_charts_show_the_paired_difference_to_the_baseline(both_parts) -> None:
    """Bookings and active licenses: a mean line and a 5–95 % band per scenario other than the baseline, titled axes."""
    lang, (page, _) = both_parts
    shown = set(page.tables["scenarios"]["scenario"])
    base = page.tables["scenarios"]["scenario"].iloc[0]
    for metric, unit in (("bookings", "₽"), ("active", "лицензий" if lang == "ru" else "licenses")):
        fig = page.figures[metric]
        lines = [tr for tr in fig.data if tr.showlegend]
        assert {tr.name for tr in lines} == shown - {base}, metric
        assert unit in fig.layout.yaxis.title.text and ("разница" if lang == "ru" else "difference") in fig.layout.title.text.lower()
        for tr in lines:  # the band around each line: p95 above, p05 below
            band = [b for b in fig.data if b.legendgroup == tr.legendgroup and not b.showlegend]
            assert len(band) == 2
            hi, lo = (pd.Series(b.y, dtype=float) for b in band)
            mid = pd.Series(tr.y, dtype=float)
            assert (lo <= mid + 1e-9).all() and (mid <= hi + 1e-9).all(), (metric, tr.name)
