"""The report runner: parameterised notebooks → offline HTML reports, published atomically, and a summary page.

Each named notebook (by default the shipped ones, :func:`subs_model.resources.notebooks_dir`,
found from any folder) is run with papermill (``kernel_name="python3"``, the notebook's folder
as working directory, a per-cell timeout, the kernel on IPC sockets in a private work folder
rather than TCP) in a work folder outside the published tree, converted to HTML without code
cells through an offline template (plotly.js embedded once per report, no CDN request of any
kind, stderr and ``# NBVAL_…`` markers left out), and only then moved over the published
report, with the downloads of its tables (``<name>_files/``, :mod:`subs_model.tables`). A
failing cell, a timeout or a dead kernel leaves the last good report untouched, keeps the
executed notebook in ``<out>.failed/`` (a sibling of the published folder, so a web server that
publishes ``<out>`` does not expose it) and makes the run exit non-zero.

Parameters are checked before any kernel starts (:mod:`subs_model.report_params`): a name no
chosen notebook declares, a value of the wrong type or outside its domain is refused in one
line. Path parameters reach the notebooks as absolute paths. ``index.html`` opens with the
headline KPIs of one replay of the reports' ledger (:mod:`subs_model.report_summary`), then
lists the reports; it and ``runs.json`` show paths relative to the data root, never server
paths. Files, work folders and leftovers of dead runs: :mod:`subs_model.report_files`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from . import __version__
from .errors import SubsModelError, read_yaml
from .report_files import (atomic_write, clean_leftovers, publish_files, scrub, shown_params, failed_dir,
                           work_root)
from .report_cache import LEDGER_CACHE_ENV
from .report_params import (NotebookParameter, ParameterError, check_domains, check_parameters, declared_parameters,
                            resolve_paths, suite_parameters)
from .resources import data_dir, notebooks_dir
from .tables import EXPORT_DIR_ENV, EXPORT_LINK_ENV

__all__ = ["NotebookParameter", "ParameterError", "ReportError", "RunResult", "cell_languages", "check_parameters", "default_jobs",
           "declared_parameters", "keep_language", "notebook_title", "run_reports"]

TEMPLATES = Path(__file__).parent / "templates"
_NBVAL_MARK = re.compile(r"^\s*#\s*NBVAL_\w+\s*$\n?", re.MULTILINE)
_MATHJAX_TAG = re.compile(r"<script[^>]*src=\"[^\"]*(?:mathjax|MathJax)[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)


class ReportError(SubsModelError, RuntimeError):
    """A report notebook failed (cell error, timeout, dead kernel)."""


@dataclass
class RunResult:
    """What happened to one notebook of a run."""

    name: str
    status: str  # ok | failed
    seconds: float
    parameters: dict[str, Any]
    html: Path | None = None
    failed_notebook: Path | None = None
    error: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    stderr: list[str] = field(default_factory=list)  # first lines of the stderr outputs left out of the report


def _fingerprint(data: Any, notebook_dir: Path, seen: dict[tuple[str, str], str] | None = None) -> str:
    """Short content hash of the data folder (or file) a report read; ``seen`` keeps the hashes of
    one run by path and :func:`subs_model.report_cache.source_stamp` (files unchanged: not hashed again)."""
    if not data:
        return ""
    p = Path(data)
    if not p.is_absolute():
        p = (notebook_dir / p).resolve()
    if seen is not None:
        from .report_cache import source_stamp

        key = (str(p), source_stamp(p))
        if key not in seen:
            seen[key] = _fingerprint(p, notebook_dir)
        return seen[key]
    h = hashlib.sha256()
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p] if p.exists() else []
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16] if files else "missing"


def _stderr_lines(nb: Any) -> list[str]:
    """The first line of each stderr stream output of an executed notebook (warnings, progress bars)."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if o.get("output_type") == "stream" and o.get("name") == "stderr" and str(o.get("text", "")).strip():
                out.append(str(o["text"]).strip().splitlines()[0][:200])
    return out


LANG_TAG = "lang-"  # a cell tagged lang-ru / lang-en is shown only in the report of that language


