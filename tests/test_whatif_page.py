"""Report 05's two parts computed together (whatif_page.pricing_pages) give what they give apart."""

from __future__ import annotations

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
    assert "inline" in set(page.tables["scenarios"]["scenario"])
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
    at = str(tornado["scenario"].iloc[0])
    assert at != "baseline"
    assert f"At the prices of “{at}”" in page.notes["summary"]
    knobs = set(tornado["knob"])
    assert "renewal-price elasticity" in knobs  # labels in the page's language (en here)
    assert tornado.loc[tornado["knob_id"] == "elasticity", "bookings_diff"].abs().max() > 0
