"""TensorRT on a Jetson (or a dGPU host): an engine from the bundle (``.engine``/``.plan``), or one
built from the bundle's ONNX on the first run and cached (``edge.trt_build``).

An engine built for another TensorRT version or GPU (its name carries the cache key), or one that
TensorRT refuses to deserialize, is rebuilt from the ONNX next to it with a one-line notice.
Buffers go through ``edge.trt_cuda`` (cuda-python's ``cuda.bindings.runtime`` / ``cuda.cudart`` or
pycuda). The I/O API is chosen by feature: named tensors + ``set_tensor_address`` +
``execute_async_v3`` (TensorRT 8.5+, 10, 11) or bindings + ``execute_v2`` (TensorRT 8.2, JetPack 4.6).

Batches: an engine built from an ONNX with a dynamic batch dimension has one optimization profile
(batch 1 .. ``max_batch``, ``BackendOptions.extra["max_batch"]``, default ``DEFAULT_MAX_BATCH``);
``infer`` then takes (N, ...) inputs, sets the input shape per call (``set_input_shape`` /
``set_binding_shape``) and splits N above the profile's max into several calls. A batch-1 engine
runs one frame per call (``max_batch`` == 1).
Python 3.6 compatible.
"""
import logging
import os
from typing import List

import numpy as np

from ..trt_build import DEFAULT_MAX_BATCH, TRT_HINT, TrtApi, check_max_batch, cached_engine, foreign_reason, rebuild_source, stale_reason
from ..trt_cuda import CudaUnavailable, open_cuda
from .base import Backend, BackendUnavailable, TensorInfo

log = logging.getLogger(__name__)
PRECISION_ALIASES = {"float32": "fp32", "float16": "fp16", "fp32": "fp32", "fp16": "fp16", "int8": "int8"}


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendUnavailable(TRT_HINT) from e
    return trt


def cuda_buffers():
    """The CUDA memory/stream helper (``edge.trt_cuda``), as BackendUnavailable when missing."""
    try:
        return open_cuda()
    except CudaUnavailable as e:
        raise BackendUnavailable(str(e)) from e


