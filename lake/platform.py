"""Where and how a deployment runs: the lake's location and the night's executor, from ``<deployment>/platform.yaml``.

Why a file of its own: ``sources.yaml`` says what the city's departments hold; this says what machines the city
runs on. A deployment without the file runs as the demo does (the lake under HOME, the night in one process),
so the file is needed only to scale out. Secrets never live here: the file names the *environment variables*
that hold the broker's and the run storage's URLs, as ``sources.yaml`` does for the departments' databases.

::

    # <deployment>/platform.yaml (every key optional)
    lake:
      root: s3://city-lake/quanshitong     # default: HOME/lake on local disk (a relative path: under HOME)
    execution:
      mode: celery                         # in_process (default) | celery
      broker_env: QST_CELERY_BROKER_URL    # the variable that holds amqp://... (never the URL itself)
      run_storage_env: QST_RUN_STORAGE_URL # the variable that holds postgresql+psycopg2://...
    incremental:
      enabled: true                        # a night restages only what bronze changed (default)
      full_rebuild_on: sunday              # and rebuilds everything once a week, reporting any drift
    linkage:
      backend: spark                       # duckdb (default) | spark: the engine Splink runs the model on
      spark_master: local[2]               # local[N] | local[*]
      spark_driver_memory: 2g
      spark_shuffle_partitions: 8
      spark_tuned_for: throughput          # throughput | startup (a JVM that warms up fast: small cities)
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lake.deployment import Deployment, current_deployment
from lake.storage import parse_root
from lake.yamlfile import load_yaml_model

__all__ = [
    "PLATFORM_FILE",
    "ExecutionSettings",
    "IncrementalSettings",
    "LakeSettings",
    "LinkageSettings",
    "PlatformSettings",
    "platform_settings",
]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: The file's name inside a deployment folder.
PLATFORM_FILE = "platform.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LakeSettings(_Strict):
    """Where the Delta tables live. ``None``: ``HOME/lake`` on local disk. ``s3://bucket/prefix``: an
    S3-compatible object store, reached with the standard ``AWS_*`` environment variables (README, "The lake
    on object storage"); a local path: that folder (relative: under HOME)."""

    root: str | None = None

    @field_validator("root")
    @classmethod
    def _a_lake_root(cls, value: str | None) -> str | None:
        parse_root(value, "HOME")  # refuses another scheme or a malformed bucket when the file is read
        return value


class ExecutionSettings(_Strict):
    """How the night's steps run: in the calling process (``qst run``'s default) or in Celery workers
    (pipelines/celery_night.py). ``broker_env`` and ``run_storage_env`` name the environment variables that
    hold the broker's URL and the run storage's PostgreSQL URL; when the latter holds a URL, the Dagster
    instance keeps runs and events there, whatever the mode."""

    mode: Literal["in_process", "celery"] = "in_process"
    broker_env: str = "QST_CELERY_BROKER_URL"
    run_storage_env: str = "QST_RUN_STORAGE_URL"

    @field_validator("broker_env", "run_storage_env")
    @classmethod
    def _a_variable_name(cls, value: str) -> str:
        if "://" in value or "@" in value:
            raise ValueError(
                "the name of an environment variable that holds the URL, not the URL: a URL may carry a "
                "password, and secrets never live in files"
            )
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "not an environment variable's name (letters, digits and _, not starting with a digit)"
            )
        return value


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class IncrementalSettings(_Strict):
    """Nights that follow the changes (``models/staging_changes.py``), and the weekly full rebuild that bounds
    whatever drift an incremental night could leave (the full night reports the rows it found different)."""

    enabled: bool = True
    full_rebuild_on: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "never"
    ] = "sunday"

    def full_night(self, night: str | dt.date | None) -> bool:
        """Whether the night of ``night`` (a partition key ``YYYY-MM-DD``) rebuilds everything."""
        if not self.enabled:
            return True
        if night is None or self.full_rebuild_on == "never":
            return False
        day = dt.date.fromisoformat(night) if isinstance(night, str) else night
        return WEEKDAYS[day.weekday()] == self.full_rebuild_on


class LinkageSettings(_Strict):
    """The engine Splink runs the linkage model on (the same trained model, the same pairs and clusters on both;
    docs/scaling.md says when to switch). ``duckdb`` (default): in the resolving process, 11-22x faster than Spark
    on one machine. ``spark``: a local Spark session (pyspark and Java 17), for when one machine's DuckDB is not
    enough. Only a local master: the profiles reach Spark as Parquet in a local temporary folder, which a
    cluster's executors could not read."""

    backend: Literal["duckdb", "spark"] = "duckdb"
    spark_master: Annotated[str, Field(pattern=r"^local(\[(\d+|\*)\])?$")] = "local[2]"
    #: the JVM's heap (the driver runs the local executors too): ``512m``, ``2g``, ...
    spark_driver_memory: Annotated[str, Field(pattern=r"^\d+[kmgt]$")] = "2g"
    #: partitions of Spark's joins and Splink's repartitions (Spark's 200 is for clusters)
    spark_shuffle_partitions: Annotated[int, Field(ge=1, le=10_000)] = 8
    #: ``throughput`` (the JVM's and Spark's defaults) or ``startup``: a JVM that starts and warms up fast and
    #: runs slower (tests, small cities; models.resolution.spark_backend.JAVA_OPTIONS)
    spark_tuned_for: Literal["throughput", "startup"] = "throughput"


class PlatformSettings(_Strict):
    lake: LakeSettings = LakeSettings()
    execution: ExecutionSettings = ExecutionSettings()
    incremental: IncrementalSettings = IncrementalSettings()
    linkage: LinkageSettings = LinkageSettings()


def platform_settings(deployment: Deployment | None = None) -> PlatformSettings:
    """The deployment's ``platform.yaml``, or the defaults when it has none. A file that does not validate
    raises :class:`lake.yamlfile.ConfigError` naming the file, line and key."""
    deployment = deployment or current_deployment()
    path = deployment.root / PLATFORM_FILE
    if not path.is_file():
        return PlatformSettings()
    return load_yaml_model(path, PlatformSettings)