def cell_languages(cell: Any) -> set[str]:
    """The languages a cell is tagged for (``lang-ru`` → ``{"ru"}``); empty: shown in every language.

    Examples
    --------
    >>> from nbformat.v4 import new_markdown_cell
    >>> cell_languages(new_markdown_cell("## Выручка", metadata={"tags": ["lang-ru"]}))
    {'ru'}
    """
    return {str(t)[len(LANG_TAG):] for t in cell.get("metadata", {}).get("tags", []) if str(t).startswith(LANG_TAG)}


def keep_language(nb: Any, lang: str) -> Any:
    """``nb`` without the cells tagged for another language than ``lang`` (in place; returned).

    The committed notebooks carry each heading and intro twice, a ``lang-ru`` and a ``lang-en``
    Markdown cell, so that JupyterLab shows both; a report shows the cells of its language only.
    """
    nb.cells = [c for c in nb.cells if not (langs := cell_languages(c)) or lang in langs]
    return nb


def _to_html(nb_path: Path, lang: str = "ru") -> tuple[str, list[str]]:
    """The executed notebook as offline HTML without code and without the other language's cells,
    and the stderr lines left out of it."""
    from nbconvert import HTMLExporter

    nb = keep_language(nbformat.read(nb_path, as_version=4), lang)
    dropped = _stderr_lines(nb)
    nb.metadata["title"] = notebook_title(nb_path, lang)  # the page's <title>: the report's heading, not "Notebook"
    for cell in nb.cells:
        if cell.cell_type == "code":
            # Warnings and progress bars are for the console (the runner logs them), not the reader.
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            # Test markers (# NBVAL_CHECK_OUTPUT) are for nbval, never for a reader, even if inputs are ever shown.
            cell.source = _NBVAL_MARK.sub("", cell.source)
    exporter = HTMLExporter(
        template_name="offline",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    return _MATHJAX_TAG.sub("", body), dropped


def notebook_title(path: Path, lang: str = "ru") -> str:
    """The notebook's title in ``lang``: its first Markdown heading in a cell of that language (or of
    every language); an untagged «Обзор когорт · Cohort overview» gives the side of ``lang``."""
    import json as _json

    with contextlib.suppress(OSError, ValueError, KeyError):
        for cell in _json.loads(path.read_text(encoding="utf-8"))["cells"]:
            langs = cell_languages(cell)
            if cell.get("cell_type") == "markdown" and (not langs or lang in langs):
                src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                first = src.strip().splitlines()[0] if src.strip() else ""
                if first.startswith("#"):
                    title = first.lstrip("#").strip()
                    ru, _, en = title.partition(" · ")
                    return (ru if lang == "ru" else en or ru).strip()
    return path.stem


def _report_lang(notebook: Path, params: Mapping[str, Any]) -> str:
    """The language a run of ``notebook`` with ``params`` reports in: the given ``lang``, else the declared default, else ru."""
    if params.get("lang"):
        return str(params["lang"])
    with contextlib.suppress(Exception):  # a notebook without a readable parameters cell: Russian, like the notebooks
        declared = declared_parameters(notebook)
        if "lang" in declared:
            return str(declared["lang"].default)
    return "ru"


def _failed_cell(nb_path: Path) -> str:
    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:  # noqa: BLE001 - a half-written notebook: no cell to point at
        return ""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return f"cell In [{cell.get('execution_count')}] ({first[:60]!r}): {out.get('ename')}: {out.get('evalue')}"
    return ""


def _kernel_env(name: str, files: Path) -> dict[str, str]:
    """What a report kernel's environment adds: charts render in HTML (plotly.js embedded once), tables are written for download."""
    return {"PLOTLY_RENDERER": "notebook", EXPORT_DIR_ENV: str(files), EXPORT_LINK_ENV: f"{name}_files/"}


def _kernel_manager_class(work: Path, env: Mapping[str, str]) -> type:
    """A kernel manager class: IPC transport in the private work folder, and ``env`` added to the kernel's environment.

    IPC (Unix sockets) instead of TCP on localhost: nothing else on the machine can connect to
    the kernel, and ipykernel does not print its "running over TCP without encryption" warning.
    The environment is given to this kernel only (the runner's own ``os.environ`` is left as it
    is, so notebooks may run side by side). A class, not an instance, so that nbclient owns the
    manager and shuts the kernel down. Windows has no IPC transport: TCP there.
    """
    from jupyter_client.manager import AsyncKernelManager

    extra = dict(env)

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            if os.name != "nt":
                kwargs.setdefault("transport", "ipc")
                kwargs.setdefault("ip", str(work / "kernel"))
            super().__init__(**kwargs)

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = {**os.environ, **(kw.get("env") or {}), **extra}
            return await super()._async_pre_start_kernel(**kw)

    return IpcKernelManager


def run_one(
    notebook: Path, out_dir: Path, params: dict[str, Any], *, cell_timeout: int = 600, failed: Path | None = None, log=print,
    env: Mapping[str, str] | None = None, lang: str | None = None,
) -> RunResult:
    """Run one notebook and publish its HTML (and its tables' downloads) atomically; never raises for a notebook failure.

    ``env`` is added to the kernel's environment (the run's kept ledgers, :mod:`subs_model.report_cache`).
    ``lang`` is the report's language (default: the ``lang`` parameter given, else the notebook's
    default, else ru): Markdown cells tagged for another language are left out of the HTML."""
    import papermill as pm

    name = notebook.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    root = work_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-{os.getpid()}-", dir=root))
    executed = work / f"{name}.ipynb"
    files = work / "files"
    try:
        pm.execute_notebook(
            # The kernel starts in the notebook's folder (nbclient's resources path). Not papermill's
            # ``cwd``: it changes the whole host process's working directory, which races when
            # notebooks run side by side (nteract/papermill#473) and is not ours to change.
            str(notebook), str(executed), parameters=params, kernel_name="python3",
            resources={"metadata": {"path": str(notebook.parent)}},
            execution_timeout=cell_timeout, progress_bar=False, log_output=False, report_mode=False,
            kernel_manager_class=_kernel_manager_class(work, {**_kernel_env(name, files), **(env or {})}),
        )
        target = out_dir / f"{name}.html"
        page, dropped = _to_html(executed, lang or _report_lang(notebook, params))
        if files.is_dir() and any(files.iterdir()):
            publish_files(files, out_dir / f"{name}_files")
        atomic_write(target, page)  # staged beside the target: os.replace is atomic on one file system
        result = RunResult(name, "ok", time.perf_counter() - started, params, html=target, stderr=dropped)
    except Exception as exc:  # noqa: BLE001 - any failure (cell error, timeout, dead kernel) is reported the same way
        keep = failed or failed_dir(out_dir)
        keep.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        kept = None
        if executed.exists():
            kept = keep / f"{name}-{stamp}.ipynb"
            shutil.copy2(executed, kept)
        where = _failed_cell(executed) if executed.exists() else ""
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        result = RunResult(name, "failed", time.perf_counter() - started, params, failed_notebook=kept,
                           error=f"{where or reason}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


_LOG = {
    "en": {"ok": "    ok in {s:.1f} s → {p}", "failed": "    FAILED after {s:.1f} s: {e}", "kept": "    executed notebook kept at {p}",
           "left": "    the previous report (if any) was left as it was",
           "stderr": "    {n} stderr line(s) left out of the report, first: {first}",
           "kpis": "headline KPIs not computed: {e}"},
    "ru": {"ok": "    готово за {s:.1f} с → {p}", "failed": "    ОШИБКА через {s:.1f} с: {e}", "kept": "    выполненный блокнот сохранён: {p}",
           "left": "    прежний отчёт (если был) оставлен как есть",
           "stderr": "    строк stderr, не вошедших в отчёт: {n}, первая: {first}",
           "kpis": "главные показатели не посчитаны: {e}"},
}


@dataclass
class _Step:
    """One notebook of a run: what it is given (shown in the index) and what it runs with."""

    name: str
    path: Path
    given: dict[str, Any]
    declared: dict[str, NotebookParameter]
    injected: dict[str, Any]  # given, with every path parameter made absolute

    @property
    def effective(self) -> dict[str, Any]:
        return {k: self.injected.get(k, p.default) for k, p in self.declared.items()}


class _Ledgers:
    """Ledgers read once per run (domain checks, the notebooks and the headline KPIs share them)."""

    def __init__(self) -> None:
        self._led: dict[str, Any] = {}
        self.stamps: dict[str, str] = {}  # each ledger's source files as they were before it was read

    def get(self, data: str) -> Any:
        if data not in self._led:
            from .io import read_ledger
            from .report_cache import source_stamp

            self.stamps[data] = source_stamp(data)
            self._led[data] = read_ledger(data)
        return self._led[data]

    def keep(self, steps: Sequence[_Step], root: Path) -> Path | None:
        """Read the ledger of every step (once each) and keep them for the notebooks in a new
        work folder under ``root`` (:mod:`subs_model.report_cache`); None if none could be read."""
        from .report_cache import store

        read = {}
        for data in dict.fromkeys(str(st.effective["data"]) for st in steps if st.effective.get("data")):
            with contextlib.suppress(Exception):  # a bad ledger: its notebook reads the files and reports it
                read[data] = self.get(data)
        if not read:
            return None
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"ledgers-{os.getpid()}-", dir=root))  # removed with dead runs' work folders
        store(read, folder, self.stamps)
        return folder

    def span(self, data: str) -> tuple[dt.date, dt.date] | None:
        from .report_summary import ledger_span

        if not Path(data).exists():
            return None
        return ledger_span(self.get(data))


