"""The package's structure: layers without import cycles, one way to the store, GigQ's
module paths, small modules. The import graph counts imports inside functions; only
``if TYPE_CHECKING:`` imports are exempt. docs/architecture.md describes these rules."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import networkx as nx
import pytest

import gigq_flow

PACKAGE = Path(gigq_flow.__file__).parent
MAX_LINES = 500

# Bottom to top: a module imports modules of its own layer (without cycles) or below.
LAYERS = (
    ("base", ("errors", "checks", "locations", "logs", "serialization", "shipping", "job_status",
              "job", "gc_pause", "clock")),
    ("store", ("store",)),
    ("data", ("results", "snapshot", "codec", "decorators")),
    ("viz", ("viz",)),
    ("handles", ("run", "job_queue", "worker", "migrate", "db_utils", "fingerprint", "step_cache",
                 "mapping",
                 "output", "current", "loader", "step_process", "claim_batch",
                 "held")),
    ("workflow", ("workflow",)),
    ("top", ("demo", "cli", "mcp", "__main__", "")),
)
# The modules that may import the store: those that hold one, and the codec of its rows.
STORE_USERS = {"codec", "run", "job_queue", "worker", "step_cache", "migrate", "db_utils",
               "loader", "mapping"}


def module_names() -> dict[str, Path]:
    """Dotted names inside the package ("" for gigq_flow itself) -> file."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, outside ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imported_modules(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports at run time."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates: list[tuple[str, str | None]] = [(a.name, None) for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = ["gigq_flow", *(package.split(".") if package else [])]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            candidates = [(base, alias.name) for alias in node.names]
        for base, attribute in candidates:
            if base != "gigq_flow" and not base.startswith("gigq_flow."):
                continue
            inner = base.removeprefix("gigq_flow").lstrip(".")
            submodule = f"{inner}.{attribute}".lstrip(".") if attribute else None
            if submodule in MODULES:  # from gigq_flow.store import sqlite
                targets.add(submodule)
            elif inner in MODULES:
                targets.add(inner)
    targets.discard(name)
    return targets


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for name, path in MODULES.items():
        graph.add_node(name)
        graph.add_edges_from((name, target) for target in imported_modules(name, path))
    return graph


def layer_of(name: str) -> int:
    for rank, (_, roots) in enumerate(LAYERS):
        if any(name == root or (root and name.startswith(root + ".")) for root in roots):
            return rank
    raise AssertionError(f"module gigq_flow.{name} is in no layer; add it to LAYERS and "
                         "to docs/architecture.md")


def test_the_import_graph_sees_imports_inside_functions():
    assert "viz.draw" in imported_modules("run", MODULES["run"])  # imported in visualize()
    assert "store.postgres" in imported_modules("store", MODULES["store"])


def test_the_package_imports_have_no_cycle():
    graph = import_graph()
    cycles = list(nx.simple_cycles(graph))
    assert cycles == [], f"import cycles: {cycles}"


def test_each_module_imports_only_its_layer_and_below():
    wrong = [
        f"gigq_flow.{name} ({LAYERS[layer_of(name)][0]}) imports gigq_flow.{target} "
        f"({LAYERS[layer_of(target)][0]})"
        for name, target in import_graph().edges
        if layer_of(target) > layer_of(name)
    ]
    assert wrong == []


def test_only_the_core_imports_the_store():
    users = {name for name, target in import_graph().edges
             if target.split(".")[0] == "store" and name.split(".")[0] != "store"}
    assert users <= STORE_USERS, f"outside the core: {sorted(users - STORE_USERS)}"


@pytest.mark.parametrize("folder", ["viz", "cli", "mcp"])
def test_views_and_commands_never_reach_a_store_attribute(folder):
    reaching = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr in ("store", "_store")
    ]
    assert reaching == []


def test_no_module_is_over_the_size_limit():
    long = {name or "__init__": n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize(("module", "names"), [
    ("gigq_flow.job_queue", ["JobQueue"]),
    ("gigq_flow.decorators", ["task", "TaskWrapper"]),
    ("gigq_flow.job_status", ["JobStatus"]),
    ("gigq_flow.db_utils", ["get_connection", "close_connection", "close_connections"]),
    ("gigq_flow.job", ["Job"]),
    ("gigq_flow.worker", ["Worker"]),
    ("gigq_flow.workflow", ["Workflow"]),
])
def test_gigqs_module_paths_import(module, names):
    imported = importlib.import_module(module)
    for name in names:
        assert getattr(imported, name) is not None
    top = {"JobQueue", "task", "JobStatus", "close_connections", "Job", "Worker", "Workflow"}
    for name in set(names) & top:
        assert getattr(imported, name) is getattr(gigq_flow, name)  # one object, two paths


def test_the_public_surface_is_sorted_and_complete():
    assert gigq_flow.__all__ == sorted(gigq_flow.__all__)
    for name in gigq_flow.__all__:
        assert hasattr(gigq_flow, name)
