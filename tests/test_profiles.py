"""Source profiles: 1C-style CSV and XLSX exports read into the same ledger as the canonical CSV."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import subs_model as sm
from subs_model.cli import main
from subs_model.errors import ProfileError
from subs_model.ledger import DATE_COLUMNS, TIMESTAMP_COLUMNS
from subs_model.profiles import Profile, load_profile, to_canonical

ROOT = Path(__file__).resolve().parents[1]
HANDMADE = ROOT / "tests/data/handmade"
P1C = ROOT / "data/profiles/1c.yaml"
PXLSX = ROOT / "data/profiles/excel-ru.yaml"
TABLES = ("licenses", "orders", "activations", "legacy_periods", "features")


def _canonical_text(name: str) -> pd.DataFrame:
    return pd.read_csv(HANDMADE / f"{name}.csv", dtype=str, keep_default_na=False)


def _rub_1c(text: str, i: int, seps: tuple[str, ...] = (" ", "\u00a0")) -> str:
    """``4000.00`` as 1C writes it: ``4 000,00`` with a space or NBSP between thousands (cp1251 has no U+202F)."""
    if not text:
        return text
    rub, kop = text.split(".")
    sep = seps[i % len(seps)]
    grouped = f"{int(rub):,}".replace(",", sep)
    return f"{grouped},{kop}"


def _moscow(text: str) -> pd.Timestamp:
    """A canonical timestamp as Moscow wall-clock time (what a Russian back office writes)."""
    t = pd.Timestamp(text)
    return t.tz_convert("Europe/Moscow").tz_localize(None) if t.tzinfo is not None else t


def _stamp_1c(text: str, i: int) -> str:
    if not text:
        return text
    t = _moscow(text)
    return t.strftime("%d.%m.%Y %H:%M" if i % 2 else "%d.%m.%Y %H:%M:%S")


def _renamed(df: pd.DataFrame, profile: Profile, name: str) -> pd.DataFrame:
    back = {canon: header for header, canon in profile.columns[name].items()}
    return df.rename(columns=back)


def export_1c(folder: Path) -> Path:
    """The handmade export written as 1C writes it: cp1251, ';', dd.mm.yyyy HH:MM, 3 200,00, Russian headers."""
    prof = Profile.from_yaml(P1C)
    folder.mkdir(parents=True)
    for name in TABLES:
        df = _canonical_text(name)
        for c in df.columns:
            if c in TIMESTAMP_COLUMNS:
                df[c] = [_stamp_1c(v, i) for i, v in enumerate(df[c])]
            elif c in DATE_COLUMNS:
                df[c] = [pd.Timestamp(v).strftime("%d.%m.%Y") if v else v for v in df[c]]
            elif c == "amount_rub":
                df[c] = [_rub_1c(v, i) for i, v in enumerate(df[c])]
            elif c == "requires_subscription":
                df[c] = df[c].map({"True": "Да", "False": "Нет"})
        _renamed(df, prof, name).to_csv(folder / prof.files[name], sep=";", index=False, encoding="cp1251")
    return folder


def export_xlsx(folder: Path) -> Path:
    """The handmade export as one workbook: a sheet per table, Russian headers; timestamps and
    amounts as typed cells on even rows and as Russian text on odd rows."""
    prof = Profile.from_yaml(PXLSX)
    folder.mkdir(parents=True)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name in TABLES:
        df = _canonical_text(name)
        ws = wb.create_sheet(prof.sheets[name])
        ws.append(list(_renamed(df, prof, name).columns))
        for i, row in enumerate(df.itertuples(index=False)):
            cells = []
            for c, v in zip(df.columns, row, strict=True):
                if v == "":
                    cells.append(None)
                elif c in TIMESTAMP_COLUMNS:
                    cells.append(_moscow(v).to_pydatetime() if i % 2 == 0 else _stamp_1c(v, 1))
                elif c in DATE_COLUMNS:
                    cells.append(dt.date.fromisoformat(v) if i % 2 == 0 else pd.Timestamp(v).strftime("%d.%m.%Y"))
                elif c == "amount_rub":
                    cells.append(float(v) if i % 2 == 0 else _rub_1c(v, i // 2, (" ", "\u00a0", "\u202f")))
                elif c == "requires_subscription":
                    cells.append(v == "True")
                else:
                    cells.append(v)
            ws.append(cells)
    wb.save(folder / "выгрузка 2026-11.xlsx")
    return folder


def _same_ledger(got: sm.Ledger, want: sm.Ledger) -> None:
    for name in TABLES:
        a, b = got.tables()[name], want.tables()[name]
        if name == "features":  # a boolean written as Да/Нет or a typed cell reads as that text
            truth = {"true": True, "да": True, "false": False, "нет": False}
            assert a["requires_subscription"].str.lower().map(truth).tolist() == b["requires_subscription"].str.lower().map(truth).tolist()
            a, b = a.drop(columns="requires_subscription"), b.drop(columns="requires_subscription")
        pd.testing.assert_frame_equal(a, b, obj=name)
    assert len(got.quarantine) == len(want.quarantine) == 0
    ra, rb = sm.replay(got, as_of="2026-10-31"), sm.replay(want, as_of="2026-10-31")
    for name in ("periods", "codes", "rejections"):
        pd.testing.assert_frame_equal(getattr(ra, name), getattr(rb, name), obj=name)


def test_1c_export_round_trip_gives_the_canonical_ledger(tmp_path) -> None:
    """cp1251, ';', dd.mm.yyyy HH:MM[:SS], '3 200,00' with space/NBSP thousands, Russian headers: same ledger, same replay."""
    got = sm.read_ledger(export_1c(tmp_path / "1c"), profile=P1C)
    _same_ledger(got, sm.read_ledger(HANDMADE))


def test_xlsx_workbook_round_trip_gives_the_canonical_ledger(tmp_path) -> None:
    """One workbook, a sheet per table, typed and text cells mixed: same ledger, same replay (folder or workbook path)."""
    folder = export_xlsx(tmp_path / "xlsx")
    want = sm.read_ledger(HANDMADE)
    _same_ledger(sm.read_ledger(folder, profile=PXLSX), want)
    _same_ledger(sm.read_ledger(folder / "выгрузка 2026-11.xlsx", profile=load_profile(PXLSX)), want)


def _one_bad(folder: Path, file: str, header: str, row: int, value: str) -> None:
    path = folder / file
    df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, encoding="cp1251")
    df.loc[row, header] = value
    df.to_csv(path, sep=";", index=False, encoding="cp1251")


@pytest.mark.parametrize(
    ("file", "header", "value", "column", "reason", "fmt"),
    [
        ("заказы.csv", "Оплата", "31.02.2026 10:00", "paid_at", "bad_timestamp", "'%d.%m.%Y %H:%M:%S' or '%d.%m.%Y %H:%M'"),
        ("заказы.csv", "Оплата", "2021-02-01T09:45:00", "paid_at", "bad_timestamp", "'%d.%m.%Y %H:%M:%S' or '%d.%m.%Y %H:%M'"),
        ("заказы.csv", "Оплата", "1.2.2021 9:45", "paid_at", "bad_timestamp", "'%d.%m.%Y %H:%M:%S' or '%d.%m.%Y %H:%M'"),
        ("заказы.csv", "Сумма", "4000.00", "amount_rub", "non_numeric_amount", "decimal ',', thousands U+0020, U+00A0, U+202F"),
        ("заказы.csv", "Сумма", "4,000,00", "amount_rub", "non_numeric_amount", "decimal ',', thousands U+0020, U+00A0, U+202F"),
        ("заказы.csv", "Сумма", "40 00,00", "amount_rub", "non_numeric_amount", "decimal ',', thousands U+0020, U+00A0, U+202F"),
        ("старые_периоды.csv", "Начало", "2025-01-01", "start", "bad_date", "'%d.%m.%Y'"),
    ],
)
def test_value_not_in_the_declared_format_is_quarantined_with_its_reason(tmp_path, file, header, value, column, reason, fmt) -> None:
    """A value that does not match the profile's format: its usual reason, a message naming the format, the original text kept."""
    folder = export_1c(tmp_path / "1c")
    _one_bad(folder, file, header, 0, value)
    led = sm.read_ledger(folder, profile=P1C)
    q = led.quarantine
    hit = q[q["column"] == column]
    assert len(hit) == 1, q
    r = hit.iloc[0]
    assert (r["file"], r["line"], r["reason"]) == (str(folder / file), 2, reason)
    assert r["message"] == f"does not match the declared format {fmt} (profile '1c'); fix the value or the profile"
    assert f"{column}={value}" in r["raw"]
    with pytest.raises(sm.LedgerError, match=rf"{file}: line 2, column {column}: {reason}: does not match the declared format"):
        sm.read_ledger(folder, profile=P1C, on_bad_rows="raise")


