"""Money, in one place: integer kopecks in the API, exact rubles in the ledger, «3 200 ₽» for people.

The policy (rules §6): money is exact. A ledger's ``amount_rub`` becomes exact decimal rubles
(:data:`RUB`, an Arrow ``decimal128(14, 2)``) once read; metric columns hold integer kopecks
and end in ``_kop``; what a person reads — notes, tables, charts, CSV, XLSX — is rubles with
₽. Every conversion between the three goes through this module.

>>> rub(320_000)
'3\u202f200 ₽'
>>> kopecks(decimal_rubles(np.array([320_000, -1]))).tolist()
[320000, -1]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["RUB", "decimal_rubles", "kopecks", "rub", "rub_table", "rubles"]

#: Exact rubles with kopecks: 12 digits before the point (under a trillion rubles), 2 after.
RUB = pd.ArrowDtype(pa.decimal128(14, 2))


def decimal_rubles(kop: np.ndarray) -> pd.Series:
    """Integer kopecks (``-1``: missing) → exact decimal rubles (:data:`RUB`; missing → NA)."""
    kop = np.asarray(kop, dtype=np.int64)
    missing = kop < 0
    # A decimal128 is a 16-byte integer of its unscaled value: with scale 2, the kopecks themselves.
    words = np.zeros((len(kop), 2), np.int64)
    words[:, 0] = np.where(missing, 0, kop)
    validity = pa.array(~missing).buffers()[1] if missing.any() else None
    arr = pa.Array.from_buffers(pa.decimal128(14, 2), len(kop), [validity, pa.py_buffer(words.tobytes())],
                                null_count=int(missing.sum()))
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), dtype=RUB)


def kopecks(rubles: pd.Series) -> np.ndarray:
    """Exact decimal rubles (:data:`RUB` or any Arrow decimal) → int64 kopecks (NA → ``-1``)."""
    arr = pa.array(rubles.array) if not isinstance(rubles.array, pd.arrays.ArrowExtensionArray) else rubles.array._pa_array
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    scaled = arr.cast(pa.decimal128(18, 2))
    words = np.frombuffer(scaled.buffers()[1], dtype=np.int64, count=2 * (len(scaled) + scaled.offset))[2 * scaled.offset :: 2]
    out = words.copy()
    if scaled.null_count:
        out[np.asarray(scaled.is_null())] = -1
    return out


def rubles(kop: Any) -> Any:
    """Kopecks → rubles as floats, for chart axes only (a chart draws, it does not add up)."""
    return np.asarray(kop, dtype=np.float64) / 100 if not np.isscalar(kop) else float(kop) / 100


def rub(kop: float | int) -> str:
    """Kopecks as rubles with narrow no-break-space thousands: ``rub(320000) == '3 200 ₽'``.

    >>> rub(12345)
    '123,45 ₽'
    """
    k = int(round(kop))
    sign = "-" if k < 0 else ""
    r, c = divmod(abs(k), 100)
    whole = f"{r:,}".replace(",", "\u202f")
    return f"{sign}{whole} ₽" if c == 0 else f"{sign}{whole},{c:02d} ₽"


def rub_table(df: pd.DataFrame) -> pd.DataFrame:
    """A table for people: every ``*_kop`` column as rubles with ₽ (text), renamed to ``*_rub``.

    >>> rub_table(pd.DataFrame({"bookings_kop": [320000]}))["bookings_rub"].tolist()
    ['3\u202f200 ₽']
    """
    out = df.copy()
    for c in [c for c in df.columns if str(c).endswith("_kop")]:
        out[c] = [rub(v) if pd.notna(v) else "—" for v in df[c]]
        out = out.rename(columns={c: str(c)[: -len("_kop")] + "_rub"})
    return out
