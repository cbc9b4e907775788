"""TensorRT engine builder for the Jetson (and x86 hosts with an NVIDIA GPU): ONNX -> .engine.

Runs where the ``tensorrt`` Python package imports (JetPack ships it as python3-libnvinfer; pip gives
TensorRT 11). What to build is decided in one place, ``edge.trt_build`` (shared with the device):
APIs by feature for TensorRT 8.2 / 8.5-8.6 / 10 / 11, FP16 from the FP16 flag or (11, strongly typed)
from the FP16 ONNX, INT8 by explicit quantization from the QDQ ONNX that ``quantize.onnx_export``
writes from the QAT int8 model. An ``IInt8EntropyCalibrator2`` is used only where it still exists
(8.x, 10) and calibration samples are passed without a QDQ ONNX. Engines are cached under the one
key host and device share (``engine_name``: model sha + TensorRT version + GPU name and compute
capability + precision). ``trtexec_command`` prints the equivalent command line for a given
TensorRT release (its flags changed in 8.4 and 11).

Everything up to the ``tensorrt`` import (names, batching of calibration data, the command line, the
"not installed" message) is plain Python and tested on any host, and the build itself is tested
against fake ``tensorrt`` modules of each release (tests/fakes/); the real build needs the GPU.
"""
import os
import re
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence

import numpy as np

from edge.trt_build import (PRECISIONS, TrtApi, build_serialized, engine_cache_name, engine_file_name, plan_build,
                            sha256_file, variant_path, write_atomic)
from edge.trt_cuda import CudaUnavailable, current_gpu, open_cuda

INSTALL_HINT = ("TensorRT Python bindings are not installed: on a Jetson they come with JetPack "
                "(`sudo apt-get install python3-libnvinfer`, or `sudo apt-get install nvidia-jetpack`); on an "
                "x86-64 host with an NVIDIA GPU `pip install tensorrt`. Alternative: build the engine with "
                "the trtexec command printed by `edge-quantize` (in /usr/src/tensorrt/bin on a Jetson)")


class TensorRTUnavailable(RuntimeError):
    """tensorrt (or a GPU) is missing here; the message says what to install on which device."""


file_sha256 = sha256_file


def engine_name(model_sha256: str, trt_version: str, device, precision: str, stem: str = "model") -> str:
    """The engine cache key (``edge.trt_build.engine_file_name``, the one function host and device
    share): changes whenever the model, the TensorRT version, the GPU (name + compute capability)
    or the precision changes (engines are not portable)."""
    return engine_file_name(stem, model_sha256, trt_version, device, precision)


def engine_path(cache_dir: str, onnx_path: str, trt_version: str, device, precision: str) -> str:
    """Where the engine for ``onnx_path`` lives in ``cache_dir``: the device-side loader computes the
    same name (``edge.trt_build.engine_cache_name``), so an engine built here is found there."""
    return os.path.join(cache_dir, engine_cache_name(onnx_path, trt_version, device, precision))


# trtexec flags per TensorRT release, as its sources (samples/common/sampleOptions.cpp) define them:
# --workspace=N (MiB) until 8.2, --memPoolSize=workspace:N from 8.4 (N in MiB, suffixes from 10);
# --fp16/--int8 until 10; 11 has no --fp16 (strongly typed: the ONNX's types decide) and only a
# no-op --stronglyTyped, so its fp16/int8 engines come from the FP16 / QDQ ONNX.
TRTEXEC_FAMILIES = ("8.2", "8.4-10", "11")


def trtexec_family(trt_version: str) -> str:
    """``8.2`` (<8.4), ``8.4-10`` or ``11`` (>= 11) for a TensorRT version string (trtexec is a
    binary: its flags can only be known from the version it comes with)."""
    try:
        major, minor = (int(x) for x in re.findall(r"\d+", str(trt_version))[:2])
    except ValueError:
        raise ValueError(f"not a TensorRT version: {trt_version!r}") from None
    if (major, minor) < (8, 4):
        return "8.2"
    return "8.4-10" if major < 11 else "11"


def trtexec_command(onnx_path: str, engine_out: str, precision: str = "fp16",
                    calib_cache: Optional[str] = None, workspace_mib: int = 1024,
                    trt_version: str = "10.3") -> str:
    """The equivalent ``trtexec`` invocation for the TensorRT ``trt_version`` (JetPack:
    /usr/src/tensorrt/bin/trtexec). ``onnx_path`` is the ONNX for ``precision``: the float one for
    fp32 (and fp16 before 11), the FP16 ONNX for fp16 on 11, the QDQ ONNX for int8."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} not one of {PRECISIONS}")
    family = trtexec_family(trt_version)
    parts = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_out}"]
    parts.append(f"--workspace={int(workspace_mib)}" if family == "8.2"
                 else f"--memPoolSize=workspace:{int(workspace_mib)}")
    if family != "11":
        if precision == "fp16":
            parts.append("--fp16")
        elif precision == "int8":
            parts += ["--int8", "--fp16"]   # QDQ ONNX (or --calib); fp16 for the layers without int8
            if calib_cache:
                parts.append(f"--calib={calib_cache}")
    return " ".join(parts)


def trtexec_commands(onnx_path: str, engine_out: str, precision: str = "fp16", workspace_mib: int = 1024) -> dict:
    """``{family: command}`` for each trtexec family (bundle notes: the device's TensorRT is unknown)."""
    versions = {"8.2": "8.2", "8.4-10": "10.3", "11": "11.1"}
    onnx = {"fp32": onnx_path, "fp16": onnx_path, "int8": variant_path(onnx_path, "int8")}[precision]
    out = {}
    for fam in TRTEXEC_FAMILIES:
        src = variant_path(onnx_path, "fp16") if (fam == "11" and precision == "fp16") else onnx
        out[fam] = trtexec_command(src, engine_out, precision, workspace_mib=workspace_mib, trt_version=versions[fam])
    return out


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


def make_calibrator(batches: CalibrationBatches, cache_file: str, cuda=None):
    """An ``IInt8EntropyCalibrator2`` over ``batches`` with a calibration cache (needs tensorrt + CUDA).
    Only for TensorRT versions that still have calibrators (8.x, 10); 11 builds INT8 from a QDQ ONNX."""
    trt = _import_trt()
    if not hasattr(trt, "IInt8EntropyCalibrator2"):
        raise TensorRTUnavailable(f"TensorRT {trt.__version__} has no INT8 calibrator: build INT8 from the QDQ "
                                  f"ONNX (quantize.onnx_export.export_qdq)")
    try:
        cuda = cuda or open_cuda()
    except CudaUnavailable as e:
        raise TensorRTUnavailable(f"INT8 calibration: {e}") from e

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._iter = iter(batches)
            self._dev = cuda.alloc(batches.nbytes)

        def get_batch_size(self):
            return batches.batch_size

        def get_batch(self, names):
            try:
                b = next(self._iter)
            except StopIteration:
                return None
            cuda.htod(self._dev, b)
            cuda.sync()
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
    precision: str          # what the engine is (a fallback may differ from the precision asked for)
    trt_version: str
    device: str             # GPU identity in the cache key: "<name> sm<cc>"
    onnx: str = ""          # the ONNX variant it was built from
    notices: List[str] = field(default_factory=list)


def device_name(cuda=None) -> str:
    """The GPU identity for the cache key, ``<CUDA device name> sm<major><minor>``: the same on the
    host and on the device (edge.trt_cuda), so an engine built by edge-quantize on a Jetson is reused
    by edge-run there."""
    try:
        return current_gpu(cuda).ident()
    except CudaUnavailable as e:
        raise TensorRTUnavailable(f"the engine cache key needs the GPU: {e}") from e


def build_engine(onnx_path: str, cache_dir: str, precision: str = "fp16",
                 calibration: Optional[CalibrationBatches] = None, workspace_mib: int = 1024,
                 log=print) -> EngineBuild:
    """Build (or reuse from ``cache_dir``) a serialized TensorRT engine for ``onnx_path``.

    ``onnx_path`` is the part's float ONNX; its FP16 (``<part>_fp16.onnx``) and QDQ int8
    (``<part>_int8.onnx``) variants next to it are used where the plan needs them
    (``edge.trt_build.plan_build``). ``calibration`` is used only for INT8 without a QDQ ONNX, and
    only on a TensorRT that still has calibrators."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} not one of {PRECISIONS}")
    trt = _import_trt()
    api = TrtApi(trt)
    plan = plan_build(api, onnx_path, precision, calibration=calibration is not None)
    if precision == "int8" and plan.precision != "int8":
        raise ValueError(f"int8 needs the QDQ ONNX {variant_path(onnx_path, 'int8')} (quantize.onnx_export."
                         f"export_qdq from the QAT int8 model)" + ("" if api.calibrator else
                         f"; TensorRT {api.version} has no calibrator") + " or calibration samples")
    try:
        cuda = open_cuda()
    except CudaUnavailable as e:
        raise TensorRTUnavailable(str(e)) from e
    device = device_name(cuda)
    os.makedirs(cache_dir, exist_ok=True)
    out = engine_path(cache_dir, plan.onnx, trt.__version__, device, plan.precision)
    if os.path.exists(out):
        return EngineBuild(out, True, plan.precision, trt.__version__, device, plan.onnx, plan.notices)
    for n in plan.notices:
        log(f"note: {n}")
    calibrator = (make_calibrator(calibration, out[:-len(".engine")] + ".calib", cuda)
                  if plan.calibrate else None)
    log(f"building TensorRT {trt.__version__} {plan.precision} engine from {plan.onnx} "
        f"(flags: {', '.join(plan.flags) or 'none, strongly typed'}; minutes on a Jetson) ...")
    write_atomic(out, build_serialized(trt, plan, workspace_mib, calibrator=calibrator))
    return EngineBuild(out, False, plan.precision, trt.__version__, device, plan.onnx, plan.notices)


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
