#!/usr/bin/env python3
"""Prove the base install works on the boards' Pythons: 3.6 (JetPack 4.6), 3.7 (Mendel), 3.8 (JetPack 5).

For each interpreter found under ``~/.pyenv/versions`` (or given with --python):
  1. a venv with the base dependencies of pyproject.toml (+ pytest), cached in ``.cache/py-compat/`` and keyed
     by the interpreter and the requirement lines, so a rerun only re-checks;
  2. ``pip install --no-deps .`` of this checkout into it (the real build: Requires-Python, build backend);
  3. every ``edge`` module and every on-device ``benchmarks`` module imported from that install, every device
     config loaded from the installed share/edge-action/device_configs;
  4. the tests marked ``minimal`` (numpy/PyYAML only) run with that interpreter.

    python scripts/check_old_pythons.py                 # every interpreter present
    python scripts/check_old_pythons.py --python 3.6.15 # one (a version under ~/.pyenv/versions, or a path)

Needs PyPI the first time (later runs reuse the cached venv). Prints the time each step took.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "py-compat"
VERSIONS = ("3.6.15", "3.7.16", "3.8.18")
# the newest pip for each old Python (an index without Requires-Python data makes an old pip pick a pip
# that cannot run there)
PIP_FOR = {(3, 6): "pip<22", (3, 7): "pip<24.1", (3, 8): "pip<25.1"}
TEST_REQUIREMENTS = ['pytest<7.1; python_version < "3.7"', 'pytest; python_version >= "3.7"']
MINIMAL_TESTS = ("tests/test_config.py", "tests/test_detect.py", "tests/test_py_compat.py")


def interpreter(version_or_path: str) -> Optional[Path]:
    p = Path(version_or_path).expanduser()
    if p.is_file():
        return p
    cand = Path.home() / ".pyenv" / "versions" / version_or_path / "bin" / "python"
    return cand if cand.is_file() else None


def base_requirements(repo: Path = REPO) -> List[str]:
    """``[project] dependencies`` of pyproject.toml, markers and all (the old pip evaluates them)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11 runs this script: the tomli backport
        import tomli as tomllib
    with open(repo / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def _run(cmd: List[str], log: Path, cwd: Optional[Path] = None, env: Optional[dict] = None) -> float:
    t0 = time.time()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=str(cwd) if cwd else None, env=env)
    if r.returncode != 0:
        tail = log.read_text().splitlines()[-25:]
        raise RuntimeError("failed ({}): {}\n{}\n(full log: {})".format(r.returncode, " ".join(cmd), "\n".join(tail), log))
    return time.time() - t0


