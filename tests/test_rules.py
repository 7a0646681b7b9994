"""One or more tests per rule R1–R14, the day boundaries, and catalog validation."""

from __future__ import annotations

import pandas as pd
import pytest

import subs_model as sm
from builders import Ev, make_ledger, periods_of, rejections_of, status_of
from subs_model.pricing import order_prices

from pathlib import Path

HANDMADE = Path(__file__).resolve().parent / "data" / "handmade"

SUB = Ev("subscription", "2025-03-01")
SUB_PERIOD = ("2025-03-01", "2026-03-01", "subscription")


def rep_of(events, *, as_of="2028-12-31", legacy=(), cat=None, **knobs):
    led = make_ledger(events, legacy=list(legacy))
    return sm.replay(led, cat or sm.Catalog.default(**knobs), as_of=as_of)


# -- R1 ------------------------------------------------------------------------------------------
def test_r1_flagged_feature_needs_coverage_unflagged_is_free() -> None:
    """R1: a requires_subscription feature follows coverage; a plain release is always available."""
    features = pd.DataFrame(
        {
            "feature_id": ["F1", "F2"],
            "name": ["ЕГАИС 4", "bugfix"],
            "released_on": ["2026-01-10", "2026-01-10"],
            "requires_subscription": [True, False],
        }
    )
    rep = rep_of([SUB], as_of="2026-06-30")
    assert rep.entitled("L1", "F1", "2026-02-28", features=features)
    assert not rep.entitled("L1", "F1", "2026-03-01", features=features)
    assert rep.entitled("L1", "F2", "2026-03-01", features=features)
    with pytest.raises(sm.LedgerError, match="unknown feature_id"):
        rep.entitled("L1", "F9", "2026-03-01", features=features)


# -- R2 / R10 --------------------------------------------------------------------------------------
def _v2(**kw) -> sm.CatalogVersion:
    prices = {"full": {"subscription": 5000, "renewal": 3500}, "basic": {"subscription": 4500, "renewal": 3000}}
    return sm.CatalogVersion.from_dict({"effective_from": "2026-03-10", "prices": prices, **kw})


def test_r2_new_version_does_not_touch_earlier_periods() -> None:
    """R2: a later catalog version (shorter term) leaves accepted periods as they were."""
    events = [SUB, Ev("subscription", "2026-05-01")]
    cat = sm.Catalog.default().with_version(_v2(term_days=100))
    assert periods_of(rep_of(events, cat=cat)) == [SUB_PERIOD, ("2026-05-01", "2026-08-09", "subscription")]


def test_r10_grace_of_the_activation_date_governs() -> None:
    """R10: a renewal on 2026-03-16 is late under 15 days but accepted once a 30-day version is in force."""
    events = [SUB, Ev("renewal", "2026-03-16", issued="2026-03-01T09:00:00")]
    assert status_of(rep_of(events), "O2") == "lapsed"
    cat = sm.Catalog.default().with_version(_v2(grace_days=30))
    rep = rep_of(events, cat=cat)
    assert periods_of(rep) == [SUB_PERIOD, ("2026-03-16", "2027-03-16", "renewal")]
    assert rep.periods["catalog_version"].tolist() == ["2020-01-01", "2026-03-10"]


def test_r10_price_by_invoice_date() -> None:
    """R10: an order is priced by the version in force on its invoice date, per edition."""
    events = [
        Ev("subscription", "2026-03-09", invoiced="2026-03-09T23:59:00"),
        Ev("subscription", "2026-03-12", invoiced="2026-03-09T21:30:00Z", license="L2"),  # Moscow 03-10
        Ev("renewal", None, issued=None, invoiced="2026-03-11T10:00:00", license="L3"),
    ]
    led = make_ledger(events, licenses={"L3": "basic"})
    prices = order_prices(led, sm.Catalog.default().with_version(_v2())).set_index("order_id")
    assert prices.loc["O1", "list_kopecks"] == 400_000
    assert prices.loc["O2", "list_kopecks"] == 500_000
    assert prices.loc["O3", "list_kopecks"] == 300_000
    assert prices.loc["O3", "catalog_version"] == "2026-03-10"


