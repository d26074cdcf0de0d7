"""connectors.filedrops: the street offices' CSV / Excel rosters read into Arrow, one file at a time.

The first group reads what ``qst simulate`` drops and checks it against the simulator's truth; the
second group uses small hand-made files for the edge cases (encodings, bad files, odd headers).
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import openpyxl
import polars as pl
import pyarrow as pa
import pytest
import xlsxwriter

from connectors.config import load_sources
from connectors.config_schema import FileDropConfig
from connectors.filedrops import (
    LINEAGE_COLUMNS,
    DropFile,
    ParsedDrop,
    file_fingerprint,
    list_drop_files,
    read_drop_file,
)
from simulator.estate import load_truth
from simulator.files import ROSTER_COLUMNS

RARE = "𠮷"  # outside GBK: only GB18030 and UTF-8 can hold it


# --------------------------------------------------------------------------------------------------
# the simulated estate's drops


@pytest.fixture(scope="module")
def estate(simulated_estate) -> Path:
    return simulated_estate(enterprises=800, seed=3)


@pytest.fixture(scope="module")
def street_drops(estate) -> list[FileDropConfig]:
    drops = load_sources(estate / "sources.yaml").department("streets").files
    assert {d.format for d in drops} == {"csv", "excel"}
    return drops


@pytest.fixture(scope="module")
def parsed(street_drops) -> list[ParsedDrop]:
    return [read_drop_file(d, f) for d in street_drops for f in list_drop_files(d)]


def _data_lines(path: Path) -> list[list[str | None]]:
    """The rows after the header, read independently of the module (blank rows included)."""
    if path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode("gb18030"), newline="")))
        assert rows[2] == ROSTER_COLUMNS
        return [[c if c != "" else None for c in r] for r in rows[3:]]
    ws = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert rows[2] == ROSTER_COLUMNS
    return rows[3:]


def test_every_simulated_file_parses(parsed, estate):
    files = sorted(p.name for p in (estate / "drops" / "streets").iterdir())
    assert sorted(p.file.name for p in parsed) == files
    assert any(f.endswith(".csv") for f in files) and any(f.endswith(".xlsx") for f in files)
    for p in parsed:
        assert p.error is None, p.error
        assert p.warnings == []
        assert p.table.column_names == [*ROSTER_COLUMNS, *LINEAGE_COLUMNS]
        assert all(p.table.schema.field(c).type == pa.string() for c in ROSTER_COLUMNS)
        assert p.table.schema.field("_qst_line").type == pa.int64()
        assert p.encoding == ("gb18030" if p.file.name.endswith(".csv") else None)


def test_rows_plus_blank_lines_equal_data_lines(parsed):
    assert sum(p.blank_lines for p in parsed) > 0  # the simulator leaves blank lines in
    for p in parsed:
        lines = _data_lines(p.file.path)
        blank = sum(1 for r in lines if all(c is None for c in r))
        assert p.table.num_rows + p.blank_lines == len(lines) == p.rows_in_file
        assert p.blank_lines == blank


def test_cells_equal_an_independent_read(parsed):
    """Every kept cell is exactly the text in the file (CSV empty fields stay ''; Excel empty cells null)."""
    for p in parsed:
        lines = _data_lines(p.file.path)
        got = p.table.select(ROSTER_COLUMNS).to_pylist()
        kept = [(n, r) for n, r in enumerate(lines, 1) if any(c is not None for c in r)]
        assert p.table.column("_qst_line").to_pylist() == [n for n, _ in kept]
        is_csv = p.file.name.endswith(".csv")
        for row, (_, want) in zip(got, kept, strict=True):
            values = [row[c] for c in ROSTER_COLUMNS]
            assert values == [("" if is_csv else None) if w is None else w for w in want]
        assert set(p.table.column("_qst_file").to_pylist()) == {p.file.name}
        assert p.table.column("_qst_flags").null_count == p.table.num_rows


def test_line_numbers_match_the_truth_keys(parsed, estate):
    truth = load_truth(estate).filter(pl.col("table") == "street_rosters").collect()
    want = {(pk.rsplit("#", 1)[0], int(pk.rsplit("#", 1)[1])) for pk in truth["pk"]}
    got = {
        (f, n)
        for p in parsed
        for f, n in zip(
            p.table.column("_qst_file").to_pylist(), p.table.column("_qst_line").to_pylist(), strict=True
        )
    }
    assert len(want) == truth.height > 50
    assert got == want


def test_ids_and_phones_keep_full_precision(parsed, estate):
    truth = load_truth(estate).filter(pl.col("table") == "street_rosters").collect()
    persons = pl.read_parquet(estate / "truth" / "persons" / "*.parquet").select(
        "person_id", "id_number", "phone"
    )
    rows = pl.concat([pl.from_arrow(p.table) for p in parsed])
    rows = rows.with_columns(pk=pl.concat_str("_qst_file", pl.lit("#"), pl.col("_qst_line").cast(pl.String)))
    joined = rows.join(truth.select("pk", "entity_id"), on="pk").join(
        persons, left_on="entity_id", right_on="person_id"
    )
    assert joined.height == rows.height
    for fmt in ("csv", "xlsx"):
        part = joined.filter(pl.col("_qst_file").str.ends_with(fmt))
        ids = part["身份证号"].drop_nulls().to_list()
        assert not [i for i in ids if re.search(r"[eE]\+|\.\d", i)]  # no float rendering anywhere
        exact = (part["身份证号"].str.to_uppercase() == part["id_number"]).sum()
        # the simulator corrupts a few IDs on purpose (15-digit form, typos, null markers); a reader that
        # went through floats would match none: 18 digits do not survive a double
        assert exact >= 0.8 * part.height, (fmt, exact, part.height)
        assert (part["联系电话"] == part["phone"]).sum() >= 0.8 * part.height


def test_characters_outside_gbk_in_simulated_files_survive(parsed):
    """Whatever non-GBK character the simulator wrote is in the table (rare: 0.1% of names)."""
    for p in parsed:
        text = "".join(c for r in _data_lines(p.file.path) for c in r if c)
        rare = {ch for ch in text if not ch.isascii() and not ch.encode("gbk", "ignore")}
        table_text = "".join(v for c in ROSTER_COLUMNS for v in p.table.column(c).to_pylist() if v)
        assert rare <= set(table_text)


def test_listing_fingerprints(street_drops):
    for d in street_drops:
        files = list_drop_files(d)
        assert files and [f.name for f in files] == sorted(f.name for f in files)
        for f in files:
            assert f.path.is_absolute() and f.path.parent == d.folder.resolve()
            assert f.sha256 == f.fingerprint == file_fingerprint(f.path)
            assert f.size == f.path.stat().st_size and f.mtime_ns == f.path.stat().st_mtime_ns
        suffix = ".csv" if d.format == "csv" else ".xlsx"
        assert all(f.name.endswith(suffix) for f in files)


# --------------------------------------------------------------------------------------------------
# hand-made files


def _drop(folder: Path, fmt: str = "csv", **kw) -> FileDropConfig:
    pattern = kw.pop("pattern", "*.csv" if fmt == "csv" else "*.xlsx")
    return FileDropConfig(name="t", folder=folder, pattern=pattern, format=fmt, **kw)


def _read(path: Path, fmt: str = "csv", **kw) -> ParsedDrop:
    drop = _drop(path.parent, fmt, pattern=path.name, **kw)
    (file,) = list_drop_files(drop)
    return read_drop_file(drop, file)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


ROSTER_UTF8 = "网格,姓名,身份证号,联系电话\r\n一网格,吉{r}祥,11010519491231002X,07551234567\r\n,,,\r\n二网格,王五,110105194912310021,\r\n"


def test_utf8_with_bom(tmp_path):
    p = _read(_write(tmp_path / "a.csv", b"\xef\xbb\xbf" + ROSTER_UTF8.format(r=RARE).encode()))
    assert p.error is None and p.encoding == "utf-8-sig"
    assert p.table.column_names[:4] == ["网格", "姓名", "身份证号", "联系电话"]  # no \ufeff on 网格
    assert p.table.to_pylist()[0] == {
        "网格": "一网格",
        "姓名": f"吉{RARE}祥",
        "身份证号": "11010519491231002X",
        "联系电话": "07551234567",
        "_qst_file": "a.csv",
        "_qst_line": 1,
        "_qst_flags": None,
    }
    assert p.table.column("_qst_line").to_pylist() == [1, 3] and p.blank_lines == 1


def test_utf8_without_bom_and_explicit_utf8(tmp_path):
    path = _write(tmp_path / "a.csv", ROSTER_UTF8.format(r=RARE).encode())
    for enc in ("auto", "utf-8"):
        p = _read(path, encoding=enc)
        assert p.error is None and p.encoding == "utf-8"
        assert p.table.column("姓名").to_pylist() == [f"吉{RARE}祥", "王五"]


def test_gbk_file_auto_and_explicit(tmp_path):
    path = _write(tmp_path / "g.csv", "标题\r\n\r\n".encode("gbk") + ROSTER_UTF8.format(r="").encode("gbk"))
    auto = _read(path, header_rows=2)
    gbk = _read(path, encoding="gbk", header_rows=2)
    assert auto.error is None and auto.encoding == "gb18030"
    assert gbk.error is None and gbk.encoding == "gbk"
    assert auto.table.equals(gbk.table)
    assert auto.table.column("姓名").to_pylist() == ["吉祥", "王五"]
    assert auto.table.column("联系电话").to_pylist() == ["07551234567", ""]


def test_gb18030_rare_character_survives(tmp_path):
    path = _write(tmp_path / "r.csv", ROSTER_UTF8.format(r=RARE).encode("gb18030"))
    for enc in ("auto", "gb18030"):
        p = _read(path, encoding=enc)
        assert p.error is None and p.encoding == "gb18030"
        assert p.table.column("姓名").to_pylist()[0] == f"吉{RARE}祥"


def test_rare_character_in_a_simulated_roster_survives(tmp_path, street_drops):
    """A real simulated GB18030 roster with one more line holding 𠮷."""
    drop = next(d for d in street_drops if d.format == "csv")
    src = list_drop_files(drop)[0].path
    extra = f"某网格,张{RARE},110105194912310021,13800138000,深圳市某路1号,常住,\r\n".encode("gb18030")
    path = _write(tmp_path / src.name, src.read_bytes() + extra)
    p = _read(path, header_rows=2)
    assert p.error is None and p.encoding == "gb18030"
    assert p.table.column("姓名").to_pylist()[-1] == f"张{RARE}"


def test_explicit_wrong_encoding_is_an_error(tmp_path):
    gb = ("网格,姓名\r\n" + "a,b\r\n" * 3 + f"一网格,吉{RARE}\r\n").encode("gb18030")
    p = _read(_write(tmp_path / "gb.csv", gb), encoding="utf-8")
    assert p.table is None and p.error.startswith("gb.csv: line 1: not valid utf-8")
    # the first non-ASCII byte is on the header line; with an ASCII header the error names line 5
    gb2 = ("grid,name\r\n" + "a,b\r\n" * 3 + f"一网格,吉{RARE}\r\n").encode("gb18030")
    p = _read(_write(tmp_path / "gb2.csv", gb2), encoding="utf-8")
    assert p.error.startswith("gb2.csv: line 5: not valid utf-8")
    # 𠮷 is a four-byte GB18030 sequence that GBK does not have
    p = _read(_write(tmp_path / "gb3.csv", gb2), encoding="gbk")
    assert p.error.startswith("gb3.csv: line 5: not valid gbk") and "gb18030" in p.error
    # GBK configured for a UTF-8 file: bytes GBK cannot decode are an error that says why ...
    p = _read(_write(tmp_path / "u.csv", ROSTER_UTF8.format(r="").encode()), encoding="gbk")
    assert (
        p.error.startswith("u.csv: line 1: not valid gbk") and "valid UTF-8: set encoding: utf-8" in p.error
    )
    # ... and UTF-8 text that GBK happens to decode (网格 -> 缃戞牸) is refused rather than loaded as mojibake
    utf8 = "网格,姓名\r\n张三,联系电话\r\n".encode()
    assert utf8.decode("gbk") and utf8.decode("gb18030")
    for enc in ("gbk", "gb18030"):
        p = _read(_write(tmp_path / "u2.csv", utf8), encoding=enc)
        assert p.table is None and p.error.startswith(
            f"u2.csv: encoding is configured as {enc}, but the file is UTF-8"
        )
    p = _read(_write(tmp_path / "ubom.csv", b"\xef\xbb\xbf" + b"a,b\r\n1,2\r\n"), encoding="gb18030")
    assert "byte-order mark" in p.error


def test_auto_gives_up_on_neither_utf8_nor_gb18030(tmp_path):
    p = _read(_write(tmp_path / "x.csv", b"a,b\r\n1,\x80\xff\r\n"))
    assert p.table is None and p.error.startswith("x.csv: line 2: neither UTF-8 nor GB18030")


def test_bom_but_not_utf8_is_an_error(tmp_path):
    p = _read(_write(tmp_path / "b.csv", b"\xef\xbb\xbfa,b\r\n" + "张,三\r\n".encode("gbk")))
    assert p.error.startswith("b.csv: line 2: the file starts with a UTF-8 byte-order mark but is not UTF-8")


def test_binary_garbage_csv_is_an_error(tmp_path):
    garbage = bytes(range(256)) * 40
    p = _read(_write(tmp_path / "bin.csv", garbage))
    assert p.table is None and p.error.startswith("bin.csv: line 1: not a text CSV")
    # an Excel workbook dropped where CSV is expected
    wb = tmp_path / "wb.xlsx"
    xlsxwriter.Workbook(str(wb)).close()
    p = _read(_write(tmp_path / "wb.csv", wb.read_bytes()))
    assert "ZIP" in p.error and p.error.startswith("wb.csv:")


def test_ragged_csv_is_an_error_naming_the_line(tmp_path):
    text = "标题\r\n\r\n网格,姓名,住址\r\n一,张三,深圳\r\n,,\r\n二,李四,深圳市,福田区\r\n三,王五,x\r\n"
    p = _read(_write(tmp_path / "rag.csv", text.encode("gb18030")), header_rows=2)
    assert p.table is None and p.error.startswith("rag.csv: line 6: data row 3 has 4 fields but the header")


def test_short_rows_and_trailing_empty_fields_are_kept_with_flags(tmp_path):
    text = "a,b,c\r\n1,2\r\n4,5,6,,\r\n7,8,9\r\n"
    p = _read(_write(tmp_path / "s.csv", text.encode()))
    assert p.error is None
    assert p.table.select(["a", "b", "c", "_qst_flags"]).to_pylist() == [
        {"a": "1", "b": "2", "c": None, "_qst_flags": "short_row:2/3"},
        {"a": "4", "b": "5", "c": "6", "_qst_flags": "trailing_empty_fields:2"},
        {"a": "7", "b": "8", "c": "9", "_qst_flags": None},
    ]


def test_quoted_newline_counts_one_row_and_errors_name_the_physical_line(tmp_path):
    text = 'a,b\r\n1,"two\r\nlines"\r\n3,4\r\n5,"bad"x\r\n'
    p = _read(_write(tmp_path / "q.csv", text.encode()))
    assert p.table is None and p.error.startswith("q.csv: line 5: malformed CSV")
    p = _read(_write(tmp_path / "q2.csv", text.encode()[: text.index("5,")]))
    assert p.error is None
    assert p.table.to_pylist()[0]["b"] == "two\r\nlines"
    assert p.table.column("_qst_line").to_pylist() == [1, 2]


def test_empty_file_and_missing_header_are_errors(tmp_path):
    p = _read(_write(tmp_path / "e.csv", b""))
    assert p.table is None and p.error == "e.csv: the file is empty"
    p = _read(_write(tmp_path / "t.csv", "标题\r\n".encode("gb18030")), header_rows=2)
    assert p.table is None and "before its header row" in p.error
    p = _read(_write(tmp_path / "e.xlsx", b""), "excel")
    assert p.table is None and p.error.startswith("e.xlsx: the file is empty")


def test_header_only(tmp_path):
    p = _read(_write(tmp_path / "h.csv", "标题\r\n\r\n网格,姓名\r\n".encode("gb18030")), header_rows=2)
    assert p.error is None and p.table.num_rows == 0 and p.blank_lines == 0 and p.rows_in_file == 0
    assert p.table.column_names == ["网格", "姓名", *LINEAGE_COLUMNS]
    path = tmp_path / "h.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.merge_range(0, 0, 0, 1, "标题")
    ws.write_row(2, 0, ["网格", "姓名"])
    wb.close()
    p = _read(path, "excel", header_rows=2)
    assert (
        p.error is None
        and p.table.num_rows == 0
        and p.table.column_names == ["网格", "姓名", *LINEAGE_COLUMNS]
    )


def test_header_names_are_cleaned_and_made_unique(tmp_path):
    text = '" 网格 ",姓名,,"\u3000联系\n电话\u3000",ID,id,_qst_line,网格\r\n1,2,3,4,5,6,7,8\r\n'
    p = _read(_write(tmp_path / "n.csv", text.encode()))
    assert p.error is None
    assert p.table.column_names == [
        "网格",
        "姓名",
        "col_3",
        "联系 电话",
        "ID",
        "id_2",
        "_qst_line_2",
        "网格_2",
        *LINEAGE_COLUMNS,
    ]
    assert p.table.column("_qst_line").to_pylist() == [1]
    assert any("col_<n>" in w for w in p.warnings) and any("repeats" in w for w in p.warnings)


def test_wrong_header_rows_is_caught(tmp_path):
    """header_rows: 0 on a titled roster: the title is one field, the data rows seven."""
    text = "标题\r\n\r\n网格,姓名\r\n一,张三\r\n"
    p = _read(_write(tmp_path / "w.csv", text.encode("gb18030")))
    assert p.table is None and "line 3: data row 2 has 2 fields" in p.error and "header_rows" in p.error


def _xlsx(path: Path, rows: dict[int, list[str]]) -> Path:
    """A roster workbook like the simulator's: merged title and group rows, then ``rows`` (by sheet row)."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("人员名单")
    ws.merge_range(0, 0, 0, 3, "某街道人员登记表")
    ws.merge_range(1, 0, 1, 1, "基本信息")
    ws.merge_range(1, 2, 1, 3, "联系")
    for r, values in rows.items():
        ws.write_row(r, 0, values)
    wb.close()
    return path