def ensure_venv(python: Path, reqs: List[str], log: Path) -> Path:
    """The cached venv for this interpreter and these requirements (made when missing)."""
    version = subprocess.run([str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.strip()
    key = hashlib.sha256(json.dumps([version] + reqs).encode()).hexdigest()[:12]
    venv = CACHE / "py{}-{}".format(version, key)
    vpy = venv / "bin" / "python"
    if (venv / ".ready").is_file():
        return vpy
    shutil.rmtree(str(venv), ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run([str(python), "-m", "venv", str(venv)], log)
    pip = [str(vpy), "-m", "pip", "--disable-pip-version-check", "-q"]
    major_minor = tuple(int(x) for x in version.split(".")[:2])
    _run(pip + ["install", "-U", PIP_FOR.get(major_minor, "pip")], log)
    _run(pip + ["install", "--only-binary", ":all:"] + reqs, log)       # wheels only: never compile OpenCV
    (venv / ".ready").write_text("\n".join(reqs) + "\n")
    return vpy


IMPORT_ALL = r"""
import importlib, pkgutil, sys, os
import edge, benchmarks
sys.path.insert(0, {scripts!r})
import py36_compat
mods = sorted(m.name for m in pkgutil.walk_packages(edge.__path__, "edge."))
bench = ["benchmarks." + os.path.splitext(p.name)[0] for p in py36_compat.target_files()
         if p.parent.name == "benchmarks" and p.name != "__init__.py"]
for name in ["edge"] + mods + bench:
    importlib.import_module(name)
from edge.config import available_configs, load_config
found = available_configs()
assert found, "no device configs found"
for name, path in sorted(found.items()):
    assert "share/edge-action/device_configs" in str(path), (name, path)
    load_config(name)
print("imported %d modules, loaded %d device configs (%s)" % (1 + len(mods) + len(bench), len(found),
      ", ".join(sorted(found))))
"""


INSTALLED_FILES = ("pyproject.toml", "setup.py", "README.md", "edge/**/*.py", "benchmarks/**/*", "device_configs/*")


def checkout_hash(repo: Path = REPO) -> str:
    """Hash of everything ``pip install .`` puts into the venv: an unchanged checkout is not reinstalled."""
    h = hashlib.sha256()
    for pattern in INSTALLED_FILES:
        for p in sorted(repo.glob(pattern)):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(repo)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def install_checkout(vpy: Path, log: Path) -> str:
    """``pip install --no-deps .`` (the real build on this Python), skipped when this exact checkout is in."""
    stamp, want = vpy.parent.parent / ".installed", checkout_hash()
    if stamp.is_file() and stamp.read_text().strip() == want:
        return "pip install --no-deps . (unchanged checkout {}: already installed)".format(want)
    pip = [str(vpy), "-m", "pip", "--disable-pip-version-check", "-q"]
    dt = _run(pip + ["install", "--no-deps", "--force-reinstall", str(REPO)], log)
    stamp.write_text(want + "\n")
    return "pip install --no-deps . ({:.1f} s)".format(dt)


def check(python: Path, log: Path) -> List[str]:
    """All four steps for one interpreter; returns one line per step with its duration."""
    lines = []
    t0 = time.time()
    vpy = ensure_venv(python, base_requirements() + TEST_REQUIREMENTS, log)
    lines.append("venv {} ({:.1f} s)".format(vpy.parent.parent.name, time.time() - t0))
    lines.append(install_checkout(vpy, log))
    with tempfile.TemporaryDirectory() as tmp:  # away from the checkout: import what was installed
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)
        env.pop("EDGE_DEVICE_CONFIGS", None)
        code = IMPORT_ALL.format(scripts=str(REPO / "scripts"))
        out = subprocess.run([str(vpy), "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, cwd=tmp, env=env)
        if out.returncode != 0:
            raise RuntimeError("importing edge failed on {}:\n{}".format(vpy, out.stdout[-3000:]))
        lines.append(out.stdout.strip())
        t1 = time.time()
        tests = [str(REPO / t) for t in MINIMAL_TESTS]
        env["EDGE_PY_COMPAT_INNER"] = "1"  # test_py_compat.py: don't recurse into the old-Python check
        out = subprocess.run([str(vpy), "-m", "pytest", "-q", "-m", "minimal", "--noconftest", "-p", "no:cacheprovider",
                              "--rootdir", str(REPO)] + tests, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, cwd=tmp, env=env)
        if out.returncode != 0:
            raise RuntimeError("minimal tests failed on {}:\n{}".format(vpy, out.stdout[-4000:]))
        summary = [l for l in out.stdout.splitlines() if " passed" in l or " failed" in l]
        lines.append("pytest -m minimal: {} ({:.1f} s)".format(summary[-1].strip("= ") if summary else "?",
                                                                time.time() - t1))
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--python", action="append", help="version under ~/.pyenv/versions or an interpreter path "
                                                     "(default: {})".format(", ".join(VERSIONS)))
    args = p.parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    status = 0
    for v in args.python or VERSIONS:
        py = interpreter(v)
        if py is None:
            print("python {}: not installed (~/.pyenv/versions/{}): skipped".format(v, v))
            continue
        log = CACHE / "py{}.log".format(v)
        log.write_text("")
        t0 = time.time()
        try:
            lines = check(py, log)
        except RuntimeError as e:
            print("python {}: FAILED\n{}".format(v, e))
            status = 1
            continue
        print("python {}: ok in {:.1f} s\n  ".format(v, time.time() - t0) + "\n  ".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
