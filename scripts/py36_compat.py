#!/usr/bin/env python3
"""Make ``edge/`` and the on-device ``benchmarks/`` modules importable on Python 3.6 (JetPack 4.6) and 3.7
(Mendel), deterministically, and check that they stay so.

    python scripts/py36_compat.py            # rewrite the files in place, print what changed
    python scripts/py36_compat.py --check    # change nothing; exit 1 if a file needs the rewrite or uses
                                             # an API newer than Python 3.6 (CI: tests/test_py_compat.py)
    python scripts/py36_compat.py FILE ...   # only these files

The rewrite (idempotent: a second run changes nothing):
1. removes ``from __future__ import annotations`` (a SyntaxError before 3.7);
2. quotes every annotation that Python 3.6 would fail to evaluate when the ``def``/class body runs:
   PEP 604 unions (``int | None``), PEP 585 generics (``list[int]``, ``dict[str, X]``, collections.abc
   generics), and names not bound yet at that point (forward references such as a method returning its own
   class, names imported only under ``if TYPE_CHECKING:``). Annotations of local variables are never
   evaluated and are left alone; quoted annotations are fine for dataclass fields.

The check also reports calls of APIs newer than 3.6 that the rewrite cannot fix (list in ``NEWER_APIS``);
fix those by hand. Needs Python 3.9+ to run (``ast.unparse``); the rewritten code runs on 3.6+.
"""
import argparse
import ast
import builtins
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Set, Tuple

REPO = Path(__file__).resolve().parents[1]
HOST_ONLY_IMPORTS = ("train", "quantize", "tensorflow", "tf_keras", "tensorflow_model_optimization")
BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}
ABC_MODULES = {"collections", "collections.abc", "abc"}

# module.name (attribute of that module, or imported from it) or .method -> (first version, what instead)
NEWER_APIS = {
    "time.perf_counter_ns": ("3.7", "time.perf_counter() (rewritten automatically)"),
    "time.monotonic_ns": ("3.7", "time.monotonic() (rewritten automatically)"),
    "time.time_ns": ("3.7", "time.time() (rewritten automatically)"),
    "contextlib.nullcontext": ("3.7", "a small contextmanager"),
    "contextlib.asynccontextmanager": ("3.7", "a class with __aenter__/__aexit__"),
    "asyncio.run": ("3.7", "loop.run_until_complete"),
    "typing.get_origin": ("3.8", "getattr(tp, '__origin__', None)"),
    "typing.get_args": ("3.8", "getattr(tp, '__args__', ())"),
    "typing.Literal": ("3.8", "str"),
    "typing.Protocol": ("3.8", "an ABC or no annotation"),
    "typing.TypedDict": ("3.8", "Dict[str, Any]"),
    "typing.Final": ("3.8", "a plain annotation"),
    "functools.cached_property": ("3.8", "a property that stores its value"),
    "math.prod": ("3.8", "functools.reduce(operator.mul, ...)"),
    "math.isqrt": ("3.8", "int(math.sqrt(...))"),
    "shlex.join": ("3.8", "' '.join(shlex.quote(a) for a in args)"),
    "threading.get_native_id": ("3.8", "threading.get_ident()"),
    ".removeprefix": ("3.9", "s[len(p):] if s.startswith(p) else s"),
    ".removesuffix": ("3.9", "slicing"),
    ".fromisoformat": ("3.7", "datetime.strptime"),
    ".isascii": ("3.7", "all(ord(c) < 128 for c in s)"),
}
NS_CLOCKS = {"perf_counter_ns": "perf_counter", "monotonic_ns": "monotonic", "time_ns": "time"}
NEWER_KWARGS = {  # keyword argument -> (function names it is new for, version, instead)
    "capture_output": ({"run"}, "3.7", "stdout=subprocess.PIPE, stderr=subprocess.PIPE (rewritten automatically)"),
    "text": ({"run", "check_output", "Popen"}, "3.7", "universal_newlines=True (rewritten automatically)"),
    "slots": ({"dataclass"}, "3.10", "no slots"),
    "kw_only": ({"dataclass", "field"}, "3.10", "keyword defaults"),
    "strict": ({"zip"}, "3.10", "a length check"),
}
NEWER_MODULES = {"importlib.metadata": "3.8", "importlib.resources": "3.7", "contextvars": "3.7"}


