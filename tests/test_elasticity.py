"""Renewal-price elasticity: measured from catalog price changes, a range in the behaviour, used by calibrate."""

from __future__ import annotations

import re

import pytest

import subs_model as sm
from subs_model.behaviour import Behaviour, BehaviourError
from subs_model.whatif import Scenario

TRUTH = 1.5


def _rise_catalog() -> sm.Catalog:
    """Today's catalog plus a version from 2024-01-01 with the renewal at 3 800 ₽."""
    rise = Scenario("rise", effective_from="2024-01-01",
                    catalog={"prices": {"full": {"renewal": 3800}, "basic": {"renewal": 3800}}})
    return rise.catalog_for(sm.Catalog.default(), "2024-01-01")


def _ledger(seed: int, catalog: sm.Catalog) -> sm.Ledger:
    beh = Behaviour(arrivals_per_month=40, legacy_licenses=300, elasticity=TRUTH)
    return sm.simulate(beh, catalog, start="2021-06-01", end="2025-12-31", seed=seed)


def test_interval_covers_the_true_elasticity_in_most_seeds() -> None:
    """On 10 simulated ledgers with a known elasticity and a price change, the 90 % interval covers it in ≥ 8."""
    cat = _rise_catalog()
    hits = 0
    for seed in range(10):
        est = sm.estimate_elasticity(_ledger(seed, cat), cat, "2025-12-31")
        assert est.measured and est.decisions > 1000 and est.changes == ("2024-01-01",)
        hits += est.low <= TRUTH <= est.high
    assert hits >= 8, hits


def test_no_price_change_is_said_not_guessed() -> None:
    """A ledger lived under one renewal price holds no estimate and says so."""
    cat = sm.Catalog.default()
    est = sm.estimate_elasticity(_ledger(1, cat), cat, "2025-12-31")
    assert not est.measured and est.estimate is None
    assert "no renewal price change" in est.statement


def test_a_change_without_decided_ends_after_it_is_not_measurable() -> None:
    """A price change too recent for decided term ends after it: no estimate, the statement names the day."""
    cat = _rise_catalog()
    est = sm.estimate_elasticity(_ledger(2, cat), cat, "2024-01-20")
    assert not est.measured and "2024-01-01" in est.statement


def test_calibrate_uses_the_estimate_and_says_so() -> None:
    """With a price change in the ledger, calibrate's elasticity is the estimate, its range the interval."""
    cat = _rise_catalog()
    led = _ledger(3, cat)
    est = sm.estimate_elasticity(led, cat, "2025-12-31")
    beh = sm.calibrate(led, cat, "2025-12-31")
    assert beh.elasticity == pytest.approx(est.estimate)
    assert beh.elasticity_range == pytest.approx((est.low, est.high))
    assert beh.elasticity_source.startswith("estimated from")
    assert sm.calibrate(_ledger(3, sm.Catalog.default()), sm.Catalog.default(), "2025-12-31").elasticity_source == "prior"


def test_behaviour_range_is_validated_and_old_files_still_load(tmp_path) -> None:
    """elasticity_range: two numbers holding the central value; a file without it gets [0, 2] widened to the elasticity."""
    assert Behaviour().elasticity_range == (0.0, 2.0)
    assert Behaviour.from_dict({"elasticity": 3.0}).elasticity_range == (0.0, 3.0)
    old = tmp_path / "old.yaml"
    old.write_text("elasticity: 1.2\np_forget: 0.1\n")
    assert Behaviour.from_yaml(old).elasticity_range == (0.0, 2.0)
    b = Behaviour.from_dict({"elasticity": 0.8, "elasticity_range": [0.5, 1.0]})
    assert Behaviour.from_dict(b.to_dict()) == b
    for bad, message in (([1], "needs two numbers"), ([0, 1], "does not hold the central elasticity 1.2"),
                         ([2, 1], "0 <= low <= high"), ("x", "not a list")):
        with pytest.raises(BehaviourError, match=message):
            Behaviour.from_dict({"elasticity_range": bad})


_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


@pytest.mark.parametrize("case", ["none", "unmeasurable", "measured"])
def test_statement_in_the_report_language(case) -> None:
    """Each outcome said in Russian (no English words, days as 01.01.2024, plurals agree) and in English; the API's stays English."""
    cat = sm.Catalog.default() if case == "none" else _rise_catalog()
    est = sm.estimate_elasticity(_ledger(2, cat), cat, "2024-01-20" if case == "unmeasurable" else "2025-12-31")
    assert est.measured == (case == "measured")
    ru, en = est.statement_in("ru"), est.statement_in("en")
    assert est.statement_in() == en and not _CYRILLIC.search(en) and not _CYRILLIC.search(est.statement)
    assert _CYRILLIC.search(ru) and not re.search(r"[A-Za-z]{2,}", ru), ru
    if case != "none":
        assert "01.01.2024" in ru and "1 Jan 2024" in en and "2024-01-01" not in ru + en
        assert "365 дней" in ru and "365 days" in en
    if case == "measured":
        n = sm.notes.count(est.decisions, "term_end", "ru")
        assert f"использовано {n}" in ru and sm.notes.number(est.estimate, "ru", 2) in ru
    with pytest.raises(ValueError, match="lang 'de'"):
        est.statement_in("de")
