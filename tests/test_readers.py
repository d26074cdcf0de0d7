"""connectors.readers: legacy tables as Arrow batches, on real SQLite, PostgreSQL and MariaDB databases.

Every value inserted below is compared with what comes out, for the fast (Arrow-native) reader and the
SQLAlchemy fallback alike.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
import sqlalchemy as sa

from connectors import readers, reflection, transports
from connectors.config import load_sources, sources_from_dict
from connectors.config_schema import TableConfig
from connectors.conversion import coerce
from connectors.readers import FLAGS_COLUMN, SourceReadError, open_table, source_columns
from connectors.types import TypeChoice
from simulator import estate as est
from simulator.writers import LEGACY_TEXT_ENCODING

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
ENV_VAR = "QST_LEGACY_URL"
DIALECTS = ["sqlite", "postgresql", "mariadb"]
ENGINES = ["fast", "sqlalchemy"]

GXSJ_1 = dt.datetime(2024, 1, 2, 3, 4, 5)  # local Shanghai wall-clock times as the legacy app wrote them
GXSJ_2 = dt.datetime(2024, 6, 30, 23, 59, 59)
MC_1 = "𠮷 䶮 深圳市南山区科技有限公司"
MC_2 = "普通中文"
DWMC_1 = "深圳市𠮷䶮贸易有限公司"
DWMC_2 = "人社局"


def utc(local: dt.datetime) -> dt.datetime:
    return local.replace(tzinfo=SHANGHAI).astimezone(UTC)


def moji(text: str) -> str:
    return text.encode(LEGACY_TEXT_ENCODING).decode("latin1")


class Source:
    """A hand-made legacy table T_LEGACY in one dialect, and the values it holds."""

    def __init__(self, dialect: str, conn: dict, environ: dict, url: str | None, rows: list[dict]):
        self.dialect = dialect
        self.conn = conn
        self.environ = environ
        self.url = url
        self.rows = rows

    def config(self, tables: list[dict], tmp_path: Path, **dept):
        return sources_from_dict(
            {
                "version": 1,
                "departments": {
                    "legacy": {"title": "人社局 legacy", "connection": self.conn, "tables": tables, **dept}
                },
            },
            base_dir=tmp_path,
        )

    def execute(self, sql: str) -> None:
        if self.dialect == "sqlite":
            con = sqlite3.connect(self.conn["sqlite"])
            con.execute(sql)
            con.commit()
            con.close()
            return
        engine = sa.create_engine(self.url)
        with engine.begin() as c:
            c.exec_driver_sql(sql)
        engine.dispose()


def _rows(dialect: str) -> list[dict]:
    big = 18446744073709551615 if dialect != "sqlite" else 9223372036854775807  # > 2^63 where it can exist
    amt4 = Decimal("12345678901234.5678") if dialect != "sqlite" else Decimal("1234567890.1234")
    return [
        {
            "ID": 1,
            "AMT": Decimal("12.30"),
            "AMT4": amt4,
            "CNT": 4294967295,
            "BIG": big,
            "GXSJ": GXSJ_1,
            "CLRQ": dt.date(2024, 2, 29),
            "MC": MC_1,
            "DWMC": DWMC_1,
        },
        {
            "ID": 2,
            "AMT": Decimal("-0.01"),
            "AMT4": Decimal("0.0001"),
            "CNT": 0,
            "BIG": 0,
            "GXSJ": GXSJ_2,
            "CLRQ": "0000-00-00" if dialect == "mariadb" else dt.date(1900, 1, 1),
            "MC": MC_2,
            "DWMC": DWMC_2,
        },
        {
            "ID": 3,
            "AMT": None,
            "AMT4": None,
            "CNT": None,
            "BIG": None,
            "GXSJ": None,
            "CLRQ": None,
            "MC": None,
            "DWMC": None,
        },
    ]


def _make_sqlite(path: Path, rows: list[dict]) -> None:
    con = sqlite3.connect(path)
    con.execute(
        'CREATE TABLE "T_LEGACY" ("ID" INTEGER NOT NULL PRIMARY KEY, "AMT" DECIMAL(14,2), "AMT4" DECIMAL(18,4), '
        '"CNT" INTEGER, "BIG" BIGINT, "GXSJ" DATETIME, "CLRQ" DATE, "MC" VARCHAR(200), "DWMC" VARCHAR(200))'
    )
    for r in rows:  # as the legacy application wrote them: decimals and dates as text, GBK as mojibake
        con.execute(
            'INSERT INTO "T_LEGACY" VALUES (?,?,?,?,?,?,?,?,?)',
            (
                r["ID"],
                None if r["AMT"] is None else str(r["AMT"]),
                None if r["AMT4"] is None else str(r["AMT4"]),
                r["CNT"],
                r["BIG"],
                None if r["GXSJ"] is None else r["GXSJ"].isoformat(sep=" "),
                None if r["CLRQ"] is None else str(r["CLRQ"]),
                r["MC"],
                None if r["DWMC"] is None else moji(r["DWMC"]),
            ),
        )
    con.commit()
    con.close()


def _make_postgres(url: str, rows: list[dict]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql(
            'CREATE TABLE "T_LEGACY" ("ID" integer PRIMARY KEY, "AMT" numeric(14,2), '
            '"AMT4" numeric(18,4), "CNT" bigint, "BIG" numeric(20,0), "GXSJ" timestamp, "CLRQ" date, '
            '"MC" varchar(200), "DWMC" varchar(200))'
        )
        for r in rows:
            c.execute(
                sa.text(
                    'INSERT INTO "T_LEGACY" VALUES (:ID, :AMT, :AMT4, :CNT, :BIG, :GXSJ, :CLRQ, :MC, :DWMC)'
                ),
                {**r, "DWMC": None if r["DWMC"] is None else moji(r["DWMC"])},
            )
    engine.dispose()


def _make_mariadb(url: str, rows: list[dict]) -> None:
    engine = sa.create_engine(url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SET SESSION sql_mode = ''")  # the legacy server accepted zero dates
        cur.execute(
            "CREATE TABLE T_LEGACY (ID INT NOT NULL PRIMARY KEY, AMT DECIMAL(14,2), AMT4 DECIMAL(18,4), "
            "CNT INT UNSIGNED, BIG BIGINT UNSIGNED, GXSJ DATETIME, CLRQ DATE, MC VARCHAR(200), "
            "DWMC VARCHAR(200) CHARACTER SET latin1) CHARACTER SET utf8mb4"
        )
        for r in rows:  # DWMC: the raw GB18030 bytes, as the legacy application stored them
            cur.execute(
                "INSERT INTO T_LEGACY VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    r["ID"],
                    r["AMT"],
                    r["AMT4"],
                    r["CNT"],
                    r["BIG"],
                    r["GXSJ"],
                    r["CLRQ"] if isinstance(r["CLRQ"], str) or r["CLRQ"] is None else r["CLRQ"].isoformat(),
                    r["MC"],
                    None if r["DWMC"] is None else r["DWMC"].encode(LEGACY_TEXT_ENCODING),
                ),
            )
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


@pytest.fixture(params=DIALECTS)
def source(request, tmp_path) -> Source:
    dialect = request.param
    rows = _rows(dialect)
    if dialect == "sqlite":
        path = tmp_path / "legacy.sqlite"
        _make_sqlite(path, rows)
        return Source(dialect, {"sqlite": str(path)}, {}, None, rows)
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "mariadb_url")
    (_make_postgres if dialect == "postgresql" else _make_mariadb)(url, rows)
    return Source(dialect, {"url_env": ENV_VAR}, {ENV_VAR: url}, url, rows)


TABLE = {
    "name": "T_LEGACY",
    "primary_key": ["ID"],
    "mode": "incremental",
    "cursor": "GXSJ",
    "columns": {"DWMC": {"repair": "gbk_in_latin1"}},
}


def read_all(stream) -> pa.Table:
    batches = list(stream.batches)
    for b in batches:
        assert b.schema == stream.schema
    return pa.Table.from_batches(batches, schema=stream.schema)


def _open(source: Source, tmp_path: Path, engine: str, table: dict | None = None, **kwargs):
    cfg = source.config([table or TABLE], tmp_path)
    dept = cfg.department("legacy")
    return open_table(dept, dept.tables[0], cfg.defaults, engine=engine, environ=source.environ, **kwargs)


# --------------------------------------------------------------------------------------------------
# every value round-trips


@pytest.mark.parametrize("engine", ENGINES)
def test_hand_made_table_round_trips_exactly(source, tmp_path, engine):
    stream = _open(source, tmp_path, engine)
    expected_reader = {"sqlite": "adbc", "postgresql": "connectorx", "mariadb": "connectorx"}[source.dialect]
    assert stream.reader == (expected_reader if engine == "fast" else "sqlalchemy")
    big_type = pa.int64() if source.dialect == "sqlite" else pa.decimal128(20, 0)
    assert stream.schema == pa.schema(
        [
            ("ID", pa.int64()),
            ("AMT", pa.decimal128(14, 2)),
            ("AMT4", pa.decimal128(18, 4)),
            ("CNT", pa.int64()),
            ("BIG", big_type),
            ("GXSJ", pa.timestamp("us", tz="UTC")),
            ("CLRQ", pa.date32()),
            ("MC", pa.large_string()),
            ("DWMC", pa.large_string()),
            (FLAGS_COLUMN, pa.large_string()),
        ]
    )
    table = read_all(stream).sort_by("ID")
    got = table.to_pylist()
    assert len(got) == 3
    for row, src in zip(got, source.rows, strict=True):
        for col in ("ID", "AMT", "AMT4", "CNT", "MC", "DWMC"):
            assert row[col] == src[col], (col, row[col], src[col])
        assert row["BIG"] == (
            None
            if src["BIG"] is None
            else (src["BIG"] if source.dialect == "sqlite" else Decimal(src["BIG"]))
        )
        assert row["GXSJ"] == (None if src["GXSJ"] is None else utc(src["GXSJ"]))
    # decimals keep their declared scale (12.3 is 12.30), the Chinese is byte-exact
    assert str(got[0]["AMT"]) == "12.30" and got[0]["MC"].encode("utf-8") == MC_1.encode("utf-8")
    assert got[0]["GXSJ"] == dt.datetime(2024, 1, 1, 19, 4, 5, tzinfo=UTC)
    assert got[0]["CLRQ"] == dt.date(2024, 2, 29)
    if source.dialect == "mariadb":
        assert got[1]["CLRQ"] is None and got[1][FLAGS_COLUMN] == "zero_date:CLRQ"
    else:
        assert got[1]["CLRQ"] == dt.date(1900, 1, 1) and got[1][FLAGS_COLUMN] is None
    assert got[0][FLAGS_COLUMN] is None and got[2][FLAGS_COLUMN] is None
    assert all(v is None for k, v in got[2].items() if k != "ID")
    assert '"' in stream.query or "`" in stream.query  # identifiers quoted
    if source.dialect == "mariadb":
        assert "CAST(`DWMC` AS BINARY)" in stream.query  # the raw bytes, not the connection charset


ALTERNATIVES = {
    "sqlite": ["adbc", "connectorx"],
    "postgresql": ["connectorx", "adbc"],
    "mariadb": ["connectorx"],
}


def test_every_reader_agrees_with_the_fallback(source, tmp_path, monkeypatch):
    slow = read_all(_open(source, tmp_path, "sqlalchemy")).sort_by("ID")
    since = dt.datetime(2024, 1, 1, 19, 4, 6, tzinfo=UTC)
    slow_since = read_all(_open(source, tmp_path, "sqlalchemy", since=since))
    for reader in ALTERNATIVES[source.dialect]:
        monkeypatch.setitem(
            readers.FAST_READERS, "mysql" if source.dialect == "mariadb" else source.dialect, reader
        )
        monkeypatch.setitem(readers.FAST_READERS, "mariadb", "connectorx")
        stream = _open(source, tmp_path, "fast")
        assert stream.reader == reader
        assert read_all(stream).sort_by("ID").equals(slow), reader
        assert read_all(_open(source, tmp_path, "fast", since=since)).equals(slow_since), reader


@pytest.mark.parametrize("engine", ENGINES)
def test_a_failure_while_streaming_names_the_table(source, tmp_path, engine):
    stream = _open(source, tmp_path, engine)  # reflected now, read later
    source.execute('DROP TABLE "T_LEGACY"' if source.dialect != "mariadb" else "DROP TABLE T_LEGACY")
    with pytest.raises(SourceReadError) as err:
        list(stream.batches)
    assert "'legacy'" in str(err.value) and "'T_LEGACY'" in str(err.value)
    assert err.value.__context__ is None  # the driver's exception is not chained
    if source.url:
        assert source.url not in str(err.value)


def test_cursor_must_have_a_fitting_type(source, tmp_path):
    for cursor, kind, since in (
        ("CLRQ", "id", 1),
        ("MC", "id", 1),
        ("ID", "timestamp", dt.datetime(2024, 1, 1, tzinfo=UTC)),
    ):
        with pytest.raises(SourceReadError, match=f"{kind} cursor") as err:
            _open(source, tmp_path, "fast", {**TABLE, "cursor": cursor, "cursor_kind": kind}, since=since)
        assert err.value.column == cursor and "'legacy'" in str(err.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_batches_never_exceed_batch_rows(source, tmp_path, engine):
    stream = _open(source, tmp_path, engine, {**TABLE, "batch_rows": 2})
    sizes = [b.num_rows for b in stream.batches]
    assert sum(sizes) == 3 and max(sizes) <= 2 and len(sizes) >= 2


# --------------------------------------------------------------------------------------------------
# incremental reads and key snapshots


@pytest.mark.parametrize("engine", ENGINES)
def test_since_on_a_timestamp_cursor(source, tmp_path, engine):
    # GXSJ_1 is 2024-01-02 03:04:05 in Shanghai = 2024-01-01 19:04:05 UTC: the bound is inclusive
    at = dt.datetime(2024, 1, 1, 19, 4, 5, tzinfo=UTC)
    ids = read_all(_open(source, tmp_path, engine, since=at)).column("ID").to_pylist()
    assert sorted(ids) == [1, 2]
    ids = (
        read_all(_open(source, tmp_path, engine, since=at + dt.timedelta(seconds=1))).column("ID").to_pylist()
    )
    assert ids == [2]
    # the same instant expressed in another zone gives the same answer
    other = (at + dt.timedelta(seconds=1)).astimezone(ZoneInfo("America/New_York"))
    assert read_all(_open(source, tmp_path, engine, since=other)).column("ID").to_pylist() == [2]
    stream = _open(source, tmp_path, engine, since=dt.datetime(2030, 1, 1, tzinfo=UTC))
    assert list(stream.batches) == []
    # a calendar date is a local day: from its midnight in Shanghai
    assert sorted(
        read_all(_open(source, tmp_path, engine, since=dt.date(2024, 1, 2))).column("ID").to_pylist()
    ) == [1, 2]
    assert read_all(_open(source, tmp_path, engine, since=dt.date(2024, 1, 3))).column("ID").to_pylist() == [
        2
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_since_on_an_id_cursor(source, tmp_path, engine):
    table = {**TABLE, "cursor": "ID", "cursor_kind": "id"}
    assert sorted(read_all(_open(source, tmp_path, engine, table, since=2)).column("ID").to_pylist()) == [
        2,
        3,
    ]
    # a BIGINT UNSIGNED watermark comes back from bronze as an integral Decimal
    assert sorted(
        read_all(_open(source, tmp_path, engine, table, since=Decimal(2))).column("ID").to_pylist()
    ) == [2, 3]
    stream = _open(source, tmp_path, engine, table, since=3)
    if engine == "fast":
        assert ">= 3" in stream.query
    else:
        assert ":qst_since" in stream.query and ">= 3" not in stream.query  # a bound parameter
    assert read_all(stream).column("ID").to_pylist() == [3]


def test_since_must_have_the_cursor_type(source, tmp_path):
    with pytest.raises(ValueError, match="timezone-aware"):
        _open(source, tmp_path, "fast", since=dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        _open(source, tmp_path, "fast", since="2024-01-01' OR 1=1 --")
    with pytest.raises(ValueError, match="int"):
        _open(source, tmp_path, "fast", {**TABLE, "cursor": "ID", "cursor_kind": "id"}, since="2")
    with pytest.raises(ValueError, match="int"):
        _open(source, tmp_path, "fast", {**TABLE, "cursor": "ID", "cursor_kind": "id"}, since=Decimal("2.5"))
    with pytest.raises(ValueError, match="no cursor"):
        _open(
            source, tmp_path, "fast", {"name": "T_LEGACY", "primary_key": ["ID"], "mode": "snapshot"}, since=1
        )


@pytest.mark.parametrize("engine", ENGINES)
def test_key_only_read(source, tmp_path, engine):
    stream = _open(source, tmp_path, engine, columns=["ID"])
    assert stream.schema.names == ["ID", FLAGS_COLUMN]
    assert sorted(read_all(stream).column("ID").to_pylist()) == [1, 2, 3]
    assert "MC" not in stream.query


# --------------------------------------------------------------------------------------------------
# configuration: renames, type overrides


@pytest.mark.parametrize("engine", ENGINES)
def test_renames_and_type_overrides(source, tmp_path, engine):
    table = {
        **TABLE,
        "columns": {
            "DWMC": {"repair": "gbk_in_latin1", "rename": "employer_name"},
            "AMT": {"rename": "amount", "type": "decimal(18,4)"},
            "CNT": {"type": "string"},
            "MC": {"type": "int64"},
            "GXSJ": {"type": "date"},
            "BIG": {"type": "int64"},
        },
    }
    got = read_all(_open(source, tmp_path, engine, table)).sort_by("ID")
    assert got.schema.field("amount").type == pa.decimal128(18, 4)
    assert got.schema.field("employer_name").type == pa.large_string()
    assert got.schema.field("CNT").type == pa.large_string()
    assert got.schema.field("GXSJ").type == pa.date32()
    assert "AMT" not in got.schema.names and "DWMC" not in got.schema.names
    rows = got.to_pylist()
    assert rows[0]["amount"] == Decimal("12.3000") and rows[0]["employer_name"] == DWMC_1
    assert rows[0]["CNT"] == "4294967295" and rows[1]["CNT"] == "0"
    assert rows[0]["GXSJ"] == dt.date(2024, 1, 2)  # the local calendar day
    assert rows[0]["MC"] is None  # Chinese text is no int64: null, and the row says why
    flags0 = rows[0][FLAGS_COLUMN].split(";")
    assert "bad_value:MC" in flags0
    if source.dialect == "sqlite":
        assert rows[0]["BIG"] == 9223372036854775807
    else:  # 2^64-1 does not fit int64
        assert rows[0]["BIG"] is None and "bad_value:BIG" in flags0
    assert rows[1]["BIG"] == 0


def test_source_columns(source, tmp_path):
    cfg = source.config([TABLE], tmp_path)
    dept = cfg.department("legacy")
    cols = {c.name: c for c in source_columns(dept, dept.tables[0], environ=source.environ)}
    assert list(cols) == ["ID", "AMT", "AMT4", "CNT", "BIG", "GXSJ", "CLRQ", "MC", "DWMC"]
    assert cols["AMT"].arrow_type == pa.decimal128(14, 2) and "14" in cols["AMT"].sql_type
    assert cols["GXSJ"].arrow_type == pa.timestamp("us", tz="UTC")
    assert cols["DWMC"].repair == "gbk_in_latin1"
    assert cols["ID"].nullable is False and cols["MC"].nullable is True
    if source.dialect == "mariadb":
        assert "UNSIGNED" in cols["CNT"].sql_type and cols["CNT"].arrow_type == pa.int64()
        assert "UNSIGNED" in cols["BIG"].sql_type and cols["BIG"].arrow_type == pa.decimal128(20, 0)
        assert "latin1" in cols["DWMC"].sql_type


# --------------------------------------------------------------------------------------------------
# errors: hostile names, missing tables and columns, secrets


def test_hostile_identifiers_are_rejected_before_any_sql(source, tmp_path, monkeypatch):
    def no_sql(*_a, **_k):
        raise AssertionError("a connection was made")

    monkeypatch.setattr(reflection, "engine_for", no_sql)
    monkeypatch.setattr(transports, "engine_for", no_sql)
    monkeypatch.setattr(transports, "_cx_batches", no_sql)
    monkeypatch.setattr(transports, "_adbc_batches", no_sql)
    cfg = source.config([TABLE], tmp_path)
    dept = cfg.department("legacy")
    evil = TableConfig.model_construct(
        **{**dept.tables[0].__dict__, "name": 'T_LEGACY"; DROP TABLE "T_LEGACY'}
    )
    with pytest.raises(SourceReadError, match="refused before any SQL") as err:
        open_table(dept, evil, cfg.defaults, environ=source.environ)
    assert err.value.department == "legacy"
    with pytest.raises(SourceReadError, match="refused before any SQL") as err:
        open_table(
            dept,
            dept.tables[0],
            cfg.defaults,
            columns=["ID`; DROP TABLE T_LEGACY; --"],
            environ=source.environ,
        )
    assert "column" in str(err.value)
    monkeypatch.undo()
    assert read_all(_open(source, tmp_path, "fast")).num_rows == 3  # still there


def _pg_with_password(pg_url: str, database: str | None = None) -> str:
    u = sa.engine.make_url(pg_url).set(password="S3cret-pa55!word")  # trust auth ignores it
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


def _assert_no_secret(message: str, url: str) -> None:
    assert "S3cret" not in message and "pa55" not in message
    assert url not in message and "@127.0.0.1" not in message


def test_missing_table_and_columns_name_department_table_column(pg_url, tmp_path):
    _make_postgres(pg_url, _rows("postgresql"))
    url = _pg_with_password(pg_url)
    env = {ENV_VAR: url}
    src = Source("postgresql", {"url_env": ENV_VAR}, env, url, [])

    cfg = src.config([{**TABLE, "name": "T_NOPE"}], tmp_path)
    dept = cfg.department("legacy")
    with pytest.raises(SourceReadError) as err:
        open_table(dept, dept.tables[0], cfg.defaults, environ=env)
    msg = str(err.value)
    assert "'legacy'" in msg and "'T_NOPE'" in msg and "does not exist" in msg
    _assert_no_secret(msg, url)

    cfg = src.config([{**TABLE, "columns": {"DWMCX": {"repair": "gbk_in_latin1"}}}], tmp_path)
    dept = cfg.department("legacy")
    with pytest.raises(SourceReadError) as err:
        open_table(dept, dept.tables[0], cfg.defaults, environ=env)
    msg = str(err.value)
    assert "'legacy'" in msg and "'T_LEGACY'" in msg and "'DWMCX'" in msg and "did you mean 'DWMC'" in msg
    assert err.value.column == "DWMCX" and err.value.table == "T_LEGACY"
    _assert_no_secret(msg, url)

    cfg = src.config([{**TABLE, "primary_key": ["id"]}], tmp_path)  # PostgreSQL names are case-sensitive
    dept = cfg.department("legacy")
    with pytest.raises(SourceReadError, match="primary key column 'id'"):
        source_columns(dept, dept.tables[0], environ=env)
    with pytest.raises(SourceReadError, match="requested column 'NOPE'"):
        open_table(
            cfg.department("legacy"),
            src.config([TABLE], tmp_path).department("legacy").tables[0],
            cfg.defaults,
            columns=["NOPE"],
            environ=env,
        )


def test_connection_failures_never_show_the_password(pg_url, mariadb_url, tmp_path):
    bad_port = sa.engine.make_url(_pg_with_password(pg_url)).set(port=1).render_as_string(hide_password=False)
    bad_db = _pg_with_password(pg_url, database="qst_no_such_database")
    bad_mariadb = (
        sa.engine.make_url(mariadb_url).set(password="S3cret-pa55!word").render_as_string(hide_password=False)
    )  # root has no password here: access denied
    for url in (bad_port, bad_db, bad_mariadb):
        env = {ENV_VAR: url}
        cfg = Source("x", {"url_env": ENV_VAR}, env, url, []).config([TABLE], tmp_path)
        dept = cfg.department("legacy")
        with pytest.raises(SourceReadError) as err:
            open_table(dept, dept.tables[0], cfg.defaults, environ=env)
        msg = str(err.value)
        assert "'legacy'" in msg and "'T_LEGACY'" in msg and "connect" in msg
        assert "$QST_LEGACY_URL" in msg  # says where the URL comes from, not what it is
        _assert_no_secret(msg, url)
        assert err.value.__cause__ is None and err.value.__context__ is None  # no chained driver error


def test_missing_environment_variable_and_sqlite_file(tmp_path):
    cfg = sources_from_dict(
        {
            "version": 1,
            "departments": {
                "a": {"connection": {"url_env": "QST_UNSET_FOR_TEST"}, "tables": [TABLE]},
                "b": {"connection": {"sqlite": "missing.sqlite"}, "tables": [TABLE]},
            },
        },
        base_dir=tmp_path,
    )
    with pytest.raises(SourceReadError, match="QST_UNSET_FOR_TEST"):
        open_table(cfg.department("a"), cfg.department("a").tables[0], cfg.defaults, environ={})
    with pytest.raises(SourceReadError, match="does not exist"):
        open_table(cfg.department("b"), cfg.department("b").tables[0], cfg.defaults)
    assert not (tmp_path / "missing.sqlite").exists()  # never created by the reader


# --------------------------------------------------------------------------------------------------
# SQLite's loose types


def test_sqlite_loose_values_are_flagged_not_fatal(tmp_path):
    path = tmp_path / "loose.sqlite"
    con = sqlite3.connect(path)
    con.execute(
        'CREATE TABLE "T_LOOSE" ("ID" INTEGER, "N" INTEGER, "AMT" DECIMAL(14,2), "D" DATE, '
        '"TS" DATETIME, "S" TEXT, "R" REAL, "B" BOOLEAN, "X", "G" VARCHAR(20))'
    )
    rows = [
        (1, 5, 12.3, "2024-01-01", "2024-01-01 10:00:00", "a", 1.5, 1, "x", moji("深圳")),
        (2, "abc", 7, "0000-00-00", "garbage", 5, "zz", 0, 3, None),
        (3, 1.5, "12.345", 20240101, "2024-01-01T10:00:00.250", b"\xff\x00", 2, 2, None, "plain"),
        (4, None, "abc", "2024-02-30", "2024-01-01", None, None, "true", 2.5, "café"),
        (5, 9223372036854775807, 99999999999999.0, "2019年3月1日", 1.5, "𠮷", 1e300, None, b"\x01", None),
    ]
    con.executemany('INSERT INTO "T_LOOSE" VALUES (?,?,?,?,?,?,?,?,?,?)', rows)
    # a legacy application that wrote GBK bytes straight into TEXT columns (SQLite never checks UTF-8)
    gbk = "深圳".encode("gbk").hex()
    con.execute(
        f'UPDATE "T_LOOSE" SET "S" = CAST(X\'{gbk}\' AS TEXT), "G" = CAST(X\'{gbk}\' AS TEXT) WHERE "ID" = 2'
    )
    con.commit()
    con.close()
    cfg = sources_from_dict(
        {
            "version": 1,
            "departments": {
                "loose": {
                    "connection": {"sqlite": str(path)},
                    "tables": [
                        {
                            "name": "T_LOOSE",
                            "primary_key": ["ID"],
                            "mode": "snapshot",
                            "columns": {"G": {"repair": "gbk_in_latin1"}},
                        }
                    ],
                }
            },
        },
        base_dir=tmp_path,
    )
    dept = cfg.department("loose")
    out = {}
    for engine in ENGINES:
        table = read_all(open_table(dept, dept.tables[0], cfg.defaults, engine=engine)).sort_by("ID")
        out[engine] = table
        assert table.num_rows == 5
    assert out["fast"].equals(out["sqlalchemy"])
    t = out["fast"]
    assert (
        t.schema.field("AMT").type == pa.decimal128(14, 2) and t.schema.field("X").type == pa.large_string()
    )
    assert t.column("N").to_pylist() == [5, None, None, None, 9223372036854775807]
    assert t.column("AMT").to_pylist() == [Decimal("12.30"), Decimal("7.00"), None, None, None]
    assert t.column("D").to_pylist() == [dt.date(2024, 1, 1), None, None, None, None]
    assert t.column("TS").to_pylist() == [
        utc(dt.datetime(2024, 1, 1, 10)),
        None,
        utc(dt.datetime(2024, 1, 1, 10, 0, 0, 250000)),
        utc(dt.datetime(2024, 1, 1)),
        None,
    ]
    # undecodable text is kept (as its reversible latin1 reading) and flagged; a blob in TEXT is not text
    assert t.column("S").to_pylist() == ["a", "深圳".encode("gbk").decode("latin1"), None, None, "𠮷"]
    assert t.column("R").to_pylist() == [1.5, None, 2.0, None, 1e300]
    assert t.column("B").to_pylist() == [True, False, None, True, None]
    assert t.column("X").to_pylist() == ["x", "3", None, "2.5", None]
    # the repair takes mojibake text and raw GBK bytes alike
    assert t.column("G").to_pylist() == ["深圳", "深圳", "plain", "café", None]
    assert t.column(FLAGS_COLUMN).to_pylist() == [
        None,
        "bad_value:N;zero_date:D;bad_date:TS;bad_encoding:S;bad_value:R",
        "bad_value:N;bad_value:AMT;bad_date:D;bad_value:S;bad_value:B",
        "bad_value:AMT;bad_date:D;bad_encoding:G",
        "bad_value:AMT;bad_date:D;bad_date:TS;bad_value:X",
    ]


# --------------------------------------------------------------------------------------------------
# the rest of each dialect's type system


@pytest.mark.parametrize("engine", ENGINES)
def test_postgres_types(pg_url, tmp_path, engine):
    engine_ = sa.create_engine(pg_url)
    with engine_.begin() as c:
        c.exec_driver_sql(
            'CREATE TABLE "全类型" ("编号" smallint PRIMARY KEY, "定长" char(4), "二进制" bytea, "J" jsonb, '
            '"U" uuid, "T" time, "BIG" numeric(40,5), "FREE" numeric, "WIDE" numeric(38,20), '
            '"TZ" timestamptz, "B" boolean, "R" real, "IV" interval, "ARR" text[], "TS6" timestamp(6))'
        )
        c.exec_driver_sql("SET TIME ZONE 'Asia/Shanghai'")
        c.exec_driver_sql("""INSERT INTO "全类型" VALUES (1, 'ab', '\\x00ff', '{"名": 1}',
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '12:34:56', 123456789012345678901234567890.12345, 3.14159,
            123456789012345678.12345678901234567890, '2024-01-02 03:04:05+08', true, 1.5, '1 day 02:00:00',
            '{甲,乙}', '2024-01-02 03:04:05.123456'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, NULL)""")
    engine_.dispose()
    env = {ENV_VAR: pg_url}
    cfg = Source("postgresql", {"url_env": ENV_VAR}, env, pg_url, []).config(
        [
            {
                "name": "全类型",
                "asset": "all_types",
                "primary_key": ["编号"],
                "mode": "incremental",
                "cursor": "TZ",
            }
        ],
        tmp_path,
    )
    dept = cfg.department("legacy")
    stream = open_table(dept, dept.tables[0], cfg.defaults, engine=engine, environ=env)
    got = read_all(stream).sort_by("编号")
    s = got.schema
    assert s.field("编号").type == pa.int64() and s.field("二进制").type == pa.large_binary()
    assert s.field("BIG").type == pa.large_string() and s.field("FREE").type == pa.large_string()
    assert s.field("WIDE").type == pa.decimal128(38, 20) and s.field("R").type == pa.float64()
    row = got.to_pylist()[0]
    assert row["定长"] == "ab  " and row["二进制"] == b"\x00\xff" and row["J"] == '{"名": 1}'
    assert row["U"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" and row["T"] == "12:34:56"
    assert row["BIG"] == "123456789012345678901234567890.12345" and row["FREE"] == "3.14159"
    assert row["WIDE"] == Decimal("123456789012345678.12345678901234567890")
    assert row["TZ"] == dt.datetime(2024, 1, 1, 19, 4, 5, tzinfo=UTC)  # an instant: no source_timezone
    assert row["TS6"] == utc(dt.datetime(2024, 1, 2, 3, 4, 5, 123456))
    assert row["B"] is True and row["R"] == 1.5 and row["IV"] == "1 day 02:00:00" and row["ARR"] == "{甲,乙}"
    assert row[FLAGS_COLUMN] is None
    assert all(v is None for k, v in got.to_pylist()[1].items() if k != "编号")
    # a zoned cursor compares instants
    since = dt.datetime(2024, 1, 1, 19, 4, 5, tzinfo=UTC)
    assert (
        read_all(
            open_table(dept, dept.tables[0], cfg.defaults, engine=engine, environ=env, since=since)
        ).num_rows
        == 1
    )
    assert (
        read_all(
            open_table(
                dept,
                dept.tables[0],
                cfg.defaults,
                engine=engine,
                environ=env,
                since=since + dt.timedelta(microseconds=1),
            )
        ).num_rows
        == 0
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_mariadb_types(mariadb_url, tmp_path, engine):
    eng = sa.create_engine(mariadb_url)
    raw = eng.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("SET time_zone = '+08:00'")  # the legacy application's session
        cur.execute(
            "CREATE TABLE `全类型` (`编号` TINYINT UNSIGNED PRIMARY KEY, TS TIMESTAMP NULL, DT6 DATETIME(6), "
            "E ENUM('甲','乙'), S SET('a','b'), J JSON, T TIME, Y YEAR, BITS BIT(8), FLAG BOOLEAN, "
            "HUGE DECIMAL(65,30), D DOUBLE, F FLOAT, BL BLOB, SM SMALLINT UNSIGNED, MI MEDIUMINT, "
            "L1 VARCHAR(20) CHARACTER SET latin1, ZT DATETIME) CHARACTER SET utf8mb4"
        )
        cur.execute(
            "INSERT INTO `全类型` VALUES (1, '2024-01-02 11:04:05', '2024-01-02 03:04:05.123456', '乙', 'a,b', "
            "'{\"名\": 1}', '838:59:59', 2024, b'10000001', 1, 1.000000000000000000000000000001, 0.1, 1.5, "
            "X'00FF', 65535, -8388608, 'café', '0000-00-00 00:00:00'), "
            "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
            "NULL, NULL)"
        )
        raw.commit()
    finally:
        raw.close()
        eng.dispose()
    env = {ENV_VAR: mariadb_url}
    cfg = Source("mariadb", {"url_env": ENV_VAR}, env, mariadb_url, []).config(
        [{"name": "全类型", "asset": "all_types", "primary_key": ["编号"], "mode": "snapshot"}], tmp_path
    )
    dept = cfg.department("legacy")
    got = read_all(open_table(dept, dept.tables[0], cfg.defaults, engine=engine, environ=env)).sort_by("编号")
    s = got.schema
    assert s.field("HUGE").type == pa.large_string() and s.field("BITS").type == pa.int64()
    assert s.field("FLAG").type == pa.int64() and s.field("BL").type == pa.large_binary()
    row = got.to_pylist()[0]
    assert row["TS"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)  # TIMESTAMP is an instant
    assert row["DT6"] == utc(dt.datetime(2024, 1, 2, 3, 4, 5, 123456))
    assert row["E"] == "乙" and row["S"] == "a,b" and row["T"] == "838:59:59" and row["Y"] == 2024
    assert row["BITS"] == 129 and row["FLAG"] == 1 and row["HUGE"] == "1.000000000000000000000000000001"
    assert row["D"] == 0.1 and row["F"] == 1.5 and row["BL"] == b"\x00\xff" and row["SM"] == 65535
    assert row["MI"] == -8388608 and row["L1"] == "café" and row["ZT"] is None
    assert '"名"' in row["J"]
    assert row[FLAGS_COLUMN] == "zero_date:ZT"


# --------------------------------------------------------------------------------------------------
# conversion unit tests


def test_lenient_cast_finds_the_few_bad_values_in_a_big_batch():
    values = [f"{i}.25" for i in range(100_000)]
    values[7] = "12.345"  # scale 3 does not fit decimal(14,2)
    values[99_999] = "1e20"  # 21 digits do not fit 14
    values[500] = None
    res = coerce(pa.array(values), TypeChoice("decimal", pa.decimal128(14, 2)), zone="Asia/Shanghai")
    assert res.values[6].as_py() == Decimal("6.25") and res.values[7].as_py() is None
    assert res.values[99_999].as_py() is None and res.values[500].as_py() is None
    ((kind, mask),) = res.flags
    assert kind == "bad_value"
    assert [i for i, m in enumerate(mask.to_pylist()) if m] == [7, 99_999]


@pytest.mark.parametrize(
    "text, flag",
    [
        ("0000-00-00", "zero_date"),
        ("0000-00-00 00:00:00", "zero_date"),
        ("2024-00-10", "zero_date"),
        ("2024-05-00", "zero_date"),
        ("2024-02-30", "bad_date"),
        ("20240101", "bad_date"),
        ("2019年3月1日", "bad_date"),
        ("2024-01-01 25:00:00", "bad_date"),
    ],
)
def test_zero_and_bad_dates(text, flag):
    for kind, arrow_type in (("date", pa.date32()), ("timestamp", pa.timestamp("us", tz="UTC"))):
        res = coerce(pa.array(["2024-03-01", text]), TypeChoice(kind, arrow_type), zone="Asia/Shanghai")
        assert res.values[1].as_py() is None and res.values[0].as_py() is not None
        assert [(k, m.to_pylist()) for k, m in res.flags] == [(flag, [False, True])]


def test_estate_reads_completely(tmp_path, mariadb_url, monkeypatch):
    monkeypatch.delenv("QST_SOCIAL_URL", raising=False)
    est.simulate(tmp_path, enterprises=300, seed=1, targets={"social": mariadb_url})
    config = load_sources(tmp_path / "sources.yaml")
    seen = 0
    for dept, table in config.iter_tables():
        engine = sa.create_engine(dept.resolve_url())
        with engine.connect() as conn:
            q = "`" if engine.dialect.name in ("mysql", "mariadb") else '"'
            expected = conn.execute(sa.text(f"SELECT COUNT(*) FROM {q}{table.name}{q}")).scalar_one()
        engine.dispose()
        for eng in ENGINES:
            got = read_all(open_table(dept, table, config.defaults, engine=eng))
            assert got.num_rows == expected > 0, (dept.key, table.name, eng)
            flags = [f for f in got.column(FLAGS_COLUMN).to_pylist() if f]
            assert not any("bad_encoding" in f or "bad_value" in f for f in flags), (table.name, flags[:3])
            seen += 1
            if dept.key == "social":
                for col in [c for c, cfg in table.columns.items() if cfg.repair]:
                    names = [v for v in got.column(col).to_pylist() if v]
                    assert names and all(any("\u4e00" <= ch <= "\u9fff" for ch in v) for v in names), col
    assert seen == 2 * 13  # 13 tables in 6 departments


def test_repaired_names_agree_between_mariadb_bytes_and_sqlite_mojibake(tmp_path, mariadb_url, monkeypatch):
    monkeypatch.delenv("QST_SOCIAL_URL", raising=False)
    on_sqlite, on_mariadb = tmp_path / "a", tmp_path / "b"
    est.simulate(on_sqlite, enterprises=120, seed=5, only=["social.SB_GRCBXX"])
    est.simulate(
        on_mariadb, enterprises=120, seed=5, only=["social.SB_GRCBXX"], targets={"social": mariadb_url}
    )
    results = []
    for folder in (on_sqlite, on_mariadb):
        config = load_sources(folder / "sources.yaml")
        dept = config.department("social")
        table = next(t for t in dept.tables if t.name == "SB_GRCBXX")
        results.append(
            read_all(open_table(dept, table, config.defaults)).sort_by("GRBH").select(["GRBH", "XM"])
        )
    assert results[0].num_rows > 50
    assert results[0].equals(results[1])


@pytest.mark.parametrize(
    "sa_type, dialect, expected",
    [
        (sa.Numeric(10, 2), "oracle", pa.decimal128(10, 2)),
        (sa.Numeric(), "oracle", pa.large_string()),  # no precision: the exact text, never a guessed scale
        (sa.Numeric(50, 2), "postgresql", pa.large_string()),
        (sa.DateTime(timezone=True), "oracle", pa.timestamp("us", tz="UTC")),
        (sa.Integer(), "kingbase", pa.int64()),
        (sa.types.NullType(), "dm", pa.large_string()),
        (sa.LargeBinary(), "oracle", pa.large_binary()),
        (sa.Boolean(), "postgresql", pa.bool_()),
    ],
)
def test_type_mapping_for_other_dialects(sa_type, dialect, expected):
    from connectors.types import choose_type

    choice = choose_type(sa_type, dialect)
    assert choice.arrow_type == expected
    if dialect not in ("postgresql", "mysql"):
        assert choice.wire == "native"  # other dialects get no dialect-specific SQL


def test_python_values_of_mixed_types_are_converted_or_flagged():
    from connectors.transports import python_values_to_arrow

    raw, bad = python_values_to_arrow([1, "abc", 2.5, None, b"\xff", Decimal(7), 2**64 - 1])
    assert bad.to_pylist() == [False, False, False, False, True, False, False]
    res = coerce(raw, TypeChoice("int64", pa.int64()), zone="Asia/Shanghai")
    assert res.values.to_pylist() == [1, None, None, None, None, 7, None]
    ((kind, mask),) = res.flags
    assert kind == "bad_value" and mask.to_pylist() == [False, True, True, False, False, False, True]
    raw, bad = python_values_to_arrow([dt.datetime(2024, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))])
    res = coerce(raw, TypeChoice("timestamp", pa.timestamp("us", tz="UTC"), zoned=True), zone="Asia/Shanghai")
    assert bad is None and res.values.to_pylist() == [dt.datetime(2024, 1, 1, 0, tzinfo=UTC)]


def test_engine_choice(source, tmp_path, monkeypatch):
    key = "mysql" if source.dialect == "mariadb" else source.dialect
    monkeypatch.delitem(readers.FAST_READERS, key)
    monkeypatch.delitem(readers.FAST_READERS, "mariadb", raising=False)
    assert _open(source, tmp_path, "auto").reader == "sqlalchemy"  # what any other dialect gets
    with pytest.raises(ValueError, match="no fast reader"):
        _open(source, tmp_path, "fast")
    with pytest.raises(ValueError, match="engine"):
        _open(source, tmp_path, "turbo")
