"""Ingestion: validation with quarantine, Moscow days, the idempotent store, formula-safe exports."""

from __future__ import annotations

import csv as csv_module
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



# --- Exports as they really come: schema types, null markers, one whitespace policy (issue 16) ---

HANDMADE = ROOT / "tests/data/handmade"


def _small_export(folder: Path, licenses: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "licenses.csv").write_text(licenses, encoding="utf-8")
    (folder / "orders.csv").write_text("order_id,license_id,sku,code,code_issued_at\n", encoding="utf-8")
    (folder / "activations.csv").write_text("code,license_id,activated_at\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("quoting", [csv_module.QUOTE_ALL, csv_module.QUOTE_NONNUMERIC, csv_module.QUOTE_MINIMAL])
def test_quoted_header_still_reads_every_column_as_text(tmp_path, quoting) -> None:
    """A header written with QUOTE_ALL / QUOTE_NONNUMERIC keeps ids as text: 00777 stays 00777, 0001 stays 0001."""
    folder = _small_export(tmp_path, "")
    with (folder / "licenses.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv_module.writer(fh, quoting=quoting)
        w.writerow(["license_id", "customer_id", "edition"])
        w.writerows([["00777", "0001", "full"], ["1e3", "007", "basic"]])
    led = sm.read_ledger(folder)
    assert led.licenses["license_id"].tolist() == ["00777", "1e3"]
    assert led.licenses["customer_id"].tolist() == ["0001", "007"]


def test_product_write_table_output_reads_back_byte_for_byte(tmp_path) -> None:
    """The product's own write_table (UTF-8 BOM, QUOTE_NONNUMERIC header) reads back with the same ids."""
    folder = _small_export(tmp_path, "")
    lic = pd.DataFrame({"license_id": ["00777", "0001"], "customer_id": ["00", "K 1"], "edition": ["full", "basic"]})
    write_table(lic, folder / "licenses")
    (folder / "licenses.xlsx").unlink()
    led = sm.read_ledger(folder)
    assert led.licenses["license_id"].tolist() == ["00777", "0001"] and led.licenses["customer_id"].tolist() == ["00", "K 1"]


NULL_MARKERS = ["NA", "NULL", "N/A", "null", "nan", "None", "NaN", "n/a", "#N/A", "-"]


def test_null_markers_are_text_only_an_empty_field_is_missing(tmp_path) -> None:
    """NA, NULL, N/A, null, nan, None … are ids like any other; an empty field is the only missing value."""
    rows = "".join(f"{m},{m},full\n" for m in NULL_MARKERS)
    led = sm.read_ledger(_small_export(tmp_path, "license_id,customer_id,edition\n" + rows + "L1,,full\n"))
    assert led.licenses["license_id"].tolist() == [*NULL_MARKERS, "L1"]
    assert led.licenses["customer_id"].iloc[:-1].tolist() == NULL_MARKERS
    assert pd.isna(led.licenses["customer_id"].iloc[-1])
    assert len(led.quarantine) == 0


def test_duplicate_column_names_are_a_one_line_error(tmp_path) -> None:
    """A header naming a column twice: a LedgerError naming the file, the column and the fix (no traceback)."""
    folder = _small_export(tmp_path, "license_id,customer_id,license_id,edition\nL1,K1,L1,full\n")
    msg = (f"{folder / 'licenses.csv'}: the header has column 'license_id' twice (columns 1 and 3) in table 'licenses'; "
           f"keep one and delete or rename the other")
    with pytest.raises(sm.LedgerError) as exc:
        sm.read_ledger(folder)
    assert str(exc.value) == msg
    assert main(["validate", str(folder), "--out", str(tmp_path / "q")]) == 2


def _spaced(src: Path, dst: Path) -> Path:
    """The handmade export with white space around ids: ``L001 `` everywhere and a trailing NBSP after codes."""
    shutil.copytree(src, dst)
    for name, cols in (("licenses", {"license_id": " {}"}), ("orders", {"license_id": "{} ", "code": "{}\u00a0"}),
                       ("activations", {"license_id": "{}\t", "code": "\u2007{}\u202f"})):
        df = pd.read_csv(dst / f"{name}.csv", dtype=str, keep_default_na=False)
        for c, fmt in cols.items():
            df[c] = df[c].where(df[c] == "", df[c].map(fmt.format))
        df.to_csv(dst / f"{name}.csv", index=False)
    return dst


def test_whitespace_around_ids_is_trimmed_so_the_replay_sees_the_validated_ids(tmp_path) -> None:
    """`L001 `, NBSP after a code, tabs, U+2007/U+202F: trimmed at ingestion, counted, and the replay is the clean one's."""
    clean = sm.read_ledger(HANDMADE)
    spaced = sm.read_ledger(_spaced(HANDMADE, tmp_path / "spaced"))
    for name, df in clean.tables().items():
        pd.testing.assert_frame_equal(spaced.tables()[name], df, check_like=False)
    s = spaced.load_summary[spaced.load_summary["reason"] == ""].set_index("table")["trimmed"]
    o = pd.read_csv(HANDMADE / "orders.csv", dtype=str)
    assert s.to_dict() == {"activations": 2 * len(clean.activations), "features": 0, "legacy_periods": 0,
                           "licenses": len(clean.licenses), "orders": len(o) + int(o["code"].notna().sum())}
    assert clean.load_summary["trimmed"].sum() == 0
    a, b = sm.replay(clean, as_of="2026-10-31"), sm.replay(spaced, as_of="2026-10-31")
    assert int(b.active_on("2026-10-31").sum()) == int(a.active_on("2026-10-31").sum()) > 0
    for name in ("periods", "codes", "rejections"):
        pd.testing.assert_frame_equal(getattr(b, name), getattr(a, name))
    bad = b.rejections["reason"].isin(["wrong_license", "unknown_code"])
    assert bad.sum() == a.rejections["reason"].isin(["wrong_license", "unknown_code"]).sum(), "no new rejection from white space"


def test_validate_reports_trimmed_values(tmp_path, capsys) -> None:
    """`subs-model validate` says, per table, how many values had white space trimmed."""
    folder = _spaced(HANDMADE, tmp_path / "spaced")
    assert main(["validate", str(folder), "--out", str(tmp_path / "q")]) == 0
    out = capsys.readouterr().out
    assert "licenses" in out and "(trimmed white space around 30 values)" in out


def test_trim_policy_strips_unicode_spaces_and_keeps_inner_ones() -> None:
    """The policy: Unicode white space around a value goes (NBSP, U+2007, U+202F, tabs); inside it stays."""
    import pyarrow as pa

    from subs_model.sources import _trim

    values = [" L001 ", "\u00a0K1\u00a0", "\u2007x\u202f", "\tA B\t", "Лицензия", "ok", None, "", "р", "\u3000y"]
    out, n = _trim(pa.array(values))
    assert out.to_pylist() == ["L001", "K1", "x", "A B", "Лицензия", "ok", None, "", "р", "y"]
    assert n == 5


def test_folder_with_workbook_without_profile_names_the_profile_option(tmp_path) -> None:
    """A folder holding .xlsx without a profile: the message says so and names --profile."""
    folder = _small_export(tmp_path, "license_id,customer_id,edition\nL1,K1,full\n")
    openpyxl.Workbook().save(folder / "export.xlsx")
    msg = (f"{folder}: holds workbook(s) ['export.xlsx']; without a profile only UTF-8 CSV and Parquet files are read; "
           f"read it with --profile data/profiles/excel-ru.yaml (or a profile of your own naming the sheets), "
           f"or save each sheet as <table>.csv")
    with pytest.raises(sm.LedgerFileError) as exc:
        sm.read_ledger(folder)
    assert str(exc.value) == msg


def test_upper_case_file_names_without_profile_are_refused_with_the_fix(tmp_path) -> None:
    """`Orders.CSV` is not silently skipped: the message names the file, the expected name and --profile."""
    folder = _small_export(tmp_path, "license_id,customer_id,edition\nL1,K1,full\n")
    (folder / "orders.csv").rename(folder / "Orders.CSV")
    msg = (f"{folder}: file 'Orders.CSV' is not named as the contract says ('orders.csv': lower-case names, "
           f"lower-case .csv/.parquet); rename it, or read the folder with --profile (a profile names "
           f"each table's file and matches names without regard to case)")
    with pytest.raises(sm.LedgerFileError) as exc:
        sm.read_ledger(folder)
    assert str(exc.value) == msg


def test_non_utf8_file_suggests_the_1c_profile(tmp_path) -> None:
    """A cp1251 file read without a profile: a one-line error that suggests --profile data/profiles/1c.yaml."""
    folder = _small_export(tmp_path, "")
    (folder / "licenses.csv").write_bytes("license_id,customer_id,edition\nЛ1,Клиент,full\n".encode("cp1251"))
    with pytest.raises(sm.LedgerFileError, match=r"licenses.csv: cannot read table 'licenses'.*--profile data/profiles/1c.yaml") as exc:
        sm.read_ledger(folder)
    assert "\n" not in str(exc.value)
