"""The streamed read of a large ``orders.csv`` (:func:`~subs_model.io.read_ledger` with
``quarantine_to``): checked in chunks, only its key columns kept whole, the quarantine
written to CSV as it is built.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .ledger import TIMESTAMP_COLUMNS, Ledger
from .parsing import amount_reasons, instant_values
from .quarantine import R, Quarantine, accepted_rows, add_quarantine_part, source_lines, quarantine_frame, summary_rows
from .validation import check_tables, cross_table_checks, duplicate_rows
from .workers import workers


#: The columns of orders the cross-table checks read; kept whole on the streamed path.
_KEY_COLUMNS = ("order_id", "license_id", "sku", "act_number", "code", "upgrade_of_act")


def _row_hash(df: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's whole content (a missing value differs from an empty text).

    Two rows of one order id with equal hashes are taken as identical duplicates: for rows
    that differ, the chance of that is about 2^-64 a pair."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fields = []
    for c in df.columns:
        arr = pa.array(df[c].astype("str").array, pa.large_string())
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        marked = pc.binary_join_element_wise(pa.scalar("\x01", pa.large_string()), arr, pa.scalar("", pa.large_string()))
        fields.append(pc.fill_null(marked, pa.scalar("\x00", pa.large_string())))
    if not fields:
        return np.zeros(len(df), np.uint64)
    joined = pc.binary_join_element_wise(*fields, pa.scalar("\x02", pa.large_string()))
    return pd.util.hash_array(joined.to_numpy(zero_copy_only=False), categorize=False)


def validate_streamed(raw: dict[str, pd.DataFrame], files: dict[str, Path], name: str, source: str, tz: str,
                       out: Path, head: int, chunk_rows: int) -> tuple[Ledger, int]:
    """:func:`~subs_model.io._validate_tables` with table ``name`` read twice in chunks of
    ``chunk_rows`` rows, and the quarantine written to ``out`` .csv as it is built; returns
    the ledger (its quarantine: the first ``head`` rows) and how many values of ``name``
    were trimmed.

    Pass 1 runs each chunk's own checks (parse, schema, stage order) and keeps only the key
    columns and a row hash whole, for the duplicate and cross-table checks. Pass 2 reads the
    chunks again: their quarantined rows go to the CSV, their accepted rows to the ledger.
    Quarantine decisions, messages, lines and order are those of the whole-table path.
    """
    q = Quarantine({n: len(df) for n, df in raw.items()})
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        parsed, merged = check_tables(raw, q, tz, pool)
        key_frame, trimmed = _first_pass(files[name], name, q, tz, chunk_rows, pool)
    merged[name] = duplicate_rows(key_frame[["order_id", "_row"]], "order_id", R.DUPLICATE_ORDER_ID, q, name)
    key_frame = key_frame.drop(columns=["_row", "order_id"])
    cross_table_checks({**raw, name: key_frame}, parsed, q, merged)
    del key_frame
    led = _second_pass(raw, files, name, source, tz, parsed, q, merged, out, head, chunk_rows)
    return led, trimmed


def _first_pass(path: Path, name: str, q: Quarantine, tz: str, chunk_rows: int, pool) -> tuple[pd.DataFrame, int]:
    """Pass 1: each chunk's own checks, their quarantined rows into ``q``; returns the key
    columns with each row's hash (``_row``) and how many values were trimmed."""
    import pyarrow as pa

    from .sources import csv_batches

    keys: dict[str, list[Any]] = {c: [] for c in _KEY_COLUMNS}
    hashes, prio, col, msg = [], [], [], []
    trimmed = 0
    for read in csv_batches(path, name, chunk_rows):
        df = read.df
        trimmed += read.trimmed
        qc = Quarantine({name: len(df)})
        qc.columns, qc.messages, qc._lock = q.columns, q.messages, q._lock  # one list of names
        check_tables({name: df}, qc, tz, pool, keys=False)
        prio.append(qc.prio[name])
        col.append(qc.col[name])
        msg.append(qc.msg[name])
        for c in _KEY_COLUMNS:
            keys[c].append(pa.array(df[c].astype("str").array, pa.large_string()))
        hashes.append(_row_hash(df))
        del df, read, qc
    q.prio[name], q.col[name], q.msg[name] = np.concatenate(prio), np.concatenate(col), np.concatenate(msg)
    del prio, col, msg
    key_frame = pa.table({c: pa.chunked_array(v, pa.large_string()) for c, v in keys.items()}).combine_chunks().to_pandas()
    del keys
    key_frame["_row"] = np.concatenate(hashes)
    return key_frame, trimmed


