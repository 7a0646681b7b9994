"""The cohort simulator, its calibration and the embedded sample."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

import subs_model as sm
from subs_model.simulate import simulate_core

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
SMALL = sm.Behaviour(arrivals_per_month=60, legacy_licenses=300)


def _frames_equal(a: sm.Ledger, b: sm.Ledger) -> bool:
    return all(a.tables()[k].equals(b.tables()[k]) for k in a.tables()) and a.tables().keys() == b.tables().keys()


def test_same_seed_same_ledger_different_seed_differs() -> None:
    """Deterministic for a seed; another seed gives another ledger."""
    cat = sm.Catalog.default()
    a = sm.simulate(SMALL, cat, start="2022-01-01", end="2024-12-31", seed=7)
    b = sm.simulate(SMALL, cat, start="2022-01-01", end="2024-12-31", seed=np.random.default_rng(7))
    c = sm.simulate(SMALL, cat, start="2022-01-01", end="2024-12-31", seed=8)
    assert _frames_equal(a, b)
    assert not _frames_equal(a, c)


def test_written_and_read_back_replays_with_only_intended_rejections(tmp_path) -> None:
    """Written to Parquet and CSV and read back, the ledger replays with only late renewals rejected."""
    cat = sm.Catalog.default()
    led = sm.simulate(SMALL, cat, start="2021-01-01", end="2025-06-30", seed=3)
    for fmt in ("parquet", "csv"):
        back = sm.read_ledger(led.write(tmp_path / fmt, format=fmt))
        assert len(back.orders) == len(led.orders)
        rep = sm.replay(back, cat, as_of="2025-06-30")
        assert set(rep.rejections["reason"]) == {"renewal_after_deadline"}


def _text(df: pd.DataFrame) -> pd.DataFrame:
    """Id columns as plain objects (None = missing), to compare categorical and text ids."""
    out = df.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, (pd.CategoricalDtype, pd.StringDtype)):
            out[c] = out[c].astype("object").where(out[c].notna(), None)
    return out


def test_categorical_ledger_is_written_as_text_and_reads_back_the_same(tmp_path) -> None:
    """Categorical ids go to Parquet as plain text (a Parquet dictionary of millions of ids
    falls back to pages the reader must hash again: several times the memory and time);
    read back, plainly or validated, and made categorical again, the ledger replays the same."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cat = sm.Catalog.default()
    led = sm.simulate(SMALL, cat, start="2021-01-01", end="2025-06-30", seed=3).categorical_ids()
    folder = led.write(tmp_path / "cat")
    for name, df in led.tables().items():
        schema = pq.read_schema(folder / f"{name}.parquet")
        for col in ("license_id", "code", "order_id"):
            if col in df.columns:
                assert isinstance(df[col].dtype, pd.CategoricalDtype)
                assert not pa.types.is_dictionary(schema.field(col).type), (name, col)
    back = sm.Ledger(**{n: pd.read_parquet(folder / f"{n}.parquet") for n in led.tables()})
    for name in led.tables():
        pd.testing.assert_frame_equal(_text(back.tables()[name]), _text(led.tables()[name]), check_dtype=False)
    want = sm.replay(led, cat, as_of="2025-06-30")
    for again in (back.categorical_ids(), sm.read_ledger(folder).categorical_ids()):
        got = sm.replay(again, cat, as_of="2025-06-30")
        for a, b in ((got.periods, want.periods), (got.codes, want.codes), (got.rejections, want.rejections)):
            pd.testing.assert_frame_equal(_text(a), _text(b))


def test_simulator_verdicts_equal_the_replay() -> None:
    """Every order the simulator counted as accepted is activated in the replay, and no other."""
    cat = sm.Catalog.default(grace_days=10, renewal_basis="from_expiry")
    rng = np.random.default_rng(5)
    sim_rng, id_rng = rng.spawn(2)
    core = simulate_core(SMALL, cat, "2021-01-01", "2025-12-31", sim_rng)
    from subs_model.simulate import core_to_ledger

    led = core_to_ledger(core, cat, id_rng)
    rep = sm.replay(led, cat, as_of="2025-12-31")
    order = np.lexsort((np.arange(len(core.o_lic)), core.o_times[:, 0]))
    expected = core.o_accepted[order]
    activated = (rep.codes["status"].astype(str).isin(["activated"])).to_numpy()
    # An upgraded renewal was never activated; an upgrade's own code is.
    assert (activated == expected).all()


