"""The package's layout (ARCHITECTURE.md): no module over 500 lines, the layers import one way
only (lower layers never import higher ones), and no module imports a private name from another
package. Imports are read with ``ast``, including those inside functions."""

import ast
import pathlib

import pytest

import noether_ppl

PACKAGE = pathlib.Path(noether_ppl.__file__).parent
MAX_LINES = 500

LAYERS = [
    ("_io", "provenance", "geometry", "nn", "integrators", "distributions", "precision",
     "pointwise", "symmetrize", "compilation_cache"),
    ("data", "systems"),
    ("models",),
    ("inference",),
    ("analysis",),
    ("runs",),
    ("experiments",),
    ("cli", "demo"),
]
"""Bottom to top: a module may import its own layer and the layers below it."""


def _modules():
    """``(module name, is a package, path)`` of every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        yield ".".join(parts), is_package, path


def _imports(module: str, is_package: bool, path) -> list[tuple[str, str | None]]:
    """``(absolute module, imported name or None)`` for every import of the module."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            found += [(target, alias.name) for alias in node.names]
    return found


def _package_imports():
    """``(importer, imported module)`` within noether_ppl; ``from pkg import sub`` counts as an
    import of ``pkg.sub``, and the root package's dunders (``__version__``) are left out."""
    for module, is_package, path in _modules():
        for target, name in _imports(module, is_package, path):
            if target != "noether_ppl" and not target.startswith("noether_ppl."):
                continue
            if target == "noether_ppl":
                if name is None or name.startswith("__"):
                    continue
                target = f"noether_ppl.{name}"
            yield module, target


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else None
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} is in no layer of LAYERS (tests/test_layout.py); add it "
                         f"there and to ARCHITECTURE.md.")


def test_no_module_is_longer_than_500_lines():
    long = {module: n for module, _, path in _modules()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them along a seam): {long}"


def test_every_module_is_in_a_layer():
    for module, _, _ in _modules():
        if module != "noether_ppl":
            _layer(module)


@pytest.mark.parametrize("lower, higher", [("inference", "analysis"), ("runs", "experiments"),
                                           ("analysis", "runs"), ("models", "inference")])
def test_a_lower_layer_does_not_import_a_higher_one(lower, higher):
    wrong = [(m, t) for m, t in _package_imports()
             if m.startswith(f"noether_ppl.{lower}") and (
                 t == f"noether_ppl.{higher}" or t.startswith(f"noether_ppl.{higher}."))]
    assert not wrong, f"{lower} imports {higher}: {wrong}"


def test_the_layers_point_one_way():
    wrong = [(m, t) for m, t in _package_imports()
             if m != "noether_ppl" and _layer(t) > _layer(m)]
    assert not wrong, f"imports of a higher layer (see LAYERS): {wrong}"


def test_no_private_name_is_imported_from_another_package():
    packages = {module for module, is_package, _ in _modules() if is_package}
    wrong = []
    for module, is_package, path in _modules():
        own = module if is_package else module.rsplit(".", 1)[0]
        for target, name in _imports(module, is_package, path):
            if not target.startswith("noether_ppl") or name is None:
                continue
            if not name.startswith("_") or name.startswith("__"):
                continue
            home = target if target in packages else target.rsplit(".", 1)[0]
            if home != own:
                wrong.append(f"{module}: from {target} import {name}")
    assert not wrong, ("private names imported across packages (make them public in the lower "
                       f"layer): {wrong}")


def test_the_checker_sees_imports_inside_functions(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from ..experiments.config import _x\n")
    assert ("noether_ppl.experiments.config", "_x") in _imports("noether_ppl.runs.m", False,
                                                                path)
