"""File drops: the street offices' CSV and Excel rosters, read into Arrow one file at a time.

A file drop (``files:`` in ``sources.yaml``, :class:`~connectors.config.FileDropConfig`) is a folder
where a department leaves files.  :func:`list_drop_files` lists what is there, each with a sha256
fingerprint; :func:`read_drop_file` reads one file into an Arrow table.  A file that cannot be read
never raises: its :class:`ParsedDrop` carries an ``error`` (naming the file and, where known, the line)
and the caller quarantines it, so one bad file never stops the others.

Output table
============
* One ``string`` column per header column: bronze keeps the raw text, typing happens in silver.
  Names come from the real header row (the row after ``header_rows`` skipped rows): whitespace
  stripped (inner runs, line breaks included, collapse to one space); an empty name becomes
  ``col_<n>`` (n = 1-based column position); a repeated name (compared case-insensitively, as Delta
  Lake does) gets ``_2``, ``_3``...
* ``_qst_file`` (string): the file's name (its path relative to the folder for nested patterns).
* ``_qst_line`` (int64): the row's number counted from the first row after the header, 1-based;
  blank rows count.  This is the ``N`` of the simulator's truth keys ``FILE#N``.  For CSV it counts
  CSV records (a quoted field may span physical lines), for Excel sheet rows.
* ``_qst_flags`` (string, null when nothing to say): ``; ``-separated notes on a row that was kept but
  is not clean -- ``short_row:<fields>/<header fields>`` (a CSV row with fewer fields than the header,
  padded with nulls), ``trailing_empty_fields:<k>`` (a CSV row with k extra fields, all empty, dropped),
  ``cell_error:<column>`` (an Excel error cell such as ``#N/A``; its text is kept as the value).

Blank rows (every cell empty or whitespace) are dropped but counted in ``ParsedDrop.blank_lines``:
``rows_in_file == table.num_rows + blank_lines`` where rows_in_file is the number of rows after the
header.  Empty CSV fields stay ``""`` (that is the raw text); empty Excel cells and the padding of
short CSV rows are null.

CSV
===
Comma-separated, ``"``-quoted (RFC 4180 as Excel and WPS write it), parsed strictly: a malformed quote
is an error.  ``encoding: auto`` takes UTF-8 when the whole file decodes as UTF-8 (with or without a
byte-order mark) and GB18030 otherwise -- GB18030 is a superset of GBK, so GBK files read the same, and
characters outside GBK (𠮷, 䶮) survive.  ``ParsedDrop.encoding`` records the codec used (``utf-8``,
``utf-8-sig`` when a BOM was present, ``gb18030``, ``gbk``).  An explicit encoding is checked: bytes it
cannot decode are an error naming the line, and ``gbk``/``gb18030`` configured for a file that is in fact
UTF-8 (it has a UTF-8 BOM, or every line is valid UTF-8 with non-ASCII text, which GBK text practically
never is) is an error rather than silent mojibake.  Quarantined as well: NUL bytes (binary content;
the message names a ZIP/Excel, OLE/.xls or UTF-16 signature when it sees one), a row with more
non-empty fields than the header, an empty file, a file that ends before its header row.

Excel
=====
Read with fastexcel (Rust calamine), every cell as text: ``.xlsx``, ``.xlsm``, ``.xlsb``, legacy ``.xls``
and ``.ods``.  Text cells come through untouched (an ID typed as text keeps its 18 digits, a phone
number its leading zero); numeric cells are rendered without float noise (``13800138000``, not
``13800138000.0`` or ``1.38e10``), dates as ``YYYY-MM-DD HH:MM:SS``, booleans as ``true``/``false``.
An ID that a clerk stored as a *number* was already cut to Excel's 15 significant digits inside the
file; no reader can restore it (silver's ID check quarantines it).  Merged title/group rows are skipped
by ``header_rows``; rows are numbered from the top of the sheet even when it starts with empty rows.

Fingerprints
============
``DropFile.sha256`` (see :func:`file_fingerprint`) identifies the content, so the caller can record
each file as loaded exactly once.  :func:`read_drop_file` hashes what it actually reads and reports an
error if that differs from the listed fingerprint (the file changed after it was listed, e.g. it was
still being copied); the next listing sees the new content.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from .config_schema import FileDropConfig

__all__ = [
    "LINEAGE_COLUMNS",
    "DropFile",
    "ParsedDrop",
    "file_fingerprint",
    "list_drop_files",
    "read_drop_file",
]

LINEAGE_COLUMNS = ("_qst_file", "_qst_line", "_qst_flags")
_CHUNK = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"
# signatures of files that are not text: what the message says when a "CSV" turns out to be one
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx Excel workbook?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE compound file (a legacy .xls Excel workbook?)"),
    (b"\xff\xfe", "UTF-16 text (Excel's 'Unicode text' export?); save it as CSV UTF-8 or GBK"),
    (b"\xfe\xff", "UTF-16 text; save it as CSV UTF-8 or GBK"),
    (b"%PDF", "a PDF document"),
)
# calamine's error cells, rendered as Excel shows them
_EXCEL_ERRORS = {
    "Div0": "#DIV/0!",
    "NA": "#N/A",
    "Name": "#NAME?",
    "Null": "#NULL!",
    "Num": "#NUM!",
    "Ref": "#REF!",
    "Value": "#VALUE!",
    "GettingData": "#GETTING_DATA",
}
_EXCEL_ERROR_RE = re.compile(r"Error\((\w+)\)")


@dataclass(frozen=True)
class DropFile:
    """One file found in a drop folder."""

    path: Path  # absolute
    name: str  # path relative to the drop folder, '/'-separated: the file name for flat patterns
    size: int  # bytes
    mtime_ns: int
    sha256: str  # hex digest of the content: the file's fingerprint ("" if unreadable when listed)

    @property
    def fingerprint(self) -> str:
        return self.sha256


@dataclass
class ParsedDrop:
    """What came out of one file: a table, or an error (the file is quarantined, table is None)."""

    file: DropFile
    table: pa.Table | None
    encoding: str | None  # codec used for a CSV; None for Excel or when not determined
    error: str | None  # set => quarantined; names the file and, where known, the line
    blank_lines: int = 0  # blank rows after the header: dropped from the table, counted here
    warnings: list[str] = field(default_factory=list)  # kept file, but something to look at

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rows_in_file(self) -> int | None:
        """Rows after the header, blank ones included (None when quarantined)."""
        return None if self.table is None else self.table.num_rows + self.blank_lines


class _DropError(Exception):
    """A reason to quarantine the file; ``line`` is the 1-based physical line / sheet row if known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


