"""The report runner: parameterised notebooks → offline HTML reports, published atomically.

Each named notebook is run with papermill (``kernel_name="python3"``, the notebook's
folder as working directory, a per-cell timeout) in a work folder outside the published
tree, converted to HTML without code cells through an offline template (plotly.js embedded
once per report, no CDN request of any kind), and only then moved over the published
report. A failing cell, a timeout or a dead kernel leaves the last good report untouched,
keeps the executed notebook in ``<out>.failed/`` (a sibling of the published folder, so a
web server that publishes ``<out>`` does not expose it) and makes the run exit non-zero.

Nothing but reports, ``index.html`` and ``runs.json`` stays in the published folder: work
folders live under the system temp folder (``subs-model-reports-<uid>/<name>-<pid>-*``) and
are removed when the run ends; those of a run that died (its process is gone), half-written
``.*.<pid>.tmp`` files of one, and the ``.<name>-*/`` folders and ``failed/`` folder of
earlier versions are cleaned up by the next run. The index and ``runs.json`` show path
parameters relative to the data root (the notebooks folder's parent by default), never
server paths.

Parameters are checked before anything runs: a name the notebook does not declare, or a
value of the wrong type, is refused with the list of valid parameters.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import hashlib
import html
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

__all__ = ["NotebookParameter", "ParameterError", "ReportError", "RunResult", "declared_parameters", "run_reports"]

TEMPLATES = Path(__file__).parent / "templates"
_STALE_TMP = re.compile(r"^\..+\.(\d+)\.tmp$")
_WORK_DIR = re.compile(r"^(.+)-(\d+)-[a-z0-9_]{8}$")
_ABS_PATH = re.compile(r"(?<![\w./~-])(?:/[\w.~+@%-]+)+/?")
_MATHJAX_TAG = re.compile(r"<script[^>]*src=\"[^\"]*(?:mathjax|MathJax)[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)


class ParameterError(SubsModelError, ValueError):
    """A report parameter is unknown to the notebook or has the wrong type."""


class ReportError(SubsModelError, RuntimeError):
    """A report notebook failed (cell error, timeout, dead kernel)."""


@dataclass(frozen=True, slots=True)
class NotebookParameter:
    """One assignment of a notebook's ``parameters`` cell."""

    name: str
    type: type
    default: Any
    help: str


def declared_parameters(path: str | Path) -> dict[str, NotebookParameter]:
    """The parameters a notebook declares: names, types and defaults of its ``parameters`` cell.

    Only plain literal assignments count (``name = value  # help``), as the house style asks.
    """
    nb = nbformat.read(Path(path), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        msg = f"{path}: no cell tagged 'parameters'; tag the cell of defaults so the runner can inject values"
        raise ReportError(msg)
    source = cells[0].source
    lines = source.splitlines()
    out: dict[str, NotebookParameter] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            line = lines[node.lineno - 1]
            help_text = line.split("#", 1)[1].strip() if "#" in line else ""
            out[node.targets[0].id] = NotebookParameter(node.targets[0].id, type(value), value, help_text)
    return out


def _coerce(p: NotebookParameter, value: Any, *, from_text: bool) -> Any:
    """``value`` converted to the parameter's type, or a ParameterError saying why not."""
    want = p.type
    if from_text and isinstance(value, str):
        text = value.strip()
        try:
            if want is bool:
                if text.lower() in ("true", "1", "yes", "да"):
                    return True
                if text.lower() in ("false", "0", "no", "нет"):
                    return False
                raise ValueError(text)
            if want is int:
                return int(text)
            if want is float:
                return float(text)
        except ValueError:
            msg = f"parameter {p.name!r} expects {want.__name__} (default {p.default!r}), got {value!r}"
            raise ParameterError(msg) from None
        return value  # str parameters stay exactly as typed: ids and codes keep leading zeros
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        hint = " (quote it in YAML: ids and codes must stay text)" if want is str else ""
        msg = f"parameter {p.name!r} expects {want.__name__} (default {p.default!r}), got {value!r} ({type(value).__name__}){hint}"
        raise ParameterError(msg)
    return value


def check_parameters(path: Path, text_params: Mapping[str, str], typed_params: Mapping[str, Any]) -> dict[str, Any]:
    """Validated, typed parameters for the notebook at ``path`` (text from ``-p``, typed from YAML)."""
    declared = declared_parameters(path)
    out: dict[str, Any] = {}
    for source, params, from_text in (("-f", typed_params, False), ("-p", text_params, True)):
        for name, value in params.items():
            if name not in declared:
                valid = "\n".join(f"  {p.name} ({p.type.__name__}, default {p.default!r}) {p.help}" for p in declared.values())
                msg = f"{path.name}: unknown parameter {name!r} (given with {source}); valid parameters:\n{valid}"
                raise ParameterError(msg)
            out[name] = _coerce(declared[name], value, from_text=from_text)
    return out


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


def _fingerprint(data: Any, notebook_dir: Path) -> str:
    """Short content hash of the data folder (or file) a report read."""
    if not data:
        return ""
    p = Path(data)
    if not p.is_absolute():
        p = (notebook_dir / p).resolve()
    h = hashlib.sha256()
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p] if p.exists() else []
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16] if files else "missing"


