"""Exceptions of subs_model.

Data problems in a ledger (a rejected activation, a quarantined row) are *values*
returned beside the result; bugs and bad configuration raise. Every exception
subclasses both :class:`SubsModelError` and the matching builtin, so callers may
catch either, and every message says what is wrong, with which value, and how to fix it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class SubsModelError(Exception):
    """Base class of every error raised by subs_model."""


class CatalogError(SubsModelError, ValueError):
    """The catalog (prices, rule knobs, versions) is invalid."""


class LedgerError(SubsModelError, ValueError):
    """A ledger table is malformed (missing column, unparseable value, duplicate key)."""


class LedgerFileError(LedgerError, OSError):
    """A ledger file cannot be found or read."""


class ProfileError(SubsModelError, ValueError):
    """A source profile (how an export is written) is invalid."""


def read_yaml(path: "str | Path", error: type[SubsModelError], what: str) -> Any:
    """The YAML document at ``path``, or ``error`` naming the file, the problem and the fix.

    ``what`` names the file's role in the message ("the catalog", "scenarios", …).
    """
    import yaml

    p = Path(path)
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{p}: cannot read {what} ({exc.strerror}); check the path"
        raise error(msg) from exc
    except yaml.YAMLError as exc:
        msg = f"{p}: {what} is not valid YAML ({exc}); fix the syntax"
        raise error(msg) from exc
