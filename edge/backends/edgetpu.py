"""Edge TPU: a TFLite interpreter with the ``libedgetpu`` delegate, loaded the way pycoral does it.

Device strings are pycoral's (``pycoral.utils.edgetpu.make_interpreter``): none/"" = any Edge TPU,
``:N`` = the N-th of any kind, ``usb`` / ``usb:N``, ``pci`` / ``pci:N``. They go to the delegate
unchanged as ``{"device": ...}``, the option libedgetpu reads.

Which runtime hosts the delegate: libedgetpu is a TFLite delegate built against a given
tflite_runtime (Coral publishes libedgetpu and tflite_runtime builds that match), so it is loaded
into **tflite_runtime** when that is installed, through Google's pycoral ``make_interpreter`` when
pycoral is importable too. Only when tflite_runtime is absent does ai-edge-litert host it, with a
notice that this pairing is not the one Coral builds for. The unrelated ``pycoral`` on PyPI is never
used: only a module that has ``utils.edgetpu.make_interpreter``.

``EDGETPU_LIBRARY`` (environment) names the delegate library to load instead of ``libedgetpu.so.1``
(e.g. a libedgetpu built from source, or the max-frequency variant at its full path).

Only ``*_edgetpu.tflite`` models (compiled by ``edgetpu_compiler``) run on the TPU; a plain int8
model would silently run on the CPU, so it is refused. Without an Edge TPU nothing here is claimed
to have run on one: a failed delegate is one error line saying what to check.
"""
import ctypes
import ctypes.util
import logging
import os
import platform
from typing import Dict, Optional, Tuple

from ..detect import parse_edgetpu_device
from .base import BackendUnavailable
from .tflite import INSTALL_HINT as TFLITE_INSTALL_HINT
from .tflite import TFLiteBackend
from .tflite import interpreter_class as tflite_interpreter_class

log = logging.getLogger(__name__)

LIBRARY_ENV = "EDGETPU_LIBRARY"
INSTALL_HINT = ("the Edge TPU runtime (libedgetpu) is not installed: add Coral's apt repository "
                "(https://coral.ai/software/#debian-packages) and `sudo apt-get install libedgetpu1-std`, "
                "then unplug/replug the USB Accelerator")
CHECKS = ("check: is an Edge TPU connected ({where}; `lsusb` shows 1a6e:089a or 18d1:9302 for the USB "
          "Accelerator, on a USB 3 port; /dev/apex_0 exists for PCIe/M.2 and the Dev Board)? is libedgetpu "
          "installed and matching the TFLite runtime (libedgetpu1-std with python3-tflite-runtime from "
          "Coral's repository)? udev rules: are you in the plugdev (USB) / apex (PCIe) group, replugged "
          "after installing?")
ABI_NOTICE = ("tflite_runtime is not installed: loading libedgetpu into ai-edge-litert; Coral builds "
              "libedgetpu for tflite_runtime (install python3-tflite-runtime or the tflite-runtime wheel "
              "from Coral if the delegate fails)")
DEVICE_HELP = "usb, usb:N, pci, pci:N or :N (N-th Edge TPU of any kind); empty = first found"

_LIBS = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}


def delegate_library(system: Optional[str] = None) -> str:
    """``$EDGETPU_LIBRARY`` when set, else libedgetpu's name on this OS (pycoral's table)."""
    return os.environ.get(LIBRARY_ENV) or _LIBS.get(system or platform.system(), "libedgetpu.so.1")


def check_device(device: Optional[str]) -> Optional[str]:
    """The device string unchanged if pycoral/libedgetpu accept it, None for 'first found'."""
    if not device:
        return None
    parse_edgetpu_device(device)  # the one parser of pycoral's strings (ValueError lists the forms)
    return device


def delegate_spec(device: Optional[str] = None, system: Optional[str] = None) -> Tuple[str, Dict[str, str]]:
    """(library, options) for ``load_delegate``, exactly as pycoral's make_interpreter passes them."""
    dev = check_device(device)
    return delegate_library(system), ({"device": dev} if dev else {})


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


def interpreter_class():
    """(Interpreter, load_delegate, name) of the runtime libedgetpu should live in: tflite_runtime first
    (unlike the CPU backend, which prefers ai-edge-litert)."""
    return tflite_interpreter_class(order=("tflite_runtime", "ai_edge_litert"))


def one_line(text: str) -> str:
    return "; ".join(ln.strip() for ln in str(text).splitlines() if ln.strip()) or "no message"


def delegate_error(err: str, lib: str, device: Optional[str], runtime: str) -> str:
    """One line: what failed (library, device, runtime, its message) and what to check."""
    at = f" at {device}" if device else ""
    return (f"no Edge TPU found{at}: the Edge TPU delegate could not be created ({lib} in {runtime}: "
            f"{one_line(err)}); " + CHECKS.format(where=f"device {device}" if device else "any device"))


class EdgeTPUBackend(TFLiteBackend):
    name = "edgetpu"
    suffixes = ("_edgetpu.tflite",)

    def _make_interpreter(self):
        if not os.path.basename(self.path).lower().endswith("_edgetpu.tflite"):
            raise ValueError(f"{self.path}: not an Edge TPU model (compile it with edgetpu_compiler to get "
                             f"*_edgetpu.tflite; a plain int8 .tflite would run on the CPU)")
        lib, opts = delegate_spec(self.options.device)
        self.delegate_options = opts
        Interpreter, load_delegate, self.runtime = interpreter_class()
        pc = google_pycoral() if self.runtime == "tflite-runtime" and not os.environ.get(LIBRARY_ENV) else None
        if not runtime_present(lib):  # say so before the runtime's own (noisy) failure
            if os.environ.get(LIBRARY_ENV):
                raise BackendUnavailable(f"{LIBRARY_ENV}={lib}: the dynamic loader cannot open it")
            raise BackendUnavailable(INSTALL_HINT)
        try:
            if pc is not None:
                self.runtime = "pycoral (tflite-runtime)"
                return pc.make_interpreter(self.path, device=opts.get("device"))
            delegate = load_delegate(lib, opts)
        except (ValueError, OSError, RuntimeError) as e:
            raise BackendUnavailable(delegate_error(str(e), lib, opts.get("device"), self.runtime)) from None
        if self.runtime == "ai-edge-litert":
            log.warning("%s", ABI_NOTICE)
        return Interpreter(model_path=self.path, experimental_delegates=[delegate],
                           num_threads=self.options.threads or 1)

    def describe(self) -> dict:
        d = super().describe()
        d["edgetpu_device"] = self.options.device or "first found"
        d["edgetpu_runtime"] = getattr(self, "runtime", None)
        return d
