"""The report runner: parameters, atomic publishing on failure, offline HTML in a real browser."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook
from test_escape import PAYLOADS, live_payload

from subs_model.cli import main
from subs_model.reports import (ParameterError, scrub, check_parameters, declared_parameters, failed_dir, run_reports,
                                work_root)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
def test_kernel_starts_in_the_notebook_folder_and_the_host_keeps_its_own(tmp_path, monkeypatch) -> None:
    """A notebook runs in its own folder (relative paths in it resolve there), and running it
    never changes the host process's working directory (notebooks may run side by side)."""
    import os

    d = tmp_path / "nbs"
    d.mkdir()
    _nb(d / "where.ipynb", "import os\nprint('cwd', os.getcwd())")
    here = os.getcwd()

    chdir = os.chdir

    def only_here(path: object) -> None:  # papermill's file handler re-enters the current folder; nothing else may
        if os.path.realpath(str(path)) != os.path.realpath(here):
            raise AssertionError(f"the host process's working directory was changed to {path}")
        chdir(path)

    monkeypatch.setattr(os, "chdir", only_here)
    res = run_reports(notebooks=d, out=tmp_path / "reports", log=lambda *a, **k: None)
    assert [r.status for r in res] == ["ok"], res[0].error
    assert f"cwd {d.resolve()}" in (tmp_path / "reports" / "where.html").read_text(encoding="utf-8")
    assert os.getcwd() == here


# A data folder name is a text field that reaches the index, so it carries a payload too.
DATA_DIR_NAME = "ledger <img src=x onerror=alert(5)>"


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
        if "forecast" in nb.name:
            assert {"months", "runs", "seed", "arrivals", "cutoffs", "backtest_months"} <= set(params)
        elif "worklists" in nb.name:
            assert {"catalog", "near_days", "upgrade_window_days"} <= set(params)
            assert params["near_days"].type is int and params["upgrade_window_days"].type is int
        elif "whatif" not in nb.name:
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
    kept = list(failed_dir(out).glob("toy-*.ipynb"))
    assert len(kept) == 1 and failed_dir(out).parent == out.parent  # beside the published folder, not in it
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "runs.json", "toy.html"]
    printed = capsys.readouterr().out
    assert "FAILED" in printed
    if mode == "raise":
        assert "RuntimeError: boom on purpose" in printed and "('import os, time')" in printed
    assert json.loads((out / "runs.json").read_text())["toy"]["status"] == "failed"
    assert not _my_work_folders(), "no work folder left behind"


def _my_work_folders() -> list[Path]:
    root = work_root()
    return [p for p in root.iterdir() if f"-{os.getpid()}-" in p.name] if root.is_dir() else []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_dead_runs_and_old_layouts_removed_at_next_run(toy, tmp_path) -> None:
    """A dead run's work folder and half-written file, old `.NAME-xxxx/` folders and `failed/` go at the next run."""
    out = tmp_path / "reports"
    (out / ".toy-ab12cd_9").mkdir(parents=True)  # the work folder of an earlier version's run
    (out / "failed").mkdir()
    (out / "failed" / "toy-20260101-000000.ipynb").write_text("{}")
    dead = _dead_pid()
    (out / f".index.html.{dead}.tmp").write_text("half")
    work_root().mkdir(parents=True, exist_ok=True)
    stale = work_root() / f"toy-{dead}-abcdefgh"
    stale.mkdir()
    (out / "keep-me").mkdir()  # not ours: untouched
    assert main(["report", "--notebooks", str(toy), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "keep-me", "runs.json", "toy.html"]
    assert not stale.exists()
    assert (failed_dir(out) / "toy-20260101-000000.ipynb").exists()


def test_runner_killed_mid_run_leaves_nothing_published_and_next_run_cleans(toy, tmp_path) -> None:
    """kill -9 of the runner during a notebook: nothing appears in the published folder; the next run removes its work folder."""
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "subs_model.cli", "report", "--notebooks", str(toy), "--out", str(out), "-p", "mode", "sleep"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not [p for p in work_root().glob(f"toy-{proc.pid}-*")] and time.monotonic() < deadline:
            time.sleep(0.2)
        work = list(work_root().glob(f"toy-{proc.pid}-*"))
        assert work, "the runner made its work folder outside the published folder"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel
        proc.wait()
    assert [p.name for p in out.iterdir()] == []
    assert main(["report", "--notebooks", str(toy), "--out", str(out)]) == 0
    assert not work[0].exists()
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "runs.json", "toy.html"]


