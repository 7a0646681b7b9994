"""Ingestion speed: 1 M order rows + 1 M activation rows from CSV to a validated Ledger.

Compared in the same run with the obvious peer: ``pandas.read_csv`` and a per-row Python
validation of the same rules (ISO timestamps, stage order, amounts, required fields,
duplicate keys), checked to quarantine the same number of rows. The same export is also
written as a 1C-style export (cp1251, ``;``, ``dd.mm.yyyy HH:MM:SS``, ``3 200,00``, Russian
headers) and read with ``data/profiles/1c.yaml``; the ratio profile / plain is printed.

    python benchmarks/bench_ingest.py [--rows 1000000] [--keep /tmp/export]
    python benchmarks/bench_ingest.py --garbage 5000000 [--keep /tmp/garbage]

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


#: The kinds of bad order rows in the garbage export, each with its share of the rows.
GARBAGE_KINDS = {
    "ok": 5, "bad_timestamp": 10, "year_1677": 3, "year_2262": 3, "non_numeric_amount": 8, "negative_amount": 4,
    "too_many_decimals": 4, "amount_1e20": 3, "empty_order_id": 6, "empty_sku": 4, "unknown_sku": 5,
    "duplicate_order_id": 8, "unknown_license": 8, "stage_out_of_order": 8, "stage_missing": 5, "act_missing": 3,
    "ticket_on_non_upgrade": 3, "upgrade_without_target": 3, "duplicate_code": 3, "formula": 3,
}


def write_garbage(folder: Path, n: int, seed: int = 1, licenses: int = 1000) -> dict[str, int]:
    """A hostile export: ``n`` order rows of varied garbage, small valid licenses/activations.

    Built column by column with Arrow (no Python object per row) so millions of rows take
    seconds. Returns the number of order rows of each kind.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    names = list(GARBAGE_KINDS)
    share = np.array(list(GARBAGE_KINDS.values()), float)
    kind = rng.choice(len(names), size=n, p=share / share.sum())
    k = {name: kind == i for i, name in enumerate(names)}
    idx = pa.array(np.arange(n))
    ids = pc.cast(idx, pa.string())

    def pref(prefix: str, arr=ids):
        return pc.binary_join_element_wise(prefix, arr, "")

    def put(arr, mask, value):
        return pc.if_else(pa.array(mask), pa.scalar(value, pa.string()) if isinstance(value, str) else value, arr)

    day = rng.integers(0, 1500, n)
    base = np.datetime64("2021-01-01T09:00:00") + day.astype("timedelta64[D]")

    def stamp(hours: int):
        return pc.strftime(pa.array(base + np.timedelta64(hours, "h")), format="%Y-%m-%dT%H:%M:%S")

    lic = pref("L", pa.array(rng.integers(0, licenses, n)).cast(pa.string()))
    cols = {
        "order_id": pref("O"), "license_id": lic,
        "sku": pa.array(np.array(["subscription", "renewal"])[rng.integers(0, 2, n)]),
        "requested_at": stamp(0), "invoiced_at": stamp(1), "paid_at": stamp(2), "ticket_at": pa.nulls(n, pa.string()),
        "code_issued_at": stamp(3), "act_number": pref("A"), "amount_rub": pa.array(np.array(["4000.00", "3200"])[rng.integers(0, 2, n)]),
        "code": pref("C"), "upgrade_of_act": pa.nulls(n, pa.string()),
    }
    bad_ts = pa.array(np.array(["10.01.2026", "2026-13-45T00:00:00", "yesterday", "2026-02-30T10:00:00", "20260101"])[rng.integers(0, 5, n)])
    cols["requested_at"] = put(cols["requested_at"], k["bad_timestamp"], bad_ts)
    cols["invoiced_at"] = put(cols["invoiced_at"], k["year_1677"], "1677-01-01T00:00:00")
    cols["paid_at"] = put(cols["paid_at"], k["year_2262"], "2262-12-31T00:00:00+03:00")
    odd = pa.array(np.array(["3 200,00 руб", "abc", "4000р", "", "1e3"])[rng.integers(0, 5, n)])
    cols["amount_rub"] = put(cols["amount_rub"], k["non_numeric_amount"], odd)
    cols["amount_rub"] = put(cols["amount_rub"], k["negative_amount"], "-4000.00")
    cols["amount_rub"] = put(cols["amount_rub"], k["too_many_decimals"], "4000.005")
    cols["amount_rub"] = put(cols["amount_rub"], k["amount_1e20"], "100000000000000000000")
    cols["order_id"] = pc.if_else(pa.array(k["empty_order_id"]), pa.scalar(None, pa.string()), cols["order_id"])
    cols["sku"] = pc.if_else(pa.array(k["empty_sku"]), pa.scalar(None, pa.string()), cols["sku"])
    cols["sku"] = put(cols["sku"], k["unknown_sku"], "bonus")
    dup_of = pa.array(np.maximum(np.arange(n) - 1, 0)).cast(pa.string())
    cols["order_id"] = put(cols["order_id"], k["duplicate_order_id"], pref("O", dup_of))
    cols["license_id"] = put(cols["license_id"], k["unknown_license"], pref("X", ids))
    cols["invoiced_at"] = put(cols["invoiced_at"], k["stage_out_of_order"], "2020-01-01T00:00:00")
    cols["invoiced_at"] = pc.if_else(pa.array(k["stage_missing"]), pa.scalar(None, pa.string()), cols["invoiced_at"])
    cols["act_number"] = pc.if_else(pa.array(k["act_missing"]), pa.scalar(None, pa.string()), cols["act_number"])
    cols["ticket_at"] = put(cols["ticket_at"], k["ticket_on_non_upgrade"], stamp(2))
    cols["sku"] = put(cols["sku"], k["upgrade_without_target"], "upgrade")
    cols["code"] = put(cols["code"], k["duplicate_code"], "C-SAME")
    cols["license_id"] = put(cols["license_id"], k["formula"], "=HYPERLINK(\"http://x\",\"y\")")
    folder.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(pa.table(cols), folder / "orders.csv.body", pacsv.WriteOptions(include_header=False))
    with open(folder / "orders.csv", "wb") as out, open(folder / "orders.csv.body", "rb") as body:
        out.write((",".join(cols) + "\n").encode())
        while chunk := body.read(1 << 24):
            out.write(chunk)
    (folder / "orders.csv.body").unlink()
    lic_ids = [f"L{i}" for i in range(licenses)]
    pd.DataFrame({"license_id": lic_ids, "customer_id": [f"K{i}" for i in range(licenses)],
                  "edition": ["full"] * licenses}).to_csv(folder / "licenses.csv", index=False)
    m = min(n, 1000)
    pd.DataFrame({"code": [f"C{i}" for i in range(m)], "license_id": [lic_ids[0]] * m,
                  "activated_at": ["2026-01-01T10:00:00"] * m}).to_csv(folder / "activations.csv", index=False)
    return {name: int(v.sum()) for name, v in k.items()}


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


