"""One small test per rule function of the executable specification (``subs_model/rules.py``),
on hand-made inputs; each cites its rule."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

import subs_model as sm
from subs_model import rules
from subs_model.catalog import Sku
from subs_model.replay import CodeStatus, Reason
from subs_model.rules import CodeState, Coverage, Order

D = dt.date.fromisoformat
MSK = ZoneInfo("Europe/Moscow")
DEFAULT = sm.Catalog.default()


def two_versions(**later) -> sm.Catalog:
    """The default catalog and a second version from 2026-03-10 with ``later``'s knobs."""
    prices = {e: {"subscription": 5000, "renewal": 3500} for e in ("full", "basic")}
    later = {"effective_from": "2026-03-10", "prices": prices, **later}
    return DEFAULT.with_version(sm.CatalogVersion.from_dict(later))


def order(sku: Sku = Sku.RENEWAL, *, license_id: str = "L1", state: CodeState = CodeState.OPEN,
          issued: str | None = "2026-02-01T10:00:00+03:00", act: str | None = "A1",
          upgrade_of: str | None = None) -> Order:
    """An order whose code was issued on ``issued`` (None: not yet)."""
    at = None if issued is None else dt.datetime.fromisoformat(issued).astimezone(dt.UTC)
    return Order(0, "O1", license_id, sku, "C1", act, upgrade_of, at, None if at is None else rules.local_day(at, MSK),
                 state=state)


def covered_until(end: str | None, *, legacy: bool = False) -> Coverage:
    return Coverage(end=None if end is None else D(end), prior_subscription=end is not None and not legacy,
                    prior_legacy=legacy)


# -- §2 days ----------------------------------------------------------------------------------------------
def test_local_day_is_the_moscow_calendar_day() -> None:
    """§2 (G9): 2026-03-15T22:30:00Z happens on 16 March in Moscow; a naive time is Moscow time."""
    assert rules.local_day(rules.instant("2026-03-15T22:30:00Z", MSK), MSK) == D("2026-03-16")
    assert rules.local_day(rules.instant("2026-03-15T23:59:00", MSK), MSK) == D("2026-03-15")
    assert rules.instant("", MSK) is None


def test_instant_refuses_a_naive_time_that_does_not_exist_locally() -> None:
    """§2: a naive time in a summer-time gap has no instant; the rules do not guess one."""
    with pytest.raises(ValueError, match="does not exist or is ambiguous"):
        rules.instant("2025-03-09T02:15:00", ZoneInfo("America/Los_Angeles"))


# -- R10 ------------------------------------------------------------------------------------------------
def test_r10_version_on_a_day() -> None:
    """R10: the version in force on a day governs it; the first version also governs earlier days."""
    cat = two_versions(grace_days=30)
    assert rules.version_on(cat, D("2026-03-09")).grace_days == 15
    assert rules.version_on(cat, D("2026-03-10")).grace_days == 30
    assert rules.version_on(cat, D("2019-01-01")) is cat.versions[0]


# -- R4, R7 -----------------------------------------------------------------------------------------------
def test_r4_closing_day_and_deadline_one_version() -> None:
    """R4 (G4): after an end on 2026-03-01 the deadline is 2026-03-15; the window closes on the 16th."""
    assert rules.closing_day(D("2026-03-01"), DEFAULT) == D("2026-03-16")
    assert rules.renewal_deadline(D("2026-03-01"), DEFAULT) == D("2026-03-15")
    assert rules.closing_day(D("2026-03-01"), sm.Catalog.default(grace_days=0)) == D("2026-03-01")


def test_r10_closing_day_takes_the_grace_of_each_day() -> None:
    """R4 with R10: a day d >= end is closed when d >= end + grace of the version in force on d."""
    assert rules.closing_day(D("2026-03-01"), two_versions(grace_days=30)) == D("2026-03-31")  # open on 03-10
    assert rules.closing_day(D("2026-02-01"), two_versions(grace_days=30)) == D("2026-02-16")  # closed before
    assert rules.closing_day(D("2026-03-01"), two_versions(grace_days=5)) == D("2026-03-10")  # closes on switching


