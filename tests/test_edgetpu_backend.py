"""Edge TPU backend up to the hardware: device strings, which runtime hosts the delegate, and the
error path through a REAL TFLite runtime with a stub delegate library compiled here with gcc.

The stub exports the TFLite external-delegate entry points (``tflite_plugin_create_delegate`` /
``tflite_plugin_destroy_delegate``) and refuses, as libedgetpu does when no Edge TPU answers. No
Edge TPU is here: nothing in this file runs a model on one.
"""
import os
import shutil
import subprocess
import sys
import types

import pytest

from edge.backends import BackendOptions, BackendUnavailable, load_backend
from edge.backends import edgetpu as etpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STUB_C = r"""
#include <stdio.h>
#include <stddef.h>
/* TFLite external delegate ABI: options as parallel key/value arrays, errors via the callback. */
void *tflite_plugin_create_delegate(char **keys, char **values, size_t n, void (*report_error)(const char *)) {
  char msg[256];
  int len = snprintf(msg, sizeof msg, "stub delegate: no Edge TPU (options:");
  for (size_t i = 0; i < n && len < 200; i++)
    len += snprintf(msg + len, sizeof msg - len, " %s=%s", keys[i], values[i]);
  snprintf(msg + len, sizeof msg - len, ")");
  if (report_error) report_error(msg);
  return NULL;
}
void tflite_plugin_destroy_delegate(void *delegate) { (void)delegate; }
"""


@pytest.fixture(scope="module")
def stub_delegate(tmp_path_factory):
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler (apt-get install gcc; scripts/setup.sh lists it)")
    d = tmp_path_factory.mktemp("stubdelegate")
    (d / "stub.c").write_text(STUB_C)
    lib = d / "libstub_edgetpu.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-o", str(lib), str(d / "stub.c")], check=True)
    return str(lib)


@pytest.fixture
def compiled_name_model(tmp_path):
    """A valid int8 .tflite under a compiled name: the delegate is created before the model is used."""
    sys.path.insert(0, os.path.dirname(__file__))
    from _tiny_models import cached_bundle
    p = tmp_path / "encoder_int8_edgetpu.tflite"
    shutil.copy(os.path.join(cached_bundle(), "encoder_int8.tflite"), p)
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    return str(p)


# ------------------------------------------------------------------------------------ device strings
@pytest.mark.parametrize("dev", ["usb", "usb:0", "usb:3", "pci", "pci:1", ":0", ":12"])
def test_pycoral_device_strings_pass_through(dev):
    assert etpu.delegate_spec(dev, "Linux") == ("libedgetpu.so.1", {"device": dev})


@pytest.mark.parametrize("dev", ["gpu:0", "usb:x", "tpu", "usb:", ":", "usb:0:1", "PCI", "usb0", " usb"])
def test_bad_device_strings_say_what_is_accepted(dev):
    with pytest.raises(ValueError, match="':N', 'usb', 'usb:N', 'pci' or 'pci:N'"):
        etpu.delegate_spec(dev)


def test_first_found_has_no_device_option(monkeypatch):
    monkeypatch.delenv(etpu.LIBRARY_ENV, raising=False)
    assert etpu.delegate_spec(None, "Linux") == ("libedgetpu.so.1", {})
    assert etpu.delegate_spec("", "Darwin") == ("libedgetpu.1.dylib", {})


def test_library_override(monkeypatch):
    monkeypatch.setenv(etpu.LIBRARY_ENV, "/opt/edgetpu/libedgetpu.so.1.0")
    assert etpu.delegate_spec("pci:0") == ("/opt/edgetpu/libedgetpu.so.1.0", {"device": "pci:0"})


# ------------------------------------------------------------------------ which runtime hosts it
class _Recorder:
    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def load_delegate(self, lib, opts):
        self.calls.append((lib, dict(opts)))
        if self.fail:
            raise ValueError(self.fail)
        return object()


def _fake_tflite_runtime(monkeypatch, rec):
    pkg = types.ModuleType("tflite_runtime")
    mod = types.ModuleType("tflite_runtime.interpreter")
    mod.Interpreter = lambda **kw: ("tflite_runtime.Interpreter", kw)
    mod.load_delegate = rec.load_delegate
    pkg.interpreter = mod
    monkeypatch.setitem(sys.modules, "tflite_runtime", pkg)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", mod)


