"""TensorRT engine builder for the Jetson (and x86 hosts with an NVIDIA GPU): ONNX -> .engine.

Runs where the ``tensorrt`` Python package imports (JetPack ships it as python3-libnvinfer). Engines
are specific to the TensorRT version and the GPU they were built on, so they are cached under a name
that encodes both, plus the model's sha256 prefix and the precision (``engine_name``). INT8 uses an
``IInt8EntropyCalibrator2`` fed by the same representative training clips as the TFLite int8 export,
with a calibration cache so a rebuild skips calibration. ``trtexec_command`` prints the equivalent
command line, the usual alternative on a Jetson.

Everything up to the ``tensorrt`` import (names, batching of calibration data, the command line, the
"not installed" message) is plain Python and tested on any host; the build itself needs the device.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import numpy as np

from edge.trt_build import parse_onnx, slug

PRECISIONS = ("fp32", "fp16", "int8")
INSTALL_HINT = ("TensorRT Python bindings are not installed: on a Jetson they come with JetPack "
                "(`sudo apt-get install python3-libnvinfer`, or `sudo apt-get install nvidia-jetpack`); on an "
                "x86-64 host with an NVIDIA GPU `pip install tensorrt`. Alternative: build the engine with "
                "the trtexec command printed by `edge-quantize` (in /usr/src/tensorrt/bin on a Jetson)")


class TensorRTUnavailable(RuntimeError):
    """tensorrt (or a GPU) is missing here; the message says what to install on which device."""


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def engine_name(model_sha256: str, trt_version: str, device: str, precision: str, stem: str = "model") -> str:
    """``<stem>-<sha12>-trt<version>-<device>-<precision>.engine``: a cache key that changes whenever
    the model, the TensorRT version, the GPU or the precision changes (engines are not portable).
    Pure function; the same format as ``edge.trt_build.engine_cache_name`` (the device-side cache),
    checked by tests/test_tensorrt.py."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} not one of {PRECISIONS}")
    if not re.fullmatch(r"[0-9a-fA-F]{12,64}", model_sha256 or ""):
        raise ValueError(f"model_sha256 must be a hex digest, got {model_sha256!r}")
    return f"{stem}-{model_sha256[:12].lower()}-trt{slug(trt_version)}-{slug(device)}-{precision}.engine"


def engine_path(cache_dir: str, onnx_path: str, trt_version: str, device: str, precision: str) -> str:
    """Where the engine for ``onnx_path`` lives in ``cache_dir``: the same key the device-side loader
    (``edge.trt_build.engine_cache_name``) computes, so an engine built here is found there."""
    stem = os.path.splitext(os.path.basename(onnx_path))[0]
    return os.path.join(cache_dir, engine_name(file_sha256(onnx_path), trt_version, device, precision, stem))