# -- which files ---------------------------------------------------------------------------------------
def absolute_imports(tree: ast.AST):
    """(line, module) of every absolute import in a parsed module (relative ones are skipped)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def _imports_host_package(tree: ast.AST) -> bool:
    return any(n.split(".")[0] in HOST_ONLY_IMPORTS for _, n in absolute_imports(tree))


def target_files(repo: Path = REPO) -> List[Path]:
    """Every module of ``edge/``, and the ``benchmarks/`` modules that import no host package (those run on
    the device under edge-bench: timing, latency, measuring, reports)."""
    files = sorted((repo / "edge").rglob("*.py"))
    for p in sorted((repo / "benchmarks").glob("*.py")):
        if not _imports_host_package(ast.parse(p.read_text(encoding="utf-8"))):
            files.append(p)
    return files


# -- names bound at module level, in order -------------------------------------------------------------
def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
           (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _bound_by(stmt: ast.stmt) -> Set[str]:
    """Names a module-level statement binds at runtime (not the ones under ``if TYPE_CHECKING``)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    if isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
        return _bound_in(stmt.orelse)
    if isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
        names = _bound_in(list(stmt.body) + list(getattr(stmt, "orelse", [])) + list(getattr(stmt, "finalbody", [])))
        for h in getattr(stmt, "handlers", []):
            names |= _bound_in(h.body) | ({h.name} if h.name else set())
        for target in [getattr(stmt, "target", None)] + [i.optional_vars for i in getattr(stmt, "items", [])]:
            names |= _stored_names(target) if target is not None else set()
        return names
    return _stored_names(stmt)


def _bound_in(body: List[ast.stmt]) -> Set[str]:
    return set().union(*[_bound_by(s) for s in body]) if body else set()