def _last_day(ledgers: _Ledgers, data: Any) -> str:
    """The ledger's last event day (a report's as_of when none is given), or "last event day" if it cannot be read."""
    try:
        span = ledgers.span(str(data)) if data else None
    except Exception:  # noqa: BLE001 - the notebook reports a bad ledger itself; the index only loses the date
        span = None
    return f"{span[1]}" if span else "last event day"


def _plan(names: Sequence[str], nb_dir: Path, text: Mapping[str, str], typed: Mapping[str, Any], ledgers: _Ledgers) -> list[_Step]:
    """Validate everything before any kernel starts: names, parameter names and types, paths, domains."""
    available = {p.stem: p for p in sorted(nb_dir.glob("*.ipynb"))}
    if not available:
        msg = f"{nb_dir}: no notebooks found; give the folder of the report notebooks with --notebooks"
        raise ReportError(msg)
    chosen = list(names) or list(available)
    unknown = [n for n in chosen if n not in available]
    if unknown:
        msg = f"unknown report(s) {unknown}; available: {', '.join(available)}"
        raise ReportError(msg)
    paths = [available[n] for n in chosen]
    steps = []
    for name, path, given in zip(chosen, paths, suite_parameters(paths, text, typed), strict=True):
        declared = declared_parameters(path)
        injected = {**given, **resolve_paths(declared, given, path.parent.resolve(), data_dir())}
        steps.append(_Step(name, path, given, declared, injected))
    for st in steps:
        check_domains(st.name, st.declared, st.effective, ledgers.span)
    return steps


