"""Project-level checks: packaging consistency, the sample ledger, the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

import subs_model as sm
from subs_model.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _req(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(>=\s*[0-9][^,;\s]*)?", spec)
    assert m, spec
    return m.group(1).lower().replace("_", "-"), (m.group(2) or "").replace(" ", "")


def test_environment_yml_matches_pyproject() -> None:
    """environment.yml pins the same packages at the same minimums as pyproject (deps + test + bench)."""
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_req(s) for s in py["dependencies"] + py["optional-dependencies"]["test"] + py["optional-dependencies"]["bench"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_req(s) for s in env["dependencies"] if isinstance(s, str) and not s.startswith(("python", "pip")))
    assert conda == wanted
    assert all(v.startswith(">=") for v in wanted.values()), "every dependency has a minimum version"
    assert "jupyterlab" not in {**wanted, **conda}, "JupyterLab stays out of the test environment"


def test_handmade_ledger_exercises_every_reason_and_status() -> None:
    """The hand-made ledger hits every rejection reason, code status and period source."""
    rep = sm.replay(sm.read_ledger(ROOT / "tests/data/handmade"), sm.Catalog.from_yaml(ROOT / "data/catalog.yaml"), as_of="2026-06-30")
    assert set(rep.rejections["reason"]) == {r.value for r in sm.Reason}
    assert set(rep.codes["status"]) == {s.value for s in sm.CodeStatus}
    assert set(rep.periods["source"]) == {s.value for s in sm.Source}


def test_cli_replay_prints_summary_and_writes_tables(tmp_path, capsys, monkeypatch) -> None:
    """`subs-model replay DATA --as-of D --out DIR` prints the summary and writes the three tables."""
    monkeypatch.chdir(ROOT)
    assert main(["replay", "tests/data/handmade", "--as-of", "2026-06-30", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Licenses active on 2026-06-30: 6 of 30" in out
    assert "renewal_after_deadline" in out
    assert {p.name for p in tmp_path.iterdir()} == {"periods.csv", "codes.csv", "rejections.csv"}


def test_cli_reports_bad_input_without_traceback(tmp_path) -> None:
    """A missing folder is a one-line error naming it, exit code 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "subs_model.cli", "replay", str(tmp_path / "nope")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "nope: no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_non_python_package_file_is_declared_package_data() -> None:
    """Templates and markers ship in the wheel: the package-data globs of the package holding each
    non-.py file (or of a package above it, with the path below it) cover it."""
    import fnmatch

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    pkg = ROOT / "subs_model"
    files = [p.relative_to(pkg) for p in pkg.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
             and "__pycache__" not in p.parts and not p.name.endswith((".nbi", ".nbc"))]
    assert files, "the package has data files"

    def declared(f) -> bool:
        parts = f.parts
        for k in range(len(parts) - 1, -1, -1):  # the deepest package first, then the ones above it
            owner = ".".join(["subs_model", *parts[:k]])
            rest = "/".join(parts[k:])
            if owner in tool["packages"] and any(fnmatch.fnmatch(rest, g) for g in tool["package-data"].get(owner, [])):
                return True
        return False

    missing = [f.as_posix() for f in files if not declared(f)]
    assert missing == []
