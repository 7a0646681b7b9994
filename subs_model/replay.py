"""Replay a ledger into coverage periods, code fates and rejections (rules R1–R14).

The work is split in two, both over whole columns:

1. *Preparation* (catalog-independent, cached on the :class:`~subs_model.ledger.Ledger`
   per time zone): factorise license ids and codes once, join activations to their
   orders and upgrades to their renewal acts, compute the static rejections
   (``unknown_code``, ``wrong_license``, ``activated_before_issue``) and sort events
   into the total replay order ``(license, instant, kind, code)`` — legacy periods first,
   a code issue before an activation at the same instant.
2. *Scan* (:mod:`subs_model._kernel`, compiled): per license, the state that depends on
   earlier accepted activations — the current end, prior coverage (R5) and the renewal
   codes waiting on the current expiry (R7, R14).

Replaying the same ledger under another catalog or ``as_of`` reuses step 1.
"""

from __future__ import annotations

import enum
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _kernel as K
from .catalog import EDITIONS, SKUS, Catalog
from .days import NO_DAY, NO_TIME, as_day, days_to_datetime, parse_dates, parse_instants, to_local_days
from .errors import LedgerError
from .ledger import Ledger

__all__ = ["CodeStatus", "Reason", "Replay", "Source", "replay"]


class Reason(enum.StrEnum):
    """Why an activation was rejected, in the order the checks run (R11, R4–R8)."""

    UNKNOWN_CODE = "unknown_code"
    WRONG_LICENSE = "wrong_license"
    ACTIVATED_BEFORE_ISSUE = "activated_before_issue"
    CODE_REUSED = "code_reused"
    CODE_UPGRADED = "code_upgraded"
    NO_PRIOR_SUBSCRIPTION = "no_prior_subscription"
    RENEWAL_AFTER_DEADLINE = "renewal_after_deadline"
    UPGRADE_INVALID_TARGET = "upgrade_invalid_target"


class CodeStatus(enum.StrEnum):
    """Fate of an order's code as of the replay's ``as_of`` day (R14)."""

    PENDING = "pending"
    ISSUED = "issued"
    ACTIVATED = "activated"
    LAPSED = "lapsed"
    UPGRADED = "upgraded"


class Source(enum.StrEnum):
    """What created a period."""

    SUBSCRIPTION = "subscription"
    RENEWAL = "renewal"
    UPGRADE = "upgrade"
    LEGACY = "legacy"


REASONS: tuple[Reason, ...] = tuple(Reason)  # engine code k+1 ↔ REASONS[k]


def _ids(series: pd.Series) -> pd.Series:
    """Ids as pandas strings (NA kept); numbers read from Parquet become their text."""
    if isinstance(series.dtype, pd.StringDtype):
        return series
    return series.astype("str")


def _arrow(series: pd.Series) -> pa.Array:
    """The Arrow array behind a string column (zero-copy for Arrow-backed strings)."""
    arr = pa.array(_ids(series).array)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _take_str(arr: pa.Array, idx: np.ndarray) -> pd.Series:
    """``arr[idx]`` as a pandas string column; ``idx < 0`` gives NA."""
    neg = idx < 0
    taken = arr.take(pa.array(idx, mask=neg if neg.any() else None))
    return pd.Series(pd.array(taken, dtype="str"))


def _enum_codes(series: pd.Series, names: list[str]) -> np.ndarray:
    """Position of each value in ``names`` (-1 when not one of them); low-cardinality fast path."""
    codes, uniques = pd.factorize(_ids(series))
    lut = np.array([names.index(u) if u in names else -1 for u in uniques] + [-1], dtype=np.int64)
    return lut[codes]


def _categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    """A string-valued categorical column from engine codes (-1 = missing)."""
    return pd.Categorical.from_codes(codes, categories=names)


