"""A real JupyterLab in a real browser: Run All on a report notebook, no errors, every chart drawn, no overlaps.

JupyterLab stays out of the test and report environment (it slows every nbformat import):
the test installs it into its own venv, ``.venv-lab/`` at the project root (kept between runs;
``SUBS_MODEL_LAB_VENV`` names another folder), and points the lab at a kernel of *this*
environment, so the notebook runs the package under test. The lab serves a copy of the
notebooks and data on 127.0.0.1 with a random token; Debian's Chromium, driven by Playwright,
opens a notebook at notebook width, runs all cells and checks the result: no error output,
no stderr output (the pink boxes: warnings, progress bars), every ``page.figure`` cell drew a
plotly chart, and in no chart does the legend overlap the title or an axis title.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAB_VENV = Path(os.environ.get("SUBS_MODEL_LAB_VENV", ROOT / ".venv-lab"))
#: Every report notebook is opened in the lab.
LAB_NOTEBOOKS = ("01-cohort-overview", "02-renewal-timing", "03-grace-usage", "04-upgrade-revenue",
                 "05-pricing-whatif", "06-forecast", "07-worklists")
#: Small run counts written into the parameters cell of the lab's copy (the Monte Carlo pages; CI time).
LAB_PARAMS: dict[str, dict[str, int]] = {
    "05-pricing-whatif": {"horizon_months": 12, "runs": 4, "elasticity_runs": 2, "break_even_runs": 2},
    "06-forecast": {"months": 12, "runs": 10, "backtest_months": 6},
}
#: Where the kernel writes the tables' downloads, relative to the notebooks (as the report runner does).
LAB_FILES = "lab_files"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _lab_python() -> Path:
    """The lab venv's python, with JupyterLab installed (once; a stamp records the requirement)."""
    want = next(line.strip().strip('",') for line in (ROOT / "pyproject.toml").read_text().splitlines() if "jupyterlab>=" in line)
    py = LAB_VENV / "bin" / "python"
    stamp = LAB_VENV / f".installed-{want}"
    if not stamp.exists():
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(LAB_VENV)], check=True)
        done = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", want],
                              capture_output=True, text=True)
        if done.returncode:
            if os.environ.get("REQUIRE_BROWSER") == "1":
                pytest.fail(f"cannot install {want} into {LAB_VENV}: {done.stderr[-1000:]}")
            pytest.skip(f"cannot install {want} into {LAB_VENV} (offline?); CI installs it")
        stamp.touch()
    return py