def trtexec_command(onnx_path: str, engine_out: str, precision: str = "fp16",
                    calib_cache: Optional[str] = None, workspace_mib: int = 1024) -> str:
    """The equivalent ``trtexec`` invocation (JetPack: /usr/src/tensorrt/bin/trtexec)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} not one of {PRECISIONS}")
    parts = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_out}",
             f"--memPoolSize=workspace:{int(workspace_mib)}M"]
    if precision == "fp16":
        parts.append("--fp16")
    elif precision == "int8":
        parts += ["--int8", "--fp16"]   # fp16 fallback for layers without int8 kernels
        if calib_cache:
            parts.append(f"--calib={calib_cache}")
    return " ".join(parts)


class CalibrationBatches:
    """Representative inputs cut into fixed-size float32 batches for an INT8 calibrator.

    Device-free on purpose: the calibrator only copies each batch to the GPU. The last partial batch
    is padded by repeating samples (TensorRT wants every batch full); ``len`` is the batch count."""

    def __init__(self, samples: Sequence[np.ndarray], batch_size: int = 1):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.samples = [np.asarray(s, dtype=np.float32) for s in samples]
        if not self.samples:
            raise ValueError("calibration needs at least one sample")
        shapes = {s.shape for s in self.samples}
        if len(shapes) != 1:
            raise ValueError(f"calibration samples differ in shape: {sorted(shapes)}")
        self.batch_size = int(batch_size)
        self.sample_shape = self.samples[0].shape

    @property
    def batch_shape(self):
        return (self.batch_size,) + tuple(self.sample_shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.batch_shape)) * 4

    def __len__(self) -> int:
        return (len(self.samples) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[np.ndarray]:
        n = len(self.samples)
        for start in range(0, n, self.batch_size):
            idx = [(start + i) % n if start + i >= n else start + i for i in range(self.batch_size)]
            yield np.ascontiguousarray(np.stack([self.samples[i] for i in idx]))


def _import_trt():
    try:
        import tensorrt as trt
        return trt
    except ImportError as e:
        raise TensorRTUnavailable(INSTALL_HINT) from e


def make_calibrator(batches: CalibrationBatches, cache_file: str):
    """An ``IInt8EntropyCalibrator2`` over ``batches`` with a calibration cache (needs tensorrt + CUDA)."""
    trt = _import_trt()
    try:
        from cuda import cudart  # cuda-python
    except ImportError as e:
        raise TensorRTUnavailable("INT8 calibration needs cuda-python (`pip install cuda-python` matching "
                                  "the CUDA of your JetPack)") from e

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._iter = iter(batches)
            err, self._dev = cudart.cudaMalloc(batches.nbytes)
            if int(err) != 0:
                raise RuntimeError(f"cudaMalloc failed ({err})")

        def get_batch_size(self):
            return batches.batch_size

        def get_batch(self, names):
            try:
                b = next(self._iter)
            except StopIteration:
                return None
            cudart.cudaMemcpy(self._dev, b.ctypes.data, b.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice)
            return [int(self._dev)]

        def read_calibration_cache(self):
            if os.path.exists(cache_file):
                with open(cache_file, "rb") as f:
                    return f.read()
            return None

        def write_calibration_cache(self, cache):
            with open(cache_file, "wb") as f:
                f.write(bytes(cache))

    return EntropyCalibrator()


@dataclass
class EngineBuild:
    path: str
    cached: bool
    precision: str
    trt_version: str
    device: str


def device_name() -> str:
    """GPU name for the cache key (Jetson: the module model from the device tree)."""
    for p in ("/proc/device-tree/model",):
        if os.path.exists(p):
            with open(p, "rb") as f:
                return f.read().decode(errors="ignore").strip("\x00 \n") or "jetson"
    try:
        from cuda import cudart
        err, props = cudart.cudaGetDeviceProperties(0)
        if int(err) == 0:
            return props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    except Exception:
        pass
    return "gpu"


def build_engine(onnx_path: str, cache_dir: str, precision: str = "fp16",
                 calibration: Optional[CalibrationBatches] = None, workspace_mib: int = 1024,
                 log=print) -> EngineBuild:
    """Build (or reuse from ``cache_dir``) a serialized TensorRT engine for ``onnx_path``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} not one of {PRECISIONS}")
    if precision == "int8" and calibration is None:
        raise ValueError("int8 needs calibration samples (representative training clips)")
    trt = _import_trt()
    device = device_name()
    os.makedirs(cache_dir, exist_ok=True)
    out = engine_path(cache_dir, onnx_path, trt.__version__, device, precision)
    if os.path.exists(out):
        return EngineBuild(out, True, precision, trt.__version__, device)
    builder, network, config, _parser = parse_onnx(trt, onnx_path, workspace_mib)
    if precision in ("fp16", "int8") and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        if not builder.platform_has_fast_int8:
            log("warning: this GPU has no fast INT8; building anyway")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = make_calibrator(calibration, out[:-len(".engine")] + ".calib")
    log(f"building TensorRT {precision} engine for {onnx_path} (minutes on a Jetson) ...")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine for {onnx_path}")
    with open(out, "wb") as f:
        f.write(serialized)
    return EngineBuild(out, False, precision, trt.__version__, device)


def available() -> Optional[str]:
    """None when tensorrt imports here; otherwise the install hint."""
    try:
        _import_trt()
        return None
    except TensorRTUnavailable as e:
        return str(e)


def calibration_samples(clips: np.ndarray, part: str = "full", max_samples: int = 64) -> List[np.ndarray]:
    """Clips (or, for an encoder, individual frames) for calibration, at most ``max_samples``."""
    if part == "encoder":
        frames = clips.reshape((-1,) + clips.shape[2:])
        step = max(len(frames) // max_samples, 1)
        return [f for f in frames[::step][:max_samples]]
    return [c for c in clips[:max_samples]]
