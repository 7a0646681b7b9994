"""Reading a ledger's source files: CSV (whole, or streamed in batches), Parquet, XLSX sheets.

:func:`find_files` finds the tables of a folder (plain names, or a source profile's file
names); :func:`read_table` reads one as text columns with surrounding white space trimmed
(one trimming policy: Arrow's Unicode white space), header checks name the file and the column. What
the tables mean is :mod:`subs_model.ledger`'s; checking their values is
:mod:`subs_model.validation`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import LedgerError, LedgerFileError
from .ledger import COLUMNS, DATE_COLUMNS, REQUIRED, TABLES

#: File suffixes read without a profile; workbooks need one (it names their sheets).
PLAIN_SUFFIXES = (".csv", ".parquet")
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
#: Bytes that can begin (first) or end (last) a string with Unicode white space in UTF-8:
#: ASCII blanks, and the lead / final bytes of U+0085, U+00A0, U+1680, U+2000–U+200A,
#: U+2028, U+2029, U+202F, U+205F and U+3000. A value whose first and last bytes are not
#: among them needs no trimming (a superset test over the raw buffers, no string made).
_WS_FIRST = np.zeros(256, bool)
_WS_FIRST[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xC2, 0xE1, 0xE2, 0xE3]] = True
_WS_LAST = np.zeros(256, bool)
_WS_LAST[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, *range(0x80, 0x8B), 0xA8, 0xA9, 0xAF, 0x9F]] = True


@dataclass(frozen=True, slots=True)
class _Read:
    """One table as read: its text (or typed Parquet) columns, how many values were trimmed,
    and, for a workbook, the cells that came typed (numbers, dates) rather than as text."""

    df: pd.DataFrame
    trimmed: int
    typed: dict[str, np.ndarray] | None = None


def _trim(arr: pa.Array) -> tuple[pa.Array, int]:
    """``arr`` (strings) with surrounding Unicode white space removed, and how many values changed.

    The policy is Arrow's ``utf8_trim_whitespace`` (Unicode White_Space: blanks, tabs,
    NBSP U+00A0, U+2007, U+202F, …). A column is trimmed only if some value's first or
    last byte could be white space (tested on the buffers), so a clean column costs a scan
    of its offsets.
    """
    arr = arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr
    n = len(arr)
    if n == 0:
        return arr, 0
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=n + 1, offset=arr.offset * 8)
    data = arr.buffers()[2]
    if data is None or data.size == 0:
        return arr, 0
    buf = np.frombuffer(data, dtype=np.uint8)
    nonempty = offsets[1:] > offsets[:-1]
    starts, ends = offsets[:-1][nonempty], offsets[1:][nonempty] - 1
    if not (_WS_FIRST[buf[starts]].any() or _WS_LAST[buf[ends]].any()):
        return arr, 0
    out = pc.utf8_trim_whitespace(arr)
    changed = pc.sum(pc.not_equal(pc.binary_length(arr), pc.binary_length(out))).as_py() or 0
    return out, int(changed)


def _trim_table(table: pa.Table) -> tuple[pa.Table, int]:
    total = 0
    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            col, n = _trim(table.column(i).combine_chunks())
            if n:
                table = table.set_column(i, f.name, col)
                total += n
    return table, total


def header_columns(path: Path, name: str, encoding: str, delimiter: str) -> list[str]:
    """The column names of a CSV file, read with the csv module (quoted headers are names too)."""
    import csv
    import io as io_

    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    enc = "utf-8-sig" if codecs_name(encoding) == "utf-8" else encoding
    try:
        text = head.decode(enc)
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4 or exc.reason != "unexpected end of data":
            raise
        text = head[: exc.start].decode(enc)
    first = text.splitlines()[0] if text.strip() else ""
    return [c for c in next(csv.reader(io_.StringIO(first), delimiter=delimiter, quotechar='"'), [])] if first else []


def codecs_name(encoding: str) -> str:
    import codecs

    return codecs.lookup(encoding).name.replace("_", "-")


def canonical_column(path: Path, name: str, headers: list[str], profile: Any) -> list[str]:
    """The contract's names of ``headers`` (trimmed, mapped by the profile); a repeated one raises."""
    names = [h.strip().lstrip("\ufeff").strip() for h in headers]  # str.strip: Unicode white space, NBSP included
    canon = [profile.canonical(name, h) if profile is not None else h for h in names]
    seen: dict[str, int] = {}
    for i, c in enumerate(canon):
        if c in seen:
            j = seen[c]
            given = f"headers {names[j]!r} and {names[i]!r} both mean" if names[j] != names[i] else "the header has"
            msg = (f"{path}: {given} column {c!r} twice (columns {j + 1} and {i + 1}) in table {name!r}; "
                   f"keep one and delete or rename the other")
            raise LedgerError(msg)
        seen[c] = i
    return canon