def test_negative_and_over_precise_amounts_keep_their_own_reasons(tmp_path) -> None:
    """'-4 000,00' is negative_amount and '4 000,005' too_many_decimals, with their usual messages."""
    folder = export_1c(tmp_path / "1c")
    _one_bad(folder, "заказы.csv", "Сумма", 0, "-4 000,00")
    _one_bad(folder, "заказы.csv", "Сумма", 1, "4 000,005")
    q = sm.read_ledger(folder, profile=P1C).quarantine.query("table == 'orders'").set_index("line")
    assert q.loc[2, "reason"] == "negative_amount" and q.loc[2, "message"] == "amount is negative"
    assert q.loc[3, "reason"] == "too_many_decimals" and "4 000,005" in q.loc[3, "raw"]


@settings(max_examples=60, deadline=None)
@given(kopecks=st.integers(0, 10**13), sep=st.sampled_from([" ", "\u00a0", "\u202f"]), grouped=st.booleans())
def test_declared_amounts_convert_exactly(kopecks, sep, grouped) -> None:
    """Any amount written with decimal ',' (grouped by a space, NBSP or U+202F, or not) converts to the same kopecks."""
    rub, kop = divmod(kopecks, 100)
    text = (f"{rub:,}".replace(",", sep) if grouped else str(rub)) + f",{kop:02d}"
    df = pd.DataFrame({"amount_rub": pd.array([text], dtype="str")})
    out, bad = to_canonical(df, Profile.from_yaml(P1C))
    assert not bad["amount_rub"].any()
    assert out["amount_rub"].iloc[0] == f"{rub}.{kop:02d}"