# -- R3 --------------------------------------------------------------------------------------------
def test_r3_subscription_stacks_or_starts_on_activation() -> None:
    """R3: on an active license a subscription stacks; on a lapsed one it starts on activation."""
    rep = rep_of([SUB, Ev("subscription", "2025-10-01"), Ev("subscription", "2027-06-01")])
    assert periods_of(rep) == [
        SUB_PERIOD,
        ("2026-03-01", "2027-03-01", "subscription"),
        ("2027-06-01", "2028-05-31", "subscription"),
    ]


def test_r3_subscription_basis_from_activation() -> None:
    """R3 knob: subscription_basis=from_activation ends a+365, keeping the tile from the current end."""
    rep = rep_of([SUB, Ev("subscription", "2025-10-01")], subscription_basis="from_activation")
    assert periods_of(rep) == [SUB_PERIOD, ("2026-03-01", "2026-10-01", "subscription")]


# -- R4 / R7 -------------------------------------------------------------------------------------------
def test_r4_early_renewal_allowed_while_active() -> None:
    """R4: a renewal activated while the license is active is accepted and stacks."""
    rep = rep_of([SUB, Ev("renewal", "2025-04-01")])
    assert periods_of(rep) == [SUB_PERIOD, ("2026-03-01", "2027-03-01", "renewal")]


def test_r7_deadline_moves_with_end() -> None:
    """R7: a renewal code bought for the 2026-03-01 expiry follows the end when a subscription extends it."""
    events = [
        SUB,
        Ev("renewal", "2027-03-10", issued="2026-02-01T10:00:00"),
        Ev("subscription", "2026-02-15"),
    ]
    rep = rep_of(events)
    assert periods_of(rep)[-1] == ("2027-03-10", "2028-03-09", "renewal")
    assert rep.codes.set_index("order_id").loc["O2", "deadline"] == pd.Timestamp("2027-03-15")


def test_r7_lapsed_code_stays_lapsed_after_a_new_subscription() -> None:
    """R7/R14: once the window closed with the license uncovered, the code is lapsed for good."""
    events = [
        SUB,
        Ev("renewal", "2026-05-10", issued="2026-02-01T10:00:00"),
        Ev("subscription", "2026-05-01"),
    ]
    rep = rep_of(events)
    assert status_of(rep, "O2") == "lapsed"
    assert rejections_of(rep) == [("C2", "2026-05-10", "renewal_after_deadline")]
    assert rep.codes.set_index("order_id").loc["O2", "deadline"] == pd.Timestamp("2026-03-15")


def test_r7_code_lapses_by_as_of_without_activation() -> None:
    """R7: a renewal code never activated is issued on its deadline day and lapsed the next day."""
    events = [SUB, Ev("renewal", None, issued="2026-02-01T10:00:00")]
    assert status_of(rep_of(events, as_of="2026-03-15"), "O2") == "issued"
    assert status_of(rep_of(events, as_of="2026-03-16"), "O2") == "lapsed"


# -- R5 --------------------------------------------------------------------------------------------
def test_r5_legacy_counts_as_prior_knob() -> None:
    """R5: a legacy period counts as prior by default; with the knob off the renewal is refused."""
    legacy = [("L1", "2025-01-01", "2025-12-31")]
    events = [Ev("renewal", "2026-01-10")]
    assert rejections_of(rep_of(events, legacy=legacy)) == []
    rep = rep_of(events, legacy=legacy, legacy_counts_as_prior=False)
    assert rejections_of(rep) == [("C1", "2026-01-10", "no_prior_subscription")]


def test_r5_prior_must_be_on_the_same_license() -> None:
    """R5: a subscription on another license does not make a renewal acceptable."""
    rep = rep_of([Ev("subscription", "2025-03-01", license="L2"), Ev("renewal", "2025-06-01")])
    assert rejections_of(rep) == [("C2", "2025-06-01", "no_prior_subscription")]