def test_r4_r7_window_closed() -> None:
    """R4, R7: a renewal on the deadline is on time, the day after is late."""
    assert not rules.window_closed(D("2026-03-01"), D("2026-03-15"), DEFAULT)
    assert rules.window_closed(D("2026-03-01"), D("2026-03-16"), DEFAULT)


# -- R5 ------------------------------------------------------------------------------------------------
def test_r5_has_prior() -> None:
    """R5: an accepted activation counts as prior; a legacy period counts when the knob says so."""
    v, no_legacy = DEFAULT.versions[0], sm.Catalog.default(legacy_counts_as_prior=False).versions[0]
    assert not rules.has_prior(Coverage(), v)
    assert rules.has_prior(covered_until("2026-03-01"), no_legacy)
    assert rules.has_prior(covered_until("2026-03-01", legacy=True), v)
    assert not rules.has_prior(covered_until("2026-03-01", legacy=True), no_legacy)


# -- R11 ------------------------------------------------------------------------------------------------
def test_r11_identity_refusal() -> None:
    """R11: unknown code, wrong license, activated before issue (by instant), in that order."""
    at = rules.instant("2026-02-01T12:00:00+03:00", MSK)
    assert rules.identity_refusal(None, "L1", at) is Reason.UNKNOWN_CODE
    assert rules.identity_refusal(order(license_id="L2", issued="2026-02-02T00:00:00+03:00"), "L1", at) is (
        Reason.WRONG_LICENSE)
    assert rules.identity_refusal(order(issued="2026-02-01T12:00:01+03:00"), "L1", at) is Reason.ACTIVATED_BEFORE_ISSUE
    assert rules.identity_refusal(order(issued="2026-02-01T12:00:00+03:00"), "L1", at) is None


def test_r11_reuse_refusal() -> None:
    """R11: a code is activated at most once."""
    assert rules.reuse_refusal(order(Sku.SUBSCRIPTION, state=CodeState.ACCEPTED)) is Reason.CODE_REUSED
    assert rules.reuse_refusal(order(Sku.SUBSCRIPTION)) is None


# -- R4, R5, R7, R8 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "coverage", "day", "reason"),
    [
        (CodeState.OPEN, covered_until("2026-03-01"), "2026-02-20", None),  # early (R4)
        (CodeState.OPEN, covered_until("2026-03-01"), "2026-03-15", None),  # on the deadline (R4)
        (CodeState.OPEN, covered_until("2026-03-01"), "2026-03-16", Reason.RENEWAL_AFTER_DEADLINE),  # R4
        (CodeState.LAPSED, covered_until("2027-03-01"), "2026-05-01", Reason.RENEWAL_AFTER_DEADLINE),  # for good (R7)
        (CodeState.OPEN, Coverage(), "2026-03-10", Reason.NO_PRIOR_SUBSCRIPTION),  # R5
        (CodeState.UPGRADED, Coverage(), "2026-03-10", Reason.CODE_UPGRADED),  # R8, checked before R5
    ],
)
def test_r4_r5_r7_r8_renewal_refusal(state, coverage, day, reason) -> None:
    """R4, R5, R7, R8: why a renewal activation is refused (or None: accepted)."""
    assert rules.renewal_refusal(order(state=state), coverage, D(day), DEFAULT) is reason


def test_renewal_refusal_ignores_other_skus() -> None:
    """R4: only renewals have a deadline; a subscription is never late (R3)."""
    assert rules.renewal_refusal(order(Sku.SUBSCRIPTION), Coverage(), D("2026-03-10"), DEFAULT) is None


