"""Device set-up (issue 10, finding 9) on simulated board roots: what `make setup` would install where.

scripts/setup.sh DRY_RUN=1 prints its plan and changes nothing; EDGE_ROOT points it at a fake
/proc/device-tree. On a Jetson or Coral board: base package only (no TensorFlow, no x86 constraints), in a
venv made with --system-site-packages (JetPack's TensorRT, Coral's pycoral/tflite_runtime, python3-gi), or
with no venv; `make run`/`make bench` use that install and the detected board's config."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="scripts/setup.sh needs bash")

BOARDS = {
    "jetson-nano": ("NVIDIA Jetson Nano Developer Kit", ["nvidia,p3450-0000", "nvidia,tegra210"]),
    "jetson-orin-nano": ("NVIDIA Orin Nano Developer Kit", ["nvidia,p3767-0005", "nvidia,tegra234"]),
    "coral-devboard": ("Freescale i.MX8MQ Phanbell", ["fsl,imx8mq-phanbell", "fsl,imx8mq"]),
}


def board_root(tmp_path, model=None, compatible=None):
    root = tmp_path / "board"
    dt = root / "proc" / "device-tree"
    dt.mkdir(parents=True)
    if model:
        (dt / "model").write_bytes(model.encode() + b"\x00")
    if compatible:
        (dt / "compatible").write_bytes(b"".join(c.encode() + b"\x00" for c in compatible))
    return root


def setup_sh(tmp_path, root, *args, **env):
    e = {k: v for k, v in os.environ.items() if k not in ("SETUP_TARGET", "NO_VENV", "PYTHON")}
    e.update(EDGE_ROOT=str(root), DRY_RUN="1", VENV=str(tmp_path / "venv"), **env)
    r = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")] + list(args), cwd=str(REPO), env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stdout
    return r.stdout


def plan(out, what):
    lines = [l for l in out.splitlines() if l.startswith("[setup] plan: " + what)]
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.parametrize("config", sorted(BOARDS))
def test_board_gets_base_package_in_system_site_venv(tmp_path, config):
    root = board_root(tmp_path, *BOARDS[config])
    out = setup_sh(tmp_path, root)
    assert "target: device ({})".format(config) in out
    assert plan(out, "venv").endswith("-m venv --system-site-packages {}".format(tmp_path / "venv"))
    pip = plan(out, "pip")
    assert pip.endswith("install --disable-pip-version-check -e .")     # base package: no extras
    assert "constraints" not in pip and "train" not in pip and "tensorflow" not in out.lower()
    assert "libgirepository1.0-dev" not in plan(out, "apt") and "python3-gi" in plan(out, "apt")
    assert "dry run: nothing changed" in out
    assert not (tmp_path / "venv").exists()


def test_host_keeps_extras_and_constraints(tmp_path):
    out = setup_sh(tmp_path, board_root(tmp_path))
    assert "target: host" in out
    pip = plan(out, "pip")
    assert "-c requirements/constraints.txt" in pip and pip.endswith("-e .[train,gst,dev,events,webtest]")
    assert "--system-site-packages" not in plan(out, "venv")


def test_setup_device_forces_the_board_plan(tmp_path):
    out = setup_sh(tmp_path, board_root(tmp_path), SETUP_TARGET="device")
    assert "target: device (SETUP_TARGET=device)" in out and plan(out, "pip").endswith("-e .")


def test_no_venv_installs_into_user_site(tmp_path):
    out = setup_sh(tmp_path, board_root(tmp_path, *BOARDS["jetson-nano"]), NO_VENV="1")
    assert "plan: no venv (NO_VENV=1)" in out
    assert " -m pip install --disable-pip-version-check --user -e ." in plan(out, "pip")


def test_bare_python36_still_recognises_the_board(tmp_path):
    """JetPack 4.6 before set-up: Python 3.6 without the dataclasses backport cannot run edge/detect.py."""
    py36 = Path.home() / ".pyenv" / "versions" / "3.6.15" / "bin" / "python"
    if not py36.is_file():
        pytest.skip("Python 3.6.15 not installed under ~/.pyenv/versions")
    out = setup_sh(tmp_path, board_root(tmp_path, *BOARDS["jetson-nano"]), PYTHON=str(py36))
    assert "target: device (jetson (edge/detect.py not runnable" in out
    assert plan(out, "venv").startswith("[setup] plan: venv: {} -m venv --system-site-packages".format(py36))


def test_make_run_and_bench_on_a_board_use_the_device_install(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    root = board_root(tmp_path, *BOARDS["jetson-nano"])
    env = dict(os.environ, EDGE_ROOT=str(root))
    env.pop("SETUP_TARGET", None)

    def dry(target):
        r = subprocess.run(["make", "-n", target], cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
        assert r.returncode == 0, r.stdout
        return r.stdout

    run = dry("run")
    assert ".venv/bin/edge-run --device auto" in run
    assert "edge-train" not in run and "edge-quantize" not in run      # a board runs a bundle, never trains
    assert "--device jetson-nano" in dry("bench") and "reports/jetson-nano" in dry("bench")
    env.pop("EDGE_ROOT")
    env["EDGE_ROOT"] = str(board_root(tmp_path / "pc"))
    assert "edge-quantize" in dry("run") and "--device x86-cpu" in dry("bench")   # the host is unchanged
