"""Files for people: CSV and Excel exports that a spreadsheet cannot turn into formulas.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as
a formula by Excel and LibreOffice (CSV/formula injection). Such cells get a leading
apostrophe, which spreadsheets show as text and do not evaluate; numbers stay numbers.

Tables of any length are written in chunks, so memory does not grow with the table. The
CSV holds every row; an Excel sheet holds at most 1 048 576 rows, so the XLSX copy holds
the first :data:`XLSX_MAX_ROWS` and a ``note`` sheet says how many more are in the CSV.
"""

from __future__ import annotations

import csv as csv_module
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FORMATS", "FORMULA_START", "XLSX_MAX_ROWS", "CsvStream", "Sheet", "neutralise", "write_table", "write_workbook",
           "write_xlsx", "xlsx_note"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Data rows an Excel sheet can hold below its header row.
XLSX_MAX_ROWS = 1_048_575
#: Rows written per step.
CHUNK_ROWS = 100_000
_CELL_MAX = 32_767  # characters Excel keeps in one cell


def neutralise(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells cannot run as spreadsheet formulas.

    >>> neutralise(pd.DataFrame({"a": ["=1+1", "ok", "@SUM(A1)"]}))["a"].tolist()
    ["'=1+1", 'ok', "'@SUM(A1)"]
    """
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if col.dtype == object or isinstance(col.dtype, pd.StringDtype) or isinstance(col.dtype, pd.CategoricalDtype):
            text = col.astype("str")
            risky = text.str.startswith(FORMULA_START).fillna(False)
            if risky.any():
                out[c] = text.where(~risky, "'" + text)
    return out


def xlsx_note(rows: int, csv_name: str, cap: int = XLSX_MAX_ROWS) -> str:
    """What the XLSX copy of a table of ``rows`` rows leaves out ('' when it holds them all).

    >>> xlsx_note(1_500_000, "quarantine.csv")
    'the XLSX holds the first 1,048,575 rows; 451,425 more are in quarantine.csv'
    """
    if rows <= cap:
        return ""
    return f"the XLSX holds the first {cap:,} rows; {rows - cap:,} more are in {csv_name}"


def write_table(df: pd.DataFrame, path: str | Path, *, sheet: str = "data", xlsx: bool = True,
                xlsx_max_rows: int = XLSX_MAX_ROWS, chunk_rows: int = CHUNK_ROWS) -> list[Path]:
    """Write ``df`` as ``path`` .csv (every row) and .xlsx (the first ``xlsx_max_rows``), formula-safe.

    ``xlsx=False`` writes only the CSV (for tables that may outgrow a worksheet, such as a
    replay). Both files are written ``chunk_rows`` rows at a time. When the table is longer than
    the sheet may be, the workbook gets a second sheet, ``note``, saying how many rows
    are only in the CSV (:func:`xlsx_note`). Returns the files written.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> [p.name for p in write_table(pd.DataFrame({"a": range(5)}), f"{d}/t", xlsx_max_rows=3)]
    ['t.csv', 't.xlsx']
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    csv = p.with_suffix(".csv")
    with CsvStream(csv) as stream:
        for i in range(0, max(len(df), 1), chunk_rows):
            stream.write(df.iloc[i:i + chunk_rows])
    if not xlsx:
        return [csv]
    return [csv, write_xlsx(df, p, sheet=sheet, rows=len(df), csv_name=csv.name, xlsx_max_rows=xlsx_max_rows, chunk_rows=chunk_rows)]


class CsvStream:
    """A formula-safe CSV written a chunk of rows at a time, as :func:`write_table` writes it.

    The file is written under a temporary name and put in place by :meth:`close` (a
    ``with`` block), so a failed run leaves no half-written file behind the final name.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with CsvStream(f"{d}/t.csv") as s:
    ...     s.write(pd.DataFrame({"a": ["=1", "x"]}))
    ...     s.write(pd.DataFrame({"a": ["y"]}))
    >>> import csv
    >>> [row for row in csv.reader(open(f"{d}/t.csv", encoding="utf-8-sig"))]
    [['a'], ["'=1"], ['x'], ['y']]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        self._fh = self._tmp.open("wb")
        self._fh.write("\ufeff".encode())
        self.rows = 0
        self._header = True

    def write(self, chunk: pd.DataFrame) -> None:
        """Append the rows of ``chunk`` (the header goes with the first chunk, even an empty one)."""
        import pyarrow.csv as pacsv

        if not len(chunk) and not self._header:
            return
        table = _arrow_text(chunk)
        if table is not None:  # text and whole numbers: Arrow writes what pandas would, many times faster
            pacsv.write_csv(table, self._fh, pacsv.WriteOptions(include_header=self._header, quoting_style="needed"))
        else:
            self._fh.write(neutralise(chunk).to_csv(index=False, header=self._header, quoting=csv_module.QUOTE_NONNUMERIC).encode())
        self._header = False
        self.rows += len(chunk)

    def close(self, keep: bool = True) -> None:
        """Finish the file (``keep=False``: drop it)."""
        if self._fh.closed:
            return
        self._fh.close()
        if keep:
            self._tmp.replace(self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> CsvStream:
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        self.close(keep=exc_type is None)


def write_xlsx(df: pd.DataFrame, path: str | Path, *, sheet: str = "data", rows: int | None = None, csv_name: str | None = None,
               xlsx_max_rows: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Write the first ``xlsx_max_rows`` rows of ``df`` as ``path`` .xlsx, formula-safe.

    ``rows`` is the length of the whole table when ``df`` is only its head (the rest being
    in the CSV ``csv_name``): the ``note`` sheet then counts the rows left out. The cap
    defaults to :data:`XLSX_MAX_ROWS`. Returns the file.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> write_xlsx(pd.DataFrame({"a": range(3)}), f"{d}/t", rows=5).name
    't.xlsx'
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    book = p.with_suffix(".xlsx")
    xlsx_max_rows = XLSX_MAX_ROWS if xlsx_max_rows is None else xlsx_max_rows
    cap = max(int(xlsx_max_rows), 0)
    total = len(df) if rows is None else int(rows)
    _write_xlsx(df, book, sheet[:31], cap, chunk_rows, xlsx_note(total, csv_name or p.with_suffix(".csv").name, xlsx_max_rows))
    return book


def _safe_strings(arr: Any) -> Any:
    """Arrow strings with an apostrophe before those a spreadsheet would run (as :func:`neutralise`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    risky = pc.starts_with(arr, FORMULA_START[0])
    for start in FORMULA_START[1:]:
        risky = pc.or_(risky, pc.starts_with(arr, start))
    quoted = pc.binary_join_element_wise(pa.scalar("'", arr.type), arr, pa.scalar("", arr.type))
    return pc.if_else(pc.fill_null(risky, False), quoted, arr)


def _text_column(col: pd.Series) -> Any:
    """A text or categorical column as formula-safe Arrow strings (None: not text).
    Categories are made safe once and taken by code."""
    import pyarrow as pa

    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = _safe_strings(pa.array(col.cat.categories.astype("str"), pa.large_string()))
        codes = col.cat.codes.to_numpy()
        return cats.take(pa.array(codes, mask=codes < 0))
    if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
        return _safe_strings(pa.array(col.astype("str").array, pa.large_string()))
    return None


def _arrow_text(chunk: pd.DataFrame) -> Any:
    """``chunk`` as an Arrow table of safe strings and whole numbers, or None when it has
    other columns (floats, dates, booleans, missing values): those go through pandas."""
    import pyarrow as pa

    cols = {}
    for c in chunk.columns:
        col = chunk[c]
        if pd.api.types.is_integer_dtype(col.dtype) and not col.isna().any():
            cols[str(c)] = pa.array(col.to_numpy(np.int64))
            continue
        v = _text_column(col)
        if v is None or v.null_count:
            return None
        cols[str(c)] = v
    return pa.table(cols)


# A minimal SpreadsheetML package, its sheet written as a stream of XML built column by
# column with Arrow (openpyxl took 2 minutes and gigabytes of memory for a million rows).
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
#: Number formats a column may take (:func:`write_workbook`): name -> (style index, Excel format code).
#: Style 0 is the default and 1 the date-time of a plain :func:`write_xlsx` sheet.
FORMATS: dict[str, tuple[int, str]] = {
    "datetime": (1, "yyyy-mm-dd hh:mm"),
    "date": (2, "yyyy-mm-dd"),
    "month": (3, "yyyy-mm"),
    "rub": (4, '#,##0.00 "₽"'),
    "int": (5, "#,##0"),
    "float": (6, "#,##0.00"),
    "pct": (7, "0.0%"),
    "text": (8, "@"),
}
_CUSTOM = {name: 164 + i for i, name in enumerate(FORMATS)}  # custom number-format ids start at 164
_STYLES = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet {_NS}>'
    f'<numFmts count="{len(FORMATS)}">'
    + "".join(f'<numFmt numFmtId="{_CUSTOM[n]}" formatCode="{code.replace(chr(34), "&quot;")}"/>' for n, (_, code) in FORMATS.items())
    + '</numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    f'<cellXfs count="{len(FORMATS) + 2}"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    + "".join(f'<xf numFmtId="{_CUSTOM[n]}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>' for n in FORMATS)
    + '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_BOLD = len(FORMATS) + 1  # the header row's style


def _col_letter(j: int) -> str:
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


def _xml_text(arr: Any) -> Any:
    """Arrow strings escaped for XML; characters XML 1.0 cannot hold become U+FFFD."""
    import pyarrow.compute as pc

    arr = pc.utf8_slice_codeunits(arr, 0, _CELL_MAX)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        arr = pc.replace_substring(arr, a, b)
    return pc.replace_substring_regex(arr, "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "\ufffd")


def _concat(arr: Any) -> Any:
    """The values of an Arrow string array without nulls, back to back (a view of its data buffer)."""
    import pyarrow as pa

    arr = arr.cast(pa.large_string())
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    if not len(arr) or arr.buffers()[2] is None:
        return b""
    return memoryview(arr.buffers()[2])[offsets[0]:offsets[-1]]


def _sheet_rows(chunk: pd.DataFrame, first_row: int, styles: dict[Any, int] | None = None) -> bytes:
    """``<row>`` elements of ``chunk`` (text made formula-safe here), its first row numbered
    ``first_row``; ``styles`` gives a column's style index (a number format)."""
    styles = styles or {}
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(chunk)
    num = pa.array(np.arange(first_row, first_row + n)).cast(pa.large_string())
    cells = []
    for j, c in enumerate(chunk.columns):
        col = chunk[c]
        ref = pc.binary_join_element_wise(pa.scalar(f'<c r="{_col_letter(j)}', pa.large_string()), num, pa.scalar("", pa.large_string()))
        if pd.api.types.is_bool_dtype(col.dtype):
            v, kind = pa.array(col.astype("Int8"), pa.int8()).cast(pa.large_string()), '" t="b"><v>'
            end = "</v></c>"
        elif pd.api.types.is_numeric_dtype(col.dtype):
            f = pd.to_numeric(col, errors="coerce").astype("float64")
            ok = np.isfinite(f.to_numpy())
            vals = col.astype("Int64") if pd.api.types.is_integer_dtype(col.dtype) else f
            v = pa.array(np.where(ok, vals.astype("str"), None), pa.large_string()) if not pd.api.types.is_integer_dtype(col.dtype) \
                else pa.array(vals, pa.int64()).cast(pa.large_string())
            kind, end = (f'" s="{styles[c]}"><v>' if c in styles else '"><v>'), "</v></c>"
        elif pd.api.types.is_datetime64_any_dtype(col.dtype):
            naive = col.dt.tz_localize(None) if isinstance(col.dtype, pd.DatetimeTZDtype) else col
            days = (naive - pd.Timestamp("1899-12-30")) / pd.Timedelta(days=1)  # Excel's serial day numbers
            v = pa.array(np.where(days.notna(), days.astype("str"), None), pa.large_string())
            kind, end = f'" s="{styles.get(c, 1)}"><v>', "</v></c>"
        elif isinstance(col.dtype, pd.CategoricalDtype):  # each category made safe and escaped once
            cats = _xml_text(_safe_strings(pa.array(col.cat.categories.astype("str"), pa.large_string())))
            codes = col.cat.codes.to_numpy()
            v = cats.take(pa.array(codes, mask=codes < 0))
            kind, end = '" t="inlineStr"><is><t xml:space="preserve">', "</t></is></c>"
        else:
            v = _xml_text(_safe_strings(pa.array(col.astype("str").array, pa.large_string())))
            kind, end = '" t="inlineStr"><is><t xml:space="preserve">', "</t></is></c>"
        cell = pc.binary_join_element_wise(ref, pa.scalar(kind, pa.large_string()), v, pa.scalar(end, pa.large_string()),
                                           pa.scalar("", pa.large_string()))
        cells.append(pc.fill_null(cell, ""))  # an empty value is no cell
    head = pc.binary_join_element_wise(pa.scalar('<row r="', pa.large_string()), num, pa.scalar('">', pa.large_string()),
                                       pa.scalar("", pa.large_string()))
    rows = pc.binary_join_element_wise(head, *cells, pa.scalar("</row>", pa.large_string()), pa.scalar("", pa.large_string()))
    return _concat(rows)


class Sheet:
    """One sheet of :func:`write_workbook`: a table, a number format per column (names of
    :data:`FORMATS`), and whether its first column stays in view (frozen panes)."""

    def __init__(self, df: pd.DataFrame, formats: dict[Any, str] | None = None, *, freeze: bool = True) -> None:
        unknown = sorted(str(f) for f in (formats or {}).values() if f not in FORMATS)
        if unknown:
            msg = f"Sheet: unknown number format(s) {unknown}; use {sorted(FORMATS)}"
            raise ValueError(msg)
        self.df, self.formats, self.freeze = df, dict(formats or {}), freeze

    def styles(self) -> dict[Any, int]:
        return {c: FORMATS[f][0] for c, f in self.formats.items() if c in self.df.columns}

    def widths(self) -> list[float]:
        """Each column's width in characters: its header or its longest value among the first
        thousand (numbers as their format shows them), from 8 to 60."""
        out = []
        for c in self.df.columns:
            col = self.df[c].iloc[:1000]
            fmt = self.formats.get(c)
            if fmt in ("date", "datetime", "month"):
                n = 16 if fmt == "datetime" else 10
            elif pd.api.types.is_numeric_dtype(col.dtype) and len(col):
                big = float(np.nanmax(np.abs(col.to_numpy(float)))) if col.notna().any() else 0.0
                n = len(f"{big:,.2f}") + (3 if fmt == "rub" else 1)
            else:
                n = int(col.astype("str").str.len().max()) if len(col) else 0
            out.append(float(min(max(len(str(c)) + 2, n + 2, 8), 60)))
        return out


def write_workbook(sheets: dict[str, Sheet | pd.DataFrame], path: str | Path, *, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Write several formula-safe sheets to ``path`` .xlsx, with number formats, column widths,
    a bold header row and the header (and first column) frozen.

    Sheet names are cut to Excel's 31 characters; a sheet holds at most
    :data:`XLSX_MAX_ROWS` rows (write long tables with :func:`write_table`).

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> book = write_workbook({"money": Sheet(pd.DataFrame({"rub": [1.5, 2.25]}), {"rub": "rub"})}, f"{d}/w")
    >>> import openpyxl
    >>> openpyxl.load_workbook(book)["money"]["A2"].number_format
    '#,##0.00 "₽"'
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    book = p.with_suffix(".xlsx")
    parts = {name[:31]: (sh if isinstance(sh, Sheet) else Sheet(sh)) for name, sh in sheets.items()}
    long = [n for n, sh in parts.items() if len(sh.df) > XLSX_MAX_ROWS]
    if long:
        msg = f"write_workbook: sheet(s) {long} exceed {XLSX_MAX_ROWS:,} rows; write such a table with write_table"
        raise ValueError(msg)
    _write_book(parts, book, chunk_rows)
    return book


def _write_xlsx(df: pd.DataFrame, xlsx: Path, sheet: str, cap: int, chunk_rows: int, note: str) -> None:
    parts = {sheet: Sheet(df.iloc[:cap] if len(df) > cap else df, freeze=False)}
    if note:
        parts["note"] = Sheet(pd.DataFrame(columns=[note]), freeze=False)  # the note alone, in A1
    _write_book(parts, xlsx, chunk_rows, plain=True)


def _write_book(parts: dict[str, Sheet], xlsx: Path, chunk_rows: int, plain: bool = False) -> None:
    """The workbook package; ``plain``: no widths, frozen panes or bold header (as the
    one-table export always wrote it)."""
    from xml.sax.saxutils import quoteattr

    sheets = list(parts)
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>'
        + "".join(f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" ContentType="{_CT}.worksheet+xml"/>' for i in range(len(sheets)))
        + "</Types>"
    )
    rels = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
    workbook = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook {_NS} xmlns:r="{_REL}"><sheets>'
                + "".join(f'<sheet name={quoteattr(s)} sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, s in enumerate(sheets))
                + "</sheets></workbook>")
    wb_rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
               + "".join(f'<Relationship Id="rId{i + 1}" Type="{_REL}/worksheet" Target="worksheets/sheet{i + 1}.xml"/>' for i in range(len(sheets)))
               + f'<Relationship Id="rId{len(sheets) + 1}" Type="{_REL}/styles" Target="styles.xml"/></Relationships>')
    with zipfile.ZipFile(xlsx, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", content_types)
        zf.writestr("_rels/.rels", rels)
        zf.writestr("xl/workbook.xml", workbook)
        zf.writestr("xl/_rels/workbook.xml.rels", wb_rels)
        zf.writestr("xl/styles.xml", _STYLES)
        for i, (name, sh) in enumerate(parts.items()):
            with zf.open(f"xl/worksheets/sheet{i + 1}.xml", "w", force_zip64=True) as fh:
                fh.write(_sheet_head(sh, plain).encode())
                n = len(sh.df)
                styles = sh.styles()
                for k in range(0, n, chunk_rows):
                    fh.write(_sheet_rows(sh.df.iloc[k:min(k + chunk_rows, n)], k + 2, styles))
                fh.write(b"</sheetData></worksheet>")


def _sheet_head(sh: Sheet, plain: bool) -> str:
    """A worksheet's opening: frozen panes, column widths, and the header row."""
    from xml.sax.saxutils import escape

    df = sh.df
    bold = "" if plain else f' s="{_BOLD}"'
    header = "".join(f'<c r="{_col_letter(j)}1" t="inlineStr"{bold}><is><t>{escape(str(c))}</t></is></c>' for j, c in enumerate(df.columns))
    head = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS}>'
    if not plain:
        if sh.freeze and len(df.columns) > 1:
            head += ('<sheetViews><sheetView workbookViewId="0"><pane xSplit="1" ySplit="1" topLeftCell="B2" '
                     'activePane="bottomRight" state="frozen"/></sheetView></sheetViews>')
        head += "<cols>" + "".join(f'<col min="{j + 1}" max="{j + 1}" width="{w:g}" customWidth="1"/>'
                                   for j, w in enumerate(sh.widths())) + "</cols>" if len(df.columns) else ""
    return head + f'<sheetData><row r="1">{header}</row>'