def test_excel_cells_are_text(tmp_path):
    import datetime as dt

    path = tmp_path / "x.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["身份证号", "联系电话", "数字", "日期", "布尔", "姓名"])
    ws.write_string(1, 0, "110105194912310021")
    ws.write_string(1, 1, "07551234567")
    ws.write_number(1, 2, 13800138000)
    ws.write_datetime(1, 3, dt.datetime(2019, 3, 1), wb.add_format({"num_format": "yyyy-mm-dd"}))
    ws.write_boolean(1, 4, True)
    ws.write_string(1, 5, f"吉{RARE} ")
    ws.write_number(
        2, 0, 110105194912310021
    )  # an ID the clerk stored as a number: cut to 15 digits in the file
    ws.write_number(2, 2, 1.5)
    wb.close()
    p = _read(path, "excel")
    assert p.error is None and p.encoding is None
    rows = p.table.to_pylist()
    assert rows[0] == {
        "身份证号": "110105194912310021",
        "联系电话": "07551234567",
        "数字": "13800138000",
        "日期": "2019-03-01 00:00:00",
        "布尔": "true",
        "姓名": f"吉{RARE} ",
        "_qst_file": "x.xlsx",
        "_qst_line": 1,
        "_qst_flags": None,
    }
    assert rows[1]["身份证号"] == "110105194912310000" and rows[1]["数字"] == "1.5"


