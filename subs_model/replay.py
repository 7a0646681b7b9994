"""Replay a ledger into coverage periods, code fates and rejections (rules R1–R14).

The work is split in two, both over whole columns:

1. *Preparation* (catalog-independent, cached on the :class:`~subs_model.ledger.Ledger`
   per time zone): number license ids and codes (categorical columns sharing their
   dictionaries by their codes, strings by hashing), join activations to their orders
   and upgrades to their renewal acts, compute the static rejections (``unknown_code``,
   ``wrong_license``, ``activated_before_issue``) and sort events into the total replay
   order ``(license, instant, kind, code)`` — legacy periods first, a code issue before
   an activation at the same instant.
2. *Scan* (:mod:`subs_model._kernel`, compiled): per license, the state that depends on
   earlier accepted activations — the current end, prior coverage (R5) and the renewal
   codes waiting on the current expiry (R7, R14) — then the result columns.

The compiled passes run over ranges of licenses on two threads for large ledgers (the
result does not depend on it). Replaying the same ledger under another catalog or
``as_of`` reuses step 1.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from . import _kernel as K
from .catalog import Catalog
from .days import (
    NO_DAY,
    NO_TIME,
    as_day,
    day_offsets,
    days_to_datetime,
    fix_local_days,
    local_days32_and_last,
    local_days_and_last,
    parse_dates,
    parse_instants,
)
from .errors import LedgerError
from .ledger import Ledger, _as_text, _id_codes
from .vocab import REN, UPG, CodeStatus, Edition, Reason, Sku, Source, categories
from .workers import pool as worker_pool
from .workers import run as run_ranges
from .workers import workers

__all__ = ["CodeStatus", "Reason", "Replay", "Source", "replay"]


REASONS: tuple[Reason, ...] = tuple(Reason)  # engine code k+1 ↔ REASONS[k] (Reason.code)


def _is_cat(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype)


def _id_column(series: pd.Series) -> pd.Series:
    """An id column for a result table: categoricals as given, anything else as strings."""
    return series if _is_cat(series) else _as_text(series)


def _cat_codes(series: pd.Series) -> np.ndarray:
    """Category codes of a categorical column as int32 (-1 = missing); a read-only view, no copy,
    when they are int32 already."""
    return series.array.codes.astype(np.int32, copy=False)


def _shared_categories(cols: list[pd.Series]) -> pd.Index | None:
    """The categories every column shares (same values, same order), or None.

    Ledgers with categorical id columns (``Ledger.categorical_ids()`` builds them with one
    dictionary per id kind) are matched on their codes: no string is hashed.
    """
    if not cols or not all(_is_cat(c) for c in cols):
        return None
    first = cols[0].cat.categories
    for c in cols[1:]:
        other = c.cat.categories
        if other is not first and not other.equals(first):
            return None
    return first


def _arrow(series: pd.Series) -> pa.Array:
    """The Arrow array behind a string column (zero-copy for Arrow-backed strings)."""
    arr = pa.array(_as_text(series).array)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _take_str(arr: pa.Array, idx: np.ndarray) -> pd.Series:
    """``arr[idx]`` as a pandas string column; ``idx < 0`` gives NA."""
    neg = idx < 0
    taken = arr.take(pa.array(idx, mask=neg if neg.any() else None))
    return pd.Series(pd.array(taken, dtype="str"))


def _take_id(series: pd.Series, idx: np.ndarray) -> pd.Series:
    """``series[idx]`` of an id column (``idx < 0`` gives NA), keeping a categorical's dtype."""
    if _is_cat(series):
        return _from_codes(_at(series.array.codes, idx), series)
    return _take_str(_arrow(series), idx)


def _enum_codes(series: pd.Series, names: list[str]) -> np.ndarray:
    """Position of each value in ``names`` (-1 when not one of them); low-cardinality fast path."""
    if _is_cat(series):
        codes, uniques = _cat_codes(series), series.cat.categories
    else:
        codes, uniques = pd.factorize(_as_text(series))
    lut = np.array([names.index(u) if u in names else -1 for u in uniques] + [-1], dtype=np.int8)
    # A missing value's code -1 takes the table's last entry, -1 (compiled: 3.3 → 0.7 ms at 1 M
    # rows against numpy's fancy indexing).
    return K.gather(lut, codes)


