"""Preparation of a ledger for the replay: numbering, joins and the total event order.

:func:`prepare` (catalog-independent, one time zone) numbers license ids and codes
(categorical columns sharing their dictionaries by their codes, strings by hashing), joins
activations to their orders and upgrades to their renewal acts, computes the static
rejections (``unknown_code``, ``wrong_license``, ``activated_before_issue``) and sorts
events into the total replay order ``(license, instant, kind, code)`` — legacy periods
first, a code issue before an activation at the same instant. The result, a
:class:`Prepared`, is what :func:`subs_model.replay.replay` scans; a caller may hold it
for several replays (other catalogs, other ``as_of`` days).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from . import _join as J
from . import _scan as S
from .catalog import Catalog
from .days import (
    NO_DAY,
    NO_TIME,
    day_offsets,
    fix_local_days,
    local_days32_and_last,
    local_days_and_last,
    parse_dates,
    parse_instants,
)
from .errors import LedgerError
from .ledger import Ledger, ids_as_text, id_codes
from .result import at_or_missing, is_categorical
from .vocab import REN, UPG, Edition, Sku, categories
from .workers import pool as worker_pool
from .workers import run as run_ranges
from .workers import submit, workers

__all__ = ["Prepared", "prepare"]


def _cat_codes(series: pd.Series) -> np.ndarray:
    """Category codes of a categorical column as int32 (-1 = missing); a read-only view, no copy,
    when they are int32 already."""
    return series.array.codes.astype(np.int32, copy=False)


def _shared_categories(cols: list[pd.Series]) -> pd.Index | None:
    """The categories every column shares (same values, same order), or None.

    Ledgers with categorical id columns (``Ledger.categorical_ids()`` builds them with one
    dictionary per id kind) are matched on their codes: no string is hashed.
    """
    if not cols or not all(is_categorical(c) for c in cols):
        return None
    first = cols[0].cat.categories
    for c in cols[1:]:
        other = c.cat.categories
        if other is not first and not other.equals(first):
            return None
    return first


def _enum_codes(series: pd.Series, names: list[str]) -> np.ndarray:
    """Position of each value in ``names`` (-1 when not one of them); low-cardinality fast path."""
    if is_categorical(series):
        codes, uniques = _cat_codes(series), series.cat.categories
    else:
        codes, uniques = pd.factorize(ids_as_text(series))
    lut = np.array([names.index(u) if u in names else -1 for u in uniques] + [-1], dtype=np.int8)
    # A missing value's code -1 takes the table's last entry, -1 (the compiled gather is
    # several times numpy's fancy indexing: docs/performance.md).
    return J.gather(lut, codes)


def _license_space(cols: list[pd.Series]) -> tuple[list[np.ndarray], pa.Array, pd.CategoricalDtype | None]:
    """License ids of every table as codes into one id list, the list, and its dtype.

    Categorical columns sharing their categories keep their codes, so licenses come in the
    categories' order (as ``sort_values`` orders a categorical; ``astype("category")`` and
    ``Ledger.categorical_ids()`` sort them). Other columns are hashed and ranked in
    sorted id order. Either way the order never depends on the order of rows.
    """
    cats = _shared_categories(cols)
    if cats is not None:
        uniques = pa.array(cats.array) if len(cats) else pa.array([], pa.large_string())
        if isinstance(uniques, pa.ChunkedArray):
            uniques = uniques.combine_chunks()
        return [_cat_codes(c) for c in cols], uniques, cols[0].dtype
    codes, uniques = id_codes(cols)
    return codes, uniques, None


def _code_space(order_codes: pd.Series, act_codes: pd.Series) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Codes of orders and of activations as numbers in one code space (-1 = missing), and
    whether those numbers are the columns' own categorical codes."""
    if _shared_categories([order_codes, act_codes]) is not None:
        return _cat_codes(order_codes), _cat_codes(act_codes), len(order_codes.cat.categories), True
    (oc, ac), values = id_codes([order_codes, act_codes], sort=False)
    return oc, ac, len(values), False


