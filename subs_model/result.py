"""The result of a replay: the :class:`Replay` and the builders of its tables.

:func:`subs_model.replay.replay` runs the scan; the builders here turn its columns into the
periods, code fates and rejections tables (categorical ids keep their dictionaries; string
ids are taken from their Arrow arrays).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from . import _scan as S
from .catalog import Catalog
from .days import as_day, days_to_datetime
from .errors import LedgerError
from .ledger import Ledger, ids_as_text
from .vocab import CodeStatus, Reason, Sku, Source, categories
from .workers import submit

if TYPE_CHECKING:
    from .prepared import Prepared

__all__ = ["Replay"]


def is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype)


def _id_column(series: pd.Series) -> pd.Series:
    """An id column for a result table: categoricals as given, anything else as strings."""
    return series if is_categorical(series) else ids_as_text(series)


def _arrow(series: pd.Series) -> pa.Array:
    """The Arrow array behind a string column (zero-copy for Arrow-backed strings)."""
    arr = pa.array(ids_as_text(series).array)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _take_str(arr: pa.Array, idx: np.ndarray) -> pd.Series:
    """``arr[idx]`` as a pandas string column; ``idx < 0`` gives NA."""
    neg = idx < 0
    taken = arr.take(pa.array(idx, mask=neg if neg.any() else None))
    return pd.Series(pd.array(taken, dtype="str"))


def _take_id(series: pd.Series, idx: np.ndarray) -> pd.Series:
    """``series[idx]`` of an id column (``idx < 0`` gives NA), keeping a categorical's dtype."""
    if is_categorical(series):
        return _from_codes(at_or_missing(series.array.codes, idx), series)
    return _take_str(_arrow(series), idx)


def _categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    """A string-valued categorical column from engine codes (-1 = missing; the engine writes
    no other value, so the codes are not checked again)."""
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(names), validate=False)