def test_sim_orders_carry_every_stage_in_order_and_catalog_prices() -> None:
    """Stages are ordered (R9), upgrades carry a ticket and their renewal's act, amounts are catalog prices."""
    led = sm.simulate(SMALL, sm.Catalog.default(), start="2022-01-01", end="2024-12-31", seed=2)
    o = led.orders
    cols = ["requested_at", "invoiced_at", "paid_at", "code_issued_at"]
    t = o[cols]
    for a, b in zip(cols, cols[1:], strict=False):
        both = t[a].notna() & t[b].notna()
        assert (t.loc[both, a] <= t.loc[both, b]).all()
        assert not (t[a].isna() & t[b].notna()).any()
    up = o[o["sku"] == "upgrade"]
    assert len(up) > 0 and up["upgrade_of_act"].notna().all()
    assert up.loc[up["code_issued_at"].notna(), "ticket_at"].notna().all(), "a code only after the helpdesk ticket"
    ticket = up["ticket_at"].notna()
    assert (up.loc[ticket, "paid_at"] <= up.loc[ticket, "ticket_at"]).all()
    assert (up.loc[ticket & up["code_issued_at"].notna(), "ticket_at"] <= up.loc[ticket & up["code_issued_at"].notna(), "code_issued_at"]).all()
    assert o.loc[o["sku"] != "upgrade", "ticket_at"].isna().all()
    acts = o.set_index("act_number")["sku"]
    assert (acts.loc[up["upgrade_of_act"]] == "renewal").all()
    paid = o[o["paid_at"].notna()]
    assert set(paid["amount_rub"]) <= {"4000.00", "3200.00", "800.00"}


def test_longer_grace_gives_more_grace_renewals_and_fewer_lapses() -> None:
    """Same customers (same seed), grace 30 instead of 15: more renewals land in grace, fewer lapse."""
    b = sm.Behaviour(arrivals_per_month=150, legacy_licenses=500)
    res = {}
    for g in (15, 30):
        cat = sm.Catalog.default(grace_days=g)
        rep = sm.replay(sm.simulate(b, cat, start="2021-01-01", end="2025-12-31", seed=11), cat, as_of="2025-12-31")
        p = rep.periods.sort_values(["license_id", "start"])
        prev_end = p.groupby("license_id")["end"].shift()
        ren = p[(p["source"] == "renewal") & prev_end.notna()]
        in_grace = (ren["activated_on"] >= prev_end[ren.index]).sum()
        lapsed = rep.codes["status"].astype(str).isin(["lapsed", "upgraded"]).sum()
        res[g] = (in_grace, lapsed)
    assert res[30][0] > res[15][0]
    assert res[30][1] < res[15][1]


def test_higher_renewal_price_lowers_renewals_with_positive_elasticity() -> None:
    """The catalog price feeds the customer's intent: a dearer renewal, fewer renewals."""
    b = sm.Behaviour(arrivals_per_month=150, legacy_licenses=500)
    counts = {}
    for price in (3200, 3800):
        cat = sm.Catalog.default(prices={e: {"subscription": 4000, "renewal": price} for e in ("full", "basic")})
        led = sm.simulate(b, cat, start="2021-01-01", end="2025-12-31", seed=11)
        counts[price] = (led.orders["sku"] == "renewal").sum()
    assert counts[3800] < counts[3200]


def test_calibration_round_trip() -> None:
    """A ledger simulated with known behaviour calibrates back (±2 pp, medians ±1 day)."""
    truth = sm.Behaviour.from_yaml(ROOT / "data/behaviour.yaml").with_changes(arrivals_per_month=300, legacy_licenses=2000)
    cat = sm.Catalog.default()
    led = sm.simulate(truth, cat, start="2021-01-01", end="2026-10-31", seed=21)
    est = sm.calibrate(led, cat, as_of="2026-10-31", prior=sm.Behaviour())
    for ed in ("full", "basic"):
        assert est.p_continue[ed] == pytest.approx(truth.p_continue[ed], abs=0.02)
        med = lambda b: b.timing_offsets(ed)[np.searchsorted(np.cumsum(b.timing_pmf(ed)), 0.5)]  # noqa: E731
        assert abs(med(est) - med(truth)) <= 1
    for name in ("p_forget", "p_upgrade", "p_subscription_instead", "p_subscription_after_lapse"):
        assert getattr(est, name) == pytest.approx(getattr(truth, name), abs=0.02), name
    for stage, lt in truth.lead_times.items():
        assert abs(est.lead_times[stage].median_hours - lt.median_hours) <= 24, stage
    assert est.share_basic == pytest.approx(truth.share_basic, abs=0.02)
    assert est.legacy_licenses == truth.legacy_licenses