def _summary(steps: list[_Step], results: list[RunResult], ledgers: _Ledgers) -> tuple[list[Any] | None, str, str]:
    """Headline KPIs from one replay of the ledger the reports read (the first report that ran well)."""
    ok = [st for st, r in zip(steps, results, strict=True) if r.status == "ok" and st.effective.get("data")]
    lang = str(steps[0].effective.get("lang", "ru")) if steps else "ru"
    if not ok:
        return None, "", lang
    eff = ok[0].effective
    try:
        from .catalog import Catalog
        from .replay import replay
        from .report_summary import headline_kpis

        cat = Catalog.from_yaml(eff["catalog"]) if eff.get("catalog") else Catalog.default()
        rep = replay(ledgers.get(str(eff["data"])), cat, as_of=eff.get("as_of") or None)
        return headline_kpis(rep, lang, int(eff.get("churn_horizon_days") or 365)), "", lang
    except Exception as exc:  # noqa: BLE001 - the reports are published; the summary says what it could not compute
        return None, f"{type(exc).__name__}: {exc}", lang


def _log_result(log: Any, words: Mapping[str, str], head: str, res: RunResult, root: Path, base: Path) -> None:
    if head:
        log(head)
    if res.status == "ok":
        log(words["ok"].format(s=res.seconds, p=res.html))
        if res.stderr:
            log(words["stderr"].format(n=len(res.stderr), first=scrub(res.stderr[0], root, base)))
    else:
        log(words["failed"].format(s=res.seconds, e=res.error))
        if res.failed_notebook:
            log(words["kept"].format(p=res.failed_notebook))
        log(words["left"])