class _UndecodableError(_DropError):
    pass


# --------------------------------------------------------------------------------------------------
# listing


def file_fingerprint(path: str | Path) -> str:
    """sha256 (hex) of a file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _case_insensitive(pattern: str) -> str:
    """``*.csv`` -> ``*.[cC][sS][vV]``: files come from Windows machines, where ``名单.CSV`` is
    ``名单.csv``.  A pattern that already uses ``[...]`` classes is taken as written."""
    if "[" in pattern:
        return pattern
    return "".join(f"[{c.lower()}{c.upper()}]" if c.lower() != c.upper() else c for c in pattern)


def list_drop_files(drop: FileDropConfig) -> list[DropFile]:
    """The files of a drop, sorted by name, each with its size, mtime and sha256.

    ``pattern`` is matched inside ``folder`` (letters case-insensitively); a match that resolves
    outside the folder (a symlink) is ignored, as are folders, hidden names (``.x``, partial uploads)
    and Office lock files (``~$x.xlsx``) -- none of them is a delivered file.  A file that vanishes
    while listing is left out; one that cannot be read is listed with ``sha256 == ""`` and
    :func:`read_drop_file` reports why.  Raises :class:`FileNotFoundError` if the folder is missing
    (a lost mount must not look like a quiet night).
    """
    folder = Path(drop.folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"file drop {drop.name!r}: folder {folder} does not exist or is not a folder")
    root = folder.resolve()
    found: list[DropFile] = []
    for path in folder.glob(_case_insensitive(drop.pattern)):
        rel = path.relative_to(folder)
        if any(part.startswith((".", "~$")) for part in rel.parts):
            continue
        try:
            real = path.resolve(strict=True)
            if not real.is_relative_to(root) or not real.is_file():
                continue
            st = real.stat()
        except OSError:  # vanished while listing (or a broken symlink)
            continue
        try:
            sha = file_fingerprint(real)
        except FileNotFoundError:
            continue
        except OSError:
            sha = ""
        found.append(DropFile(real, rel.as_posix(), st.st_size, st.st_mtime_ns, sha))
    found.sort(key=lambda f: f.name)
    return found


# --------------------------------------------------------------------------------------------------
# reading


def read_drop_file(drop: FileDropConfig, file: DropFile) -> ParsedDrop:
    """Read one listed file into Arrow.  Never raises for a bad file: see ``ParsedDrop.error``."""
    try:
        if drop.format == "csv":
            table, encoding, blanks, warnings = _read_csv(drop, file)
        else:
            table, blanks, warnings = _read_excel(drop, file)
            encoding = None
        return ParsedDrop(file, table, encoding, None, blanks, warnings)
    except _DropError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        return ParsedDrop(file, None, None, f"{file.name}: {where}{exc.message}")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return ParsedDrop(file, None, None, f"{file.name}: cannot read the file: {reason}")
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        return ParsedDrop(
            file, None, None, f"{file.name}: cannot parse the file: {type(exc).__name__}: {text}"
        )


def _column_names(raw: Sequence[str | None]) -> tuple[list[str], list[str]]:
    """Header cells -> unique column names, and warnings about empty or repeated names."""
    names: list[str] = []
    seen = {c.lower() for c in LINEAGE_COLUMNS}
    empty: list[int] = []
    repeated: list[str] = []
    for j, cell in enumerate(raw, 1):
        name = " ".join((cell or "").replace("\ufeff", "").split())
        if not name:
            empty.append(j)
            name = f"col_{j}"
        base, k = name, 2
        if name.lower() in seen:
            repeated.append(base)
        while name.lower() in seen:
            name = f"{base}_{k}"
            k += 1
        seen.add(name.lower())
        names.append(name)
    warnings = []
    if empty:
        warnings.append(f"header has no name in column(s) {', '.join(map(str, empty))}; named col_<n>")
    if repeated:
        warnings.append(
            f"header repeats {', '.join(sorted(set(repeated)))} (or uses a lineage column's name); "
            "later ones get a _2, _3 suffix"
        )
    return names, warnings


def _build_table(
    file: DropFile, names: list[str], columns: list[pa.Array], lines: pa.Array, flags: pa.Array
) -> pa.Table:
    n = len(lines)
    arrays = [*columns, pa.array([file.name] * n, pa.string()), lines, flags]
    fields = [pa.field(c, pa.string()) for c in names] + [
        pa.field("_qst_file", pa.string(), nullable=False),
        pa.field("_qst_line", pa.int64(), nullable=False),
        pa.field("_qst_flags", pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _is_blank(cell: str | None) -> bool:
    return cell is None or not cell.strip()


# ---------------------------------------------------------------------------------------------- CSV


def _read_csv(drop: FileDropConfig, file: DropFile):
    if drop.encoding == "auto":
        try:
            return _parse_csv(drop, file, "utf-8", explicit=False)
        except _UndecodableError as exc:
            with open(file.path, "rb") as fh:
                if fh.read(len(_UTF8_BOM)) == _UTF8_BOM:
                    raise _DropError(
                        f"the file starts with a UTF-8 byte-order mark but is not UTF-8: {exc.message}",
                        exc.line,
                    ) from None
            try:
                return _parse_csv(drop, file, "gb18030", explicit=False)
            except _UndecodableError as exc:
                raise _DropError(f"neither UTF-8 nor GB18030/GBK text ({exc.message})", exc.line) from None
    return _parse_csv(drop, file, drop.encoding, explicit=True)


def _decodes(raw: bytes, codec: str) -> bool:
    try:
        raw.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _decoded_lines(file: DropFile, codec: str, explicit: bool, state: dict) -> Iterator[str]:
    """The file's physical lines decoded with ``codec`` (ends kept, as csv wants), hashing the bytes.

    Decoding line by line gives the exact line of a bad byte: b'\\n' never occurs inside a UTF-8,
    GBK or GB18030 character.
    """
    sha = state["sha"]
    maybe_utf8 = codec in ("gbk", "gb18030")  # still possible that the file is really UTF-8
    with open(file.path, "rb") as fh:
        for i, raw in enumerate(fh, 1):
            sha.update(raw)
            if i == 1:
                for magic, what in _MAGIC:
                    if raw.startswith(magic):
                        raise _DropError(f"not a text CSV: the content is {what}", 1)
                if raw.startswith(_UTF8_BOM):
                    if codec != "utf-8":
                        raise _DropError(
                            f"encoding is configured as {codec}, but the file starts with a UTF-8 "
                            "byte-order mark; set encoding: utf-8 (or auto)",
                            1,
                        )
                    raw = raw[len(_UTF8_BOM) :]
                    state["bom"] = True
            if b"\x00" in raw:
                raise _DropError("not a text CSV: NUL byte (binary content)", i)
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError as exc:
                byte = raw[exc.start : exc.start + 1].hex()
                hint = ""
                if explicit:
                    hint = "; check the configured encoding (auto detects UTF-8 / GB18030)"
                    if codec != "utf-8" and _decodes(raw, "utf-8"):
                        hint = "; the line is valid UTF-8: set encoding: utf-8 (or auto)"
                    elif codec == "gbk" and _decodes(raw, "gb18030"):
                        hint = (
                            "; characters outside GBK (e.g. 𠮷) need gb18030: set encoding: gb18030 (or auto)"
                        )
                raise _UndecodableError(
                    f"not valid {codec} (byte 0x{byte} at column {exc.start + 1}){hint}", i
                ) from None
            if maybe_utf8 and not raw.isascii():
                maybe_utf8 = _decodes(raw, "utf-8")
                state["utf8_nonascii"] = maybe_utf8
            if i == 1:
                text = text.removeprefix("\ufeff")  # a GB18030 byte-order mark
            yield text
    if maybe_utf8 and state.get("utf8_nonascii"):
        raise _DropError(
            f"encoding is configured as {codec}, but the file is UTF-8 (every line is valid UTF-8, which "
            f"{codec} text practically never is); reading it as {codec} would give mojibake -- "
            "set encoding: utf-8 (or auto)"
        )
    state["complete"] = True


def _parse_csv(drop: FileDropConfig, file: DropFile, codec: str, *, explicit: bool):
    state: dict = {"sha": hashlib.sha256(), "bom": False}
    reader = csv.reader(_decoded_lines(file, codec, explicit, state), strict=True)
    try:
        for skipped in range(drop.header_rows):
            if next(reader, None) is None:
                raise _DropError(
                    "the file is empty"
                    if skipped == 0 and reader.line_num == 0
                    else f"the file ends after {skipped} row(s), before its header row (header_rows: "
                    f"{drop.header_rows})"
                )
        header = next(reader, None)
        if header is None:
            raise _DropError(
                "the file is empty"
                if reader.line_num == 0
                else f"the file has no header row after the {drop.header_rows} skipped row(s)"
            )
        header_line = reader.line_num
        names, warnings = _column_names(header)
        width = len(names)
        cols: list[list[str | None]] = [[] for _ in range(width)]
        lines: list[int] = []
        flags: list[str | None] = []
        n = blanks = 0
        for row in reader:
            n += 1
            if all(not f or f.isspace() for f in row):
                blanks += 1
                continue
            flag = None
            cells: Sequence[str | None] = row
            if len(row) > width:
                extra = row[width:]
                if any(f.strip() for f in extra):
                    raise _DropError(
                        f"data row {n} has {len(row)} fields but the header (line {header_line}) has "
                        f"{width}; an unquoted comma in a value, or check header_rows "
                        f"({drop.header_rows})",
                        reader.line_num,
                    )
                flag = f"trailing_empty_fields:{len(extra)}"
                cells = row[:width]
            elif len(row) < width:
                flag = f"short_row:{len(row)}/{width}"
                cells = [*row, *([None] * (width - len(row)))]
            for col, value in zip(cols, cells, strict=True):
                col.append(value)
            lines.append(n)
            flags.append(flag)
    except csv.Error as exc:
        raise _DropError(f"malformed CSV: {exc}", reader.line_num) from None
    if not state.get("complete"):  # pragma: no cover - the reader always drains the generator
        raise _DropError("the file was not read to its end")
    if state["sha"].hexdigest() != file.sha256:
        raise _DropError(
            "the file changed after it was listed (its sha256 differs; still being copied?); "
            "it is read again on the next listing"
        )
    encoding = "utf-8-sig" if state["bom"] else codec
    if width and all(name.startswith("col_") for name in names):
        warnings.append(
            f"the header row (line {header_line}) is empty; check header_rows ({drop.header_rows})"
        )
    table = _build_table(
        file,
        names,
        [pa.array(c, pa.string()) for c in cols],
        pa.array(lines, pa.int64()),
        pa.array(flags, pa.string()),
    )
    return table, encoding, blanks, warnings


# -------------------------------------------------------------------------------------------- Excel


def _read_excel(drop: FileDropConfig, file: DropFile):
    import fastexcel  # imported here: a CSV-only deployment does not pay for it

    data = file.path.read_bytes()
    if hashlib.sha256(data).hexdigest() != file.sha256:
        raise _DropError(
            "the file changed after it was listed (its sha256 differs; still being copied?); "
            "it is read again on the next listing"
        )
    if not data:
        raise _DropError("the file is empty (0 bytes), not an Excel workbook")
    try:
        book = fastexcel.read_excel(data)
    except fastexcel.FastExcelError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _DropError(f"not a readable Excel workbook (truncated or not Excel?): {first}") from None
    sheets = list(book.sheet_names)
    ref = 0 if drop.sheet is None else drop.sheet
    if isinstance(ref, int) and not 0 <= ref < len(sheets):
        raise _DropError(
            f"sheet index {ref} does not exist; the workbook has {len(sheets)} sheet(s): {sheets}"
        )
    if isinstance(ref, str) and ref not in sheets:
        raise _DropError(f"sheet {ref!r} does not exist; sheets: {sheets}")
    sheet_name = sheets[ref] if isinstance(ref, int) else ref
    # header_row=None and skip_rows=0: every row from the top of the sheet, leading empty ones included,
    # so row indexes are the sheet's own; every cell as text
    sheet = book.load_sheet(ref, header_row=None, skip_rows=0, dtypes="string")
    batch, cell_errors = sheet.to_arrow_with_errors()
    header_row = drop.header_rows
    if batch.num_rows <= header_row:
        what = "the sheet is empty" if batch.num_rows == 0 else f"the sheet has only {batch.num_rows} row(s)"
        raise _DropError(f"sheet {sheet_name!r}: {what}, no header row after header_rows ({header_row})")
    columns = [batch.column(j) for j in range(batch.num_columns)]

    # error cells (#N/A...) arrive as null with a CellError: keep Excel's text and flag the row
    patches: dict[int, dict[int, str]] = {}
    for err in cell_errors.errors if cell_errors is not None else []:
        row, col = err.position
        m = _EXCEL_ERROR_RE.search(err.detail)
        patches.setdefault(col, {})[row] = _EXCEL_ERRORS.get(m.group(1), f"#{m.group(1)}") if m else "#ERROR"
    row_flags: dict[int, list[int]] = {}
    for col, rows in patches.items():
        values = columns[col].to_pylist()
        for row, text in rows.items():
            values[row] = text
            row_flags.setdefault(row, []).append(col)
        columns[col] = pa.array(values, pa.string())

    names, warnings = _column_names([c[header_row].as_py() for c in columns])
    start = header_row + 1
    body = [c.slice(start) for c in columns]
    n = batch.num_rows - start
    blank = pa.array([True] * n, pa.bool_())
    for c in body:
        cell_blank = pc.or_kleene(pc.is_null(c), pc.equal(pc.utf8_trim_whitespace(c), ""))
        blank = pc.and_(blank, pc.fill_null(cell_blank, True))
    keep = pc.invert(blank)
    blanks = n - pc.sum(keep).as_py() if n else 0
    lines = pc.filter(pa.array(range(1, n + 1), pa.int64()), keep)
    flags = [
        "; ".join(f"cell_error:{names[c]}" for c in sorted(row_flags[r])) if r in row_flags else None
        for r in range(start, batch.num_rows)
    ]
    flags_arr = pc.filter(pa.array(flags, pa.string()), keep)
    kept = [pc.filter(c, keep) for c in body]
    if names and all(name.startswith("col_") for name in names):
        warnings.append(
            f"the header row (sheet row {header_row + 1}) is empty; check header_rows ({header_row})"
        )
    table = _build_table(file, names, kept, lines, flags_arr)
    return table, blanks, warnings
