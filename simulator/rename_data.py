"""The data of a renamed estate (:mod:`simulator.rename`): SQLite tables, file drops and truth, copied under new
names with their content unchanged.

Only names change: a renamed table keeps its rows, column types, ``NOT NULL`` constraints, primary key and
indexes; a renamed drop file keeps its encoding, line endings, title rows and every cell but the header's; the
truth keeps its rows with the department, table, role and (for a file-drop row, ``FILE#N``) file renamed. So
whatever a night computes differently on the copy comes from a name, never from the data.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from connectors.config_schema import DepartmentConfig, FileDropConfig, TableConfig
from connectors.filedrops import list_drop_files

if TYPE_CHECKING:
    from simulator.rename import NameMapping, Namer

__all__ = ["EstateCopier"]

_UTF8_BOM = b"\xef\xbb\xbf"


def _q(name: str) -> str:
    """A quoted SQLite identifier."""
    return '"' + name.replace('"', '""') + '"'


def _header_name(cell: str | None) -> str:
    """A header cell as the file-drop reader names its column (whitespace runs collapsed, BOM dropped)."""
    return " ".join((cell or "").replace("\ufeff", "").split())


class EstateCopier:
    """Copies one estate's data under new names, filling the :class:`~simulator.rename.NameMapping` as it goes
    (the documents of the deployment are renamed from that mapping afterwards)."""

    def __init__(self, estate_dir: Path, out_estate: Path, namer: Namer, mapping: NameMapping) -> None:
        self.estate_dir, self.out_estate = estate_dir, out_estate
        self.namer, self.mapping = namer, mapping
        #: old department key -> its renamed SQLite file
        self.sqlite_files: dict[str, Path] = {}
        #: "dept/asset" (old) -> the renamed drop folder
        self.drop_folders: dict[str, Path] = {}
        self._folders: dict[Path, Path] = {}
        #: (old department, old file name) -> "dept/asset" (old) of the drop that reads it
        self._file_assets: dict[tuple[str, str], str] = {}

    def _inside(self, path: Path, what: str) -> Path:
        path = path.resolve()
        if not path.is_relative_to(self.estate_dir):
            raise ValueError(f"{what} {path} lies outside the estate {self.estate_dir}: it cannot be copied")
        return path

    # -------------------------------------------------------------------------------------------- tables
    def table(self, dept: DepartmentConfig, table: TableConfig) -> None:
        """One source table: new table, asset and column names; the rows copied by SQLite itself."""
        key, m = dept.key, self.mapping
        if dept.connection is None or dept.connection.sqlite is None:
            raise ValueError(f"department {key!r}: only SQLite connections can be copied (url_env cannot)")
        src = self._inside(dept.connection.sqlite, f"department {key!r}: SQLite file")
        dst = self.sqlite_files.setdefault(key, self.out_estate / f"{m.departments[key]}.sqlite")
        asset = table.asset or table.name.lower()
        new_table = m.tables[f"{key}/{table.name}"] = self.namer.table()
        m.assets[f"{key}/{asset}"] = self.namer.slug("as")

        con = sqlite3.connect(dst)
        try:
            con.execute("ATTACH DATABASE ? AS old", (str(src),))
            info = con.execute(f"PRAGMA old.table_info({_q(table.name)})").fetchall()
            if not info:
                raise ValueError(f"department {key!r}: no table {table.name!r} in {src}")
            cols = {row[1]: self.namer.column() for row in info}
            m.source_columns[f"{key}/{table.name}"] = cols
            bronze = {}
            for col, new in cols.items():
                out = table.output_name(col)
                bronze[out] = new if out == col else self.namer.column()
            m.columns[f"{key}/{asset}"] = bronze
            _copy_table(con, table.name, new_table, cols, self.namer)
            con.commit()
        finally:
            con.close()

    # -------------------------------------------------------------------------------------------- drops
    def drop(self, dept: DepartmentConfig, drop: FileDropConfig) -> None:
        """One file drop: a new folder (shared by the drops that shared one), new file names that still match
        the drop's pattern, new header names (the same for every file of the drop)."""
        key, m = dept.key, self.mapping
        akey = f"{key}/{drop.name}"
        folder = self._inside(drop.folder, f"file drop {akey!r}: folder")
        if folder not in self._folders:
            self._folders[folder] = self.out_estate / self.namer.slug("fd")
        new_folder = self.drop_folders[akey] = self._folders[folder]
        m.assets[akey] = self.namer.slug("as")
        files, columns = m.files.setdefault(akey, {}), m.columns.setdefault(akey, {})
        for file in list_drop_files(drop):
            if (key, file.name) in self._file_assets:
                raise ValueError(
                    f"{file.path}: read by both {self._file_assets[key, file.name]!r} and {akey!r}; a renamed file "
                    "must belong to one drop"
                )
            self._file_assets[key, file.name] = akey
            rel = Path(file.name)
            new_rel = (rel.parent / self.namer.file(rel.suffix)).as_posix()
            if not fnmatch.fnmatch(new_rel.lower(), drop.pattern.lower()):
                new_rel = file.name  # a pattern that fixes the name (roster_*.csv): the name must stay
            files[file.name] = new_rel
            out = new_folder / new_rel
            out.parent.mkdir(parents=True, exist_ok=True)
            if drop.format == "csv":
                _rewrite_csv(file.path, out, drop, columns, self.namer)
            else:
                _rewrite_excel(file.path, out, drop, columns, self.namer)

    # -------------------------------------------------------------------------------------------- truth
    def truth(self) -> None:
        """The truth in the new names: every parquet file with ``department`` and ``table`` columns (records,
        deleted, reassigned) rewritten, the rest (the true entities) copied as they are."""
        root = self.estate_dir / "truth"
        if not root.is_dir():
            return
        for path in sorted(root.rglob("*")):
            out = self.out_estate / "truth" / path.relative_to(root)
            if path.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix != ".parquet":
                shutil.copy2(path, out)
                continue
            df = pl.read_parquet(path)
            if {"department", "table"} <= set(df.columns):
                df = self._truth_frame(df, path)
            df.write_parquet(out)

    def _truth_frame(self, df: pl.DataFrame, path: Path) -> pl.DataFrame:
        m = self.mapping
        tables = pl.DataFrame(
            [(k.split("/", 1)[0], k.split("/", 1)[1], v) for k, v in m.tables.items()],
            schema={"department": pl.Utf8, "table": pl.Utf8, "_new_table": pl.Utf8},
            orient="row",
        )
        files = pl.DataFrame(
            [(d, f, m.files[a][f], m.assets[a]) for (d, f), a in self._file_assets.items()],
            schema={"department": pl.Utf8, "_file": pl.Utf8, "_new_file": pl.Utf8, "_new_asset": pl.Utf8},
            orient="row",
        )
        columns = df.columns
        out = (
            df.with_columns(
                _file=pl.col("pk").str.extract(r"^(.*)#\d+$", 1),
                _line=pl.col("pk").str.extract(r"#(\d+)$", 1),
            )
            .join(tables, on=["department", "table"], how="left", maintain_order="left")
            .join(files, on=["department", "_file"], how="left", maintain_order="left")
        )
        lost = out.filter(pl.col("_new_table").is_null() & pl.col("_new_asset").is_null())
        if lost.height:
            pairs = lost.select("department", "table").unique().rows()
            raise ValueError(
                f"{path}: truth records of tables sources.yaml does not name: {sorted(pairs)[:5]}"
            )
        drop_row = pl.col("_new_table").is_null()
        renamed = {
            "department": pl.col("department").replace_strict(m.departments),
            "table": pl.coalesce("_new_table", "_new_asset"),
            "pk": pl.when(drop_row).then(pl.concat_str("_new_file", pl.lit("#"), "_line")).otherwise("pk"),
        }
        if "role" in columns:  # a role no spec declares keeps its name
            renamed["role"] = pl.col("role").replace(m.roles)
        return out.with_columns(**renamed).select(columns)


