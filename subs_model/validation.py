"""Validating the raw ledger tables: each row's checks, duplicates, and the cross-table checks.

Each table is checked on its own (parsed columns, a pandera schema whose checks are named
by their :class:`~subs_model.quarantine.QuarantineReason`, duplicate keys); then the tables
are checked against each other (codes and acts unique, licenses known, upgrade targets,
references to quarantined rows). Failing rows go into a ``Quarantine``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa_

from .days import NO_DAY, NO_TIME
from .ledger import COLUMNS, DATE_COLUMNS, TIMESTAMP_COLUMNS
from .parsing import FALSE, TRUE, amount_reasons, day_values, is_empty, instant_values, isin_text, raw_text
from .quarantine import R, Quarantine
from .workers import workers


STAGES = ("requested_at", "invoiced_at", "paid_at", "ticket_at", "code_issued_at")


STAGE_CHECKS = (R.STAGE_MISSING, R.STAGE_OUT_OF_ORDER)


def _check(fn, reason: R) -> pa_.Check:
    return pa_.Check(fn, name=reason.value)


def _schema(table: str, parsed: dict[str, Any]) -> pa_.DataFrameSchema:
    """The pandera schema of a raw (all-text) table; every check is named by its reason.

    A check whose failing rows were found while parsing (bad timestamps, dates, amounts, the
    order contract) is a check of the column it blames, so pandera reports it per column.
    The stage-sequence checks (R9), whose column differs from row to row, are checks of
    ``order_id``, their rows blamed on their columns afterwards.
    """
    nonempty = lambda col: _check(lambda s: ~is_empty(s), R.EMPTY_REQUIRED)  # noqa: E731
    cols: dict[str, pa_.Column] = {}

    def failing(mask: np.ndarray, reason: R) -> pa_.Check:
        """A column check from the mask of failing rows (nulls included: they may be the fault)."""
        return pa_.Check(lambda s, m=np.asarray(mask, bool): pd.Series(~m[s.index.to_numpy()], index=s.index),
                         name=reason.value, ignore_na=False)

    def column(name: str, *more: pa_.Check, nullable: bool = True) -> None:
        if name in cols:
            cols[name] = pa_.Column(checks=[*cols[name].checks, *more], nullable=cols[name].nullable)
        else:
            cols[name] = pa_.Column(checks=list(more), nullable=nullable)

    if table == "licenses":
        cols["license_id"] = pa_.Column(checks=[nonempty("license_id")], nullable=False)
        cols["edition"] = pa_.Column(checks=[nonempty("edition"), _check(lambda s: is_empty(s) | raw_text(s).isin(["full", "basic"]), R.UNKNOWN_EDITION)], nullable=False)
    elif table == "orders":
        for c in ("order_id", "license_id"):
            cols[c] = pa_.Column(checks=[nonempty(c)], nullable=False)
        cols["sku"] = pa_.Column(checks=[nonempty("sku"), _check(lambda s: is_empty(s) | raw_text(s).isin(["subscription", "renewal", "upgrade"]), R.UNKNOWN_SKU)], nullable=False)
        for c in STAGES:
            column(c, failing(parsed[c][1], R.BAD_TIMESTAMP))
        amount = parsed["_amount"][1].to_numpy()
        column("amount_rub", *(failing(amount == r.value, r) for r in (R.NON_NUMERIC_AMOUNT, R.NEGATIVE_AMOUNT, R.TOO_MANY_DECIMALS, R.AMOUNT_OUT_OF_RANGE)))
        rows = parsed["_rows"]
        for c, r in (("amount_rub", R.AMOUNT_MISSING), ("act_number", R.ACT_MISSING), ("code", R.CODE_MISSING),
                     ("ticket_at", R.TICKET_ON_NON_UPGRADE), ("upgrade_of_act", R.UPGRADE_WITHOUT_TARGET)):
            column(c, failing(rows[r], r))
        # The stage-sequence checks blame a column that differs from row to row
        # (:func:`_stage_columns`); they hang on order_id, so pandera reports their rows as
        # a column's (reshaping a whole-table check's failures took it 0.13 s a check).
        column("order_id", *(failing(rows[r], r) for r in STAGE_CHECKS))
    elif table == "activations":
        cols["code"] = pa_.Column(checks=[nonempty("code")], nullable=False)
        cols["license_id"] = pa_.Column(checks=[nonempty("license_id")], nullable=False)
        cols["activated_at"] = pa_.Column(checks=[_check(lambda s: ~is_empty(s), R.ACTIVATION_WITHOUT_TIMESTAMP)], nullable=False)
        column("activated_at", failing(parsed["activated_at"][1], R.BAD_TIMESTAMP))
    elif table == "legacy_periods":
        for c in ("license_id", "start", "valid_until"):
            cols[c] = pa_.Column(checks=[nonempty(c)], nullable=False)
        start, until = parsed["start"][0], parsed["valid_until"][0]
        column("start", failing(parsed["start"][1], R.BAD_DATE))
        column("valid_until", failing(parsed["valid_until"][1], R.BAD_DATE),
               failing((until < start) & (start != NO_DAY) & (until != NO_DAY), R.LEGACY_END_BEFORE_START))
    elif table == "features":
        for c in ("feature_id", "released_on", "requires_subscription"):
            cols[c] = pa_.Column(checks=[nonempty(c)], nullable=False)
        column("released_on", failing(parsed["released_on"][1], R.BAD_DATE))
        cols["requires_subscription"] = pa_.Column(
            checks=[nonempty("requires_subscription"), _check(lambda s: is_empty(s) | raw_text(s).str.lower().isin(TRUE | FALSE), R.BAD_BOOL)], nullable=False)
    return pa_.DataFrameSchema(cols, coerce=False, strict=False)


def _order_row_checks(df: pd.DataFrame, ts: dict[str, tuple[np.ndarray, np.ndarray]], amount: np.ndarray) -> dict[R, np.ndarray]:
    """R9 and the order contract, per row (True = the row breaks it)."""
    upgrade = raw_text(df["sku"]).eq("upgrade").fillna(False).to_numpy(bool)
    t = {c: ts[c][0] for c in STAGES}
    have = {c: t[c] != NO_TIME for c in STAGES}
    chain = [c for c in STAGES]
    missing = np.zeros(len(df), bool)
    out_of_order = np.zeros(len(df), bool)
    # The stage sequence of each order: upgrades have the ticket between paid and code.
    for i, c in enumerate(chain):
        if c == "ticket_at":
            continue
        for later in chain[i + 1 :]:
            if later == "ticket_at":
                continue
            missing |= have[later] & ~have[c]
            out_of_order |= have[later] & have[c] & (t[later] < t[c])
    tk = have["ticket_at"]
    missing |= upgrade & have["code_issued_at"] & ~tk
    missing |= upgrade & tk & ~have["paid_at"]
    out_of_order |= upgrade & tk & have["paid_at"] & (t["ticket_at"] < t["paid_at"])
    out_of_order |= upgrade & tk & have["code_issued_at"] & (t["code_issued_at"] < t["ticket_at"])
    return {
        R.AMOUNT_MISSING: have["paid_at"] & (amount < 0) & is_empty(df["amount_rub"]).to_numpy(),
        R.STAGE_MISSING: missing,
        R.STAGE_OUT_OF_ORDER: out_of_order,
        R.ACT_MISSING: have["paid_at"] & is_empty(df["act_number"]).to_numpy(),
        R.CODE_MISSING: have["code_issued_at"] & is_empty(df["code"]).to_numpy(),
        R.TICKET_ON_NON_UPGRADE: tk & ~upgrade,
        R.UPGRADE_WITHOUT_TARGET: upgrade & is_empty(df["upgrade_of_act"]).to_numpy(),
    }


def _stage_columns(reason: R, rows: np.ndarray, p: dict[str, Any]) -> dict[str, np.ndarray]:
    """The column to blame for each row breaking the stage sequence (R9): the first stage
    that is filled after a gap, or dated before the stage before it."""
    out, left = {}, rows
    have = {c: p[c][0][left] != NO_TIME for c in STAGES}
    prev_t = np.full(len(left), np.iinfo(np.int64).min)
    gap = np.zeros(len(left), bool)
    blamed = np.zeros(len(left), bool)
    for c in STAGES:
        t = p[c][0][left]
        h = have[c]
        bad = ~blamed & h & (gap if reason == R.STAGE_MISSING else (t < prev_t))
        if bad.any():
            out[c] = left[bad]
            blamed |= bad
        gap |= ~h & (c != "ticket_at")
        prev_t = np.where(h, t, prev_t)
    if (~blamed).any():
        out[""] = left[~blamed]
    return out


#: Orders tables longer than this run their cross-table hash passes one after the other.
SERIAL_CROSS_CHECK_ROWS = 2_000_000


def _value_codes(s: pd.Series) -> np.ndarray:
    """Each row's value as a number (equal values, equal numbers; -1 missing), by Arrow's hash encoding."""
    import pyarrow as pa

    arr = pa.array(raw_text(s).array)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return np.asarray(arr.dictionary_encode().indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _repeats(s: pd.Series) -> np.ndarray:
    """Rows whose value occurs more than once (nulls count as one value)."""
    codes = _value_codes(s)
    return np.bincount(codes + 1)[codes + 1] > 1


def _identical_rows(df: pd.DataFrame, key: str) -> np.ndarray:
    """Rows that repeat an earlier row exactly (to merge). Only rows whose ``key`` repeats
    can, so the whole-row comparison runs on those alone."""
    cand = np.flatnonzero(_repeats(df[key]))
    if not len(cand):
        return np.empty(0, np.int64)
    return cand[df.iloc[cand].duplicated(keep="first").to_numpy()]


def duplicate_rows(df: pd.DataFrame, key: str, reason: R, q: Quarantine, table: str) -> np.ndarray:
    """Rows dropped as identical duplicates; every row of a conflicting key goes to quarantine."""
    dup_any = _repeats(df[key]) & ~is_empty(df[key]).to_numpy()
    if not dup_any.any():
        return np.empty(0, np.int64)
    idx = np.flatnonzero(dup_any)
    sub = df.iloc[idx]
    uniq = sub.drop_duplicates()
    versions = uniq.groupby(raw_text(uniq[key]).to_numpy()).size()
    conflict = (versions.reindex(raw_text(sub[key]).to_numpy()).to_numpy() > 1)
    q.add(table, idx[conflict], reason, key)
    identical = sub.duplicated(keep="first").to_numpy() & ~conflict
    return idx[identical]


def check_tables(raw: dict[str, pd.DataFrame], q: Quarantine, tz: str, pool, keys: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Each table's own checks (``keys=False``: the per-row ones only, not its key's duplicates):
    the parsed columns and the rows merged as identical duplicates of each table."""
    # Tables are checked side by side (Arrow and numpy release the GIL); the largest first.
    names = sorted(raw, key=lambda n: -raw[n].size)
    # Column parsing first, a task per column, so both workers stay busy; then the checks.
    jobs = [(n, c) for n in names for c in COLUMNS[n] if c in TIMESTAMP_COLUMNS or c in DATE_COLUMNS]
    jobs += [(n, "_amount") for n in names if n == "orders"]
    parsed_cols = dict(zip(jobs, pool.map(lambda job: _parse_column(raw[job[0]], job[1], tz), jobs), strict=True))
    pre = {n: {c: v for (t, c), v in parsed_cols.items() if t == n} for n in names}
    done = dict(zip(names, pool.map(lambda n: _validate_table(n, raw[n], pre[n], q, keys), names), strict=True))
    parsed = {n: done[n][0] for n in raw}
    merged = {n: done[n][1] for n in raw if done[n][1] is not None}
    return parsed, merged


