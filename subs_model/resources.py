"""Where the shipped report notebooks and default data live, independent of the current folder.

In a source checkout (``pyproject.toml`` beside the package) they are the repository's
top-level ``notebooks/`` and ``data/`` folders; in an installed wheel they are the package
data ``subs_model/notebooks`` and ``subs_model/data`` that ``pyproject.toml`` maps onto those
folders. Either way the notebooks' relative defaults (``../data/sample``) resolve, because the
two folders stay siblings.

>>> notebooks_dir().joinpath("01-cohort-overview.ipynb").is_file()
True
>>> default_catalog().name
'catalog.yaml'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_dir", "default_catalog", "notebooks_dir"]

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    source = _PACKAGE.parent
    if (source / "pyproject.toml").is_file() and (source / name).is_dir():
        return source / name  # a source checkout or an editable install
    return _PACKAGE / name  # an installed wheel: package data


def notebooks_dir() -> Path:
    """The folder of the shipped report notebooks (an absolute path)."""
    return _shipped("notebooks")


def data_dir() -> Path:
    """The folder of the shipped data: ``catalog.yaml``, ``scenarios.yaml``, ``behaviour.yaml``, ``sample/``."""
    return _shipped("data")


def default_catalog() -> Path:
    """The shipped catalog YAML (an absolute path)."""
    return data_dir() / "catalog.yaml"
