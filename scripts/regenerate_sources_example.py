"""Rewrite the example deployments' sources.yaml from the simulator's table specs (each simulated city's
description of its estate): deployments/simcity/sources.yaml (the demo estate, data/estate) and
deployments/rivercity/sources.yaml (the second simulated city, data/rivercity).

Run after changing simulator/tables.py, kinds.py or shapes.py:  .venv/bin/python scripts/regenerate_sources_example.py
Tests (tests/test_simulator.py, tests/test_city2.py) fail while they are out of step.
"""

from pathlib import Path

from simulator.estate import EstateState, write_sources

REPO = Path(__file__).resolve().parents[1]
#: deployment -> (the city's shape, where its demo estate lives)
EXAMPLES = {"simcity": ("simcity", "estate"), "rivercity": ("rivercity", "rivercity")}


if __name__ == "__main__":
    for deployment, (city, folder) in EXAMPLES.items():
        path = REPO / "deployments" / deployment / "sources.yaml"
        print(write_sources(EstateState.example(city), REPO / "data" / folder, path))
