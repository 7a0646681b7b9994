"""The report runner: parameters, atomic publishing on failure, offline HTML in a real browser."""

from __future__ import annotations

import ast
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from subs_model.cli import main
from subs_model.reports import ParameterError, check_parameters, declared_parameters, run_reports

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _nb(path: Path, body: str, params: str = 'mode = "ok"  # what the test makes the notebook do\nn = 1  # a number') -> Path:
    p = new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[p, new_code_cell("import plotly.graph_objects as go\ngo.Figure(go.Bar(x=[1, 2], y=[n, 2]))"),
                             new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    """A notebook folder with one tiny notebook whose behaviour a parameter selects."""
    d = tmp_path / "nbs"
    d.mkdir()
    _nb(d / "toy.ipynb", (
        "import os, time\n"
        "if mode == 'raise':\n    raise RuntimeError('boom on purpose')\n"
        "if mode == 'sleep':\n    time.sleep(30)\n"
        "if mode == 'kill':\n    os.kill(os.getpid(), 9)\n"
        "print('mode', mode, 'n', n)"
    ))
    return d


def test_declared_parameters_read_from_the_tagged_cell() -> None:
    """Every committed notebook declares typed parameters with help comments, data defaulting to the sample."""
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        params = declared_parameters(nb)
        assert {"data", "as_of", "lang"} <= set(params), nb.name
        assert params["data"].default == "../data/sample"
        if "whatif" not in nb.name:
            assert {"churn_horizon_days", "edition", "start", "end"} <= set(params), nb.name
            assert params["churn_horizon_days"].type is int
        else:
            assert {"scenarios", "horizon_months", "runs", "seed", "grace_days", "renewal_price"} <= set(params)
        assert all(p.help for p in params.values()), nb.name


def test_unknown_or_mistyped_parameter_refused_with_the_valid_list(toy) -> None:
    """An undeclared name, or a value of the wrong type, is refused before anything runs."""
    nb = toy / "toy.ipynb"
    with pytest.raises(ParameterError, match=r"unknown parameter 'mdoe'.*valid parameters:\n  mode \(str"):
        check_parameters(nb, {"mdoe": "x"}, {})
    with pytest.raises(ParameterError, match="'n' expects int"):
        check_parameters(nb, {"n": "three"}, {})
    with pytest.raises(ParameterError, match="quote it in YAML"):
        check_parameters(nb, {}, {"mode": 777})
    assert check_parameters(nb, {"n": "3", "mode": "00777"}, {}) == {"n": 3, "mode": "00777"}  # ids stay strings


def test_parameters_injected_and_visible(toy, tmp_path) -> None:
    """-p values reach the notebook (with their declared types) and show in the report and the index."""
    out = tmp_path / "reports"
    assert main(["report", "--notebooks", str(toy), "--out", str(out), "-p", "mode", "ok", "-p", "n", "7"]) == 0
    page = (out / "toy.html").read_text(encoding="utf-8")
    assert "mode ok n 7" in page
    assert "n = 7" in (out / "index.html").read_text(encoding="utf-8")
    assert json.loads((out / "runs.json").read_text())["toy"]["parameters"] == {"mode": "ok", "n": 7}
    assert main(["report", "--notebooks", str(toy), "--out", str(out), "-p", "nope", "1"]) == 2


@pytest.mark.parametrize("mode", ["raise", "sleep", "kill"])
def test_failure_keeps_previous_report_byte_identical(toy, tmp_path, mode, capsys) -> None:
    """A raising cell, a timeout or a killed kernel: exit 1, last good report untouched, notebook kept."""
    out = tmp_path / "reports"
    assert main(["report", "--notebooks", str(toy), "--out", str(out)]) == 0
    before = (out / "toy.html").read_bytes()
    code = main(["report", "--notebooks", str(toy), "--out", str(out), "-p", "mode", mode, "--cell-timeout", "5"])
    assert code == 1
    assert (out / "toy.html").read_bytes() == before
    kept = list((out / "failed").glob("toy-*.ipynb"))
    assert len(kept) == 1
    printed = capsys.readouterr().out
    assert "FAILED" in printed
    if mode == "raise":
        assert "RuntimeError: boom on purpose" in printed and "('import os, time')" in printed
    assert json.loads((out / "runs.json").read_text())["toy"]["status"] == "failed"
    assert not [p for p in out.iterdir() if p.name.startswith(".toy-")], "no temporary folder left behind"


def test_committed_notebooks_carry_no_outputs_except_checked_cells() -> None:
    """Notebooks are committed clean: only '# NBVAL_CHECK_OUTPUT' cells keep their outputs; no def/class/loops."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            if "NBVAL_CHECK_OUTPUT" not in cell.source:
                assert not cell.outputs, f"{path.name}: outputs committed in {cell.source[:40]!r}"
            tree = ast.parse(cell.source)
            banned = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.For, ast.While, ast.ListComp, ast.DictComp)
            assert not any(isinstance(n, banned) for n in ast.walk(tree)), f"{path.name}: logic belongs in the package"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """The five report notebooks run on the sample data and published to a fresh folder."""
    out = tmp_path_factory.mktemp("reports")
    results = run_reports(notebooks=NOTEBOOKS, out=out, text_params={"lang": "en"}, log=lambda *a, **k: None)
    assert [r.status for r in results] == ["ok"] * 5, [r.error for r in results]
    return out


def test_reports_render_offline_in_a_real_browser(published) -> None:
    """Headless Chromium, network blocked: every report renders its charts with no request and no console error."""
    exe = _chromium()
    if exe is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but no chromium found; apt-get install chromium")
        pytest.skip("chromium not installed (CI sets REQUIRE_BROWSER=1 and installs it)")
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    pages = sorted(published.glob("*.html"))
    assert len(pages) == 6  # five reports and the index
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=flags)
        try:
            for html_file in pages:
                ctx = browser.new_context()
                requests: list[str] = []
                errors: list[str] = []
                ctx.route("http*://**/*", lambda route, req: (requests.append(req.url), route.abort()))
                page = ctx.new_page()
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(html_file.as_uri())
                if html_file.name != "index.html":
                    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
                    assert page.locator(".js-plotly-plot").count() >= 1, html_file.name
                    assert "page.figure(" not in page.content() and page.locator(".jp-InputArea-editor").count() == 0, "no code"
                else:
                    assert page.locator("a[href$='.html']").count() == 5
                assert requests == [], f"{html_file.name} made network requests: {requests[:3]}"
                assert errors == [], f"{html_file.name} console errors: {errors[:3]}"
                ctx.close()
        finally:
            browser.close()


def test_papermill_reads_every_declared_parameter() -> None:
    """papermill's own inspector parses every line of each parameters cell (no 'Unable to parse' warnings)."""
    from papermill.translators import PythonTranslator

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        names = {p.name for p in PythonTranslator.inspect(cell)}
        assert names == set(declared_parameters(path)), path.name
