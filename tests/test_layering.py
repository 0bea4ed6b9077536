"""Layers point down: nothing under utils/ or arguments/ imports scene/, gaussian_renderer/,
training/ or viewer/ (including imports inside functions), so the lowest layers can be used and
tested alone."""
import ast
from pathlib import Path

import pytest
from conftest import REPO

LOWER_LAYERS = ("utils", "arguments")
HIGHER_LAYERS = ("scene", "gaussian_renderer", "training", "viewer")


def imported_modules(path: Path, package: str):
    """(line, absolute module name) of every import in the file; relative imports are resolved
    against `package`."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield node.lineno, ".".join(base + ([node.module] if node.module else []))
            else:
                yield node.lineno, node.module


def upward_imports(root: Path):
    found = []
    for layer in LOWER_LAYERS:
        for path in sorted((root / layer).rglob("*.py")):
            package = ".".join(path.relative_to(root).parent.parts)
            for line, module in imported_modules(path, package):
                if module.split(".")[0] in HIGHER_LAYERS:
                    found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def test_lower_layers_never_import_higher_ones():
    assert upward_imports(REPO) == []


@pytest.mark.parametrize("statement", ["from scene.cameras import Camera",
                                       "import gaussian_renderer",
                                       "def f():\n    from ..scene import Scene"])
def test_the_check_finds_an_upward_import(tmp_path, statement):
    for layer in LOWER_LAYERS + HIGHER_LAYERS:
        (tmp_path / layer).mkdir()
    (tmp_path / "utils" / "bad.py").write_text(statement + "\n")
    assert len(upward_imports(tmp_path)) == 1
