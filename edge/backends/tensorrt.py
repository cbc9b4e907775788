"""TensorRT on a Jetson: an engine from the bundle (``.engine``/``.plan``), or one built from the
bundle's ONNX on the first run and cached (``edge.trt_build``).

Buffers go through cuda-python (``cuda.bindings.runtime`` / ``cuda.cudart``) or, when that is
missing, pycuda. Both TensorRT APIs are handled: named I/O tensors + ``execute_async_v3``
(TensorRT >= 8.5, JetPack 5/6) and bindings + ``execute_v2`` (TensorRT 8.2, JetPack 4.6).
"""
from __future__ import annotations

import os
from typing import List

import numpy as np

from ..trt_build import TRT_HINT, cached_engine
from .base import Backend, BackendUnavailable, TensorInfo

CUDA_HINT = ("no CUDA Python bindings: `pip install cuda-python` (matching the CUDA version of your JetPack, "
             "e.g. cuda-python==12.2.* on JetPack 6) or `pip install pycuda`")


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendUnavailable(TRT_HINT) from e
    return trt


class _CudaRT:
    """Tiny buffer layer over cuda-python's runtime API."""

    def __init__(self):
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            from cuda import cudart  # older cuda-python; ImportError propagates
        self.rt = cudart
        self.stream = self._ok(cudart.cudaStreamCreate())

    def _ok(self, res):
        err, rest = res[0], res[1:]
        if int(err) != 0:
            raise RuntimeError(f"CUDA error {err}")
        return rest[0] if len(rest) == 1 else (rest or None)

    def device_name(self) -> str:
        props = self._ok(self.rt.cudaGetDeviceProperties(0))
        name = props.name
        return name.decode(errors="replace").rstrip("\x00") if isinstance(name, bytes) else str(name)

    def alloc(self, nbytes: int) -> int:
        return int(self._ok(self.rt.cudaMalloc(nbytes)))

    def htod(self, dst: int, arr: np.ndarray) -> None:
        self._ok(self.rt.cudaMemcpyAsync(dst, arr.ctypes.data, arr.nbytes,
                                         self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))

    def dtoh(self, arr: np.ndarray, src: int) -> None:
        self._ok(self.rt.cudaMemcpyAsync(arr.ctypes.data, src, arr.nbytes,
                                         self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))

    def sync(self) -> None:
        self._ok(self.rt.cudaStreamSynchronize(self.stream))

    @property
    def stream_handle(self) -> int:
        return int(self.stream)

    def free(self, ptr: int) -> None:
        self.rt.cudaFree(ptr)


class _PyCuda:
    def __init__(self):
        import pycuda.autoinit  # noqa: F401
        import pycuda.driver as cuda
        self.cuda = cuda
        self.stream = cuda.Stream()
        self._allocs = {}

    def device_name(self) -> str:
        return self.cuda.Device(0).name()

    def alloc(self, nbytes: int) -> int:
        a = self.cuda.mem_alloc(nbytes)
        self._allocs[int(a)] = a
        return int(a)

    def htod(self, dst: int, arr: np.ndarray) -> None:
        self.cuda.memcpy_htod_async(dst, arr, self.stream)

    def dtoh(self, arr: np.ndarray, src: int) -> None:
        self.cuda.memcpy_dtoh_async(arr, src, self.stream)

    def sync(self) -> None:
        self.stream.synchronize()

    @property
    def stream_handle(self) -> int:
        return self.stream.handle

    def free(self, ptr: int) -> None:
        a = self._allocs.pop(ptr, None)
        if a is not None:
            a.free()


def cuda_buffers():
    errors = []
    for cls in (_CudaRT, _PyCuda):
        try:
            return cls()
        except ImportError as e:
            errors.append(str(e))
        except Exception as e:  # CUDA present but failing (no GPU / driver)
            raise BackendUnavailable(f"CUDA is not usable here ({e}); TensorRT needs an NVIDIA GPU (Jetson)") from e
    raise BackendUnavailable(CUDA_HINT)


