"""Tables for people: labels per language, ₽ and % formats, no index, totals, escaping, downloads."""

from __future__ import annotations

import pandas as pd
import pytest
from openpyxl import load_workbook

from subs_model.notes import NBSP
from subs_model.tables import EXPORT_DIR_ENV, EXPORT_LINK_ENV, Col, people_table

COLS = [Col("edition", "Редакция", "Edition"), Col("licenses", "Лицензии", "Licenses", "int", total="sum"),
        Col("amount", "Сумма", "Amount", "rub", total="sum"), Col("rate", "Доля продлений", "Renewal rate", "pct", total_value=0.5)]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"edition": ["full", "=HYPERLINK(\"http://x\")"], "licenses": [3200, 41], "amount": [320_000, 4_100],
                         "rate": [0.5833, 0.25], "ignored": [1, 2]}, index=[10, 20])


def test_russian_table_labels_formats_and_totals() -> None:
    """Russian labels, «3 200 ₽», «58,3 %», a totals row «Итого» with sums, and only the chosen columns."""
    t = people_table(_frame(), COLS, "ru", export=False)
    f = t.frame.map(lambda v: v.replace(NBSP, " "))
    assert list(f.columns) == ["Редакция", "Лицензии", "Сумма", "Доля продлений"]
    assert f.iloc[0].tolist() == ["Кассир 5", "3 200", "3 200 ₽", "58,3 %"]  # editions by their names
    assert f.iloc[-1].tolist() == ["Итого", "3 241", "3 241 ₽", "50,0 %"]


def test_english_table_formats() -> None:
    """English labels and "3,200 ₽", "58.3%", "Total"."""
    f = people_table(_frame(), COLS, "en", export=False).frame.map(lambda v: v.replace(NBSP, " "))
    assert f.iloc[0].tolist() == ["Кассир 5 (full)", "3,200", "3,200 ₽", "58.3%"] and f.iloc[-1, 0] == "Total"


def test_html_has_no_index_escapes_data_and_caps_rows() -> None:
    """No 0…n index column, data escaped, long tables show the first rows and say how many there are."""
    df = pd.DataFrame({"edition": ["<b>x</b>"] * 70, "licenses": range(70), "amount": [100] * 70, "rate": [0.1] * 70})
    page = people_table(df, COLS, "en", export=False, max_rows=10).to_html()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert 'class="row_heading' not in page and "blank level0" not in page
    assert "first 10 of 70 rows shown" in page and "rows × " not in page
    assert page.count("<tr>") == 12  # header, 10 rows, total
    assert "Total" in page and "overflow-x:auto" in page


def test_numbers_in_text_cells_never_break_apart_and_stay_escaped(tmp_path, monkeypatch) -> None:
    """A text cell's «3 000 ₽» is held together by no-break spaces in the page (escaped first); the download keeps the text."""
    monkeypatch.setenv(EXPORT_DIR_ENV, str(tmp_path))
    df = pd.DataFrame({"scenario": ["Продление 3 000 ₽ <i>x</i>", "12 345 678"], "description": ["a 30 дней", "b"]})
    cols = [Col("scenario", "Сценарий", "Scenario"), Col("description", "Что", "What")]
    t = people_table(df, cols, "ru", name="titles")
    page = t.to_html()
    assert f"Продление 3{NBSP}000{NBSP}₽ &lt;i&gt;x&lt;/i&gt;" in page and f"12{NBSP}345{NBSP}678" in page
    assert "a 30 дней" in page  # a lone number is not glued to the next word
    assert pd.read_csv(tmp_path / "titles.csv", dtype=str)["Сценарий"][0] == "Продление 3 000 ₽ <i>x</i>"