def _categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    """A string-valued categorical column from engine codes (-1 = missing; the engine writes
    no other value, so the codes are not checked again)."""
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(names), validate=False)


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
    codes, uniques = _id_codes(cols)
    return codes, uniques, None


def _code_space(order_codes: pd.Series, act_codes: pd.Series) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Codes of orders and of activations as numbers in one code space (-1 = missing), and
    whether those numbers are the columns' own categorical codes."""
    if _shared_categories([order_codes, act_codes]) is not None:
        return _cat_codes(order_codes), _cat_codes(act_codes), len(order_codes.cat.categories), True
    (oc, ac), values = _id_codes([order_codes, act_codes], sort=False)
    return oc, ac, len(values), False


def _is_unique(series: pd.Series) -> bool:
    if _is_cat(series):
        codes = _cat_codes(series)
        return bool(len(codes) == 0 or (codes.min() >= 0 and K.first_repeat(codes, len(series.cat.categories)) < 0))
    return series.is_unique


def _event_order(lic: np.ndarray, ts: np.ndarray, nlic: int, tiebreak: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
    """Permutation into (license, instant[, tiebreak]) order and CSR pointers per license."""
    perm, ptr, tie = K.event_order(lic, ts, nlic)
    if tie and tiebreak is not None:
        ls, tss = lic[perm], ts[perm]
        same = (ls[1:] == ls[:-1]) & (tss[1:] == tss[:-1])
        # Only rows sharing (license, instant) need the tiebreak's rank.
        tied = np.zeros(len(perm), np.bool_)
        tied[1:] |= same
        tied[:-1] |= same
        rank = np.zeros(len(perm), np.int64)
        rank[tied] = _id_codes([tiebreak.iloc[perm[tied]]])[0][0]  # a missing code sorts first
        perm = perm[np.lexsort((rank, tss, ls))]
    return perm, ptr


def _submit(pool: ThreadPoolExecutor | None, fn, *args) -> Future:
    """``fn(*args)`` on ``pool``, or here and now without one; either way an error it raises
    comes out of the future's ``result()``, so checks raise in one order on both paths."""
    if pool is not None:
        return pool.submit(fn, *args)
    done: Future = Future()
    try:
        done.set_result(fn(*args))
    except BaseException as exc:  # noqa: BLE001 - raised again by result()
        done.set_exception(exc)
    return done


def _activation_buckets(
    a_lic: np.ndarray, a_ts: np.ndarray, a_code: np.ndarray, nlic: int, tz: str
) -> tuple[Any, ...]:
    """What ordering the activations needs before their orders are known: the UTC-offset
    table of their days, and their rows grouped in buckets of about BUCKET_EVENTS rows
    (licenses ``lic >> shift``), in table order within each, with their license, instant
    and code (see :func:`_kernel.bucket_rows`; :func:`_kernel.order_activations` then
    fills those four arrays in place), the bucket and license pointers, and the shift."""
    n = len(a_lic)
    shift = max(int(np.ceil(np.log2(max(nlic * BUCKET_EVENTS / max(n, 1), 1)))), 0)
    out = np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int64), np.empty(n, a_code.dtype)
    return *day_offsets(a_ts, tz), *out, *K.bucket_rows(a_lic, a_ts, a_code, nlic, shift, *out), shift


