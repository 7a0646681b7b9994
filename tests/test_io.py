"""Ingestion: validation with quarantine, Moscow days, the idempotent store, formula-safe exports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import subs_model as sm
from subs_model import store as store_mod
from subs_model.cli import main
from subs_model.export import neutralise, write_table
from subs_model.io import QuarantineReason

ROOT = Path(__file__).resolve().parents[1]
NASTY = ROOT / "tests/data/nasty"


def _expected() -> set[tuple[str, int, str]]:
    rows = (x.split() for x in (NASTY / "expected.txt").read_text().splitlines() if x and not x.startswith("#"))
    return {(t, int(line), r) for t, line, r in rows}


def test_nasty_export_every_row_gets_exactly_its_reason() -> None:
    """Each bad row of the nasty export is quarantined with exactly its expected reason, no other row is."""
    led = sm.read_ledger(NASTY)
    got = {(r.table, r.line, r.reason) for r in led.quarantine.itertuples()}
    assert got == _expected()
    assert len(led.quarantine) == len(got), "one quarantine row per bad row"
    assert {r for _, _, r in got} == {r.value for r in QuarantineReason}, "the fixture covers every reason"
    assert len(QuarantineReason) >= 20


def test_rows_read_equal_accepted_plus_quarantined() -> None:
    """For every table: read = accepted + quarantined; the ledger holds accepted minus merged duplicates."""
    led = sm.read_ledger(NASTY)
    s = led.load_summary[led.load_summary["reason"] == ""].set_index("table")
    for table, df in led.tables().items():
        row = s.loc[table]
        assert row["read"] == row["accepted"] + row["quarantined"], table
        assert len(df) == row["accepted"] - row["merged"], table
    by_reason = led.load_summary[led.load_summary["reason"] != ""]
    assert by_reason.groupby("table")["quarantined"].sum().to_dict() == s["quarantined"][s["quarantined"] > 0].to_dict()


def test_quarantine_rows_name_file_line_column_and_keep_the_raw_row() -> None:
    """A quarantine row says where (file, line, column), why, how to fix, and keeps the raw values."""
    q = sm.read_ledger(NASTY).quarantine.set_index(["table", "line"])
    row = q.loc[("orders", 8)]
    assert row["file"].endswith("orders.csv") and row["column"] == "amount_rub" and row["reason"] == "too_many_decimals"
    assert "amount_rub=4000.005" in row["raw"] and "kopecks" in row["message"]
    assert q.loc[("orders", 29), "message"] == "the renewal order it upgrades was quarantined"


def test_rule_violations_stay_in_the_ledger_for_the_replay() -> None:
    """An unknown code is not bad input: the row is accepted and the replay rejects it."""
    led = sm.read_ledger(NASTY)
    assert "C99" in set(led.activations["code"])
    rep = sm.replay(led, as_of="2026-12-31")
    assert ("C99", "unknown_code") in set(zip(rep.rejections["code"], rep.rejections["reason"]))


def test_raise_mode_fails_on_the_first_bad_row() -> None:
    """on_bad_rows='raise' names file, line, column and reason."""
    with pytest.raises(sm.LedgerError, match=r"activations.csv: line 4, column activated_at: activation_without_timestamp"):
        sm.read_ledger(NASTY, on_bad_rows="raise")


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"licenses.csv": "license_id,edition\nL1,full\n"}, "missing table"),
        ({"orders.csv": "order_id,license_id\nO1,L1\n"}, r"orders.csv: missing required column\(s\) \['sku', 'code', 'code_issued_at'\]"),
        ({"licenses.csv": "license_id,edition,colour\nL1,full,red\n"}, r"unknown column\(s\) \['colour'\]"),
        ({"invoices.csv": "x\n1\n"}, "unknown table 'invoices'"),
        ({"licenses.csv": b"\xff\xfe\x00bad"}, "cannot read table 'licenses'"),
    ],
)
def test_whole_file_problems_raise_naming_the_file(tmp_path, files, match) -> None:
    """A missing table or column, an unknown column or table, an unreadable file: a clear error."""
    base = {
        "licenses.csv": "license_id,customer_id,edition\nL1,K1,full\n",
        "orders.csv": "order_id,license_id,sku,code,code_issued_at\n",
        "activations.csv": "code,license_id,activated_at\n",
    }
    if "missing table" in match:
        base = {}
    base.update(files)
    for name, text in base.items():
        (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(sm.LedgerError, match=match):
        sm.read_ledger(tmp_path)


TZ_CASES = [
    ("2026-03-15T22:30:00Z", "2026-03-16"),
    ("2026-03-15T23:30:00+03:00", "2026-03-15"),
    ("2026-03-15T23:30:00", "2026-03-15"),
    ("2013-06-01T20:30:00+04:00", "2013-06-01"),
    ("2013-06-01T20:30:00Z", "2013-06-02"),
]


def _tz_ledger(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "licenses.csv").write_text("license_id,customer_id,edition\nL1,K1,full\n")
    rows = "\n".join(f"O{i},L1,subscription,2010-01-01T00:00:00,2010-01-01T00:00:00,2010-01-01T00:00:00,,2010-01-01T00:00:00,A{i},4000,C{i},"
                     for i in range(len(TZ_CASES)))
    (folder / "orders.csv").write_text("order_id,license_id,sku,requested_at,invoiced_at,paid_at,ticket_at,code_issued_at,act_number,amount_rub,code,upgrade_of_act\n" + rows + "\n")
    acts = "\n".join(f"C{i},L1,{stamp}" for i, (stamp, _) in enumerate(TZ_CASES))
    (folder / "activations.csv").write_text("code,license_id,activated_at\n" + acts + "\n")
    return folder


def test_timestamps_become_moscow_days(tmp_path) -> None:
    """Z and offsets are converted, naive is Moscow, 2013 (+04:00) honoured: each activation's Moscow day."""
    led = sm.read_ledger(_tz_ledger(tmp_path / "x"))
    days = led.activations["activated_at"].dt.tz_convert("Europe/Moscow").dt.strftime("%Y-%m-%d").tolist()
    assert days == [d for _, d in TZ_CASES]


