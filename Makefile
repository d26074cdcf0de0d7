# The two commands of the README:  `make demo`  and  `make test`.
.PHONY: setup demo test lint bench dagster clean

setup:
	@bash scripts/bootstrap.sh

demo: setup
	.venv/bin/qst demo

test: setup
	.venv/bin/pytest -n 2 --dist loadgroup -q

lint: setup
	.venv/bin/ruff check .

bench: setup
	.venv/bin/python bench/bench_simulate.py

dagster: setup
	.venv/bin/dagster dev -w workspace.yaml

clean:
	rm -rf data .pytest_cache