def _order_activations(buckets, index, issues, o_ptr, n_issue_ts, nlic, tz, tiebreak) -> tuple[Any, ...]:
    """Activations in replay order, joined to their orders (see :func:`_kernel.order_activations`):
    perm, pointers, instant, code number, order number, static reason, local day, last day,
    and the index of the license's first renewal-code issue at a later instant (see
    :func:`issues_before`). ``buckets`` is :func:`_activation_buckets`'s result, ``index`` a
    Future of :func:`_kernel.code_index`'s, ``issues`` a function returning the issue events'
    pointers and instants; ``o_ptr`` gives each license's order numbers and ``n_issue_ts``
    the orders' issue instants by number."""
    # The bucketed rows, licenses, instants and codes become the events' rows, order numbers,
    # instants and codes in place.
    d0, offset, changes, perm, num, ts, code, bptr, ptr, shift = buckets
    n, n_buckets = len(perm), len(bptr) - 1
    code_to_num = index.result()[0]
    # Days fit int32 (a missing instant is an error the caller raises; no offset table: the
    # caller fills the days exactly).
    static, day, act_iss = np.empty(n, np.int8), np.empty(n, np.int32), np.empty(n, np.int32)

    def run(b_lo: int, b_hi: int) -> tuple[bool, int, int]:
        lo, hi = b_lo << shift, min(b_hi << shift, nlic)
        out = K.order_activations(lo, hi, b_lo, b_hi, bptr, ptr, code_to_num, o_ptr, n_issue_ts, d0, offset, changes,
                                  perm, ts, code, num, static, day)
        # The range's instants are in cache now. The issue events come from a task queued
        # before this one, so they are made, or being made on the other worker.
        iss_ptr, iss_ts = issues()
        K.issues_before(ptr[lo : hi + 1], ts, iss_ptr[lo : hi + 1], iss_ts, act_iss)
        return out

    parts = run_ranges(run, _ranges(bptr, n)) if n_buckets else [(False, 0, NO_DAY)]
    tie, n_change, last = any(t for t, _, _ in parts), sum(c for _, c, _ in parts), max(x for _, _, x in parts)
    if tie:  # events of a license at one instant go by code (R14's total order)
        lic = np.repeat(np.arange(nlic, dtype=np.int32), np.diff(ptr))
        again = _event_order(lic, ts, nlic, tiebreak.iloc[perm].reset_index(drop=True))[0]
        # (act_iss stays: it depends only on the license and the instant, which ties share)
        perm, ts, code, num, static, day = (x[again] for x in (perm, ts, code, num, static, day))
    if n_change or len(offset) == 0:
        last = fix_local_days(ts, day, tz, d0, changes)
    return perm, ptr, ts, code, num, static, day, int(last), act_iss


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
        return K.gather(self.license_edition, self.o_lic)

    @property
    def act_order(self) -> np.ndarray:
        """Order row of each activation's code (-1: unknown code), in replay order."""
        return _at(self.o_perm, self.act_num)


def first_activations(led: Ledger, p: Prepared, tz: str) -> np.ndarray:
    """Instant (UTC ns) of each order's code's first activation on record, by order row
    (``NO_TIME``: never activated; ``p`` prepared from ``led``)."""
    ts = parse_instants(led.activations["activated_at"], tz, where=f"{led.source}: activations", column="activated_at")
    return K.first_by_order(len(p.o_sku), p.act_num, p.o_perm, p.act_perm, ts)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_license_ids(src: str, names: tuple[str, ...], cols: list[np.ndarray]) -> None:
    for name, arr in zip(names, cols, strict=False):
        if len(arr) and arr.min() < 0:
            msg = f"{src}: {name} row {_first(arr < 0) + 1}, column 'license_id' is empty; every row needs a license_id"
            raise LedgerError(msg)


def _upgrade_targets(ord_df: pd.DataFrame, o_lic: np.ndarray, o_sku: np.ndarray, o_rank: np.ndarray,
                     src: str) -> tuple[np.ndarray, np.ndarray]:
    """R8: each upgrade's target, the renewal order of the same license whose act number it
    names, by row and by order number (-1: none; see :func:`target_numbers`)."""
    o_target = np.full(len(o_sku), -1, dtype=np.int32)
    upg = np.flatnonzero(o_sku == UPG)
    if len(upg):
        cand = np.flatnonzero(np.isin(o_lic, np.unique(o_lic[upg])) & (o_sku == REN))
        acts = _as_text(ord_df["act_number"].iloc[cand])
        has_act = acts.notna().to_numpy()
        cand, acts = cand[has_act], acts[has_act]
        idx = pd.Index(acts.to_numpy())
        if not idx.is_unique:
            dup = idx[idx.duplicated()][0]
            msg = f"{src}: orders carry act_number {dup!r} more than once; act numbers must be unique"
            raise LedgerError(msg)
        found = idx.get_indexer(_as_text(ord_df["upgrade_of_act"].iloc[upg]).to_numpy())
        tgt = np.full(len(upg), -1, dtype=np.int64)
        tgt[found >= 0] = cand[found[found >= 0]]
        ok = (tgt >= 0) & (o_lic[np.maximum(tgt, 0)] == o_lic[upg])
        o_target[upg] = np.where(ok, tgt, -1)
    return o_target, target_numbers(o_rank, o_target)


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
    return _prepare(ledger, tz)