def test_outputs_identical_under_process_time_zones(tmp_path) -> None:
    """Reading and replaying gives the same result under TZ=UTC and TZ=America/Los_Angeles."""
    folder = _tz_ledger(tmp_path / "x")
    code = (
        "import subs_model as sm; led = sm.read_ledger(r'%s'); rep = sm.replay(led, as_of='2030-01-01');"
        "print(led.activations.to_csv()); print(rep.periods.to_csv())" % folder
    )
    outs = []
    for tz in ("UTC", "America/Los_Angeles"):
        env = {**os.environ, "TZ": tz}
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert outs[0] == outs[1]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_ingest_twice_same_hash_and_nothing_written(tmp_path) -> None:
    """Ingesting the same export twice changes nothing: same content hash, no new version."""
    store = tmp_path / "store"
    first = store_mod.ingest(ROOT / "tests/data/handmade", store)
    assert first.changed and first.added["orders"] == 59
    second = store_mod.ingest(ROOT / "tests/data/handmade", store)
    assert not second.changed and second.hash == first.hash
    assert sum(second.added.values()) == 0
    assert len(list((store / "versions").iterdir())) == 1
    back = sm.read_ledger(store)  # reads the current version
    assert len(back.orders) == 59 and len(back.quarantine) == 0


def test_conflicting_reexport_reported_and_not_applied(tmp_path) -> None:
    """A row with a known key but different content is a conflict: reported, store unchanged."""
    store = tmp_path / "store"
    base = store_mod.ingest(ROOT / "tests/data/handmade", store)
    raw = _copy(ROOT / "tests/data/handmade", tmp_path / "raw")
    o = pd.read_csv(raw / "orders.csv", dtype=str)
    o.loc[0, "amount_rub"] = "3999.00"
    o.to_csv(raw / "orders.csv", index=False)
    res = store_mod.ingest(raw, store)
    assert not res.changed and res.hash == base.hash
    assert res.conflicts[["table", "key", "columns"]].values.tolist() == [["orders", "ORD-00001", "amount_rub"]]
    assert main(["ingest", str(raw), "--into", str(store)]) == 1