def _execute(steps: list[_Step], run: Any, record: Any, jobs: int, previous: Mapping[str, Any]) -> list[RunResult]:
    """Run every step (``jobs`` at a time; the longest of the previous run first) and record each as it ends; results in step order."""
    numbered = list(enumerate(steps, start=1))
    if jobs == 1:
        out = []
        for i, st in numbered:
            res = run(i, st)
            record(i, st, res)
            out.append(res)
        return out
    from concurrent.futures import ThreadPoolExecutor, as_completed

    order = sorted(numbered, key=lambda x: -float(previous.get(x[1].name, {}).get("seconds", 0) or 0))
    done: dict[int, RunResult] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="subs-model-report") as pool:
        futures = {pool.submit(run, i, st): (i, st) for i, st in order}
        for fut in as_completed(futures):
            i, st = futures[fut]
            done[i] = fut.result()
            record(i, st, done[i])
    return [done[i] for i, _ in numbered]


def default_jobs() -> int:
    """Notebooks a report run executes side by side by default: 2 where two CPUs or more are
    available to this process (:func:`subs_model.workers`), else 1. More would only queue for
    the cores the what-if's and the replay's own workers use."""
    from .workers import workers

    return 2 if workers() >= 2 else 1


def run_reports(
    names: Sequence[str] = (),
    *,
    notebooks: str | Path | None = None,
    out: str | Path = "reports",
    text_params: Mapping[str, str] | None = None,
    typed_params: Mapping[str, Any] | None = None,
    cell_timeout: int = 600,
    data_root: str | Path | None = None,
    failed: str | Path | None = None,
    log=print,
    lang: str = "en",
    jobs: int | None = None,
) -> list[RunResult]:
    """Run the named report notebooks (all in ``notebooks`` by default) and publish HTML to ``out``.

    ``notebooks`` defaults to the shipped report notebooks (:func:`subs_model.resources.notebooks_dir`),
    whatever the current folder. A parameter applies to every chosen notebook that declares it;
    path parameters are passed as absolute paths (defaults that are missing beside the notebooks
    come from the shipped data). Returns one :class:`RunResult` per notebook; failures are
    results, not exceptions (the CLI turns them into a non-zero exit). Bad parameters — unknown
    to every notebook, of the wrong type, or outside their domain (:mod:`subs_model.report_params`)
    — raise :class:`ParameterError` before any kernel starts. The published ``index.html`` (headline
    KPIs, then the reports) and ``runs.json`` show path parameters and paths in error messages
    relative to ``data_root`` (default: the parent of ``notebooks``); a path outside it shows
    as ``…/<last name>``. Executed notebooks of failed runs are kept in ``failed`` (default
    ``<out>.failed/``). ``lang`` is the language of the progress lines given to ``log``.
    ``jobs`` notebooks run side by side (each its own kernel), the longest of the last run
    first; 1 runs them one after another; the default, :func:`default_jobs`, is 2 where two
    CPUs or more are available (measured faster on 2 cores: docs/performance.md).

    Examples
    --------
    >>> run_reports(["02-renewal-timing"], text_params={"lang": "en"}, out="reports")  # doctest: +SKIP
    """
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        msg = f"jobs must be 1 or more, got {jobs}; give --jobs 1 to run the notebooks one after another"
        raise ParameterError(msg)
    nb_dir = Path(notebooks) if notebooks else notebooks_dir()
    ledgers = _Ledgers()
    steps = _plan(names, nb_dir, text_params or {}, typed_params or {}, ledgers)
    words = _LOG["ru" if lang == "ru" else "en"]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = Path(data_root).resolve() if data_root else nb_dir.resolve().parent
    keep = Path(failed) if failed else failed_dir(out_dir)
    clean_leftovers(out_dir, [p.stem for p in nb_dir.glob("*.ipynb")], keep, log=log)
    runs_path = out_dir / "runs.json"
    runs = json.loads(runs_path.read_text(encoding="utf-8")) if runs_path.exists() else {}
    hashed: dict[tuple[str, str], str] = {}  # the data's content hash, once per run while its files are unchanged
    def record(i: int, st: _Step, res: RunResult) -> None:
        eff = st.effective
        base = st.path.parent.resolve()
        res.meta = {  # published beside the reports: no server path in it
            "status": res.status, "seconds": res.seconds, "parameters": shown_params(st.given, st.declared, root, base),
            "title": notebook_title(st.path, str(eff.get("lang", "ru"))),
            "as_of": eff.get("as_of") or _last_day(ledgers, eff.get("data")),
            "data_fingerprint": _fingerprint(eff.get("data"), st.path.parent, hashed),
            "version": __version__, "finished": dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "error": scrub(res.error, root, base),
            "html": bool(res.html) or bool(runs.get(st.name, {}).get("html")),
        }
        _log_result(log, words, f"[{i}/{len(steps)}] {st.name}" if jobs > 1 else "", res, root, base)
        runs[st.name] = res.meta

    def run(i: int, st: _Step) -> RunResult:
        if jobs == 1:
            log(f"[{i}/{len(steps)}] {st.name} …", flush=True) if log is print else log(f"[{i}/{len(steps)}] {st.name} …")
        return run_one(st.path, out_dir, st.injected, cell_timeout=cell_timeout, failed=keep, log=log, env=kernel_env,
                       lang=str(st.effective.get("lang") or "ru"))

    kept = ledgers.keep(steps, work_root())
    kernel_env = {LEDGER_CACHE_ENV: str(kept)} if kept else {}
    try:
        results = _execute(steps, run, record, jobs, runs)
    finally:
        if kept:
            shutil.rmtree(kept, ignore_errors=True)
    kpis, kpi_error, page_lang = _summary(steps, results, ledgers)
    if kpi_error:
        log(words["kpis"].format(e=kpi_error))
    atomic_write(runs_path, json.dumps(runs, ensure_ascii=False, indent=1, default=str))
    from .report_summary import index_html

    atomic_write(out_dir / "index.html", index_html(runs, kpis, page_lang, scrub(kpi_error, root, root)))
    return results


