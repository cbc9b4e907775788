"""One tiny CUDA memory/stream helper for TensorRT, over whichever CUDA Python binding is installed.

Layouts, chosen by what imports (never by a version string):

- ``cuda.bindings.runtime``: cuda-python 11.8.4+/12.6.1+ and 13 (13 removed the old ``cuda.cudart``);
- ``cuda.cudart``: older cuda-python 11.x/12.x (JetPack 5/6 images often carry these);
- ``pycuda.driver``: where cuda-python cannot install, e.g. Python 3.6 on a Jetson Nano (JetPack 4.6).

Every helper offers the same calls: ``alloc``, ``htod``, ``dtoh``, ``sync``, ``free``,
``stream_handle`` and ``gpu()`` (name + compute capability, part of the engine cache key).
Python 3.6 compatible (runs on JetPack 4.6).
"""
import importlib
from typing import Dict, List, Optional, Tuple

import numpy as np

CUDA_HINT = ("no CUDA Python bindings: `pip install cuda-python` matching the CUDA of your JetPack (e.g. "
             "`pip install 'cuda-python==12.2.*'` on JetPack 6), or `pip install pycuda` (JetPack 4.6 / Python 3.6)")
LAYOUTS = ("cuda.bindings.runtime", "cuda.cudart", "pycuda")


class CudaUnavailable(RuntimeError):
    """No CUDA Python binding imports here, or CUDA is present but unusable (no GPU / driver)."""


class GpuInfo(object):
    """Name and compute capability of the GPU an engine is built for / run on."""

    def __init__(self, name, major, minor):
        self.name = str(name).strip()
        self.major = int(major)
        self.minor = int(minor)

    @property
    def compute_capability(self):
        # type: () -> str
        return "{}.{}".format(self.major, self.minor)

    def ident(self):
        # type: () -> str
        """``<name> sm<major><minor>``: the GPU part of the engine cache key."""
        return "{} sm{}{}".format(self.name, self.major, self.minor)

    def __repr__(self):
        return "GpuInfo({!r}, {}, {})".format(self.name, self.major, self.minor)


def _decode(name):
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\x00", 1)[0].decode("utf-8", "replace")
    return str(name).rstrip("\x00").strip()


class CudaRuntime(object):
    """cuda-python's runtime API: every call returns ``(err, *values)``; err 0 = cudaSuccess."""

    def __init__(self, rt, layout):
        self.rt = rt
        self.layout = layout
        self.stream = self._ok(rt.cudaStreamCreate(), "cudaStreamCreate")

    def _ok(self, res, what):
        err, rest = res[0], tuple(res[1:])
        if int(err) != 0:
            raise CudaUnavailable("CUDA error {} in {} (is this an NVIDIA GPU with its driver loaded?)".format(
                err, what))
        return rest[0] if len(rest) == 1 else (rest or None)

    def gpu(self):
        # type: () -> GpuInfo
        dev = self._ok(self.rt.cudaGetDevice(), "cudaGetDevice")
        props = self._ok(self.rt.cudaGetDeviceProperties(dev), "cudaGetDeviceProperties")
        return GpuInfo(_decode(props.name), props.major, props.minor)

    def alloc(self, nbytes):
        # type: (int) -> int
        return int(self._ok(self.rt.cudaMalloc(int(nbytes)), "cudaMalloc"))

    def htod(self, dst, arr):
        # type: (int, np.ndarray) -> None
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._ok(self.rt.cudaMemcpyAsync(dst, arr.ctypes.data, arr.nbytes, kind, self.stream), "cudaMemcpyAsync")

    def dtoh(self, arr, src):
        # type: (np.ndarray, int) -> None
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._ok(self.rt.cudaMemcpyAsync(arr.ctypes.data, src, arr.nbytes, kind, self.stream), "cudaMemcpyAsync")

    def sync(self):
        # type: () -> None
        self._ok(self.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    @property
    def stream_handle(self):
        # type: () -> int
        """The raw cudaStream_t for ``execute_async_v3``: cuda-bindings 13 deprecates ``int(stream)`` in
        favour of ``cuda.bindings.utils.get_cuda_native_handle``, used when it exists."""
        try:
            from cuda.bindings.utils import get_cuda_native_handle
        except ImportError:
            return int(self.stream)
        return int(get_cuda_native_handle(self.stream))

    def free(self, ptr):
        # type: (int) -> None
        self.rt.cudaFree(ptr)


class PyCudaDriver(object):
    """pycuda's driver API (``pycuda.autoinit`` makes the context on device 0)."""

    layout = "pycuda"

    def __init__(self, cuda):
        self.cuda = cuda
        self.stream = cuda.Stream()
        self._allocs = {}  # type: Dict[int, object]

    def gpu(self):
        # type: () -> GpuInfo
        dev = self.cuda.Device(0)
        major, minor = dev.compute_capability()
        return GpuInfo(_decode(dev.name()), major, minor)

    def alloc(self, nbytes):
        # type: (int) -> int
        a = self.cuda.mem_alloc(int(nbytes))
        self._allocs[int(a)] = a
        return int(a)

    def htod(self, dst, arr):
        # type: (int, np.ndarray) -> None
        self.cuda.memcpy_htod_async(dst, arr, self.stream)

    def dtoh(self, arr, src):
        # type: (np.ndarray, int) -> None
        self.cuda.memcpy_dtoh_async(arr, src, self.stream)

    def sync(self):
        # type: () -> None
        self.stream.synchronize()

    @property
    def stream_handle(self):
        # type: () -> int
        return int(self.stream.handle)

    def free(self, ptr):
        # type: (int) -> None
        a = self._allocs.pop(ptr, None)
        if a is not None:
            a.free()


def _import_layout(layout):
    if layout == "pycuda":
        importlib.import_module("pycuda.autoinit")
        return importlib.import_module("pycuda.driver")
    if layout == "cuda.bindings.runtime":
        from cuda.bindings import runtime  # cuda-python 11.8.4+/12.6.1+/13
        return runtime
    from cuda import cudart  # cuda-python before the cuda.bindings layout (removed in 13)
    return cudart


def open_cuda(layouts=LAYOUTS):
    # type: (Tuple[str, ...]) -> object
    """The first CUDA helper whose binding imports, in ``layouts`` order. Raises CudaUnavailable
    with what to install when none imports, or with the CUDA error when CUDA itself fails."""
    missing = []  # type: List[str]
    for layout in layouts:
        try:
            mod = _import_layout(layout)
        except ImportError as e:
            missing.append("{} ({})".format(layout, e))
            continue
        try:
            return PyCudaDriver(mod) if layout == "pycuda" else CudaRuntime(mod, layout)
        except CudaUnavailable:
            raise
        except Exception as e:  # pycuda.autoinit / driver errors: no GPU, no driver
            raise CudaUnavailable("CUDA is not usable here via {} ({}); TensorRT needs an NVIDIA GPU "
                                  "(Jetson or a dGPU host)".format(layout, e))
    raise CudaUnavailable(CUDA_HINT + "; tried: " + "; ".join(missing))


def current_gpu(cuda=None):
    # type: (Optional[object]) -> GpuInfo
    """The GPU of this machine (device 0), through ``cuda`` or a freshly opened helper."""
    return (cuda or open_cuda()).gpu()