# -- R6 / R13 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("basis", "early", "grace"),
    [
        ("max_end_or_activation", ("2026-03-01", "2027-03-01"), ("2026-03-10", "2027-03-10")),
        ("from_expiry", ("2026-03-01", "2027-03-01"), ("2026-03-01", "2027-03-01")),
        ("from_activation", ("2026-03-01", "2027-02-20"), ("2026-03-10", "2027-03-10")),
    ],
)
def test_r6_r13_renewal_bases_tile(basis, early, grace) -> None:
    """R6/R13: each renewal basis gives its period for an early (02-20) and an in-grace (03-10) renewal."""
    e = rep_of([SUB, Ev("renewal", "2026-02-20")], renewal_basis=basis)
    g = rep_of([SUB, Ev("renewal", "2026-03-10")], renewal_basis=basis)
    assert periods_of(e)[-1][:2] == early
    assert periods_of(g)[-1][:2] == grace


# -- R8 ---------------------------------------------------------------------------------------------------
LAPSED = [SUB, Ev("renewal", "2026-03-16", issued="2026-03-01T09:00:00")]


def test_r8_upgraded_renewal_code_cannot_be_activated() -> None:
    """R8: after the upgrade, activating the renewal code is rejected as code_upgraded."""
    events = [*LAPSED, Ev("upgrade", "2026-04-02", upgrade_of="O2"), Ev("renewal", None, issued=None)]
    led = make_ledger(events)
    acts = pd.concat(
        [led.activations, pd.DataFrame([{"code": "C2", "license_id": "L1", "activated_at": "2026-04-05T10:00:00"}])]
    )
    rep = sm.replay(sm.Ledger(led.licenses, led.orders, acts), as_of="2026-12-31")
    assert rejections_of(rep)[-1] == ("C2", "2026-04-05", "code_upgraded")


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([*LAPSED, Ev("upgrade", "2026-04-02", upgrade_of="NOPE")], id="unknown-act"),
        pytest.param([SUB, Ev("renewal", "2026-03-10"), Ev("upgrade", "2026-04-02", upgrade_of="O2")], id="renewal-activated"),
        pytest.param(
            [*LAPSED, Ev("upgrade", "2026-04-02", upgrade_of="O2"), Ev("upgrade", "2026-04-03", upgrade_of="O2")],
            id="already-upgraded",
        ),
        pytest.param(
            [*LAPSED, Ev("subscription", "2025-01-01", license="L2"), Ev("upgrade", "2026-04-02", upgrade_of="O2", license="L2")],
            id="other-license",
        ),
        pytest.param([SUB, Ev("upgrade", "2026-04-02", upgrade_of="O1")], id="target-not-a-renewal"),
    ],
)
def test_r8_invalid_upgrade_targets(events) -> None:
    """R8: an upgrade naming an unknown act, an activated/upgraded renewal, or another license's is rejected."""
    rep = rep_of(events)
    assert rejections_of(rep)[-1][2] == "upgrade_invalid_target"


# -- R9 ---------------------------------------------------------------------------------------------------
def test_r9_order_without_code_is_pending_and_code_cannot_precede_issue() -> None:
    """R9: an order still before the code stage is pending; a code activated before its issue is refused."""
    events = [SUB, Ev("subscription", None, issued=None), Ev("subscription", "2025-05-01", issued="2025-05-02T10:00:00")]
    rep = rep_of(events)
    assert status_of(rep, "O2") == "pending"
    assert rejections_of(rep) == [("C3", "2025-05-01", "activated_before_issue")]


# -- R11 -------------------------------------------------------------------------------------------------
def test_r11_rejection_reasons_and_their_order() -> None:
    """R11: unknown, wrong-license, before-issue and reused codes are rejected, checked in that order."""
    led = make_ledger([SUB, Ev("subscription", None, issued="2026-08-01T10:00:00"), Ev("subscription", None, license="L2", issued="2025-01-01T00:00:00")])
    acts = pd.DataFrame(
        [
            {"code": "NOPE", "license_id": "L1", "activated_at": "2025-04-01T10:00:00"},
            {"code": "C3", "license_id": "L1", "activated_at": "2025-04-02T10:00:00"},  # L2's code
            {"code": "C2", "license_id": "L1", "activated_at": "2025-04-03T10:00:00"},  # issued 2026-08 (> as_of)
            {"code": "C1", "license_id": "L1", "activated_at": "2025-03-01T12:00:00"},
            {"code": "C1", "license_id": "L1", "activated_at": "2025-04-04T10:00:00"},
        ]
    )
    rep = sm.replay(sm.Ledger(led.licenses, led.orders, acts), as_of="2026-06-30")
    assert rejections_of(rep) == [
        ("NOPE", "2025-04-01", "unknown_code"),
        ("C3", "2025-04-02", "wrong_license"),
        ("C2", "2025-04-03", "activated_before_issue"),
        ("C1", "2025-04-04", "code_reused"),
    ]
    assert status_of(rep, "O2") == "pending"


