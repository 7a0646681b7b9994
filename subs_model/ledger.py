"""The ledger: the four tables of the data contract (plus optional features).

A :class:`Ledger` holds the tables exactly as given; the replay reads them. Simulated
and real data share this one schema. :func:`subs_model.io.read_ledger` reads and
validates exports into a Ledger.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import LedgerError
from .workers import workers

__all__ = ["COLUMNS", "OPTIONAL_TABLES", "TABLES", "Ledger"]

LicenseId = str
OrderId = str
Code = str

COLUMNS: dict[str, tuple[str, ...]] = {
    "licenses": ("license_id", "customer_id", "edition"),
    "orders": (
        "order_id",
        "license_id",
        "sku",
        "requested_at",
        "invoiced_at",
        "paid_at",
        "ticket_at",
        "code_issued_at",
        "act_number",
        "amount_rub",
        "code",
        "upgrade_of_act",
    ),
    "activations": ("code", "license_id", "activated_at"),
    "legacy_periods": ("license_id", "start", "valid_until"),
    "features": ("feature_id", "name", "released_on", "requires_subscription"),
}
#: Columns that must be present; the others may be absent (read as empty).
REQUIRED: dict[str, tuple[str, ...]] = {
    "licenses": ("license_id", "edition"),
    "orders": ("order_id", "license_id", "sku", "code", "code_issued_at"),
    "activations": ("code", "license_id", "activated_at"),
    "legacy_periods": ("license_id", "start", "valid_until"),
    "features": ("feature_id", "released_on", "requires_subscription"),
}
TABLES = ("licenses", "orders", "activations")
OPTIONAL_TABLES = ("legacy_periods", "features")
TIMESTAMP_COLUMNS = ("requested_at", "invoiced_at", "paid_at", "ticket_at", "code_issued_at", "activated_at")
DATE_COLUMNS = ("start", "valid_until", "released_on")
ID_COLUMNS = ("license_id", "customer_id", "order_id", "act_number", "code", "upgrade_of_act", "feature_id")


def _check_columns(name: str, df: Any, *, source: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        msg = f"{source}: table {name!r} must be a pandas DataFrame, got {type(df).__name__}"
        raise LedgerError(msg)
    missing = [c for c in REQUIRED[name] if c not in df.columns]
    if missing:
        msg = (
            f"{source}: table {name!r} lacks required column(s) {missing}; "
            f"its columns are {list(COLUMNS[name])}"
        )
        raise LedgerError(msg)
    return df


@dataclass(frozen=True, eq=False)
class Ledger:
    """The ledger tables of the data contract, as given.

    Parameters
    ----------
    licenses, orders, activations : DataFrame
        The required tables (see ``docs/rules.md`` for their columns).
    legacy_periods, features : DataFrame, optional
        Periods imported from the old rules; features for entitlement checks (R1).
    source : str
        Where the tables came from, used in error messages.

    Examples
    --------
    >>> import pandas as pd
    >>> led = Ledger(
    ...     licenses=pd.DataFrame({"license_id": ["L1"], "customer_id": ["C1"], "edition": ["full"]}),
    ...     orders=pd.DataFrame(columns=["order_id", "license_id", "sku", "code", "code_issued_at"]),
    ...     activations=pd.DataFrame(columns=["code", "license_id", "activated_at"]),
    ... )
    >>> len(led.licenses)
    1
    """

    licenses: pd.DataFrame
    orders: pd.DataFrame
    activations: pd.DataFrame
    legacy_periods: pd.DataFrame | None = None
    features: pd.DataFrame | None = None
    source: str = "ledger"
    quarantine: pd.DataFrame | None = None
    load_summary: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        for name in TABLES:
            _check_columns(name, getattr(self, name), source=self.source)
        for name in OPTIONAL_TABLES:
            df = getattr(self, name)
            if df is not None:
                _check_columns(name, df, source=self.source)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables present, by name."""
        out = {name: getattr(self, name) for name in TABLES}
        out.update({n: getattr(self, n) for n in OPTIONAL_TABLES if getattr(self, n) is not None})
        return out

    def with_features(self, features: pd.DataFrame) -> Ledger:
        """The same ledger with a features table (R1)."""
        return Ledger(
            self.licenses, self.orders, self.activations, self.legacy_periods, features, source=self.source,
            quarantine=self.quarantine, load_summary=self.load_summary,
        )

    def categorical_ids(self) -> Ledger:
        """The same ledger with its id columns as categoricals, one dictionary per id kind.

        ``license_id`` in every table shares one sorted dictionary (licenses are reported
        in its order), ``code`` in orders and activations another, ``order_id`` a third
        (these two in the order values are first seen: sorting millions of ids would cost
        more than all the rest); ``sku`` and ``edition`` become categoricals too. Values are
        unchanged (missing stays missing). The replay then matches ids by their integer
        codes instead of hashing strings, so any Ledger built from these tables replays
        without touching a string, and the tables take less memory. Ids are hashed once
        here, each kind on its own thread.

        >>> import pandas as pd
        >>> led = Ledger(
        ...     licenses=pd.DataFrame({"license_id": ["L2", "L1"], "customer_id": ["C", "C"], "edition": ["full", "full"]}),
        ...     orders=pd.DataFrame(columns=["order_id", "license_id", "sku", "code", "code_issued_at"]),
        ...     activations=pd.DataFrame(columns=["code", "license_id", "activated_at"]),
        ... ).categorical_ids()
        >>> list(led.licenses["license_id"].cat.categories)
        ['L1', 'L2']
        """
        tables = self.tables()
        groups = {
            "license_id": [n for n in ("licenses", "orders", "activations", "legacy_periods") if n in tables],
            "code": ["orders", "activations"],
            "order_id": ["orders"],
            "sku": ["orders"],
            "edition": ["licenses"],
        }
        columns: dict[str, dict[str, pd.Series]] = {name: {} for name in tables}
        with ThreadPoolExecutor(max_workers=workers()) as pool:  # Arrow hashes without the GIL
            encoded = {
                column: pool.submit(_shared_dictionary, [tables[n][column] for n in names], sort=column not in ("code", "order_id"))
                for column, names in groups.items()
            }
            for column, names in groups.items():
                for n, col in zip(names, encoded[column].result(), strict=True):
                    columns[n][column] = col
        out = {name: tables[name].assign(**columns[name]) if columns[name] else tables[name] for name in tables}
        return Ledger(
            out["licenses"], out["orders"], out["activations"], out.get("legacy_periods"), out.get("features"),
            source=self.source, quarantine=self.quarantine, load_summary=self.load_summary,
        )

    def write(self, folder: str | Path, *, format: str = "parquet") -> Path:
        """Write the tables as ``<table>.parquet`` (or ``.csv``) into ``folder``.

        Id columns are written as plain text even when they are categoricals: a Parquet
        dictionary holds at most about a megabyte, so a dictionary of millions of ids
        falls back to plain pages that the reader must hash again, and reading such a
        file took several times the memory and time of reading the ids as text. Call
        :meth:`categorical_ids` after reading to match ids by number again.

        These are machine files, read back by :func:`subs_model.read_ledger`: values are
        written byte-exact, deliberately *not* through the formula-safe
        :func:`subs_model.export.write_table` (its leading apostrophe would change an id or
        a code that starts with ``=``, ``+``, ``-`` or ``@``). Tables for people go through
        ``write_table``.
        """
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in self.tables().items():
            if format == "parquet":
                ids = {c: ids_as_text(df[c]) for c in ID_COLUMNS if c in df.columns and isinstance(df[c].dtype, pd.CategoricalDtype)}
                (df.assign(**ids) if ids else df).to_parquet(out / f"{name}.parquet", index=False)
            elif format == "csv":
                df.to_csv(out / f"{name}.csv", index=False)
            else:
                msg = f"format {format!r} is not supported; use 'parquet' or 'csv'"
                raise ValueError(msg)
        return out


