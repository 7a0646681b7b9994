"""Report parameters: suite-wide names, domains checked before any kernel, paths that resolve from anywhere, help."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from subs_model.cli import main
from subs_model.report_params import (ParameterError, declared_parameters, parameter_help, resolve_paths,
                                      suite_parameters)
from subs_model.resources import data_dir, default_catalog, notebooks_dir

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(notebooks_dir().glob("*.ipynb"))


def test_shipped_notebooks_and_data_found_from_any_folder(tmp_path, monkeypatch) -> None:
    """The package finds the shipped notebooks and data whatever the current folder."""
    monkeypatch.chdir(tmp_path)
    assert notebooks_dir().is_absolute() and (notebooks_dir() / "01-cohort-overview.ipynb").is_file()
    assert (data_dir() / "sample" / "licenses.parquet").is_file() and default_catalog().is_file()


def test_suite_parameter_goes_to_the_notebooks_that_declare_it() -> None:
    """-p runs goes only to the what-if; -p edition to 01–04; lang to all; a name nobody declares is refused."""
    per = suite_parameters(NBS, {"runs": "5", "edition": "full", "lang": "en"}, {"scenarios": "x.yaml"})
    by = {p.stem: v for p, v in zip(NBS, per, strict=True)}
    assert by["05-pricing-whatif"] == {"runs": 5, "lang": "en", "scenarios": "x.yaml"}
    assert by["01-cohort-overview"] == {"edition": "full", "lang": "en"}
    with pytest.raises(ParameterError, match=r"unknown parameter 'runz'.*no chosen notebook.*\n  data \(str"):
        suite_parameters(NBS, {"runz": "5"}, {})
    with pytest.raises(ParameterError, match=r"05-pricing-whatif: parameter 'runs' expects int"):
        suite_parameters(NBS, {"runs": "many"}, {})


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "as_of", "2031-01-01"], "as_of 2031-01-01 is outside the data (2020-01-02 … 2026-10-31)"),
    (["-p", "as_of", "2019-12-31"], "as_of 2019-12-31 is outside the data"),
    (["-p", "as_of", "31.10.2026"], "'as_of' must be a day YYYY-MM-DD"),
    (["-p", "start", "2026-06-01", "-p", "end", "2026-01-01"], "start 2026-06-01 is after end 2026-01-01"),
    (["-p", "end", "2026-09-30", "-p", "as_of", "2026-06-30"], "end 2026-09-30 is after as_of 2026-06-30"),
    (["-p", "churn_horizon_days", "0"], "'churn_horizon_days' must be greater than 0, got 0"),
    (["-p", "churn_horizon_days", "-30"], "greater than 0"),
    (["-p", "edition", "Basic"], "'edition' must be one of all, full, basic; got 'Basic'"),
    (["-p", "lang", "de"], "'lang' must be one of ru, en; got 'de'"),
    (["-p", "runs", "0"], "05-pricing-whatif: parameter 'runs' must be greater than 0"),
    (["-p", "horizon_months", "-1"], "'horizon_months' must be greater than 0"),
    (["-p", "data", "no/such/folder"], "parameter 'data': "),
])
def test_out_of_domain_values_refused_before_any_kernel(tmp_path, capsys, args, message) -> None:
    """Each bad value is one line on stderr, exit 2, within seconds, and no report folder is made."""
    out = tmp_path / "reports"
    t = time.perf_counter()
    assert main(["report", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    assert time.perf_counter() - t < 20  # a kernel start and a notebook would be far slower


def test_copied_notebooks_find_the_shipped_catalog(tmp_path) -> None:
    """Notebooks copied elsewhere (no ../data beside them) get the shipped catalog and sample as absolute paths."""
    nb_dir = tmp_path / "mine"
    nb_dir.mkdir()
    shutil.copy(NBS[0], nb_dir)
    declared = declared_parameters(nb_dir / NBS[0].name)
    got = resolve_paths(declared, {}, nb_dir, data_dir(), cwd=tmp_path)
    assert got == {"data": str(data_dir() / "sample"), "catalog": str(data_dir() / "catalog.yaml")}
    (tmp_path / "ledger").mkdir()
    got = resolve_paths(declared, {"data": "ledger"}, nb_dir, data_dir(), cwd=tmp_path)
    assert got["data"] == str(tmp_path / "ledger")  # a given relative path is from the current folder


def test_report_help_lists_notebook_parameters_in_both_languages(capsys) -> None:
    """`report --help` lists every notebook parameter with type, default and help; --lang ru translates."""
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = capsys.readouterr().out
    assert "notebook parameters (-p NAME VALUE):" in out
    for nb in NBS:
        for name in declared_parameters(nb):
            assert f"\n  {name} (" in out, name
    assert "churn_horizon_days (int, 365; 01,02,03,04) days without coverage" in out
    with pytest.raises(SystemExit):
        main(["--lang", "ru", "report", "--help"])
    out = capsys.readouterr().out
    assert "параметры блокнотов" in out and "дней до признания ухода" in out and "по умолчанию все" in out
    assert "параметры блокнотов" in parameter_help(notebooks_dir(), "ru")


def test_cli_errors_in_russian(tmp_path, capsys) -> None:
    """--lang ru: the error prefix and the closing line are Russian."""
    assert main(["--lang", "ru", "report", "--out", str(tmp_path / "r"), "-p", "lang", "de"]) == 2
    assert capsys.readouterr().err.startswith("subs-model: ошибка: ")