def test_excel_merged_header_blank_rows_and_error_cells(tmp_path):
    path = tmp_path / "m.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.merge_range(0, 0, 0, 3, "某街道人员登记表")
    ws.merge_range(1, 0, 1, 1, "基本信息")
    ws.merge_range(1, 2, 1, 3, "联系")
    ws.write_row(2, 0, ["网格", "姓名", "身份证号", "联系电话"])
    ws.write_row(3, 0, ["一", "张三", "1", "2"])
    ws.write_string(5, 0, "二")
    ws.write_string(5, 2, "  ")  # kept as written: only a row of nothing but blanks is blank
    ws.write_string(6, 0, "三")
    ws.write_formula(6, 1, "=NA()", None, "#N/A")
    ws.write_formula(6, 3, "=1/0", None, "#DIV/0!")
    ws.write_string(8, 2, "   ")  # whitespace only: a blank row
    wb.close()
    p = _read(path, "excel", header_rows=2)
    assert p.error is None
    assert p.table.select(
        ["网格", "姓名", "身份证号", "联系电话", "_qst_line", "_qst_flags"]
    ).to_pylist() == [
        {"网格": "一", "姓名": "张三", "身份证号": "1", "联系电话": "2", "_qst_line": 1, "_qst_flags": None},
        {"网格": "二", "姓名": None, "身份证号": "  ", "联系电话": None, "_qst_line": 3, "_qst_flags": None},
        {
            "网格": "三",
            "姓名": "#N/A",
            "身份证号": None,
            "联系电话": "#DIV/0!",
            "_qst_line": 4,
            "_qst_flags": "cell_error:姓名; cell_error:联系电话",
        },
    ]
    assert p.blank_lines == 3 and p.rows_in_file == 6


