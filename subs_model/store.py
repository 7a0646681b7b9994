"""A small canonical ledger store: idempotent, conflict-reporting, atomically written.

Layout of a store folder::

    store/current          -> versions/<hash>      (a symlink, switched atomically)
    store/versions/<hash>/ licenses.parquet … manifest.json
    store/log/             one JSON summary per ingest, plus its quarantine and conflicts as CSV

``ingest(raw, store)`` reads an export with validation (bad rows quarantined), merges it
into the current version by key, and writes a new version only when the content hash
changes. A row whose key is known but whose content differs is a *conflict*: reported and
not applied — except when the new row only fills fields that were empty (an order that
progressed through its stages), which is applied as an update. A new version is written
completely into its own folder before ``current`` is switched with one ``rename``, so an
interrupted run leaves the previous store as it was. Old versions are kept: nothing the
user gave is lost or overwritten.

Concurrency and crashes:

- one writer at a time: an ingest holds an OS file lock on ``store/.lock`` (``filelock``;
  the OS releases it if the process dies) while it merges and switches; a second ingest
  waits, with a message, up to ``wait`` seconds, then fails with :class:`StoreBusyError`;
- compare-and-switch: the ingest merges into the version that is ``current`` when it takes
  the lock, and switches ``current`` only if it still points there;
- every file of a new version, the version folder and the store folder are fsync'ed before
  and after the switch, so a power loss leaves ``current`` at a complete version;
- readers (:func:`subs_model.read_ledger` on a store) resolve ``current`` once and read every
  table from that version folder, which is never changed again;
- temporary folders and links of writers that died are removed by the next writer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from .errors import SubsModelError
from .io import read_ledger
from .ledger import COLUMNS

__all__ = ["DEFAULT_WAIT", "IngestResult", "StoreBusyError", "content_hash", "current_version", "ingest", "store_lock"]

DEFAULT_WAIT = 600.0  # seconds an ingest waits for another one before giving up

KEYS: dict[str, tuple[str, ...]] = {
    "licenses": ("license_id",),
    "orders": ("order_id",),
    "activations": ("code", "license_id", "activated_at"),
    "legacy_periods": ("license_id", "start", "valid_until"),
    "features": ("feature_id",),
}


@dataclass
class IngestResult:
    """What an ingest did."""

    changed: bool
    hash: str
    added: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    conflicts: pd.DataFrame = field(default_factory=pd.DataFrame)
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)  # its first rows when there are very many
    quarantined: int = 0  # rows quarantined in all (the log's CSV holds every one)
    version: Path | None = None


def _canon(df: pd.DataFrame, table: str) -> pd.DataFrame:
    cols = [c for c in COLUMNS[table] if c in df.columns]
    out = df[cols].copy()
    for c in cols:
        if not isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = out[c].astype("str")
    return out.sort_values(list(KEYS[table]), kind="stable", ignore_index=True)


def content_hash(tables: dict[str, pd.DataFrame]) -> str:
    """SHA-256 of the tables' canonical content (independent of row order and file bytes)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        df = _canon(tables[name], name)
        h.update(name.encode())
        h.update(",".join(df.columns).encode())
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _key(df: pd.DataFrame, table: str) -> pd.Series:
    parts = [df[k].astype("str").fillna("") for k in KEYS[table]]
    key = parts[0]
    for p in parts[1:]:
        key = key + "\x1f" + p
    return key


