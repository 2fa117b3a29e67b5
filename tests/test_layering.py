"""The project's layers and sizes, read from the source (nothing is imported): models/ is the shared
layer, free of gRPC and of the layers above it; service/ (the gRPC edge) and training/ (offline) sit on
it, and the service never depends on training. No module of the three may import itself round a
circle, counting imports inside functions: a local import hides a circle from Python's import
machinery, not from whoever has to change the modules in it. And none is longer than MAX_MODULE_LINES,
no function than MAX_FUNCTION_LINES."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "service", "training")
GENERATED = ("service.pb",)  # built by `make proto`, not ours to layer
# Imports a layer may not make: (importer's package, prefix of the imported module).
FORBIDDEN = (
    ("models", "grpc"),
    ("models", "google.protobuf"),
    ("models", "service"),
    ("models", "training"),
    ("service", "training"),
)

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 100

Graph = dict[str, set[str]]


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of PACKAGES by its dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if not any(name == g or name.startswith(g + ".") for g in GENERATED):
                found[name] = path
    return found


def imported(name: str, path: Path) -> Iterator[str]:
    """The dotted names a module imports anywhere in it (inside functions too), relative ones resolved;
    for `from a import b`, both `a` and `a.b` (b may be a module)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def graph(root: Path = ROOT) -> tuple[Graph, dict[str, set[str]]]:
    """(each module -> the project modules it imports, each module -> every name it imports)."""
    known = modules(root)
    edges: Graph = {}
    names: dict[str, set[str]] = {}
    for name, path in known.items():
        names[name] = set(imported(name, path))
        edges[name] = set()
        for target in names[name]:
            while target and target not in known:  # `models.dispatch.route.run` is the module `...route`
                target = target.rpartition(".")[0]
            if target and target != name:
                edges[name].add(target)
    return edges, names


def cycles(edges: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def violations(names: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in names.items()
        for target in targets
        for layer, prefix in FORBIDDEN
        if module.split(".")[0] == layer and (target == prefix or target.startswith(prefix + "."))
    )


def too_long(root: Path = ROOT) -> list[str]:
    """Modules and functions (methods and nested functions too) over their limits."""
    found = []
    for name, path in modules(root).items():
        text = path.read_text()
        if (lines := len(text.splitlines())) > MAX_MODULE_LINES:
            found.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{name}.{node.name}: {length} lines")
    return found


def test_no_import_cycles() -> None:
    edges, _ = graph()
    assert len(edges) > 50  # the walk found the project
    assert cycles(edges) == []


def test_layers_import_only_downwards() -> None:
    _, names = graph()
    assert violations(names) == []


def test_modules_and_functions_stay_small() -> None:
    assert too_long() == []


def test_the_checks_see_a_local_import_circle_and_a_forbidden_import(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "service").mkdir()
    (tmp_path / "training").mkdir()
    for package in PACKAGES:
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "models" / "a.py").write_text("from models import b\n")
    (tmp_path / "models" / "b.py").write_text("def f():\n    from . import a\n")
    (tmp_path / "service" / "edge.py").write_text("import training.x\n")
    (tmp_path / "training" / "x.py").write_text("")
    edges, names = graph(tmp_path)
    assert cycles(edges) == [["models.a", "models.b"]]
    assert violations(names) == ["service.edge imports training.x"]
    (tmp_path / "training" / "x.py").write_text("def f():\n" + "    pass\n" * MAX_FUNCTION_LINES)
    assert too_long(tmp_path) == [f"training.x.f: {MAX_FUNCTION_LINES + 1} lines"]
