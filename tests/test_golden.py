"""The golden cases G1–G12 of the rules, written as data: events in, periods/statuses/rejections out.

Each runs on both engines: the fast one and the executable specification (``engine="reference"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import subs_model as sm
from builders import Ev, make_ledger, periods_of, rejections_of, status_of

SUB = ("2025-03-01", "2026-03-01", "subscription")


@dataclass
class Golden:
    name: str
    events: list[Ev]
    periods: list[tuple[str, str, str]]
    statuses: dict[str, str] = field(default_factory=dict)
    rejections: list[tuple[str, str, str]] = field(default_factory=list)
    knobs: dict = field(default_factory=dict)
    legacy: list = field(default_factory=list)
    inactive: list[str] = field(default_factory=list)  # days the license is not covered
    deadlines: dict[str, str] = field(default_factory=dict)


CASES = [
    Golden("G1", [Ev("subscription", "2025-03-01")], [SUB], {"O1": "activated"}, inactive=["2026-03-01"]),
    Golden(
        "G2",
        [Ev("subscription", "2025-03-01"), Ev("subscription", "2025-10-01")],
        [SUB, ("2026-03-01", "2027-03-01", "subscription")],
        {"O1": "activated", "O2": "activated"},
    ),
    Golden(
        "G3",
        [Ev("subscription", "2025-03-01"), Ev("renewal", "2026-03-10")],
        [SUB, ("2026-03-10", "2027-03-10", "renewal")],
        {"O2": "activated"},
        inactive=["2026-03-01", "2026-03-05", "2026-03-09"],
        deadlines={"O2": "2026-03-15"},
    ),
    Golden(
        "G4-deadline-day",
        [Ev("subscription", "2025-03-01"), Ev("renewal", "2026-03-15")],
        [SUB, ("2026-03-15", "2027-03-15", "renewal")],
        {"O2": "activated"},
        deadlines={"O2": "2026-03-15"},
    ),
    Golden(
        "G4-day-after",
        [Ev("subscription", "2025-03-01"), Ev("renewal", "2026-03-16", issued="2026-03-01T09:00:00")],
        [SUB],
        {"O2": "lapsed"},
        [("C2", "2026-03-16", "renewal_after_deadline")],
        deadlines={"O2": "2026-03-15"},
    ),
    Golden(
        "G5",
        [
            Ev("subscription", "2025-03-01"),
            Ev("renewal", "2026-03-16", issued="2026-03-01T09:00:00"),
            Ev("upgrade", "2026-04-02", upgrade_of="O2"),
        ],
        [SUB, ("2026-04-02", "2027-04-02", "upgrade")],
        {"O2": "upgraded", "O3": "activated"},
        [("C2", "2026-03-16", "renewal_after_deadline")],
    ),
    Golden("G6", [Ev("renewal", "2026-03-10")], [], {"O1": "lapsed"}, [("C1", "2026-03-10", "no_prior_subscription")]),
    Golden("G7", [Ev("subscription", "2027-03-01")], [("2027-03-01", "2028-02-29", "subscription")]),
    Golden(
        "G8",
        [Ev("renewal", "2026-01-15")],
        [("2025-01-01", "2026-01-01", "legacy"), ("2026-01-15", "2027-01-15", "renewal")],
        {"O1": "activated"},
        legacy=[("L1", "2025-01-01", "2025-12-31")],
        deadlines={"O1": "2026-01-15"},
    ),
    Golden(
        "G9",
        [
            Ev("subscription", "2025-03-01"),
            Ev("renewal", "2026-03-15T22:30:00Z", issued="2026-03-15T10:00:00+03:00"),
        ],
        [SUB],
        {"O2": "lapsed"},
        [("C2", "2026-03-16", "renewal_after_deadline")],
    ),
    Golden(
        "G10",
        [Ev("subscription", "2025-03-01"), Ev("renewal", "2026-02-20")],
        [SUB, ("2026-03-01", "2027-03-01", "renewal")],
        {"O2": "activated"},
    ),
    Golden(
        "G11",
        [Ev("subscription", "2025-03-01"), Ev("renewal", "2026-02-20")],
        [SUB, ("2026-03-01", "2027-02-20", "renewal")],
        knobs={"renewal_basis": "from_activation"},
    ),
    Golden(
        "G12",
        [Ev("subscription", "2025-03-01"), Ev("renewal", "2026-03-10")],
        [SUB, ("2026-03-01", "2027-03-01", "renewal")],
        knobs={"renewal_basis": "from_expiry"},
        inactive=[],
    ),
]


ENGINES = ["fast", "reference"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Golden, engine: str) -> None:
    """Each golden case of the rules yields exactly its periods, statuses and rejections, on both engines."""
    led = make_ledger(case.events, legacy=case.legacy)
    rep = sm.replay(led, sm.Catalog.default(**case.knobs), as_of="2028-12-31", engine=engine)
    assert periods_of(rep) == case.periods
    for order_id, status in case.statuses.items():
        assert status_of(rep, order_id) == status, order_id
    assert rejections_of(rep) == case.rejections
    for day in case.inactive:
        assert not rep.is_active("L1", day), day
    for order_id, deadline in case.deadlines.items():
        assert rep.codes.set_index("order_id").loc[order_id, "deadline"].date().isoformat() == deadline


@pytest.mark.parametrize("engine", ENGINES)
def test_g1_last_covered_day_is_day_before_end(engine: str) -> None:
    """G1: the last covered day is 2026-02-28; 2026-03-01 is the first day without coverage."""
    rep = sm.replay(make_ledger([Ev("subscription", "2025-03-01")]), as_of="2026-06-30", engine=engine)
    assert rep.is_active("L1", "2026-02-28")
    assert not rep.is_active("L1", "2026-03-01")


@pytest.mark.parametrize("engine", ENGINES)
def test_g3_uncovered_days_are_nine(engine: str) -> None:
    """G3: the renewal in grace leaves 2026-03-01 … 03-09 (9 days) uncovered."""
    led = make_ledger([Ev("subscription", "2025-03-01"), Ev("renewal", "2026-03-10")])
    rep = sm.replay(led, as_of="2027-01-01", engine=engine)
    active = [rep.is_active("L1", f"2026-03-{d:02d}") for d in range(1, 11)]
    assert active == [False] * 9 + [True]


def test_g5_renewal_plus_upgrade_costs_one_subscription() -> None:
    """G5: the lapsed renewal (3 200 ₽) plus its upgrade (800 ₽) cost exactly one subscription."""
    cat = sm.Catalog.default()
    v = cat.version_at("2026-04-02")
    assert v.price("renewal", "full") + v.price("upgrade", "full") == v.price("subscription", "full") == 400_000