def test_index_shows_paths_relative_to_the_data_root(toy, tmp_path) -> None:
    """An absolute path parameter or a path in an error shows relative to the data root, never as a server path."""
    out = tmp_path / "reports"
    inner = toy.parent / "data" / "ledger"  # the data root is the notebooks folder's parent
    for value, shown in (("/srv/kassir/ledger", "…/ledger"), (str(inner), "data/ledger")):
        assert main(["report", "--notebooks", str(toy), "--out", str(out), "-p", "mode", value]) == 0
        for name in ("index.html", "runs.json"):
            text = (out / name).read_text(encoding="utf-8")
            assert "/srv/" not in text and str(tmp_path) not in text, name
        assert json.loads((out / "runs.json").read_text())["toy"]["parameters"]["mode"] == shown
    secret = "/srv/kassir/ledger"
    root = tmp_path / "project"
    inside = f"FileNotFoundError: {root}/data/x.csv and {secret}: missing"
    assert scrub(inside, root, root / "notebooks") == "FileNotFoundError: data/x.csv and …/ledger: missing"


def test_quiet_run_ipc_kernel_no_tcp_or_tqdm_warning(tmp_path, capfd) -> None:
    """The kernel talks over IPC (no TCP warning on the console), and importing the simulator prints no tqdm warning."""
    d = tmp_path / "nbs"
    d.mkdir()
    _nb(d / "quiet.ipynb", (
        "import subs_model.simulate\n"
        "from ipykernel.connect import get_connection_info\n"
        "print('transport', get_connection_info(unpack=True)['transport'])"
    ))
    capfd.readouterr()
    res = run_reports(notebooks=d, out=tmp_path / "reports", log=lambda *a, **k: None)
    assert [r.status for r in res] == ["ok"] and res[0].stderr == [], res[0].stderr
    assert "transport ipc" in (tmp_path / "reports" / "quiet.html").read_text(encoding="utf-8")
    console = capfd.readouterr()
    assert "without encryption" not in console.err + console.out
    assert "IProgress" not in console.err + console.out


