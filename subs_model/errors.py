"""Exceptions of subs_model.

Data problems in a ledger (a rejected activation, a quarantined row) are *values*
returned beside the result; bugs and bad configuration raise. Every exception
subclasses both :class:`SubsModelError` and the matching builtin, so callers may
catch either, and every message says what is wrong, with which value, and how to fix it.
"""

from __future__ import annotations


class SubsModelError(Exception):
    """Base class of every error raised by subs_model."""


class CatalogError(SubsModelError, ValueError):
    """The catalog (prices, rule knobs, versions) is invalid."""


class LedgerError(SubsModelError, ValueError):
    """A ledger table is malformed (missing column, unparseable value, duplicate key)."""


class LedgerFileError(LedgerError, OSError):
    """A ledger file cannot be found or read."""