def test_r8_upgrade_target() -> None:
    """R8: the target is the renewal of the upgrade's own license with the act number it names."""
    renewal = order(act="A7")
    by_act = {("L1", "A7"): renewal}
    assert rules.upgrade_target(order(Sku.UPGRADE, act="A8", upgrade_of="A7"), by_act) is renewal
    assert rules.upgrade_target(order(Sku.UPGRADE, license_id="L2", act="A8", upgrade_of="A7"), by_act) is None
    assert rules.upgrade_target(order(Sku.UPGRADE, act="A8", upgrade_of=None), by_act) is None


@pytest.mark.parametrize(
    ("target_state", "reason"),
    [
        (CodeState.LAPSED, None),
        (CodeState.OPEN, None),  # choice: a renewal that has not lapsed yet may be upgraded
        (CodeState.ACCEPTED, Reason.UPGRADE_INVALID_TARGET),
        (CodeState.UPGRADED, Reason.UPGRADE_INVALID_TARGET),
        (None, Reason.UPGRADE_INVALID_TARGET),  # no such renewal
    ],
)
def test_r8_upgrade_target_refusal(target_state, reason) -> None:
    """R8: an upgrade needs a renewal target neither activated nor already upgraded."""
    target = None if target_state is None else order(state=target_state)
    assert rules.upgrade_target_refusal(order(Sku.UPGRADE, upgrade_of="A1"), target) is reason


# -- R3, R6, R13 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sku", "knobs", "end", "day", "period"),
    [
        (Sku.SUBSCRIPTION, {}, None, "2025-03-01", ("2025-03-01", "2026-03-01")),  # G1: a new license
        (Sku.SUBSCRIPTION, {}, "2026-03-01", "2025-10-01", ("2026-03-01", "2027-03-01")),  # G2: stacked (R3)
        (Sku.SUBSCRIPTION, {}, "2026-03-01", "2026-04-01", ("2026-04-01", "2027-04-01")),  # lapsed: from a
        (Sku.SUBSCRIPTION, {"subscription_basis": "from_activation"}, "2026-03-01", "2025-10-01",
         ("2026-03-01", "2026-10-01")),
        (Sku.UPGRADE, {}, "2026-03-01", "2026-04-02", ("2026-04-02", "2027-04-02")),  # G5: as a subscription
        (Sku.RENEWAL, {}, "2026-03-01", "2026-03-10", ("2026-03-10", "2027-03-10")),  # G3: gap uncovered
        (Sku.RENEWAL, {}, "2026-03-01", "2026-02-20", ("2026-03-01", "2027-03-01")),  # G10: no day lost
        (Sku.RENEWAL, {"renewal_basis": "from_activation"}, "2026-03-01", "2026-02-20",
         ("2026-03-01", "2027-02-20")),  # G11: 9 days forfeited
        (Sku.RENEWAL, {"renewal_basis": "from_expiry"}, "2026-03-01", "2026-03-10",
         ("2026-03-01", "2027-03-01")),  # G12: the gap covered
        (Sku.RENEWAL, {"renewal_basis": "from_activation", "term_days": 30}, "2026-03-01", "2026-01-10",
         ("2026-03-01", "2026-03-01")),  # R13: would end before start: nothing added
        (Sku.SUBSCRIPTION, {}, None, "2027-03-01", ("2027-03-01", "2028-02-29")),  # G7: 365 days, leap day
    ],
)
def test_r3_r6_r13_extend(sku, knobs, end, day, period) -> None:
    """R3, R6, R13: the period an accepted activation adds, under each basis."""
    version = sm.Catalog.default(**knobs).versions[0]
    got = rules.extend(sku, None if end is None else D(end), D(day), version)
    assert got == (D(period[0]), D(period[1]))


# -- R2 ------------------------------------------------------------------------------------------------
def test_r2_legacy_period_ends_the_day_after_valid_until() -> None:
    """R2 (G8): a legacy period valid until 2025-12-31 ends (exclusive) on 2026-01-01."""
    assert rules.legacy_period(D("2025-01-01"), D("2025-12-31")) == (D("2025-01-01"), D("2026-01-01"))


