"""The lake on object storage (issue 17, item 3): ``lake.root: s3://bucket/prefix`` in ``platform.yaml`` puts every
Delta table in an S3-compatible store, and the night gives the same marts as on local disk.

The store is the moto server (``s3_endpoint`` in conftest.py: the one `.ci/run` starts under CI, else one started
for the session); each test gets its own bucket. Every test here runs, never skips, under CI.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import boto3
import polars as pl
import pyarrow as pa
import pytest

from connectors import bronze
from lake import delta
from lake.deployment import DEPLOYMENT_ENV, EXAMPLE_DEPLOYMENT
from lake.layout import bronze_path, gold_path, lake_root, marts_path, scorecard_path, silver_path
from lake.storage import LOCAL_SIDE, ObjectLocation, parse_root, storage_options

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def _deployment(tmp_path: Path, root: str) -> Path:
    """A copy of the example deployment whose platform.yaml puts the lake at ``root``."""
    folder = tmp_path / "deployment"
    shutil.copytree(EXAMPLE_DEPLOYMENT, folder)
    (folder / "platform.yaml").write_text(f"lake:\n  root: {root}\n", encoding="utf-8")
    return folder


def _keys(bucket: str, prefix: str) -> list[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture
def s3_home(tmp_path, s3_bucket, monkeypatch) -> tuple[Path, str]:
    """A HOME whose deployment puts the lake at ``s3://<bucket>/city``; (home, bucket)."""
    monkeypatch.setenv(DEPLOYMENT_ENV, str(_deployment(tmp_path, f"s3://{s3_bucket}/city")))
    home = tmp_path / "home"
    home.mkdir()
    return home, s3_bucket


# ------------------------------------------------------------------------------------------------------------
# the root and the layout
# ------------------------------------------------------------------------------------------------------------
def test_the_root_is_home_lake_unless_declared(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.delenv(DEPLOYMENT_ENV, raising=False)
    assert lake_root(home) == home / "lake" and silver_path(home, "x") == home / "lake" / "silver" / "x"
    assert parse_root("elsewhere", home) == home / "elsewhere"
    assert parse_root("file:///srv/lake", home) == Path("/srv/lake")
    s3 = parse_root("s3://city-lake/qst/", home)
    assert isinstance(s3, ObjectLocation) and s3.uri == "s3://city-lake/qst"
    assert (s3 / "gold" / "dim").uri == "s3://city-lake/qst/gold/dim" and (s3 / "gold/dim").name == "dim"
    assert (s3 / "gold" / "dim").local == home / LOCAL_SIDE / "city-lake" / "qst" / "gold" / "dim"
    for bad, says in (("gs://b/p", "gs://"), ("s3://No_Such/p", "bucket name"), ("s3://bkt/a/../b", "'..'")):
        with pytest.raises(ValueError, match=says):
            parse_root(bad, home)


def test_platform_yaml_moves_only_the_delta_tables(tmp_path, monkeypatch):
    monkeypatch.setenv(DEPLOYMENT_ENV, str(_deployment(tmp_path, "s3://city-lake/qst")))
    home = tmp_path / "home"
    assert str(bronze_path(home, "tax", "t1")) == "s3://city-lake/qst/bronze/tax/t1"
    assert str(gold_path(home, "dim_enterprise")) == "s3://city-lake/qst/gold/dim_enterprise"
    assert str(scorecard_path(home)) == "s3://city-lake/qst/quality/scorecard"
    assert marts_path(home) == home / "marts.duckdb", "the marts stay on local disk"


def test_a_bad_lake_root_is_refused_when_the_file_is_read(tmp_path, monkeypatch):
    from lake.yamlfile import ConfigError

    monkeypatch.setenv(DEPLOYMENT_ENV, str(_deployment(tmp_path, "ftp://host/lake")))
    with pytest.raises(ConfigError, match="ftp://"):
        lake_root(tmp_path / "home")


def test_storage_options_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "cn-north-1")
    monkeypatch.delenv("AWS_ALLOW_HTTP", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert storage_options(Path("/lake/silver/x")) is None, "local disk: delta-rs' defaults, as before"
    assert storage_options("s3://b-1/lake/x") == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": "cn-north-1",
        "AWS_ALLOW_HTTP": "true",  # an http endpoint is allowed without a second setting
    }