def load_params_file(path: str | Path) -> dict[str, Any]:
    """Typed parameters from a YAML file (a mapping name → value)."""
    p = Path(path)
    raw = read_yaml(p, ParameterError, "the parameters file") or {}
    if not isinstance(raw, dict):
        msg = f"{p}: expected a mapping name: value, got {type(raw).__name__}"
        raise ParameterError(msg)
    return raw


def run_schedule(path: str | Path, *, notebooks: str | Path | None = None, out: str | Path | None = None, log=print,
                 lang: str = "en") -> list[RunResult]:
    """Run a schedule file (``reports/schedule.yaml``): a list of jobs, each with notebooks and parameters."""
    p = Path(path)
    spec = load_params_file(p)
    jobs = spec.get("jobs")
    if not isinstance(jobs, list) or not jobs:
        msg = f"{p}: expected 'jobs:' with a list of {{notebooks: [...], parameters: {{...}}, out: DIR}}"
        raise ParameterError(msg)
    outs = [Path(out or job.get("out", "reports")).resolve() for job in jobs]
    results = []
    for job, job_out in zip(jobs, outs, strict=True):
        # A job published inside another job's folder (reports/en in reports) keeps its failed
        # notebooks under the outer folder's sibling, so that nothing lands in a published tree.
        outer = min((o for o in outs if o != job_out and job_out.is_relative_to(o)), key=lambda o: len(o.parts), default=None)
        keep = failed_dir(outer) / job_out.relative_to(outer) if outer else None
        results += run_reports(
            job.get("notebooks") or (), notebooks=job.get("notebooks_dir", notebooks), out=out or job.get("out", "reports"),
            typed_params=job.get("parameters") or {}, cell_timeout=int(job.get("cell_timeout", 600)),
            data_root=job.get("data_root"), failed=keep, log=log, lang=lang,
        )
    return results


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: subs-model report")
