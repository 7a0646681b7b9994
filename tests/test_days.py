"""Moscow days and ISO 8601 parsing (the rules' §2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subs_model.days import NO_TIME, _exact_local_ns, as_day, parse_dates, parse_instants, to_local_days
from subs_model.errors import LedgerError


@settings(deadline=None)  # the first example loads the compiled kernel
@given(st.lists(st.integers(-(2**61), 2**61), min_size=1, max_size=50), st.sampled_from(["Europe/Moscow", "America/Los_Angeles", "Asia/Kathmandu"]))
def test_fast_local_days_equal_tz_database(values, tz) -> None:
    """The per-day offset table gives exactly the tz database's local day, transitions included."""
    v = np.array(values, dtype=np.int64)
    assert (to_local_days(v, tz) == np.floor_divide(_exact_local_ns(v, tz), 86_400 * 10**9)).all()


def test_parse_instants_mixed_offsets_and_naive() -> None:
    """Z and ±hh:mm are converted; naive values are Moscow; empty is missing."""
    s = pd.Series(["2026-03-15T22:30:00Z", "2026-03-16T01:30:00+03:00", "2026-03-16T01:30:00", "", None])
    ns = parse_instants(s, "Europe/Moscow")
    assert ns[0] == ns[1] == ns[2]
    assert ns[3] == ns[4] == NO_TIME


def test_parse_instants_rejects_ambiguous_formats_with_row_and_column() -> None:
    """Day/month order is never guessed: 03/04/2026 is an error naming the row and column."""
    with pytest.raises(LedgerError, match=r"orders: row 2, column 'paid_at': '03/04/2026'"):
        parse_instants(pd.Series(["2026-03-04T10:00:00", "03/04/2026"]), "Europe/Moscow", where="orders", column="paid_at")


def test_parse_dates_and_as_day() -> None:
    """Dates are YYYY-MM-DD; an aware as_of timestamp is taken on its Moscow day."""
    assert parse_dates(pd.Series(["1970-01-02", None])).tolist()[0] == 1
    with pytest.raises(LedgerError, match="not a date YYYY-MM-DD"):
        parse_dates(pd.Series(["31.12.2025"]), column="valid_until")
    assert as_day("2026-03-15T22:30:00Z") == as_day("2026-03-16")