def _is_unique(series: pd.Series) -> bool:
    if is_categorical(series):
        codes = _cat_codes(series)
        return bool(len(codes) == 0 or (codes.min() >= 0 and J.first_repeat(codes, len(series.cat.categories)) < 0))
    return series.is_unique


def order_events(lic: np.ndarray, ts: np.ndarray, nlic: int, tiebreak: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
    """Permutation into (license, instant[, tiebreak]) order and CSR pointers per license."""
    perm, ptr, tie = J.event_order(lic, ts, nlic)
    if tie and tiebreak is not None:
        ls, tss = lic[perm], ts[perm]
        same = (ls[1:] == ls[:-1]) & (tss[1:] == tss[:-1])
        # Only rows sharing (license, instant) need the tiebreak's rank.
        tied = np.zeros(len(perm), np.bool_)
        tied[1:] |= same
        tied[:-1] |= same
        rank = np.zeros(len(perm), np.int64)
        rank[tied] = id_codes([tiebreak.iloc[perm[tied]]])[0][0]  # a missing code sorts first
        perm = perm[np.lexsort((rank, tss, ls))]
    return perm, ptr


@dataclass(frozen=True, slots=True)
class Prepared:
    """Catalog-independent arrays of one ledger (in one time zone), made by :func:`prepare`.

    A replay needs these whatever the catalog; a caller who replays one ledger several
    times (other catalogs, other days) prepares it once and passes this to :func:`replay`.
    It reflects the ledger's tables when it was made: after editing them, prepare again.

    Licenses are numbered by their position in ``license_ids``. Order arrays (``o_*``) are
    in the orders' row order; ``n_*`` arrays and the order numbers events carry are in
    license order (``o_perm``). Activation, issue and legacy arrays are in replay order:
    grouped by license (CSR pointers ``*_ptr``), by instant within a license; ``act_perm``
    and ``leg_perm`` give each event's row in its table.
    """

    license_ids: pa.Array  # license ids in license-number order (sorted, or a categorical's categories)
    license_dtype: pd.CategoricalDtype | None  # results' license_id dtype when the ledger's ids are categorical
    license_edition: np.ndarray  # edition position per license, -1 unknown
    o_lic: np.ndarray
    o_sku: np.ndarray
    o_target: np.ndarray
    o_invoice_day: np.ndarray | None
    # The scan numbers orders by license (row order within one), so that the orders one
    # license touches lie together: ``o_perm`` gives each number's row, ``o_rank`` each
    # row's number.
    o_perm: np.ndarray
    o_rank: np.ndarray
    o_ptr: np.ndarray  # each license's order numbers (CSR pointers)
    n_sku: np.ndarray  # sku by order number
    n_issue_day: np.ndarray  # local day the code was issued by order number (int32, NO_DAY32: not issued)
    n_target: np.ndarray  # upgrade target's order number by order number, -1 none
    n_oid: np.ndarray | None  # the categorical order_id column's codes by order number, when it is one
    act_num: np.ndarray  # order number of each activation's code, -1 unknown
    act_iss: np.ndarray  # per activation: index of its license's first issue event at a later instant
    act_day: np.ndarray
    act_static: np.ndarray
    act_code: np.ndarray | None  # the activations' categorical code column's codes, when it is one
    act_perm: np.ndarray
    act_ptr: np.ndarray
    iss_num: np.ndarray  # order numbers of issued renewal codes
    iss_day: np.ndarray
    iss_ptr: np.ndarray
    leg_lic: np.ndarray
    leg_start: np.ndarray
    leg_end: np.ndarray
    leg_perm: np.ndarray
    leg_ptr: np.ndarray
    last_event_day: int
    tz: str = ""  # the time zone of its days
    ledger: Ledger | None = None  # the ledger it was prepared from (None: a simulated run's arrays)

    @property
    def o_edition(self) -> np.ndarray:
        """Edition position of each order's license (-1 unknown), by order row."""
        return J.gather(self.license_edition, self.o_lic)

    @property
    def act_order(self) -> np.ndarray:
        """Order row of each activation's code (-1: unknown code), in replay order."""
        return at_or_missing(self.o_perm, self.act_num)


def first_activations(led: Ledger, p: Prepared, tz: str) -> np.ndarray:
    """Instant (UTC ns) of each order's code's first activation on record, by order row
    (``NO_TIME``: never activated; ``p`` prepared from ``led``)."""
    ts = parse_instants(led.activations["activated_at"], tz, where=f"{led.source}: activations", column="activated_at")
    return J.first_by_order(len(p.o_sku), p.act_num, p.o_perm, p.act_perm, ts)


# -- preparation: number ids, check, number orders, join activations, find upgrade targets ----------------


@dataclass(frozen=True, slots=True)
class _Ids:
    """License ids and codes as numbers (:func:`_number_ids`)."""

    lic: list[np.ndarray]  # license number of each row of licenses, orders, activations[, legacy_periods]
    license_ids: pa.Array  # the ids in license-number order (sorted, or a categorical's categories)
    license_dtype: pd.CategoricalDtype | None  # the ids' dtype when they are categoricals sharing one dictionary
    o_code: np.ndarray  # code number of each order row (-1: empty)
    a_code: np.ndarray  # code number of each activation row, in the same numbering
    n_codes: int  # how many code numbers there are
    codes_cat: bool  # the code numbers are the columns' own categorical codes
    order_ids_unique: bool  # no order_id repeats
    o_sku: np.ndarray  # sku position of each order row (-1: not a sku; :func:`_check_orders` raises)
    o_issue_ts: np.ndarray  # each order's code-issue instant (UTC ns, NO_TIME: not issued), by row

    @property
    def nlic(self) -> int:
        return len(self.license_ids)


@dataclass(frozen=True, slots=True)
class _OrderNumbers:
    """Orders numbered by license, row order within one (:func:`_number_orders`; see :class:`Prepared`)."""

    o_perm: np.ndarray  # row of each order number
    o_rank: np.ndarray  # order number of each row
    o_ptr: np.ndarray  # each license's order numbers (CSR pointers)
    n_issue_ts: np.ndarray  # code-issue instant by order number
    code_to_num: np.ndarray  # order number of each issued code number (-1: not issued)
    repeated_code: int  # a code number two issued orders carry (-1: none)
    uncoded_row: int  # first order row issued without a code (-1: none)


@dataclass(frozen=True, slots=True)
class _IssueEvents:
    """Per order number: sku, issue day; and the renewal-code issue events in replay order
    (:func:`_issue_events`)."""

    n_sku: np.ndarray  # sku by order number
    n_issue_day: np.ndarray  # local issue day by order number (int32, NO_DAY32: not issued)
    last_day: int  # the last issue day (NO_DAY: none)
    num: np.ndarray  # order number of each issue event
    ptr: np.ndarray  # each license's issue events (CSR pointers)
    ts: np.ndarray  # instant of each issue event
    day: np.ndarray  # local day of each issue event
    n_oid: np.ndarray | None  # the categorical order_id column's codes by order number, when it is one


@dataclass(frozen=True, slots=True)
class _Buckets:
    """The activations grouped by ranges of licenses before their orders are known
    (:func:`_activation_buckets`; :func:`_join.bucket_rows`). :func:`_join_activations`
    turns ``rows``, ``num``, ``ts`` and ``code`` into the events' columns in place."""

    d0: int  # first UTC day of the offset table
    offset: np.ndarray  # UTC offset (ns) per UTC day from d0
    changes: np.ndarray  # which of those days' offsets change within the day
    rows: np.ndarray  # activation rows, bucket by bucket (table order within one)
    num: np.ndarray  # their license numbers (order numbers after the join)
    ts: np.ndarray  # their instants
    code: np.ndarray  # their code numbers
    bptr: np.ndarray  # each bucket's rows (CSR pointers)
    ptr: np.ndarray  # each license's rows (CSR pointers)
    shift: int  # licenses ``lic >> shift`` share a bucket


@dataclass(frozen=True, slots=True)
class _Activations:
    """Activations in replay order, joined to their orders (:func:`_join_activations`)."""

    perm: np.ndarray  # row of each event in the activations table
    ptr: np.ndarray  # each license's events (CSR pointers)
    ts: np.ndarray  # instant
    code: np.ndarray  # code number
    num: np.ndarray  # order number of the code (-1: unknown code)
    static: np.ndarray  # reason known before the scan (unknown code, wrong license, before issue), 0: none
    day: np.ndarray  # local day
    last_day: int  # the last activation day (NO_DAY: none)


@dataclass(frozen=True, slots=True)
class _Targets:
    """R8: each upgrade's target renewal order (:func:`_upgrade_targets`)."""

    o_target: np.ndarray  # target's row by order row (-1: none)
    n_target: np.ndarray  # target's order number by order number (-1: none)


@dataclass(frozen=True, slots=True)
class _Legacy:
    """Legacy periods (R12) in replay order (:func:`_legacy_periods`)."""

    lic: np.ndarray  # license number
    start: np.ndarray  # first day
    end: np.ndarray  # day after the last
    perm: np.ndarray  # row in the legacy_periods table
    ptr: np.ndarray  # each license's periods (CSR pointers)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _number_ids(led: Ledger, tz: str) -> _Ids:
    """Number license ids (every table's, one numbering) and codes (orders' and activations');
    parse the orders' code-issue instants. Raises on an unparsable ``code_issued_at`` and on
    an empty license id.

    Matching ids is the costly part for string columns (categoricals sharing their
    dictionaries are matched on codes); Arrow releases the GIL, so the string hash passes
    (license ids, codes, skus, order-id repeats) run side by side.
    """
    src, ord_df, act_df = led.source, led.orders, led.activations
    tables = {"licenses": led.licenses, "orders": ord_df, "activations": act_df, "legacy_periods": led.legacy_periods}
    lic_cols = [t["license_id"] for t in tables.values() if t is not None]
    o_issue_ts = parse_instants(ord_df["code_issued_at"], tz, where=f"{src}: orders", column="code_issued_at")
    strings = not all(is_categorical(c) for c in (*lic_cols, ord_df["code"], act_df["code"]))
    pool = worker_pool() if strings else None
    f_lic = submit(pool, _license_space, lic_cols)
    f_code = submit(pool, _code_space, ord_df["code"], act_df["code"])
    f_sku = submit(pool, _enum_codes, ord_df["sku"], categories(Sku))
    unique = _is_unique(ord_df["order_id"])
    lic, license_ids, license_dtype = f_lic.result()
    o_code, a_code, n_codes, codes_cat = f_code.result()
    o_sku = f_sku.result()
    _check_license_ids(src, tuple(tables), lic)
    return _Ids(lic, license_ids, license_dtype, o_code, a_code, n_codes, codes_cat, unique, o_sku, o_issue_ts)


def _check_license_ids(src: str, names: tuple[str, ...], cols: list[np.ndarray]) -> None:
    for name, arr in zip(names, cols, strict=False):
        if len(arr) and arr.min() < 0:
            msg = f"{src}: {name} row {_first(arr < 0) + 1}, column 'license_id' is empty; every row needs a license_id"
            raise LedgerError(msg)


def _number_orders(ids: _Ids) -> _OrderNumbers:
    """Orders numbered by license, and each issued code's order number (license numbers in range)."""
    o_perm, o_rank, o_ptr, n_issue_ts = J.license_order(ids.lic[1], ids.o_issue_ts, ids.nlic)
    code_to_num, repeated, uncoded = J.code_index(ids.o_code, ids.o_issue_ts, o_rank, ids.n_codes)
    return _OrderNumbers(o_perm, o_rank, o_ptr, n_issue_ts, code_to_num, int(repeated), int(uncoded))


def _check_licenses(led: Ledger, ids: _Ids) -> np.ndarray:
    """Checks, first part: license ids unique, every order's license listed, editions known.
    Returns each license number's edition position (-1: a license only other tables name)."""
    src, lic_df, ord_df = led.source, led.licenses, led.orders
    l_lic, o_lic = ids.lic[0], ids.lic[1]
    counts = np.bincount(l_lic, minlength=ids.nlic)
    if len(counts) and counts.max() > 1:
        dup = ids.license_ids[_first(counts > 1)].as_py()
        msg = f"{src}: licenses has license_id {dup!r} more than once; license ids must be unique"
        raise LedgerError(msg)
    row = J.first_absent(counts > 0, o_lic)  # a byte per license: the lookups stay in cache
    if row >= 0:
        msg = (
            f"{src}: orders row {row + 1}, column 'license_id': {ord_df['license_id'].iloc[row]!r} "
            "is not in licenses; add the license or drop the order"
        )
        raise LedgerError(msg)
    edition = np.full(ids.nlic, -1, dtype=np.int8)
    ed_codes = _enum_codes(lic_df["edition"], categories(Edition))
    if len(ed_codes) and ed_codes.min() < 0:
        row = _first(ed_codes < 0)
        msg = f"{src}: licenses row {row + 1}, column 'edition': {lic_df['edition'].iloc[row]!r} is not full or basic"
        raise LedgerError(msg)
    edition[l_lic] = ed_codes
    return edition


def _check_orders(led: Ledger, ids: _Ids, orders: _OrderNumbers, act_ts: np.ndarray) -> np.ndarray:
    """Checks, second part: order ids unique, skus known, issued codes present and not shared,
    activation instants present. Returns each order row's sku position."""
    src, ord_df = led.source, led.orders
    if not ids.order_ids_unique:
        dup = ord_df["order_id"][ord_df["order_id"].duplicated()].iloc[0]
        msg = f"{src}: orders has order_id {dup!r} more than once; order ids must be unique"
        raise LedgerError(msg)
    o_sku = ids.o_sku
    if len(o_sku) and o_sku.min() < 0:
        row = _first(o_sku < 0)
        msg = f"{src}: orders row {row + 1}, column 'sku': {ord_df['sku'].iloc[row]!r} is not one of {categories(Sku)}"
        raise LedgerError(msg)
    if orders.uncoded_row >= 0:
        msg = (f"{src}: orders row {orders.uncoded_row + 1}, column 'code' is empty although code_issued_at is set; "
               "add the code")
        raise LedgerError(msg)
    if orders.repeated_code >= 0:
        rows = np.flatnonzero((ids.o_code == orders.repeated_code) & (ids.o_issue_ts != NO_TIME)) + 1
        msg = f"{src}: orders rows {rows.tolist()} carry the same code; a code belongs to one order"
        raise LedgerError(msg)
    if len(act_ts) and act_ts.min() == NO_TIME:
        row = _first(act_ts == NO_TIME) + 1
        msg = f"{src}: activations row {row}, column 'activated_at' is empty; every activation needs a timestamp"
        raise LedgerError(msg)
    return o_sku


def _issue_events(led: Ledger, tz: str, orders: _OrderNumbers, o_sku: np.ndarray) -> _IssueEvents:
    """Skus and issue days by order number, and the renewal codes' issue events in replay order."""
    n_sku = J.gather(o_sku, orders.o_perm)
    n_issue_day, last = local_days32_and_last(orders.n_issue_ts, tz)
    num, ptr, ts, day = J.issue_events(orders.o_ptr, n_sku, orders.n_issue_ts, n_issue_day)
    oid = led.orders["order_id"]
    n_oid = J.gather(_cat_codes(oid), orders.o_perm) if is_categorical(oid) else None
    return _IssueEvents(n_sku, n_issue_day, int(last), num, ptr, ts, day, n_oid)


def _activation_buckets(a_lic: np.ndarray, a_ts: np.ndarray, a_code: np.ndarray, nlic: int, tz: str) -> _Buckets:
    """The activations' rows grouped in buckets of about BUCKET_EVENTS rows (licenses
    ``lic >> shift``), with the UTC-offset table of their days."""
    n = len(a_lic)
    shift = max(int(np.ceil(np.log2(max(nlic * BUCKET_EVENTS / max(n, 1), 1)))), 0)
    rows, num, ts, code = np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int64), np.empty(n, a_code.dtype)
    bptr, ptr = J.bucket_rows(a_lic, a_ts, a_code, nlic, shift, rows, num, ts, code)
    return _Buckets(*day_offsets(a_ts, tz), rows, num, ts, code, bptr, ptr, shift)


