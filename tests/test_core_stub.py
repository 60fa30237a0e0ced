"""python/learnafe/_core.pyi against the compiled module: the same functions, each with
the same parameters in the same order and the same ones with defaults."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

core = pytest.importorskip("learnafe._core")

STUB = Path(__file__).resolve().parents[1] / "python" / "learnafe" / "_core.pyi"


def _split_top_level(text: str) -> list[str]:
    """Split a pybind11 parameter list at the commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:])
    return [p.strip() for p in parts]


def _module_signature(name: str) -> list[tuple[str, bool]]:
    """(parameter name, has default) of a compiled function, from its pybind11 signature;
    unnamed parameters (``arg0``, ``arg1``, ...) as ``None``."""
    first = getattr(core, name).__doc__.strip().splitlines()[0]
    match = re.fullmatch(rf"{name}\((.*)\) -> .*", first)
    assert match, f"no signature line in the docstring of _core.{name}: {first!r}"
    params = []
    for part in _split_top_level(match.group(1)):
        pname = part.split(":", 1)[0].strip()
        params.append((None if re.fullmatch(r"arg\d+", pname) else pname, "=" in part.split(":", 1)[1]))
    return params


def _stub_signatures() -> dict[str, list[tuple[str | None, bool]]]:
    tree = ast.parse(STUB.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = node.args
            positional = args.posonlyargs + args.args
            n_default = len(args.defaults)
            params = []
            for i, arg in enumerate(positional):
                has_default = i >= len(positional) - n_default
                # positional-only parameters stand for the module's unnamed ones
                params.append((None if arg in args.posonlyargs else arg.arg, has_default))
            out[node.name] = params
    return out


def _module_functions() -> set[str]:
    return {n for n in dir(core) if not n.startswith("_") and callable(getattr(core, n))}


def test_stub_lists_every_function_of_the_module():
    stub = set(_stub_signatures())
    module = _module_functions()
    assert stub == module, (f"only in _core: {sorted(module - stub)}; "
                            f"only in _core.pyi: {sorted(stub - module)}")


@pytest.mark.parametrize("name", sorted(_module_functions()))
def test_stub_parameters_match_the_module(name):
    stub = _stub_signatures()
    assert name in stub, f"_core.{name} is missing from _core.pyi"
    assert stub[name] == _module_signature(name), f"parameters of _core.{name} differ from _core.pyi"


def test_signature_parser_sees_a_difference():
    """The comparison is not vacuous: a renamed or a dropped parameter is a difference."""
    real = _module_signature("biquad_forward_f32")
    assert ("x", False) in real and ("checkpoints", True) in real
    assert [("y" if p == "x" else p, d) for p, d in real] != real
    assert real[:-1] != real