def _stored_names(node: ast.AST) -> Set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _abc_names(tree: ast.Module) -> Set[str]:
    """Names imported from collections.abc (their ``X[...]`` needs 3.9)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ABC_MODULES:
            out |= {a.asname or a.name for a in node.names}
    return out


# -- which annotations ---------------------------------------------------------------------------------
def _needs_quotes(ann: ast.expr, bound: Set[str], abc: Set[str]) -> bool:
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        return False
    for node in ast.walk(ann):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return True
        if isinstance(node, ast.Subscript):
            base = node.value
            if isinstance(base, ast.Name) and (base.id in BUILTIN_GENERICS or base.id in abc):
                return True
            if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and \
                    base.value.id in ("abc", "collections"):
                return True
        if isinstance(node, ast.Name) and node.id not in bound and not hasattr(builtins, node.id):
            return True
    return False


def _signature_annotations(fn: ast.AST) -> Iterable[ast.expr]:
    a = fn.args
    for arg in list(getattr(a, "posonlyargs", [])) + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
        if arg is not None and arg.annotation is not None:
            yield arg.annotation
    if fn.returns is not None:
        yield fn.returns


def _evaluated_annotations(body: List[ast.stmt], in_function: bool = False) -> Iterable[ast.expr]:
    """Annotations Python evaluates at runtime: every def's signature, and variable annotations at module
    or class level (never those inside a function body)."""
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _signature_annotations(stmt)
            yield from _evaluated_annotations(stmt.body, in_function=True)
        elif isinstance(stmt, ast.ClassDef):
            yield from _evaluated_annotations(stmt.body, in_function=False)
        elif isinstance(stmt, ast.AnnAssign) and not in_function:
            yield stmt.annotation
        else:
            for field in ("body", "orelse", "finalbody"):
                sub = getattr(stmt, field, None)
                if isinstance(sub, list) and sub and isinstance(sub[0], ast.stmt):
                    yield from _evaluated_annotations(sub, in_function)
            for h in getattr(stmt, "handlers", []) or []:
                yield from _evaluated_annotations(h.body, in_function)


def annotations_to_quote(tree: ast.Module) -> List[ast.expr]:
    abc = _abc_names(tree)
    bound = set()  # type: Set[str]
    out = []
    for stmt in tree.body:
        for ann in _evaluated_annotations([stmt]):
            if _needs_quotes(ann, bound, abc):
                out.append(ann)
        bound |= _bound_by(stmt)
    return out


# -- rewriting -----------------------------------------------------------------------------------------
def _offsets(lines: List[str]) -> List[int]:
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line)
    return starts


def _char_pos(lines: List[str], starts: List[int], lineno: int, col_bytes: int) -> int:
    line = lines[lineno - 1]
    return starts[lineno - 1] + len(line.encode("utf-8")[:col_bytes].decode("utf-8"))


def _quoted(node: ast.expr) -> str:
    text = ast.unparse(node)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _future_edits(tree: ast.Module, lines: List[str]) -> List[Tuple[int, int, str]]:
    """(line index, line count, replacement) removing ``annotations`` from ``from __future__ import``."""
    edits = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__" and \
                any(a.name == "annotations" for a in node.names):
            rest = [a for a in node.names if a.name != "annotations"]
            first, count = node.lineno - 1, node.end_lineno - node.lineno + 1
            if rest:
                names = ", ".join(a.name + (" as " + a.asname if a.asname else "") for a in rest)
                edits.append((first, count, "from __future__ import {}\n".format(names)))
            else:
                blank_after = first + count < len(lines) and not lines[first + count].strip()
                blank_before = first == 0 or not lines[first - 1].strip() or lines[first - 1].rstrip().endswith('"""')
                edits.append((first, count + (1 if blank_after and blank_before else 0), ""))
    return edits


def _call_rewrites(tree: ast.Module) -> List[Tuple[ast.AST, str]]:
    """(node, replacement) for 3.7+ calls with an exact 3.6 spelling: ``time.monotonic_ns()`` ->
    ``int(time.monotonic() * 1e9)`` (same for perf_counter_ns/time_ns), ``text=X`` -> ``universal_newlines=X``
    and ``capture_output=True`` -> ``stdout=subprocess.PIPE, stderr=subprocess.PIPE`` in subprocess calls."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "time" and \
                f.attr in NS_CLOCKS and not node.args and not node.keywords:
            out.append((node, "int(time.{}() * 1e9)".format(NS_CLOCKS[f.attr])))
        if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "subprocess"):
            continue
        for kw in node.keywords:
            if kw.arg == "text" and f.attr in NEWER_KWARGS["text"][0]:
                out.append((kw, "universal_newlines=" + ast.unparse(kw.value)))
            elif kw.arg == "capture_output" and f.attr == "run" and \
                    isinstance(kw.value, ast.Constant) and kw.value.value is True:
                out.append((kw, "stdout=subprocess.PIPE, stderr=subprocess.PIPE"))
    return out


def _apply(source: str, edits: List[Tuple[ast.AST, str]]) -> str:
    """Replace each node's source span by its text, last first; a span inside an earlier-kept one is dropped."""
    lines = source.splitlines(keepends=True)
    starts = _offsets(lines)
    spans = []
    for node, new in edits:
        a = _char_pos(lines, starts, node.lineno, node.col_offset)
        b = _char_pos(lines, starts, node.end_lineno, node.end_col_offset)
        spans.append((a, b, new))
    text, floor = source, len(source) + 1
    for a, b, new in sorted(spans, reverse=True):
        if b <= floor:
            text, floor = text[:a] + new + text[b:], a
    return text


