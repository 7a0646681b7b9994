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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .io import read_ledger
from .ledger import COLUMNS

__all__ = ["IngestResult", "content_hash", "ingest"]

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
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)
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


def _read_current(store: Path) -> dict[str, pd.DataFrame]:
    cur = store / "current"
    if not cur.exists():
        return {}
    return {p.stem: pd.read_parquet(p) for p in sorted(cur.glob("*.parquet"))}


def _write_version(folder: Path, tables: dict[str, pd.DataFrame], manifest: dict) -> None:
    folder.mkdir(parents=True)
    for name, df in tables.items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")


def ingest(raw: str | Path, store: str | Path, profile=None) -> IngestResult:
    """Merge the export at ``raw`` into the ledger store at ``store`` (see the module docstring).

    >>> res = ingest("exports/2026-11", "data/ledger")  # doctest: +SKIP
    >>> res.changed, res.added["orders"], len(res.conflicts)  # doctest: +SKIP
    """
    store = Path(store)
    led = read_ledger(raw, profile=profile)
    existing = _read_current(store)
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
    old_digest = ""
    if (store / "current" / "manifest.json").exists():
        old_digest = json.loads((store / "current" / "manifest.json").read_text())["hash"]
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    log = store / "log"
    log.mkdir(parents=True, exist_ok=True)
    from .export import write_table

    if len(led.quarantine):
        write_table(led.quarantine, log / f"ingest-{stamp}-quarantine", sheet="quarantine")
    if len(conflicts_df):
        write_table(conflicts_df, log / f"ingest-{stamp}-conflicts", sheet="conflicts")
    result = IngestResult(changed=digest != old_digest, hash=digest, added=added, updated=updated,
                          conflicts=conflicts_df, quarantine=led.quarantine)
    summary = {"source": str(raw), "finished": stamp, "hash": digest, "changed": result.changed, "added": added,
               "updated": updated, "conflicts": len(conflicts_df), "quarantined": len(led.quarantine)}
    if result.changed:
        versions = store / "versions"
        final = versions / digest[:16]
        if not final.exists():
            tmp = versions / f".{digest[:16]}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            manifest = {"hash": digest, "rows": {k: len(v) for k, v in tables.items()}, "source": str(raw), "written": stamp}
            _write_version(tmp, tables, manifest)
            os.replace(tmp, final)
        link = store / f".current.tmp-{os.getpid()}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("versions") / final.name)
        os.replace(link, store / "current")  # the one atomic switch
        result.version = final
    (log / f"ingest-{stamp}.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return result

