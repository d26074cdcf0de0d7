#!/usr/bin/env bash
# Set up Quanshitong on a fresh machine: a private uv (package manager) in .tools/, then the project's
# locked dependencies in .venv/. Idempotent and quiet when nothing changed. Extra arguments go to
# `uv sync` (e.g. `--group bench` for the benchmarks' comparison tools).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .tools/bin/uv ]; then
  echo "bootstrap: installing uv into .tools/ ..."
  "$PYTHON" -m venv .tools
  .tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.9,<1"
fi
export UV_PYTHON_DOWNLOADS=never
# --compile-bytecode: every process of the night and of the tests (xdist workers, the isolated steps, the CLI)
# would otherwise compile dagster, great-expectations and the rest again where PYTHONDONTWRITEBYTECODE is set
# (about 10 s a process); compiled once here, they are only read.
.tools/bin/uv sync --frozen --quiet --compile-bytecode --python "$(command -v "$PYTHON")" "$@"