def _merge(old: pd.DataFrame | None, new: pd.DataFrame, table: str) -> tuple[pd.DataFrame, int, int, pd.DataFrame]:
    """Existing rows + new keys + fill-in updates; conflicting rows are returned, not applied."""
    new = _canon(new, table)
    if old is None or old.empty:
        return new, len(new), 0, pd.DataFrame()
    old = _canon(old, table)
    ok, nk = _key(old, table), _key(new, table)
    known = nk.isin(ok).to_numpy()
    added = new[~known]
    both = new[known]
    conflicts = []
    updated = 0
    if len(both):
        o_idx = pd.Series(np.arange(len(old)), index=ok.to_numpy())
        pos = o_idx.reindex(nk[known].to_numpy()).to_numpy()
        cur = old.iloc[pos].reset_index(drop=True)
        inc = both.reset_index(drop=True)
        a, b = cur.astype("str"), inc.astype("str")
        a_na, b_na = cur.isna().to_numpy(), inc.isna().to_numpy()
        differs = (a.to_numpy() != b.to_numpy()) & ~(a_na & b_na)
        clash = differs & ~a_na  # an existing value would change
        fill = differs & a_na & ~b_na  # an empty field gets a value
        bad_rows = clash.any(axis=1)
        fill_rows = fill.any(axis=1) & ~bad_rows
        if fill_rows.any():
            merged = cur.copy()
            for j, c in enumerate(cur.columns):
                m = fill[:, j] & fill_rows
                if m.any():
                    merged.loc[m, c] = inc.loc[m, c]
            old = old.copy()
            old.iloc[pos[fill_rows]] = merged[fill_rows].to_numpy()
            updated = int(fill_rows.sum())
        for i in np.flatnonzero(bad_rows):
            cols = [c for j, c in enumerate(cur.columns) if clash[i, j]]
            conflicts.append({"table": table, "key": nk[known].iloc[i].replace("\x1f", " | "), "columns": ", ".join(cols),
                              "stored": "; ".join(f"{c}={cur.at[i, c]}" for c in cols),
                              "incoming": "; ".join(f"{c}={inc.at[i, c]}" for c in cols)})
    out = pd.concat([old, added], ignore_index=True)
    return _canon(out, table), len(added), updated, pd.DataFrame(conflicts, columns=["table", "key", "columns", "stored", "incoming"])


def current_version(store: str | Path) -> Path | None:
    """The version folder that ``store/current`` points at, resolved once (None: an empty store).

    Readers take every table from this one folder: versions are never changed once written, so
    an ingest switching ``current`` meanwhile cannot mix two versions into one read.

    >>> current_version("data/ledger")  # doctest: +SKIP
    PosixPath('/…/data/ledger/versions/3f1c…')
    """
    link = Path(store) / "current"
    if not link.is_symlink() and not link.is_dir():
        return None
    return Path(os.path.realpath(link))


def _read_version(folder: Path | None) -> dict[str, pd.DataFrame]:
    if folder is None:
        return {}
    return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_version(folder: Path, tables: dict[str, pd.DataFrame], manifest: dict) -> None:
    """Every file of a version written and flushed, then the folder itself."""
    folder.mkdir(parents=True)
    for name, df in tables.items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
        _fsync(folder / f"{name}.parquet")
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    _fsync(folder / "manifest.json")
    _fsync(folder)


def _remove_debris(store: Path) -> list[str]:
    """Temporary folders and links of writers that died (only the lock holder may call this)."""
    found = [*(store / "versions").glob(".*.tmp-*"), *store.glob(".current.tmp-*")] if store.exists() else []
    for p in found:
        if p.is_symlink() or p.is_file():
            p.unlink()
        else:
            shutil.rmtree(p, ignore_errors=True)
    return [p.name for p in found]


class StoreBusyError(SubsModelError, TimeoutError):
    """Another ingest holds the store's lock for longer than the caller would wait."""


