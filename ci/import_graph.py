"""The layer map and the import graph of ``python/learnafe`` (docs/ARCHITECTURE.md, "Layers").

Every import of a ``learnafe`` module anywhere in the package -- at the top of a
file, inside a function, relative (``from . import x``), through
``importlib.import_module("learnafe...")`` / ``__import__("learnafe...")`` with a
constant (or f-string with a constant ``learnafe.<package>`` prefix) name, or a
``"learnafe.module:function"`` reference string that code imports by name -- is read
with :mod:`ast`.  :func:`upward_imports` lists those that point up the layer order;
:func:`import_circles` lists the groups of modules that import each other (every
import counts; a package's ``__init__`` importing its own submodules is not an edge
back).  ``tests/test_layers.py`` asserts both lists are empty, and
``ci/structure_counts.py`` counts the circles.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "python" / "learnafe"

#: Bottom to top; a module may import its own layer and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("circuits", "data", "models", "_core", "_jsonio", "_migrate", "gate", "_tracing", "_progress")),
    ("ops", ("ops",)),
    ("frontends", ("frontends",)),
    ("training", ("training",)),
    ("spice/xylo/search", ("spice", "xylo", "search")),
    ("benchmarks/reporting/demo", ("benchmarks", "reporting", "demo")),
    ("commands", ("commands",)),
    ("cli", ("cli", "__main__", "__init__")),
]
_RANK = {part: (i, name) for i, (name, parts) in enumerate(LAYERS) for part in parts}
_REF = re.compile(r"^(learnafe(?:\.[A-Za-z_][A-Za-z0-9_]*)+):[A-Za-z_][A-Za-z0-9_.]*$")
_NAME = re.compile(r"^learnafe(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")


def module_name(path: Path, root: Path = PKG) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1 and parts != ["learnafe", "__init__"]:
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> tuple[int, str]:
    """``(rank, layer name)`` of a dotted ``learnafe`` module name."""
    parts = module.split(".")
    if parts[0] != "learnafe":
        raise ValueError(module)
    key = parts[1] if len(parts) > 1 else "__init__"
    if key not in _RANK:
        raise KeyError(f"learnafe.{key} is in no layer; add it to LAYERS here and to "
                       "docs/ARCHITECTURE.md")
    return _RANK[key]


def _is_package_child(name: str, root: Path) -> bool:
    """True if ``learnafe.<name>`` is a module or package (not an attribute of learnafe);
    the compiled ``_core`` counts even before it is built."""
    return name in _RANK or (root / f"{name}.py").is_file() or (root / name / "__init__.py").is_file() or \
        any(root.glob(f"{name}.*.so"))


def _const_prefix(node) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        head = str(node.values[0].value)
        # only the complete dotted components before the first placeholder count
        return head.rsplit(".", 1)[0] if "." in head else None
    return None


def imports_of(path: Path, root: Path = PKG) -> list[tuple[int, str, str]]:
    """``(line, imported learnafe module, how)`` for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found, names, dynamic = [], [], False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "learnafe":
                    found.append((node.lineno, a.name, "import"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[:-(node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
                how = "relative import"
            else:
                mod, how = node.module or "", "from-import"
            if mod.split(".")[0] != "learnafe":
                continue
            if mod == "learnafe":  # `from learnafe import ops` imports the submodule
                for a in node.names:
                    found.append((node.lineno, f"learnafe.{a.name}" if _is_package_child(a.name, root)
                                  else "learnafe", how))
            else:
                found.append((node.lineno, mod, how))
        elif isinstance(node, ast.Call) and node.args:
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                target = _const_prefix(node.args[0])
                if target and target.split(".")[0] == "learnafe":
                    found.append((node.lineno, target, f"{name}()"))
                elif not isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
                    dynamic = True
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = _REF.match(node.value)
            if m:
                found.append((node.lineno, m.group(1), "'module:function' reference"))
            elif _NAME.match(node.value) and _is_package_child(node.value.split(".")[1], root):
                names.append((node.lineno, node.value, "name given to a computed import"))
    # A file that imports by a computed name: every learnafe module name it spells is
    # a candidate for that import.
    seen, out = set(), []
    for line, target, how in found + (names if dynamic else []):
        if (line, target) not in seen:
            seen.add((line, target))
            out.append((line, target, how))
    return out


def upward_imports(root: Path = PKG) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        me = module_name(path, root)
        my_rank, my_layer = layer_of(me)
        for line, target, how in imports_of(path, root):
            rank, layer = layer_of(target)
            if rank > my_rank:
                bad.append(f"{path.relative_to(root.parent.parent)}:{line}: {me} (layer {my_layer}) "
                           f"imports {target} (layer {layer}) by {how}; a lower layer must not "
                           "import an upper one -- register the upper module with the lower one")
    return bad


def _module_files(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def import_graph(root: Path = PKG) -> dict[str, set[str]]:
    """``module -> modules it imports`` (existing ``learnafe`` modules; ``from pkg import sub``
    points to ``pkg.sub`` when that is a module, and to ``pkg``)."""
    modules = _module_files(root)

    def existing(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for me, path in modules.items():
        edges = graph.setdefault(me, set())
        package = me if path.name == "__init__.py" else me.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for t in targets:
                if t.split(".")[0] != "learnafe":
                    continue
                t = existing(t)
                own_child = path.name == "__init__.py" and t is not None and t.startswith(me + ".")
                if t and t != me and not own_child:
                    edges.add(t)
        for _, t, _how in imports_of(path, root):  # importlib calls and "module:function" references
            t = existing(t)
            if t and t != me and not (path.name == "__init__.py" and t.startswith(me + ".")):
                edges.add(t)
    return graph


def import_circles(root: Path = PKG) -> list[list[str]]:
    """The strongly connected groups of more than one module in :func:`import_graph` (Tarjan)."""
    graph = import_graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles
