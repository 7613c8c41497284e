"""The layout keeps its plan: imports point down the layers, never round in a circle (read with ast, nothing imported).

The layers, from the top: ``__main__`` -> ``gui`` | ``cli`` -> ``app`` -> ``services`` ->
``engine`` -> ``store`` -> ``limits`` -> ``config`` -> ``audio``/``export``/``reports`` -> the
domain (``jobs``, ``records``, ``errors`` and the small helpers). docs/architecture.md explains them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "transcriber"

# Layer of each top-level module or subpackage of transcriber/ (higher may import lower).
LAYERS = {
    "__init__": 0,
    "errors": 1,
    "jobs": 2, "records": 2, "timefmt": 2, "display": 2, "languages": 2, "filelock": 2, "background": 2,
    "audio": 3, "export": 3, "reports": 3,
    "config": 4, "paths": 4,
    "limits": 5,
    "store": 6,
    "engine": 7,
    "services": 8,
    "scaleout": 8,
    "app": 9, "selftest": 9,
    "cli": 10, "gui": 10,
    "__main__": 11,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The transcriber modules ``path`` imports, anywhere in the file (lazy imports too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "transcriber"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "transcriber":
                continue
            for alias in node.names:  # `from . import estimates` names a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
    return {module for module in found if module != name}


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return found


def layer_of(module: str) -> tuple[str, int]:
    top = module.split(".")[1] if "." in module else "__init__"
    assert top in LAYERS, f"{module} is on no layer: add it to LAYERS and to docs/architecture.md"
    return top, LAYERS[top]


def graph() -> dict[str, set[str]]:
    edges = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        edges[module_name(path)] |= imports_of(path)
    return edges


def test_every_import_points_down_the_layers():
    wrong = []
    for module, targets in graph().items():
        top, layer = layer_of(module)
        for target in targets:
            target_top, target_layer = layer_of(target)
            if target_layer > layer or (target_layer == layer and target_top != top):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_circle():
    edges = graph()
    state: dict[str, int] = {}  # 1 = on the path being walked, 2 = done
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_qt_only_in_the_window():
    """The engine, store, services and command line run without Qt (a worker machine installs none)."""
    offenders = [
        module_name(path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if layer_of(module_name(path))[0] != "gui" and any(name.startswith("PySide6") for name in third_party_imports(path))
    ]
    assert not offenders


def test_the_window_never_imports_the_command_line():
    offenders = [f"{module} -> {target}" for module, targets in graph().items() if module.startswith("transcriber.gui")
                 for target in targets if target.startswith("transcriber.cli")]
    assert not offenders


def test_the_checker_sees_an_import_against_the_layers(tmp_path):
    """A check that cannot fail is no check: a store module importing the engine is caught."""
    source = tmp_path / "probe.py"
    source.write_text("from ..engine.core import Engine\nfrom . import db\n")
    fake = PACKAGE / "store" / "probe_for_test.py"
    fake.write_text(source.read_text())
    try:
        targets = imports_of(fake)
        assert targets == {"transcriber.engine.core", "transcriber.store.db"}
        assert layer_of("transcriber.engine.core")[1] > layer_of(module_name(fake))[1]
    finally:
        fake.unlink()