def deserialize(runtime, path):
    """The engine in ``path``, or None when TensorRT refuses it (other version/GPU, corrupt file)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return runtime.deserialize_cuda_engine(data)
    except Exception as e:  # some versions raise instead of returning None
        log.debug("deserialize_cuda_engine(%s) raised %s", path, e)
        return None


class _TensorIO(object):
    """Named I/O tensors: TensorRT >= 8.5 (``execute_async_v3``)."""

    def __init__(self, trt, engine, context):
        self.trt, self.engine, self.context = trt, engine, context

    def names(self) -> List[str]:
        return [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]

    def is_input(self, name: str) -> bool:
        return self.engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT

    def shape(self, name: str):
        return self.engine.get_tensor_shape(name)

    def dtype(self, name: str):
        return self.engine.get_tensor_dtype(name)

    def bind(self, name: str, ptr: int, shape, dynamic: bool) -> None:
        if dynamic:
            self.set_shape(name, shape)
        self.context.set_tensor_address(name, ptr)

    def set_shape(self, name: str, shape) -> None:
        if self.context.set_input_shape(name, tuple(int(d) for d in shape)) is False:
            raise ValueError("TensorRT refused input shape {} for {} (outside the engine's profile {})".format(
                tuple(shape), name, self.profile(name)))

    def profile(self, name: str):
        """(min, opt, max) shapes of input ``name`` in optimization profile 0."""
        return [tuple(int(d) for d in s) for s in self.engine.get_tensor_profile_shape(name, 0)]

    def execute(self, cuda, ptrs: List[int]) -> None:
        self.context.execute_async_v3(cuda.stream_handle)


class _BindingIO(_TensorIO):
    """Bindings: TensorRT 8.2 (JetPack 4.6), ``execute_v2`` with every device pointer in order."""

    def names(self) -> List[str]:
        return [self.engine.get_binding_name(i) for i in range(self.engine.num_bindings)]

    def is_input(self, name: str) -> bool:
        return self.engine.binding_is_input(name)

    def shape(self, name: str):
        return self.engine.get_binding_shape(name)

    def dtype(self, name: str):
        return self.engine.get_binding_dtype(name)

    def bind(self, name: str, ptr: int, shape, dynamic: bool) -> None:
        if dynamic:
            self.set_shape(name, shape)

    def set_shape(self, name: str, shape) -> None:
        ok = self.context.set_binding_shape(self.engine.get_binding_index(name), tuple(int(d) for d in shape))
        if ok is False:
            raise ValueError("TensorRT refused input shape {} for {} (outside the engine's profile {})".format(
                tuple(shape), name, self.profile(name)))

    def profile(self, name: str):
        return [tuple(int(d) for d in s)
                for s in self.engine.get_profile_shape(0, self.engine.get_binding_index(name))]

    def execute(self, cuda, ptrs: List[int]) -> None:
        cuda.sync()
        self.context.execute_v2(ptrs)


def engine_io(trt, engine, context):
    if all(hasattr(o, n) for o, n in ((engine, "num_io_tensors"), (context, "set_tensor_address"),
                                      (context, "execute_async_v3"))):
        return _TensorIO(trt, engine, context)
    return _BindingIO(trt, engine, context)


class TensorRTBackend(Backend):
    name = "tensorrt"
    suffixes = (".engine", ".plan", ".trt")

    def _load(self) -> None:
        if not os.path.exists(self.path):
            raise FileNotFoundError("model file not found: {}".format(self.path))
        trt = import_tensorrt()
        self.trt = trt
        self.cuda = cuda_buffers()
        self.gpu = self.cuda.gpu()
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine_path, self.engine = self._open_engine()
        self.context = self.engine.create_execution_context()
        self.io = engine_io(trt, self.engine, self.context)
        self._allocate()

    # engine: cached, from the bundle, or rebuilt ---------------------------------------------
    @property
    def precision(self) -> str:
        p = self.options.precision or "fp16"
        if p not in PRECISION_ALIASES:
            raise ValueError("tensorrt precision {!r}: use fp32, fp16 or int8".format(p))
        return PRECISION_ALIASES[p]

    @property
    def requested_max_batch(self) -> int:
        """Profile max for engines built here: ``BackendOptions.extra["max_batch"]`` or the default."""
        return check_max_batch(self.options.extra.get("max_batch", DEFAULT_MAX_BATCH))

    def _build(self, onnx_path: str, precision: str):
        def build():
            return cached_engine(onnx_path, precision, self.gpu, self.options.cache_dir, notice=log.warning,
                                 max_batch=self.requested_max_batch)

        path = build()
        engine = deserialize(self.runtime, path)
        if engine is None:  # a stale cache entry (e.g. written by a crashed build): rebuild once
            log.warning("%s: TensorRT could not deserialize the cached engine: rebuilding", os.path.basename(path))
            os.remove(path)
            path = build()
            engine = deserialize(self.runtime, path)
        if engine is None:
            raise BackendUnavailable("{}: TensorRT {} built an engine it cannot load; delete {} and retry".format(
                onnx_path, self.trt.__version__, path))
        return path, engine

    def _open_engine(self):
        if self.path.lower().endswith(".onnx"):
            return self._build(self.path, self.precision)
        reason = foreign_reason(self.path, self.trt.__version__, self.gpu) or stale_reason(self.path)
        engine = None if reason else deserialize(self.runtime, self.path)
        if engine is not None:
            return self.path, engine
        reason = reason or "TensorRT {} could not deserialize it".format(self.trt.__version__)
        src = rebuild_source(self.path)
        if src is None:
            raise BackendUnavailable("{}: {}, and there is no ONNX next to it to rebuild from: rebuild the bundle "
                                     "with `edge-quantize ... --formats onnx`".format(self.path, reason))
        onnx_path, built_precision = src
        log.warning("%s: %s: rebuilding from %s", os.path.basename(self.path), reason, os.path.basename(onnx_path))
        return self._build(onnx_path, built_precision or self.precision)

    # buffers ---------------------------------------------------------------------------------
    def _allocate(self) -> None:
        names = self.io.names()
        ins = [n for n in names if self.io.is_input(n)]
        outs = [n for n in names if not self.io.is_input(n)]
        if len(ins) != 1 or not outs:
            raise ValueError("{}: expected 1 input and at least 1 output, got {} and {}".format(
                self.engine_path, len(ins), len(outs)))
        self._names = names        # binding order (execute_v2 wants every pointer, in order)
        self._in_i, self._out_i = names.index(ins[0]), names.index(outs[0])
        self.max_batch = self._profile_max_batch(ins[0])
        self._host = []  # type: List[np.ndarray]
        self._dev = []  # type: List[int]
        one = []  # type: List[tuple]   (shape of one call with batch 1 where the batch is dynamic)
        for n in names:
            raw = [int(s) for s in self.io.shape(n)]
            shape = tuple(max(1, s) for s in raw)
            one.append(shape)
            full = (self.max_batch,) + shape[1:] if raw and raw[0] < 0 else shape   # room for max_batch
            arr = np.empty(full, dtype=np.dtype(self.trt.nptype(self.io.dtype(n))))
            self._host.append(arr)
            self._dev.append(self.cuda.alloc(arr.nbytes))
            self.io.bind(n, self._dev[-1], shape, self.io.is_input(n) and any(s < 0 for s in raw))
        self.input = TensorInfo(ins[0], one[self._in_i], self._host[self._in_i].dtype.name)
        self.output = TensorInfo(outs[0], one[self._out_i], self._host[self._out_i].dtype.name)

    def _profile_max_batch(self, name: str) -> int:
        """The largest batch the engine takes: its profile's max for a dynamic batch, else 1."""
        raw = [int(s) for s in self.io.shape(name)]
        if not raw or raw[0] >= 0:
            return 1
        if any(s < 0 for s in raw[1:]):
            raise ValueError("{}: input {} has dynamic dims {} besides the batch; rebuild the ONNX with a fixed "
                             "frame size".format(self.engine_path, name, raw))
        return max(1, int(self.io.profile(name)[2][0]))

    def infer(self, x: np.ndarray) -> np.ndarray:
        """(N, ...) float32 -> (N, ...) outputs; N > 1 needs a dynamic-batch engine (``max_batch`` > 1)
        and is split into calls of at most ``max_batch``."""
        x = np.asarray(x, dtype=np.float32)
        if self.max_batch > 1 and x.ndim == len(self.input.shape) and x.shape[1:] == self.input.shape[1:]:
            return np.concatenate([self._infer(x[i:i + self.max_batch])
                                   for i in range(0, len(x), self.max_batch)]) if len(x) else x
        return super().infer(x)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        i, o, n = self._in_i, self._out_i, int(x.shape[0])
        host_in, host_out = self._host[i][:n], self._host[o][:n]
        if self.max_batch > 1:
            self.io.set_shape(self._names[i], x.shape)
        np.copyto(host_in, x.astype(host_in.dtype, copy=False))   # fp16 I/O: cast once here
        self.cuda.htod(self._dev[i], host_in)
        self.io.execute(self.cuda, self._dev)
        self.cuda.dtoh(host_out, self._dev[o])
        self.cuda.sync()
        return host_out.astype(np.float32).copy()

    def describe(self) -> dict:
        d = super().describe()
        d["engine"] = self.engine_path
        d["tensorrt"] = {"version": self.trt.__version__, "gpu": self.gpu.ident(),
                         "io_api": "bindings" if isinstance(self.io, _BindingIO) else "tensors",
                         "cuda": getattr(self.cuda, "layout", "?"), "max_batch": self.max_batch,
                         "features": TrtApi(self.trt).describe()}
        return d

    def close(self) -> None:
        for p in getattr(self, "_dev", []):
            self.cuda.free(p)
        self._dev = []
        self.context = self.engine = None
