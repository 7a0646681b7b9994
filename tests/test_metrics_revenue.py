"""Revenue policy (rules §6): breakage of lapsed renewals, its reversal on upgrade, the identity
bookings = recognised + breakage + deferred every month; money columns name their unit."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import subs_model as sm
from builders import PRICE, Ev, make_ledger
from subs_model import metrics as M

# C: subscription 2025-03-01 (end 2026-03-01); renewal code paid and issued 2026-02-20, never activated →
# lapses 2026-03-16 (deadline 2026-03-15); upgrade activated 2026-04-02 converts it.
# D: subscription 2025-01-05 (end 2026-01-05); renewal paid 2025-12-20, never activated → lapses 2026-01-20,
# never upgraded: its 3 200 ₽ stays breakage.
EVENTS = [
    Ev("subscription", "2025-03-01", license="C"), Ev("renewal", None, issued="2026-02-20T10:00:00", license="C", name="CR"),
    Ev("upgrade", "2026-04-02", license="C", upgrade_of="CR"),
    Ev("subscription", "2025-01-05", license="D"), Ev("renewal", None, issued="2025-12-20T10:00:00", license="D"),
]


def _monthly(rep: sm.Replay, as_of: str | None = None) -> pd.DataFrame:
    return M.revenue(rep, as_of).groupby("month")[list(M.REVENUE_COLUMNS)].sum()


def test_breakage_hand_case() -> None:
    """D's renewal breaks in January 2026 (+320 000); C's breaks in March and is reversed in April, when the
    upgrade starts, then spread with it: 29 days of 365 by 2026-04-30."""
    rep = sm.replay(make_ledger(EVENTS), sm.Catalog.default(), as_of="2026-04-30")
    r = M.revenue(rep).set_index(["month", "sku"])
    brk = r["breakage_kop"]
    assert brk.loc[(pd.Timestamp("2026-01-01"), "renewal")] == 320_000
    assert brk.loc[(pd.Timestamp("2026-03-01"), "renewal")] == 320_000
    assert brk.loc[(pd.Timestamp("2026-04-01"), "renewal")] == -320_000
    assert r["recognised_kop"].loc[(pd.Timestamp("2026-04-01"), "renewal")] == 320_000 * 29 // 365
    deferred_march = r["deferred_kop"].loc[(pd.Timestamp("2026-03-01"), "renewal")]
    assert deferred_march == 0  # both renewal payments are broken: nothing is owed any more
    m = _monthly(rep)
    assert (m["bookings_kop"].cumsum() == m["recognised_kop"].cumsum() + m["breakage_kop"].cumsum() + m["deferred_kop"]).all()
    # Before C's lapse, its renewal payment is deferred (paid, not yet delivered or broken).
    feb = M.revenue(rep, "2026-02-28").set_index(["month", "sku"])
    assert feb["deferred_kop"].loc[(pd.Timestamp("2026-02-01"), "renewal")] == 320_000
    assert feb["breakage_kop"].sum() == 320_000  # D only


def _ledger(draws: list[tuple[int, int, int | None, int | None]]) -> sm.Ledger:
    """Per license: subscription day, renewal issue offset from the end, its activation offset (None: never),
    and the upgrade's day after the lapse (None: none)."""
    base = dt.date(2024, 1, 1)
    events = []
    for k, (s, issue, act, up) in enumerate(draws):
        lic, start = f"L{k}", base + dt.timedelta(days=s)
        end = start + dt.timedelta(days=365)
        issued = end + dt.timedelta(days=issue)
        events.append(Ev("subscription", start.isoformat(), license=lic))
        activated = (issued + dt.timedelta(days=act)).isoformat() if act is not None else None
        events.append(Ev("renewal", activated, issued=f"{issued.isoformat()}T09:00:00", license=lic, name=f"R{k}"))
        if act is None and up is not None:
            events.append(Ev("upgrade", (end + dt.timedelta(days=15 + up)).isoformat(), license=lic, upgrade_of=f"R{k}"))
    return make_ledger(events)


