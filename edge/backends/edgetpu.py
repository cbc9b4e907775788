"""Edge TPU: a TFLite interpreter with the ``libedgetpu`` delegate, as pycoral does it.

When Google's pycoral is importable (Coral's apt repository / coral.ai wheels: it has
``pycoral.utils.edgetpu.make_interpreter``) it builds the interpreter. Otherwise the delegate is
loaded directly: ``load_delegate('libedgetpu.so.1', {'device': 'usb:0'})`` with whichever TFLite
runtime is installed (tflite_runtime on Coral boards, ai-edge-litert elsewhere). The unrelated
``pycoral`` name on PyPI is never used: only a module that has ``utils.edgetpu.make_interpreter``.

Only ``*_edgetpu.tflite`` models (compiled by ``edgetpu_compiler``) run on the TPU; a plain int8
model would silently run on the CPU, so it is refused.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from typing import Dict, Optional, Tuple

from .base import BackendUnavailable
from .tflite import TFLiteBackend, interpreter_class

INSTALL_HINT = ("the Edge TPU runtime (libedgetpu) is not installed: add Coral's apt repository "
                "(https://coral.ai/software/#debian-packages) and `sudo apt-get install libedgetpu1-std`, "
                "then unplug/replug the USB Accelerator")
NO_DEVICE_HINT = ("no Edge TPU found{where}: check `lsusb` shows 1a6e:089a or 18d1:9302 (USB Accelerator; use a "
                  "USB 3 port) or that /dev/apex_0 exists (PCIe/M.2, Dev Board: gasket/apex driver)")

_LIBS = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}


def delegate_library(system: Optional[str] = None) -> str:
    return _LIBS.get(system or platform.system(), "libedgetpu.so.1")


def delegate_spec(device: Optional[str] = None, system: Optional[str] = None) -> Tuple[str, Dict[str, str]]:
    """(library, options) for ``load_delegate``, exactly as pycoral's make_interpreter passes them.

    device: None/"" = first Edge TPU found; "usb" / "pci" = first of that kind; "usb:N" / "pci:N" = N-th.
    """
    opts: Dict[str, str] = {}
    if device:
        kind = device.split(":")[0]
        if kind not in ("usb", "pci") or (":" in device and not device.split(":", 1)[1].isdigit()):
            raise ValueError(f"Edge TPU device must be usb, pci, usb:N or pci:N, got {device!r}")
        opts["device"] = device
    return delegate_library(system), opts


def runtime_present(lib: Optional[str] = None) -> bool:
    """Can the dynamic loader find libedgetpu? (no Edge TPU needed to answer)."""
    for name in (lib or delegate_library(), ctypes.util.find_library("edgetpu")):
        if not name:
            continue
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            pass
    return False


def google_pycoral():
    """pycoral.utils.edgetpu when it is Google's pycoral, else None."""
    try:
        from pycoral.utils import edgetpu  # type: ignore
    except Exception:
        return None
    return edgetpu if hasattr(edgetpu, "make_interpreter") else None


class EdgeTPUBackend(TFLiteBackend):
    name = "edgetpu"
    suffixes = ("_edgetpu.tflite",)

    def _make_interpreter(self):
        if not os.path.basename(self.path).lower().endswith("_edgetpu.tflite"):
            raise ValueError(f"{self.path}: not an Edge TPU model (compile it with edgetpu_compiler to get "
                             f"*_edgetpu.tflite; a plain int8 .tflite would run on the CPU)")
        lib, opts = delegate_spec(self.options.device)
        where = f" at {self.options.device}" if self.options.device else ""
        threads = self.options.threads or 1
        pc = google_pycoral()
        if pc is not None:
            self.runtime = "pycoral"
            try:
                return pc.make_interpreter(self.path, device=self.options.device or None)
            except ValueError as e:
                raise BackendUnavailable(_explain(str(e), lib, where)) from None
        Interpreter, load_delegate, self.runtime = interpreter_class()
        if not runtime_present(lib):  # say so before the runtime's own (noisy) failure
            raise BackendUnavailable(INSTALL_HINT)
        try:
            delegate = load_delegate(lib, opts)
        except (ValueError, OSError, RuntimeError) as e:
            raise BackendUnavailable(_explain(str(e), lib, where)) from None
        self.delegate_options = opts
        return Interpreter(model_path=self.path, experimental_delegates=[delegate], num_threads=threads)

    def describe(self) -> dict:
        d = super().describe()
        d["edgetpu_device"] = self.options.device or "first found"
        return d


def _explain(err: str, lib: str, where: str) -> str:
    if not runtime_present(lib):
        return INSTALL_HINT
    return NO_DEVICE_HINT.format(where=where) + f" ({err.strip().splitlines()[0] if err.strip() else 'delegate failed'})"