def test_downloads_written_formula_safe_with_a_link(tmp_path, monkeypatch) -> None:
    """With the runner's export folder set, CSV and XLSX are written (rubles as numbers, formulas neutralised) and linked."""
    monkeypatch.setenv(EXPORT_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(EXPORT_LINK_ENV, "01-x_files/")
    t = people_table(_frame(), COLS, "ru", name="by edition/2026")
    assert [p.name for p in t.files] == ["by-edition-2026.csv", "by-edition-2026.xlsx"]
    page = t.to_html()
    assert 'href="01-x_files/by-edition-2026.xlsx"' in page and 'href="01-x_files/by-edition-2026.csv"' in page
    csv = pd.read_csv(tmp_path / "by-edition-2026.csv", dtype=str)
    assert list(csv.columns) == ["Редакция", "Лицензии", "Сумма", "Доля продлений"]
    assert csv["Редакция"][1].startswith("'=")  # formula-safe
    ws = load_workbook(tmp_path / "by-edition-2026.xlsx").active
    assert ws["C2"].value == 3200 and not str(ws["A3"].value).startswith("=")


def test_no_download_without_an_export_folder(monkeypatch) -> None:
    """In JupyterLab (no runner) nothing is written unless a folder is given."""
    monkeypatch.delenv(EXPORT_DIR_ENV, raising=False)
    t = people_table(_frame(), COLS, "en")
    assert t.files == [] and "download" not in t.to_html()


def test_unknown_column_or_kind_refused() -> None:
    """A column missing from the frame, or an unknown kind, is a clear error."""
    with pytest.raises(KeyError, match="no column"):
        people_table(_frame(), [Col("nope", "Нет", "No")], export=False)
    with pytest.raises(ValueError, match="kind 'money'"):
        Col("amount", "Сумма", "Amount", "money")


def test_dates_and_months_per_language() -> None:
    """Date and month columns in the language's one style (subs_model.notes.date/month), never ISO."""
    df = pd.DataFrame({"d": pd.to_datetime(["2026-10-31", "2026-03-05"]), "m": pd.to_datetime(["2026-10-01", "2026-03-01"])})
    cols = [Col("d", "День", "Day", "date"), Col("m", "Месяц", "Month", "month")]
    assert people_table(df, cols, "ru", export=False).frame.values.tolist() == [["31.10.2026", "10.2026"], ["05.03.2026", "03.2026"]]
    assert people_table(df, cols, "en", export=False).frame.values.tolist() == [["31 Oct 2026", "Oct 2026"], ["5 Mar 2026", "Mar 2026"]]


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_report_tables_read_without_snake_case(lang) -> None:
    """The forecast's backtest and retention tables and the period-over-period table through auto_cols: every
    header and every name cell is words in the language (no snake_case), errors and rates in %, changes in п.п./pp."""
    import re

    from subs_model.tables import auto_cols

    frames = [
        pd.DataFrame({"metric": ["active", "bookings_rub"], "model": ["sbg", "pooled"], "mape": [0.019, 0.087],
                      "coverage": [0.62, 0.42], "months": [24, 24]}),
        pd.DataFrame({"edition": ["full"], "alpha": [9.4], "alpha_se": [8.2], "beta": [32.9], "beta_se": [29.3], "licenses": [7147],
                      "new_license_continuation": [0.777], "pooled_continuation": [0.782], "decided_term_ends": [9237]}),
        pd.DataFrame({"rate": ["on_time_rate", "continued_rate"], "known_on": ["deadline", "horizon"], "value": [0.558, 0.745],
                      "change": [0.063, -0.029]}),
    ]
    for df in frames:
        f = people_table(df, auto_cols(df), lang, export=False).frame
        cells = [*f.columns, *f.to_numpy().ravel().tolist()]
        assert not [c for c in cells if re.search(r"[a-z]_[a-z]", str(c))], cells
    assert f.iloc[0].tolist()[-1].replace(NBSP, " ") == ("+6,3 п.п." if lang == "ru" else "+6.3 pp")
    assert f.iloc[0].tolist()[2].replace(NBSP, " ") == ("55,8 %" if lang == "ru" else "55.8%")