def _join_activations(b: _Buckets, orders: _OrderNumbers, nlic: int, tz: str, tiebreak: pd.Series) -> _Activations:
    """Activations in replay order, joined to their orders (:func:`_join.order_activations`),
    with the static reasons and local days; buckets run side by side on the workers (large ledgers)."""
    n = len(b.rows)
    static, day = np.empty(n, np.int8), np.empty(n, np.int32)

    def run(b_lo: int, b_hi: int) -> tuple[bool, int, int]:
        lo, hi = b_lo << b.shift, min(b_hi << b.shift, nlic)
        return J.order_activations(lo, hi, b_lo, b_hi, b.bptr, b.ptr, orders.code_to_num, orders.o_ptr,
                                   orders.n_issue_ts, b.d0, b.offset, b.changes, b.rows, b.ts, b.code, b.num,
                                   static, day)

    parts = run_ranges(run, work_ranges(b.bptr, n)) if len(b.bptr) > 1 else [(False, 0, NO_DAY)]
    tie, n_change, last = any(t for t, _, _ in parts), sum(c for _, c, _ in parts), max(x for _, _, x in parts)
    perm, ts, code, num = b.rows, b.ts, b.code, b.num
    if tie:  # events of a license at one instant go by code (R14's total order)
        lic = np.repeat(np.arange(nlic, dtype=np.int32), np.diff(b.ptr))
        again = order_events(lic, ts, nlic, tiebreak.iloc[perm].reset_index(drop=True))[0]
        perm, ts, code, num, static, day = (x[again] for x in (perm, ts, code, num, static, day))
    if n_change or len(b.offset) == 0:
        last = fix_local_days(ts, day, tz, b.d0, b.changes)
    return _Activations(perm, b.ptr, ts, code, num, static, day, int(last))


