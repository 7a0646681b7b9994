"""The validated ledger of a report run, read once by the runner and shared with its notebooks.

Reading a ledger validates every row (seconds on 100 k licenses); a report run reads the same
ledger in the runner (parameter checks, headline KPIs) and in every notebook. The runner
(:func:`subs_model.reports.run_reports`) keeps what it read in the run's private work folder
(:func:`store`) and names that folder in its kernels' environment (:data:`LEDGER_CACHE_ENV`);
the report pages read through :func:`read_ledger`, which takes the kept ledger when its
source files are still the ones that were read (names, sizes, modification times), and reads
and validates the files otherwise. Outside a report run it is :func:`subs_model.io.read_ledger`.

The kept ledger is a pickle: exact (the same frames, dtypes and quarantine) and read in a few
milliseconds. It is written only by the runner, into a work folder only its user can open
(mode 0700), and read only from the folder the runner named; it is deleted with the work folder.

>>> import os
>>> LEDGER_CACHE_ENV in os.environ  # outside a report run: the ledger is read from its files
False
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LEDGER_CACHE_ENV", "read_ledger", "source_stamp", "store"]

#: The environment variable naming the folder of a run's kept ledgers (set for report kernels only).
LEDGER_CACHE_ENV = "SUBS_MODEL_LEDGER_CACHE"


def _folder(data: str | Path) -> Path:
    """The folder (or file) :func:`subs_model.io.read_ledger` reads for ``data``: a store's current version resolved."""
    p = Path(os.path.realpath(data))
    cur = p / "current"
    return Path(os.path.realpath(cur)) if cur.is_dir() else p


def source_stamp(data: str | Path) -> str:
    """What identifies the files of the ledger at ``data`` without reading them: each file's
    name, size and modification time (nanoseconds), and the resolved folder; "" if it is missing.

    >>> source_stamp("/no/such/folder")
    ''
    """
    p = _folder(data)
    if not p.exists():
        return ""
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    parts = [str(p)] + [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _key(data: str | Path) -> str:
    return hashlib.sha256(os.path.realpath(data).encode()).hexdigest()[:24]


def store(ledgers: Mapping[str, Any], folder: Path, stamps: Mapping[str, str]) -> None:
    """Keep each ledger read from ``data`` (a key of ``ledgers``) in ``folder``, with the
    :func:`source_stamp` its files had when it was read (``stamps``)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for data, led in ledgers.items():
        if not stamps.get(data):
            continue
        key = _key(data)
        (folder / f"{key}.pkl").write_bytes(pickle.dumps(led, protocol=pickle.HIGHEST_PROTOCOL))
        (folder / f"{key}.json").write_text(json.dumps({"data": os.path.realpath(data), "stamp": stamps[data]}),
                                            encoding="utf-8")


def read_ledger(data: str | Path) -> Any:
    """The ledger at ``data``: the one the report run kept, if its files have not changed since,
    else :func:`subs_model.io.read_ledger` (read and validated)."""
    folder = os.environ.get(LEDGER_CACHE_ENV)
    if folder:
        key = _key(data)
        meta, kept = Path(folder) / f"{key}.json", Path(folder) / f"{key}.pkl"
        try:
            stamp = json.loads(meta.read_text(encoding="utf-8"))["stamp"]
            if stamp and stamp == source_stamp(data):
                return pickle.loads(kept.read_bytes())  # noqa: S301 - written by this run's runner in its 0700 folder
        except (OSError, ValueError, KeyError, pickle.UnpicklingError, EOFError):
            pass  # nothing kept (or half written): read the files
    from .io import read_ledger as read_files

    return read_files(data)
