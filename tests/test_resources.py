"""Shipped notebooks and data: declared as package data, found from any folder."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import subs_model as sm
from subs_model.resources import data_dir, notebooks_dir

ROOT = Path(__file__).resolve().parents[1]


def test_every_notebook_and_data_file_ships_in_the_wheel() -> None:
    """pyproject lists every package (subpackages included) and its package-data globs cover every
    file of notebooks/, data/ and the templates: a wheel holds all an editable install sees."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    code = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "subs_model").rglob("__init__.py")}
    assert code <= set(tool["packages"]), code - set(tool["packages"])
    roots = {"subs_model.notebooks": ROOT / "notebooks", "subs_model.data": ROOT / "data",
             "subs_model.templates": ROOT / "subs_model" / "templates"}
    for package, folder in roots.items():
        if package in tool["package-dir"]:
            assert ROOT / tool["package-dir"][package] == folder
        for f in folder.rglob("*"):
            if not f.is_file() or "__pycache__" in f.parts or ".ipynb_checkpoints" in f.parts:
                continue
            owner = ".".join([package, *f.parent.relative_to(folder).parts])
            assert owner in tool["packages"], (owner, f)
            assert any(fnmatch.fnmatch(f.name, g) for g in tool["package-data"].get(owner, [])), (owner, f.name)


def test_source_checkout_resolves_to_the_repository_folders() -> None:
    """In a checkout the shipped folders are the repository's own, so edits to notebooks show at once."""
    assert notebooks_dir() == ROOT / "notebooks" and data_dir() == ROOT / "data"


def test_public_names_are_lazy() -> None:
    """The new public names load on first use from their modules."""
    assert sm.people_table.__module__ == "subs_model.tables" and sm.Note.__module__ == "subs_model.notes"
    assert sm.run_reports.__module__ == "subs_model.reports"
