"""edge/ must install and run on a Jetson or Coral alone: no TensorFlow, no host packages."""
import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from py36_compat import absolute_imports  # noqa: E402  (one import walker for both checks)
FORBIDDEN = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tf2onnx", "sklearn",
             "train", "quantize", "benchmarks")


def _edge_modules():
    for p in sorted((ROOT / "edge").rglob("*.py")):
        rel = p.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield p, ".".join(parts)


def test_edge_sources_import_nothing_from_host_side():
    offenders = []
    for path, _ in _edge_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, n in absolute_imports(tree):
            if n.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {n}")
    assert not offenders, "\n".join(offenders)


def test_importing_every_edge_module_loads_no_tensorflow():
    mods = [m for _, m in _edge_modules()]
    code = (
        "import importlib, sys\n"
        f"mods = {mods!r}\n"
        "for m in mods:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in "
        "('tensorflow', 'tf_keras', 'keras', 'sklearn', 'train', 'quantize', 'benchmarks'))\n"
        "print(','.join(bad))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"edge pulled in host modules: {out.stdout.strip()}"