def _prepare(led: Ledger, tz: str) -> Prepared:
    src = led.source
    lic_df, ord_df, act_df = led.licenses, led.orders, led.activations
    leg_df = led.legacy_periods if led.legacy_periods is not None else None
    n_o = len(ord_df)
    n_g = 0 if leg_df is None else len(leg_df)

    lic_cols = [lic_df["license_id"], ord_df["license_id"], act_df["license_id"]]
    if leg_df is not None:
        lic_cols.append(leg_df["license_id"])
    o_code, a_code = ord_df["code"], act_df["code"]
    o_issue_ts = parse_instants(ord_df["code_issued_at"], tz, where=f"{src}: orders", column="code_issued_at")
    # Matching ids is the costly part for string columns (categoricals sharing their
    # dictionaries are matched on codes); Arrow releases the GIL, so the three string
    # hash passes (license ids, codes, order ids) run side by side on two cores.
    if all(_is_cat(c) for c in (*lic_cols, o_code, a_code)):
        lic_codes, uniques, license_dtype = _license_space(lic_cols)
        oc, ac, n_codes, codes_cat = _code_space(o_code, a_code)
        orders_unique = None  # checked beside the activations below
    else:
        pool = worker_pool()
        f_lic = _submit(pool, _license_space, lic_cols)
        f_code = _submit(pool, _code_space, o_code, a_code)
        orders_unique = _is_unique(ord_df["order_id"])
        lic_codes, uniques, license_dtype = f_lic.result()
        oc, ac, n_codes, codes_cat = f_code.result()
    l_lic, o_lic, a_lic = lic_codes[:3]
    leg_lic = lic_codes[3] if leg_df is not None else np.empty(0, np.int64)
    _check_license_ids(src, ("licenses", "orders", "activations", "legacy_periods"), lic_codes)
    nlic = len(uniques)

    # -- orders (on the workers) and activations joined to them by code, in replay order ------------
    def order_head() -> tuple[bool, np.ndarray]:
        unique = orders_unique if orders_unique is not None else _is_unique(ord_df["order_id"])
        return unique, _enum_codes(ord_df["sku"], categories(Sku))

    def parsed_buckets() -> tuple[np.ndarray, tuple[Any, ...]]:  # the activations' instants, and their buckets
        act_ts = parse_instants(act_df["activated_at"], tz, where=f"{src}: activations", column="activated_at")
        return act_ts, _activation_buckets(a_lic, act_ts, ac, nlic, tz)

    f_head: Future = Future()

    def head_then_buckets() -> tuple[np.ndarray, tuple[Any, ...]]:
        try:
            f_head.set_result(order_head())
        except BaseException as exc:  # noqa: BLE001 - raised again where the head is taken
            f_head.set_exception(exc)
        return parsed_buckets()

    # The workers take the tasks of both sides (and the activations' license ranges) as
    # they come free, so the two sides share the cores evenly. The orders' head and the
    # activations' buckets need only license numbers in range (checked just above), so they
    # start beside the checks below and the numbering of orders, which everything after
    # waits on: on one worker, one after the other, as a third busy thread on two cores
    # only slowed the numbering down (in-process A/B at 1 M: cold p25 91 → 81 ms). Their
    # own errors come out where their results are taken, after those checks.
    pool = worker_pool() if n_o + len(act_df) >= PARALLEL_MIN_EVENTS else None
    f_buckets = _submit(pool, head_then_buckets)
    counts = np.bincount(l_lic, minlength=nlic)
    if len(counts) and counts.max() > 1:
        dup = uniques[_first(counts > 1)].as_py()
        msg = f"{src}: licenses has license_id {dup!r} more than once; license ids must be unique"
        raise LedgerError(msg)
    row = K.first_absent(counts > 0, o_lic)  # a byte per license: the lookups stay in cache
    if row >= 0:
        msg = (
            f"{src}: orders row {row + 1}, column 'license_id': {ord_df['license_id'].iloc[row]!r} "
            "is not in licenses; add the license or drop the order"
        )
        raise LedgerError(msg)
    edition = np.full(nlic, -1, dtype=np.int8)
    ed_codes = _enum_codes(lic_df["edition"], categories(Edition))
    if len(ed_codes) and ed_codes.min() < 0:
        row = _first(ed_codes < 0)
        msg = f"{src}: licenses row {row + 1}, column 'edition': {lic_df['edition'].iloc[row]!r} is not full or basic"
        raise LedgerError(msg)
    edition[l_lic] = ed_codes

    def order_tail(sku: np.ndarray) -> tuple[Any, ...]:  # by order number
        n_sku = K.gather(sku, o_perm)
        n_issue_day, last = local_days32_and_last(n_issue_ts, tz)
        return n_sku, n_issue_day, last, K.issue_events(o_ptr, n_sku, n_issue_ts, n_issue_day)

    def issued_codes() -> tuple[np.ndarray, np.ndarray]:  # pointers and instants of order_tail's issue events
        return f_tail.result()[3][1:3]

    def order_ids() -> np.ndarray | None:  # the categorical order_id column's codes by order number
        return K.gather(_cat_codes(ord_df["order_id"]), o_perm) if _is_cat(ord_df["order_id"]) else None

    # Orders are numbered by license for the passes over licenses (see Prepared).
    o_perm, o_rank, o_ptr, n_issue_ts = K.license_order(o_lic, o_issue_ts, nlic)
    index = _submit(pool, K.code_index, oc, o_issue_ts, o_rank, n_codes)
    orders_unique, o_sku = f_head.result()
    f_tail, f_oid = _submit(pool, order_tail, o_sku), _submit(pool, order_ids)
    f_targets = _submit(pool, _upgrade_targets, ord_df, o_lic, o_sku, o_rank, src)
    act_ts, buckets = f_buckets.result()
    acts = _order_activations(buckets, index, issued_codes, o_ptr, n_issue_ts, nlic, tz, a_code)
    _, dup_code, no_code = index.result()
    n_sku, n_issue_day, last_issue, (iss_num, iss_ptr, _, iss_day) = f_tail.result()
    n_oid = f_oid.result()
    # Errors in the order the checks read: order ids, skus, codes, activation times.
    if not orders_unique:
        dup = ord_df["order_id"][ord_df["order_id"].duplicated()].iloc[0]
        msg = f"{src}: orders has order_id {dup!r} more than once; order ids must be unique"
        raise LedgerError(msg)
    if len(o_sku) and o_sku.min() < 0:
        row = _first(o_sku < 0)
        msg = (
            f"{src}: orders row {row + 1}, column 'sku': {ord_df['sku'].iloc[row]!r} is not one of "
            f"{categories(Sku)}"
        )
        raise LedgerError(msg)
    if no_code >= 0:
        msg = f"{src}: orders row {no_code + 1}, column 'code' is empty although code_issued_at is set; add the code"
        raise LedgerError(msg)
    if dup_code >= 0:
        rows = np.flatnonzero((oc == dup_code) & (o_issue_ts != NO_TIME)) + 1
        msg = f"{src}: orders rows {rows.tolist()} carry the same code; a code belongs to one order"
        raise LedgerError(msg)
    if len(act_ts) and act_ts.min() == NO_TIME:
        row = _first(act_ts == NO_TIME) + 1
        msg = f"{src}: activations row {row}, column 'activated_at' is empty; every activation needs a timestamp"
        raise LedgerError(msg)
    act_perm, act_ptr, act_ts, act_code, act_num, act_static, act_day, last_act, act_iss = acts

    o_target, n_target = f_targets.result()  # raises here, after the checks above, when act numbers repeat

    # -- legacy periods (R12) ------------------------------------------------------------------------------
    if leg_df is not None and n_g:
        leg_start = parse_dates(leg_df["start"], where=f"{src}: legacy_periods", column="start")
        until = parse_dates(leg_df["valid_until"], where=f"{src}: legacy_periods", column="valid_until")
        for col, arr in (("start", leg_start), ("valid_until", until)):
            if (arr == NO_DAY).any():
                row = _first(arr == NO_DAY) + 1
                msg = f"{src}: legacy_periods row {row}, column {col!r} is empty; give a date YYYY-MM-DD"
                raise LedgerError(msg)
        if (until < leg_start).any():
            row = _first(until < leg_start) + 1
            msg = f"{src}: legacy_periods row {row}: valid_until is before start; fix the dates"
            raise LedgerError(msg)
        leg_perm, leg_ptr = _event_order(leg_lic, leg_start, nlic, None)
        leg_lic, leg_start, leg_end = leg_lic[leg_perm], leg_start[leg_perm], until[leg_perm] + 1
    else:
        leg_start = leg_end = leg_perm = np.empty(0, np.int64)
        leg_ptr = np.zeros(nlic + 1, np.int64)

    # -- the ledger's last event day: as_of's default -----------------------------------------------------
    o_invoice_day = None
    lasts = [last_act, last_issue, int(leg_start.max()) if len(leg_start) else NO_DAY]
    for col in ("requested_at", "invoiced_at", "paid_at", "ticket_at"):
        if col in ord_df.columns:
            days, last = local_days_and_last(parse_instants(ord_df[col], tz, where=f"{src}: orders", column=col), tz)
            lasts.append(last)
            if col == "invoiced_at":
                o_invoice_day = days  # prices go by invoice day (R10)
    last = max(lasts)  # NO_DAY is the least int64
    last_event_day = last if last != NO_DAY else 0

    prepared = Prepared(
        license_ids=uniques,
        license_dtype=license_dtype,
        license_edition=edition,
        o_lic=o_lic,
        o_sku=o_sku,
        o_target=o_target,
        o_invoice_day=o_invoice_day,
        o_perm=o_perm,
        o_rank=o_rank,
        o_ptr=o_ptr,
        n_sku=n_sku,
        n_issue_day=n_issue_day,
        n_target=n_target,
        n_oid=n_oid,
        act_num=act_num,
        act_iss=act_iss,
        act_day=act_day,
        act_static=act_static,
        act_code=act_code if codes_cat else None,
        act_perm=act_perm,
        act_ptr=act_ptr,
        iss_num=iss_num,
        iss_day=iss_day,
        iss_ptr=iss_ptr,
        leg_lic=leg_lic,
        leg_start=leg_start,
        leg_end=leg_end,
        leg_perm=leg_perm,
        leg_ptr=leg_ptr,
        last_event_day=last_event_day,
        tz=tz,
        ledger=led,
    )
    return prepared


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