def _upgrade_targets(ord_df: pd.DataFrame, o_lic: np.ndarray, o_sku: np.ndarray, o_rank: np.ndarray,
                     src: str) -> _Targets:
    """R8: each upgrade's target, the renewal order of the same license whose act number it
    names, by row and by order number (-1: none; see :func:`target_numbers`). Raises when
    an act number of those renewals repeats."""
    o_target = np.full(len(o_sku), -1, dtype=np.int32)
    upg = np.flatnonzero(o_sku == UPG)
    if len(upg):
        cand = np.flatnonzero(np.isin(o_lic, np.unique(o_lic[upg])) & (o_sku == REN))
        acts = ids_as_text(ord_df["act_number"].iloc[cand])
        has_act = acts.notna().to_numpy()
        cand, acts = cand[has_act], acts[has_act]
        idx = pd.Index(acts.to_numpy())
        if not idx.is_unique:
            dup = idx[idx.duplicated()][0]
            msg = f"{src}: orders carry act_number {dup!r} more than once; act numbers must be unique"
            raise LedgerError(msg)
        found = idx.get_indexer(ids_as_text(ord_df["upgrade_of_act"].iloc[upg]).to_numpy())
        tgt = np.full(len(upg), -1, dtype=np.int64)
        tgt[found >= 0] = cand[found[found >= 0]]
        ok = (tgt >= 0) & (o_lic[np.maximum(tgt, 0)] == o_lic[upg])
        o_target[upg] = np.where(ok, tgt, -1)
    return _Targets(o_target, target_numbers(o_rank, o_target))