def test_tables_downloads_published_beside_the_report(tmp_path) -> None:
    """A people_table in a notebook: its CSV/XLSX land in <out>/<name>_files/ and the report links to them; markers hidden."""
    d = tmp_path / "nbs"
    d.mkdir()
    _nb(d / "tab.ipynb", (
        "# NBVAL_CHECK_OUTPUT\n"
        "import pandas as pd\n"
        "from subs_model.tables import Col, people_table\n"
        "people_table(pd.DataFrame({'a': [1, 2], 'm': [100, 250]}), [Col('a', 'А', 'A', 'int', total='sum'),"
        " Col('m', 'Сумма', 'Amount', 'rub', total='sum')], 'ru', name='demo')"
    ))
    out = tmp_path / "reports"
    assert [r.status for r in run_reports(notebooks=d, out=out, log=lambda *a, **k: None)] == ["ok"]
    page = (out / "tab.html").read_text(encoding="utf-8")
    assert 'href="tab_files/demo.xlsx"' in page and 'href="tab_files/demo.csv"' in page
    assert "Итого" in page and "NBVAL" not in page
    assert sorted(p.name for p in (out / "tab_files").iterdir()) == ["demo.csv", "demo.xlsx"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # nothing staged left behind


def test_report_from_another_folder_uses_the_shipped_notebooks(tmp_path, monkeypatch, capsys) -> None:
    """`subs-model report NAME` run from an unrelated folder finds the notebooks, the catalog and the sample."""
    monkeypatch.chdir(tmp_path)
    assert main(["report", "02-renewal-timing", "-p", "lang", "en"]) == 0
    assert (tmp_path / "reports" / "02-renewal-timing.html").is_file()
    runs = json.loads((tmp_path / "reports" / "runs.json").read_text())
    assert runs["02-renewal-timing"]["title"] == "Renewal timing" and runs["02-renewal-timing"]["data_fingerprint"] not in ("", "missing")
    assert "1 of 1 reports published" in capsys.readouterr().out


def test_default_jobs_follow_the_cpus_available() -> None:
    """Two notebooks side by side where two CPUs or more are available (faster on 2 cores, measured), else one."""
    import subs_model as sm
    from subs_model.reports import default_jobs

    try:
        sm.set_workers(1)
        assert default_jobs() == 1
        sm.set_workers(4)
        assert default_jobs() == 2
    finally:
        sm.set_workers(None)


def test_jobs_run_notebooks_side_by_side(tmp_path) -> None:
    """--jobs 2: two notebooks run at the same time, each with its own environment; results keep the given order."""
    d = tmp_path / "nbs"
    d.mkdir()
    for name in ("a", "b"):
        _nb(d / f"{name}.ipynb", "import os, time\ntime.sleep(4)\nprint('export', os.environ['SUBS_MODEL_EXPORT_LINK'])")
    out = tmp_path / "reports"
    t = time.perf_counter()
    res = run_reports(["b", "a"], notebooks=d, out=out, jobs=2, log=lambda *a, **k: None)
    wall = time.perf_counter() - t
    assert [r.name for r in res] == ["b", "a"] and [r.status for r in res] == ["ok", "ok"]
    assert wall < 0.8 * sum(r.seconds for r in res), (wall, [r.seconds for r in res])
    assert "export a_files/" in (out / "a.html").read_text(encoding="utf-8")  # each kernel got its own environment
    assert "export b_files/" in (out / "b.html").read_text(encoding="utf-8")
    assert "SUBS_MODEL_EXPORT_LINK" not in os.environ  # the runner's own environment is untouched
    with pytest.raises(ParameterError, match="jobs must be 1 or more"):
        run_reports(["a"], notebooks=d, out=out, jobs=0, log=lambda *a, **k: None)


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
    """The report notebooks published to a fresh folder, from inputs that carry XSS payloads.

    The ledger is the sample with every feature name a payload (in a folder whose name is one),
    the scenarios file the shipped one with payload names and descriptions.
    """
    base = tmp_path_factory.mktemp("inputs")
    data = base / DATA_DIR_NAME
    shutil.copytree(ROOT / "data/sample", data)
    f = pd.read_csv(data / "features.csv", dtype=str)
    f["name"] = PAYLOADS
    f["requires_subscription"] = "True"
    f.to_csv(data / "features.csv", index=False)
    spec = yaml.safe_load((ROOT / "data/scenarios.yaml").read_text(encoding="utf-8"))
    for i, sc in enumerate(spec["scenarios"]):
        sc["name"] = f"{PAYLOADS[i % len(PAYLOADS)]} {i}"
        sc["title"] = {"ru": sc["name"], "en": sc["name"]}  # what the reports show: the title of their language
        sc["description"] = PAYLOADS[(i + 1) % len(PAYLOADS)]
    (base / "scenarios.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    out = tmp_path_factory.mktemp("reports")
    names = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    quiet = {"notebooks": NOTEBOOKS, "out": out, "text_params": {"lang": "en", "data": str(data)}, "log": lambda *a, **k: None}
    results = run_reports([n for n in names if "whatif" not in n], **quiet)
    results += run_reports([n for n in names if "whatif" in n], typed_params={"scenarios": str(base / "scenarios.yaml")}, **quiet)
    assert [r.status for r in results] == ["ok"] * len(names), [r.error for r in results]
    return out


def test_payloads_in_data_and_scenario_names_are_text_in_every_report(published) -> None:
    """No element or attribute of a payload exists in any published page; the payloads are shown as text."""
    from bs4 import BeautifulSoup

    pages = {p.name: p.read_text(encoding="utf-8") for p in sorted(published.glob("*.html"))}
    assert len(pages) == len(list(NOTEBOOKS.glob("*.ipynb"))) + 1  # the reports and the index
    for name, text in pages.items():
        assert live_payload(text) == [], name
        soup = BeautifulSoup(text, "html.parser")
        assert not soup.select("img[src=x], svg[onload], [onerror], [onload]"), name
        assert not [a for a in soup.find_all("a", href=True) if a["href"].strip().lower().startswith("javascript:")], name
    shown = {name: BeautifulSoup(text, "html.parser").get_text() for name, text in pages.items()}
    for payload in PAYLOADS:  # the paths were exercised: notes and tables show each payload as written
        assert shown["03-grace-usage.html"].count(payload) >= 2, payload  # the features note and the features table
        assert payload in shown["05-pricing-whatif.html"], payload  # the scenario table, the summary note
    assert "…/" + DATA_DIR_NAME in shown["index.html"] and str(published.parent) not in pages["index.html"]
    assert not [name for name, text in pages.items() if "NBVAL" in text]  # test markers never reach readers



def test_english_reports_read_english(published) -> None:
    """The suite run with lang=en: no Russian heading, intro, note, label or scenario title; only the product's name «Кассир 5»."""
    from bs4 import BeautifulSoup

    for page in sorted(published.glob("*.html")):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        for tag in soup(["script", "style"]):
            tag.decompose()
        words = set(re.findall(r"\w*[А-Яа-яЁё]\w*", soup.get_text(" ")))
        assert words <= {"Кассир"}, (page.name, sorted(words)[:10])


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
    assert len(pages) == len(list(NOTEBOOKS.glob("*.ipynb"))) + 1  # the reports and the index
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=flags)
        try:
            for html_file in pages:
                ctx = browser.new_context()
                requests: list[str] = []
                errors: list[str] = []
                ctx.route("http*://**/*", lambda route, req: (requests.append(req.url), route.abort()))
                page = ctx.new_page()
                dialogs: list[str] = []
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                # A payload that ran would call alert(); count calls even if the dialog were suppressed.
                page.add_init_script("window.__alerts = []; const a = window.alert; "
                                     "window.alert = (m) => { window.__alerts.push(String(m)); a(m); };")
                page.goto(html_file.as_uri())
                if html_file.name == "07-worklists.html":  # lists, no charts: the tables and their downloads
                    assert page.locator("table").count() == 4 and page.locator("a[href$='.xlsx']").count() == 4
                elif html_file.name != "index.html":
                    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
                    assert page.locator(".js-plotly-plot").count() >= 1, html_file.name
                    assert "page.figure(" not in page.content() and page.locator(".jp-InputArea-editor").count() == 0, "no code"
                else:  # the summary: eight headline KPIs linking to their reports, then every report by title
                    assert page.locator("a.kpi").count() == 8
                    assert page.locator("a[href$='.html']:not(.kpi)").count() == len(pages) - 1
                    assert "Renewal timing" in page.locator("table").inner_text()
                if html_file.name == "05-pricing-whatif.html":  # scenario names reach the legends, as text
                    legend = " ".join(page.locator(".legendtext").all_text_contents())
                    assert PAYLOADS[0] in legend and PAYLOADS[2] in legend, legend[:200]
                page.wait_for_timeout(300)  # an onerror/onload handler would have fired by now
                assert dialogs == [] and page.evaluate("window.__alerts") == [], f"{html_file.name}: payload ran {dialogs}"
                assert page.locator("img[src='x'], svg[onload], [onerror]").count() == 0, html_file.name
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


def test_the_data_fingerprint_is_hashed_once_per_run_while_the_files_are_unchanged(tmp_path: Path) -> None:
    from subs_model.reports import _fingerprint

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "licenses.csv").write_text("license_id\nL1\n", encoding="utf-8")
    seen: dict = {}
    first = _fingerprint(str(tmp_path / "d"), tmp_path, seen)
    assert first == _fingerprint(str(tmp_path / "d"), tmp_path) and len(seen) == 1
    assert _fingerprint(str(tmp_path / "d"), tmp_path, seen) == first and len(seen) == 1  # not hashed again
    (tmp_path / "d" / "licenses.csv").write_text("license_id\nL2\n", encoding="utf-8")  # same size, new content
    os.utime(tmp_path / "d" / "licenses.csv", ns=(0, 10**18))
    second = _fingerprint(str(tmp_path / "d"), tmp_path, seen)
    assert second != first and second == _fingerprint(str(tmp_path / "d"), tmp_path) and len(seen) == 2