def at_or_missing(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``values[idx]``, with -1 where ``idx`` is -1."""
    if len(idx) == 0 or idx.min() >= 0:
        return values[idx]
    return np.where(idx >= 0, values[np.maximum(idx, 0)] if len(values) else -1, -1)


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame over the given columns without copying them into blocks."""
    return pd.DataFrame(columns, copy=False)


def _from_codes(codes: np.ndarray, like: pd.Series) -> pd.Series:
    """A categorical column with ``like``'s dtype from codes known to be valid (no range check)."""
    return pd.Series(pd.Categorical.from_codes(codes, dtype=like.dtype, validate=False), copy=False)


def _license_column(p: Prepared, lic: np.ndarray) -> pd.Series:
    if p.license_dtype is not None:
        return pd.Series(pd.Categorical.from_codes(lic, dtype=p.license_dtype, validate=False), copy=False)
    return _take_str(p.license_ids, lic)


@dataclass(frozen=True, eq=False)
class Replay:
    """The result of :func:`replay`: periods, code fates and rejections as of a day.

    Attributes
    ----------
    periods : DataFrame
        ``license_id, start, end`` (exclusive), ``source, code, order_id, activated_on,
        catalog_version``; sorted by license and start.
    codes : DataFrame
        One row per order, in the orders' row order: ``code, order_id, license_id, sku,
        status, activated_on, deadline`` (renewal codes).
    rejections : DataFrame
        ``code, license_id, day, reason`` for each rejected activation on or before ``as_of``.
    """

    periods: pd.DataFrame
    codes: pd.DataFrame
    rejections: pd.DataFrame
    as_of: pd.Timestamp
    catalog: Catalog
    ledger: Ledger
    #: Integer keys for metrics, aligned with the rows of ``periods`` (``license``: the
    #: license's number — its rank among the ledger's sorted ids, or its categorical code when
    #: the ids are categoricals sharing one dictionary; ``order``: row in the orders table, -1
    #: for legacy periods) and of ``rejections`` (``rejection_order``: the order row of the
    #: rejected code, -1 for an unknown code).
    keys: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: The ledger's prepared arrays this replay ran on (metrics read their columns from it).
    prepared: Prepared | None = field(default=None, repr=False)

    def is_active(self, license_id: str, day: Any) -> bool:
        """Whether ``license_id`` is covered on ``day`` (``start <= day < end``).

        >>> rep.is_active("L1", "2026-03-05")  # doctest: +SKIP
        True
        """
        d = np.datetime64(days_to_datetime(np.array([as_day(day, self.catalog.timezone)]))[0])
        p = self.periods
        m = (p["license_id"] == license_id).to_numpy()
        return bool(((p["start"].to_numpy()[m] <= d) & (d < p["end"].to_numpy()[m])).any())

    def active_on(self, day: Any) -> pd.Series:
        """Boolean Series indexed by every license id of the ledger: covered on ``day``."""
        d = days_to_datetime(np.array([as_day(day, self.catalog.timezone)]))[0]
        p = self.periods
        hit = p.loc[(p["start"].to_numpy() <= d) & (d < p["end"].to_numpy()), "license_id"].unique()
        ids = self.ledger.licenses["license_id"].astype("str")
        out = pd.Series(ids.isin(hit).to_numpy(), index=pd.Index(ids.to_numpy(), name="license_id"), name="active")
        return out

    def entitled(self, license_id: str, feature_id: str, day: Any, features: pd.DataFrame | None = None) -> bool:
        """R1: whether ``license_id`` may use ``feature_id`` on ``day``.

        A feature not flagged ``requires_subscription`` is always available (releases are
        free); a flagged one needs coverage on ``day``. ``features`` defaults to the
        ledger's features table.
        """
        table = features if features is not None else self.ledger.features
        if table is None:
            msg = "entitled(): no features table; pass features= or read a ledger with features.csv"
            raise LedgerError(msg)
        row = table.loc[table["feature_id"].astype("str") == str(feature_id)]
        if row.empty:
            msg = f"entitled(): unknown feature_id {feature_id!r}; known: {table['feature_id'].astype(str).tolist()[:10]}"
            raise LedgerError(msg)
        flag = row["requires_subscription"].iloc[0]
        if isinstance(flag, str):
            flag = flag.strip().lower() in ("true", "1", "yes")
        if not bool(flag):
            return True
        return self.is_active(license_id, day)

    def summary(self) -> dict[str, pd.Series]:
        """Counts for a readable report: periods by source, codes by status, rejections by reason."""
        return {
            "periods_by_source": self.periods["source"].value_counts().reindex(categories(Source), fill_value=0),
            "codes_by_status": self.codes["status"].value_counts().reindex(categories(CodeStatus), fill_value=0),
            "rejections_by_reason": self.rejections["reason"].value_counts().reindex(categories(Reason), fill_value=0),
        }


def periods_table(led, p, cat, as_of_day, r, pool) -> Callable[[], tuple[pd.DataFrame, dict[str, np.ndarray]]]:
    """Start writing the periods, a range of licenses a task on ``pool``; returns the
    function that waits for them and makes the table and its keys."""
    n = sum(r["n_periods"])
    lic, order_row = np.empty(n, np.int32), np.empty(n, np.int32)
    start, end, activated = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    src, version = np.empty(n, np.int8), np.empty(n, np.int16)
    code_col, oid_col = led.activations["code"], led.orders["order_id"]
    none = np.empty(0, np.int32)
    a_code = p.act_code if p.act_code is not None else none
    n_oid = p.n_oid if p.n_oid is not None else none
    code = np.empty(n if len(a_code) else 0, np.int32)
    oid = np.empty(n if len(n_oid) else 0, np.int32)
    act_row = np.empty(0 if len(a_code) else n, np.int32)  # only to take string codes
    first = np.cumsum([0, *r["n_periods"]])

    def emit(lo: int, hi: int) -> int:
        k0 = int(first[r["ranges"].index((lo, hi))])
        return S.emit_periods(
            lo, k0, as_of_day, p.leg_ptr[lo : hi + 1], p.leg_start, p.leg_end, p.act_ptr[lo : hi + 1],
            r["reason"], r["pstart"], r["pend"], r["ver"], p.act_num, p.act_day, p.act_perm, p.o_perm, p.n_sku,
            a_code, n_oid, lic, start, end, src, version, activated, act_row, order_row, code, oid,
        )

    ends = [submit(pool, emit, lo, hi) for lo, hi in r["ranges"]]

    def done() -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        # The catalog bounds term and grace days (catalog.TERM_DAYS_MAX, GRACE_DAYS_MAX) so every
        # day fits the engine's int32; a mismatch here is a bug, not bad input, and must not be
        # skipped under ``python -O`` (the buffers would hold garbage).
        if [e.result() for e in ends] != [int(x) for x in first[1:]]:
            msg = "internal error: the replay's scan and emit steps count different periods; please report this ledger"
            raise RuntimeError(msg)
        return _frame(
            {
                "license_id": _license_column(p, lic),
                "start": start.view("datetime64[ns]"),
                "end": end.view("datetime64[ns]"),
                "source": _categorical(src, categories(Source)),
                "code": _from_codes(code, code_col) if len(a_code) else _take_id(code_col, act_row),
                "order_id": _from_codes(oid, oid_col) if len(n_oid) else _take_id(oid_col, order_row),
                "activated_on": activated.view("datetime64[ns]"),
                "catalog_version": _categorical(version, [v.label for v in cat.versions]),
            }
        ), {"license": lic, "order": order_row}

    return done


def codes_table(led, p, as_of_day, r, pool) -> Callable[[], pd.DataFrame]:
    """Start the code fates, a range of order rows a task on ``pool`` (as many ranges as the
    scan had); returns the function that waits for them and makes the table."""
    n = len(p.o_sku)
    status, act_ns, dl_ns = np.empty(n, np.int8), np.empty(n, np.int64), np.empty(n, np.int64)
    cuts = [n * k // len(r["ranges"]) for k in range(len(r["ranges"]) + 1)]
    parts = [
        submit(pool, S.code_fates, lo, hi, as_of_day, p.o_rank, p.o_sku, r["ostate"], status, act_ns, dl_ns)
        for lo, hi in itertools.pairwise(cuts)
    ]

    def done() -> pd.DataFrame:
        for f in parts:
            f.result()
        o = led.orders
        return _frame(
            {
                "code": _id_column(o["code"]).reset_index(drop=True),
                "order_id": _id_column(o["order_id"]).reset_index(drop=True),
                "license_id": _id_column(o["license_id"]).reset_index(drop=True),
                "sku": _categorical(p.o_sku, categories(Sku)),
                "status": _categorical(status, categories(CodeStatus)),
                "activated_on": act_ns.view("datetime64[ns]"),
                "deadline": dl_ns.view("datetime64[ns]"),
            }
        )

    return done


def rejections_table(led, p, reason) -> tuple[pd.DataFrame, np.ndarray]:
    """The rejections table and, per row, the order row of the rejected code (-1: unknown)."""
    none = np.empty(0, np.int32)
    rows, lic, code, day, why, order = S.emit_rejections(
        p.act_ptr, reason, p.act_perm, p.act_day, p.act_num, p.o_perm, p.act_code if p.act_code is not None else none)
    code_col, lic_col = led.activations["code"], led.activations["license_id"]
    same_licenses = p.license_dtype is not None  # every license column shares these categories
    return _frame(
        {
            "code": _from_codes(code, code_col) if p.act_code is not None else _take_id(code_col, rows),
            "license_id": _from_codes(lic, lic_col) if same_licenses else _take_id(lic_col, rows),
            "day": day.view("datetime64[ns]"),
            "reason": _categorical(why, categories(Reason)),
        }
    ), order
