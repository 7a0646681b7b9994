"""Source profiles: how a back office's exports are written, declared once in a small YAML file.

Without a profile :func:`subs_model.io.read_ledger` reads the strict contract (UTF-8 CSV with
``,``, ISO 8601 timestamps, ``YYYY-MM-DD`` dates, dot-decimal amounts, canonical column and
file names, or Parquet). A :class:`Profile` declares what a real export does instead: its
encoding (``cp1251``), delimiter (``;``), decimal and thousands separators (``3 200,00``),
the explicit datetime and date formats (``%d.%m.%Y %H:%M``: formats are never guessed), the
column names of each table (Russian headers allowed), the file name of each table, or one
XLSX workbook with a sheet per table. Values are converted to the canonical form column by
column (Arrow kernels); a value that does not match the declared format is quarantined with
its usual reason (``bad_timestamp``, ``bad_date``, ``non_numeric_amount``) and a message
naming the format, and the quarantine keeps its original text.

Shipped examples: ``data/profiles/1c.yaml`` (1C-style CSV) and ``data/profiles/excel-ru.yaml``
(one workbook, a sheet per table).
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ProfileError, read_yaml
from .ledger import COLUMNS, DATE_COLUMNS, TIMESTAMP_COLUMNS
from .workers import workers

__all__ = ["Profile", "load_profile"]

#: Prefix given to a value that does not match the declared format, so that the strict
#: validator rejects it with its usual reason (the quarantine shows the original text).
MISMATCH = "\u2047"
_KEYS = {"name", "encoding", "delimiter", "decimal", "thousands", "datetime_formats", "date_formats", "workbook", "tables"}
_TABLE_KEYS = {"file", "sheet", "columns"}
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Profile:
    """How the exports of one source are written.

    Parameters
    ----------
    name : str
        Shown in messages ("profile 1c").
    encoding : str
        Text encoding of CSV files (``utf-8``, ``cp1251``, …).
    delimiter : str
        CSV field delimiter (one character).
    decimal : str
        Decimal separator of amounts (``.`` or ``,``).
    thousands : tuple of str
        Characters that may group thousands in amounts (`` ``, NBSP U+00A0, U+202F, …).
    datetime_formats, date_formats : tuple of str
        Accepted ``strftime`` formats, tried in order; empty = ISO 8601 (the default contract).
        A value must match a format exactly (``31.02.2026`` and ``3.12.2026`` do not match
        ``%d.%m.%Y``).
    workbook : str or None
        File name (or glob) of the XLSX workbook holding the tables as sheets.
    files, sheets : mapping table → str
        File name (CSV or Parquet) or sheet name of each table; a table not named here is
        ``<table>.csv`` / ``.parquet`` (names are matched without regard to case).
    columns : mapping table → mapping header → canonical column
        Headers of the export and the column of the data contract each one is.
    path : str
        The YAML file the profile came from ("" when built in Python).

    Examples
    --------
    >>> p = Profile(name="semicolon", delimiter=";", columns={"licenses": {"Лицензия": "license_id"}})
    >>> p.canonical("licenses", "Лицензия"), p.canonical("licenses", "edition")
    ('license_id', 'edition')
    """

    name: str = "custom"
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    thousands: tuple[str, ...] = ()
    datetime_formats: tuple[str, ...] = ()
    date_formats: tuple[str, ...] = ()
    workbook: str | None = None
    files: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    sheets: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    columns: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: _EMPTY)
    path: str = ""

    def __post_init__(self) -> None:
        where = f"{self.path}: profile {self.name!r}" if self.path else f"profile {self.name!r}"
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            msg = f"{where}: unknown encoding {self.encoding!r}; use a Python codec name such as utf-8 or cp1251"
            raise ProfileError(msg) from None
        if len(self.delimiter) != 1 or self.delimiter in "\"\r\n":
            msg = f"{where}: delimiter {self.delimiter!r} must be one character other than a quote or newline, e.g. ';'"
            raise ProfileError(msg)
        if self.decimal not in (".", ","):
            msg = f"{where}: decimal {self.decimal!r} must be '.' or ','"
            raise ProfileError(msg)
        bad = [t for t in self.thousands if len(t) != 1 or t.isdigit() or t in (self.decimal, "-")]
        if bad:
            msg = f"{where}: thousands separator(s) {bad} must be single characters, not a digit, '-' or the decimal {self.decimal!r}"
            raise ProfileError(msg)
        for key in ("datetime_formats", "date_formats"):
            for fmt in getattr(self, key):
                used = re.findall(r"%.", fmt) if isinstance(fmt, str) else []
                if (not isinstance(fmt, str) or not {"%d", "%m", "%Y"} <= set(used) or set(used) - {*_FIELDS, "%%"}
                        or len(used) != len(set(used))):
                    msg = (f"{where}: {key} entry {fmt!r} must be a strftime format with %d, %m and %Y once each "
                           f"(and %H, %M, %S; no other directive), e.g. '%d.%m.%Y %H:%M'")
                    raise ProfileError(msg)
        for key in ("files", "sheets", "columns"):
            unknown = [t for t in getattr(self, key) if t not in COLUMNS]
            if unknown:
                msg = f"{where}: unknown table(s) {unknown} in {key}; tables are {', '.join(COLUMNS)}"
                raise ProfileError(msg)
        if self.sheets and not self.workbook:
            msg = f"{where}: sheets are named but no workbook; add 'workbook: <file>.xlsx'"
            raise ProfileError(msg)
        for table, mapping in self.columns.items():
            for header, canon in mapping.items():
                if canon not in COLUMNS[table]:
                    msg = (f"{where}: header {header!r} of table {table!r} maps to {canon!r}, which is no column of it; "
                           f"its columns are {list(COLUMNS[table])}")
                    raise ProfileError(msg)
            targets = list(mapping.values())
            twice = sorted({c for c in targets if targets.count(c) > 1})
            if twice:
                msg = f"{where}: several headers of table {table!r} map to {twice}; map each column once"
                raise ProfileError(msg)
        for key in ("files", "sheets"):
            object.__setattr__(self, key, MappingProxyType(dict(getattr(self, key))))
        object.__setattr__(self, "columns", MappingProxyType({t: MappingProxyType(dict(m)) for t, m in self.columns.items()}))
        object.__setattr__(self, "thousands", tuple(self.thousands))
        object.__setattr__(self, "datetime_formats", tuple(self.datetime_formats))
        object.__setattr__(self, "date_formats", tuple(self.date_formats))

    @classmethod
    def from_yaml(cls, path: str | Path) -> Profile:
        """The profile declared in the YAML file at ``path``.

        >>> Profile.from_yaml("data/profiles/1c.yaml").encoding  # doctest: +SKIP
        'cp1251'
        """
        doc = read_yaml(path, ProfileError, "the source profile")
        p = Path(path)
        if not isinstance(doc, dict):
            msg = f"{p}: a source profile is a mapping (encoding:, delimiter:, tables: …); see data/profiles/1c.yaml"
            raise ProfileError(msg)
        unknown = sorted(set(map(str, doc)) - _KEYS)
        if unknown:
            msg = f"{p}: unknown key(s) {unknown} in the source profile; keys are {sorted(_KEYS)}"
            raise ProfileError(msg)
        tables = doc.get("tables") or {}
        if not isinstance(tables, dict):
            msg = f"{p}: 'tables' must map a table name to its file:, sheet: and columns:"
            raise ProfileError(msg)
        files, sheets, columns = {}, {}, {}
        for table, spec in tables.items():
            spec = spec or {}
            if not isinstance(spec, dict) or set(map(str, spec)) - _TABLE_KEYS:
                msg = f"{p}: table {table!r} must be a mapping with keys {sorted(_TABLE_KEYS)}"
                raise ProfileError(msg)
            if "file" in spec:
                files[str(table)] = str(spec["file"])
            if "sheet" in spec:
                sheets[str(table)] = str(spec["sheet"])
            cols = spec.get("columns") or {}
            if not isinstance(cols, dict):
                msg = f"{p}: columns of table {table!r} must map an export header to a column name"
                raise ProfileError(msg)
            columns[str(table)] = {str(k).strip(): str(v) for k, v in cols.items()}

        def strings(key: str) -> tuple[str, ...]:
            v = doc.get(key) or ()
            v = [v] if isinstance(v, str) else v
            if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
                msg = f"{p}: {key} must be a list of strings"
                raise ProfileError(msg)
            return tuple(v)

        return cls(
            name=str(doc.get("name") or p.stem), encoding=str(doc.get("encoding", "utf-8")),
            delimiter=str(doc.get("delimiter", ",")), decimal=str(doc.get("decimal", ".")),
            thousands=strings("thousands"), datetime_formats=strings("datetime_formats"),
            date_formats=strings("date_formats"), workbook=doc.get("workbook"),
            files=files, sheets=sheets, columns=columns, path=str(p),
        )

    def canonical(self, table: str, header: str) -> str:
        """The contract's column for ``header`` of ``table`` (a header not mapped is kept)."""
        return self.columns.get(table, _EMPTY).get(header, header)

    def converts(self, column: str) -> bool:
        """True when values of ``column`` are converted from a declared format."""
        if column in TIMESTAMP_COLUMNS:
            return bool(self.datetime_formats)
        if column in DATE_COLUMNS:
            return bool(self.date_formats)
        return column == "amount_rub" and (self.decimal != "." or bool(self.thousands))

    def format_of(self, column: str) -> str:
        """The declared format of ``column`` in words, for messages."""
        if column in TIMESTAMP_COLUMNS:
            return " or ".join(repr(f) for f in self.datetime_formats)
        if column in DATE_COLUMNS:
            return " or ".join(repr(f) for f in self.date_formats)
        seps = ", ".join(f"U+{ord(t):04X}" if not t.isprintable() or t.isspace() else repr(t) for t in self.thousands)
        return f"decimal {self.decimal!r}" + (f", thousands {seps}" if seps else "")