def test_excel_rows_counted_from_the_top_of_the_sheet(tmp_path):
    """A sheet whose first rows and first column are empty: header_rows still counts sheet rows."""
    path = tmp_path / "o.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.write_row(3, 1, ["网格", "姓名"])
    ws.write_row(5, 1, ["一", "张三"])
    wb.close()
    p = _read(path, "excel", header_rows=3)
    assert p.error is None and p.table.column_names[:2] == ["网格", "姓名"]
    assert p.table.column("_qst_line").to_pylist() == [2] and p.blank_lines == 1


def test_excel_sheet_selection(tmp_path):
    path = tmp_path / "s.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("说明").write(0, 0, "readme")
    ws = wb.add_worksheet("名单")
    ws.write_row(0, 0, ["姓名"])
    ws.write_row(1, 0, ["张三"])
    wb.close()
    by_name = _read(path, "excel", sheet="名单")
    by_index = _read(path, "excel", sheet=1)
    assert by_name.table.equals(by_index.table) and by_name.table.column("姓名").to_pylist() == ["张三"]
    assert _read(path, "excel").table.column_names[0] == "readme"
    missing = _read(path, "excel", sheet="花名册")
    assert missing.table is None and "花名册" in missing.error and "名单" in missing.error
    assert "index 5" in _read(path, "excel", sheet=5).error