def test_validate_and_ingest_cli_take_a_profile(tmp_path, capsys) -> None:
    """`validate --profile` is clean on the 1C export (0) and `ingest --profile` stores what the canonical CSV gives."""
    folder = export_1c(tmp_path / "1c")
    assert main(["validate", str(folder), "--profile", str(P1C), "--out", str(tmp_path / "q")]) == 0
    assert "orders" in capsys.readouterr().out
    assert main(["validate", str(folder), "--out", str(tmp_path / "q")]) == 2  # no profile: names the 1c profile
    assert "--profile data/profiles/1c.yaml" in capsys.readouterr().err
    assert main(["ingest", str(folder), "--into", str(tmp_path / "store"), "--profile", str(P1C)]) == 0
    stored = sm.read_ledger(tmp_path / "store")
    assert len(stored.orders) == len(sm.read_ledger(HANDMADE).orders)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("encoding: klingon\n", "profile 'p': unknown encoding 'klingon'; use a Python codec name such as utf-8 or cp1251"),
        ("delimiter: ';;'\n", "profile 'p': delimiter ';;' must be one character other than a quote or newline, e.g. ';'"),
        ("decimal: ';'\n", "profile 'p': decimal ';' must be '.' or ','"),
        ("datetime_formats: ['%m/%d']\n",
         "profile 'p': datetime_formats entry '%m/%d' must be a strftime format with %d, %m and %Y once each (and %H, %M, %S; no other directive), e.g. '%d.%m.%Y %H:%M'"),
        ("tables: {invoices: {file: x.csv}}\n",
         "profile 'p': unknown table(s) ['invoices'] in files; tables are licenses, orders, activations, legacy_periods, features"),
        ("tables: {orders: {columns: {Сумма: amount}}}\n",
         "profile 'p': header 'Сумма' of table 'orders' maps to 'amount', which is no column of it; its columns are "
         "['order_id', 'license_id', 'sku', 'requested_at', 'invoiced_at', 'paid_at', 'ticket_at', 'code_issued_at', "
         "'act_number', 'amount_rub', 'code', 'upgrade_of_act']"),
        ("colour: red\n", "unknown key(s) ['colour'] in the source profile; keys are ['date_formats', 'datetime_formats', "
         "'decimal', 'delimiter', 'encoding', 'name', 'tables', 'thousands', 'workbook']"),
    ],
)
def test_bad_profile_is_a_one_line_error(tmp_path, yaml_text, message) -> None:
    """Every bad profile value: a ProfileError naming the file, the value and the fix."""
    path = _write(tmp_path / "p.yaml", yaml_text)
    with pytest.raises(ProfileError) as exc:
        Profile.from_yaml(path)
    assert str(exc.value) == f"{path}: {message}"


