"""The type stubs (amctq/__init__.pyi) describe the functions that exist, with their parameters."""

import ast
import inspect
from pathlib import Path

import amctq

STUB = Path(amctq.__file__).with_name("__init__.pyi")


def _stub_signatures():
    out = {}
    tree = ast.parse(STUB.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.ClassDef):
            for f in node.body:
                if isinstance(f, ast.FunctionDef):
                    out.setdefault(f"{node.name}.{f.name}", []).append(f)
    return out


def _params(fn):
    a = fn.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    return [n for n in names if n != "self"], a.kwarg is not None


def test_every_public_name_is_in_the_stub():
    text = STUB.read_text()
    for name in amctq.__all__:
        assert f"def {name}(" in text or f"class {name}(" in text or f"class {name}:" in text, name


def test_stub_parameters_match_the_implementation():
    stubs = _stub_signatures()
    checked = 0
    for qualname, defs in stubs.items():
        obj = amctq
        for part in qualname.split("."):
            obj = inspect.getattr_static(obj, part)
        if isinstance(obj, property):  # Error.code
            continue
        sig = inspect.signature(obj)
        real = [n for n, p in sig.parameters.items() if p.kind != p.VAR_KEYWORD and n != "self"]
        real_kwargs = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
        for d in defs:  # every overload must list the same parameters
            names, kwargs = _params(d)
            assert (sorted(names), kwargs) == (sorted(real), real_kwargs), qualname
            checked += 1
    assert checked >= 10