def transform(source: str) -> str:
    """The Python 3.6-safe version of a module's source (unchanged when it already is)."""
    tree = ast.parse(source)
    edits = [(ann, _quoted(ann)) for ann in annotations_to_quote(tree)] + _call_rewrites(tree)
    text = _apply(source, edits)
    lines = text.splitlines(keepends=True)
    for first, count, new in sorted(_future_edits(ast.parse(text), lines), reverse=True):
        lines[first:first + count] = [new] if new else []
    return "".join(lines)


# -- checking APIs -------------------------------------------------------------------------------------
def _api_name(node: ast.AST) -> str:
    """``module.attr`` for ``module.attr``, ``.attr`` for any other attribute, "" otherwise."""
    if not isinstance(node, ast.Attribute):
        return ""
    if isinstance(node.value, ast.Name) and node.value.id + "." + node.attr in NEWER_APIS:
        return node.value.id + "." + node.attr
    return "." + node.attr if "." + node.attr in NEWER_APIS else ""


def newer_api_uses(source: str, name: str = "<source>") -> List[str]:
    """``file:line: what`` for each use of an API newer than Python 3.6 (see NEWER_APIS/KWARGS/MODULES)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        hits = [_api_name(node)]
        if isinstance(node, ast.ImportFrom):
            hits = ["{}.{}".format(node.module, a.name) for a in node.names]
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for mod in modules:
            if mod in NEWER_MODULES:
                out.append("{}:{}: module {} is Python {}+".format(name, line, mod, NEWER_MODULES[mod]))
        for hit in hits:
            if hit in NEWER_APIS:
                version, instead = NEWER_APIS[hit]
                out.append("{}:{}: {} is Python {}+ (use {})".format(name, line, hit.lstrip("."), version, instead))
        if isinstance(node, ast.NamedExpr):
            out.append("{}:{}: ':=' is Python 3.8+".format(name, line))
        elif isinstance(node, ast.Call):
            out += _kwarg_uses(node, name)
    return sorted(set(out), key=lambda s: (s.split(":")[0], int(s.split(":")[1]), s))


def _kwarg_uses(call: ast.Call, name: str) -> List[str]:
    func = call.func
    fname = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    out = []
    for kw in call.keywords:
        spec = NEWER_KWARGS.get(kw.arg or "")
        if spec and fname in spec[0]:
            out.append("{}:{}: {}({}=...) is Python {}+ (use {})".format(
                name, call.lineno, fname, kw.arg, spec[1], spec[2]))
    return out


# -- command line --------------------------------------------------------------------------------------
def run(files: List[Path], check: bool, out=sys.stdout) -> int:
    changed, problems = [], []
    for path in files:
        source = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        new = transform(source)
        if new != source:
            changed.append(rel)
            if not check:
                path.write_text(new, encoding="utf-8")
        problems += newer_api_uses(source if check else new, rel)
    verb = "needs the rewrite" if check else "rewritten"
    for rel in changed:
        print("{}: {}".format(rel, verb), file=out)
    for p in problems:
        print(p + ("  [the rewrite fixes it]" if "rewritten automatically" in p else "  [fix by hand]"), file=out)
    print("py36_compat: {} file(s) checked, {} {}, {} API use(s) newer than 3.6".format(
        len(files), len(changed), verb, len(problems)), file=out)
    return 1 if problems or (check and changed) else 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("files", nargs="*", type=Path, help="files to process (default: edge/ + on-device benchmarks/)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 when something needs fixing")
    p.add_argument("--list", action="store_true", help="print the files it covers and exit")
    args = p.parse_args(argv)
    files = [f.resolve() for f in args.files] or target_files()
    if args.list:
        print("\n".join(str(f.relative_to(REPO)) for f in files))
        return 0
    return run(files, args.check)


if __name__ == "__main__":
    sys.exit(main())