def test_r11_code_without_issue_timestamp_is_unknown() -> None:
    """R11: a code carried by an order with no issue timestamp is an unknown code."""
    led = make_ledger([Ev("subscription", None, issued=None)])
    acts = pd.DataFrame([{"code": "C1", "license_id": "L1", "activated_at": "2025-04-01T10:00:00"}])
    rep = sm.replay(sm.Ledger(led.licenses, led.orders, acts))
    assert rejections_of(rep) == [("C1", "2025-04-01", "unknown_code")]


# -- R12 ------------------------------------------------------------------------------------------------
def test_r12_default_prices_and_variance_kept() -> None:
    """R12: 4 000 / 3 200 / 800 ₽ for both editions; an off-catalog amount is kept as a variance."""
    v = sm.Catalog.default().versions[0]
    for ed in ("full", "basic"):
        assert (v.price("subscription", ed), v.price("renewal", ed), v.price("upgrade", ed)) == (400_000, 320_000, 80_000)
    led = make_ledger([Ev("subscription", "2025-03-01", extra={"amount_rub": "3999.99"})])
    prices = order_prices(led, sm.Catalog.default())
    assert prices["paid_kopecks"].tolist() == [399_999]
    assert prices["variance_kopecks"].tolist() == [-1]
    assert periods_of(sm.replay(led)) == [SUB_PERIOD]


def test_r12_upgrade_price_derived_when_not_set() -> None:
    """R12/R8: without an explicit upgrade price, upgrade = subscription - renewal."""
    cat = sm.Catalog.default(prices={"full": {"subscription": 5000, "renewal": 3500}, "basic": {"subscription": 4000, "renewal": 3200}})
    assert cat.versions[0].price("upgrade", "full") == 150_000


# -- R14 ------------------------------------------------------------------------------------------------
def test_r14_as_of_hides_later_events() -> None:
    """R14: a replay as of a day ignores later activations and issues (their codes are pending)."""
    events = [SUB, Ev("subscription", "2025-10-01")]
    rep = rep_of(events, as_of="2025-09-30")
    assert periods_of(rep) == [SUB_PERIOD]
    assert status_of(rep, "O2") == "pending"


def test_r14_renewal_issued_after_window_closed_lapses_at_once() -> None:
    """R14: a renewal code issued after the grace window closed is lapsed at once."""
    rep = rep_of([SUB, Ev("renewal", None, issued="2026-03-20T10:00:00")], as_of="2026-03-20")
    assert status_of(rep, "O2") == "lapsed"


def test_r14_same_instant_activations_replay_by_code() -> None:
    """R14: two activations at the same instant replay in code order (C1 before C2), whatever the row order."""
    led = make_ledger([Ev("subscription", None, issued="2025-01-01T00:00:00"), Ev("subscription", None, issued="2025-01-01T00:00:00")])
    acts = pd.DataFrame(
        [
            {"code": "C2", "license_id": "L1", "activated_at": "2025-03-01T10:00:00"},
            {"code": "C1", "license_id": "L1", "activated_at": "2025-03-01T10:00:00"},
        ]
    )
    rep = sm.replay(sm.Ledger(led.licenses, led.orders, acts))
    assert rep.periods["code"].tolist() == ["C1", "C2"]


def test_r14_legacy_periods_come_first() -> None:
    """R14: legacy periods are replayed before any activation; a subscription stacks on the legacy end."""
    rep = rep_of([Ev("subscription", "2025-06-01")], legacy=[("L1", "2025-01-01", "2025-12-31")])
    assert periods_of(rep) == [("2025-01-01", "2026-01-01", "legacy"), ("2026-01-01", "2027-01-01", "subscription")]


