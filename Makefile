# The two commands of the README:  `make demo`  and  `make test`.
.PHONY: setup demo test lint bench bench-bronze bench-silver dagster clean

setup:
	@bash scripts/bootstrap.sh

demo: setup
	.venv/bin/qst demo

# setup_test_env.sh: Debian's Chromium, chromedriver and a CJK font for the dashboard's browser tests (apt-get
# when root; otherwise it says what is missing and the browser tests skip)
# --durations: the slowest tests at the end of every run, so a test that grows slow is seen (speed itself is
# measured by bench/). --dist loadgroup keeps the tests that share one simulated estate on one worker
# (xdist_group), so the estate is built once (pytest is held below 9 for it: see pyproject.toml).
test: setup
	@bash scripts/setup_test_env.sh
	.venv/bin/pytest -n 2 --dist loadgroup -q --durations=15

# The gates: ruff's broad rule set, the formatter, and mypy on connectors/, lake/, models/, quality/.
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench:
	@bash scripts/bootstrap.sh --group bench
	.venv/bin/python bench/bench_simulate.py

bench-bronze:
	@bash scripts/bootstrap.sh --group bench
	.venv/bin/python bench/bench_bronze_vs_dlt.py

bench-silver: setup
	.venv/bin/python bench/bench_silver.py

# The Dagster UI on the instance `qst run` writes to (data/.dagster), so its runs show up.
dagster: setup
	mkdir -p data/.dagster && DAGSTER_HOME=$(CURDIR)/data/.dagster .venv/bin/dagster dev -w workspace.yaml

clean:
	rm -rf data .pytest_cache
