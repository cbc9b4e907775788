"""The code-shape rule of issue 9: no function over 80 lines in quantize/ or edge/runner.py.

Measured with ``ast`` (a function's ``end_lineno - lineno + 1``: decorators excluded, docstring and
nested functions included), so the rule stays true as the code changes."""
import ast
from pathlib import Path
from typing import List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 80
COVERED = sorted((REPO / "quantize").glob("*.py")) + [REPO / "edge" / "runner.py"]


def long_functions(source: str, limit: int = MAX_LINES) -> List[Tuple[str, int, int]]:
    """(qualified name, first line, length) of every function or method longer than ``limit`` lines."""
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    n = child.end_lineno - child.lineno + 1
                    if n > limit:
                        out.append((name, child.lineno, n))
                walk(child, name + ".")
            else:
                walk(child, prefix)
    walk(ast.parse(source), "")
    return out


def test_the_measure_sees_long_functions_methods_and_nested_ones():
    body = "\n".join("    x = {}".format(i) for i in range(81))
    src = ("def short():\n    return 1\n\n"
           "def long():\n" + body + "\n\n"
           "class K:\n    def method(self):\n" + body.replace("    ", "        ") + "\n\n"
           "def outer():\n    def inner():\n" + body.replace("    ", "        ") + "\n    return inner\n")
    got = {name: n for name, _, n in long_functions(src)}
    assert got == {"long": 82, "K.method": 82, "outer": 84, "outer.inner": 82}
    assert long_functions("def f():\n" + "\n".join("    x = 1" for _ in range(79))) == []   # 80 lines: ok


@pytest.mark.parametrize("path", COVERED, ids=lambda p: str(p.relative_to(REPO)))
def test_no_function_over_80_lines(path):
    found = long_functions(path.read_text(encoding="utf-8"))
    assert not found, "{}: split these (issue 9: no function over {} lines): {}".format(
        path.relative_to(REPO), MAX_LINES, ", ".join("{} (line {}, {} lines)".format(*f) for f in found))
