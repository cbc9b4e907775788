"""edge/ and the on-device benchmarks/ run on the boards' Pythons: 3.6 (JetPack 4.6), 3.7 (Mendel), 3.8.

- a guard: no ``from __future__ import annotations`` (a SyntaxError on 3.6) can come back into edge/;
- scripts/py36_compat.py finds nothing left to rewrite and no API newer than 3.6 (runs on this Python);
- the codemod's rules on small sources (and the result run by a real 3.6 interpreter when present);
- for each old interpreter under ~/.pyenv/versions: a venv with the base install, every module imported,
  every device config loaded, the ``minimal`` tests run (scripts/check_old_pythons.py; the venvs are cached
  in .cache/py-compat, so a rerun takes seconds; the first run downloads the wheels: about a minute each).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import py36_compat  # noqa: E402

FUTURE = "from __future__ import " + "annotations"
INNER = os.environ.get("EDGE_PY_COMPAT_INNER") == "1"  # running inside check_old_pythons' own pytest
needs_unparse = pytest.mark.skipif(sys.version_info < (3, 9), reason="the codemod needs ast.unparse (Python 3.9+)")


@pytest.mark.minimal
def test_no_future_annotations_in_device_code():
    offenders = [str(p.relative_to(REPO)) for p in py36_compat.target_files(REPO)
                 if FUTURE in p.read_text(encoding="utf-8")]
    assert not offenders, ("'{}' is a SyntaxError on Python 3.6 (JetPack 4.6); run "
                           "`python scripts/py36_compat.py` to remove it from: {}".format(FUTURE, offenders))


@pytest.mark.minimal
def test_device_code_list_covers_edge_and_benchmarks_timing():
    names = {str(p.relative_to(REPO)) for p in py36_compat.target_files(REPO)}
    assert {"edge/detect.py", "edge/config.py", "benchmarks/latency.py", "benchmarks/cli.py"} <= names
    assert "benchmarks/bench_data.py" not in names  # imports train: host only


@needs_unparse
def test_codemod_leaves_nothing_to_do():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "py36_compat.py"), "--check"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert r.returncode == 0, r.stdout


SAMPLE = '''"""doc"""
FUTURE_LINE

import subprocess
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional

if TYPE_CHECKING:
    from numpy import ndarray


@dataclass
class Box:
    items: list[int] = field(default_factory=list)
    size: Optional[int] = None
    other: "Box | None" = None
    limits: Dict[str, float] = field(default_factory=dict)

    def grow(self, by: int | float = 1) -> Box:
        local: dict[str, int] = {}
        return Box(self.items + [int(by)])

    def array(self) -> ndarray:
        raise NotImplementedError


def run(cmd: List[str]) -> tuple[int, str]:
    t = time.monotonic_ns()
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stdout + str(t > 0)
'''.replace("FUTURE_LINE", FUTURE)


@needs_unparse
def test_codemod_rules():
    out = py36_compat.transform(SAMPLE)
    assert FUTURE not in out
    assert 'items: "list[int]" = field' in out                 # PEP 585 in a dataclass field
    assert "size: Optional[int] = None" in out                 # already fine on 3.6: untouched
    assert 'other: "Box | None" = None' in out                 # already a string: untouched
    assert 'def grow(self, by: "int | float" = 1) -> "Box":' in out   # PEP 604, forward reference
    assert "local: dict[str, int] = {}" in out                 # local annotation: never evaluated
    assert 'def array(self) -> "ndarray":' in out              # only imported under TYPE_CHECKING
    assert 'def run(cmd: List[str]) -> "tuple[int, str]":' in out
    assert "int(time.monotonic() * 1e9)" in out
    assert "stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True" in out
    assert py36_compat.transform(out) == out                   # idempotent
    assert py36_compat.newer_api_uses(out) == []
    assert len(py36_compat.newer_api_uses(SAMPLE)) == 3


@needs_unparse
def test_newer_apis_are_reported():
    src = ("import math, contextlib\nfrom typing import Literal\nx = math.prod([1])\n"
           "y = 'ab'.removeprefix('a')\nif (n := 3): pass\nimport numpy as np\nz = np.prod([1])\n")
    found = py36_compat.newer_api_uses(src, "m.py")
    assert [f.split(":")[1] for f in found] == ["2", "3", "4", "5"], found
    assert "typing.Literal is Python 3.8+" in found[0] and "math.prod" in found[1]


@pytest.mark.skipif(INNER, reason="already running inside the old-Python check")
@pytest.mark.parametrize("version", ["3.6.15", "3.7.16", "3.8.18"])
def test_base_install_on_old_python(version):
    import check_old_pythons as cop

    py = cop.interpreter(version)
    if py is None:
        pytest.skip("Python {} not installed under ~/.pyenv/versions".format(version))
    cop.CACHE.mkdir(parents=True, exist_ok=True)
    log = cop.CACHE / "py{}.log".format(version)
    log.write_text("")
    lines = cop.check(py, log)
    print("\n".join(lines))
    assert any(l.startswith("imported ") and "coral-pcie" in l for l in lines), lines
    assert any("pytest -m minimal:" in l and " passed" in l and "failed" not in l for l in lines), lines


@needs_unparse
def test_codemod_output_runs_on_python36(tmp_path):
    """Runs after test_base_install_on_old_python: uses its cached 3.6 venv (bare 3.6 has no dataclasses)."""
    venvs = sorted((REPO / ".cache" / "py-compat").glob("py3.6.15-*/bin/python"))
    if not venvs:
        pytest.skip("no Python 3.6 venv in .cache/py-compat (made by test_base_install_on_old_python[3.6.15])")
    py36 = venvs[-1]
    src = tmp_path / "sample.py"
    src.write_text(py36_compat.transform(SAMPLE) + "\nprint(Box().grow(2).items, run(['true'])[0])\n")
    r = subprocess.run([str(py36), str(src)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    assert r.returncode == 0 and r.stdout.strip() == "[2] 0", r.stdout
    src.write_text(SAMPLE)
    r = subprocess.run([str(py36), str(src)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    assert r.returncode != 0 and "SyntaxError" in r.stdout   # what JetPack 4.6 says about the original