_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def test_committed_notebooks_carry_each_heading_and_intro_once_per_language() -> None:
    """Every Markdown cell is tagged lang-ru or lang-en; each language gets the same headings, in its own script."""
    from subs_model.reports import cell_languages, keep_language, notebook_title

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        md = [c for c in nb.cells if c.cell_type == "markdown"]
        assert md and all(len(cell_languages(c)) == 1 for c in md), path.name
        heads = {}
        for lang in ("ru", "en"):
            kept = [c for c in keep_language(nbformat.read(path, as_version=4), lang).cells if c.cell_type == "markdown"]
            heads[lang] = [ln.split(" ", 1)[0] for c in kept for ln in c.source.splitlines() if ln.startswith("#")]
            text = "\n".join(c.source for c in kept)
            if lang == "en":
                assert not _CYRILLIC.search(text), (path.name, _CYRILLIC.search(text))
            else:  # a Russian cell reads Russian: no English sentence (three or more lowercase English words in a row)
                assert not re.search(r"\b[a-z]{2,} [a-z]{2,} [a-z]{2,} [a-z]{2,}\b", text.replace("`as_of`", "")), path.name
                assert " · " not in text, path.name
        assert heads["ru"] == heads["en"] and heads["ru"][0] == "#", path.name
        assert _CYRILLIC.search(notebook_title(path, "ru")) and not _CYRILLIC.search(notebook_title(path, "en")), path.name