@settings(max_examples=30, deadline=None)
@given(
    draws=st.lists(st.tuples(st.integers(0, 400), st.integers(-30, 10), st.one_of(st.none(), st.integers(0, 40)),
                             st.one_of(st.none(), st.integers(0, 200))), min_size=1, max_size=6),
    as_of=st.integers(300, 1100),
)
def test_bookings_equal_recognised_breakage_deferred_every_month(draws, as_of) -> None:
    """To the kopeck at every month end; deferred never negative; breakage at as_of = payments of renewal
    codes lapsed by then and not converted by an upgrade activated by then."""
    day = (dt.date(2024, 1, 1) + dt.timedelta(days=as_of)).isoformat()
    rep = sm.replay(_ledger(draws), sm.Catalog.default(), as_of=day)
    r = M.revenue(rep)
    if r.empty:
        return
    m = r.groupby("month")[["bookings_kop", "recognised_kop", "breakage_kop", "deferred_kop"]].sum()
    assert (m["bookings_kop"].cumsum() == m["recognised_kop"].cumsum() + m["breakage_kop"].cumsum() + m["deferred_kop"]).all()
    assert (r.groupby(["sku", "edition"])["deferred_kop"].cummin() >= 0).all()
    # Reference, row by row: every lapsed (not upgraded) paid renewal code.
    codes = rep.codes
    lapsed = codes[(codes["sku"] == "renewal") & (codes["status"] == "lapsed")]
    expect = sum(int(float(PRICE["renewal"]) * 100) for _ in range(len(lapsed)))
    assert r["breakage_kop"].sum() == expect


MONEY_WORDS = ("bookings", "recognised", "breakage", "deferred", "revenue", "cash", "payment", "amount", "price")


def _is_money(col: str) -> bool:
    return any(w in col for w in MONEY_WORDS) and not col.endswith(("_rate", "_share", "_count", "s_paid"))


def test_no_money_column_without_a_unit() -> None:
    """Every money column of every metric output ends in _kop (integer kopecks)."""
    rep = sm.replay(make_ledger(EVENTS), sm.Catalog.default(), as_of="2026-04-30")
    out = M.expiry_outcomes(rep)
    frames = {
        "revenue": M.revenue(rep), "upgrade_revenue": M.upgrade_revenue(rep), "upgrade_conversion": M.upgrade_conversion(rep),
        "expiry_calendar": M.expiry_calendar(rep, outcomes=out), "renewal_rates": M.renewal_rates(rep, outcomes=out),
        "period_over_period": M.period_over_period(rep, outcomes=out), "forgotten": M.forgotten_renewals(rep),
        "retention": M.cohort_retention(rep), "pooled": M.pooled_retention(rep), "outcomes": out,
    }
    for name, f in frames.items():
        for col in f.columns:
            if _is_money(col):
                assert col.endswith("_kop"), f"{name}.{col} is money without a unit"
                assert pd.api.types.is_integer_dtype(f[col].dtype), f"{name}.{col} is not integer kopecks"
    assert any(c.endswith("_kop") for c in frames["revenue"].columns)


def test_revenue_filters_edition_and_period() -> None:
    """edition= and start/end select rows; an unknown edition is refused with the valid list."""
    rep = sm.replay(make_ledger(EVENTS, licenses={"D": "basic"}), sm.Catalog.default(), as_of="2026-04-30")
    r = M.revenue(rep, edition="basic", start="2026-01-01", end="2026-01-31")
    assert set(r["edition"]) == {"basic"} and set(r["month"]) == {pd.Timestamp("2026-01-01")}
    assert r["breakage_kop"].sum() == 320_000
    with pytest.raises(sm.errors.MetricsError, match="'pro'"):
        M.revenue(rep, edition="pro")