def test_progressed_order_fills_empty_fields(tmp_path) -> None:
    """An order that later got its code (fields that were empty) is applied as an update, not a conflict."""
    store = tmp_path / "store"
    raw = _copy(ROOT / "tests/data/handmade", tmp_path / "raw")
    o = pd.read_csv(raw / "orders.csv", dtype=str)
    pending = o["code_issued_at"].isna()
    store_mod.ingest(raw, store)
    o.loc[pending.idxmax(), ["code_issued_at", "code"]] = ["2026-06-25T10:00:00", "KS5-NEW"]
    o.to_csv(raw / "orders.csv", index=False)
    res = store_mod.ingest(raw, store)
    assert res.changed and res.updated["orders"] == 1 and len(res.conflicts) == 0
    assert "KS5-NEW" in set(sm.read_ledger(store).orders["code"])


def test_crash_mid_write_leaves_previous_store_intact(tmp_path, monkeypatch) -> None:
    """If writing the new version dies half-way, `current` still points at the old, complete version."""
    store = tmp_path / "store"
    base = store_mod.ingest(ROOT / "tests/data/handmade", store)
    before = {p.name: p.read_bytes() for p in (store / "current").iterdir()}
    raw = _copy(ROOT / "tests/data/handmade", tmp_path / "raw")
    lic = pd.read_csv(raw / "licenses.csv", dtype=str)
    pd.concat([lic, pd.DataFrame([{"license_id": "L999", "customer_id": "K999", "edition": "full"}])]).to_csv(raw / "licenses.csv", index=False)
    real = pd.DataFrame.to_parquet
    calls = {"n": 0}

    def dying(self, path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("power cut")
        return real(self, path, *a, **k)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", dying)
    with pytest.raises(KeyboardInterrupt):
        store_mod.ingest(raw, store)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    assert {p.name: p.read_bytes() for p in (store / "current").iterdir()} == before
    assert store_mod.content_hash(sm.read_ledger(store).tables()) == base.hash
    again = store_mod.ingest(raw, store)  # and the next run completes
    assert again.changed and again.added["licenses"] == 1


INJECTIONS = [
    "=1+1", "=CMD|' /C calc'!A0", "+1+1", "-1+1", "@SUM(A1:A2)", "\t=1", "\r=1", "=HYPERLINK(\"http://x\")",
    "+cmd|'/c notepad'!A1", "-2+3", "@cmd", "=A1", "==1", "=+1", "+=1", "-=1", "@=1", "\t@x", "\rabc", "=1;=2",
    "=IMPORTXML(1)", "+\t1",
]


def test_formula_injection_neutralised_in_csv_and_xlsx(tmp_path) -> None:
    """Every text cell a spreadsheet would run as a formula comes out quoted, in CSV and XLSX alike."""
    df = pd.DataFrame({"raw": INJECTIONS, "n": range(len(INJECTIONS))})
    csv, xlsx = write_table(df, tmp_path / "q")
    back = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert len(back) == len(INJECTIONS), "a carriage return must not split a row"
    assert all(v.startswith("'") for v in back["raw"])
    ws = openpyxl.load_workbook(xlsx).active
    values = [ws.cell(row=i + 2, column=1).value for i in range(len(INJECTIONS))]
    assert all(isinstance(v, str) and v.startswith("'") for v in values)
    assert [ws.cell(row=i + 2, column=1).data_type for i in range(len(INJECTIONS))] == ["s"] * len(INJECTIONS)
    assert neutralise(pd.DataFrame({"x": ["safe", "a=b"]}))["x"].tolist() == ["safe", "a=b"]


def test_validate_cli_exit_codes_and_outputs(tmp_path, capsys) -> None:
    """validate: 1 with quarantine (CSV and XLSX written), 0 when clean, 2 on a file error."""
    assert main(["validate", str(NASTY), "--out", str(tmp_path / "q")]) == 1
    out = capsys.readouterr().out
    assert "too_many_decimals" in out and "Price variances" in out
    assert {p.name for p in (tmp_path / "q").iterdir()} == {"quarantine.csv", "quarantine.xlsx"}
    assert main(["validate", str(ROOT / "tests/data/handmade"), "--out", str(tmp_path / "q2")]) == 0
    assert main(["validate", str(tmp_path / "nope")]) == 2