def _factorize_sorted(values: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """Codes and uniques with uniques in sorted order (so results do not depend on row order)."""
    codes, uniques = pd.factorize(values)
    u = pa.array(pd.Series(uniques).array) if len(uniques) else pa.array([], pa.large_string())
    if isinstance(u, pa.ChunkedArray):
        u = u.combine_chunks()
    order = pc.sort_indices(u).to_numpy()
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[order] = np.arange(len(uniques))
    out = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
    return out, u.take(pa.array(order))


def _event_order(lic: np.ndarray, ts: np.ndarray, nlic: int, tiebreak: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
    """Permutation into (license, instant[, tiebreak]) order and CSR pointers per license."""
    perm, ptr = K.group_by_license(lic, nlic)
    K.sort_within_groups(perm, ptr, ts)
    if tiebreak is not None and len(perm) > 1:
        ls, tss = lic[perm], ts[perm]
        tie = (ls[1:] == ls[:-1]) & (tss[1:] == tss[:-1])
        if tie.any():
            rank, _ = _factorize_sorted(tiebreak.iloc[perm].reset_index(drop=True).fillna(""))
            perm = perm[np.lexsort((rank, tss, ls))]
    return perm, ptr


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Catalog-independent arrays of one ledger (in one time zone)."""

    license_ids: pa.Array  # sorted unique license ids
    license_edition: np.ndarray  # edition position per license, -1 unknown
    o_lic: np.ndarray
    o_sku: np.ndarray
    o_issue_ts: np.ndarray
    o_issue_day: np.ndarray
    o_target: np.ndarray
    o_edition: np.ndarray
    o_invoice_day: np.ndarray | None
    act_lic: np.ndarray
    act_order: np.ndarray
    act_ts: np.ndarray
    act_day: np.ndarray
    act_static: np.ndarray
    act_perm: np.ndarray
    act_ptr: np.ndarray
    iss_perm: np.ndarray  # order indices of renewal issue events, in replay order
    iss_ptr: np.ndarray
    leg_lic: np.ndarray
    leg_start: np.ndarray
    leg_end: np.ndarray
    leg_perm: np.ndarray
    leg_ptr: np.ndarray
    last_event_day: int


def _prepare(led: Ledger, tz: str) -> _Prepared:
    key = ("prepared", tz)
    cached = led._cache.get(key)
    if cached is not None:
        return cached
    src = led.source
    lic_df, ord_df, act_df = led.licenses, led.orders, led.activations
    leg_df = led.legacy_periods if led.legacy_periods is not None else None
    n_l, n_o, n_a = len(lic_df), len(ord_df), len(act_df)
    n_g = 0 if leg_df is None else len(leg_df)

    lic_ids = [_ids(lic_df["license_id"]), _ids(ord_df["license_id"]), _ids(act_df["license_id"])]
    if leg_df is not None:
        lic_ids.append(_ids(leg_df["license_id"]))
    o_code = _ids(ord_df["code"])
    a_code = _ids(act_df["code"])
    o_issue_ts = parse_instants(ord_df["code_issued_at"], tz, where=f"{src}: orders", column="code_issued_at")
    issued = o_issue_ts != NO_TIME
    issued_idx = np.flatnonzero(issued)
    # The three string hash passes (license ids, codes, order ids) dominate; Arrow releases
    # the GIL, so they run side by side on two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        f_lic = pool.submit(_factorize_sorted, pd.concat(lic_ids, ignore_index=True))
        f_code = pool.submit(pd.factorize, pd.concat([o_code.iloc[issued_idx], a_code], ignore_index=True))
        f_oid = pool.submit(lambda: ord_df["order_id"].is_unique)
        all_lic, uniques = f_lic.result()
        codes, _ = f_code.result()
        orders_unique = f_oid.result()
    l_lic = all_lic[:n_l]
    o_lic = all_lic[n_l : n_l + n_o]
    act_lic = all_lic[n_l + n_o : n_l + n_o + n_a]
    leg_lic = all_lic[n_l + n_o + n_a :]
    for name, arr, offset in (("licenses", l_lic, 0), ("orders", o_lic, 0), ("activations", act_lic, 0), ("legacy_periods", leg_lic, 0)):
        if (arr < 0).any():
            row = int(np.flatnonzero(arr < 0)[0]) + 1 + offset
            msg = f"{src}: {name} row {row}, column 'license_id' is empty; every row needs a license_id"
            raise LedgerError(msg)
    nlic = len(uniques)
    counts = np.bincount(l_lic, minlength=nlic)
    if (counts > 1).any():
        dup = uniques[int(np.flatnonzero(counts > 1)[0])].as_py()
        msg = f"{src}: licenses has license_id {dup!r} more than once; license ids must be unique"
        raise LedgerError(msg)
    unknown = counts[o_lic] == 0
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        msg = (
            f"{src}: orders row {row + 1}, column 'license_id': {ord_df['license_id'].iloc[row]!r} "
            "is not in licenses; add the license or drop the order"
        )
        raise LedgerError(msg)
    edition = np.full(nlic, -1, dtype=np.int64)
    ed_codes = _enum_codes(lic_df["edition"], [e.value for e in EDITIONS])
    if (ed_codes < 0).any():
        row = int(np.flatnonzero(ed_codes < 0)[0])
        msg = f"{src}: licenses row {row + 1}, column 'edition': {lic_df['edition'].iloc[row]!r} is not full or basic"
        raise LedgerError(msg)
    edition[l_lic] = ed_codes

    # -- orders --------------------------------------------------------------------------------
    if not orders_unique:
        dup = ord_df["order_id"][ord_df["order_id"].duplicated()].iloc[0]
        msg = f"{src}: orders has order_id {dup!r} more than once; order ids must be unique"
        raise LedgerError(msg)
    o_sku = _enum_codes(ord_df["sku"], [s.value for s in SKUS])
    if (o_sku < 0).any():
        row = int(np.flatnonzero(o_sku < 0)[0])
        msg = (
            f"{src}: orders row {row + 1}, column 'sku': {ord_df['sku'].iloc[row]!r} is not one of "
            f"{[s.value for s in SKUS]}"
        )
        raise LedgerError(msg)
    o_issue_day = to_local_days(o_issue_ts, tz)
    no_code = issued & o_code.isna().to_numpy()
    if no_code.any():
        row = int(np.flatnonzero(no_code)[0])
        msg = f"{src}: orders row {row + 1}, column 'code' is empty although code_issued_at is set; add the code"
        raise LedgerError(msg)

    # -- activations joined to orders by code ------------------------------------------------------
    oc, ac = codes[: len(issued_idx)], codes[len(issued_idx) :]
    n_codes = int(codes.max()) + 1 if len(codes) else 0
    per_code = np.bincount(oc, minlength=n_codes) if len(oc) else np.zeros(n_codes, np.int64)
    if (per_code > 1).any():
        dup_code = int(np.flatnonzero(per_code > 1)[0])
        rows = issued_idx[oc == dup_code] + 1
        msg = f"{src}: orders rows {rows.tolist()} carry the same code; a code belongs to one order"
        raise LedgerError(msg)
    code_to_order = np.full(n_codes, -1, dtype=np.int64)
    code_to_order[oc] = issued_idx
    act_order = np.where(ac >= 0, code_to_order[np.maximum(ac, 0)], -1)
    act_ts = parse_instants(act_df["activated_at"], tz, where=f"{src}: activations", column="activated_at")
    if (act_ts == NO_TIME).any():
        row = int(np.flatnonzero(act_ts == NO_TIME)[0])
        msg = f"{src}: activations row {row + 1}, column 'activated_at' is empty; every activation needs a timestamp"
        raise LedgerError(msg)
    act_day = to_local_days(act_ts, tz)
    known = act_order >= 0
    safe = np.maximum(act_order, 0)
    act_static = np.zeros(n_a, dtype=np.int64)
    act_static[known & (o_issue_ts[safe] > act_ts)] = K.ACTIVATED_BEFORE_ISSUE
    act_static[known & (o_lic[safe] != act_lic)] = K.WRONG_LICENSE
    act_static[~known] = K.UNKNOWN_CODE

    # -- upgrade targets (R8): the renewal order whose act the upgrade names, same license --------
    o_target = np.full(n_o, -1, dtype=np.int64)
    upg = np.flatnonzero(o_sku == K.UPG)
    if len(upg):
        cand = np.flatnonzero(np.isin(o_lic, np.unique(o_lic[upg])) & (o_sku == K.REN))
        acts = _ids(ord_df["act_number"]).iloc[cand]
        has_act = acts.notna().to_numpy()
        cand, acts = cand[has_act], acts[has_act]
        idx = pd.Index(acts.to_numpy())
        if not idx.is_unique:
            dup = idx[idx.duplicated()][0]
            msg = f"{src}: orders carry act_number {dup!r} more than once; act numbers must be unique"
            raise LedgerError(msg)
        found = idx.get_indexer(_ids(ord_df["upgrade_of_act"]).iloc[upg].to_numpy())
        tgt = np.full(len(upg), -1, dtype=np.int64)
        tgt[found >= 0] = cand[found[found >= 0]]
        ok = (tgt >= 0) & (o_lic[np.maximum(tgt, 0)] == o_lic[upg])
        o_target[upg] = np.where(ok, tgt, -1)

    # -- invoice day for prices (R10) ---------------------------------------------------------------
    o_invoice_day = None
    if "invoiced_at" in ord_df.columns:
        o_invoice_day = to_local_days(
            parse_instants(ord_df["invoiced_at"], tz, where=f"{src}: orders", column="invoiced_at"), tz
        )

    # -- event order ----------------------------------------------------------------------------------
    act_perm, act_ptr = _event_order(act_lic, act_ts, nlic, a_code)
    ren_issued = np.flatnonzero(issued & (o_sku == K.REN))
    perm, iss_ptr = _event_order(o_lic[ren_issued], o_issue_ts[ren_issued], nlic, None)
    iss_perm = ren_issued[perm]
    if leg_df is not None and n_g:
        leg_start = parse_dates(leg_df["start"], where=f"{src}: legacy_periods", column="start")
        until = parse_dates(leg_df["valid_until"], where=f"{src}: legacy_periods", column="valid_until")
        for col, arr in (("start", leg_start), ("valid_until", until)):
            if (arr == NO_DAY).any():
                row = int(np.flatnonzero(arr == NO_DAY)[0]) + 1
                msg = f"{src}: legacy_periods row {row}, column {col!r} is empty; give a date YYYY-MM-DD"
                raise LedgerError(msg)
        if (until < leg_start).any():
            row = int(np.flatnonzero(until < leg_start)[0]) + 1
            msg = f"{src}: legacy_periods row {row}: valid_until is before start; fix the dates"
            raise LedgerError(msg)
        leg_end = until + 1
        leg_perm, leg_ptr = _event_order(leg_lic, leg_start, nlic, None)
    else:
        leg_start = leg_end = np.empty(0, np.int64)
        leg_perm, leg_ptr = np.empty(0, np.int64), np.zeros(nlic + 1, np.int64)

    day_cols = [act_day, o_issue_day[issued]]
    for col in ("requested_at", "invoiced_at", "paid_at", "ticket_at"):
        if col in ord_df.columns and col != "invoiced_at":
            day_cols.append(to_local_days(parse_instants(ord_df[col], tz, where=f"{src}: orders", column=col), tz))
    if o_invoice_day is not None:
        day_cols.append(o_invoice_day)
    last = max((int(d.max()) for d in [*day_cols, leg_start] if len(d)), default=NO_DAY)  # NO_DAY is the least int64
    last_event_day = last if last != NO_DAY else 0

    prepared = _Prepared(
        license_ids=uniques,
        license_edition=edition,
        o_lic=o_lic,
        o_sku=o_sku,
        o_issue_ts=o_issue_ts,
        o_issue_day=o_issue_day,
        o_target=o_target,
        o_edition=edition[o_lic],
        o_invoice_day=o_invoice_day,
        act_lic=act_lic,
        act_order=act_order,
        act_ts=act_ts,
        act_day=act_day,
        act_static=act_static,
        act_perm=act_perm,
        act_ptr=act_ptr,
        iss_perm=iss_perm,
        iss_ptr=iss_ptr,
        leg_lic=leg_lic,
        leg_start=leg_start,
        leg_end=leg_end,
        leg_perm=leg_perm,
        leg_ptr=leg_ptr,
        last_event_day=last_event_day,
    )
    led._cache[key] = prepared
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
    #: Integer keys for metrics, aligned with the rows of ``periods`` (``license``: rank of
    #: the license id among the ledger's sorted ids; ``order``: row in the orders table, -1
    #: for legacy periods) and of ``rejections`` (``rejection_order``: the order row of the
    #: rejected code, -1 for an unknown code).
    keys: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

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
            "periods_by_source": self.periods["source"].value_counts().reindex([s.value for s in Source], fill_value=0),
            "codes_by_status": self.codes["status"].value_counts().reindex([s.value for s in CodeStatus], fill_value=0),
            "rejections_by_reason": self.rejections["reason"].value_counts().reindex([r.value for r in Reason], fill_value=0),
        }


def scan_prepared(p: _Prepared, knobs: dict[str, np.ndarray], as_of_day: int) -> dict[str, np.ndarray]:
    """Run the compiled scan over prepared arrays; activation results are in replay order (``ap``)."""
    n_a, n_o = len(p.act_day), len(p.o_sku)
    ap = p.act_perm
    a_order, a_ts, a_day, a_static = p.act_order[ap], p.act_ts[ap], p.act_day[ap], p.act_static[ap]
    ip = p.iss_perm
    lp = p.leg_perm
    out = {
        "ap": ap, "a_order": a_order, "a_day": a_day,
        "reason": np.zeros(n_a, np.int64), "pstart": np.zeros(n_a, np.int64), "pend": np.zeros(n_a, np.int64),
        "ver": np.zeros(n_a, np.int64), "accepted": np.zeros(n_o, np.bool_), "actday": np.full(n_o, NO_DAY, np.int64),
        "upgraded": np.zeros(n_o, np.bool_), "lapsed": np.zeros(n_o, np.bool_), "deadline": np.full(n_o, NO_DAY, np.int64),
    }
    K.scan(
        as_of_day,
        p.leg_ptr, p.leg_start[lp], p.leg_end[lp],
        p.iss_ptr, ip, p.o_issue_ts[ip], p.o_issue_day[ip],
        p.act_ptr, a_order, a_ts, a_day, a_static,
        p.o_sku, p.o_target,
        knobs["from_day"], knobs["term"], knobs["grace"], knobs["sub_basis"], knobs["ren_basis"], knobs["legacy_prior"],
        out["reason"], out["pstart"], out["pend"], out["ver"],
        out["accepted"], out["actday"], out["upgraded"], out["lapsed"], out["deadline"],
        np.empty(max(len(ip), 1), np.int64),
    )
    return out


def replay(ledger: Ledger, catalog: Catalog | None = None, as_of: Any = None) -> Replay:
    """Replay ``ledger`` under ``catalog`` into periods, code fates and rejections.

    Parameters
    ----------
    ledger : Ledger
    catalog : Catalog, optional
        Defaults to :meth:`Catalog.default`.
    as_of : date-like, optional
        The replay sees only what happened on or before this day; defaults to the
        ledger's last event day.

    Examples
    --------
    >>> import subs_model as sm
    >>> rep = sm.replay(sm.read_ledger("data/sample"), sm.Catalog.default(), as_of="2026-06-30")  # doctest: +SKIP
    >>> rep.periods.columns.tolist()  # doctest: +SKIP
    ['license_id', 'start', 'end', 'source', 'code', 'order_id', 'activated_on', 'catalog_version']
    """
    cat = catalog if catalog is not None else Catalog.default()
    tz = cat.timezone
    p = _prepare(ledger, tz)
    as_of_day = p.last_event_day if as_of is None else as_day(as_of, tz)
    knobs = cat.knob_arrays()
    r = scan_prepared(p, knobs, as_of_day)
    ap, a_order, a_day = r["ap"], r["a_order"], r["a_day"]
    act_reason, act_pstart, act_pend, act_ver = r["reason"], r["pstart"], r["pend"], r["ver"]
    o_accepted, o_actday, o_upgraded, o_lapsed, o_deadline = r["accepted"], r["actday"], r["upgraded"], r["lapsed"], r["deadline"]
    periods, keys = _periods(ledger, p, cat, as_of_day, ap, act_reason, act_pstart, act_pend, act_ver, a_order, a_day)
    keys["rejection_order"] = a_order[act_reason > 0]
    return Replay(
        periods=periods,
        keys=keys,
        codes=_codes(ledger, p, as_of_day, o_accepted, o_actday, o_upgraded, o_lapsed, o_deadline),
        rejections=_rejections(ledger, p, ap, act_reason, a_day),
        as_of=pd.Timestamp(days_to_datetime(np.array([as_of_day]))[0]),
        catalog=cat,
        ledger=ledger,
    )


def _periods(led, p, cat, as_of_day, ap, reason, pstart, pend, ver, a_order, a_day) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    acc = np.flatnonzero((reason == K.ACCEPTED) & (pend > pstart))
    rows = ap[acc]
    orders = a_order[acc]
    leg_keep = p.leg_perm[p.leg_start[p.leg_perm] <= as_of_day]
    n_leg, n_acc = len(leg_keep), len(acc)
    lic = np.concatenate([p.leg_lic[leg_keep], p.act_lic[rows]])
    start = np.concatenate([p.leg_start[leg_keep], pstart[acc]])
    end = np.concatenate([p.leg_end[leg_keep], pend[acc]])
    src = np.concatenate([np.full(n_leg, 3, np.int64), p.o_sku[orders]])
    version = np.concatenate([np.full(n_leg, -1, np.int64), ver[acc]])
    activated = np.concatenate([np.full(n_leg, NO_DAY, np.int64), a_day[acc]])
    act_row = np.concatenate([np.full(n_leg, -1, np.int64), rows])
    order_row = np.concatenate([np.full(n_leg, -1, np.int64), orders])
    # The scan emits each license's periods in start order and licenses in sorted-id order,
    # so without legacy periods the rows are usually in order already (no copy then).
    order = None
    if n_leg:
        order = np.lexsort((np.concatenate([np.zeros(n_leg, np.int64), np.ones(n_acc, np.int64)]), start, lic))
    elif not _nondecreasing(lic):
        order = np.argsort(lic, kind="stable")
    if order is not None:
        lic, start, end, src, version, activated, act_row, order_row = (
            x[order] for x in (lic, start, end, src, version, activated, act_row, order_row))
    keys = {"license": lic, "order": order_row}
    return pd.DataFrame(
        {
            "license_id": _take_str(p.license_ids, lic),
            "start": days_to_datetime(start),
            "end": days_to_datetime(end),
            "source": _categorical(src, [s.value for s in Source]),
            "code": _take_str(_arrow(led.activations["code"]), act_row),
            "order_id": _take_str(_arrow(led.orders["order_id"]), order_row),
            "activated_on": days_to_datetime(activated),
            "catalog_version": _categorical(version, [v.label for v in cat.versions]),
        }
    ), keys


def _nondecreasing(x: np.ndarray) -> bool:
    return bool(len(x) < 2 or (x[1:] >= x[:-1]).all())


def _codes(led, p, as_of_day, accepted, actday, upgraded, lapsed, deadline) -> pd.DataFrame:
    issued = (p.o_issue_ts != NO_TIME) & (p.o_issue_day <= as_of_day)
    status = np.full(len(p.o_sku), 1, np.int64)  # issued
    status[lapsed] = 3
    status[accepted] = 2
    status[~issued] = 0
    status[upgraded] = 4
    ren = p.o_sku == K.REN
    dl = np.where(ren & issued, deadline, NO_DAY)
    o = led.orders
    return pd.DataFrame(
        {
            "code": _ids(o["code"]).reset_index(drop=True),
            "order_id": _ids(o["order_id"]).reset_index(drop=True),
            "license_id": _ids(o["license_id"]).reset_index(drop=True),
            "sku": _categorical(p.o_sku, [s.value for s in SKUS]),
            "status": _categorical(status, [s.value for s in CodeStatus]),
            "activated_on": days_to_datetime(actday),
            "deadline": days_to_datetime(dl),
        }
    )


def _rejections(led, p, ap, reason, a_day) -> pd.DataFrame:
    rej = np.flatnonzero(reason > 0)
    rows = ap[rej]
    return pd.DataFrame(
        {
            "code": _take_str(_arrow(led.activations["code"]), rows),
            "license_id": _take_str(_arrow(led.activations["license_id"]), rows),
            "day": days_to_datetime(a_day[rej]),
            "reason": _categorical(reason[rej] - 1, [r.value for r in REASONS]),
        }
    )