def test_a_report_shows_the_markdown_of_its_language_only(tmp_path) -> None:
    """The runner drops the other language's cells before export; untagged cells show in both."""
    from bs4 import BeautifulSoup
    from nbformat.v4 import new_markdown_cell

    d = tmp_path / "nbs"
    d.mkdir()
    p = new_code_cell('lang = "ru"  # labels: ru or en')
    p.metadata["tags"] = ["parameters"]
    cells = [new_markdown_cell("# Заголовок отчёта", metadata={"tags": ["lang-ru"]}),
             new_markdown_cell("# Report heading", metadata={"tags": ["lang-en"]}), p,
             new_markdown_cell("Common ₽ line"), new_code_cell("print('lang', lang)")]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, d / "two.ipynb")
    quiet = {"notebooks": d, "log": lambda *a, **k: None}
    shown = {}
    for lang, given in (("ru", {}), ("en", {"lang": "en"})):  # ru from the declared default
        assert [r.status for r in run_reports(out=tmp_path / lang, text_params=given, **quiet)] == ["ok"]
        soup = BeautifulSoup((tmp_path / lang / "two.html").read_text(encoding="utf-8"), "html.parser")
        assert soup.title.string == ("Заголовок отчёта" if lang == "ru" else "Report heading")  # the browser tab too
        shown[lang] = soup.get_text()
        assert json.loads((tmp_path / lang / "runs.json").read_text())["two"]["title"] == (
            "Заголовок отчёта" if lang == "ru" else "Report heading")
    assert "Заголовок отчёта" in shown["ru"] and "Report heading" not in shown["ru"] and "lang ru" in shown["ru"]
    assert "Report heading" in shown["en"] and "Заголовок" not in shown["en"] and "lang en" in shown["en"]
    assert "Common ₽ line" in shown["ru"] and "Common ₽ line" in shown["en"]
