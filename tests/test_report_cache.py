"""The ledger a report run reads once and its notebooks share (subs_model.report_cache)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from subs_model import report_cache
from subs_model.io import read_ledger as read_files
from subs_model.report_cache import LEDGER_CACHE_ENV, read_ledger, source_stamp, store
from subs_model.resources import data_dir, notebooks_dir


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    dst = tmp_path / "ledger"
    shutil.copytree(data_dir() / "sample", dst)
    return dst


def _equal(a, b) -> None:
    for name, df in a.tables().items():
        pd.testing.assert_frame_equal(df, getattr(b, name))
    pd.testing.assert_frame_equal(a.load_summary, b.load_summary)


def test_outside_a_run_the_files_are_read(sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LEDGER_CACHE_ENV, raising=False)
    _equal(read_ledger(sample), read_files(sample))


def test_a_kept_ledger_is_returned_while_its_files_are_unchanged(sample: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = source_stamp(sample)
    led = read_files(sample)
    marked = dataclasses.replace(led, source="kept by the runner")  # tells the kept ledger from a fresh read
    store({str(sample): marked}, tmp_path / "kept", {str(sample): stamp})
    monkeypatch.setenv(LEDGER_CACHE_ENV, str(tmp_path / "kept"))
    got = read_ledger(sample)
    assert got.source == "kept by the runner"
    _equal(got, led)  # the same frames, dtypes and load summary as the files give


def test_a_changed_file_is_read_again(sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = source_stamp(sample)
    marked = dataclasses.replace(read_files(sample), source="kept by the runner")
    store({str(sample): marked}, tmp_path / "kept", {str(sample): stamp})
    monkeypatch.setenv(LEDGER_CACHE_ENV, str(tmp_path / "kept"))
    lic = pd.read_parquet(sample / "licenses.parquet")
    extra = lic.iloc[[-1]].assign(license_id="L-NEW")
    pd.concat([lic, extra], ignore_index=True).to_parquet(sample / "licenses.parquet", index=False)
    assert source_stamp(sample) != stamp
    got = read_ledger(sample)
    assert got.source != "kept by the runner"
    assert len(got.licenses) == len(marked.licenses) + 1


def test_a_touched_file_is_read_again(sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = source_stamp(sample)
    store({str(sample): dataclasses.replace(read_files(sample), source="kept")}, tmp_path / "kept", {str(sample): stamp})
    monkeypatch.setenv(LEDGER_CACHE_ENV, str(tmp_path / "kept"))
    st = (sample / "orders.parquet").stat()
    os.utime(sample / "orders.parquet", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same size, newer
    assert read_ledger(sample).source != "kept"


def test_a_broken_or_missing_keep_falls_back_to_the_files(sample: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    kept = tmp_path / "kept"
    store({str(sample): dataclasses.replace(read_files(sample), source="kept")}, kept, {str(sample): source_stamp(sample)})
    for pkl in kept.glob("*.pkl"):
        pkl.write_bytes(b"\x80\x05 half written")
    monkeypatch.setenv(LEDGER_CACHE_ENV, str(kept))
    assert read_ledger(sample).source != "kept"
    monkeypatch.setenv(LEDGER_CACHE_ENV, str(tmp_path / "no-such-folder"))
    _equal(read_ledger(sample), read_files(sample))


def test_nothing_is_kept_without_a_stamp(sample: Path, tmp_path: Path) -> None:
    store({str(sample): read_files(sample)}, tmp_path / "kept", {})
    assert not any((tmp_path / "kept").iterdir())


def test_the_stamp_follows_a_store_current_version(tmp_path: Path, sample: Path) -> None:
    store_dir = tmp_path / "store"
    (store_dir / "v1").mkdir(parents=True)
    for f in sample.iterdir():
        shutil.copy2(f, store_dir / "v1" / f.name)
    (store_dir / "current").symlink_to(store_dir / "v1")
    assert source_stamp(store_dir) == source_stamp(store_dir / "v1")
    assert source_stamp(store_dir) != source_stamp(sample)  # another folder: another stamp
    assert report_cache.source_stamp(tmp_path / "missing") == ""


def test_the_runner_keeps_each_ledger_once_in_a_private_folder(sample: Path, tmp_path: Path) -> None:
    from subs_model.reports import _Ledgers, _plan

    ledgers = _Ledgers()
    nb = notebooks_dir()
    steps = _plan(["01-cohort-overview", "02-renewal-timing"], nb, {"data": str(sample)}, {}, ledgers)
    folder = ledgers.keep(steps, tmp_path / "work")
    assert folder is not None and folder.parent == tmp_path / "work"
    assert oct(folder.stat().st_mode & 0o777) == oct(0o700)
    assert len(list(folder.glob("*.pkl"))) == 1  # two notebooks, one ledger
    assert ledgers.stamps[str(sample)] == source_stamp(sample)
