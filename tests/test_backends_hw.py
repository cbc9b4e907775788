"""Edge TPU and TensorRT backends up to the hardware boundary; past it, skipped with the reason.

What runs here: delegate library/options exactly as pycoral passes them, the refusal of
non-compiled models, the install/no-device messages, backend selection by suffix and by device
config, the engine-cache key, and `edge-run --device coral|jetson` failing with one clear line
(exit 2) on a machine without the runtime.
"""
import os
import shutil
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge.backends import BackendOptions, BackendUnavailable, backend_for_path, load_backend  # noqa: E402
from edge.backends import edgetpu as etpu  # noqa: E402
from edge.bundle import Artifact, file_digest, load as load_bundle  # noqa: E402
from edge.select import ModelError, select_artifacts  # noqa: E402
from edge.trt_build import TRT_HINT, engine_cache_name  # noqa: E402

HAVE_EDGETPU_RT = etpu.runtime_present()
try:
    import tensorrt  # noqa: F401
    HAVE_TRT = True
except ImportError:
    HAVE_TRT = False


@pytest.fixture(scope="module")
def bundle_dir():
    from _tiny_models import cached_bundle
    return cached_bundle()


@pytest.fixture
def edgetpu_bundle(bundle_dir, tmp_path):
    """A copy of the tiny bundle that also lists an ``encoder_int8_edgetpu.tflite`` artifact.

    The file is the plain int8 encoder under the compiled name (no edgetpu_compiler here): it only
    lets selection and the delegate-loading path run; nothing claims it ran on an Edge TPU."""
    d = tmp_path / "b"
    shutil.copytree(bundle_dir, d)
    b = load_bundle(str(d))
    shutil.copy(d / "encoder_int8.tflite", d / "encoder_int8_edgetpu.tflite")
    b.artifacts.append(Artifact(name="encoder-int8-edgetpu", file="encoder_int8_edgetpu.tflite", format="edgetpu",
                                precision="int8", part="encoder", devices=["coral"],
                                **file_digest(str(d / "encoder_int8_edgetpu.tflite"))))
    b.skipped = []
    b.save(str(d))
    return str(d)


# -- Edge TPU ----------------------------------------------------------------------------------------
def test_delegate_spec_matches_pycoral():
    assert etpu.delegate_spec("usb:0", "Linux") == ("libedgetpu.so.1", {"device": "usb:0"})
    assert etpu.delegate_spec("pci:1", "Linux") == ("libedgetpu.so.1", {"device": "pci:1"})
    assert etpu.delegate_spec(None, "Linux") == ("libedgetpu.so.1", {})
    assert etpu.delegate_spec("usb", "Darwin") == ("libedgetpu.1.dylib", {"device": "usb"})
    assert etpu.delegate_spec("", "Windows") == ("edgetpu.dll", {})
    for bad in ("gpu:0", "usb:x", "tpu"):
        with pytest.raises(ValueError):
            etpu.delegate_spec(bad)


def test_suffix_registry_picks_edgetpu_before_tflite():
    assert backend_for_path("m/encoder_int8_edgetpu.tflite") == "edgetpu"
    assert backend_for_path("m/encoder_int8.tflite") == "tflite"
    assert backend_for_path("m/full.onnx") == "onnxruntime"
    assert backend_for_path("m/full.engine") == "tensorrt" and backend_for_path("x.plan") == "tensorrt"


def test_edgetpu_refuses_uncompiled_model(bundle_dir):
    with pytest.raises(ValueError, match="edgetpu_compiler"):
        load_backend(os.path.join(bundle_dir, "encoder_int8.tflite"), "edgetpu")


def test_edgetpu_delegate_boundary(edgetpu_bundle):
    path = os.path.join(edgetpu_bundle, "encoder_int8_edgetpu.tflite")
    if HAVE_EDGETPU_RT:
        pytest.skip("libedgetpu is installed here: running a real Edge TPU needs a compiled model and the device")
    with pytest.raises(BackendUnavailable) as e:
        load_backend(path, options=BackendOptions(device="usb:0"))
    assert "libedgetpu1-std" in str(e.value) and "coral.ai" in str(e.value)


def test_google_pycoral_detection_is_strict(monkeypatch):
    import types
    fake = types.ModuleType("pycoral")  # e.g. the unrelated PyPI 'pycoral': no utils.edgetpu.make_interpreter
    monkeypatch.setitem(sys.modules, "pycoral", fake)
    monkeypatch.setitem(sys.modules, "pycoral.utils", types.ModuleType("pycoral.utils"))
    assert etpu.google_pycoral() is None


def test_select_for_coral(bundle_dir, edgetpu_bundle):
    with pytest.raises(ModelError) as e:
        select_artifacts(load_bundle(bundle_dir), "edgetpu", "int8")
    msg = str(e.value)
    assert "no edgetpu encoder artifact" in msg and "edgetpu_compiler was not available" in msg
    assert "edgetpu_compiler encoder_int8.tflite" in msg and "x86-64" in msg
    sel = select_artifacts(load_bundle(edgetpu_bundle), "edgetpu", "int8", head_backend="tflite")
    assert sel.main.file == "encoder_int8_edgetpu.tflite" and sel.head.file == "head_int8.tflite"
    assert sel.head_backend == "tflite"   # the temporal head runs on the host CPU