def _parse_column(df: pd.DataFrame, column: str, tz: str) -> Any:
    """A timestamp, date or amount column parsed, with the mask of values that do not parse."""
    if column == "_amount":
        return amount_reasons(df["amount_rub"])
    return instant_values(df[column], tz) if column in TIMESTAMP_COLUMNS else day_values(df[column])


def _validate_table(name: str, df: pd.DataFrame, parsed: dict[str, Any], q: Quarantine, keys: bool = True) -> tuple[dict[str, Any], np.ndarray | None]:
    """One table's own checks on its parsed columns: quarantined rows (into ``q``) and the
    rows merged as identical duplicates."""
    p = dict(parsed)
    dropped = None
    if name == "orders":
        p["_rows"] = _order_row_checks(df, p, p["_amount"][0])
    failures = _run_schema(_schema(name, p), df)
    for check in sorted(failures):  # in check-name order, as pandera's lazy report groups them
        by_col = failures[check]
        if check == "not_nullable":
            for column in sorted(by_col):
                reason = R.ACTIVATION_WITHOUT_TIMESTAMP if column == "activated_at" else R.EMPTY_REQUIRED
                q.add(name, by_col[column], reason, column)
            continue
        reason = R(check)
        if reason not in STAGE_CHECKS:  # in the table's column order: a row's first bad column is blamed
            for column in [c for c in COLUMNS[name] if c in by_col]:
                q.add(name, by_col[column], reason, column)
            continue
        rows = np.unique(np.concatenate(list(by_col.values())))
        for col, rr in _stage_columns(reason, rows, p).items():
            q.add(name, rr, reason, col)
    key = {"licenses": "license_id", "orders": "order_id", "features": "feature_id"}.get(name)
    if not keys:
        return p, None
    if key:
        reason = {"licenses": R.DUPLICATE_LICENSE_ID, "orders": R.DUPLICATE_ORDER_ID, "features": R.DUPLICATE_FEATURE_ID}[name]
        dropped = duplicate_rows(df, key, reason, q, name)
    elif name in ("activations", "legacy_periods"):
        dropped = _identical_rows(df, "code" if name == "activations" else "license_id")
    return p, dropped