def test_behaviour_validation_and_yaml(tmp_path) -> None:
    """Bad parameters raise BehaviourError naming the field; YAML round-trips exactly."""
    with pytest.raises(sm.BehaviourError, match="p_forget.*1.5.*between 0 and 1"):
        sm.Behaviour(p_forget=1.5)
    with pytest.raises(sm.BehaviourError, match="unknown parameter"):
        sm.Behaviour.from_dict({"p_forgot": 0.1})
    with pytest.raises(sm.BehaviourError, match="exceed 1"):
        sm.Behaviour(p_upgrade=0.7, p_subscription_after_lapse=0.5)
    b = sm.Behaviour.from_yaml(ROOT / "data/behaviour.yaml")
    b.to_yaml(tmp_path / "b.yaml")
    assert sm.Behaviour.from_yaml(tmp_path / "b.yaml") == b


def test_embedded_sample_exercises_every_outcome() -> None:
    """The sample has early, in-grace and late renewals, forgotten ones, upgrades, churn and returns."""
    led = sm.read_ledger(ROOT / "data/sample")
    assert 8_000 <= len(led.licenses) <= 12_000
    rep = sm.replay(led, sm.Catalog.from_yaml(ROOT / "data/catalog.yaml"), as_of="2026-10-31")
    p = rep.periods.sort_values(["license_id", "start"])
    prev_end = p.groupby("license_id")["end"].shift()
    ren = p["source"] == "renewal"
    assert (ren & (p["activated_on"] < prev_end)).any(), "early renewal"
    assert (ren & (p["activated_on"] >= prev_end)).any(), "renewal in grace"
    assert (rep.rejections["reason"] == "renewal_after_deadline").any(), "late renewal"
    codes = rep.codes
    never_tried = ~codes["code"].isin(led.activations["code"])
    assert ((codes["status"] == "lapsed") & never_tried).any(), "forgotten renewal"
    assert (codes["status"] == "upgraded").any() and (p["source"] == "upgrade").any(), "upgrade"
    sub_after_gap = (p["source"] == "subscription") & (p["start"] - prev_end > pd.Timedelta(days=365))
    assert sub_after_gap.any(), "return after churn"
    last_end = p.groupby("license_id")["end"].max()
    assert (last_end < pd.Timestamp("2025-10-31")).any(), "churn"
    assert (p["source"] == "legacy").any()


def _twice(monkeypatch, setting: str, value: object, beh: sm.Behaviour, seed: int) -> tuple:
    """The simulation core as shipped, then with one module setting changed."""
    import importlib

    cat = sm.Catalog.default()
    first = simulate_core(beh, cat, "2021-01-01", "2024-12-31", seed)
    monkeypatch.setattr(importlib.import_module("subs_model.simulate"), setting, value)
    return first, simulate_core(beh, cat, "2021-01-01", "2024-12-31", seed)


def test_chunks_that_outgrow_their_slots_are_rerun_to_the_same_result(monkeypatch) -> None:
    """Too few slots per chunk: the kernel reruns those chunks, and the orders are the same."""
    normal, tight = _twice(monkeypatch, "_SLACK", 0.2, sm.Behaviour(arrivals_per_month=400, legacy_licenses=1_500), 3)
    assert normal.n_licenses > 3 * 1024, "several chunks, so some are rerun"
    assert normal.customer_years == tight.customer_years and normal.rounds == tight.rounds
    key = lambda c: np.lexsort((c.o_times[:, 0], c.o_lic))  # noqa: E731 - order within a chunk run
    a, b = key(normal), key(tight)
    assert (normal.o_lic[a] == tight.o_lic[b]).all() and (normal.o_times[a] == tight.o_times[b]).all()
    assert (normal.o_accepted[a] == tight.o_accepted[b]).all() and (normal.o_sku[a] == tight.o_sku[b]).all()
    # An upgrade points at the same renewal (by its license and request time).
    up_a = normal.o_upgrade_of[a]
    up_b = tight.o_upgrade_of[b]
    assert ((up_a >= 0) == (up_b >= 0)).all()
    ok = up_a >= 0
    assert (normal.o_times[up_a[ok], 0] == tight.o_times[up_b[ok], 0]).all()


def test_threads_do_not_change_the_result(monkeypatch) -> None:
    """One worker thread or several: the same orders in the same order."""
    cat = sm.Catalog.default()
    beh = sm.Behaviour(arrivals_per_month=300, legacy_licenses=1_000)
    many = simulate_core(beh, cat, "2021-01-01", "2024-12-31", 4)
    monkeypatch.setattr(importlib.import_module("subs_model.workers"), "_setting", 1)
    one = simulate_core(beh, cat, "2021-01-01", "2024-12-31", 4)
    assert (many.o_times == one.o_times).all() and (many.o_upgrade_of == one.o_upgrade_of).all()