def _legacy_periods(led: Ledger, leg_lic: np.ndarray, nlic: int) -> _Legacy:
    """R12: the legacy periods in replay order; raises on an empty or reversed date."""
    leg_df, src = led.legacy_periods, led.source
    if leg_df is None or len(leg_df) == 0:
        none = np.empty(0, np.int64)
        return _Legacy(leg_lic, none, none, none, np.zeros(nlic + 1, np.int64))
    start = parse_dates(leg_df["start"], where=f"{src}: legacy_periods", column="start")
    until = parse_dates(leg_df["valid_until"], where=f"{src}: legacy_periods", column="valid_until")
    for col, arr in (("start", start), ("valid_until", until)):
        if (arr == NO_DAY).any():
            row = _first(arr == NO_DAY) + 1
            msg = f"{src}: legacy_periods row {row}, column {col!r} is empty; give a date YYYY-MM-DD"
            raise LedgerError(msg)
    if (until < start).any():
        row = _first(until < start) + 1
        msg = f"{src}: legacy_periods row {row}: valid_until is before start; fix the dates"
        raise LedgerError(msg)
    perm, ptr = order_events(leg_lic, start, nlic, None)
    return _Legacy(leg_lic[perm], start[perm], until[perm] + 1, perm, ptr)


def _order_days(led: Ledger, tz: str) -> tuple[np.ndarray | None, int]:
    """The orders' invoice days (prices go by invoice day, R10; None without the column) and the
    last day of their other stages (NO_DAY: none)."""
    ord_df, invoice_day, lasts = led.orders, None, [NO_DAY]
    for col in ("requested_at", "invoiced_at", "paid_at", "ticket_at"):
        if col in ord_df.columns:
            instants = parse_instants(ord_df[col], tz, where=f"{led.source}: orders", column=col)
            days, last = local_days_and_last(instants, tz)
            lasts.append(last)
            if col == "invoiced_at":
                invoice_day = days
    return invoice_day, max(lasts)  # NO_DAY is the least int64


