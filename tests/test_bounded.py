"""Hostile input in bounded work: garbage exports, out-of-range values, the XLSX row cap."""

from __future__ import annotations

import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import subs_model as sm
from subs_model.parsing import amount_reasons
from subs_model.cli import main
from subs_model.export import write_table, xlsx_note

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_ingest import write_garbage  # noqa: E402

HEADER = "order_id,license_id,sku,requested_at,invoiced_at,paid_at,ticket_at,code_issued_at,act_number,amount_rub,code,upgrade_of_act\n"


def _export(folder: Path, orders: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "licenses.csv").write_text("license_id,customer_id,edition\nL1,K1,full\n")
    (folder / "orders.csv").write_text(HEADER + "".join(o + "\n" for o in orders))
    (folder / "activations.csv").write_text("code,license_id,activated_at\n")
    return folder


@pytest.mark.parametrize("stamp", ["1677-01-01T10:00:00", "2262-12-31T10:00:00+03:00", "1677-09-21T00:00:00Z", "2262-04-11T23:59:59"])
def test_timestamps_outside_nanoseconds_are_bad_timestamp(tmp_path, stamp) -> None:
    """A year 1677 or 2262 timestamp is quarantined as bad_timestamp, not a traceback."""
    led = sm.read_ledger(_export(tmp_path / "x", [f"O1,L1,subscription,{stamp},,,,,,,,", "O2,L1,subscription,2026-01-01T10:00:00,,,,,,,,"]))
    q = led.quarantine
    assert q[["line", "column", "reason"]].values.tolist() == [[2, "requested_at", "bad_timestamp"]]
    assert q["message"].iloc[0] == "not an ISO 8601 timestamp from 1678-01-01 to 2261-12-31 (e.g. 2026-03-15T10:00:00+03:00); day/month order is never guessed"
    assert list(led.orders["order_id"]) == ["O2"]


@pytest.mark.parametrize(("amount", "reason"), [
    ("100000000000000000000", "amount_out_of_range"), ("100000000000000000000.50", "amount_out_of_range"),
    ("99999999999999999", "amount_out_of_range"), ("9999999999999999.99", None), ("00000000000000000001.00", None),
    ("-100000000000000000000", "negative_amount"), ("100000000000000000000.001", "too_many_decimals"),
])
def test_huge_amounts_are_quarantined_not_overflowed(tmp_path, amount, reason) -> None:
    """An amount with more than 16 ruble digits is amount_out_of_range; up to 16 digits it is exact kopecks."""
    row = f"O1,L1,subscription,2026-01-01T10:00:00,2026-01-01T11:00:00,2026-01-01T12:00:00,,2026-01-01T13:00:00,A1,{amount},C1,"
    led = sm.read_ledger(_export(tmp_path / "x", [row]))
    if reason is None:
        assert len(led.quarantine) == 0
        kop = amount_reasons(pd.Series([amount], dtype="str"))[0][0]
        whole, _, frac = amount.partition(".")
        assert kop == int(whole) * 100 + int((frac + "00")[:2])
    else:
        assert led.quarantine[["column", "reason"]].values.tolist() == [["amount_rub", reason]]
    if reason == "amount_out_of_range":
        assert led.quarantine["message"].iloc[0] == "amount is over 9999999999999999.99 rubles (16 digits before the point); check the value"


