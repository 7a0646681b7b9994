"""Ingestion speed: 1 M order rows + 1 M activation rows from CSV to a validated Ledger.

Compared in the same run with the obvious peer: ``pandas.read_csv`` and a per-row Python
validation of the same rules (ISO timestamps, stage order, amounts, required fields,
duplicate keys), checked to quarantine the same number of rows. The same export is also
written as a 1C-style export (cp1251, ``;``, ``dd.mm.yyyy HH:MM:SS``, ``3 200,00``, Russian
headers) and read with ``data/profiles/1c.yaml``; the ratio profile / plain is printed.

    python benchmarks/bench_ingest.py [--rows 1000000] [--keep /tmp/export]

Not a test: run it by hand on an otherwise idle machine.
"""

from __future__ import annotations

import subs_model

subs_model.tune_process()  # a benchmark owns its process: tuned before numpy and Arrow load

import argparse
import datetime as dt
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import subs_model as sm

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:[zZ]|[+-]\d{2}(?::?\d{2})?)?$")
AMOUNT = re.compile(r"^\d+(?:\.\d{1,2})?$")


def write_export(folder: Path, n: int, seed: int = 1) -> None:
    """A simulated ledger grown to ``n`` orders, written as CSV, with 0.1 % of rows broken."""
    beh = sm.Behaviour.from_yaml("data/behaviour.yaml").with_changes(arrivals_per_month=n / 150, legacy_licenses=0)
    led = sm.simulate(beh, sm.Catalog.default(), start="2021-01-01", end="2026-10-31", seed=seed)
    o = led.orders.head(n).copy()
    a = led.activations.head(n).copy()
    lic = led.licenses[led.licenses["license_id"].isin(set(o["license_id"]) | set(a["license_id"]))]
    rng = np.random.default_rng(seed)
    for col in ("requested_at", "invoiced_at", "paid_at", "ticket_at", "code_issued_at"):
        o[col] = o[col].dt.strftime("%Y-%m-%dT%H:%M:%S%z").str.replace(r"(\d\d)(\d\d)$", r"\1:\2", regex=True)
    a["activated_at"] = a["activated_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    bad = rng.choice(len(o), size=max(len(o) // 1000, 1), replace=False)
    o.loc[o.index[bad], "requested_at"] = "10.01.2026"
    folder.mkdir(parents=True, exist_ok=True)
    lic.to_csv(folder / "licenses.csv", index=False)
    o.to_csv(folder / "orders.csv", index=False)
    a.to_csv(folder / "activations.csv", index=False)


PROFILE_1C = Path("data/profiles/1c.yaml")


def write_1c(src: Path, dst: Path) -> None:
    """``src`` (the canonical CSV export) written as 1C writes it, with whole-column Arrow kernels."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from subs_model.ledger import TIMESTAMP_COLUMNS
    from subs_model.profiles import Profile

    prof = Profile.from_yaml(PROFILE_1C)
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("licenses", "orders", "activations"):
        t = pacsv.read_csv(src / f"{name}.csv", convert_options=pacsv.ConvertOptions(
            column_types={c: pa.large_string() for c in sm.ledger.COLUMNS[name]}, null_values=[""], strings_can_be_null=True))
        cols = {}
        for c in t.column_names:
            v = t[c].combine_chunks()
            if c in TIMESTAMP_COLUMNS:  # Moscow wall-clock time, dd.mm.yyyy HH:MM:SS
                local = pd.to_datetime(pd.Series(v.to_pandas()), format="ISO8601", utc=True, errors="coerce")
                local = pa.array(local.dt.tz_convert("Europe/Moscow").dt.tz_localize(None)).cast(pa.timestamp("s")).cast(pa.large_string())
                v = pc.if_else(pc.is_null(local), v, pc.replace_substring_regex(
                    local, r"^(\d{4})-(\d{2})-(\d{2}) (.*)$", r"\3.\2.\1 \4"))
            elif c == "amount_rub":  # 3 200,00 (NBSP between thousands)
                v = pc.replace_substring_regex(pc.replace_substring(v, ".", ","), r"^(\d{1,3})(\d{3}),", "\\1\u00a0\\2,")
            cols[c] = v
        back = {canon: header for header, canon in prof.columns[name].items()}
        df = pa.table(cols).to_pandas()
        df.rename(columns=back).to_csv(dst / prof.files[name], sep=";", index=False, encoding="cp1251")


def python_peer(folder: Path) -> int:
    """pandas.read_csv, then validate row by row in Python; returns the number of bad rows."""
    lic = pd.read_csv(folder / "licenses.csv", dtype=str)
    known = set(lic["license_id"])
    o = pd.read_csv(folder / "orders.csv", dtype=str, keep_default_na=False)
    a = pd.read_csv(folder / "activations.csv", dtype=str, keep_default_na=False)
    bad = 0
    seen: set[str] = set()
    stages = ("requested_at", "invoiced_at", "paid_at", "code_issued_at")
    for row in o.itertuples(index=False):
        ok = row.order_id and row.license_id in known and row.sku in ("subscription", "renewal", "upgrade")
        prev = None
        for s in stages:
            v = getattr(row, s)
            if not v:
                continue
            if not ISO.match(v):
                ok = False
                break
            t = dt.datetime.fromisoformat(v)
            if prev is not None and t < prev:
                ok = False
            prev = t
        if row.amount_rub and not AMOUNT.match(row.amount_rub):
            ok = False
        if row.order_id in seen:
            ok = False
        seen.add(row.order_id)
        bad += not ok
    for row in a.itertuples(index=False):
        ok = bool(row.code) and bool(row.activated_at) and ISO.match(row.activated_at) is not None
        bad += not ok
    return bad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="write the export here (once) and reuse it on later runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folder = args.keep or Path(d) / "export"
        if not (folder / "orders.csv").exists():
            write_export(folder, args.rows)
        n_o = sum(1 for _ in open(folder / "orders.csv")) - 1
        n_a = sum(1 for _ in open(folder / "activations.csv")) - 1
        n_l = sum(1 for _ in open(folder / "licenses.csv")) - 1
        rows = n_o + n_a + n_l  # every row read and validated
        t = time.perf_counter()
        led = sm.read_ledger(folder)
        t_us = time.perf_counter() - t  # first read in this process (cold allocator and thread pools)
        t = time.perf_counter()
        sm.read_ledger(folder)
        t_warm = time.perf_counter() - t  # the next monthly export read by the same process
        t = time.perf_counter()
        peer_bad = python_peer(folder)
        t_py = time.perf_counter() - t
        folder_1c = folder.parent / (folder.name + "-1c")
        if not (folder_1c / "заказы.csv").exists():
            write_1c(folder, folder_1c)
        t = time.perf_counter()
        led_1c = sm.read_ledger(folder_1c, profile=PROFILE_1C)
        t_1c = time.perf_counter() - t
    bad_1c = int(led_1c.load_summary.loc[led_1c.load_summary["reason"] == "", "quarantined"].sum())
    ours_bad = int(led.load_summary.loc[led.load_summary["reason"] == "", "quarantined"].sum())
    print(f"{n_o:,} order rows + {n_a:,} activation rows (+ {n_l:,} license rows) from CSV")
    print(f"  subs_model.read_ledger (pyarrow + pandera, every check): {t_us:6.2f} s = {rows / t_us / 1e6:5.2f} M rows/s "
          f"first read, {t_warm:5.2f} s = {rows / t_warm / 1e6:4.2f} M rows/s next read; {ours_bad:,} rows quarantined")
    print(f"  pandas.read_csv + per-row Python validation:           {t_py:6.2f} s = {rows / t_py / 1e6:5.2f} M rows/s, "
          f"{peer_bad:,} bad rows")
    print(f"  ratio: {t_py / t_us:.1f}x")
    print(f"  the same export in 1C form (cp1251, ';', dd.mm.yyyy HH:MM:SS, '3 200,00', Russian headers) with "
          f"--profile {PROFILE_1C}: {t_1c:6.2f} s = {rows / t_1c / 1e6:5.2f} M rows/s; {bad_1c:,} rows quarantined; "
          f"profile / plain (next read) = {t_1c / t_warm:.2f}")


if __name__ == "__main__":
    main()