def load_profile(profile: str | Path | Profile | None) -> Profile | None:
    """``profile`` itself, or the profile read from the YAML file it names (None stays None)."""
    if profile is None or isinstance(profile, Profile):
        return profile
    p = Path(profile)
    if not p.is_file():
        msg = f"{p}: no such source profile; give a profile YAML such as data/profiles/1c.yaml or data/profiles/excel-ru.yaml"
        raise ProfileError(msg)
    return Profile.from_yaml(p)


def to_canonical(df: pd.DataFrame, profile: Profile, typed: Mapping[str, np.ndarray] | None = None
                 ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """``df`` (text columns of one table) with its declared formats converted to the contract's.

    Returns the converted frame and, per converted column, the mask of values that did not
    match the declared format (they get :data:`MISMATCH` in front, so the validator rejects
    them). ``typed`` marks cells that came typed from a workbook (already canonical text).
    """
    def one(c: str) -> tuple[pd.Series, np.ndarray] | None:
        arr = pa.array(df[c].array)
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        arr = arr.cast(pa.large_string())
        todo = pc.fill_null(pc.not_equal(arr, ""), False)
        if typed is not None and c in typed:
            todo = pc.and_(todo, pa.array(~typed[c]))
        if not pc.any(todo).as_py():
            return None
        if c == "amount_rub":
            conv, ok = _amounts(arr, profile)
        else:
            conv, ok = _stamps(arr, profile.datetime_formats if c in TIMESTAMP_COLUMNS else profile.date_formats,
                               date=c in DATE_COLUMNS)
        miss = pc.and_(todo, pc.invert(ok))
        new = pc.if_else(todo, pc.if_else(ok, conv, pc.binary_join_element_wise(
            pa.scalar(MISMATCH, pa.large_string()), arr, pa.scalar("", pa.large_string()))), arr)
        return pd.Series(pd.array(new, dtype="str"), index=df.index, name=c), miss.to_numpy(zero_copy_only=False)

    cols = [c for c in df.columns if profile.converts(c)]
    with ThreadPoolExecutor(max_workers=workers()) as pool:  # Arrow's kernels release the GIL: a column per worker
        done = dict(zip(cols, pool.map(one, cols), strict=True))
    out = {c: r[0] for c, r in done.items() if r is not None}
    bad = {c: r[1] for c, r in done.items() if r is not None}
    return (df.assign(**out) if out else df), bad


_FIELDS = {"%d": ("day", 2), "%m": ("month", 2), "%Y": ("year", 4), "%H": ("hour", 2), "%M": ("minute", 2), "%S": ("second", 2)}


def _layout(fmt: str) -> tuple[str, dict[str, int]]:
    """The exact regex of ``fmt`` (each field zero-padded to its width) and where each field starts."""
    out, at, pos = [], 0, {}
    for part in re.split(r"(%.)", fmt):
        if part in _FIELDS:
            name, width = _FIELDS[part]
            pos[name] = at
            out.append(rf"\d{{{width}}}")
            at += width
        else:
            lit = "%" if part == "%%" else part
            out.append(re.escape(lit))
            at += len(lit)
    return "^" + "".join(out) + "$", pos


def _stamps(arr: pa.Array, formats: tuple[str, ...], *, date: bool) -> tuple[pa.Array, pa.Array]:
    """ISO text of the values written in one of ``formats`` exactly, and the mask of those that are.

    A value must match the format's exact regex (fields zero-padded: ``3.12.2026`` does
    not match ``%d.%m.%Y``) and parse with Arrow's ``strptime`` to the day, month, hour and
    minute it shows (``strptime`` rolls ``31.02`` over to ``03.03``). Checking by a
    ``strftime`` round trip cost about 2 s per million values here, rewriting with regex
    groups 0.7 s; this check is a few slices of the fixed-width fields.
    """
    ok = pa.array(np.zeros(len(arr), bool))
    conv = pa.nulls(len(arr), pa.large_string())
    todo = pc.fill_null(pc.not_equal(arr, ""), False)
    for fmt in formats:
        regex, pos = _layout(fmt)
        shape = pc.and_(pc.fill_null(pc.match_substring_regex(arr, regex), False), pc.invert(ok))
        if not pc.any(shape).as_py():
            continue
        stand_in = pa.scalar(dt.datetime(2000, 1, 1).strftime(fmt), pa.large_string())  # other rows parse too
        src = pc.if_else(shape, arr, stand_in)
        t = pc.strptime(src, format=fmt, unit="s", error_is_null=True)
        this = pc.and_(shape, pc.is_valid(t))
        for f in ("day", "month", "hour", "minute"):
            if f in pos:
                written = pc.cast(pc.utf8_slice_codeunits(src, pos[f], pos[f] + 2), pa.int64())
                this = pc.and_(this, pc.fill_null(pc.equal(getattr(pc, f)(t), written), False))
        text = (t.cast(pa.date32()) if date else t).cast(pa.large_string())
        conv = pc.if_else(this, text, conv)
        ok = pc.or_(ok, this)
        if pc.all(pc.or_(ok, pc.invert(todo))).as_py():
            break
    return conv, ok


def _amounts(arr: pa.Array, profile: Profile) -> tuple[pa.Array, pa.Array]:
    """Dot-decimal text of the amounts written as declared, and the mask of those that are."""
    dec = re.escape(profile.decimal)
    seps = "".join(re.escape(t) for t in profile.thousands)
    grouped = rf"\d{{1,3}}(?:[{seps}]\d{{3}})+|" if seps else ""
    ok = pc.fill_null(pc.match_substring_regex(arr, rf"^-?(?:{grouped}\d+)(?:{dec}\d+)?$"), False)
    conv = pc.replace_substring_regex(arr, f"[{seps}]", "") if seps else arr
    if profile.decimal != ".":
        conv = pc.replace_substring(conv, profile.decimal, ".")
    return conv, ok
