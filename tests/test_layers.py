"""The package's layers (docs/design.md, "Layout"): no import circle, the core names no method and imports
neither a method nor the data side, the data side imports no method. Read from the source, nothing run."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mer_jax"
# Names of the method families and their models: none may appear in a core module's code.
METHOD_NAMES = ("rcn", "strcn", "six_regions", "roi_cnn", "roi_lstm", "tlcnn", "heat_mask", "region_label")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `path` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mer_jax"):
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                     for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known and name != "mer_jax":
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_no_import_circle():
    edges, state, circles = graph(), {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not circles, circles


@pytest.mark.parametrize("layer, forbidden", [
    ("mer_jax.core", ("mer_jax.methods", "mer_jax.data", "mer_jax.train", "mer_jax.method", "mer_jax.cli")),
    ("mer_jax.data", ("mer_jax.methods", "mer_jax.train", "mer_jax.method")),
])
def test_a_layer_imports_nothing_above_it(layer, forbidden):
    crossing = {name: sorted(t for t in targets if t.startswith(forbidden))
                for name, targets in graph().items() if name.startswith(layer)}
    assert not {name: t for name, t in crossing.items() if t}


def code_names(path: Path) -> set[str]:
    """Every identifier and string constant in `path`'s code, docstrings and comments left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            names.add(node.value)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def test_no_core_module_names_a_method():
    named = {}
    for name, path in modules().items():
        if name.startswith("mer_jax.core"):
            hits = sorted(n for n in code_names(path) if any(m in n.lower() for m in METHOD_NAMES))
            if hits:
                named[name] = hits
    assert not named, named