@contextmanager
def store_lock(store: Path, wait: float | None = DEFAULT_WAIT, log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the store's writer lock (an OS file lock on ``store/.lock``, released if the process dies).

    ``wait`` is how many seconds to wait for another writer (None: as long as it takes); a
    message goes to ``log`` when the lock is taken, and :class:`StoreBusyError` is raised after
    ``wait`` seconds.
    """
    store.mkdir(parents=True, exist_ok=True)
    lock = FileLock(store / ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if log is not None:
            limit = "as long as it takes" if wait is None else f"up to {wait:g} s"
            log(f"{store}: another ingest is writing this store; waiting for it ({limit})")
        try:
            lock.acquire(timeout=-1 if wait is None else wait)
        except Timeout:
            msg = (f"{store}: another ingest still holds the store's lock after {wait:g} s; "
                   "run again when it has finished, or give a longer --wait")
            raise StoreBusyError(msg) from None
    try:
        yield
    finally:
        lock.release()


def _switch_current(store: Path, final: Path, base: Path | None) -> None:
    """Point ``current`` at ``final`` with one rename, if it still points at ``base`` (compare-and-switch)."""
    if current_version(store) != base:
        msg = (f"{store}: `current` changed while this ingest held the lock (was {base}, now "
               f"{current_version(store)}); another program writes the store without the lock — stop it and ingest again")
        raise SubsModelError(msg)
    link = store / f".current.tmp-{os.getpid()}"
    link.symlink_to(Path("versions") / final.name)
    os.replace(link, store / "current")  # the one atomic switch
    _fsync(store)


def ingest(raw: str | Path, store: str | Path, profile: Any = None, *, wait: float | None = DEFAULT_WAIT,
           log: Callable[[str], None] | None = None) -> IngestResult:
    """Merge the export at ``raw`` into the ledger store at ``store`` (see the module docstring).

    Parameters
    ----------
    raw : folder of the export (read and validated as by :func:`subs_model.read_ledger`)
    store : the store folder (created if missing)
    profile : source profile of the export (a path or a loaded profile; see :mod:`subs_model.profiles`)
    wait : seconds to wait for another ingest of the same store (None: no limit)
    log : where the "waiting for another ingest" message goes (e.g. ``print``)

    >>> res = ingest("exports/2026-11", "data/ledger")  # doctest: +SKIP
    >>> res.changed, res.added["orders"], len(res.conflicts)  # doctest: +SKIP
    """
    store = Path(store)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    # Outside the lock: validation needs nothing from the store. The quarantine goes to the
    # log as it is read (memory keeps the rows an XLSX can hold).
    led = read_ledger(raw, profile=profile, quarantine_to=store / "log" / f"ingest-{stamp}-quarantine")
    with store_lock(store, wait, log):
        _remove_debris(store)
        base = current_version(store)  # the version this ingest merges into, read once
        return _merge_and_switch(led, raw, store, base, stamp)


def _merge_and_switch(led, raw: str | Path, store: Path, base: Path | None, stamp: str) -> IngestResult:
    existing = _read_version(base)
    tables: dict[str, pd.DataFrame] = {}
    added, updated, conflicts = {}, {}, []
    for name, df in led.tables().items():
        merged, n_add, n_upd, conf = _merge(existing.get(name), df, name)
        tables[name] = merged
        added[name], updated[name] = n_add, n_upd
        if len(conf):
            conflicts.append(conf)
    for name, df in existing.items():
        tables.setdefault(name, df)
    digest = content_hash(tables)
    conflicts_df = pd.concat(conflicts, ignore_index=True) if conflicts else pd.DataFrame(columns=["table", "key", "columns", "stored", "incoming"])
    old_digest = json.loads((base / "manifest.json").read_text())["hash"] if base is not None else ""
    log_dir = store / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    from .export import write_table, write_xlsx

    totals = led.load_summary[led.load_summary["reason"] == ""]
    n_bad = int(totals["quarantined"].sum())
    if n_bad:  # its CSV was written while reading
        q_csv = log_dir / f"ingest-{stamp}-quarantine.csv"
        write_xlsx(led.quarantine, q_csv.with_suffix(""), sheet="quarantine", rows=n_bad, csv_name=q_csv.name)
    if len(conflicts_df):
        write_table(conflicts_df, log_dir / f"ingest-{stamp}-conflicts", sheet="conflicts")
    result = IngestResult(changed=digest != old_digest, hash=digest, added=added, updated=updated,
                          conflicts=conflicts_df, quarantine=led.quarantine, quarantined=n_bad)
    summary = {"source": str(raw), "finished": stamp, "hash": digest, "changed": result.changed, "added": added,
               "updated": updated, "conflicts": len(conflicts_df), "quarantined": n_bad,
               "base": base.name if base is not None else None}
    if result.changed:
        versions = store / "versions"
        final = versions / digest[:16]
        if not final.exists():  # an identical version written before is complete: reuse it
            tmp = versions / f".{digest[:16]}.tmp-{os.getpid()}"
            manifest = {"hash": digest, "rows": {k: len(v) for k, v in tables.items()}, "source": str(raw),
                        "written": stamp, "base": summary["base"]}
            _write_version(tmp, tables, manifest)
            os.replace(tmp, final)
            _fsync(versions)
        _switch_current(store, final, base)
        result.version = final
    (log_dir / f"ingest-{stamp}.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return result