def prepare(ledger: Ledger, catalog: Catalog | str | None = None) -> Prepared:
    """The catalog-independent arrays of ``ledger`` for :func:`replay`, made once and held by the caller.

    Parameters
    ----------
    ledger : Ledger
    catalog : Catalog or time-zone name, optional
        Only its time zone matters (days are local days); defaults to Europe/Moscow.

    Examples
    --------
    >>> import subs_model as sm
    >>> led = sm.read_ledger("tests/data/handmade")
    >>> prep = sm.prepare(led)
    >>> [len(sm.replay(prep, as_of=day).periods) for day in ("2025-06-30", "2026-10-31")]  # doctest: +SKIP
    """
    tz = catalog.timezone if isinstance(catalog, Catalog) else (catalog or Catalog.default().timezone)
    return prepare_ledger(ledger, tz)


def prepare_ledger(led: Ledger, tz: str) -> Prepared:
    """:func:`prepare`'s work as named steps, each returning a small record: number the ids;
    check the licenses, then the activation instants can be parsed; bucket the activations
    by license (on a worker, large ledgers) beside numbering the orders; check the orders;
    list the issue events and read the orders' stage days beside joining the activations to
    their orders; find the upgrade targets (R8); order the legacy periods (R12). The checks
    raise one after the other in this order (a stage day's parse error last)."""
    src, pool = led.source, None
    if len(led.orders) + len(led.activations) >= PARALLEL_MIN_EVENTS:
        pool = worker_pool()
    ids = _number_ids(led, tz)
    edition = _check_licenses(led, ids)
    act_ts = parse_instants(led.activations["activated_at"], tz, where=f"{src}: activations", column="activated_at")
    # Bucketing the activations needs only their licenses and instants: beside the orders' numbering.
    f_buckets = submit(pool, _activation_buckets, ids.lic[2], act_ts, ids.a_code, ids.nlic, tz)
    orders = _number_orders(ids)
    o_sku = _check_orders(led, ids, orders, act_ts)
    # Listing the issue events, reading the orders' stage days and joining the activations to
    # their orders: side by side (the stage days' errors come out last, where they are taken).
    f_issues = submit(pool, _issue_events, led, tz, orders, o_sku)
    f_days = submit(pool, _order_days, led, tz)
    acts = _join_activations(f_buckets.result(), orders, ids.nlic, tz, led.activations["code"])
    issues = f_issues.result()
    act_iss = issues_before(acts.ptr, acts.ts, issues.ptr, issues.ts)
    targets = _upgrade_targets(led.orders, ids.lic[1], o_sku, orders.o_rank, src)
    legacy = _legacy_periods(led, ids.lic[3] if len(ids.lic) > 3 else np.empty(0, np.int64), ids.nlic)
    o_invoice_day, last_order_day = f_days.result()
    last = max(acts.last_day, issues.last_day, int(legacy.start.max()) if len(legacy.start) else NO_DAY, last_order_day)
    return Prepared(
        license_ids=ids.license_ids,
        license_dtype=ids.license_dtype,
        license_edition=edition,
        o_lic=ids.lic[1],
        o_sku=o_sku,
        o_target=targets.o_target,
        o_invoice_day=o_invoice_day,
        o_perm=orders.o_perm,
        o_rank=orders.o_rank,
        o_ptr=orders.o_ptr,
        n_sku=issues.n_sku,
        n_issue_day=issues.n_issue_day,
        n_target=targets.n_target,
        n_oid=issues.n_oid,
        act_num=acts.num,
        act_iss=act_iss,
        act_day=acts.day,
        act_static=acts.static,
        act_code=acts.code if ids.codes_cat else None,
        act_perm=acts.perm,
        act_ptr=acts.ptr,
        iss_num=issues.num,
        iss_day=issues.day,
        iss_ptr=issues.ptr,
        leg_lic=legacy.lic,
        leg_start=legacy.start,
        leg_end=legacy.end,
        leg_perm=legacy.perm,
        leg_ptr=legacy.ptr,
        last_event_day=last if last != NO_DAY else 0,  # as_of's default
        tz=tz,
        ledger=led,
    )


