"""Reading real exports: validated with pandera, bad rows quarantined, timestamps in Moscow days.

``read_ledger(path)`` reads the tables of a folder (or explicit files) of CSV or Parquet
with pyarrow — every CSV column as text, so ids keep their leading zeros and nothing is
guessed — validates every row at once (pandera, lazy) and returns the :class:`Ledger`
of accepted rows. Each rejected row goes to ``ledger.quarantine`` with its file, line,
column, reason (a fixed enum, :class:`QuarantineReason`), a message and the raw row;
``ledger.load_summary`` counts rows read / accepted / quarantined per table and reason,
and for every table ``read == accepted + quarantined``. Identical duplicate rows are
merged (counted in ``merged``); conflicting ones are all quarantined. A row that refers
to a quarantined row is quarantined too, with ``references_quarantined`` and the row it
refers to. Rule violations (a late renewal, a reused code) are not bad input: they stay
in the ledger and the replay rejects them.

Whole-file problems (an unreadable file, an unknown table, a missing or unknown column)
raise an error naming the file and the fix.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import LedgerError
from .ledger import COLUMNS, REQUIRED, TABLES, Ledger
from .sources import find_files, read_table
from .profiles import Profile, load_profile, to_canonical
from .quarantine import QuarantineReason, assemble_ledger, source_lines, Quarantine, raw_rows
from .streamed import validate_streamed
from .validation import check_tables, cross_table_checks
from .workers import workers

__all__ = ["QuarantineReason", "read_ledger"]


def read_ledger(
    path: str | Path | Mapping[str, str | Path], on_bad_rows: str = "quarantine", tz: str = "Europe/Moscow",
    profile: str | Path | Profile | None = None, quarantine_to: str | Path | None = None,
    quarantine_head: int = 1_048_575,
) -> Ledger:
    """Read and validate the ledger tables; bad rows are quarantined (or raise).

    Parameters
    ----------
    path : folder, or mapping table name → file
        ``licenses``, ``orders``, ``activations`` and optionally ``legacy_periods`` and
        ``features`` as ``.csv`` or ``.parquet`` (with a profile: as it names them, or its
        workbook; the workbook's path may be given).
    on_bad_rows : {"quarantine", "raise"}
        ``"raise"`` fails on the first bad row with its file, line, column and reason.
    tz : str
        Time zone of naive timestamps and of the calendar days (Europe/Moscow).
    profile : path of a profile YAML, or :class:`~subs_model.profiles.Profile`, optional
        How the export is written (encoding, delimiter, formats, headers, sheets); without
        one the strict contract holds (UTF-8, ``,``, ISO 8601, canonical names).
    quarantine_to : path, optional
        Write the whole quarantine to this path as ``.csv`` (``out/quarantine`` →
        ``out/quarantine.csv``; no file when no row is quarantined), formula-safe, and keep
        only its first ``quarantine_head`` rows in ``ledger.quarantine``; ``load_summary``
        still counts every row. A large plain ``orders.csv`` (no profile, ``on_bad_rows=
        "quarantine"``) is then read in chunks, so memory holds its key columns rather than
        the whole table, and the quarantine's raw rows go to the file as they are built.
    quarantine_head : int
        Rows of the quarantine kept in memory with ``quarantine_to`` (default: as many as
        an XLSX sheet holds, 1,048,575).

    Returns
    -------
    Ledger
        Accepted rows (timestamps as tz-aware datetimes in ``tz``), with ``quarantine``
        (file, line, table, column, reason, message, raw row) and ``load_summary`` (with
        ``trimmed``: values whose surrounding white space was removed, per table).

    Examples
    --------
    >>> led = read_ledger("data/sample")  # doctest: +SKIP
    >>> led.load_summary  # doctest: +SKIP
    >>> led = read_ledger("exports/2026-11", profile="data/profiles/1c.yaml")  # doctest: +SKIP
    """
    if on_bad_rows not in ("quarantine", "raise"):
        msg = f"on_bad_rows={on_bad_rows!r}: use 'quarantine' or 'raise'"
        raise ValueError(msg)
    prof = load_profile(profile)
    files, source = _locate_tables(path, prof)
    streamed = _streams(files, prof, on_bad_rows, quarantine_to)
    if streamed:
        _check_streamed_header(files[streamed], streamed)
    reads = {name: read_table(p, name, prof) for name, p in files.items() if name != streamed}
    raw = _complete_columns(reads, files)
    trimmed = {name: r.trimmed for name, r in reads.items()}
    if streamed:
        led, trimmed[streamed] = validate_streamed(raw, files, streamed, source, tz, Path(quarantine_to), quarantine_head,
                                                    _CHUNK_ROWS)
        return _with_trimmed(led, trimmed)
    if prof is None:
        return _head(_with_trimmed(_validate_tables(raw, files, source, on_bad_rows, tz), trimmed), quarantine_to, quarantine_head)
    led = _validate_profiled(raw, reads, files, source, tz, prof, on_bad_rows)
    return _head(_with_trimmed(led, trimmed), quarantine_to, quarantine_head)


def _locate_tables(path: str | Path | Mapping[str, str | Path], prof: Profile | None) -> tuple[dict[str, Path], str]:
    """The file of each table (named, or found in the folder or a store's current version) and
    the source to name in messages; raises if a required table is missing."""
    if isinstance(path, Mapping):
        files = {str(k): Path(v) for k, v in path.items()}
        for name in files:
            if name not in COLUMNS:
                msg = f"{files[name]}: unknown table {name!r}; tables are {', '.join(COLUMNS)}"
                raise LedgerError(msg)
        source = ", ".join(str(p) for p in files.values())
    else:
        folder = Path(path)
        if (folder / "current").is_dir():  # a ledger store: read its current version
            folder = folder / "current"
        if folder.is_symlink():  # resolved once: an ingest switching `current` meanwhile cannot mix two versions
            folder = Path(os.path.realpath(folder))
        files = find_files(folder, prof)
        source = str(folder)
    missing = [t for t in TABLES if t not in files]
    if missing:
        from .errors import LedgerFileError

        where = f" (profile {prof.name!r}: {', '.join(prof.files.get(m, prof.sheets.get(m, m)) for m in missing)})" if prof else ""
        msg = f"{source}: missing table(s) {missing}{where}; add {', '.join(m + '.csv' for m in missing)} (or .parquet)"
        raise LedgerFileError(msg)
    return files, source


def _check_streamed_header(path: Path, name: str) -> None:
    """The header of the table read in chunks, checked up front as a whole read checks it."""
    from .sources import canonical_column, check_header, header_columns

    names = canonical_column(path, name, header_columns(path, name, "utf-8", ","), None)
    check_header(path, name, names, None)
    miss = [c for c in REQUIRED[name] if c not in names]
    if miss:
        msg = f"{path}: missing required column(s) {miss}; add them (columns of {name}: {list(COLUMNS[name])})"
        raise LedgerError(msg)


def _complete_columns(reads: dict[str, Any], files: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """Each read table with every column of its table (optional ones empty) and a RangeIndex;
    raises if a required column is missing."""
    raw = {name: r.df for name, r in reads.items()}
    for name, df in raw.items():
        miss = [c for c in REQUIRED[name] if c not in df.columns]
        if miss:
            msg = f"{files[name]}: missing required column(s) {miss}; add them (columns of {name}: {list(COLUMNS[name])})"
            raise LedgerError(msg)
        for c in COLUMNS[name]:
            if c not in df.columns:
                df[c] = pd.Series(pd.NA, index=df.index, dtype="str")
        raw[name] = df.reset_index(drop=True)
    return raw


def _validate_profiled(raw: dict[str, pd.DataFrame], reads: dict[str, Any], files: dict[str, Path], source: str,
                       tz: str, prof: Profile, on_bad_rows: str) -> Ledger:
    """A profiled export converted to the canonical formats and validated; its quarantine keeps
    the raw rows as written and names the declared format of a mismatched value."""
    converted, mismatch = {}, {}
    for name, df in raw.items():
        converted[name], mismatch[name] = to_canonical(df, prof, reads[name].typed)
    # Quarantine mode, then the messages and raw rows of the declared formats; raise after.
    led = _validate_tables(converted, files, source, "quarantine", tz)
    led = _profile_quarantine(led, raw, mismatch, files, prof)
    if on_bad_rows == "raise" and len(led.quarantine):
        r = led.quarantine.iloc[0]
        msg = (f"{r['file']}: line {r['line']}, column {r['column'] or '-'}: {r['reason']}: {r['message']} ({r['raw']}); "
               f"fix the row or read with on_bad_rows='quarantine'")
        raise LedgerError(msg)
    return led


def _head(led: Ledger, quarantine_to: str | Path | None, head: int) -> Ledger:
    """With ``quarantine_to``: the whole quarantine written there as CSV, the ledger keeping its first ``head`` rows."""
    if quarantine_to is None:
        return led
    if len(led.quarantine):
        from .export import write_table

        write_table(led.quarantine, quarantine_to, xlsx=False)
    return led if len(led.quarantine) <= head else dataclasses.replace(led, quarantine=led.quarantine.iloc[:head].copy())


def _with_trimmed(led: Ledger, trimmed: dict[str, int]) -> Ledger:
    """``led`` whose load summary says, per table, how many values had white space trimmed."""
    s = led.load_summary.copy()
    s["trimmed"] = np.where(s["reason"] == "", s["table"].map(trimmed).fillna(0), 0).astype(np.int64)
    return dataclasses.replace(led, load_summary=s)


def _profile_quarantine(led: Ledger, original: dict[str, pd.DataFrame], mismatch: dict[str, dict[str, np.ndarray]],
                        files: dict[str, Path], prof: Profile) -> Ledger:
    """The quarantine of a profiled read: raw rows as the export wrote them, and a message
    naming the declared format for values that did not match it."""
    q = led.quarantine
    if not len(q):
        return led
    q = q.copy()
    first_line = {name: int(source_lines(files.get(name), 1)[0]) if name in files else 1 for name in original}
    row = (q["line"] - q["table"].map(first_line)).to_numpy()
    messages = q["message"].astype(object).to_numpy(copy=True)
    for name, df in original.items():
        sel = np.flatnonzero((q["table"] == name).to_numpy())
        if not len(sel):
            continue
        q.iloc[sel, q.columns.get_loc("raw")] = raw_rows(df.iloc[row[sel]])
        for col, bad in mismatch[name].items():
            hit = sel[(q["column"].to_numpy()[sel] == col) & bad[row[sel]]]
            if len(hit):
                msg = f"does not match the declared format {prof.format_of(col)} (profile {prof.name!r}); fix the value or the profile"
                messages[hit] = msg
    q["message"] = pd.Categorical(messages)
    return dataclasses.replace(led, quarantine=q)


def _validate_tables(raw: dict[str, pd.DataFrame], files: dict[str, Path], source: str, on_bad_rows: str, tz: str) -> Ledger:
    q = Quarantine({n: len(df) for n, df in raw.items()})
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        parsed, merged = check_tables(raw, q, tz, pool)
    cross_table_checks(raw, parsed, q, merged)
    return assemble_ledger(raw, files, parsed, q, merged, source, on_bad_rows, tz)


#: The streamed path (:func:`read_ledger` with ``quarantine_to``): an ``orders.csv`` of more
#: bytes than this is checked :data:`_CHUNK_ROWS` rows at a time.
_STREAM_BYTES = 64 << 20
_CHUNK_ROWS = 250_000


def _streams(files: dict[str, Path], prof: Profile | None, on_bad_rows: str, quarantine_to: Any) -> str | None:
    """The table read in chunks (orders, as a large plain CSV), or None: every table whole."""
    path = files.get("orders")
    if quarantine_to is None or prof is not None or on_bad_rows != "quarantine" or path is None:
        return None
    if path.suffix.lower() != ".csv" or path.stat().st_size <= _STREAM_BYTES:
        return None
    return "orders"
