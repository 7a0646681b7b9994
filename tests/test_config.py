"""Configuration files: the strict YAML loader, every value validated at load, one-line CLI errors."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import subs_model as sm
from subs_model.catalog import rub_to_kopecks
from subs_model.cli import main
from subs_model.errors import YAML_ALIAS_LIMIT, CatalogError, read_yaml
from subs_model.whatif import Scenario, ScenarioError, load_scenarios

ROOT = Path(__file__).resolve().parents[1]
PRICES = "    prices:\n      full:  {subscription: 4000, renewal: 3200}\n      basic: {subscription: 4000, renewal: 3200}\n"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _catalog(folder: Path, knob: str) -> Path:
    return _write(folder, "catalog.yaml", f"versions:\n  - effective_from: 2020-01-01\n    {knob}\n{PRICES}")


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI, check it exits 2 with exactly one line on stderr and no traceback; return that line."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip() and "lic/s" not in line]  # not progress bars
    assert len(lines) == 1, err
    return lines[0]


# -- the strict YAML loader ---------------------------------------------------------------------------------
def test_billion_laughs_is_refused_at_once(tmp_path) -> None:
    """Aliases of aliases (10 levels of 9) are refused in well under a second, naming the alias and its line."""
    lines = ['lol: &a0 "lol"']
    for k in range(1, 10):
        lines.append(f"l{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]")
    lines.append("versions:\n  - effective_from: 2020-01-01\n    term_days: *a9\n" + PRICES)
    path = _write(tmp_path, "catalog.yaml", "\n".join(lines))
    t0 = time.perf_counter()
    with pytest.raises(CatalogError) as err:
        sm.Catalog.from_yaml(path)
    assert time.perf_counter() - t0 < 1.0
    assert str(err.value) == (
        f"{path}: the catalog is refused: its aliases repeat more than {YAML_ALIAS_LIMIT:,} values (limit passed at *a3 "
        "on line 5); write the values out instead of repeating them through aliases"
    )


def test_duplicate_key_is_named_with_both_lines(tmp_path) -> None:
    """A key given twice no longer silently takes the last value."""
    path = _write(tmp_path, "catalog.yaml", "versions:\n  - effective_from: 2020-01-01\n    grace_days: 15\n"
                  "    term_days: 365\n    grace_days: 30\n" + PRICES)
    with pytest.raises(CatalogError) as err:
        sm.Catalog.from_yaml(path)
    assert str(err.value) == (
        f"{path}: the catalog is refused: the key 'grace_days' is given twice (line 3, then line 5); keep one of them"
    )


def test_recursive_alias_deep_nesting_and_syntax_errors_are_one_line(tmp_path) -> None:
    """A self-referencing alias, nesting past the limit and a syntax error each give one line naming the line."""
    cases = {
        "a: &x [1, *x]\n": "the catalog is refused: the alias *x on line 1 is inside the node it names (a recursive alias); remove it",
        "a: " + "[" * 60 + "]" * 60 + "\n": "the catalog is refused: it nests deeper than 50 levels (line 1); flatten the structure",
        "a: [1,\nb: 2\n": "the catalog is not valid YAML (expected ',' or ']', but got '<stream end>' on line 3, column 1); fix the syntax",
    }
    for text, message in cases.items():
        path = _write(tmp_path, "c.yaml", text)
        with pytest.raises(CatalogError) as err:
            read_yaml(path, CatalogError, "the catalog")
        assert str(err.value) == f"{path}: {message}"


def test_small_aliases_and_merge_keys_still_load(tmp_path) -> None:
    """An alias reused a few times and a '<<' merge overridden by a key are ordinary YAML and load."""
    path = _write(tmp_path, "c.yaml", "base: &b {subscription: 4000, renewal: 3200}\nfull: *b\nbasic:\n  <<: *b\n  renewal: 3000\n")
    assert read_yaml(path, CatalogError, "the catalog") == {
        "base": {"subscription": 4000, "renewal": 3200}, "full": {"subscription": 4000, "renewal": 3200},
        "basic": {"subscription": 4000, "renewal": 3000},
    }


def test_non_utf8_file_is_one_line(tmp_path) -> None:
    """A cp1251 file is refused with the byte offset and the fix."""
    path = tmp_path / "c.yaml"
    path.write_bytes("name: Касса\n".encode("cp1251"))
    with pytest.raises(CatalogError) as err:
        read_yaml(path, CatalogError, "the catalog")
    assert str(err.value) == f"{path}: the catalog is not UTF-8 text (byte 6: invalid continuation byte); save it as UTF-8"


# -- catalog values ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("knob", "message"),
    [
        ("term_days: 1000000000000", "term_days: 1000000000000 is out of range; give a whole number of days >= 1 and <= 3,650"),
        ("grace_days: 366", "grace_days: 366 is out of range; give a whole number of days >= 0 and <= 365"),
        ("grace_days: 1.5", "grace_days: 1.5 is not a whole number of days; give one >= 0 and <= 365"),
    ],
)
def test_catalog_bounds_through_the_cli(tmp_path, capsys, knob, message) -> None:
    """term_days of 10^12 (an assert in the engine before) and other bad knobs: one line, exit 2."""
    path = _catalog(tmp_path, knob)
    line = _error_line(capsys, ["replay", str(ROOT / "data/sample"), "--catalog", str(path)])
    assert line == f"subs-model: error: {path}: catalog.versions[0].{message}"


@pytest.mark.parametrize("value", ["'03.04.2027'", "tomorrow", "20270403", "'2027-4-3'"])
def test_catalog_dates_are_iso_only(tmp_path, value) -> None:
    """Only YYYY-MM-DD is a date: no guessing of day/month order, no compact forms."""
    path = _write(tmp_path, "catalog.yaml", f"versions:\n  - effective_from: {value}\n{PRICES}")
    with pytest.raises(CatalogError) as err:
        sm.Catalog.from_yaml(path)
    shown = value.strip("'")
    shown = repr(int(shown)) if shown.isdigit() else repr(shown)
    assert str(err.value) == (
        f"{path}: catalog.versions[0].effective_from: {shown} is not a date; write it as YYYY-MM-DD, e.g. 2020-01-01"
    )


def test_catalog_price_above_the_limit() -> None:
    """A price in kopecks typed as rubles (or any absurd amount) is refused, not overflowed."""
    with pytest.raises(CatalogError) as err:
        rub_to_kopecks(10**20, where="catalog.prices.full.renewal")
    assert str(err.value) == (
        "catalog.prices.full.renewal: price 100000000000000000000 is above the limit of 100,000,000 rubles; "
        "write the amount in rubles, not kopecks"
    )


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_term_days_accepted_exactly_inside_the_bounds(days) -> None:
    """Any whole number of days from 1 to 3 650 is a term; anything else is a CatalogError."""
    if 1 <= days <= 3650:
        assert sm.Catalog.default(term_days=days).versions[0].term_days == days
    else:
        with pytest.raises(CatalogError, match="out of range"):
            sm.Catalog.default(term_days=days)


def test_engine_runs_at_the_largest_bounds() -> None:
    """At term 3 650 and grace 365 the replay finishes on the sample (no int32 overflow, no internal error)."""
    led = sm.read_ledger(ROOT / "data/sample")
    rep = sm.replay(led, sm.Catalog.default(term_days=3650, grace_days=365), as_of="2026-10-31")
    new = rep.periods[rep.periods["source"] != "legacy"]
    assert len(new) > 0
    assert ((new["end"] - new["start"]) <= pd.Timedelta(days=3650 + 365)).all()


# -- behaviour values ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('p_continue: {full: "высокая"}', "p_continue.full: 'высокая' is not a probability; give a number between 0 and 1"),
        ("p_forget: 1.5", "p_forget: 1.5 is not a probability; give a number between 0 and 1"),
        ("elasticity: .nan", "elasticity: nan is not a finite number >= 0; give a finite number >= 0"),
        ("elasticity: -50", "elasticity: -50 is not a finite number >= 0; give a finite number >= 0"),
        ("upgrade_elasticity: .inf", "upgrade_elasticity: inf is not a finite number >= 0; give a finite number >= 0"),
        ("arrivals_growth: 2", "arrivals_growth: 2 is not a number from -0.5 to 0.5; give a number from -0.5 to 0.5"),
        ("lead_times: {code: {median_hours: 0}}",
         "lead_times.code.median_hours: 0 is not a number above 0 up to 8,760; give a number above 0 up to 8,760"),
        ("seasonality: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, x]",
         "seasonality[11]: 'x' is not a number from 0 to 100; give a number from 0 to 100"),
    ],
)
def test_behaviour_values_through_the_cli(tmp_path, capsys, text, message) -> None:
    """Each bad behaviour value: one line naming file, key, value and the allowed range; nothing simulated."""
    path = _write(tmp_path, "behaviour.yaml", text + "\n")
    out = tmp_path / "sim"
    line = _error_line(capsys, ["simulate", "--behaviour", str(path), "--out", str(out)])
    assert line == f"subs-model: error: {path}: behaviour.{message}"
    assert not out.exists()


@given(st.one_of(st.floats(allow_nan=True), st.text(max_size=5), st.booleans(), st.none()))
def test_a_probability_is_a_number_in_0_1(value) -> None:
    """Exactly the numbers in [0, 1] are accepted as p_forget."""
    ok = isinstance(value, float) and 0 <= value <= 1
    if ok:
        assert sm.Behaviour.from_dict({"p_forget": value}).p_forget == value
    else:
        with pytest.raises(sm.BehaviourError, match="is not a probability"):
            sm.Behaviour.from_dict({"p_forget": value})


# -- scenarios -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("effective_from: tomorrow",
         "scenario 'x'.effective_from: 'tomorrow' is not a date; write it as YYYY-MM-DD, e.g. 2020-01-01"),
        ("effective_from: '03.04.2027'",
         "scenario 'x'.effective_from: '03.04.2027' is not a date; write it as YYYY-MM-DD, e.g. 2020-01-01"),
        ("catalog: {grace_days: 1000}",
         "scenario 'x'.catalog.grace_days: 1000 is out of range; give a whole number of days >= 0 and <= 365"),
        ("catalog: {prices: {full: {renewal: много}}}",
         "scenario 'x'.catalog.prices.full.renewal: price 'много' is not a number; write the amount in rubles, e.g. 4000"),
        ("behaviour: {elasticity: -50}",
         "scenario 'x'.behaviour.elasticity: -50 is not a finite number >= 0; give a finite number >= 0"),
        ("behaviour: {p_continue: {full: высокая}}",
         "scenario 'x'.behaviour.p_continue.full: 'высокая' is not a probability; give a number between 0 and 1"),
    ],
)
def test_scenario_values_are_checked_at_load(tmp_path, item, message) -> None:
    """Every scenario value is validated when the file is read, not when a run reaches it."""
    path = _write(tmp_path, "s.yaml", f"scenarios:\n  - name: baseline\n  - name: x\n    {item}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenarios(path)
    assert str(err.value) == f"{path}: scenarios[1]: {message}"


def test_scenario_iso_date_is_kept() -> None:
    """An ISO effective_from (text or date) is accepted and normalised to YYYY-MM-DD."""
    import datetime as dt

    assert Scenario("a", dt.date(2027, 4, 3), {"grace_days": 30}).effective_from == "2027-04-03"
    cat = Scenario("a", "2027-04-03", {"grace_days": 30}).catalog_for(sm.Catalog.default(), "2026-11-01")
    assert cat.version_at("2027-04-03").grace_days == 30
    assert cat.version_at("2027-04-02").grace_days == 15


def test_whatif_cli_bad_scenario_file(tmp_path, capsys) -> None:
    """whatif with a scenario effective 'tomorrow': one line, exit 2, before any simulation."""
    path = _write(tmp_path, "s.yaml", "scenarios:\n  - name: baseline\n  - name: x\n    effective_from: tomorrow\n")
    line = _error_line(capsys, ["whatif", str(path), "--out", str(tmp_path / "out")])
    assert line == (
        f"subs-model: error: {path}: scenarios[1]: scenario 'x'.effective_from: 'tomorrow' is not a date; "
        "write it as YYYY-MM-DD, e.g. 2020-01-01"
    )


# -- the CLI never prints a traceback --------------------------------------------------------------------------
def test_simulate_end_before_start(tmp_path, capsys) -> None:
    """simulate with end before start: one line, exit 2, no output folder left behind."""
    out = tmp_path / "sim"
    line = _error_line(capsys, ["simulate", "--behaviour", str(ROOT / "data/behaviour.yaml"), "--out", str(out),
                                "--start", "2026-01-01", "--end", "2025-01-01"])
    assert line == "subs-model: error: simulate: end '2025-01-01' is before start '2026-01-01'; give an end on or after the start"
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "01.01.2021"], "simulate: start '01.01.2021' is not a date; write it as YYYY-MM-DD, e.g. 2021-01-01"),
        (["--end", "2300-01-01"], "simulate: end '2300-01-01' is out of range; give a day from 1900-01-01 to 2199-12-31"),
        (["--seed", "-1"], "simulate: seed -1 is not a whole number >= 0; give one, e.g. 1"),
    ],
)
def test_simulate_bad_arguments(tmp_path, capsys, args, message) -> None:
    """Dates that are not ISO, out of range, or a negative seed: one line, exit 2."""
    line = _error_line(capsys, ["simulate", "--behaviour", str(ROOT / "data/behaviour.yaml"), "--out", str(tmp_path / "s"), *args])
    assert line == f"subs-model: error: {message}"


def test_simulate_too_large_is_refused(tmp_path, capsys) -> None:
    """A simulation that would hold tens of millions of licenses is refused before it allocates them."""
    path = _write(tmp_path, "b.yaml", "arrivals_per_month: 1000000\narrivals_growth: 0.5\n")
    line = _error_line(capsys, ["simulate", "--behaviour", str(path), "--out", str(tmp_path / "s"),
                                "--start", "2021-01-01", "--end", "2021-12-31"])
    assert line.startswith("subs-model: error: simulate: about ")
    assert line.endswith("licenses would be simulated ('2021-01-01' … '2021-12-31'), over the limit of 20,000,000; "
                         "lower arrivals_per_month, arrivals_growth or legacy_licenses, or shorten the period")


def test_simulate_out_that_cannot_be_a_folder(tmp_path, capsys) -> None:
    """--out under a file (mkdir fails with an OSError): one line naming the folder, checked before simulating."""
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "sim"
    line = _error_line(capsys, ["simulate", "--behaviour", str(ROOT / "data/behaviour.yaml"), "--out", str(out)])
    assert line == f"subs-model: error: cannot write the simulated ledger to {out} (Not a directory); choose a folder you can write to"


def test_simulate_read_only_out(tmp_path, capsys, monkeypatch) -> None:
    """A folder that refuses writes (as a read-only mount does, even for root): one line naming the folder."""
    def refuse(self, folder, format="parquet"):  # noqa: A002, ARG001 - the signature of Ledger.write
        raise PermissionError(13, "Permission denied", str(Path(folder) / "licenses.parquet"))

    monkeypatch.setattr(sm.Ledger, "write", refuse)
    path = _write(tmp_path, "b.yaml", "arrivals_per_month: 2\nlegacy_licenses: 2\n")
    out = tmp_path / "ro"
    line = _error_line(capsys, ["simulate", "--behaviour", str(path), "--out", str(out), "--start", "2024-01-01",
                                "--end", "2024-03-31"])
    assert line == f"subs-model: error: cannot write the simulated ledger to {out} (Permission denied); choose a folder you can write to"


def test_unreadable_catalog_path(tmp_path, capsys) -> None:
    """A catalog that does not exist: one line with the path and the fix."""
    path = tmp_path / "missing.yaml"
    line = _error_line(capsys, ["replay", str(ROOT / "data/sample"), "--catalog", str(path)])
    assert line == f"subs-model: error: {path}: cannot read the catalog (No such file or directory); check the path"


def test_bounds_are_documented() -> None:
    """The README states the YAML alias limit and the term and grace bounds that the code enforces."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for fact in (f"{YAML_ALIAS_LIMIT:,}".replace(",", " "), "3 650", "365", "YYYY-MM-DD"):
        assert fact in readme, fact


