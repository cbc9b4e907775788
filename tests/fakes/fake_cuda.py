"""Fake CUDA Python bindings, one per module layout, for tests on a machine without a GPU.

THIS IS A FAKE: "device memory" is host memory (ctypes buffers) and device pointers are their real
addresses, so copies are ``ctypes.memmove`` and the fake TensorRT (fake_tensorrt.py) reads and
writes the same addresses. Layouts, as NVIDIA/cuda-python ships them:

- ``cuda-python-12-old``: ``from cuda import cudart`` only (cuda-python 11.x/12.x before 11.8.4/12.6.1);
- ``cuda-python-12``: ``cuda.bindings.runtime`` plus the deprecated ``cuda.cudart`` shim (12.6.1+);
- ``cuda-python-13``: ``cuda.bindings.runtime`` only (13.0 removed ``cuda.{cuda,cudart,nvrtc}``,
  cuda-bindings 13.0.0 release notes);
- ``pycuda``: ``pycuda.autoinit`` + ``pycuda.driver`` (Jetson Nano, Python 3.6).

Runtime calls return ``(err, *values)`` tuples like cuda-python's; only the calls edge-action makes
exist, so a call of anything else fails with AttributeError.
"""
import ctypes
import sys
import types

import numpy as np

LAYOUTS = ("cuda-python-12-old", "cuda-python-12", "cuda-python-13", "pycuda")
GPU = {"name": "Orin (fake nvgpu)", "major": 8, "minor": 7}   # what the fake GPU reports
_BUFFERS = {}   # address -> ctypes buffer (keeps "device memory" alive)


def gpu_ident():
    return "{} sm{}{}".format(GPU["name"], GPU["major"], GPU["minor"])


def _malloc(nbytes):
    buf = ctypes.create_string_buffer(max(int(nbytes), 1))
    _BUFFERS[ctypes.addressof(buf)] = buf
    return ctypes.addressof(buf)


def _free(ptr):
    _BUFFERS.pop(int(ptr), None)


def _check_device(ptr, nbytes):
    for base, buf in _BUFFERS.items():
        if base <= int(ptr) and int(ptr) + nbytes <= base + len(buf):
            return
    raise AssertionError("fake CUDA: {:#x} (+{}) is not device memory from cudaMalloc/mem_alloc".format(ptr, nbytes))


class _Member(int):
    def __new__(cls, value, name):
        m = int.__new__(cls, value)
        m.name = name
        return m

    def __repr__(self):
        return "<{}: {}>".format(self.name, int(self))


class _Stream(object):
    def __init__(self, handle):
        self._handle = handle

    def __int__(self):
        return self._handle


class _Props(object):
    def __init__(self):
        self.name = GPU["name"].encode() + b"\x00" * 4   # char[256] in cuda-python: bytes with NULs
        self.major = GPU["major"]
        self.minor = GPU["minor"]


def make_runtime_module(name):
    """A module with the runtime calls edge-action makes, named ``name``."""
    rt = types.ModuleType(name)
    rt.__fake__ = True
    ok = _Member(0, "cudaSuccess")
    rt.cudaError_t = types.SimpleNamespace(cudaSuccess=ok)
    h2d, d2h = _Member(1, "cudaMemcpyHostToDevice"), _Member(2, "cudaMemcpyDeviceToHost")
    rt.cudaMemcpyKind = types.SimpleNamespace(cudaMemcpyHostToDevice=h2d, cudaMemcpyDeviceToHost=d2h)

    def memcpy(dst, src, n, kind, stream=None):
        _check_device(dst if kind == h2d else src, n)
        ctypes.memmove(int(dst), int(src), int(n))
        return (ok,)

    rt.cudaStreamCreate = lambda: (ok, _Stream(_malloc(8)))
    rt.cudaStreamSynchronize = lambda stream: (ok,)
    rt.cudaMalloc = lambda n: (ok, _malloc(n))
    rt.cudaFree = lambda p: (_free(p), ok)[1:]
    rt.cudaMemcpyAsync = memcpy
    rt.cudaMemcpy = lambda dst, src, n, kind: memcpy(dst, src, n, kind)
    rt.cudaGetDevice = lambda: (ok, 0)
    rt.cudaGetDeviceProperties = lambda dev: (ok, _Props())
    return rt


def make_pycuda_modules():
    drv = types.ModuleType("pycuda.driver")
    drv.__fake__ = True

    class DeviceAllocation(object):
        def __init__(self, n):
            self.ptr = _malloc(n)

        def __int__(self):
            return self.ptr

        def free(self):
            _free(self.ptr)

    class Stream(object):
        def __init__(self):
            self.handle = _malloc(8)

        def synchronize(self):
            pass

    class Device(object):
        def __init__(self, i):
            self.i = i

        def name(self):
            return GPU["name"]

        def compute_capability(self):
            return (GPU["major"], GPU["minor"])

    def htod(dst, arr, stream=None):
        arr = np.ascontiguousarray(arr)
        _check_device(int(dst), arr.nbytes)
        ctypes.memmove(int(dst), arr.ctypes.data, arr.nbytes)

    def dtoh(arr, src, stream=None):
        _check_device(int(src), arr.nbytes)
        ctypes.memmove(arr.ctypes.data, int(src), arr.nbytes)

    drv.DeviceAllocation, drv.Stream, drv.Device = DeviceAllocation, Stream, Device
    drv.mem_alloc = DeviceAllocation
    drv.memcpy_htod_async, drv.memcpy_dtoh_async = htod, dtoh
    pkg = types.ModuleType("pycuda")
    pkg.__path__ = []
    pkg.driver = drv
    pkg.autoinit = types.ModuleType("pycuda.autoinit")
    return {"pycuda": pkg, "pycuda.driver": drv, "pycuda.autoinit": pkg.autoinit}


def modules_for(layout):
    """``{module name: module or None}`` to put into sys.modules (None = not importable)."""
    if layout not in LAYOUTS:
        raise ValueError(layout)
    blocked = {"cuda": None, "cuda.cudart": None, "cuda.bindings": None, "cuda.bindings.runtime": None,
               "cuda.bindings.utils": None, "pycuda": None, "pycuda.driver": None, "pycuda.autoinit": None}
    if layout == "pycuda":
        blocked.update(make_pycuda_modules())
        return blocked
    cuda = types.ModuleType("cuda")
    cuda.__path__ = []          # a namespace package: submodules only from sys.modules
    blocked["cuda"] = cuda
    runtime = make_runtime_module("cuda.bindings.runtime")
    if layout in ("cuda-python-12", "cuda-python-13"):
        bindings = types.ModuleType("cuda.bindings")
        bindings.__path__ = []
        bindings.runtime = runtime
        cuda.bindings = bindings
        blocked.update({"cuda.bindings": bindings, "cuda.bindings.runtime": runtime})
    if layout == "cuda-python-13":   # 13.0: get_cuda_native_handle() instead of the deprecated int(obj)
        utils = types.ModuleType("cuda.bindings.utils")
        utils.get_cuda_native_handle = lambda obj: obj._handle
        bindings.utils = utils
        blocked["cuda.bindings.utils"] = utils
    if layout in ("cuda-python-12-old", "cuda-python-12"):
        cudart = runtime if layout == "cuda-python-12" else make_runtime_module("cuda.cudart")
        cuda.cudart = cudart
        blocked["cuda.cudart"] = cudart
    return blocked


def install(monkeypatch, layout):
    """Make ``layout`` the only CUDA binding importable (pytest ``monkeypatch`` undoes it)."""
    for name, mod in modules_for(layout).items():
        monkeypatch.setitem(sys.modules, name, mod)