class TensorRTBackend(Backend):
    name = "tensorrt"
    suffixes = (".engine", ".plan", ".trt")

    def _load(self) -> None:
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"model file not found: {self.path}")
        trt = import_tensorrt()
        self.trt = trt
        self.cuda = cuda_buffers()
        engine_path = self.path
        if self.path.lower().endswith(".onnx"):
            precision = self.options.precision or "fp16"
            engine_path = cached_engine(self.path, precision, self.cuda.device_name(), self.options.cache_dir)
        self.engine_path = engine_path
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(logger)
        with open(engine_path, "rb") as f:
            self.engine = self.runtime.deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise BackendUnavailable(f"{engine_path}: TensorRT could not deserialize this engine (built for another "
                                     f"TensorRT version or GPU?); delete it to rebuild from the ONNX")
        self.context = self.engine.create_execution_context()
        self._v3 = hasattr(self.engine, "num_io_tensors")
        names = self._io_names()
        ins = [n for n in names if self._is_input(n)]
        outs = [n for n in names if not self._is_input(n)]
        if len(ins) != 1 or not outs:
            raise ValueError(f"{engine_path}: expected 1 input, got {len(ins)}")
        self._names = names        # binding-index order (execute_v2 wants every binding, in order)
        self._in_i, self._out_i = names.index(ins[0]), names.index(outs[0])
        self._host = []
        self._dev = []
        for n in self._names:
            shape = tuple(max(1, int(s)) for s in self._shape(n))
            dtype = np.dtype(trt.nptype(self._dtype(n)))
            arr = np.empty(shape, dtype=dtype)
            self._host.append(arr)
            self._dev.append(self.cuda.alloc(arr.nbytes))
            dynamic = self._is_input(n) and any(int(d) < 0 for d in self._shape(n))
            if self._v3:
                if dynamic:
                    self.context.set_input_shape(n, shape)
                self.context.set_tensor_address(n, self._dev[-1])
            elif dynamic:  # TensorRT 8.2
                self.context.set_binding_shape(self.engine.get_binding_index(n), shape)
        self.input = TensorInfo(ins[0], self._host[self._in_i].shape, self._host[self._in_i].dtype.name)
        self.output = TensorInfo(outs[0], self._host[self._out_i].shape, self._host[self._out_i].dtype.name)

    # API differences between TensorRT 8.2 and >= 8.5 ----------------------------------------
    def _io_names(self) -> List[str]:
        if self._v3:
            return [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        return [self.engine.get_binding_name(i) for i in range(self.engine.num_bindings)]

    def _is_input(self, name: str) -> bool:
        if self._v3:
            return self.engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT
        return self.engine.binding_is_input(name)

    def _shape(self, name: str):
        return self.engine.get_tensor_shape(name) if self._v3 else self.engine.get_binding_shape(name)

    def _dtype(self, name: str):
        return self.engine.get_tensor_dtype(name) if self._v3 else self.engine.get_binding_dtype(name)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        i, o = self._in_i, self._out_i
        np.copyto(self._host[i], x.astype(self._host[i].dtype, copy=False))   # fp16 engines: cast once here
        self.cuda.htod(self._dev[i], self._host[i])
        if self._v3:
            self.context.execute_async_v3(self.cuda.stream_handle)
        else:
            self.cuda.sync()
            self.context.execute_v2(self._dev)
        self.cuda.dtoh(self._host[o], self._dev[o])
        self.cuda.sync()
        return self._host[o].astype(np.float32).copy()

    def describe(self) -> dict:
        d = super().describe()
        d["engine"] = self.engine_path
        return d

    def close(self) -> None:
        for p in getattr(self, "_dev", []):
            self.cuda.free(p)
        self._dev = []
        self.context = self.engine = None