#: Below this many events a replay runs on one thread (starting threads costs more).
PARALLEL_MIN_EVENTS = 50_000
#: Activations per bucket when ordering them by license (keeps each pass cache-sized).
BUCKET_EVENTS = 16_384


def _ranges(work: np.ndarray, n_events: int, per_thread: int = 4) -> list[tuple[int, int]]:
    """Ranges of licenses with about as many events each, ``per_thread`` per thread (``work``:
    cumulative events per license, CSR pointers or a sum of them).

    More ranges than threads, taken as threads come free, let a faster core do more: on
    the shared 2-core machines measured here one core ran 15–20 % slower than the other,
    and a scan in two halves waited on it (18.7 against 25.3 ms).
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
    """:func:`_kernel.issues_before` over ranges of licenses side by side (events in replay
    order, CSR pointers per license)."""
    out = np.empty(len(act_ts), np.int32)

    def part(lo: int, hi: int) -> None:
        K.issues_before(act_ptr[lo : hi + 1], act_ts, iss_ptr[lo : hi + 1], iss_ts, out)

    run_ranges(part, _ranges(act_ptr + iss_ptr, len(act_ts) + len(iss_ts)))
    return out


def _license_ranges(p: Prepared) -> list[tuple[int, int]]:
    work = p.act_ptr + p.iss_ptr + p.leg_ptr  # cumulative events per license
    return _ranges(work, int(work[-1]))


def scan_prepared(p: Prepared, knobs: dict[str, np.ndarray], as_of_day: int) -> dict[str, Any]:
    """Run the compiled scan over prepared arrays; activation results are in replay order."""
    n_a = len(p.act_day)
    out: dict[str, Any] = {
        # Days of periods fit int32.
        "reason": np.empty(n_a, np.int8), "pstart": np.empty(n_a, np.int32), "pend": np.empty(n_a, np.int32),
        # The scan's per-order state (see _kernel.FLAGS), by order number: each
        # thread fills the rows of its licenses' orders (its memory, touched first there).
        "ver": np.empty(n_a, np.int16), "ostate": np.empty((len(p.n_issue_day), K.N_STATE), np.int32),
    }

    def scan(lo: int, hi: int) -> int:
        K.init_order_state(out["ostate"], p.n_issue_day, p.o_ptr[lo], p.o_ptr[hi])
        return K.scan(
            as_of_day,
            p.leg_ptr[lo : hi + 1], p.leg_start, p.leg_end,
            p.iss_ptr[lo : hi + 1], p.iss_num, p.iss_day,
            p.act_ptr[lo : hi + 1], p.act_num, p.act_iss, p.act_day, p.act_static,
            p.n_sku, p.n_target,
            knobs["from_day"], knobs["term"], knobs["grace"], knobs["sub_basis"], knobs["ren_basis"], knobs["legacy_prior"],
            out["reason"], out["pstart"], out["pend"], out["ver"],
            out["ostate"],
            np.empty(max(int(np.diff(p.iss_ptr[lo : hi + 1]).max(initial=0)), 1), np.int64),  # codes waiting
        )

    ranges = _license_ranges(p)
    out["ranges"] = ranges
    out["n_periods"] = run_ranges(scan, ranges)
    return out


def replay(ledger: Ledger | Prepared, catalog: Catalog | None = None, as_of: Any = None,
           engine: str = "fast") -> Replay:
    """Replay ``ledger`` under ``catalog`` into periods, code fates and rejections.

    Parameters
    ----------
    ledger : Ledger or Prepared
        A :class:`Prepared` (from :func:`prepare`) spares repeated replays of one ledger its
        preparation; a ``Ledger`` is prepared for this replay alone.
    catalog : Catalog, optional
        Defaults to :meth:`Catalog.default`.
    as_of : date-like, optional
        The replay sees only what happened on or before this day; defaults to the
        ledger's last event day.
    engine : {"fast", "reference"}
        ``"fast"``: the compiled engine. ``"reference"``: the plain-Python specification
        :func:`subs_model.rules.reference_replay` (slow; the same tables).

    Examples
    --------
    >>> import subs_model as sm
    >>> rep = sm.replay(sm.read_ledger("data/sample"), sm.Catalog.default(), as_of="2026-06-30")  # doctest: +SKIP
    >>> rep.periods.columns.tolist()  # doctest: +SKIP
    ['license_id', 'start', 'end', 'source', 'code', 'order_id', 'activated_on', 'catalog_version']
    """
    if engine not in ("fast", "reference"):
        msg = f"replay(): unknown engine {engine!r}; choose 'fast' or 'reference'"
        raise ValueError(msg)
    cat = catalog if catalog is not None else Catalog.default()
    tz = cat.timezone
    if isinstance(ledger, Prepared):
        p = ledger
        if p.ledger is None or p.tz != tz:
            msg = (f"replay(): the prepared ledger is in time zone {p.tz!r} but the catalog in {tz!r}; "
                   f"prepare it with this catalog: sm.prepare(ledger, catalog)")
            raise ValueError(msg)
        ledger = p.ledger
    else:
        p = _prepare(ledger, tz) if engine == "fast" else None
    if engine == "reference":
        from .rules import reference_replay  # noqa: PLC0415 - rules imports this module

        # The specification makes the tables; the prepared arrays ride along because metrics read them.
        rep = reference_replay(ledger, cat, as_of)
        return replace(rep, prepared=p if p is not None else _prepare(ledger, tz))
    as_of_day = p.last_event_day if as_of is None else as_day(as_of, tz)
    knobs = cat.knob_arrays()
    r = scan_prepared(p, knobs, as_of_day)
    reason = r["reason"]

    # Code fates and periods by ranges of licenses, side by side on the cores (large
    # ledgers); the rejections here meanwhile.
    pool = worker_pool() if len(r["ranges"]) > 1 else None
    codes_done = _codes(ledger, p, as_of_day, r, pool)
    periods_done = _periods(ledger, p, cat, as_of_day, r, pool)
    rejections, rejection_order = _rejections(ledger, p, reason)
    (periods, keys), codes = periods_done(), codes_done()
    keys["rejection_order"] = rejection_order
    return Replay(
        periods=periods,
        keys=keys,
        codes=codes,
        rejections=rejections,
        as_of=pd.Timestamp(days_to_datetime(np.array([as_of_day]))[0]),
        catalog=cat,
        ledger=ledger,
        prepared=p,
    )


def target_numbers(o_rank: np.ndarray, o_target: np.ndarray) -> np.ndarray:
    """Each order number's upgrade target as an order number (-1: none), from the targets'
    rows by row (-1: none). Only upgrades have one, so this touches only them."""
    out = np.full(len(o_rank), -1, np.int32)
    has = np.flatnonzero(o_target >= 0)
    out[o_rank[has]] = o_rank[o_target[has]]
    return out


def _at(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``values[idx]``, with -1 where ``idx`` is -1."""
    if len(idx) == 0 or idx.min() >= 0:
        return values[idx]
    return np.where(idx >= 0, values[np.maximum(idx, 0)] if len(values) else -1, -1)


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame over the given columns without copying them into blocks."""
    return pd.DataFrame(columns, copy=False)


def _periods(led, p, cat, as_of_day, r, pool) -> Callable[[], tuple[pd.DataFrame, dict[str, np.ndarray]]]:
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
        return K.emit_periods(
            lo, k0, as_of_day, p.leg_ptr[lo : hi + 1], p.leg_start, p.leg_end, p.act_ptr[lo : hi + 1],
            r["reason"], r["pstart"], r["pend"], r["ver"], p.act_num, p.act_day, p.act_perm, p.o_perm, p.n_sku,
            a_code, n_oid, lic, start, end, src, version, activated, act_row, order_row, code, oid,
        )

    ends = [_submit(pool, emit, lo, hi) for lo, hi in r["ranges"]]

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


def _from_codes(codes: np.ndarray, like: pd.Series) -> pd.Series:
    """A categorical column with ``like``'s dtype from codes known to be valid (no range check)."""
    return pd.Series(pd.Categorical.from_codes(codes, dtype=like.dtype, validate=False), copy=False)


def _license_column(p: Prepared, lic: np.ndarray) -> pd.Series:
    if p.license_dtype is not None:
        return pd.Series(pd.Categorical.from_codes(lic, dtype=p.license_dtype, validate=False), copy=False)
    return _take_str(p.license_ids, lic)


def _codes(led, p, as_of_day, r, pool) -> Callable[[], pd.DataFrame]:
    """Start the code fates, a range of order rows a task on ``pool`` (as many ranges as the
    scan had); returns the function that waits for them and makes the table."""
    n = len(p.o_sku)
    status, act_ns, dl_ns = np.empty(n, np.int8), np.empty(n, np.int64), np.empty(n, np.int64)
    cuts = [n * k // len(r["ranges"]) for k in range(len(r["ranges"]) + 1)]
    parts = [
        _submit(pool, K.code_fates, lo, hi, as_of_day, p.o_rank, p.o_sku, r["ostate"], status, act_ns, dl_ns)
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


def _rejections(led, p, reason) -> tuple[pd.DataFrame, np.ndarray]:
    """The rejections table and, per row, the order row of the rejected code (-1: unknown)."""
    none = np.empty(0, np.int32)
    rows, lic, code, day, why, order = K.emit_rejections(
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