#: Below this many events a replay runs on one thread (starting threads costs more).
PARALLEL_MIN_EVENTS = 50_000
#: Activations per bucket when ordering them by license (keeps each pass cache-sized).
BUCKET_EVENTS = 16_384


def work_ranges(work: np.ndarray, n_events: int, per_thread: int = 4) -> list[tuple[int, int]]:
    """Ranges of licenses with about as many events each, ``per_thread`` per thread (``work``:
    cumulative events per license, CSR pointers or a sum of them).

    More ranges than threads, taken as threads come free, let a faster core do more (the
    cores of a shared machine run at different speeds: docs/performance.md).
    """
    nlic = len(work) - 1
    total = int(work[-1])
    threads = workers()
    parts = threads * per_thread
    if threads < 2 or n_events < PARALLEL_MIN_EVENTS or nlic < 2:
        return [(0, nlic)]
    cuts = np.searchsorted(work, [total * k // parts for k in range(1, parts)])
    bounds = [0, *sorted({int(min(max(c, 1), nlic - 1)) for c in cuts}), nlic]
    return list(itertools.pairwise(bounds))


def issues_before(act_ptr: np.ndarray, act_ts: np.ndarray, iss_ptr: np.ndarray, iss_ts: np.ndarray) -> np.ndarray:
    """:func:`_scan.issues_before` over ranges of licenses side by side (events in replay
    order, CSR pointers per license)."""
    out = np.empty(len(act_ts), np.int32)

    def part(lo: int, hi: int) -> None:
        S.issues_before(act_ptr[lo : hi + 1], act_ts, iss_ptr[lo : hi + 1], iss_ts, out)

    run_ranges(part, work_ranges(act_ptr + iss_ptr, len(act_ts) + len(iss_ts)))
    return out



def target_numbers(o_rank: np.ndarray, o_target: np.ndarray) -> np.ndarray:
    """Each order number's upgrade target as an order number (-1: none), from the targets'
    rows by row (-1: none). Only upgrades have one, so this touches only them."""
    out = np.full(len(o_rank), -1, np.int32)
    has = np.flatnonzero(o_target >= 0)
    out[o_rank[has]] = o_rank[o_target[has]]
    return out