def _edge_run(args, capsys):
    from edge.cli import main
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_edge_run_coral_without_edgetpu_artifact_is_one_line(bundle_dir, capsys):
    code, err = _edge_run(["--device", "coral", "--model", bundle_dir, "test://", "--quiet"], capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith("edge-run: error: bundle") and "no edgetpu encoder artifact" in err[0]


def test_edge_run_coral_without_runtime_is_one_line(edgetpu_bundle, capsys):
    if HAVE_EDGETPU_RT:
        pytest.skip("libedgetpu is installed here; the hardware path is covered on a Coral")
    code, err = _edge_run(["--device", "coral", "--model", edgetpu_bundle, "test://", "--quiet"], capsys)
    assert code == 2 and len(err) == 1 and "sudo apt-get install libedgetpu1-std" in err[0]
    assert "coral-usb" in err[0]


@pytest.mark.hardware
def test_edgetpu_real_inference(edgetpu_bundle):
    if not HAVE_EDGETPU_RT:
        pytest.skip("no Edge TPU runtime (libedgetpu) on this machine")
    pytest.skip("needs a model compiled by edgetpu_compiler and an attached Edge TPU")


# -- TensorRT ----------------------------------------------------------------------------------------
def test_engine_cache_name_encodes_content_version_gpu_precision(bundle_dir, tmp_path):
    onnx = os.path.join(bundle_dir, "encoder.onnx")
    a = engine_cache_name(onnx, "8.2.1.8", "NVIDIA Tegra X1", "fp16")
    assert a.startswith("encoder-") and a.endswith("-trt8.2.1.8-nvidia-tegra-x1-fp16.engine")
    assert engine_cache_name(onnx, "8.6.2", "Orin", "fp16") != a
    assert engine_cache_name(onnx, "8.2.1.8", "NVIDIA Tegra X1", "fp32") != a
    other = tmp_path / "encoder.onnx"
    other.write_bytes(open(onnx, "rb").read() + b"\0")
    assert engine_cache_name(str(other), "8.2.1.8", "NVIDIA Tegra X1", "fp16") != a


def test_tensorrt_missing_is_clear(bundle_dir):
    if HAVE_TRT:
        pytest.skip("tensorrt is importable here: the engine path needs an NVIDIA GPU (covered on a Jetson)")
    with pytest.raises(BackendUnavailable, match="python3-libnvinfer"):
        load_backend(os.path.join(bundle_dir, "encoder.onnx"), "tensorrt")
    assert "TensorRT comes with JetPack" in TRT_HINT


def test_select_for_jetson_uses_onnx_for_tensorrt(bundle_dir):
    sel = select_artifacts(load_bundle(bundle_dir), "tensorrt", "float32", head_backend="onnxruntime")
    assert sel.main.file == "encoder.onnx" and sel.head.file == "head.onnx" and sel.backend == "tensorrt"


def test_edge_run_jetson_without_tensorrt_is_one_line(bundle_dir, capsys):
    if HAVE_TRT:
        pytest.skip("tensorrt is importable here")
    code, err = _edge_run(["--device", "jetson", "--model", bundle_dir, "test://", "--quiet"], capsys)
    assert code == 2 and len(err) == 1 and "TensorRT comes with JetPack" in err[0]


@pytest.mark.hardware
def test_tensorrt_real_engine(bundle_dir):
    if not HAVE_TRT:
        pytest.skip("tensorrt not importable: needs a Jetson (JetPack) or an NVIDIA GPU host")
    b = load_backend(os.path.join(bundle_dir, "encoder.onnx"), "tensorrt", BackendOptions(precision="fp32"))
    x = np.random.default_rng(0).random(b.input_shape, dtype=np.float32)
    ref = load_backend(os.path.join(bundle_dir, "encoder.onnx"), "onnxruntime").infer(x)
    assert np.abs(b.infer(x) - ref).max() < 1e-3


def test_edgetpu_loads_delegate_with_pycoral_arguments(edgetpu_bundle, monkeypatch):
    """Up to the boundary: the delegate is requested exactly as pycoral does, and a delegate that
    loads but finds no device gives the 'no Edge TPU found' hint (the runtime call is a test double)."""
    calls = []

    def fake_load_delegate(lib, options=None):
        calls.append((lib, dict(options or {})))
        raise ValueError("Failed to load delegate from libedgetpu.so.1")

    monkeypatch.setattr(etpu, "google_pycoral", lambda: None)
    monkeypatch.setattr(etpu, "runtime_present", lambda lib=None: True)
    monkeypatch.setattr(etpu, "interpreter_class", lambda: (object, fake_load_delegate, "test-double"))
    path = os.path.join(edgetpu_bundle, "encoder_int8_edgetpu.tflite")
    with pytest.raises(BackendUnavailable) as e:
        load_backend(path, options=BackendOptions(device="usb:0"))
    assert calls == [("libedgetpu.so.1", {"device": "usb:0"})]
    assert "no Edge TPU found at usb:0" in str(e.value) and "lsusb" in str(e.value)
    calls.clear()
    with pytest.raises(BackendUnavailable):
        load_backend(path)                       # no device given: first Edge TPU found, no options
    assert calls == [("libedgetpu.so.1", {})]