def test_simulate_into_a_file_says_it_is_a_file(tmp_path, capsys) -> None:
    """`simulate --out` naming an existing file is refused as a file (not 'pass --force', which could not help)."""
    f = tmp_path / "afile.txt"
    f.write_text("hello")
    assert main(["simulate", "--start", "2025-01-01", "--end", "2025-02-01", "--out", str(f)]) == 2
    assert capsys.readouterr().err.strip() == f"subs-model: error: {f} is a file, not a folder; give a folder for the simulated ledger"
    assert f.read_text() == "hello"


def test_commands_that_read_an_export_say_how_many_rows_they_left_out(tmp_path, capsys) -> None:
    """replay on an export with bad rows runs on the rest and says, in one line, that rows were quarantined."""
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(ROOT / "tests" / "data" / "handmade", raw)
    lines = (raw / "orders.csv").read_text().splitlines()
    lines[1] = lines[1].replace(",4000.00,", ",100000000000000000000,", 1)
    (raw / "orders.csv").write_text("\n".join(lines) + "\n")
    assert main(["replay", str(raw), "--as-of", "2026-10-31"]) == 0
    err = capsys.readouterr().err.strip()
    assert err == f"subs-model: warning: 2 rows of {raw} were quarantined and are left out; see them with: subs-model validate {raw}"


def test_a_closed_output_pipe_does_not_undo_or_fail_the_work(tmp_path) -> None:
    """`subs-model ingest … | head -0`: the reader is gone, the ingest still completes and exits 0, no error printed."""
    import subprocess
    import sys

    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "subs_model", "ingest", str(ROOT / "tests" / "data" / "handmade"), "--into", str(store)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()  # the reader leaves before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""
    assert (store / "current").is_symlink()