# ------------------------------------------------------------------------------------------------------------
# Delta on S3 through lake.delta and lake.layout
# ------------------------------------------------------------------------------------------------------------
def test_delta_round_trips_on_s3(s3_home):
    home, bucket = s3_home
    path = silver_path(home, "things")
    assert isinstance(path, ObjectLocation) and not delta.exists(path) and delta.read_frame(path) is None
    first = pl.DataFrame({"id": [1, 2, 3], "name": ["甲", "乙", "丙"], "day": ["d1", "d1", "d2"]})
    delta.overwrite(path, first)
    assert delta.exists(path) and delta.open_delta(path) is not None
    delta.append(path, pl.DataFrame({"id": [4], "name": ["丁"], "day": ["d2"]}))
    delta.replace_where(path, pl.DataFrame({"id": [9], "name": ["戊"], "day": ["d1"]}), "day = 'd1'")
    frame = delta.read_frame(path)
    assert frame is not None and sorted(frame.rows()) == [(3, "丙", "d2"), (4, "丁", "d2"), (9, "戊", "d1")]
    assert delta.scan_pinned(path).select(pl.col("id").sum()).collect().item() == 16
    assert delta.delta_table(path, version=0).to_pyarrow_dataset().count_rows() == 3, "time travel"
    dataset = delta.read_dataset(path)
    assert dataset is not None and dataset.count_rows() == 3
    keys = _keys(bucket, "city/silver/things/")
    assert any(k.startswith("city/silver/things/_delta_log/") for k in keys)
    assert any(k.endswith(".parquet") for k in keys)
    assert not (home / "lake").exists(), "nothing of the lake on local disk"


def test_bronze_loads_on_s3_as_on_local_disk(s3_home, tmp_path):
    """Upserts, a changed row, a key snapshot's deletion flags: the same rows on S3 as on local disk; the
    writer lock and the spooled keys stay on the local side."""
    home, bucket = s3_home
    schema = pa.schema([("ID", pa.int64()), ("V", pa.string()), ("_qst_flags", pa.string())])
    night1 = [{"ID": i, "V": f"v{i}", "_qst_flags": None} for i in range(50)]
    night2 = [{"ID": i, "V": f"w{i}" if i % 10 == 0 else f"v{i}", "_qst_flags": None} for i in range(5, 60)]

    def load(path) -> list[tuple]:
        for n, rows in enumerate((night1, night2), 1):
            bronze.upsert_batches(
                path,
                [pa.RecordBatch.from_pylist(rows, schema=schema)],
                schema,
                primary_key=["ID"],
                source="s",
                batch_id=f"b{n}",
                extracted_at=T0 + dt.timedelta(days=n),
                max_rows_per_commit=20,
            )
        keys = pa.RecordBatch.from_pylist([{"ID": i} for i in range(10, 60)])
        flagged = bronze.mark_deleted(path, [keys], primary_key=["ID"], at=T0 + dt.timedelta(days=3))
        assert flagged == 10
        frame = delta.read_frame(path)
        assert frame is not None
        return sorted(frame.select("ID", "V", "_qst_batch_id", "_qst_deleted_at").rows())

    on_s3 = bronze_path(home, "dept", "things")
    assert isinstance(on_s3, ObjectLocation)
    local = tmp_path / "local" / "bronze" / "dept" / "things"
    assert load(on_s3) == load(local)
    assert bronze.watermark(on_s3, "ID") == 59
    assert bronze.table_info(on_s3)["rows"] == 60
    assert _keys(bucket, "city/bronze/dept/things/_delta_log/")
    assert on_s3.local.parent.is_dir() and not (home / "lake").exists()


# The whole night on S3 against the same night on local disk: tests/test_celery_night.py runs the demo night through
# Celery with its lake on S3 (this endpoint) and the in-process night on local disk, and compares every mart table
# and export file -- one night on S3 in the suite, not two (bench/bench_lake_s3.py times the S3 night alone).