def _second_pass(raw: dict[str, pd.DataFrame], files: dict[str, Path], name: str, source: str, tz: str,
                 parsed: dict[str, Any], q: Quarantine, merged: dict[str, np.ndarray], out: Path, head: int,
                 chunk_rows: int) -> Ledger:
    """Pass 2: every table's quarantined rows to the CSV at ``out`` (the first ``head`` kept)
    and its accepted rows to the ledger; table ``name`` read again in chunks."""
    from .export import CsvStream

    tables = list(files)
    file_names = [str(files[t]) if files.get(t) else t for t in tables]
    summary: list[dict[str, Any]] = []
    accepted: dict[str, pd.DataFrame] = {}
    kept: list[pd.DataFrame] = []
    total = sum(len(q.rows_of(t)) for t in tables)
    stream = CsvStream(Path(out).with_suffix(".csv")) if total else None

    def emit(parts: dict[str, list[Any]]) -> None:
        frame = quarantine_frame(parts, file_names, tables, q)
        if stream is not None:
            stream.write(frame)
        if not kept or sum(map(len, kept)) < head:
            kept.append(frame.iloc[:head - sum(map(len, kept))])

    try:
        for t_i, t in enumerate(tables):
            bad = q.rows_of(t)
            m = merged.get(t, np.empty(0, np.int64))
            summary += summary_rows(t, q, bad, m)
            if t != name:
                parts = _new_parts()
                lines = source_lines(files.get(t), len(raw[t]))
                add_quarantine_part(parts, t_i, raw[t], bad, lines[bad], q.col[t][bad], q.prio[t][bad], q.msg[t][bad])
                emit(parts)
                accepted[t] = accepted_rows(raw[t], parsed[t], np.union1d(bad, m).astype(np.int64), tz)
                continue
            accepted[t] = _stream_chunks(files[name], name, t_i, q, bad, m, tz, chunk_rows, emit)
    except BaseException:
        if stream is not None:
            stream.close(keep=False)
        raise
    if stream is not None:
        stream.close()
    quarantine = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0].reset_index(drop=True)
    load_summary = pd.DataFrame(summary, columns=["table", "reason", "read", "accepted", "merged", "quarantined"])
    return Ledger(
        licenses=accepted["licenses"], orders=accepted["orders"], activations=accepted["activations"],
        legacy_periods=accepted.get("legacy_periods"), features=accepted.get("features"), source=source,
        quarantine=quarantine, load_summary=load_summary,
    )


def _new_parts() -> dict[str, list[Any]]:
    """Empty quarantine columns, to be filled by :func:`add_quarantine_part`."""
    return {k: [] for k in ("file", "line", "table", "column", "reason", "message", "raw")}


def _stream_chunks(path: Path, name: str, t_i: int, q: Quarantine, bad: np.ndarray, m: np.ndarray, tz: str, chunk_rows: int,
                   emit) -> pd.DataFrame:
    """Table ``name`` (number ``t_i``) read again in chunks: each chunk's quarantined rows
    passed to ``emit``, the accepted rows (without ``bad`` and the merged ``m``) returned."""
    from .sources import csv_batches

    drop = np.zeros(len(q.prio[name]), bool)
    drop[bad] = True
    drop[m] = True
    pieces = []
    start = 0
    for read in csv_batches(path, name, chunk_rows):
        df = read.df
        stop = start + len(df)
        rows = np.flatnonzero(q.prio[name][start:stop] != q.NONE)
        glob = rows + start
        parts = _new_parts()
        add_quarantine_part(parts, t_i, df, rows, glob + 2, q.col[name][glob], q.prio[name][glob], q.msg[name][glob])
        emit(parts)
        keep = np.flatnonzero(~drop[start:stop])
        if len(keep) or not pieces:
            sub = df.iloc[keep].reset_index(drop=True)
            stamps = {c: instant_values(sub[c], tz) for c in sub.columns if c in TIMESTAMP_COLUMNS}
            if "amount_rub" in sub.columns:  # the money policy: exact rubles, as in a whole read
                stamps["_amount"] = amount_reasons(sub["amount_rub"])
            pieces.append(accepted_rows(sub, stamps, np.empty(0, np.int64), tz))
        start = stop
        del df, read
    return pieces[0] if len(pieces) == 1 else pd.concat(pieces, ignore_index=True)