def _set_parameters(path: Path, values: dict[str, int]) -> None:
    """Rewrite ``name = value`` lines of the notebook's ``parameters`` cell (comments kept); every name must be there."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    lines = "".join(cell["source"]).splitlines(keepends=True)
    seen = set()
    for i, line in enumerate(lines):
        name = line.split("=", 1)[0].strip()
        if name in values:
            comment = line[line.index("#"):] if "#" in line else "\n"
            lines[i] = f"{name} = {values[name]!r}  {comment}"
            seen.add(name)
    assert seen == set(values), f"{path.name}: no parameter(s) {set(values) - seen}"
    cell["source"] = lines
    path.write_text(json.dumps(nb, ensure_ascii=False, indent=1), encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a copy of notebooks/ and data/, with this environment's kernel."""
    exe = _chromium()
    if exe is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but no chromium found; apt-get install chromium")
        pytest.skip("chromium not installed (CI sets REQUIRE_BROWSER=1 and installs it)")
    t0 = time.perf_counter()
    py = _lab_python()
    base = tmp_path_factory.mktemp("lab")
    work = base / "work"
    shutil.copytree(ROOT / "notebooks", work / "notebooks")
    shutil.copytree(ROOT / "data", work / "data")
    for name, values in LAB_PARAMS.items():
        _set_parameters(work / "notebooks" / f"{name}.ipynb", values)
    # The kernel is this environment's python (the package under test), not the lab venv's.
    spec = base / "jupyter_path" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python 3 (subs_model)",
        "language": "python", "env": {"PYTHONPATH": str(ROOT), "SUBS_MODEL_EXPORT_DIR": str(work / "notebooks" / LAB_FILES),
                                      "SUBS_MODEL_EXPORT_LINK": f"{LAB_FILES}/"},
    }))
    settings = base / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Every cell in the DOM (no windowing), so that each chart can be measured where it is drawn.
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    news = base / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, "JUPYTER_PATH": os.pathsep.join([str(base / "jupyter_path"), str(Path(sys.prefix) / "share" / "jupyter")]),
           "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_DATA_DIR": str(base / "data"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"), "PYTHONPATH": str(ROOT)}
    log = (base / "lab.log").open("w")
    proc = subprocess.Popen(
        [str(py), "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {(base / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        print(f"lab ready in {time.perf_counter() - t0:.1f} s")
        yield {"url": url, "token": token, "exe": exe, "work": work}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# Boxes of the legend and of the chart and axis titles of every plotly chart on the page, scrolled into view.
_BOXES = """() => [...document.querySelectorAll('.js-plotly-plot')].map((plot, i) => {
  plot.scrollIntoView({block: 'center'});
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const drawn = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const titles = [...plot.querySelectorAll('.g-gtitle text, .g-xtitle text, .g-x2title text, .g-ytitle text, .g-y2title text')]
    .filter(drawn).map(el => ({name: el.closest('g').getAttribute('class') + ': ' + el.textContent, box: box(el)}));
  const legend = plot.querySelector('g.legend');
  return {i, svg: !!plot.querySelector('.main-svg'), width: plot.getBoundingClientRect().width,
          title: (plot.querySelector('.g-gtitle text') || {}).textContent || '',
          legend: legend && drawn(legend) ? box(legend) : null, titles};
})"""

# The people tables (subs_model.tables.people_table) on the page: caption, headers, body rows, download links.
_TABLES = """() => [...document.querySelectorAll('.jp-OutputArea-output .sm-table')].map(t => ({
  caption: (t.querySelector('caption') || {}).textContent || '',
  headers: [...t.querySelectorAll('thead th')].map(th => th.textContent.trim()).filter(Boolean),
  rows: t.querySelectorAll('tbody tr').length,
  links: [...t.querySelectorAll('.sm-table-foot a')].map(a => ({text: a.textContent, href: a.href})),
}))"""


def _overlap(a, b, slack: float = 1.0) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0]) - slack
    h = min(a[3], b[3]) - max(a[1], b[1]) - slack
    return max(w, 0) * max(h, 0)


def _run_all(page, lab, name: str) -> dict:
    """Open ``name`` in the lab, Run All, wait for the kernel to finish; what the page shows."""
    nb = json.loads((lab["work"] / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    n_figures, n_tables = sum(".figure(" in c for c in code), sum(".show(" in c for c in code)
    page.goto(f"{lab['url']}/lab/tree/notebooks/{name}.ipynb?token={lab['token']}")
    page.wait_for_function(
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
        f" return k && k.status === 'idle' && w.context.path.endsWith('{name}.ipynb'); }}", timeout=120_000)
    t = time.perf_counter()
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget; const cells = w.content.widgets"
        ".filter(c => c.model.type === 'code'); return cells.every(c => c.model.executionCount !== null)"
        " && w.sessionContext.session.kernel.status === 'idle'; }", timeout=300_000, polling=500)
    page.wait_for_timeout(1500)  # plotly draws after the output arrives
    seconds = time.perf_counter() - t
    out = {
        "n_figures": n_figures, "n_tables": n_tables, "seconds": seconds,
        "errors": page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").all_inner_texts(),
        "stderr": page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts(),
        "charts": page.evaluate(_BOXES),
        "tables": page.evaluate(_TABLES),
    }
    # each download link answers with the file (XLSX is a zip, CSV text), through the lab's file server
    out["downloads"] = {link["href"]: (resp.status, resp.body()[:2]) for t in out["tables"] for link in t["links"]
                        for resp in [page.request.get(link["href"])]}
    page.evaluate("window.jupyterapp.commands.execute('kernelmenu:shutdown')")
    page.evaluate("window.jupyterapp.commands.execute('application:close-all')")
    return out


@pytest.fixture(scope="module")
def lab_runs(lab) -> dict[str, dict]:
    """Each lab notebook run once (Run All) in one browser at 1280×900; the results by name."""
    from playwright.sync_api import sync_playwright

    runs: dict[str, dict] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=lab["exe"], args=FLAGS)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            outside: list[str] = []
            ctx.route("**/*", lambda route, req: route.continue_() if req.url.startswith(lab["url"])
                      else (outside.append(req.url), route.abort()))
            page = ctx.new_page()
            for name in LAB_NOTEBOOKS:
                runs[name] = _run_all(page, lab, name)
                runs[name]["outside"] = list(outside)
                print(f"{name}: Run All {runs[name]['seconds']:.1f} s, {len(runs[name]['charts'])} charts")
        finally:
            browser.close()
    return runs


@pytest.mark.parametrize("name", LAB_NOTEBOOKS)
def test_run_all_in_jupyterlab_without_errors(lab_runs, name) -> None:
    """Run All in JupyterLab: no error output, no stderr box (warnings, tqdm), a drawn chart per figure cell, no request out."""
    r = lab_runs[name]
    assert r["errors"] == [], f"{name}: error output: {r['errors'][0][:500] if r['errors'] else ''}"
    assert r["stderr"] == [], f"{name}: stderr output: {r['stderr'][0][:300] if r['stderr'] else ''}"
    assert len(r["charts"]) == r["n_figures"], f"{name}: {len(r['charts'])} charts for {r['n_figures']} figure cells"
    assert all(c["svg"] for c in r["charts"]), name
    assert r["n_figures"] + r["n_tables"] > 0, f"{name} shows neither a chart nor a table"
    assert r["outside"] == [], f"requests outside the lab: {r['outside'][:3]}"


@pytest.mark.parametrize("name", LAB_NOTEBOOKS)
def test_no_legend_overlaps_a_title_in_jupyterlab(lab_runs, name) -> None:
    """At notebook width (1280 px window, ~850 px notebook) no chart's legend box intersects its title or an axis title."""
    charts = lab_runs[name]["charts"]
    clashes = [f"chart {c['i'] + 1} ({c['title'][:40]!r}): legend over {t['name']!r}"
               for c in charts if c["legend"] for t in c["titles"] if _overlap(c["legend"], t["box"]) > 0]
    assert clashes == [], f"{name} at {charts[0]['width']:.0f} px: " + "; ".join(clashes)


@pytest.mark.parametrize("name", LAB_NOTEBOOKS)
def test_tables_and_downloads_in_jupyterlab(lab_runs, name) -> None:
    """Every ``.show`` cell drew a people table with headers and rows, and its XLSX/CSV links download the file."""
    r = lab_runs[name]
    tables = r["tables"]
    assert len(tables) == r["n_tables"], f"{name}: {len(tables)} tables for {r['n_tables']} show cells"
    for t in tables:
        assert t["headers"] and t["rows"] > 0, f"{name}: empty table {t['caption'] or t['headers']}"
        assert not any("_" in h for h in t["headers"]), f"{name}: snake_case header in {t['headers']}"
        assert [link["text"] for link in t["links"]] == ["XLSX", "CSV"], f"{name}: links {t['links']}"
    for href, (status, head) in r["downloads"].items():
        assert status == 200, f"{name}: {href} answered {status}"
        assert head == b"PK" if ".xlsx" in href else head, f"{name}: {href} is not the file"


def test_worklists_in_jupyterlab_show_the_four_lists(lab_runs) -> None:
    """07: the four lists with their titles and headers in the report language, no chart, each downloadable."""
    from subs_model.worklists import LABELS

    r = lab_runs["07-worklists"]
    assert r["charts"] == []
    want = [LABELS["ru"][k] for k in ("in_grace", "paid_not_activated", "lapsed_not_upgraded", "stuck_orders")]
    assert [t["caption"] for t in r["tables"]] == want
    assert all(LABELS["ru"]["license_id"] in t["headers"] or LABELS["ru"]["order_id"] in t["headers"] for t in r["tables"])
    assert len(r["downloads"]) == 8