def _arrow_text(col: pd.Series) -> pa.Array | pa.ChunkedArray:
    """The values of an id column as Arrow ``large_string`` (null = missing).

    Arrow-backed strings are not copied; a categorical is its categories taken by its codes
    (no Python string is made).
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        dictionary = _arrow_text(pd.Series(col.cat.categories, copy=False))
        return dictionary.take(pa.array(codes, mask=codes < 0) if len(codes) else pa.array([], pa.int32()))
    text = col if isinstance(col.dtype, pd.StringDtype) else col.astype("str")
    return pa.array(text.array).cast(pa.large_string())


def ids_as_text(col: pd.Series) -> pd.Series:
    """Ids as pandas strings (NA kept); numbers read from Parquet become their text."""
    if isinstance(col.dtype, pd.StringDtype):
        return col
    return pd.Series(pd.array(_arrow_text(col), dtype="str"), index=col.index, name=col.name, copy=False)


def id_codes(cols: list[pd.Series], *, sort: bool = True) -> tuple[list[np.ndarray], pa.Array]:
    """Codes (int32, -1 = missing) of the values of each of ``cols`` into their distinct
    values, and those values.

    One Arrow dictionary encoding hashes the columns as one chunked array (no copy of the
    strings). With ``sort`` the dictionary is sorted and the codes ranked into it, so the
    codes never depend on the order of rows; without it values are numbered as first seen.
    """
    arrays = [_arrow_text(c) for c in cols]
    lengths = [len(a) for a in arrays]
    codes = np.empty(sum(lengths), np.int32)
    if len(codes) == 0:
        dictionary = pa.array([], pa.large_string())
    else:
        chunks = [c for a in arrays for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])]
        encoded = pa.chunked_array(chunks, type=pa.large_string()).dictionary_encode()
        at = 0
        for chunk in encoded.chunks:  # the chunks share one memo: the last holds every value
            ind = chunk.indices
            codes[at : at + len(ind)] = (ind if ind.null_count == 0 else pc.fill_null(ind, -1)).to_numpy()
            at += len(ind)
            dictionary = chunk.dictionary
    if sort and len(dictionary):
        order = pc.sort_indices(dictionary).to_numpy()
        rank = np.empty(len(order) + 1, np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        rank[-1] = -1  # code -1 (missing) indexes the last slot
        codes = rank[codes]
        dictionary = dictionary.take(pa.array(order))
    return np.split(codes, np.cumsum(lengths)[:-1]), dictionary


def _unique_categories(values: pd.Index) -> pd.CategoricalDtype:
    """A categorical dtype over ``values``, known to be distinct and not missing (a
    dictionary's values): pandas' own check would hash millions of ids a second time."""
    fast = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    return fast(values, False) if fast is not None else pd.CategoricalDtype(values)


def _shared_dictionary(cols: list[pd.Series], *, sort: bool = True) -> list[pd.Series]:
    """``cols`` as categoricals sharing one dtype whose categories are their values (sorted
    with ``sort``, else as first seen).

    Columns that already share such categories are returned as they are.
    """
    if cols and all(isinstance(c.dtype, pd.CategoricalDtype) for c in cols):
        first = cols[0].cat.categories
        if all(c.cat.categories.equals(first) for c in cols[1:]) and (not sort or first.is_monotonic_increasing):
            return cols
    codes, dictionary = id_codes(cols, sort=sort)
    dtype = _unique_categories(pd.Index(pd.array(dictionary, dtype="str")))
    return [
        pd.Series(pd.Categorical.from_codes(part, dtype=dtype, validate=False), index=c.index, name=c.name)
        for c, part in zip(cols, codes, strict=True)
    ]