def _run_schema(schema: pa_.DataFrameSchema, df: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """The failing rows of each check of ``schema``: check name → column → row positions.

    Each check is run by pandera on its column, as ``schema.validate(df, lazy=True)`` would;
    only the failure report is built here, as arrays: pandera's own report is a frame with a
    row per failure, which for millions of bad rows took gigabytes and minutes.
    ``df`` has a RangeIndex, so index labels are row positions.
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for column, spec in schema.columns.items():
        s = df[column]
        if not spec.nullable:
            null = np.flatnonzero(s.isna().to_numpy())
            if len(null):
                out.setdefault("not_nullable", {})[column] = null
        for check in spec.checks:
            passed = check(s).check_output  # nulls are left out unless the check says ignore_na=False
            rows = passed.index.to_numpy()[~passed.to_numpy(dtype=bool)]
            if len(rows):
                have = out.setdefault(check.name, {})
                have[column] = np.union1d(have[column], rows) if column in have else rows.astype(np.int64)
    return out


def cross_table_checks(raw: dict[str, pd.DataFrame], parsed, q: Quarantine, merged: dict[str, np.ndarray]) -> None:
    """Codes and acts unique across orders; licenses known; references to quarantined rows.

    The hash passes (uniqueness, membership, act lookup) do not depend on each other, so
    they run side by side first; the rules that combine them follow in order."""
    o = raw["orders"]
    good_lic, bad_lic = _license_ids(raw["licenses"], q)
    dropped = np.zeros(len(o), bool)
    dropped[merged.get("orders", np.empty(0, np.int64))] = True
    sku = raw_text(o["sku"]).fillna("")
    up = np.flatnonzero((sku == "upgrade").to_numpy() & ~is_empty(o["upgrade_of_act"]).to_numpy())
    ref_tables = [t for t in ("orders", "legacy_periods") if t in raw]
    # Side by side unless the hash tables of millions of strings would add up (memory bound).
    with ThreadPoolExecutor(max_workers=workers() if len(o) <= SERIAL_CROSS_CHECK_ROWS else 1) as pool:
        # Longest first: each of these hashes about a million strings.
        refs = {t: pool.submit(_license_refs, raw[t], good_lic, bad_lic) for t in ref_tables}
        targets = pool.submit(_act_targets, o, up) if len(up) else None
        repeated = {col: pool.submit(_repeated_among_kept, o[col], dropped) for col in ("code", "act_number")}
        for col, reason in (("code", R.DUPLICATE_CODE), ("act_number", R.DUPLICATE_ACT_NUMBER)):
            q.add("orders", np.flatnonzero(repeated[col].result()), reason, col)
        for table in ref_tables:
            _quarantine_license_refs(raw[table], table, *refs[table].result(), q)
        if targets is not None:
            _quarantine_upgrade_targets(targets.result(), up, sku, q)
    _quarantine_activations_of_bad_orders(o, raw["activations"], q)


def _license_ids(lic: pd.DataFrame, q: Quarantine) -> tuple[pd.Series, pd.Series]:
    """The ids of kept licenses, and those of quarantined ones that no kept row also carries."""
    lic_bad = q.rows_of("licenses")
    lic_ids = raw_text(lic["license_id"])
    good_mask = np.ones(len(lic), bool)
    good_mask[lic_bad] = False
    good_lic = lic_ids[good_mask].dropna()
    bad_lic = lic_ids[~good_mask].dropna()
    return good_lic, bad_lic[~isin_text(bad_lic, good_lic)]


def _repeated_among_kept(s: pd.Series, dropped: np.ndarray) -> np.ndarray:
    """Rows whose value repeats among the kept rows' values: one hash encoding of the
    whole column (no filtered copy of millions of strings, no second hash table)."""
    keep = ~is_empty(s).to_numpy() & ~dropped
    codes = _value_codes(s)
    counts = np.bincount(codes[keep] + 1, minlength=int(codes.max(initial=-1)) + 2)
    return keep & (counts[codes + 1] > 1)


def _license_refs(df: pd.DataFrame, good_lic: pd.Series, bad_lic: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``df`` whose license is kept, and rows whose license was quarantined."""
    ids = raw_text(df["license_id"])
    return isin_text(ids, good_lic), isin_text(ids, bad_lic)


def _act_targets(o: pd.DataFrame, up: np.ndarray) -> np.ndarray:
    """Row of the first order carrying each upgrade's target act (-1: none). The acts are
    looked up in the few upgrades' targets, then those rows' acts indexed: a hash set of
    a million acts cost more than the rest of the lookup."""
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = pa.array(raw_text(o["upgrade_of_act"]).iloc[up].array)
    all_acts = pa.array(raw_text(o["act_number"]).array)
    named = np.flatnonzero(pc.fill_null(pc.is_in(all_acts, value_set=wanted), False).to_numpy(zero_copy_only=False))
    pos = pc.index_in(wanted, value_set=all_acts.take(pa.array(named)))
    pos = np.asarray(pos.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.append(named, -1)[pos]  # -1 (not found) reads the appended -1


def _quarantine_license_refs(df: pd.DataFrame, table: str, in_good: np.ndarray, in_bad: np.ndarray, q: Quarantine) -> None:
    """Rows of an unknown license, and rows of a quarantined one (said so)."""
    unknown = ~in_good & ~in_bad & ~is_empty(df["license_id"]).to_numpy()
    q.add(table, np.flatnonzero(unknown), R.UNKNOWN_LICENSE, "license_id")
    q.add(table, np.flatnonzero(in_bad), R.REFERENCES_QUARANTINED, "license_id", "its license row was quarantined")


def _quarantine_upgrade_targets(tgt: np.ndarray, up: np.ndarray, sku: pd.Series, q: Quarantine) -> None:
    """Upgrades: the target act must be a renewal's; a quarantined target taints the upgrade."""
    found = tgt >= 0
    tgt_i = np.where(found, tgt, 0)
    not_ren = found & ~(sku == "renewal").to_numpy()[tgt_i]
    q.add("orders", up[not_ren], R.UPGRADE_TARGET_NOT_RENEWAL, "upgrade_of_act")
    bad_orders = q.rows_of("orders")
    tainted = found & ~not_ren & np.isin(tgt_i, bad_orders) & ~np.isin(up, bad_orders)
    q.add("orders", up[tainted], R.REFERENCES_QUARANTINED, "upgrade_of_act", "the renewal order it upgrades was quarantined")


def _quarantine_activations_of_bad_orders(o: pd.DataFrame, a: pd.DataFrame, q: Quarantine) -> None:
    """Activations of a code whose order was quarantined: quarantined with it, said so."""
    bad_orders = q.rows_of("orders")
    codes = raw_text(o["code"])
    is_bad = np.zeros(len(o), bool)
    is_bad[bad_orders] = True
    # A code carried by a kept order as well would be a duplicate code, quarantined with both
    # orders, so every code of a quarantined order is a quarantined code.
    bad_codes = codes[is_bad].dropna()
    ref = isin_text(a["code"], bad_codes)
    q.add("activations", np.flatnonzero(ref), R.REFERENCES_QUARANTINED, "code", "the order carrying this code was quarantined")