def test_garbage_export_keeps_the_invariant_streams_the_csv_and_caps_the_xlsx(tmp_path, capsys) -> None:
    """120 k garbage rows: read = accepted + quarantined, every bad row in the CSV, the XLSX capped with a note."""
    folder = tmp_path / "g"
    kinds = write_garbage(folder, 120_000, seed=3)
    assert min(kinds.values()) > 1000, "every kind of garbage is there"
    led = sm.read_ledger(folder)
    s = led.load_summary[led.load_summary["reason"] == ""].set_index("table")
    assert (s["read"] == s["accepted"] + s["quarantined"]).all()
    assert s.loc["orders", "read"] == 120_000
    n = len(led.quarantine)
    assert n == s["quarantined"].sum() > 100_000
    got = set(led.quarantine["reason"])
    assert {"bad_timestamp", "amount_out_of_range", "non_numeric_amount", "empty_required", "duplicate_order_id",
            "unknown_license", "stage_out_of_order", "stage_missing", "duplicate_code", "references_quarantined"} <= got
    csv, xlsx = write_table(led.quarantine, tmp_path / "q" / "quarantine", sheet="quarantine", xlsx_max_rows=50_000, chunk_rows=7_000)
    back = pd.read_csv(csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(back) == n
    assert back["line"].astype(int).tolist() == led.quarantine["line"].tolist()
    formula = back["raw"].str.contains("=HYPERLINK")
    assert formula.any() and not back["license_id" if "license_id" in back else "raw"].str.startswith("=").any()
    wb = openpyxl.load_workbook(xlsx, read_only=True)
    assert wb.sheetnames == ["quarantine", "note"]
    rows = list(wb["quarantine"].iter_rows(values_only=True))
    assert len(rows) == 50_001 and list(rows[0]) == list(led.quarantine.columns)
    assert rows[-1][1] == led.quarantine["line"].iloc[49_999]
    assert next(wb["note"].iter_rows(values_only=True))[0] == f"the XLSX holds the first 50,000 rows; {n - 50_000:,} more are in quarantine.csv"


def test_validate_cli_says_how_many_rows_are_only_in_the_csv(tmp_path, capsys, monkeypatch) -> None:
    """validate prints the XLSX cap line when the quarantine is longer than the sheet."""
    from subs_model import export

    monkeypatch.setattr(export.write_table, "__kwdefaults__", {**export.write_table.__kwdefaults__, "xlsx_max_rows": 10})
    monkeypatch.setattr(export, "XLSX_MAX_ROWS", 10)
    monkeypatch.setattr(export.xlsx_note, "__defaults__", (10,))
    assert main(["validate", str(ROOT / "tests/data/nasty"), "--out", str(tmp_path / "q")]) == 1
    n = len(sm.read_ledger(ROOT / "tests/data/nasty").quarantine)
    assert f"  (the XLSX holds the first 10 rows; {n - 10:,} more are in quarantine.csv)" in capsys.readouterr().out


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=20), st.integers(1, 25))
def test_xlsx_holds_the_first_rows_as_text_any_cap(tmp_path_factory, values, cap) -> None:
    """Any text (control characters, markup, formulas) comes back from the XLSX as written, safe, up to the cap."""
    d = tmp_path_factory.mktemp("x")
    df = pd.DataFrame({"v": values, "n": range(len(values))})
    csv, xlsx = write_table(df, d / "t", xlsx_max_rows=cap, chunk_rows=3)
    ws = openpyxl.load_workbook(xlsx).worksheets[0]
    got = [r for r in ws.iter_rows(min_row=2, values_only=True)]
    assert [r[1] for r in got] == list(range(min(cap, len(values))))
    safe = sm.export.neutralise(df)["v"].tolist()
    for (v, _), want in zip(got, safe, strict=False):
        clean = "".join(ch if ch in "\t\n\r" or ord(ch) >= 32 else "\ufffd" for ch in want)
        assert (v or "") == clean
    assert (len(openpyxl.load_workbook(xlsx).sheetnames) == 2) == (len(values) > cap)
    assert xlsx_note(len(values), "t.csv", cap) == ("" if len(values) <= cap else f"the XLSX holds the first {cap:,} rows; {len(values) - cap:,} more are in t.csv")


def test_streamed_read_gives_the_whole_reads_ledger_and_quarantine(tmp_path, monkeypatch) -> None:
    """quarantine_to on a garbage export read in chunks: same summary, accepted rows and quarantine CSV; the head in memory."""
    from subs_model import io

    folder = tmp_path / "g"
    write_garbage(folder, 40_000, seed=5)
    head, body = (folder / "orders.csv").read_text().split("\n", 1)
    same = "Z1,L1,renewal,2021-01-02T09:00:00,,,,,,,,\n"  # identical duplicates in the first and last chunks
    (folder / "orders.csv").write_text(head + "\n" + same + body + same + "O8,L1,renewal,2021-01-02T09:00:00,,,,,,,,\n"
                                       "Z2,L1,renewal, 2021-01-02T09:00:00,,,,,,,,\nZ2,L1,renewal,2021-01-02T09:00:00,,,,,,,, \n")
    whole = sm.read_ledger(folder)
    write_table(whole.quarantine, tmp_path / "whole" / "quarantine", xlsx=False)
    monkeypatch.setattr(io, "_STREAM_BYTES", 0)
    monkeypatch.setattr(io, "_CHUNK_ROWS", 7_000)
    calls = []
    from subs_model import sources

    batches = sources.csv_batches
    monkeypatch.setattr(sources, "csv_batches", lambda *a: calls.append(a) or batches(*a))
    led = sm.read_ledger(folder, quarantine_to=tmp_path / "s" / "quarantine", quarantine_head=5_000)
    assert len(calls) == 2, "orders were read twice in chunks"
    pd.testing.assert_frame_equal(led.load_summary, whole.load_summary)
    s = led.load_summary[led.load_summary["reason"] == ""]
    assert (s["read"] == s["accepted"] + s["quarantined"]).all() and s["merged"].sum() > 0
    for t in ("licenses", "orders", "activations"):
        pd.testing.assert_frame_equal(getattr(led, t), getattr(whole, t))
    assert (tmp_path / "s" / "quarantine.csv").read_bytes() == (tmp_path / "whole" / "quarantine.csv").read_bytes()
    assert len(led.quarantine) == 5_000 < len(whole.quarantine)
    for c in led.quarantine.columns:
        assert led.quarantine[c].astype(str).tolist() == whole.quarantine[c].iloc[:5_000].astype(str).tolist()
    assert not list((tmp_path / "s").glob(".*")), "no partial file left"


def test_quarantine_to_writes_the_csv_of_a_small_read_too(tmp_path) -> None:
    """Below the streaming size the whole quarantine is written as well, and nothing when no row is bad."""
    led = sm.read_ledger(ROOT / "tests/data/nasty", quarantine_to=tmp_path / "q" / "quarantine", quarantine_head=3)
    back = pd.read_csv(tmp_path / "q" / "quarantine.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    total = led.load_summary.loc[led.load_summary["reason"] == "", "quarantined"].sum()
    assert len(back) == total > 3 and len(led.quarantine) == 3
    sm.read_ledger(ROOT / "data/sample", quarantine_to=tmp_path / "clean" / "quarantine")
    assert not (tmp_path / "clean").exists() or not list((tmp_path / "clean").iterdir())
