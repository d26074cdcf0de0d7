"""The house rules of the packages, checked on the source: which package may import which, no reaching into
another module's private names, no module too long to read.

``lake`` (paths, Delta helpers, YAML loading, the city's zone) depends on nothing of ours; ``connectors`` on
``lake`` only; ``models`` on ``lake`` and ``connectors``; ``quality`` knows the models' schemas, so it may
import ``models`` -- never the other way round. Dagster belongs to ``pipelines`` alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lake", "connectors", "models", "quality")
MAX_LINES = 600

#: package -> the packages of ours it must not import
FORBIDDEN = {
    "lake": {"connectors", "models", "quality", "pipelines"},
    "connectors": {"models", "quality", "pipelines"},
    "models": {"quality", "pipelines"},
    "quality": {"pipelines"},
}

# being split in a parallel change
LONG_MODULES_BEING_SPLIT = ("models/marts/", "models/exports/")

# being split in a parallel change: models/marts/scorecard_mart.py still imports quality.scorecard's private
# helpers and models/marts/risk.py models.marts.enterprise's _in; the marts change moves them
IMPORTS_BEING_MOVED = {("models/marts/scorecard_mart.py", "quality.scorecard"),
                       ("models/marts/risk.py", "models.marts.enterprise")}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if ".venv" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, imported module, names)`` of every import, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module, [a.name for a in node.names]))
    return found


def violations(path: Path) -> list[str]:
    """Every rule ``path`` breaks, as ``file:line: what``."""
    rel, own = _rel(path), _rel(path).split("/")[0]
    out = []
    for line, module, names in _imports(path):
        top = module.split(".")[0]
        if (rel, module) in IMPORTS_BEING_MOVED:
            continue
        if top in FORBIDDEN.get(own, set()):
            out.append(f"{rel}:{line}: {own} must not import {module}")
        if top == "dagster":
            out.append(f"{rel}:{line}: only pipelines/ may import dagster")
        if top in PACKAGES and module != _module_name(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                out.append(f"{rel}:{line}: imports the private {', '.join(private)} of {module}")
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if lines > MAX_LINES and not rel.startswith(LONG_MODULES_BEING_SPLIT):
        out.append(f"{rel}: {lines} lines (more than {MAX_LINES}: split it by concern)")
    return out


def test_the_packages_are_found() -> None:
    found = {_rel(p).split("/")[0] for p in _modules()}
    assert found == set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_follows_the_house_rules(package: str) -> None:
    broken = [v for p in _modules() if _rel(p).startswith(package + "/") for v in violations(p)]
    assert not broken, "\n".join(broken)