# -- days and time (§2) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stamp", "day"),
    [
        ("2026-03-15T20:59:59Z", "2026-03-15"),
        ("2026-03-15T21:00:00Z", "2026-03-16"),
        ("2026-03-15T23:59:59Z", "2026-03-16"),
        ("2026-03-15T23:30:00+03:00", "2026-03-15"),
        ("2026-03-15T23:30:00", "2026-03-15"),  # naive = Moscow
        ("2013-06-01T20:30:00Z", "2013-06-02"),  # UTC+4 in 2013
        ("2013-06-01T19:30:00Z", "2013-06-01"),
    ],
)
def test_moscow_day_of_timestamps(stamp, day) -> None:
    """Timestamps become Moscow calendar days: UTC 21:00+ is the next day; naive is Moscow; 2013 was UTC+4."""
    led = make_ledger([Ev("subscription", stamp, issued="2010-01-01T00:00:00")])
    rep = sm.replay(led, as_of="2030-01-01")
    assert rep.periods["start"].iloc[0] == pd.Timestamp(day)


def test_term_counts_leap_day() -> None:
    """2027-03-01 + 365 days = 2028-02-29 (a term is 365 days, not a year)."""
    assert periods_of(rep_of([Ev("subscription", "2027-03-01")])) == [("2027-03-01", "2028-02-29", "subscription")]


def test_as_of_defaults_to_last_event_day() -> None:
    """Without as_of the replay sees the whole ledger, up to its last event day."""
    rep = sm.replay(make_ledger([SUB, Ev("subscription", "2025-10-01T10:00:00")]))
    assert rep.as_of == pd.Timestamp("2025-10-01")


def test_active_on_lists_every_license() -> None:
    """active_on gives a boolean per license of the ledger, covered or not."""
    rep = rep_of([SUB, Ev("subscription", "2026-06-01", license="L2")], as_of="2026-12-31")
    assert rep.active_on("2026-01-01").to_dict() == {"L1": True, "L2": False}


# -- catalog configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"renewal_basis": "from_lunch"}, "renewal_basis.*from_lunch.*max_end_or_activation"),
        ({"subscription_basis": "pile"}, "subscription_basis.*pile"),
        ({"grace_days": -1}, "grace_days.*-1.*>= 0"),
        ({"term_days": 0}, "term_days.*>= 1"),
        ({"grace_days": "fifteen"}, "grace_days.*fifteen"),
        ({"legacy_counts_as_prior": "yes"}, "legacy_counts_as_prior"),
        ({"weekly": True}, "unknown knob"),
    ],
)
def test_bad_knobs_raise_catalog_error(kwargs, match) -> None:
    """A bad knob raises CatalogError naming the field, the value and what is allowed."""
    with pytest.raises(sm.CatalogError, match=match):
        sm.Catalog.default(**kwargs)


def test_two_versions_with_one_date_and_missing_price_raise(tmp_path) -> None:
    """Two versions sharing effective_from, or a missing price, raise CatalogError with the fix."""
    prices = {"full": {"subscription": 4000, "renewal": 3200}, "basic": {"subscription": 4000, "renewal": 3200}}
    raw = {"versions": [{"effective_from": "2020-01-01", "prices": prices}, {"effective_from": "2020-01-01", "prices": prices}]}
    with pytest.raises(sm.CatalogError, match="share effective_from 2020-01-01"):
        sm.Catalog.from_dict(raw)
    bad = {"versions": [{"effective_from": "2020-01-01", "prices": {"full": {"subscription": 4000}, "basic": prices["basic"]}}]}
    with pytest.raises(sm.CatalogError, match=r"full: missing the 'renewal' price"):
        sm.Catalog.from_dict(bad)
    with pytest.raises(sm.CatalogError, match="more than 2 decimals"):
        sm.Catalog.default(prices={"full": {"subscription": "4000.001", "renewal": 1}, "basic": prices["basic"]})
    assert isinstance(sm.CatalogError("x"), ValueError)


