"""Decision-ready what-if files: the workbook's metadata matches the run, rubles with their unit, dates as dates."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import subs_model as sm
from subs_model.export import Sheet, write_workbook
from subs_model.whatif import Scenario, run_scenarios
from subs_model.whatif_export import GLOSSARY, export_whatif, glossary

ROOT = Path(__file__).resolve().parents[1]
CUT = Scenario("renewal 3000", catalog={"prices": {"full": {"renewal": 3000}, "basic": {"renewal": 3000}}})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    led = sm.read_ledger(ROOT / "data/sample")
    res = run_scenarios(led, [Scenario("baseline"), CUT], "2026-10-31", horizon_months=14, runs=3, seed=11,
                        executor=ThreadPoolExecutor(2), elasticities=[0.4, 1.6])
    be = sm.break_even(led, [Scenario("baseline"), CUT], "2026-10-31", horizon_months=14, runs=3, seed=11,
                       executor=ThreadPoolExecutor(2), behaviour=res.behaviour)
    out = tmp_path_factory.mktemp("whatif")
    files = export_whatif(res, out, break_even=be)
    return res, be, out, files


def test_xlsx_metadata_matches_the_run(exported) -> None:
    """Read back with openpyxl: as_of, fingerprint, runs, seed, horizon, elasticity and its range are the run's."""
    res, _, out, _ = exported
    wb = openpyxl.load_workbook(out / "scenarios.xlsx")
    meta = {k: v for k, v in wb["metadata"].iter_rows(min_row=2, values_only=True)}
    assert meta["as_of"] == "2026-10-31" == res.as_of.date().isoformat()
    assert meta["data_fingerprint"] == res.fingerprint and len(res.fingerprint) == 16
    assert (meta["runs"], meta["seed"], meta["horizon_months"]) == ("3", "11", "14")
    assert meta["elasticity_central"] == "1.2" and meta["elasticity_source"] == "prior"
    assert res.behaviour.elasticity_range == (0.0, 2.0)
    assert meta["elasticity_range"] == "0 – 2" and meta["elasticities"] == "0.4, 1.2, 1.6"
    assert meta["first_month"] == "2026-11-01" and meta["last_month"] == "2027-12-01"
    assert any(k.startswith("catalog 2020-01-01") for k in meta) and "scenario renewal 3000" in meta
    assert "behaviour p_continue" in meta


def test_money_in_rubles_with_formats_and_dates_as_dates(exported) -> None:
    """Money columns are named *_rub* with a ₽ number format; months are Excel dates shown yyyy-mm-dd; widths set."""
    res, _, out, _ = exported
    wb = openpyxl.load_workbook(out / "scenarios.xlsx")
    ws = wb["summary"]
    header = [c.value for c in ws[1]]
    j = header.index("bookings_rub_mean")
    assert ws.cell(2, j + 1).number_format == '#,##0.00 "₽"'
    kop = res.summary.loc[0, "bookings_mean"]
    assert ws.cell(2, j + 1).value == pytest.approx(kop / 100, abs=0.01)
    assert not [h for h in header if h.startswith(("bookings_mean", "recognised_mean"))]  # no unlabelled kopecks
    wm = wb["month bookings ₽"]
    assert isinstance(wm["A2"].value, dt.datetime) and wm["A2"].number_format == "yyyy-mm-dd"
    assert wm.column_dimensions["A"].width >= 10
    monthly = pd.read_csv(out / "scenarios_by_month.csv", encoding="utf-8-sig")
    assert monthly["month"].iloc[0] == "2026-11-01" and set(monthly["unit"]) == {"₽", "count"}


def test_yearly_editions_break_even_and_glossary(exported) -> None:
    """Yearly totals add up to the horizon; editions add up to the total; every summary column is defined ru/en."""
    res, be, out, _ = exported
    wb = openpyxl.load_workbook(out / "scenarios.xlsx")
    y = pd.DataFrame(list(wb["yearly ₽"].iter_rows(min_row=2, values_only=True)), columns=[c.value for c in wb["yearly ₽"][1]])
    row = y[(y["scenario"] == "baseline") & (y["metric"] == "bookings")].iloc[0]
    total = res.summary.loc[0, "bookings_mean"] / 100
    assert row["2026"] + row["2027"] == pytest.approx(total, abs=0.05)
    ed = pd.DataFrame(list(wb["editions"].iter_rows(min_row=2, values_only=True)), columns=[c.value for c in wb["editions"][1]])
    assert ed[ed["scenario"] == "baseline"]["bookings_rub_mean"].sum() == pytest.approx(total, abs=0.05)
    head = [c.value for c in wb["break-even"][1]]
    rows = list(wb["break-even"].iter_rows(min_row=2, values_only=True))
    assert [r[head.index("note_ru")] for r in rows] == be["note_ru"].tolist()
    assert rows[0][head.index("break_even")] == pytest.approx(be["break_even"].iloc[0])
    terms = {r[0] for r in wb["glossary"].iter_rows(min_row=2, values_only=True)}
    summary_cols = [c.value for c in wb["summary"][1]]
    assert set(summary_cols) - {"description"} <= terms, set(summary_cols) - terms
    assert set(GLOSSARY) <= terms
    g = glossary([res.summary])
    assert g["definition_ru"].str.len().gt(0).all() and g["definition_en"].str.len().gt(0).all()


