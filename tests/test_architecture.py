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
PACKAGES = ("lake", "connectors", "models", "quality", "dashboard")
#: Packages whose modules take part in the import-circle check (pipelines wires everything, so it may import all).
ALL_PACKAGES = (*PACKAGES, "pipelines")
MAX_LINES = 600

#: package -> the packages of ours it must not import
FORBIDDEN = {
    "lake": {"connectors", "models", "quality", "pipelines"},
    "connectors": {"models", "quality", "pipelines"},
    "models": {"quality", "pipelines"},
    "quality": {"pipelines", "dashboard"},
    # the dashboard reads the marts (and their contract); it never runs the night
    "dashboard": {"connectors", "quality", "pipelines"},
}


def _modules(packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py") if ".venv" not in p.parts)


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
        if top in FORBIDDEN.get(own, set()):
            out.append(f"{rel}:{line}: {own} must not import {module}")
        if top == "dagster":
            out.append(f"{rel}:{line}: only pipelines/ may import dagster")
        if top in PACKAGES and module != _module_name(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                out.append(f"{rel}:{line}: imports the private {', '.join(private)} of {module}")
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if lines > MAX_LINES:
        out.append(f"{rel}: {lines} lines (more than {MAX_LINES}: split it by concern)")
    return out


def test_the_packages_are_found() -> None:
    found = {_rel(p).split("/")[0] for p in _modules(ALL_PACKAGES)}
    assert found == set(ALL_PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_follows_the_house_rules(package: str) -> None:
    broken = [v for p in _modules() if _rel(p).startswith(package + "/") for v in violations(p)]
    assert not broken, "\n".join(broken)


def import_graph(paths: list[Path]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (at any depth of the file: a lazy import inside a function is
    still a dependency). ``from pkg import sub`` counts as importing the submodule when ``sub`` is one."""
    names = {_module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        me = _module_name(path)
        deps = set()
        for _, module, imported in _imports(path):
            targets = [f"{module}.{n}" for n in imported if f"{module}.{n}" in names] or [module]
            deps |= {t for t in targets if t in names and t != me}
        graph[me] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph`` (each as a path that comes back to its start): strongly connected
    components of more than one module, found with Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_circles_are_found() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back() -> None:
    """No import circle anywhere: not between packages, not inside models/marts (enterprise -> risk -> enterprise
    was one), not through a lazy import."""
    found = circles(import_graph(_modules(ALL_PACKAGES)))
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_pipelines_holds_wiring_only() -> None:
    """pipelines/ is Dagster wiring and the CLI: the dashboard is its own package, and no SQL is written there."""
    assert not (ROOT / "pipelines" / "dashboard").exists()
    sql = [
        f"{_rel(p)}:{n}"
        for p in _modules(("pipelines",))
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if any(word in line for word in ("SELECT ", "CREATE TABLE", "INSERT INTO"))
    ]
    assert not sql, "SQL belongs in models/ or quality/, not in pipelines/:\n" + "\n".join(sql)


def _requirement_names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_every_third_party_import_is_a_declared_dependency() -> None:
    """ "Declare exactly what you import": a package that arrives only as another's dependency can vanish with
    that dependency's next release."""
    import importlib.metadata as md
    import sys
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _requirement_names(project["dependencies"])
    # headless-browser tooling of the tests and the dashboard benchmark, and pyspark for the linkage model's Spark
    # backend: imported lazily, each says how to install the dev group when missing; the served dashboard and the
    # DuckDB backend (the default) never need them
    dev = _requirement_names(
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["dependency-groups"]["dev"]
    )
    dev_tools = {"dashboard/browser.py": dev, "models/resolution/spark_backend.py": dev}
    ours = {*ALL_PACKAGES, "simulator"}
    distributions = md.packages_distributions()
    undeclared = set()
    for path in _modules((*ALL_PACKAGES, "simulator")):
        for _, module, _ in _imports(path):
            top = module.split(".")[0]
            if not top or top in ours or top in sys.stdlib_module_names or top == "__future__":
                continue
            names = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
            if not names & (declared | dev_tools.get(_rel(path), set())):
                undeclared.add(f"{top} ({_rel(path)})")
    assert not undeclared, "imported but not in [project] dependencies: " + ", ".join(sorted(undeclared))
