"""The house rules of the code base, checked on every module's syntax tree (imports inside
functions included): no module imports a ``_private`` name from another module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("twin", "policies", "calibration", "vision", "ortwin")
SOURCES = sorted(p for pkg in (*PACKAGES, "bench", "tests", "docs") for p in (ROOT / pkg).rglob("*.py")
                 if p.exists()) + [ROOT / "app.py"]


def private_imports(path: Path) -> list[str]:
    """``file:line: from module import _name`` for each private name imported from a project
    module other than the file itself."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return [f"{shown}:{n.lineno}: from {n.module} import {a.name}"
            for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
            and n.level == 0 and n.module.split(".")[0] in (*PACKAGES, "bench")
            for a in n.names if a.name.startswith("_") and not a.name.startswith("__")]


def test_the_checker_sees_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from twin.model import _hidden\n    return _hidden\n")
    good = tmp_path / "good.py"
    good.write_text("from twin.model import SuiteModel\nimport twin._x as y\n")
    assert [line.split(": ", 1)[1] for line in private_imports(bad)] == \
        ["from twin.model import _hidden"]
    assert private_imports(good) == []


def test_no_module_imports_a_private_name_from_another():
    found = [line for path in SOURCES for line in private_imports(path)]
    assert found == [], "private names imported across modules:\n" + "\n".join(found)


LAYERS: dict[str, set[str]] = {
    "scenarios": {"scenarios"},
    "twin": {"scenarios", "twin"},
    "policies": {"scenarios", "twin", "policies"},
    "calibration": {"scenarios", "twin", "policies", "calibration"},
    "vision": {"scenarios", "twin", "policies", "vision"},
    "ortwin": {"scenarios", "twin", "policies", "calibration", "vision", "ortwin"},
}
"""What each package may import (itself included): the bundled scenarios (data) under
everything, the simulation core on them, the policies on it, calibration and vision beside each
other on both, the application on top."""


def upward_imports(path: Path, package: str) -> list[str]:
    """``file:line: imports module`` for each import of a project package that ``package`` may
    not import (anywhere in the file, inside functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            top = name.split(".")[0]
            if top in LAYERS and top not in LAYERS[package]:
                out.append(f"{shown}:{node.lineno}: {package} imports {name}")
    return out


def test_the_checker_sees_an_upward_import_inside_a_function(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\n\ndef f():\n    import ortwin.cli\n    from calibration import x\n")
    found = [line.split(": ", 1)[1] for line in upward_imports(bad, "policies")]
    assert found == ["policies imports ortwin.cli", "policies imports calibration"]
    assert upward_imports(bad, "ortwin") == []


def test_no_package_imports_a_higher_layer():
    found = [line for pkg in LAYERS for path in sorted((ROOT / pkg).rglob("*.py"))
             for line in upward_imports(path, pkg)]
    assert found == [], "upward imports:\n" + "\n".join(found)


KNOWN_CYCLES = [
    {"twin.booked_list", "twin.scenario"},
    {"twin.booking", "twin.demand"},
    {"twin.model", "twin.restart"},
    {"ortwin.nowcast", "ortwin.nowcast_summary"},
    {"ortwin.compare", "ortwin.dataset", "ortwin.experiment", "ortwin.manifest"},
    {"ortwin.gate", "ortwin.gate_report"},
    {"ortwin.cli", "ortwin.cli_calibrate", "ortwin.cli_plan", "ortwin.cli_run", "ortwin.cli_vision"},
]
"""Import cycles inside packages still to be broken (issue 20); the list may only shrink."""


def import_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports (anywhere in the file)."""
    mods = {f"{pkg}.{p.stem}" if p.stem != "__init__" else pkg: p
            for pkg in LAYERS for p in (ROOT / pkg).glob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[m] |= {t for t in targets if t in mods and t != m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (each an import cycle)."""
    reach = {m: set() for m in graph}
    for m in graph:
        todo = list(graph[m])
        while todo:
            n = todo.pop()
            if n not in reach[m]:
                reach[m].add(n)
                todo.extend(graph[n])
    groups = {frozenset({m} | {n for n in reach[m] if m in reach[n]}) for m in graph}
    return [set(g) for g in groups if len(g) > 1]


def test_the_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_new_import_cycle():
    found = cycles(import_graph())
    new = [sorted(c) for c in found if not any(c <= known for known in KNOWN_CYCLES)]
    assert new == [], f"new import cycles: {new}"
