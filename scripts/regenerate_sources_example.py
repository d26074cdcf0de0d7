"""Rewrite the example deployment's sources.yaml (deployments/simcity/sources.yaml) from the simulator's table specs (the demo estate's description).

Run after changing simulator/tables.py:  .venv/bin/python scripts/regenerate_sources_example.py
A test (tests/test_simulator.py) fails while the two are out of step.
"""

from pathlib import Path

from simulator.estate import EstateState, write_sources

REPO = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    state = EstateState(
        seed=42,
        enterprises=1,
        as_of="2026-10-31",
        start_as_of="2026-10-31",
        units=1,
        days_advanced=0,
        next_enterprise=1,
        targets={},
        rates={},
        rows={},
    )
    print(write_sources(state, REPO / "data" / "estate", REPO / "deployments" / "simcity" / "sources.yaml"))