def garbage(rows: int, keep: Path | None) -> None:
    """``subs-model validate`` on a garbage export in a child process: wall time and its peak RSS."""
    import resource
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as d:
        folder = keep or Path(d) / "garbage"
        if not (folder / "orders.csv").exists():
            t = time.perf_counter()
            kinds = write_garbage(folder, rows)
            print(f"wrote {rows:,} garbage order rows in {time.perf_counter() - t:.1f} s: "
                  + ", ".join(f"{k} {v:,}" for k, v in kinds.items()))
        out = Path(d) / "quarantine"
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "subs_model.cli", "validate", str(folder), "--out", str(out)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux
        lines = proc.stdout.splitlines()
        print("\n".join(lines[: lines.index("Quarantined rows by reason:")] if "Quarantined rows by reason:" in lines else lines[:6]))
        print("\n".join(x for x in lines if "XLSX holds" in x or "Quarantine written" in x))
        sizes = {p.name: p.stat().st_size / 1e6 for p in out.iterdir()} if out.exists() else {}
        print(f"  validate (exit {proc.returncode}): {wall:.1f} s, peak RSS {peak:,.0f} MB; "
              + ", ".join(f"{k} {v:,.0f} MB" for k, v in sizes.items()))
        if proc.returncode not in (0, 1):
            print(proc.stderr[-2000:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="write the export here (once) and reuse it on later runs")
    ap.add_argument("--garbage", type=int, metavar="ROWS", help="instead: validate a garbage orders.csv of ROWS rows "
                    "(e.g. 5000000) in a child process and print its time and peak RSS")
    args = ap.parse_args()
    if args.garbage:
        garbage(args.garbage, args.keep)
        return
    with tempfile.TemporaryDirectory() as d:
        folder = args.keep or Path(d) / "export"
        if not (folder / "orders.csv").exists():
            write_export(folder, args.rows)
        n_o = sum(1 for _ in open(folder / "orders.csv")) - 1
        n_a = sum(1 for _ in open(folder / "activations.csv")) - 1
        n_l = sum(1 for _ in open(folder / "licenses.csv")) - 1
        rows = n_o + n_a + n_l  # every row read and validated
        read_ledger = sm.read_ledger  # the package imports lazily: load the reading modules before timing
        t = time.perf_counter()
        led = read_ledger(folder)
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