def test_tflite_runtime_is_preferred_over_ai_edge_litert(monkeypatch):
    _fake_tflite_runtime(monkeypatch, _Recorder())
    assert etpu.interpreter_class()[2] == "tflite-runtime"
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)          # not installed
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    pytest.importorskip("ai_edge_litert")
    assert etpu.interpreter_class()[2] == "ai-edge-litert"


def test_delegate_goes_into_tflite_runtime_with_pycoral_options(monkeypatch, stub_delegate, tmp_path):
    rec = _Recorder(fail="Failed to load delegate from libedgetpu.so.1\nno device")
    _fake_tflite_runtime(monkeypatch, rec)
    monkeypatch.setitem(sys.modules, "pycoral", None)
    monkeypatch.setenv(etpu.LIBRARY_ENV, stub_delegate)     # loadable, so the runtime is asked
    model = tmp_path / "m_edgetpu.tflite"
    model.write_bytes(b"x")
    with pytest.raises(BackendUnavailable) as e:
        load_backend(str(model), "edgetpu", BackendOptions(device="pci:1"))
    assert rec.calls == [(stub_delegate, {"device": "pci:1"})]
    msg = str(e.value)
    assert "\n" not in msg and "tflite-runtime" in msg and "no Edge TPU found at pci:1" in msg and "no device" in msg


def test_google_pycoral_builds_the_interpreter_when_present(monkeypatch, tmp_path):
    rec = _Recorder()
    _fake_tflite_runtime(monkeypatch, rec)
    seen = {}

    def make_interpreter(path, device=None):
        seen.update(path=path, device=device)
        raise ValueError("Failed to load delegate from libedgetpu.so.1")
    utils = types.ModuleType("pycoral.utils")
    edgetpu_mod = types.ModuleType("pycoral.utils.edgetpu")
    edgetpu_mod.make_interpreter = make_interpreter
    utils.edgetpu = edgetpu_mod
    monkeypatch.setitem(sys.modules, "pycoral", types.ModuleType("pycoral"))
    monkeypatch.setitem(sys.modules, "pycoral.utils", utils)
    monkeypatch.setitem(sys.modules, "pycoral.utils.edgetpu", edgetpu_mod)
    monkeypatch.delenv(etpu.LIBRARY_ENV, raising=False)
    monkeypatch.setattr(etpu, "runtime_present", lambda lib=None: True)
    model = tmp_path / "m_edgetpu.tflite"
    model.write_bytes(b"x")
    with pytest.raises(BackendUnavailable, match=r"found at :1: .*in pycoral \(tflite-runtime\)"):
        load_backend(str(model), "edgetpu", BackendOptions(device=":1"))
    assert seen == {"path": str(model), "device": ":1"} and rec.calls == []


def test_missing_override_library_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(etpu.LIBRARY_ENV, str(tmp_path / "nope.so"))
    model = tmp_path / "m_edgetpu.tflite"
    model.write_bytes(b"x")
    with pytest.raises(BackendUnavailable, match="EDGETPU_LIBRARY=.*nope.so: the dynamic loader cannot open it"):
        load_backend(str(model), "edgetpu")


# ------------------------------------------------------ the error path through the real runtime
def test_failing_delegate_in_real_runtime_is_one_line(monkeypatch, stub_delegate, compiled_name_model):
    """ai-edge-litert's real load_delegate calls the stub; the options arrive as libedgetpu reads them."""
    pytest.importorskip("ai_edge_litert")
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    monkeypatch.setenv(etpu.LIBRARY_ENV, stub_delegate)
    with pytest.raises(BackendUnavailable) as e:
        load_backend(compiled_name_model, "edgetpu", BackendOptions(device="usb:1"))
    msg = str(e.value)
    assert "\n" not in msg and "(options: device=usb:1)" in msg and "ai-edge-litert" in msg


def test_edge_run_with_failing_delegate_prints_one_line_exit_2(stub_delegate, compiled_name_model, tmp_path):
    env = dict(os.environ, EDGETPU_LIBRARY=stub_delegate, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, "-m", "edge.cli", "--backend", "edgetpu", "--model", compiled_name_model,
           "test://", "--headless", "--duration", "2", "--quiet"]
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=120, cwd=str(tmp_path))
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2, p.stderr
    assert len(lines) == 1, p.stderr
    line = lines[0]
    assert line.startswith("edge-run: error:") and "Edge TPU delegate could not be created" in line
    assert stub_delegate in line and "stub delegate: no Edge TPU" in line
    assert "connected" in line and "libedgetpu" in line and "udev" in line
