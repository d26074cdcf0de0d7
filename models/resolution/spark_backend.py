"""Splink's Spark backend for the linkage model (``linkage.backend: spark`` in platform.yaml, :mod:`lake.platform`):
a local Spark session, the profiles handed to it as Parquet, the predicted pairs handed back as Arrow.

Why Spark at all: on one machine DuckDB is many times faster (docs/benchmarks.md, "Linkage backends"); Spark is
the way out for when one machine's DuckDB is not enough (docs/scaling.md). The model is the same on both: the
comparisons are declared once and written per dialect (:func:`models.resolution.splink_settings.for_dialect`), the
trained m and u are the same file, and the profiles (bigram lists included) are derived once, in DuckDB
(:func:`models.resolution.splink_model.load_profiles`), so both engines compare the very same values.

Delta stays with delta-rs: Spark never reads or writes the lake (the delta-spark jars are not to be had offline
here); the engine reads silver with delta-rs as on DuckDB and gives Spark a Parquet file DuckDB wrote.

What the session needs: pyspark (the project's dev dependency group) and a Java 17+ runtime (Debian's
``openjdk-17-jre-headless``, installed by ``scripts/setup_test_env.sh``). It binds to 127.0.0.1
(``SPARK_LOCAL_IP``), shows no UI, and keeps its scratch (the Parquet hand-over, Splink's checkpoints, Spark's
shuffle files) in one temporary folder removed when the process ends. One session serves the whole process
(starting one costs 10-30 s): the enterprise and the person resolution of a night share it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from lake.platform import LinkageSettings

log = logging.getLogger(__name__)

#: How to get what the Spark backend needs, for the error that says it is missing.
INSTALL_HINT = (
    "the Spark backend needs pyspark (`uv sync` installs it with the project's dev group) and a Java 17+ "
    "runtime (as root: apt-get install -y openjdk-17-jre-headless; scripts/setup_test_env.sh does it)"
)


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def unavailable() -> str | None:
    """Why a Spark session cannot start on this machine (pyspark or Java missing), or None when it can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return f"pyspark is not installed; {INSTALL_HINT}"
    if _java() is None:
        return f"no Java runtime (neither JAVA_HOME/bin/java nor java on PATH); {INSTALL_HINT}"
    return None


#: The JVM's options per ``spark_tuned_for``. ``startup``: only the quick JIT compiler and the serial collector,
#: with Spark's whole-stage code generation off (no Java source compiled per query): measured on the 400-enterprise
#: city, a session up in 15 s instead of 38 and the first prediction in 25 s instead of 102 (a loaded machine);
#: the code it runs is slower, so large cities keep ``throughput`` (the JVM's and Spark's defaults).
JAVA_OPTIONS: dict[str, tuple[str, ...]] = {
    "throughput": (),
    "startup": ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"),
}


class _Session:
    """The process's Spark session, its settings and its scratch folder."""

    spark: Any = None
    settings: LinkageSettings | None = None
    scratch: Path | None = None
    #: the heap and tuning the process's JVM was started with (it outlives a stopped session)
    jvm: tuple[str, str] | None = None


def _stop() -> None:
    if _Session.spark is not None:
        with contextlib.suppress(Exception):  # the JVM may already be gone at interpreter exit
            _Session.spark.stop()
    if _Session.scratch is not None:
        shutil.rmtree(_Session.scratch, ignore_errors=True)
    _Session.spark = _Session.settings = _Session.scratch = None


atexit.register(_stop)


def session(settings: LinkageSettings) -> Any:
    """The process's local Spark session for ``settings``, started on first use, restarted when the settings
    changed. The JVM itself (py4j's gateway) lives as long as the process: its heap and options
    (``spark_driver_memory``, ``spark_tuned_for``) are those of the process's first session."""
    if _Session.spark is not None and _Session.settings == settings:
        return _Session.spark
    jvm = (settings.spark_driver_memory, settings.spark_tuned_for)
    if _Session.jvm is not None and _Session.jvm != jvm:
        log.warning(
            "Spark's JVM keeps the heap and options of this process's first session %s, not %s",
            _Session.jvm,
            jvm,
        )
    _stop()
    reason = unavailable()
    if reason:
        raise RuntimeError(f"linkage.backend is spark, but {reason}")
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    scratch = Path(tempfile.mkdtemp(prefix="qst-spark-"))
    partitions = str(settings.spark_shuffle_partitions)
    spark = (
        SparkSession.builder.master(settings.spark_master)
        .appName("quanshitong-linkage")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", partitions)
        .config("spark.default.parallelism", partitions)
        .config("spark.local.dir", str(scratch / "local"))
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", " ".join(JAVA_OPTIONS[settings.spark_tuned_for]))
        .config("spark.sql.codegen.wholeStage", str(settings.spark_tuned_for == "throughput").lower())
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    # Splink writes each intermediate table it keeps (blocked pairs, comparison vectors, predictions) as Parquet
    # here and reads it back, which cuts Spark's lineage
    spark.sparkContext.setCheckpointDir(str(scratch / "checkpoints"))
    _Session.spark, _Session.settings, _Session.scratch = spark, settings, scratch
    _Session.jvm = _Session.jvm or jvm
    return spark


class SparkProfiles:
    """A DuckDB table of profiles handed to Spark: written as one Parquet file by DuckDB, read by Spark as the
    temporary view :attr:`table`; :meth:`db_api` is the Splink backend over it, :meth:`frame` runs a query and
    brings its result back as a Polars frame (through Arrow). :meth:`close` drops the view, the file and the
    tables Splink made."""

    def __init__(self, con: Any, table: str, settings: LinkageSettings) -> None:
        self.spark = session(settings)
        self.settings = settings
        assert _Session.scratch is not None
        self.path = _Session.scratch / f"profiles-{uuid.uuid4().hex}.parquet"
        self.table = f"qst_profiles_{uuid.uuid4().hex[:8]}"
        # the path is ours (a temporary folder and a random name), the table the engine's constant
        con.execute(f"COPY {table} TO '{self.path.as_posix()}' (FORMAT parquet)")
        self.spark.read.parquet(str(self.path)).createOrReplaceTempView(self.table)
        self._api: Any = None

    def db_api(self) -> Any:
        from splink import SparkAPI

        if self._api is None:
            # the similarity UDFs of Splink's jar are not used by the model (see splink_settings)
            self._api = SparkAPI(
                spark_session=self.spark,
                register_udfs_automatically=False,
                num_partitions_on_repartition=self.settings.spark_shuffle_partitions,
            )
        return self._api

    def frame(self, sql: str) -> pl.DataFrame:
        result = pl.from_arrow(self.spark.sql(sql).toArrow())
        assert isinstance(result, pl.DataFrame)
        return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._api is not None:
                self._api.delete_tables_created_by_splink_from_db()
            self.spark.catalog.dropTempView(self.table)
        self.path.unlink(missing_ok=True)
        # the Parquet copies of Splink's tables (a long-lived process would otherwise keep every night's)
        checkpoints = self.spark.sparkContext.getCheckpointDir()
        if checkpoints:
            for written in Path(checkpoints.removeprefix("file:")).glob("__splink__*"):
                shutil.rmtree(written, ignore_errors=True)
