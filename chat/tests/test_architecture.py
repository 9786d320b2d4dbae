"""The shape of the code: the import graph of the project's modules has no cycle.

A cycle, even one hidden behind an import inside a function, means two
modules each need the other, so neither can be read, tested or changed
alone. The graph counts every import of a project module, at module level or
inside a function, except those under ``if TYPE_CHECKING:`` and those in an
AppConfig's ``ready()`` (Django's place for registering signal handlers).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("chat", "api", "config", "people")


def project_modules() -> dict[str, Path]:
    """Dotted name -> file, for the project's code (tests and migrations left out)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


class Imports(ast.NodeVisitor):
    """Collects the project modules one file imports."""

    def __init__(self, modules: dict[str, Path]) -> None:
        self.modules = modules
        self.found: set[str] = set()

    def add(self, name: str) -> None:
        while name and name not in self.modules:  # chat.models.Room -> chat.models
            name = name.rpartition(".")[0]
        if name:
            self.found.add(name)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            for alias in node.names:
                self.add(f"{node.module}.{alias.name}")

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" in ast.unparse(node.test):
            self.generic_visit(ast.Module(body=node.orelse, type_ignores=[]))
            return
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name == "ready":  # AppConfig.ready: signal registration
            return
        self.generic_visit(node)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        visitor = Imports(modules)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        graph[name] = visitor.found - {name}
    return graph


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "chat.models" in graph["chat.selectors"]
    assert graph["chat.routing"] == {"chat.conf", "chat.consumers"}


def test_no_import_cycle():
    try:
        order = list(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None
    assert order
