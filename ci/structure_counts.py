#!/usr/bin/env python3
"""Structure counts of the source tree: the figures a reviewer checks for a kept library.

Prints (and with ``--json`` writes) for ``python/learnafe`` and ``cpp``:

- files over 500 lines (Python and C++);
- Python functions over 80 lines, and with more than 10 parameters;
- import circles between ``learnafe`` modules (top-level and function-level imports);
- imports inside functions;
- module docstring lines.

Usage: ``python ci/structure_counts.py [--json OUT]`` from the repository root.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from import_graph import import_circles

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "python" / "learnafe"


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="also write the counts to this JSON file")
    args = ap.parse_args()

    py_files = sorted(PKG.rglob("*.py"))
    cpp_files = sorted(p for p in (ROOT / "cpp").rglob("*") if p.suffix in {".cpp", ".h", ".hpp"})
    modules = {module_name(p): p for p in py_files}

    long_files = []
    for p in py_files + cpp_files:
        n = len(p.read_text().splitlines())
        if n > 500:
            long_files.append((str(p.relative_to(ROOT)), n))

    long_funcs, many_params, inner_imports, doc_lines = [], [], 0, 0
    for p in modules.values():
        tree = ast.parse(p.read_text())
        doc = ast.get_docstring(tree, clean=False)
        if doc:
            doc_lines += len(doc.splitlines())

        def visit(node, in_func=False, p=p):
            nonlocal inner_imports
            for child in ast.iter_child_nodes(node):
                f = in_func
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = child.end_lineno - child.lineno + 1
                    a = child.args
                    nparams = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
                    nparams -= sum(1 for x in a.args[:1] if x.arg in ("self", "cls"))
                    where = f"{p.relative_to(ROOT)}:{child.lineno} {child.name}"
                    if length > 80:
                        long_funcs.append((where, length))
                    if nparams > 10:
                        many_params.append((where, nparams))
                    f = True
                if isinstance(child, (ast.Import, ast.ImportFrom)) and in_func:
                    inner_imports += 1
                visit(child, f)

        visit(tree)

    sccs = import_circles(PKG)

    counts = {
        "files_over_500_lines": len(long_files),
        "functions_over_80_lines": len(long_funcs),
        "functions_over_10_parameters": len(many_params),
        "import_circles": len(sccs),
        "imports_inside_functions": inner_imports,
        "module_docstring_lines": doc_lines,
    }
    for k, v in counts.items():
        print(f"{k:32s} {v}")
    for title, rows in (("files over 500 lines", long_files), ("functions over 80 lines", long_funcs),
                        ("functions over 10 parameters", many_params)):
        for where, n in rows:
            print(f"  {title}: {where} ({n})")
    for comp in sccs:
        print("  circle: " + " <-> ".join(comp))
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": counts, "long_files": long_files,
                                               "long_functions": long_funcs, "many_parameters": many_params,
                                               "circles": sccs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