def _copy_table(con: sqlite3.Connection, old: str, new: str, cols: dict[str, str], namer: Namer) -> None:
    """``old`` of the attached database ``old`` -> ``new`` of main, columns renamed: same declared types,
    ``NOT NULL``, primary key (in key order), ``WITHOUT ROWID`` and indexes; the rows inserted as they are
    (storage classes and bytes included: a GBK-in-latin1 column stays what it was)."""
    info = con.execute(f"PRAGMA old.table_info({_q(old)})").fetchall()
    defs = [
        f"{_q(cols[name])} {ctype}{' NOT NULL' if notnull else ''}" for _, name, ctype, notnull, _, _ in info
    ]
    pk = [cols[r[1]] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    if pk:
        defs.append(f"PRIMARY KEY ({', '.join(map(_q, pk))})")
    sql = con.execute(
        "SELECT sql FROM old.sqlite_master WHERE type = 'table' AND name = ?", (old,)
    ).fetchone()
    without_rowid = " WITHOUT ROWID" if sql and "WITHOUT ROWID" in (sql[0] or "").upper() else ""
    con.execute(f"CREATE TABLE main.{_q(new)} ({', '.join(defs)}){without_rowid}")
    names = [r[1] for r in info]
    con.execute(
        f"INSERT INTO main.{_q(new)} ({', '.join(_q(cols[n]) for n in names)}) "
        f"SELECT {', '.join(map(_q, names))} FROM old.{_q(old)}"
    )
    for _, index, unique, origin, *_ in con.execute(f"PRAGMA old.index_list({_q(old)})").fetchall():
        if origin != "c":  # the primary key's and UNIQUE constraints' own indexes come with the table
            continue
        on = [cols[r[2]] for r in con.execute(f"PRAGMA old.index_info({_q(index)})").fetchall()]
        con.execute(
            f"CREATE {'UNIQUE ' if unique else ''}INDEX main.{_q('ix_' + namer.slug('ix'))} "
            f"ON {_q(new)} ({', '.join(map(_q, on))})"
        )


def _renamed_header(cells: list[str | None], columns: dict[str, str], namer: Namer) -> list[str | None]:
    """The header row with every named column renamed (an empty cell stays empty: the reader names it)."""
    out: list[str | None] = []
    for cell in cells:
        name = _header_name(cell)
        if not name:
            out.append(cell)
            continue
        if name not in columns:
            columns[name] = namer.column()
        out.append(columns[name])
    return out


def _rewrite_csv(src: Path, dst: Path, drop: FileDropConfig, columns: dict[str, str], namer: Namer) -> None:
    """A CSV drop file with its header renamed, in its own encoding (BOM kept) and line endings."""
    raw = src.read_bytes()
    codec: str = drop.encoding
    if codec == "auto":
        try:
            raw.decode("utf-8")
            codec = "utf-8-sig" if raw.startswith(_UTF8_BOM) else "utf-8"
        except UnicodeDecodeError:
            codec = "gb18030"
    rows = list(csv.reader(io.StringIO(raw.decode(codec), newline="")))
    if len(rows) > drop.header_rows:
        header = _renamed_header(list(rows[drop.header_rows]), columns, namer)
        rows[drop.header_rows] = [c or "" for c in header]
    with dst.open("w", encoding=codec, newline="") as fh:
        csv.writer(fh, lineterminator="\r\n" if b"\r\n" in raw else "\n").writerows(rows)


def _rewrite_excel(src: Path, dst: Path, drop: FileDropConfig, columns: dict[str, str], namer: Namer) -> None:
    """An Excel drop file with its header renamed: every sheet, every cell at its place, as text (what the reader
    reads anyway); formatting and merged ranges are not kept (the reader skips title rows by count)."""
    import fastexcel
    import xlsxwriter

    book = fastexcel.read_excel(src.read_bytes())
    sheets = list(book.sheet_names)
    target = (
        sheets[0 if drop.sheet is None else drop.sheet] if not isinstance(drop.sheet, str) else drop.sheet
    )
    workbook = xlsxwriter.Workbook(str(dst))
    try:
        for name in sheets:
            ws = workbook.add_worksheet(name)
            batch = book.load_sheet(name, header_row=None, skip_rows=0, dtypes="string").to_arrow()
            cells = [batch.column(j).to_pylist() for j in range(batch.num_columns)]
            rows = [list(r) for r in zip(*cells, strict=True)]
            if name == target and len(rows) > drop.header_rows:
                rows[drop.header_rows] = _renamed_header(rows[drop.header_rows], columns, namer)
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    if value is not None:
                        ws.write_string(i, j, str(value))
    finally:
        workbook.close()
