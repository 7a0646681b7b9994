"""Break-even elasticity: the root a direct run confirms, the search on synthetic differences, the test size."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import subs_model as sm
from subs_model.breakeven import BreakEvenError, decisions_needed, find_break_even, objective_of
from subs_model.whatif import Scenario, run_scenarios

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-10-31"
CUT = Scenario("renewal 3000", catalog={"prices": {"full": {"renewal": 3000}, "basic": {"renewal": 3000}}})
RISE = Scenario("renewal 3500", catalog={"prices": {"full": {"renewal": 3500}, "basic": {"renewal": 3500}}})


@pytest.fixture(scope="module")
def ledger() -> sm.Ledger:
    return sm.read_ledger(ROOT / "data/sample")


@pytest.fixture(scope="module")
def behaviour(ledger) -> sm.Behaviour:
    res = run_scenarios(ledger, [Scenario("baseline")], AS_OF, horizon_months=1, runs=2, executor=ThreadPoolExecutor(1))
    return res.behaviour


@pytest.fixture(scope="module")
def found(ledger, behaviour):
    return sm.break_even(ledger, [Scenario("baseline"), CUT, RISE, Scenario("grace 30", catalog={"grace_days": 30})],
                         AS_OF, horizon_months=12, runs=8, seed=5, executor=ThreadPoolExecutor(2), behaviour=behaviour)


def test_break_even_is_where_a_direct_run_gives_no_difference(ledger, behaviour, found) -> None:
    """A direct run at the break-even elasticity gives a mean difference within Monte Carlo error of zero,
    and the difference changes sign across it."""
    row = found.set_index("scenario").loc["renewal 3000"]
    e = float(row["break_even"])
    assert 0 < e < 2 and row["low"] < e < row["high"] and row["pays_off_if"] == "above"
    res = run_scenarios(ledger, [Scenario("baseline"), CUT], AS_OF, horizon_months=12, runs=8, seed=5,
                        executor=ThreadPoolExecutor(2), behaviour=behaviour, elasticities=[e - 0.2, e, e + 0.2])
    d = {round(k[1], 4): objective_of(v, "bookings") - objective_of(res.runs_by_elasticity["baseline", k[1]], "bookings")
         for k, v in res.runs_by_elasticity.items() if k[0] == "renewal 3000"}
    at = d[round(e, 4)] if round(e, 4) in d else d[min(d, key=lambda x: abs(x - e))]
    se = at.std(ddof=1) / math.sqrt(len(at))
    assert abs(at.mean()) <= 2 * se + 1e-6 * abs(d[min(d)].mean())
    assert d[min(d)].mean() < 0 < d[max(d)].mean()


def test_price_rise_pays_below_and_unpriced_scenario_does_not_depend(found) -> None:
    """A dearer renewal pays off below its break-even; a scenario at today's price is not decided by the elasticity."""
    f = found.set_index("scenario")
    assert f.loc["renewal 3500", "pays_off_if"] == "below"
    assert f.loc["grace 30", "pays_off_if"] in ("always", "never") and math.isnan(f.loc["grace 30", "break_even"])
    assert "эластичность его не решает" in f.loc["grace 30", "note_ru"]


def test_notes_say_it_in_words(found) -> None:
    """The Russian note reads like «снижение … до 3 000 ₽ окупается …, если эластичность выше 0,6…», with a decimal comma."""
    row = found.set_index("scenario").loc["renewal 3000"]
    e = f"{row['break_even']:.2f}".replace(".", ",")
    assert "снижение цены продления до 3\u00a0000 ₽ окупается" in row["note_ru"]
    assert f"если эластичность выше {e}" in row["note_ru"]
    assert "renewal price cut to ₽3,000 pays off" in row["note_en"] and "above" in row["note_en"]
    assert row["central_elasticity"] == 1.2 and row["runs"] == 8


@settings(max_examples=40, deadline=None)
@given(root=st.floats(0.05, 1.95), slope=st.floats(-50, 50).filter(lambda s: abs(s) > 0.5))
def test_search_finds_the_root_of_a_known_difference(root, slope) -> None:
    """On a linear difference with noise, the root is found within tolerance and its interval holds it."""
    noise = np.linspace(-1, 1, 30)
    be = find_break_even(lambda e: slope * (e - root) + noise, (0.0, 2.0), xtol=1e-4)
    assert be.elasticity == pytest.approx(root, abs=1e-3)
    assert be.low <= root <= be.high
    assert be.pays_above == (slope > 0)


def test_no_root_in_the_bracket_says_which_side() -> None:
    """A difference of one sign over the bracket: no break-even, the sign tells always or never."""
    be = find_break_even(lambda e: np.full(5, 3.0 + e), (0.0, 2.0))
    assert math.isnan(be.elasticity) and be.sign == 1
    with pytest.raises(BreakEvenError, match="bracket"):
        find_break_even(lambda e: np.zeros(3), (2.0, 1.0))


def test_decisions_needed_has_the_power_it_claims() -> None:
    """Simulated price tests of the computed size reject the break-even elasticity about 80 % of the time."""
    p0, e_be, e_c, r = 0.8, 0.6, 1.2, 3000 / 3200
    d = decisions_needed(p0, e_be, e_c, r, decisions_per_month=500)
    n = int(d["per_arm"])
    assert d["decisions"] == 2 * n and d["months"] == pytest.approx(2 * n / 500)
    rng = np.random.default_rng(0)
    sims = 4000
    c0 = rng.binomial(n, p0, sims) / n
    c1 = rng.binomial(n, d["p_central"], sims) / n
    e_hat = -(np.log(c1) - np.log(c0)) / np.log(r)
    se = np.sqrt((1 - c1) / (n * c1) + (1 - c0) / (n * c0)) / abs(np.log(r))
    power = float((np.abs(e_hat - e_be) / se > 1.959964).mean())
    assert 0.75 <= power <= 0.85
    assert decisions_needed(p0, 0.2, e_c, r)["decisions"] < d["decisions"]  # a wider gap needs fewer decisions
    assert decisions_needed(p0, e_be, e_c, r, arms=1)["decisions"] < d["decisions"] / 2 + 1  # history as the control arm


def test_decisions_needed_refuses_what_it_cannot_measure() -> None:
    """A candidate price at which everyone continues, or a ratio of 1, is refused with the reason."""
    with pytest.raises(BreakEvenError, match="every customer would continue"):
        decisions_needed(0.95, 0.6, 1.2, 0.5)
    with pytest.raises(BreakEvenError, match="price_ratio"):
        decisions_needed(0.8, 0.6, 1.2, 1.0)


def test_objective_is_validated() -> None:
    """An unknown objective or months outside the horizon are refused before any simulation."""
    with pytest.raises(BreakEvenError, match="objective"):
        objective_of(np.zeros((2, 12, 3)), "profit")
    with pytest.raises(BreakEvenError, match="months"):
        objective_of(np.zeros((2, 12, 3)), "active", 4)