def test_missing_profile_file_names_the_shipped_ones(tmp_path) -> None:
    """A profile path that does not exist: the message names the shipped profiles."""
    with pytest.raises(ProfileError, match=r"no such source profile; give a profile YAML such as data/profiles/1c.yaml"):
        sm.read_ledger(HANDMADE, profile=tmp_path / "nope.yaml")


def test_duplicate_columns_through_the_profile_mapping(tmp_path) -> None:
    """Two headers meaning one column (a Russian header and the canonical one): a one-line LedgerError."""
    folder = export_1c(tmp_path / "1c")
    path = folder / "лицензии.csv"
    text = path.read_text(encoding="cp1251").splitlines()
    text[0] += ";license_id"
    text[1:] = [line + ";X" for line in text[1:]]
    path.write_text("\n".join(text) + "\n", encoding="cp1251")
    with pytest.raises(sm.LedgerError) as exc:
        sm.read_ledger(folder, profile=P1C)
    assert str(exc.value) == (f"{path}: headers 'Лицензия' and 'license_id' both mean column 'license_id' twice (columns 1 and 4) "
                              f"in table 'licenses'; keep one and delete or rename the other")


def test_missing_sheet_is_named(tmp_path) -> None:
    """A workbook without the profile's sheet for a table: the message lists the sheets and the fix."""
    folder = export_xlsx(tmp_path / "xlsx")
    wb = openpyxl.load_workbook(folder / "выгрузка 2026-11.xlsx")
    wb["Заказы"].title = "Orders"
    wb.save(folder / "выгрузка 2026-11.xlsx")
    with pytest.raises(sm.LedgerFileError, match=r"no sheet 'Заказы' for table 'orders'; its sheets are \['Лицензии', 'Orders'"):
        sm.read_ledger(folder, profile=PXLSX)


def test_semicolon_export_without_a_profile_is_told_about_the_delimiter(tmp_path) -> None:
    """A ';'-separated file read without a profile: the message names the delimiter and --profile."""
    (tmp_path / "licenses.csv").write_text("license_id;customer_id;edition\nL1;K1;full\n")
    (tmp_path / "orders.csv").write_text("order_id,license_id,sku,code,code_issued_at\n")
    (tmp_path / "activations.csv").write_text("code,license_id,activated_at\n")
    with pytest.raises(sm.LedgerError, match=r"licenses\.csv: unknown column\(s\) \['license_id;customer_id;edition'\] .*"
                       r"not separated by ','.*--profile data/profiles/1c\.yaml"):
        sm.read_ledger(tmp_path)
