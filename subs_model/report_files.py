"""Files of the report runner: atomic writes, work and failed folders, leftovers of dead runs, paths shown to readers.

Nothing but reports, their download folders, ``index.html`` and ``runs.json`` stays in a
published folder: work folders live under the system temp folder
(``subs-model-reports-<uid>/<name>-<pid>-*``); the leftovers of a run that died (its process is
gone) are removed by the next run. Paths shown to readers are relative to the data root.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .report_params import NotebookParameter

__all__ = ["failed_dir", "work_root"]

_STALE_TMP = re.compile(r"^\..+\.(\d+)\.tmp$")
_WORK_DIR = re.compile(r"^(.+)-(\d+)-[a-z0-9_]{8}$")
_ABS_PATH = re.compile(r"(?<![\w./~-])(?:/[\w.~+@%-]+)+/?")


def atomic_write(path: Path, text: str) -> None:
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


def clean_leftovers(out_dir: Path, names: Sequence[str], failed: Path, log=print) -> None:
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
        if m and not _alive(int(m.group(1))):
            if p.is_dir():  # a downloads folder staged by a dead run
                shutil.rmtree(p, ignore_errors=True)
            else:
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


def scrub(text: str, root: Path, base: Path) -> str:
    """``text`` with every absolute path replaced by its data-root-relative form."""
    return _ABS_PATH.sub(lambda m: _shown_path(m.group(0), root, base), text)


def shown_params(params: Mapping[str, Any], declared: Mapping[str, NotebookParameter], root: Path, base: Path) -> dict[str, Any]:
    """Parameters as the index shows them: path parameters (a ``/`` in the default, or an absolute value) relative to ``root``."""
    out = {}
    for k, v in params.items():
        d = declared.get(k)
        is_path = isinstance(v, str) and v and (os.path.isabs(v) or (d is not None and isinstance(d.default, str) and "/" in d.default))
        out[k] = _shown_path(v, root, base) if is_path else v
    return out




def publish_files(files: Path, target: Path) -> None:
    """Replace the folder of a report's downloads by ``files`` (staged beside it, then renamed)."""
    staged = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    old = target.with_name(f".{target.name}.old.{os.getpid()}.tmp")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(files, staged)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)