def _to_html(nb_path: Path) -> str:
    from nbconvert import HTMLExporter

    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            # Warnings and progress bars are for the console, not the reader.
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    exporter = HTMLExporter(
        template_name="offline",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    return _MATHJAX_TAG.sub("", body)


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


def _atomic_write(path: Path, text: str) -> None:
    # The pid in the name lets the next run tell a dead writer's leftover from a live one's file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def failed_dir(out: str | Path) -> Path:
    """Where the executed notebooks of failed runs are kept: ``<out>.failed/``, beside ``out``, not in it."""
    o = Path(out).resolve()
    return o.with_name(f"{o.name}.failed")


def work_root() -> Path:
    """The folder of the runner's work folders: under the system temp folder, one per user."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"subs-model-reports-{uid}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    return True


def _clean_leftovers(out_dir: Path, names: Sequence[str], failed: Path, log=print) -> None:
    """Remove what dead runs left behind: work folders, half-written files, and the old in-tree leftovers."""
    root = work_root()
    if root.is_dir():
        for d in root.iterdir():
            m = _WORK_DIR.match(d.name)
            if d.is_dir() and m and not _alive(int(m.group(2))):
                shutil.rmtree(d, ignore_errors=True)
    if not out_dir.is_dir():
        return
    for p in out_dir.iterdir():
        m = _STALE_TMP.match(p.name)
        if m and p.is_file() and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)
        # Earlier versions staged runs in ``<out>/.<name>-<random>/`` (tempfile.mkdtemp).
        elif p.is_dir() and p.name.startswith(".") and any(re.fullmatch(rf"\.{re.escape(n)}-[a-z0-9_]{{8}}", p.name) for n in names):
            shutil.rmtree(p, ignore_errors=True)
    old = out_dir / "failed"  # earlier versions kept failed notebooks inside the published folder
    if old.is_dir():
        dest = failed
        dest.mkdir(parents=True, exist_ok=True)
        for f in old.iterdir():
            if not (dest / f.name).exists():
                shutil.move(str(f), dest / f.name)
        shutil.rmtree(old, ignore_errors=True)
        log(f"moved the failed notebooks of earlier runs out of the published folder to {dest}")


def _shown_path(value: str, root: Path, base: Path) -> str:
    """``value`` (a path, relative to ``base`` if not absolute) as shown to readers: relative to ``root``."""
    p = Path(value)
    full = Path(os.path.normpath(p if p.is_absolute() else base / p))
    with contextlib.suppress(ValueError):
        return full.relative_to(root).as_posix() or "."
    return f"…/{full.name}" if full.name else "…"


def _scrub(text: str, root: Path, base: Path) -> str:
    """``text`` with every absolute path replaced by its data-root-relative form."""
    return _ABS_PATH.sub(lambda m: _shown_path(m.group(0), root, base), text)


def _shown_params(params: Mapping[str, Any], declared: Mapping[str, NotebookParameter], root: Path, base: Path) -> dict[str, Any]:
    """Parameters as the index shows them: path parameters (a ``/`` in the default, or an absolute value) relative to ``root``."""
    out = {}
    for k, v in params.items():
        d = declared.get(k)
        is_path = isinstance(v, str) and v and (os.path.isabs(v) or (d is not None and isinstance(d.default, str) and "/" in d.default))
        out[k] = _shown_path(v, root, base) if is_path else v
    return out


def run_one(
    notebook: Path, out_dir: Path, params: dict[str, Any], *, cell_timeout: int = 600, failed: Path | None = None, log=print,
) -> RunResult:
    """Run one notebook and publish its HTML atomically; never raises for a notebook failure."""
    import papermill as pm

    name = notebook.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    root = work_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-{os.getpid()}-", dir=root))
    executed = work / f"{name}.ipynb"
    env_before = os.environ.get("PLOTLY_RENDERER")
    os.environ["PLOTLY_RENDERER"] = "notebook"  # charts render in HTML, plotly.js embedded once
    try:
        pm.execute_notebook(
            str(notebook), str(executed), parameters=params, kernel_name="python3", cwd=str(notebook.parent),
            execution_timeout=cell_timeout, progress_bar=False, log_output=False, report_mode=False,
        )
        target = out_dir / f"{name}.html"
        _atomic_write(target, _to_html(executed))  # staged beside the target: os.replace is atomic on one file system
        result = RunResult(name, "ok", time.perf_counter() - started, params, html=target)
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
        if env_before is None:
            os.environ.pop("PLOTLY_RENDERER", None)
        else:
            os.environ["PLOTLY_RENDERER"] = env_before
        shutil.rmtree(work, ignore_errors=True)
    return result


def _index_html(runs: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, r in sorted(runs.items()):
        link = f'<a href="{html.escape(name)}.html">{html.escape(name)}</a>' if r.get("html") else html.escape(name)
        params = "<br>".join(f"{html.escape(k)} = {html.escape(repr(v))}" for k, v in r.get("parameters", {}).items()) or "defaults"
        status = html.escape(r["status"]) + (f'<br><small>{html.escape(r.get("error", ""))}</small>' if r.get("error") else "")
        rows.append(
            f"<tr class=\"{html.escape(r['status'])}\"><td>{link}</td><td>{status}</td><td>{html.escape(str(r.get('as_of', '')))}</td>"
            f"<td><code>{html.escape(r.get('data_fingerprint', ''))}</code></td><td>{params}</td>"
            f"<td>{r.get('seconds', 0):.1f} s</td><td>{html.escape(r.get('finished', ''))}</td>"
            f"<td>{html.escape(r.get('version', ''))}</td></tr>"
        )
    return f"""<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Кассир 5 — отчёты / reports</title>
<style>body{{font-family:Segoe UI,Roboto,Arial,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:.4em .8em;text-align:left;vertical-align:top}}tr.failed td{{background:#fdecea}}
code{{font-size:.9em}}</style></head><body>
<h1>Кассир 5 — отчёты по подпискам · subscription reports</h1>
<table><tr><th>report</th><th>status</th><th>as_of</th><th>data fingerprint</th><th>parameters</th><th>duration</th>
<th>finished</th><th>package</th></tr>
{''.join(rows)}
</table></body></html>
"""


def run_reports(
    names: Sequence[str] = (),
    *,
    notebooks: str | Path = "notebooks",
    out: str | Path = "reports",
    text_params: Mapping[str, str] | None = None,
    typed_params: Mapping[str, Any] | None = None,
    cell_timeout: int = 600,
    data_root: str | Path | None = None,
    failed: str | Path | None = None,
    log=print,
) -> list[RunResult]:
    """Run the named report notebooks (all in ``notebooks`` by default) and publish HTML to ``out``.

    Returns one :class:`RunResult` per notebook; failures are results, not exceptions (the
    CLI turns them into a non-zero exit). Bad parameters raise :class:`ParameterError`
    before any notebook runs. The published ``index.html`` and ``runs.json`` show path
    parameters and paths in error messages relative to ``data_root`` (default: the parent
    of ``notebooks``, the project folder); a path outside it shows as ``…/<last name>``.
    Executed notebooks of failed runs are kept in ``failed`` (default ``<out>.failed/``).

    Examples
    --------
    >>> run_reports(["02-renewal-timing"], text_params={"lang": "en"}, out="reports")  # doctest: +SKIP
    """
    nb_dir = Path(notebooks)
    available = {p.stem: p for p in sorted(nb_dir.glob("*.ipynb"))}
    if not available:
        msg = f"{nb_dir}: no notebooks found; give the folder of the report notebooks with --notebooks"
        raise ReportError(msg)
    chosen = list(names) or list(available)
    unknown = [n for n in chosen if n not in available]
    if unknown:
        msg = f"unknown report(s) {unknown}; available: {', '.join(available)}"
        raise ReportError(msg)
    # Check every notebook's parameters first: nothing runs if any is refused.
    plan = [(n, available[n], check_parameters(available[n], text_params or {}, typed_params or {})) for n in chosen]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = Path(data_root).resolve() if data_root else nb_dir.resolve().parent
    keep = Path(failed) if failed else failed_dir(out_dir)
    _clean_leftovers(out_dir, list(available), keep, log=log)
    runs_path = out_dir / "runs.json"
    runs = json.loads(runs_path.read_text(encoding="utf-8")) if runs_path.exists() else {}
    results = []
    for i, (name, path, params) in enumerate(plan, start=1):
        log(f"[{i}/{len(plan)}] {name} …", flush=True) if log is print else log(f"[{i}/{len(plan)}] {name} …")
        res = run_one(path, out_dir, params, cell_timeout=cell_timeout, failed=keep, log=log)
        declared = declared_parameters(path)
        effective = {k: params.get(k, p.default) for k, p in declared.items()}
        base = path.parent.resolve()
        res.meta = {  # published beside the reports: no server path in it
            "status": res.status, "seconds": res.seconds, "parameters": _shown_params(params, declared, root, base),
            "as_of": effective.get("as_of") or "last event day", "data_fingerprint": _fingerprint(effective.get("data"), path.parent),
            "version": __version__, "finished": dt.datetime.now().isoformat(timespec="seconds"),
            "error": _scrub(res.error, root, base),
            "html": bool(res.html) or bool(runs.get(name, {}).get("html")),
        }
        if res.status == "ok":
            log(f"    ok in {res.seconds:.1f} s → {res.html}")
        else:
            log(f"    FAILED after {res.seconds:.1f} s: {res.error}")
            if res.failed_notebook:
                log(f"    executed notebook kept at {res.failed_notebook}")
            log("    the previous report (if any) was left as it was")
        runs[name] = res.meta
        results.append(res)
    _atomic_write(runs_path, json.dumps(runs, ensure_ascii=False, indent=1, default=str))
    _atomic_write(out_dir / "index.html", _index_html(runs))
    return results


def load_params_file(path: str | Path) -> dict[str, Any]:
    """Typed parameters from a YAML file (a mapping name → value)."""
    p = Path(path)
    raw = read_yaml(p, ParameterError, "the parameters file") or {}
    if not isinstance(raw, dict):
        msg = f"{p}: expected a mapping name: value, got {type(raw).__name__}"
        raise ParameterError(msg)
    return raw


def run_schedule(path: str | Path, *, notebooks: str | Path = "notebooks", out: str | Path | None = None, log=print) -> list[RunResult]:
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
            data_root=job.get("data_root"), failed=keep, log=log,
        )
    return results


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: subs-model report")
