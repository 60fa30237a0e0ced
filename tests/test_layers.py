"""The package's layers point one way and no modules import each other.

The layer map and the import reader are in ``ci/import_graph.py`` (docs/ARCHITECTURE.md,
"Layers"); these tests assert that no import points up the layer order, that there is no
import circle in any layer, and check the checker on synthetic packages.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ci"))
from import_graph import PKG, import_circles, layer_of, module_name, upward_imports  # noqa: E402


def test_no_import_circle():
    circles = import_circles()
    assert not circles, "modules that import each other (move the shared piece to a module both import):\n" + \
        "\n".join(" <-> ".join(c) for c in circles)


def test_circle_checker_finds_circles(tmp_path):
    """The checker itself: a circle through a function-level import, and one through three
    modules, are found and named; a package importing its own submodule is not a circle."""
    pkg = tmp_path / "python" / "learnafe"
    (pkg / "ops").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "ops" / "__init__.py").write_text("from learnafe.ops.api import f\n")
    (pkg / "ops" / "api.py").write_text("from learnafe.ops import kernels\ndef f():\n    pass\n")
    (pkg / "ops" / "kernels.py").write_text("def g():\n    from learnafe.ops.api import f\n")
    (pkg / "a.py").write_text("import learnafe.b\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text("from learnafe import a\n")
    (pkg / "d.py").write_text("from learnafe import a\n")
    assert import_circles(pkg) == [["learnafe.a", "learnafe.b", "learnafe.c"],
                                   ["learnafe.ops.api", "learnafe.ops.kernels"]]


def test_every_module_has_a_layer():
    for path in PKG.rglob("*.py"):
        layer_of(module_name(path))  # raises KeyError naming the module


def test_no_import_points_up():
    bad = upward_imports()
    assert not bad, "imports that point up the layer order:\n" + "\n".join(bad)


def test_checker_sees_every_kind_of_import(tmp_path):
    """The checker itself: each way of importing an upper module is caught (and a
    downward import is not)."""
    pkg = tmp_path / "python" / "learnafe"
    (pkg / "training").mkdir(parents=True)
    (pkg / "spice").mkdir()
    for p in ("__init__.py", "training/__init__.py", "spice/__init__.py", "ops.py"):
        (pkg / p).write_text("")
    (pkg / "training" / "bad.py").write_text(
        "import importlib\n"
        "import learnafe.spice\n"                                   # 2
        "from learnafe import spice\n"                              # 3
        "def f():\n"
        "    from learnafe.spice import verify\n"                   # 5
        "    importlib.import_module('learnafe.spice.verify')\n"    # 6
        "    __import__('learnafe.spice')\n"                        # 7
        "    return importlib.import_module(f'learnafe.spice.{x}')\n"  # 8
        "from ..spice import verify\n"                              # 9
        "TRIAL = 'learnafe.spice.verify:verify_run'\n"              # 10
        "from learnafe import ops\n"                                # 11: down, fine
        "from . import bad\n"                                       # 12: same layer, fine
        "for m in ('learnafe.spice', 'learnafe.ops'):\n"             # 13
        "    importlib.import_module(m)\n")
    bad = upward_imports(pkg)
    lines = sorted(int(b.split(":")[1]) for b in bad)
    assert lines == [2, 3, 5, 6, 7, 8, 9, 10, 13], bad
    assert all("(layer training)" in b and "(layer spice/xylo/search)" in b for b in bad)


@pytest.mark.parametrize("module,layer", [("learnafe.circuits.dssf", "base"), ("learnafe.ops", "ops"),
                                          ("learnafe.spice.verify", "spice/xylo/search"),
                                          ("learnafe", "cli"), ("learnafe.cli", "cli")])
def test_layer_map(module, layer):
    assert layer_of(module)[1] == layer
