"""The ledger store under concurrency and crashes: no export lost, no torn read, no debris.

These tests run real processes against one store folder: parallel ingests of disjoint
exports, a reader looping while ingests switch ``current``, and ingests killed with
SIGKILL at random moments. Each is bounded in time.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import subs_model as sm
from subs_model import store as store_mod
from subs_model.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
PARTS = 4
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> list[Path]:
    """The sample ledger cut into four disjoint exports (by license), each a valid ledger of its own."""
    led = sm.read_ledger(SAMPLE)
    root = tmp_path_factory.mktemp("exports")
    ids = led.licenses["license_id"].astype("str")
    group = pd.util.hash_pandas_object(ids, index=False).to_numpy() % PARTS
    part_of = dict(zip(ids, group, strict=True))
    out = []
    for k in range(PARTS):
        tables = {}
        for name, df in led.tables().items():
            if "license_id" in df.columns:
                df = df[df["license_id"].astype("str").map(part_of) == k]
            tables[name] = df
        part = sm.Ledger(tables["licenses"], tables["orders"], tables["activations"], tables.get("legacy_periods"),
                         tables.get("features"))
        out.append(part.write(root / f"part{k}"))
    return out


def _counts(led: sm.Ledger) -> dict[str, int]:
    return {name: len(df) for name, df in led.tables().items()}


def _ingest_cmd(raw: Path, store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "subs_model.cli", "ingest", str(raw), "--into", str(store), *extra]


def _debris(store: Path) -> list[str]:
    return sorted(p.name for p in [*(store / "versions").glob(".*"), *store.glob(".current.tmp-*")])


def test_parallel_ingests_of_disjoint_exports_keep_every_row(tmp_path, exports) -> None:
    """Four ingests started at once into one store: all exit 0 and the store holds the union of the exports."""
    store = tmp_path / "store"
    procs = [subprocess.Popen(_ingest_cmd(p, store), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in exports]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * PARTS, outs
    want = _counts(sm.read_ledger(SAMPLE))
    got = sm.read_ledger(store)
    assert _counts(got) == want
    assert set(got.licenses["license_id"]) == set(sm.read_ledger(SAMPLE).licenses["license_id"])
    assert _debris(store) == []


def test_identical_ingests_racing_make_one_version(tmp_path, exports) -> None:
    """Two ingests of the same export at once: both succeed, one version, one of them reports no change."""
    store = tmp_path / "store"
    procs = [subprocess.Popen(_ingest_cmd(exports[0], store), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted("new version" in o for o, _ in outs) == [False, True]
    assert len([p for p in (store / "versions").iterdir() if not p.name.startswith(".")]) == 1


def test_reader_during_ingests_sees_only_whole_versions(tmp_path, exports) -> None:
    """A reader looping while four ingests switch `current` only ever reads tables of one version."""
    store = tmp_path / "store"
    store_mod.ingest(exports[0], store)
    seen: list[dict[str, int]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(_counts(sm.read_ledger(store)))
            except BaseException as exc:  # noqa: BLE001 - any failure of a read is the finding
                errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for p in exports[1:]:
            subprocess.run(_ingest_cmd(p, store), env=ENV, check=True, capture_output=True, timeout=120)
    finally:
        stop.set()
        t.join(timeout=60)
    assert errors == []
    manifests = [store_mod.json.loads((v / "manifest.json").read_text())["rows"] for v in (store / "versions").iterdir()
                 if not v.name.startswith(".")]
    assert len(manifests) == PARTS
    assert len(seen) >= 3
    assert all(counts in manifests for counts in seen), [c for c in seen if c not in manifests][:3]


def test_second_ingest_waits_then_fails_with_one_line(tmp_path, exports, capsys) -> None:
    """While another writer holds the lock, an ingest says it waits and gives up after --wait seconds (exit 75)."""
    store = tmp_path / "store"
    with store_mod.store_lock(store):
        t0 = time.monotonic()
        assert main(["ingest", str(exports[0]), "--into", str(store), "--wait", "0.5"]) == 75
        assert time.monotonic() - t0 >= 0.5
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"subs-model: {store}: another ingest is writing this store; waiting for it (up to 0.5 s)"
    assert err[1] == (f"subs-model: busy: {store}: another ingest still holds the store's lock after 0.5 s; "
                      "run again when it has finished, or give a longer --wait")
    assert not (store / "current").exists()
    assert main(["ingest", str(exports[0]), "--into", str(store)]) == 0  # the lock is free again


def test_killed_ingests_leave_old_or_new_version_and_no_debris(tmp_path, exports) -> None:
    """kill -9 at random moments of an ingest: `current` is the old or the new complete version; the next ingest
    removes what the dead one left and completes."""
    base_store = tmp_path / "base"
    base = store_mod.ingest(exports[0], base_store)
    probe = tmp_path / "probe"
    shutil.copytree(base_store, probe, symlinks=True)
    t0 = time.perf_counter()
    full = store_mod.ingest(exports[1], probe)  # how long an ingest takes here, and what it ends with
    duration = time.perf_counter() - t0
    rng = random.Random(16)
    script = "import sys; from subs_model.store import ingest; print('ready', flush=True); ingest(sys.argv[1], sys.argv[2])"
    outcomes = []
    for trial in range(6):
        store = tmp_path / f"s{trial}"
        shutil.copytree(base_store, store, symlinks=True)
        child = subprocess.Popen([sys.executable, "-c", script, str(exports[1]), str(store)], env=ENV,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, duration * 1.2))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        after = store_mod.content_hash(sm.read_ledger(store).tables())
        assert after in (base.hash, full.hash)
        outcomes.append(after == full.hash)
        again = store_mod.ingest(exports[1], store)
        assert again.hash == full.hash
        assert _debris(store) == []
        assert store_mod.content_hash(sm.read_ledger(store).tables()) == full.hash
    assert outcomes.count(False) >= 1, "no kill landed before the switch; the trial times are too long"


def test_ingest_writes_the_whole_quarantine_to_its_log(tmp_path) -> None:
    """An ingest streams the quarantine to store/log/ (CSV of every row, XLSX copy) and counts them all."""
    store = tmp_path / "store"
    res = store_mod.ingest(ROOT / "tests" / "data" / "nasty", store)
    want = sm.read_ledger(ROOT / "tests" / "data" / "nasty").quarantine
    assert res.quarantined == len(want) > 0
    csv = next((store / "log").glob("ingest-*-quarantine.csv"))
    back = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert len(back) == len(want)
    assert sorted(back["reason"]) == sorted(want["reason"].astype(str))
    assert csv.with_suffix(".xlsx").exists()
