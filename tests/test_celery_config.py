"""The Celery mode's wiring, without servers: queues per department, the instance's storage, the job the workers
rebuild, and the errors that say which variable is missing. (The night itself through RabbitMQ and two
workers: tests/test_celery_night.py.)"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from connectors.config import load_sources
from lake.deployment import DEPLOYMENT_ENV, EXAMPLE_DEPLOYMENT, Deployment
from lake.platform import ExecutionSettings, platform_settings
from lake.yamlfile import ConfigError
from pipelines.assemble import build_definitions
from pipelines.celery_job import nightly_for_workers, reconstructable_nightly
from pipelines.celery_night import (
    DEFAULT_QUEUE,
    PASSED_ENV,
    executor_config,
    night_executor,
)
from pipelines.cli import main as qst
from pipelines.runner import instance_yaml, run_pipeline
from pipelines.worker_cli import queue_names

FIXTURE = Path(__file__).parent / "fixtures" / "sources_small.yaml"
QUEUE_TAG = "dagster-celery/queue"
SECRET = "postgresql+psycopg2://qst:s3cret-pw@db.example:5432/runs"


def _celery_deployment(tmp_path: Path) -> Path:
    folder = tmp_path / "deployment"
    folder.mkdir()
    for entry in EXAMPLE_DEPLOYMENT.iterdir():
        (folder / entry.name).symlink_to(entry)
    (folder / "platform.yaml").write_text(
        "execution:\n  mode: celery\n  broker_env: QST_T_BROKER\n  run_storage_env: QST_T_RUNS\n"
    )
    return folder


def test_each_departments_extractions_go_to_its_queue_and_the_rest_to_the_default():
    defs = build_definitions(load_sources(FIXTURE))
    job = defs.resolve_job_def("nightly")
    queues = {}
    for node in job.graph.node_defs:
        queues[node.name] = node.tags.get(QUEUE_TAG)
    bronze = {name: q for name, q in queues.items() if name.startswith("bronze__")}
    assert bronze and all(q == f"qst.{name.split('__')[1]}" for name, q in bronze.items()), bronze
    assert all(q is None for name, q in queues.items() if not name.startswith("bronze__")), (
        "everything else falls to the executor's default queue"
    )


def test_the_executor_carries_the_variable_names_never_the_urls(monkeypatch):
    settings = ExecutionSettings(mode="celery", broker_env="QST_T_BROKER")
    assert night_executor(ExecutionSettings()) is None, "in-process: Dagster's own executor"
    monkeypatch.delenv("QST_T_BROKER", raising=False)
    with pytest.raises(RuntimeError, match=r"\$QST_T_BROKER is not set"):
        night_executor(settings)
    monkeypatch.setenv("QST_T_BROKER", "amqp://qst:s3cret-pw@mq.example:5672/city")
    config = executor_config(settings)
    assert config["broker"] == {"env": "QST_T_BROKER"} and config["backend"] == "rpc://"
    assert config["config_source"]["task_default_queue"] == DEFAULT_QUEUE
    assert "s3cret-pw" not in repr(config)
    executor = night_executor(settings)
    assert executor is not None and executor.name == "qst_celery"
    resolved = executor.config_schema.resolve_config({}).value["config"]  # what the submitting process uses
    assert resolved["broker"] == "amqp://qst:s3cret-pw@mq.example:5672/city"
    monkeypatch.setenv("QST_T_BROKER", "redis://:s3cret-pw@cache.example:6379/0")
    config = executor_config(settings)
    assert config["backend"] == {"env": "QST_T_BROKER"} and "s3cret-pw" not in repr(config)


def test_the_instance_moves_to_postgresql_when_the_variable_holds_a_url(monkeypatch):
    settings = ExecutionSettings(run_storage_env="QST_T_RUNS")
    monkeypatch.delenv("QST_T_RUNS", raising=False)
    assert "storage:" not in instance_yaml(settings)
    monkeypatch.setenv("QST_T_RUNS", SECRET)
    text = instance_yaml(settings)
    assert yaml.safe_load(text)["storage"] == {"postgres": {"postgres_url": {"env": "QST_T_RUNS"}}}
    assert "s3cret-pw" not in text


def test_celery_mode_says_which_variable_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(DEPLOYMENT_ENV, str(_celery_deployment(tmp_path)))
    monkeypatch.setenv("QST_T_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.delenv("QST_T_RUNS", raising=False)
    config = load_sources(FIXTURE)
    with pytest.raises(ValueError, match=r"\$QST_T_RUNS is not set.*PostgreSQL"):
        run_pipeline(config, tmp_path / "home", partition="2026-11-01", until="bronze")
    monkeypatch.setenv("QST_T_RUNS", SECRET)
    monkeypatch.delenv("QST_T_BROKER")
    with pytest.raises(RuntimeError, match=r"\$QST_T_BROKER is not set"):
        run_pipeline(config, tmp_path / "home", partition="2026-11-01", until="bronze")


def test_the_workers_rebuild_the_same_job_from_paths_only(tmp_path, monkeypatch):
    deployment = _celery_deployment(tmp_path)
    monkeypatch.setenv(DEPLOYMENT_ENV, str(deployment))
    monkeypatch.setenv("QST_T_BROKER", "amqp://qst:s3cret-pw@mq.example:5672/city")
    monkeypatch.setenv("QST_EXPORT_HMAC_KEY", "s3cret-pw-of-the-exports")
    recon = reconstructable_nightly(FIXTURE, tmp_path / "home", retries=False)
    shipped = repr(recon.to_dict())
    assert "s3cret-pw" not in shipped, "a secret would travel to every worker and into the run storage"
    assert str(FIXTURE.resolve()) in shipped and str(deployment) in shipped
    job = recon.get_definition()
    assert isinstance(job, dg.JobDefinition) and job.executor_def.name == "qst_celery"
    built = build_definitions(load_sources(FIXTURE), home=tmp_path / "home", retries=False)
    assert set(job.asset_layer.executable_asset_keys) == set(
        built.resolve_job_def("nightly").asset_layer.executable_asset_keys
    )
    # a worker that reads other files than the submitting machine says so; a changed deployment is a new job
    (deployment / "platform.yaml").write_text(
        (deployment / "platform.yaml").read_text() + "# a comment: the file changed\n"
    )
    with pytest.raises(RuntimeError, match="sees another deployment"):
        nightly_for_workers(**dict(recon.repository.pointer.reconstructable_kwargs))
    again = reconstructable_nightly(FIXTURE, tmp_path / "home", retries=False)
    assert again != recon and again.get_definition() is not job
    with pytest.raises(ValueError, match="not a variable the night hands to its workers"):
        nightly_for_workers(str(FIXTURE), str(tmp_path), False, {"QST_EXPORT_HMAC_KEY": "x"})
    assert "QST_EXPORT_HMAC_KEY" not in PASSED_ENV


def test_worker_queue_names():
    assert queue_names(("default", "tax", "qst.samr", "tax")) == [DEFAULT_QUEUE, "qst.tax", "qst.samr"]
    result = CliRunner().invoke(qst, ["worker", "--queue", "tax,samr"])
    assert result.exit_code == 2 and "a queue is one word" in result.output


def test_worker_help_explains_queues_and_the_restart_on_deploy():
    text = CliRunner().invoke(qst, ["worker", "--help"]).output
    assert "qst.DEPT" in text and "qst.default" in text
    assert "Restart every worker on each deploy" in text


def test_platform_names_variables_never_urls(tmp_path):
    (tmp_path / "platform.yaml").write_text(
        "execution:\n  mode: celery\n  broker_env: amqp://qst:s3cret-pw@mq//\n  run_storage_env: 9X\n"
    )
    with pytest.raises(ConfigError) as err:
        platform_settings(Deployment(tmp_path))
    text = str(err.value)
    assert "execution.broker_env" in text and "not the URL" in text and "execution.run_storage_env" in text
    assert "s3cret-pw" not in text