# -- R7, R14 ---------------------------------------------------------------------------------------------
def test_r14_issue_fate() -> None:
    """R14: a renewal code waits on the current expiry, or lapses at once (no prior period; window closed)."""
    assert rules.issue_fate(covered_until("2026-03-01"), D("2026-03-15"), DEFAULT) == (CodeState.OPEN, None)
    assert rules.issue_fate(Coverage(), D("2026-03-15"), DEFAULT) == (CodeState.LAPSED, None)
    assert rules.issue_fate(covered_until("2026-03-01"), D("2026-03-16"), DEFAULT) == (
        CodeState.LAPSED, D("2026-03-15"))


def test_r7_lapse_waiting() -> None:
    """R7: the codes waiting on an expiry lapse with its deadline; codes already decided keep their state."""
    waiting, accepted = order(), order(state=CodeState.ACCEPTED)
    coverage = covered_until("2026-03-01")
    coverage.waiting = [waiting, accepted]
    rules.lapse_waiting(coverage, DEFAULT)
    assert (waiting.state, waiting.deadline) == (CodeState.LAPSED, D("2026-03-15"))
    assert accepted.state is CodeState.ACCEPTED
    assert coverage.waiting == []


@pytest.mark.parametrize(
    ("state", "issued", "status"),
    [
        (CodeState.OPEN, None, CodeStatus.PENDING),
        (CodeState.OPEN, "2026-07-01T10:00:00+03:00", CodeStatus.PENDING),  # issued after as_of
        (CodeState.OPEN, "2026-02-01T10:00:00+03:00", CodeStatus.ISSUED),
        (CodeState.ACCEPTED, "2026-02-01T10:00:00+03:00", CodeStatus.ACTIVATED),
        (CodeState.LAPSED, "2026-02-01T10:00:00+03:00", CodeStatus.LAPSED),
        (CodeState.UPGRADED, None, CodeStatus.UPGRADED),  # upgraded before its code came
    ],
)
def test_r14_code_status(state, issued, status) -> None:
    """R14: the code's status as of a day."""
    assert rules.code_status(order(state=state, issued=issued), D("2026-06-30")) is status


def test_r14_reported_deadline_only_for_renewal_codes_issued_by_as_of() -> None:
    """R4, R14: a deadline is shown for a renewal code issued by as_of."""
    renewal = order()
    renewal.deadline = D("2026-03-15")
    assert rules.reported_deadline(renewal, D("2026-06-30")) == D("2026-03-15")
    assert rules.reported_deadline(renewal, D("2026-01-31")) is None
    sub = order(Sku.SUBSCRIPTION)
    sub.deadline = D("2026-03-15")
    assert rules.reported_deadline(sub, D("2026-06-30")) is None


def test_r14_replay_key_issue_before_activation_then_code() -> None:
    """R14: per license by instant; at one instant a code issue first, then activations by code."""
    at = rules.instant("2026-03-01T10:00:00+03:00", MSK)
    issue = rules.Issue(at, at.date(), order())
    act_b = rules.Activation(0, "B", "L1", at, at.date())
    act_a = rules.Activation(1, "A", "L1", at, at.date())
    no_code = rules.Activation(2, None, "L1", at, at.date())
    earlier = rules.Activation(3, "Z", "L1", at - dt.timedelta(seconds=1), at.date())
    events = [act_b, act_a, issue, no_code, earlier]
    assert sorted(events, key=rules.replay_key) == [earlier, issue, no_code, act_a, act_b]


def test_docs_link_every_rule_to_an_existing_function() -> None:
    """docs/rules.md cites rule functions as subs_model/rules.py::name; each exists and is public in rules."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs/rules.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"subs_model/rules\.py::(\w+)", text))
    assert {"closing_day", "renewal_refusal", "upgrade_target_refusal", "extend", "version_on"} <= cited
    assert sorted(n for n in cited if not callable(getattr(rules, n, None))) == []
    assert cited <= set(rules.__all__)