def test_catalog_yaml_round_trip(tmp_path) -> None:
    """The shipped catalog.yaml reads, and a catalog written to YAML reads back equal."""
    cat = sm.Catalog.from_yaml("data/catalog.yaml")
    assert cat.versions[0] == sm.Catalog.default().versions[0]
    two = cat.with_version(_v2(grace_days=30, name="2026-spring"))
    path = tmp_path / "c.yaml"
    two.to_yaml(path)
    assert sm.Catalog.from_yaml(path) == two


# -- bad ledgers given as DataFrames: the engine's own checks, in a fixed order ------------------
def _faulty(faults: set[str]) -> sm.Ledger:
    """Two licenses and a few orders with the chosen faults: an order on a license not in the
    licenses table, an unknown edition, an activation without a readable timestamp."""
    return sm.Ledger(
        licenses=pd.DataFrame({"license_id": ["L1", "L2"], "customer_id": ["K1", "K2"],
                               "edition": ["full", "platinum" if "edition" in faults else "basic"]}),
        orders=pd.DataFrame({"order_id": ["O1", "O2", "O3"],
                             "license_id": ["L1", "L9" if "absent" in faults else "L2", "L1"],
                             "sku": ["subscription", "subscription", "renewal"], "code": ["C1", "C2", "C3"],
                             "code_issued_at": ["2025-01-01T10:00:00", "2025-01-02T10:00:00", "2025-12-20T10:00:00"]}),
        activations=pd.DataFrame({"code": ["C1", "C2"], "license_id": ["L1", "L2"],
                                  "activated_at": ["2025-01-01T12:00:00",
                                                   "03/01/2025" if "timestamp" in faults else "2025-01-02T12:00:00"]}),
    )


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize(
    ("faults", "match"),
    [
        ({"absent"}, r"orders row 2, column 'license_id': 'L9' is not in licenses"),
        ({"edition"}, r"licenses row 2, column 'edition': 'platinum' is not full or basic"),
        ({"timestamp"}, r"activations: row 2, column 'activated_at': '03/01/2025'"),
        ({"absent", "edition"}, "is not in licenses"),
        ({"absent", "timestamp"}, "is not in licenses"),
        ({"edition", "timestamp"}, "is not full or basic"),
    ],
)
def test_ledger_faults_are_reported_first_by_license_then_edition_then_timestamp(
    monkeypatch, faults, match, parallel
) -> None:
    """Each fault is named by table, row and column; with several, the same one comes first
    whether or not the checks run beside the replay's other work on threads."""
    import importlib

    if parallel:
        monkeypatch.setattr(importlib.import_module("subs_model.prepared"), "PARALLEL_MIN_EVENTS", 0)
    with pytest.raises(sm.LedgerError, match=match):
        sm.replay(_faulty(faults))


def test_replay_after_editing_the_ledger_in_place_sees_the_edit() -> None:
    """No hidden cache: a ledger whose table is edited in place replays as it is now."""
    led = sm.read_ledger(HANDMADE)
    cat = sm.Catalog.default()
    before = sm.replay(led, cat, as_of="2026-10-31")
    led.activations.loc[led.activations.index[::2], "code"] = "NO-SUCH-CODE"
    after = sm.replay(led, cat, as_of="2026-10-31")
    fresh = sm.replay(sm.Ledger(led.licenses, led.orders, led.activations.copy(), led.legacy_periods, led.features),
                      cat, as_of="2026-10-31")
    assert len(after.periods) < len(before.periods)
    assert (after.rejections["reason"] == "unknown_code").sum() > (before.rejections["reason"] == "unknown_code").sum()
    pd.testing.assert_frame_equal(after.periods, fresh.periods)


def test_prepared_ledger_replays_like_the_ledger_and_refuses_another_time_zone() -> None:
    """sm.prepare(ledger) held by the caller gives the same replay on any day; a catalog in another zone is refused."""
    led = sm.read_ledger(HANDMADE)
    cat = sm.Catalog.default()
    prep = sm.prepare(led, cat)
    for day in ("2025-06-30", "2026-10-31"):
        a, b = sm.replay(prep, cat, as_of=day), sm.replay(led, cat, as_of=day)
        for name in ("periods", "codes", "rejections"):
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.prepared is prep
    with pytest.raises(ValueError, match="prepare it with this catalog"):
        sm.replay(prep, sm.Catalog(cat.versions, timezone="Asia/Vladivostok"))