def test_workbook_is_formula_safe_and_refuses_unknown_formats(tmp_path) -> None:
    """Text that a spreadsheet would run is neutralised in every sheet; an unknown number format is refused."""
    book = write_workbook({"a": pd.DataFrame({"x": ["=1+1"]}), "b": Sheet(pd.DataFrame({"y": [1.5]}), {"y": "pct"})}, tmp_path / "w")
    wb = openpyxl.load_workbook(book)
    assert wb["a"]["A2"].value == "'=1+1" and wb["b"]["A2"].number_format == "0.0%"
    with pytest.raises(ValueError, match="unknown number format"):
        Sheet(pd.DataFrame({"y": [1]}), {"y": "money"})


def test_cli_whatif_states_the_elasticity_and_writes_the_workbook(tmp_path, capsys) -> None:
    """subs-model whatif prints the elasticity, the per-elasticity table and the break-even notes; writes the files."""
    from subs_model.cli import main

    spec = tmp_path / "s.yaml"
    spec.write_text("scenarios:\n  - name: baseline\n  - name: cut\n    catalog:\n      prices:\n"
                    "        full: {renewal: 3000}\n        basic: {renewal: 3000}\n", encoding="utf-8")
    code = main(["--lang", "en", "whatif", str(spec), "--data", str(ROOT / "data/sample"), "--as-of", "2026-10-31", "--runs", "2",
                 "--horizon", "3", "--break-even-runs", "2", "--elasticities", "0.5,2",
                 "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "rests on the renewal-price elasticity: 1.2 (prior); range 0–2; reported at 0.5, 1.2, 2" in out
    assert "by elasticity" in out
    assert "“cut”: a renewal price cut to ₽3,000" in out
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"scenarios.csv", "scenarios_by_elasticity.csv", "scenarios_by_month.csv", "break_even.csv", "metadata.csv",
            "scenarios.xlsx"} <= names


def test_elasticity_fan_marks_the_break_even() -> None:
    """The fan has a band and a line per price scenario, and a marker per break-even found."""
    from subs_model.whatif_plots import fig_elasticity_fan

    df = pd.DataFrame({"scenario": ["b", "b", "s", "s"], "elasticity": [0.0, 2.0, 0.0, 2.0],
                       "bookings_diff_mean": [0, 0, -100, 300], "bookings_diff_p05": [0, 0, -150, 250],
                       "bookings_diff_p95": [0, 0, -50, 350]})
    be = pd.DataFrame({"scenario": ["s"], "break_even": [0.5], "low": [0.4], "high": [0.6]})
    fig = fig_elasticity_fan(df, lang="ru", break_even=be, central=1.2)
    assert len(fig.data) == 3 and "0,50" in fig.data[2].name
    assert list(fig.data[1].y) == [-1.0, 3.0]  # kopecks shown as rubles


def test_sheets_show_each_scenario_by_its_title_in_the_language(exported) -> None:
    """Beside its key, each scenario reads by its title (and description) in the export's language; wide sheets are headed by titles."""
    from dataclasses import replace

    from subs_model.whatif_export import whatif_tables

    res, be, _, _ = exported
    titled = replace(res, scenarios=(Scenario("baseline", title={"ru": "Сегодня", "en": "Today"},
                                              description={"ru": "как есть", "en": "as is"}),
                                     replace(CUT, title={"ru": "Продление 3 000 ₽", "en": "Renewal at 3,000 ₽"})))
    for lang, base, cut, desc in (("ru", "Сегодня", "Продление 3 000 ₽", "как есть"), ("en", "Today", "Renewal at 3,000 ₽", "as is")):
        sheets = whatif_tables(titled, be, lang)
        summary = sheets["summary"].df
        assert summary["scenario"].tolist() == ["baseline", "renewal 3000"]  # the key stays
        assert summary["title"].tolist() == [base, cut] and summary["description"].iloc[0] == desc
        assert list(summary.columns[:2]) == ["scenario", "title"]
        for name in ("by elasticity", "yearly ₽", "yearly counts", "editions", "break-even"):
            assert set(sheets[name].df["title"]) <= {base, cut} and cut in set(sheets[name].df["title"]), name
        wide = sheets["month bookings ₽"].df
        assert base in wide.columns and cut in wide.columns and f"{cut} − baseline" in wide.columns
        assert "renewal 3000" not in wide.columns
        assert "title" in set(sheets["glossary"].df["term"])
    with pytest.raises(ValueError, match="lang 'de'"):
        whatif_tables(titled, be, "de")