def test_garbage_and_truncated_xlsx_are_errors(tmp_path):
    good = _xlsx(tmp_path / "good.xlsx", {2: ["网格", "姓名"], 3: ["一", "张三"]})
    _write(tmp_path / "garbage.xlsx", os.urandom(4096))
    _write(tmp_path / "truncated.xlsx", good.read_bytes()[: good.stat().st_size // 2])
    _write(tmp_path / "text.xlsx", "网格,姓名\r\n".encode("gb18030"))
    drop = _drop(tmp_path, "excel", header_rows=2)
    results = {f.name: read_drop_file(drop, f) for f in list_drop_files(drop)}
    assert sorted(results) == ["garbage.xlsx", "good.xlsx", "text.xlsx", "truncated.xlsx"]
    assert results["good.xlsx"].error is None and results["good.xlsx"].table.num_rows == 1
    for name in ("garbage.xlsx", "truncated.xlsx", "text.xlsx"):
        r = results[name]
        assert r.table is None and r.error.startswith(f"{name}: not a readable Excel workbook"), r.error


def test_one_bad_file_does_not_stop_the_others(tmp_path):
    _write(tmp_path / "1.csv", b"a,b\r\n1,2\r\n")
    _write(tmp_path / "2.csv", b"a,b\r\n1,2,3\r\n")
    _write(tmp_path / "3.csv", b"\x00\x01\x02")
    _write(tmp_path / "4.csv", b"a,b\r\n3,4\r\n")
    drop = _drop(tmp_path)
    results = [read_drop_file(drop, f) for f in list_drop_files(drop)]
    assert [r.ok for r in results] == [True, False, False, True]
    assert [r.file.name for r in results] == ["1.csv", "2.csv", "3.csv", "4.csv"]


def test_a_file_changed_after_listing_is_not_read(tmp_path):
    path = _write(tmp_path / "c.csv", b"a\r\n1\r\n")
    drop = _drop(tmp_path)
    (file,) = list_drop_files(drop)
    path.write_bytes(b"a\r\n1\r\n2\r\n")
    p = read_drop_file(drop, file)
    assert p.table is None and "changed after it was listed" in p.error
    (file,) = list_drop_files(drop)
    assert read_drop_file(drop, file).table.num_rows == 2
    path.unlink()
    gone = read_drop_file(drop, file)
    assert gone.table is None and gone.error.startswith("c.csv: cannot read the file")


def test_listing(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    _write(outside / "secret.csv", b"a\r\n1\r\n")
    folder = tmp_path / "drops"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.csv", "A.CSV", "~$lock.csv", ".partial.csv", "notes.txt", "sub/c.csv"):
        _write(folder / name, b"a\r\n1\r\n")
    (folder / "dir.csv").mkdir()
    (folder / "link.csv").symlink_to(outside / "secret.csv")
    assert [f.name for f in list_drop_files(_drop(folder))] == ["A.CSV", "b.csv"]
    assert [f.name for f in list_drop_files(_drop(folder, pattern="**/*.csv"))] == [
        "A.CSV",
        "b.csv",
        "sub/c.csv",
    ]
    nested = _drop(folder, pattern="**/*.csv")
    p = read_drop_file(nested, list_drop_files(nested)[-1])
    assert p.table.column("_qst_file").to_pylist() == ["sub/c.csv"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_drop_files(_drop(tmp_path / "missing"))


def test_read_never_raises_on_an_odd_dropfile(tmp_path):
    bogus = DropFile(tmp_path / "nope.csv", "nope.csv", 0, 0, "")
    p = read_drop_file(_drop(tmp_path), bogus)
    assert p.table is None and p.error.startswith("nope.csv: cannot read the file")


def test_connectors_do_not_import_dagster():
    import subprocess
    import sys

    code = "import sys, connectors.filedrops; sys.exit('dagster' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=Path(__file__).parents[1])
    assert done.returncode == 0
