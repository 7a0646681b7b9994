"""Shipped notebooks and data: declared as package data, found from any folder."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import subs_model as sm
from subs_model.resources import data_dir, notebooks_dir

ROOT = Path(__file__).resolve().parents[1]


def test_every_notebook_and_data_file_ships_in_the_wheel() -> None:
    """pyproject maps notebooks/ and data/ into the package, and its globs cover every file there."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in (("subs_model.notebooks", "notebooks"), ("subs_model.data", "data")):
        assert package in tool["packages"] and tool["package-dir"][package] == folder
        files = [p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts]
        missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in tool["package-data"][package])]
        assert files and missing == [], (folder, missing)


def test_source_checkout_resolves_to_the_repository_folders() -> None:
    """In a checkout the shipped folders are the repository's own, so edits to notebooks show at once."""
    assert notebooks_dir() == ROOT / "notebooks" and data_dir() == ROOT / "data"


def test_public_names_are_lazy() -> None:
    """The new public names load on first use from their modules."""
    assert sm.people_table.__module__ == "subs_model.tables" and sm.Note.__module__ == "subs_model.notes"
    assert sm.run_reports.__module__ == "subs_model.reports"
