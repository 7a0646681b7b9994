"""Order prices (R10, R12): the catalog price at the invoice date, the amount paid, the variance.

A paid amount that differs from the catalog price is kept and reported, never rejected.
Money is integer kopecks; amounts are parsed from their decimal text, never through floats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .catalog import Catalog
from .days import NO_DAY
from .errors import LedgerError
from .ledger import Ledger
from .money import kopecks
from .vocab import Edition, Sku, categories

if TYPE_CHECKING:
    from .prepared import Prepared

__all__ = ["order_prices", "parse_kopecks"]

_AMOUNT_RE = r"^(?P<sign>-?)(?P<rub>\d+)(?:[.,](?P<kop>\d{1,2}))?$"


def parse_kopecks(amounts: pd.Series, *, where: str = "orders", column: str = "amount_rub") -> np.ndarray:
    """Decimal ruble text (``"3200"``, ``"3200.5"``, ``"3 200,50"``) or exact decimal rubles (a ledger's
    ``amount_rub`` once read, :data:`subs_model.money.RUB`) → int64 kopecks; missing → -1.

    Raises :class:`LedgerError` naming the first malformed row (more than 2 decimals,
    not a number).

    >>> parse_kopecks(pd.Series(["3200.50", "800", None])).tolist()
    [320050, 80000, -1]
    """
    if isinstance(amounts.dtype, pd.ArrowDtype) and pa.types.is_decimal(amounts.dtype.pyarrow_dtype):
        return kopecks(amounts)  # read by read_ledger: exact rubles already
    if pd.api.types.is_integer_dtype(amounts.dtype):
        return np.where(amounts.isna(), -1, amounts.fillna(0).to_numpy(dtype=np.int64) * 100)
    fast = _arrow_kopecks(amounts)
    if fast is not None:
        return fast
    text = amounts.astype("string").str.replace(r"[\s\u00a0]", "", regex=True)
    missing = (text.isna() | (text == "")).fillna(True).to_numpy()
    parts = text.str.extract(_AMOUNT_RE)
    bad = parts["rub"].isna().to_numpy() & ~missing
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        msg = (
            f"{where}: row {row + 1}, column {column!r}: {amounts.iloc[row]!r} is not an amount in rubles "
            "with at most 2 decimals; write e.g. 3200.00"
        )
        raise LedgerError(msg)
    out = np.full(len(amounts), -1, dtype=np.int64)
    ok = ~missing
    rub = parts["rub"][ok].astype("int64").to_numpy()
    kop = parts["kop"][ok].fillna("0").str.ljust(2, "0").astype("int64").to_numpy()
    sign = np.where(parts["sign"][ok].to_numpy() == "-", -1, 1)
    out[ok] = sign * (rub * 100 + kop)
    return out


def _arrow_kopecks(amounts: pd.Series) -> np.ndarray | None:
    """Fast path: Arrow casts plain ``1234.56`` text to decimal(18, 2) exactly; the unscaled
    decimal is the amount in kopecks. Returns None when any value needs the slow path
    (spaces, commas, more than 2 decimals, not a number) so that path can name the row."""
    try:
        arr = pa.array(amounts.astype("str").array) if not isinstance(amounts.dtype, pd.StringDtype) else pa.array(amounts.array)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        dec = pc.cast(arr, pa.decimal128(18, 2))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return None
    words = np.frombuffer(dec.buffers()[1], dtype=np.int64, count=2 * (len(dec) + dec.offset))[2 * dec.offset :: 2]
    out = words.copy()
    if dec.null_count:
        out[np.asarray(dec.is_null())] = -1
    if (out < -1).any():
        return None  # negative amounts: the slow path reports them
    return out


def order_prices(ledger: Ledger, catalog: Catalog, prepared: Prepared | None = None) -> pd.DataFrame:
    """Per order: catalog price at its invoice date (R10), amount paid, and the variance.

    ``prepared`` (from :func:`subs_model.prepare` or a replay's ``rep.prepared``) spares
    preparing the ledger again.

    Columns: ``order_id, license_id, sku, edition, catalog_version, list_kopecks,
    paid_kopecks, variance_kopecks`` (paid − list; ``<NA>`` where unpaid or not invoiced).

    >>> import subs_model as sm
    >>> order_prices(sm.read_ledger("data/sample"), sm.Catalog.default()).columns[-1]  # doctest: +SKIP
    'variance_kopecks'
    """
    from .prepared import prepare

    p = prepared if prepared is not None else prepare(ledger, catalog)
    inv = p.o_invoice_day if p.o_invoice_day is not None else np.full(len(p.o_sku), NO_DAY, np.int64)
    has_inv = inv != NO_DAY
    ver = catalog.version_index(np.where(has_inv, inv, 0))
    table = catalog.price_table()
    ed = p.o_edition
    list_k = np.where(has_inv & (ed >= 0), table[ver, np.maximum(ed, 0), p.o_sku], -1)
    amounts = ledger.orders["amount_rub"] if "amount_rub" in ledger.orders.columns else pd.Series([None] * len(inv))
    paid = parse_kopecks(amounts, where=f"{ledger.source}: orders")
    labels = np.array([v.label for v in catalog.versions], dtype=object)
    list_s = pd.Series(list_k, dtype="Int64").mask(list_k < 0)
    paid_s = pd.Series(paid, dtype="Int64").mask(paid < 0)
    return pd.DataFrame(
        {
            "order_id": ledger.orders["order_id"].astype("str").to_numpy(),
            "license_id": ledger.orders["license_id"].astype("str").to_numpy(),
            "sku": np.array(categories(Sku), dtype=object)[p.o_sku],
            "edition": np.array([*categories(Edition), None], dtype=object)[ed],  # -1 (unknown) takes None
            "catalog_version": np.where(has_inv, labels[ver], None),
            "list_kopecks": list_s.array,
            "paid_kopecks": paid_s.array,
            "variance_kopecks": (paid_s - list_s).array,
        }
    )
