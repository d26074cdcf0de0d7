"""platform.yaml: where the lake lives and how the night runs; defaults without the file, errors with line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake.deployment import Deployment
from lake.platform import platform_settings
from lake.yamlfile import ConfigError


def test_a_deployment_without_the_file_runs_as_the_demo(tmp_path: Path) -> None:
    settings = platform_settings(Deployment(tmp_path))
    assert settings.lake.root is None
    assert settings.execution.mode == "in_process"


def test_the_file_is_read_and_a_wrong_value_names_its_line_and_key(tmp_path: Path) -> None:
    (tmp_path / "platform.yaml").write_text("lake:\n  root: s3://city/lake\nexecution:\n  mode: celery\n")
    settings = platform_settings(Deployment(tmp_path))
    assert settings.lake.root == "s3://city/lake"
    assert settings.execution.mode == "celery"
    (tmp_path / "platform.yaml").write_text("execution:\n  mode: celry\n  brokr_env: X\n")
    with pytest.raises(ConfigError) as err:
        platform_settings(Deployment(tmp_path))
    text = str(err.value)
    assert "platform.yaml:2:3: execution.mode" in text
    assert "brokr_env" in text