def _csv_options(names: list[str], encoding: str, delimiter: str, block_size: int | None = None) -> dict[str, Any]:
    read = pacsv.ReadOptions(column_names=names, skip_rows=1, encoding=encoding)
    if block_size:
        read.block_size = block_size
    return {
        "read_options": read,
        "parse_options": pacsv.ParseOptions(delimiter=delimiter),
        "convert_options": pacsv.ConvertOptions(
            # Types come from the schema, never from inference: every column is text
            # (pandas strings are large_string: no copy), and only an empty field is
            # missing ("NA", "NULL", "nan", "None" are text).
            column_types={c: pa.large_string() for c in names},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    }


def _read_error(exc: Exception, path: Path, name: str, profile: Any, encoding: str) -> LedgerFileError:
    """The one-line error of a table that cannot be read (not text in ``encoding``, not CSV/Parquet)."""
    if isinstance(exc, UnicodeDecodeError):
        hint = ("if it is a 1C export in Windows-1251, read it with --profile data/profiles/1c.yaml "
                "(profile= in Python), or save it as UTF-8") if profile is None else (
                f"the profile {profile.name!r} says {encoding}; fix 'encoding:' in {profile.path or 'the profile'}")
        msg = f"{path}: cannot read table {name!r}: it is not {encoding} text ({exc.reason} at byte {exc.start}); {hint}"
        return LedgerFileError(msg)
    hint = ("if it is not UTF-8 (a 1C export in Windows-1251), read it with --profile data/profiles/1c.yaml"
            if profile is None and "UTF8" in str(exc) else "check that it is a valid " +
            ("UTF-8 CSV or Parquet file" if profile is None else f"{encoding} CSV with {profile.delimiter!r}, Parquet or XLSX file"))
    msg = f"{path}: cannot read table {name!r} ({exc}); {hint}"
    return LedgerFileError(msg)


def check_header(path: Path, name: str, columns: list[str], profile: Any) -> None:
    unknown = [c for c in columns if c not in COLUMNS[name]]
    if unknown:
        fix = "map them in the profile's columns or drop them" if profile is not None else f"its columns are {list(COLUMNS[name])}"
        if profile is None and len(columns) == 1 and (";" in columns[0] or "\t" in columns[0]):
            fix = ("the header is one column, so the file is not separated by ','; a ';'-separated export "
                   "(1C, Russian Excel) is read with a profile, e.g. --profile data/profiles/1c.yaml")
        msg = f"{path}: unknown column(s) {unknown} in table {name!r}; {fix}"
        if profile is not None:
            msg += f" (columns of {name}: {list(COLUMNS[name])})"
        raise LedgerError(msg)


def _frame(table: pa.Table, name: str) -> pd.DataFrame:
    for i, field in enumerate(table.schema):  # exact amounts (a ledger written after reading): their decimal text
        if pa.types.is_decimal(field.type):
            table = table.set_column(i, field.name, pc.cast(table.column(i), pa.large_string()))
    df = table.combine_chunks().to_pandas()  # one chunk per column: hashing chunked strings is several times slower
    for c in COLUMNS[name]:
        if c not in df.columns and c not in REQUIRED[name]:
            df[c] = pd.Series(pd.NA, index=df.index, dtype="string")
    return df


def read_table(path: Path, name: str, profile: Any = None) -> _Read:
    """Read one table: CSV (every column as text, whatever the header's quoting; only an empty
    field is missing), Parquet, or with a profile a workbook's sheet; text values trimmed."""
    typed = None
    encoding = profile.encoding if profile is not None else "utf-8"
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.read_table(path)
            table = table.rename_columns(canonical_column(path, name, table.column_names, profile))
        elif suffix in WORKBOOK_SUFFIXES and profile is not None:
            table, typed = _read_sheet(path, name, profile)
        else:
            delimiter = profile.delimiter if profile is not None else ","
            names = canonical_column(path, name, header_columns(path, name, encoding, delimiter), profile)
            table = pacsv.read_csv(path, **_csv_options(names, encoding, delimiter))
    except (UnicodeDecodeError, OSError, pa.ArrowInvalid) as exc:
        raise _read_error(exc, path, name, profile, encoding) from exc
    check_header(path, name, table.column_names, profile)
    table, trimmed = _trim_table(table)
    return _Read(_frame(table, name), trimmed, typed)


def csv_batches(path: Path, name: str, rows: int) -> Iterator[_Read]:
    """A CSV table without a profile, read as :func:`read_table` reads it, ``rows`` rows at a
    time (the last batch may be shorter; a file without rows gives one empty batch)."""
    names = canonical_column(path, name, header_columns(path, name, "utf-8", ","), None)
    check_header(path, name, names, None)
    pending: list[pa.RecordBatch] = []
    have = 0
    sent = False
    try:
        reader = pacsv.open_csv(path, **_csv_options(names, "utf-8", ",", block_size=1 << 24))
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            pending.append(batch)
            have += batch.num_rows
            while have >= rows:
                table = pa.Table.from_batches(pending)
                head, rest = table.slice(0, rows), table.slice(rows)
                table, trimmed = _trim_table(head)
                yield _Read(_frame(table, name), trimmed)
                sent = True
                pending, have = rest.to_batches(), rest.num_rows
        if have or not sent:
            table = pa.Table.from_batches(pending, schema=reader.schema)
            table, trimmed = _trim_table(table)
            yield _Read(_frame(table, name), trimmed)
    except (UnicodeDecodeError, OSError, pa.ArrowInvalid) as exc:
        raise _read_error(exc, path, name, None, "utf-8") from exc


def _cell_text(values: list[Any], column: str) -> tuple[list[Any], np.ndarray]:
    """Workbook cells as text, and which were typed. Text stays as written; numbers become
    their shortest round-trip text (an integral float without ``.0``; an amount (integral, or
    with at most two decimals) with exactly two, ``4000.00``, as the contract writes it); a date or datetime
    cell becomes ISO (``YYYY-MM-DD`` in a date column or at midnight there, else
    ``YYYY-MM-DDTHH:MM:SS``, Moscow time as Excel has no zones); booleans ``true``/``false``."""
    import datetime as dt

    date_col = column in DATE_COLUMNS
    money = column == "amount_rub"

    def text(v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return f"{v}.00" if money else str(v)
        if isinstance(v, float):
            if money and round(v, 2) == v:
                return f"{v:.2f}"
            return str(int(v)) if v.is_integer() else repr(v)
        if isinstance(v, dt.datetime):
            return v.date().isoformat() if date_col else v.replace(tzinfo=None).isoformat(timespec="seconds")
        if isinstance(v, dt.date):
            return v.isoformat()
        return str(v)

    out = list(map(text, values))  # openpyxl hands over Python objects, one per cell
    typed = np.fromiter((v is not None and not isinstance(v, str) for v in values), bool, len(values))
    return out, typed


def _read_sheet(path: Path, name: str, profile: Any) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """The sheet of ``name`` in the workbook at ``path`` (openpyxl, read-only), as text columns."""
    import openpyxl

    sheet = profile.sheets.get(name, name)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException on a bad file
        msg = f"{path}: cannot read the workbook ({type(exc).__name__}: {exc}); check that it is an .xlsx file"
        raise LedgerFileError(msg) from exc
    try:
        if sheet not in wb.sheetnames:
            msg = (f"{path}: no sheet {sheet!r} for table {name!r}; its sheets are {wb.sheetnames}; "
                   f"fix 'sheet:' of {name} in {profile.path or 'the profile'}")
            raise LedgerFileError(msg)
        rows = list(wb[sheet].iter_rows(values_only=True))
    finally:
        wb.close()
    header = list(rows[0]) if rows else []
    while header and header[-1] is None:
        header.pop()
    body = [r for r in rows[1:] if any(v is not None and v != "" for v in r)]
    names = canonical_column(path, name, ["" if h is None else str(h) for h in header], profile)
    cols, typed = {}, {}
    for i, c in enumerate(names):
        values = [r[i] if i < len(r) else None for r in body]
        text, typed[c] = _cell_text(values, c)
        cols[c] = pa.array(text, pa.large_string())
    return pa.table(cols) if cols else pa.table({}), typed


def find_files(path: Path, profile: Any = None) -> dict[str, Path]:
    """The file of each table in the folder ``path`` (with a profile: its names, its workbook)."""
    if not path.exists():
        msg = f"{path}: no such folder; give the folder that holds licenses, orders, activations (.csv or .parquet)"
        raise LedgerFileError(msg)
    if profile is not None:
        return _profile_files(path, profile)
    if path.is_file():
        msg = f"{path}: a file; give the folder that holds licenses, orders, activations (.csv or .parquet)"
        if path.suffix.lower() in WORKBOOK_SUFFIXES:
            msg += ", or read the workbook with --profile data/profiles/excel-ru.yaml (or a profile naming its sheets)"
        raise LedgerFileError(msg)
    files: dict[str, Path] = {}
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    books = [p.name for p in entries if p.suffix.lower() in (*WORKBOOK_SUFFIXES, ".xls")]
    if books:
        msg = (f"{path}: holds workbook(s) {books}; without a profile only UTF-8 CSV and Parquet files are read; "
               f"read it with --profile data/profiles/excel-ru.yaml (or a profile of your own naming the sheets), "
               f"or save each sheet as <table>.csv")
        raise LedgerFileError(msg)
    for p in entries:
        if p.suffix.lower() in PLAIN_SUFFIXES and p.name != p.name.lower():
            canon = p.stem.lower() + p.suffix.lower()
            msg = (f"{path}: file {p.name!r} is not named as the contract says ({canon!r}: lower-case names, "
                   f"lower-case .csv/.parquet); rename it, or read the folder with --profile (a profile names "
                   f"each table's file and matches names without regard to case)")
            raise LedgerFileError(msg)
        if p.suffix not in PLAIN_SUFFIXES:
            continue
        name = p.stem
        if name not in COLUMNS:
            msg = (
                f"{p}: unknown table {name!r}; ledger files are named "
                f"{', '.join(COLUMNS)} (.csv or .parquet); an export that names its files otherwise "
                f"is read with a profile naming them, e.g. --profile data/profiles/1c.yaml"
            )
            raise LedgerError(msg)
        if name in files:
            msg = f"{path}: table {name!r} is given twice ({files[name].name} and {p.name}); keep one"
            raise LedgerError(msg)
        files[name] = p
    return files


def _profile_files(path: Path, profile: Any) -> dict[str, Path]:
    """The files of a profile: its workbook's sheets, its named files, or ``<table>.csv``/``.parquet``,
    names matched without regard to case."""
    if path.is_file():
        if path.suffix.lower() not in WORKBOOK_SUFFIXES or not profile.workbook:
            msg = f"{path}: a file; give the folder of the export (a profile with 'workbook:' may be given the workbook itself)"
            raise LedgerFileError(msg)
        return {t: path for t in COLUMNS if t in profile.sheets or t in TABLES}
    by_name = {p.name.lower(): p for p in sorted(path.iterdir()) if not p.name.startswith((".", "~$"))}
    files: dict[str, Path] = {}
    if profile.workbook:
        books = sorted(p for p in path.iterdir() if p.match(profile.workbook) and not p.name.startswith("~$"))
        if not books and profile.workbook.lower() in by_name:
            books = [by_name[profile.workbook.lower()]]
        if len(books) != 1:
            found = [p.name for p in books] or "none"
            msg = (f"{path}: the profile {profile.name!r} reads one workbook {profile.workbook!r}; found {found}; "
                   f"keep exactly one (or give the workbook's path)")
            raise LedgerFileError(msg)
        for t in COLUMNS:
            if t in profile.sheets or t in TABLES:
                files[t] = books[0]
    for t in COLUMNS:
        if t in profile.files:
            wanted = [profile.files[t]]
        elif t in files:
            continue
        else:
            wanted = [f"{t}.csv", f"{t}.parquet"]
        hits = [by_name[w.lower()] for w in wanted if w.lower() in by_name]
        if hits:
            files[t] = hits[0]
        elif t in profile.files and t in TABLES:
            msg = (f"{path}: no file {profile.files[t]!r} for table {t!r} (profile {profile.name!r}); "
                   f"export it, or fix 'file:' of {t} in {profile.path or 'the profile'}")
            raise LedgerFileError(msg)
    return files
