"""The money policy: exact decimal rubles in the ledger once read, integer kopecks in the API,
rubles with ₽ for people; one module converts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from test_profiles import P1C, export_1c

import subs_model as sm
from subs_model import money
from subs_model.pricing import parse_kopecks

ROOT = Path(__file__).resolve().parents[1]


@given(st.lists(st.integers(-1, 10**14 - 1), max_size=30))
def test_kopecks_and_decimal_rubles_round_trip(kop) -> None:
    """Kopecks → exact rubles → kopecks is the identity (-1 = missing ↔ NA)."""
    k = np.array(kop, np.int64)
    rub = money.decimal_rubles(k)
    assert rub.dtype == money.RUB
    np.testing.assert_array_equal(money.kopecks(rub), k)
    assert rub.isna().to_numpy().tolist() == (k < 0).tolist()


def test_ledger_amount_is_exact_once_read_and_sums_as_money(tmp_path) -> None:
    """read_ledger gives amount_rub as exact rubles; .sum() adds money (it used to concatenate text);
    CSV and Parquet round trips keep every amount."""
    led = sm.read_ledger(ROOT / "data/sample")
    a = led.orders["amount_rub"]
    assert a.dtype == money.RUB
    assert int(a.sum() * 100) == int(parse_kopecks(a)[parse_kopecks(a) >= 0].sum())
    for fmt in ("csv", "parquet"):
        back = sm.read_ledger(led.write(tmp_path / fmt, format=fmt))
        assert back.orders["amount_rub"].dtype == money.RUB
        assert back.orders["amount_rub"].equals(a)


def test_1c_amounts_with_spaces_and_commas_read_exactly(tmp_path) -> None:
    """1C's «3 200,00» reads as the same exact amounts as the handmade CSV."""
    one_c = sm.read_ledger(export_1c(tmp_path / "1c"), profile=P1C)
    plain = sm.read_ledger(ROOT / "tests/data/handmade")
    assert one_c.orders["amount_rub"].dtype == money.RUB
    np.testing.assert_array_equal(parse_kopecks(one_c.orders["amount_rub"]), parse_kopecks(plain.orders["amount_rub"]))


def test_people_read_rubles_with_the_sign() -> None:
    """rub() and rub_table() write rubles with ₽; *_kop columns become *_rub."""
    assert money.rub(320_000) == "3\u202f200 ₽" and money.rub(-80_050) == "-800,50 ₽"
    t = money.rub_table(pd.DataFrame({"month": ["2026-01"], "bookings_kop": [123_456], "ends": [3]}))
    assert list(t.columns) == ["month", "bookings_rub", "ends"] and t["bookings_rub"].iloc[0] == "1\u202f234,56 ₽"
    assert money.rubles(np.array([320_000]))[0] == 3200.0
