"""TensorRT engines from ONNX, for every TensorRT the boards carry: 8.2 (JetPack 4.6), 8.5/8.6
(JetPack 5), 10.x (JetPack 6) and 11.x (``pip install tensorrt`` today).

One module decides everything an engine build depends on, and both the device (``edge-run``,
through ``edge.backends.tensorrt``) and the host/Jetson builder (``quantize/tensorrt.py``) call it:

- **API by feature, never by version string** (``TrtApi``): TensorRT 11 removed ``BuilderFlag.FP16/INT8``,
  ``Builder.platform_has_fast_fp16``, ``IBuilderConfig.int8_calibrator`` and the calibrators (networks
  are strongly typed: the ONNX's own types decide); 8.2 has ``max_workspace_size`` and no memory pools.
- **Precision by ONNX variant** (``plan_build``): fp32 from ``<part>.onnx``; fp16 from the FP16 flag where
  it exists, else from ``<part>_fp16.onnx`` (an FP16 ONNX); int8 by explicit quantization from
  ``<part>_int8.onnx`` (QuantizeLinear/DequantizeLinear with the scales learned in QAT), on every version.
  The calibrator path is used only where the API still has it and calibration data is passed.
- **One cache key** (``engine_file_name``): model sha256 + max batch + TensorRT version + GPU name and
  compute capability + precision.
- **Dynamic batch** (``add_batch_profile``): an ONNX whose batch dimension is dynamic gets one
  optimization profile (min 1, opt = max = ``max_batch``, default ``DEFAULT_MAX_BATCH``); a batch-1 ONNX
  builds a batch-1 engine. A host-built engine is found by the device under the same name.
- **Foreign or stale engines are rebuilt** (``foreign_reason`` / ``rebuild_source``), not an abort.

Python 3.6 compatible (JetPack 4.6); ``tensorrt`` is imported only inside the functions that build.
"""
import logging
import os
import re
from typing import Callable, Dict, List, Optional, Tuple

from .bundle import file_sha256
from .trt_cuda import GpuInfo

log = logging.getLogger(__name__)

TRT_HINT = ("TensorRT is not importable: TensorRT comes with JetPack: `sudo apt-get install python3-libnvinfer` "
            "(or `sudo apt-get install nvidia-jetpack`); on a dGPU host `pip install tensorrt`")
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_MAX_BATCH = 8   # frames per TensorRT call (several cameras); an engine's key carries it
VARIANT_SUFFIX = {"fp32": "", "fp16": "_fp16", "int8": "_int8"}   # <part><suffix>.onnx
ENGINE_RE = re.compile(r"^(?P<stem>.+)-(?P<sha>[0-9a-f]{12})(?:-b(?P<max_batch>[0-9]+))?-trt(?P<trt>[0-9a-z][a-z0-9.]*)-(?P<gpu>[a-z0-9.-]+)-"
                       r"(?P<precision>fp32|fp16|int8)\.engine$")


# ---- cache key ----------------------------------------------------------------------------------
sha256_file = file_sha256  # the project's one file hasher (edge.bundle)


def sha256_prefix(path, n=12):
    # type: (str, int) -> str
    return sha256_file(path)[:n]


def slug(text):
    # type: (object) -> str
    """Lower-case file-name-safe form of a version or device name (part of the engine cache key)."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(text)).strip("-").lower() or "unknown"


def gpu_ident(gpu):
    # type: (object) -> str
    """``GpuInfo`` -> ``<name> sm<cc>``; a string is taken as already being an identity."""
    return gpu.ident() if isinstance(gpu, GpuInfo) else str(gpu)


def engine_file_name(stem, model_sha256, trt_version, gpu, precision, max_batch=DEFAULT_MAX_BATCH):
    # type: (str, str, str, object, str, int) -> str
    """THE engine cache key, used by host and device:
    ``<stem>-<sha12>-b<max_batch>-trt<ver>-<gpu sm>-<precision>.engine``. Changes whenever the model,
    the max batch, the TensorRT version, the GPU (name or compute capability) or the precision
    changes: engines are valid only where they were built, for the batch they were built for."""
    if precision not in PRECISIONS:
        raise ValueError("precision {!r} not one of {}".format(precision, PRECISIONS))
    if not re.match(r"^[0-9a-fA-F]{12,64}$", model_sha256 or ""):
        raise ValueError("model_sha256 must be a hex digest, got {!r}".format(model_sha256))
    return "{}-{}-b{}-trt{}-{}-{}.engine".format(stem, model_sha256[:12].lower(), check_max_batch(max_batch),
                                                 slug(trt_version), slug(gpu_ident(gpu)), precision)


def check_max_batch(max_batch):
    # type: (object) -> int
    """``max_batch`` as a positive int, else a ValueError that says what to pass."""
    try:
        n = int(max_batch)  # type: ignore
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(max_batch).strip() != str(n):
        raise ValueError("max_batch must be a whole number >= 1 (frames per TensorRT call), got {!r}".format(
            max_batch))
    return n


def engine_cache_name(onnx_path, trt_version, gpu, precision, max_batch=DEFAULT_MAX_BATCH):
    # type: (str, str, object, str, int) -> str
    """``engine_file_name`` for the ONNX file ``onnx_path`` (hashes its content)."""
    stem = os.path.splitext(os.path.basename(onnx_path))[0]
    return engine_file_name(stem, sha256_file(onnx_path), trt_version, gpu, precision, max_batch)


def parse_engine_name(path):
    # type: (str) -> Optional[Dict[str, str]]
    """The key fields of an engine file named by ``engine_file_name``; None for any other name."""
    m = ENGINE_RE.match(os.path.basename(path))
    return m.groupdict() if m else None


def foreign_reason(engine_path, trt_version, gpu):
    # type: (str, str, object) -> Optional[str]
    """Why the engine at ``engine_path`` was built for another TensorRT or GPU (from its name), or
    None when its name says it fits here (or carries no key)."""
    key = parse_engine_name(engine_path)
    if key is None:
        return None
    if key["trt"] != slug(trt_version):
        return "built with TensorRT {}, this is TensorRT {}".format(key["trt"], trt_version)
    if key["gpu"] != slug(gpu_ident(gpu)):
        return "built for GPU {}, this is {}".format(key["gpu"], gpu_ident(gpu))
    return None


def stale_reason(engine_path):
    # type: (str) -> Optional[str]
    """Why the engine is stale: the ONNX it was built from (``<stem>.onnx`` next to it) has changed
    since (its sha256 no longer matches the key in the engine's name); None when it has not or
    cannot be told."""
    key = parse_engine_name(engine_path)
    if key is None:
        return None
    src = os.path.join(os.path.dirname(os.path.abspath(engine_path)), key["stem"] + ".onnx")
    if os.path.isfile(src) and sha256_prefix(src) != key["sha"]:
        return "built from an older {}".format(os.path.basename(src))
    return None


def rebuild_source(engine_path):
    # type: (str) -> Optional[Tuple[str, Optional[str]]]
    """(float ONNX to rebuild ``engine_path`` from, precision it was built at or None), looked up next
    to the engine (and one directory up, for an ``engines/`` cache) by the stem its name carries."""
    key = parse_engine_name(engine_path)
    stem = key["stem"] if key else os.path.splitext(os.path.basename(engine_path))[0]
    base = re.sub(r"_(fp16|int8)$", "", stem)
    here = os.path.dirname(os.path.abspath(engine_path))
    for d in (here, os.path.dirname(here)):
        p = os.path.join(d, base + ".onnx")
        if os.path.isfile(p):
            return p, (key["precision"] if key else None)
    return None


# ---- API features ---------------------------------------------------------------------------------
class TrtApi(object):
    """What this ``tensorrt`` module offers, found by attribute (TensorRT 8.2 ... 11)."""

    def __init__(self, trt):
        flags = getattr(trt, "BuilderFlag", None)
        ndcf = getattr(trt, "NetworkDefinitionCreationFlag", None)
        self.version = str(getattr(trt, "__version__", "unknown"))
        self.fp16_flag = hasattr(flags, "FP16")
        self.int8_flag = hasattr(flags, "INT8")
        self.strongly_typed = not self.fp16_flag          # 11: the ONNX's types decide, always
        self.explicit_batch = hasattr(ndcf, "EXPLICIT_BATCH") and not hasattr(ndcf, "STRONGLY_TYPED")
        self.memory_pool = hasattr(getattr(trt, "IBuilderConfig", None), "set_memory_pool_limit")
        self.fast_fp16_query = hasattr(getattr(trt, "Builder", None), "platform_has_fast_fp16")
        self.calibrator = (hasattr(trt, "IInt8EntropyCalibrator2")
                           and hasattr(getattr(trt, "IBuilderConfig", None), "int8_calibrator"))
        self.tensor_io = hasattr(getattr(trt, "ICudaEngine", None), "num_io_tensors")

    def describe(self):
        # type: () -> Dict[str, object]
        return dict(self.__dict__)


# ---- ONNX variants and the build plan -------------------------------------------------------------
def base_onnx(onnx_path):
    # type: (str) -> str
    """``encoder_fp16.onnx`` / ``encoder_int8.onnx`` -> ``encoder.onnx`` (same directory)."""
    root, ext = os.path.splitext(onnx_path)
    return re.sub(r"_(fp16|int8)$", "", root) + ext


def variant_path(onnx_path, precision):
    # type: (str, str) -> str
    """Where the ``precision`` ONNX of the same part lives: ``<part><_fp16|_int8>.onnx``."""
    root, ext = os.path.splitext(base_onnx(onnx_path))
    return root + VARIANT_SUFFIX[precision] + ext


def is_qdq_onnx(path):
    # type: (str) -> bool
    """True when the ONNX holds QuantizeLinear nodes (explicit quantization). Op types are plain
    strings in the protobuf, so no ``onnx`` package is needed on the device."""
    with open(path, "rb") as f:
        return b"QuantizeLinear" in f.read()


class BuildPlan(object):
    """Which ONNX to parse, which builder flags to set and what precision the engine will have."""

    def __init__(self, onnx, precision, flags, calibrate=False, notices=None, max_batch=DEFAULT_MAX_BATCH):
        self.onnx = onnx
        self.max_batch = check_max_batch(max_batch)   # profile max when the ONNX batch is dynamic
        self.precision = precision
        self.flags = list(flags)            # BuilderFlag member names
        self.calibrate = calibrate
        self.notices = list(notices or [])

    def __repr__(self):
        return "BuildPlan({!r}, {!r}, flags={}, calibrate={}, max_batch={})".format(
            self.onnx, self.precision, self.flags, self.calibrate, self.max_batch)


def _plan_int8(api, onnx_path, calibration):
    # type: (TrtApi, str, bool) -> Optional[BuildPlan]
    qdq = onnx_path if is_qdq_onnx(onnx_path) else variant_path(onnx_path, "int8")
    if os.path.isfile(qdq) and is_qdq_onnx(qdq):
        flags = [] if api.strongly_typed else ["INT8"] + (["FP16"] if api.fp16_flag else [])
        return BuildPlan(qdq, "int8", flags)
    if calibration and api.calibrator:
        return BuildPlan(base_onnx(onnx_path), "int8", ["INT8", "FP16"], calibrate=True,
                         notices=["no QDQ ONNX {}: INT8 by calibration".format(os.path.basename(qdq))])
    return None


def plan_build(api, onnx_path, precision, calibration=False, max_batch=DEFAULT_MAX_BATCH):
    # type: (TrtApi, str, str, bool, int) -> BuildPlan
    """The build for ``precision`` (fp32 | fp16 | int8) on this TensorRT, from the ONNX variants next
    to ``onnx_path``, for up to ``max_batch`` frames per call (when the ONNX batch is dynamic).
    Falls back (int8 -> fp16 -> fp32) with a notice instead of failing."""
    plan = _plan(api, onnx_path, precision, calibration)
    plan.max_batch = check_max_batch(max_batch)
    return plan


def _plan(api, onnx_path, precision, calibration):
    # type: (TrtApi, str, str, bool) -> BuildPlan
    if precision not in PRECISIONS:
        raise ValueError("precision {!r} not one of {}".format(precision, PRECISIONS))
    notices = []  # type: List[str]
    if precision == "int8":
        plan = _plan_int8(api, onnx_path, calibration)
        if plan is not None:
            return plan
        calib = "" if api.calibrator else " (and this TensorRT has no INT8 calibrator)"
        notices.append("no QDQ ONNX {}{}: building fp16 instead; export it with edge-quantize (QAT int8 -> "
                       "QDQ ONNX)".format(os.path.basename(variant_path(onnx_path, "int8")), calib))
        precision = "fp16"
    base = base_onnx(onnx_path)
    if precision == "fp16":
        if api.fp16_flag:
            return BuildPlan(base, "fp16", ["FP16"], notices=notices)
        fp16 = variant_path(onnx_path, "fp16")
        if os.path.isfile(fp16):
            return BuildPlan(fp16, "fp16", [], notices=notices)
        notices.append("TensorRT {} is strongly typed and {} is missing: building fp32 from {}".format(
            api.version, os.path.basename(fp16), os.path.basename(base)))
    return BuildPlan(base, "fp32", [], notices=notices)


# ---- build ----------------------------------------------------------------------------------------
def parse_onnx(trt, onnx_path, workspace_mb, logger=None):
    """TensorRT builder, network parsed from ``onnx_path`` and a builder config with the workspace
    limit set. Returns (builder, network, config, parser); the parser must outlive the network."""
    api = TrtApi(trt)
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if api.explicit_batch else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as f:
        if not parser.parse(f.read()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError("{}: TensorRT {} cannot parse this ONNX: {}".format(onnx_path, api.version, errors))
    config = builder.create_builder_config()
    if api.memory_pool:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    else:  # TensorRT 8.2 (JetPack 4.6)
        config.max_workspace_size = int(workspace_mb) << 20
    return builder, network, config, parser


def _set_flags(trt, api, builder, config, plan):
    # type: (object, TrtApi, object, object, BuildPlan) -> List[str]
    notices = []
    for name in plan.flags:
        if name == "FP16" and api.fast_fp16_query and not builder.platform_has_fast_fp16:
            notices.append("this GPU has no fast FP16: the FP16 flag is set anyway (TensorRT picks the kernels)")
        config.set_flag(getattr(trt.BuilderFlag, name))
    return notices


def add_batch_profile(builder, network, config, max_batch):
    # type: (object, object, object, int) -> Optional[Tuple[int, ...]]
    """One optimization profile (batch 1 .. ``max_batch``, opt = max) for the inputs whose batch
    dimension is dynamic; returns the max input shape, or None for a fixed-batch network (no profile)."""
    profile, top = None, None
    for i in range(network.num_inputs):
        t = network.get_input(i)
        shape = tuple(int(d) for d in t.shape)
        if not shape or shape[0] >= 0:
            continue
        if any(d < 0 for d in shape[1:]):
            raise RuntimeError("input {} has dynamic dims {} besides the batch: export the ONNX with a fixed "
                               "frame size (edge-quantize does)".format(t.name, shape))
        profile = profile or builder.create_optimization_profile()
        top = (int(max_batch),) + shape[1:]
        profile.set_shape(t.name, (1,) + shape[1:], top, top)
    if profile is not None:
        config.add_optimization_profile(profile)
    return top


def set_calibration_profile(builder, network, config, batch):
    # type: (object, object, object, int) -> None
    """INT8 calibration of a dynamic-batch network runs at the calibration profile's shapes: fix the
    batch there to the calibrator's ``batch`` (TensorRT 8.x/10; 11 has no calibrator)."""
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        shape = tuple(int(d) for d in t.shape)
        if shape and shape[0] < 0:
            fixed = (int(batch),) + shape[1:]
            profile.set_shape(t.name, fixed, fixed, fixed)
    config.set_calibration_profile(profile)


def build_serialized(trt, plan, workspace_mb=256, logger=None, calibrator=None):
    # type: (object, BuildPlan, int, object, object) -> bytes
    """Serialized engine for ``plan`` (needs tensorrt + a GPU). ``calibrator`` only for a
    ``plan.calibrate`` build (an ``IInt8EntropyCalibrator2`` from quantize/tensorrt.py)."""
    api = TrtApi(trt)
    builder, network, config, _parser = parse_onnx(trt, plan.onnx, workspace_mb, logger)
    plan.notices.extend(_set_flags(trt, api, builder, config, plan))
    dynamic = add_batch_profile(builder, network, config, plan.max_batch) is not None
    if plan.calibrate:
        if calibrator is None or not api.calibrator:
            raise RuntimeError("INT8 calibration needs a calibrator and a TensorRT that still has one "
                               "(8.x/10); export the QDQ ONNX instead")
        config.int8_calibrator = calibrator
        if dynamic:
            set_calibration_profile(builder, network, config, calibrator.get_batch_size())
    data = builder.build_serialized_network(network, config)
    if data is None:
        raise RuntimeError("{}: TensorRT {} engine build failed (see the TensorRT log above)".format(
            plan.onnx, api.version))
    return bytes(data)


def write_atomic(path, data):
    # type: (str, bytes) -> None
    tmp = "{}.tmp{}".format(path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def default_cache_dir(onnx_path):
    # type: (str) -> str
    """``engines/`` next to the bundle when writable, else ~/.cache/edge-action/engines."""
    d = os.path.join(os.path.dirname(os.path.abspath(onnx_path)), "engines")
    try:
        os.makedirs(d, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    d = os.path.join(os.path.expanduser("~"), ".cache", "edge-action", "engines")
    os.makedirs(d, exist_ok=True)
    return d


def cached_engine(onnx_path, precision, gpu, cache_dir=None, notice=None, workspace_mb=256,
                  max_batch=DEFAULT_MAX_BATCH):
    # type: (str, str, object, Optional[str], Optional[Callable[[str], None]], int, int) -> str
    """Path of the engine for ``onnx_path`` at ``precision`` on ``gpu`` for up to ``max_batch`` frames
    per call: one already next to the ONNX (built on the host or the Jetson by edge-quantize) or in
    the cache, else built and cached now."""
    import tensorrt as trt

    notice = notice or log.warning
    plan = plan_build(TrtApi(trt), onnx_path, precision, max_batch=max_batch)
    for n in plan.notices:
        notice(n)
    name = engine_cache_name(plan.onnx, trt.__version__, gpu, plan.precision, plan.max_batch)
    next_to_model = os.path.join(os.path.dirname(os.path.abspath(plan.onnx)), name)
    if os.path.isfile(next_to_model):
        return next_to_model
    cache_dir = cache_dir or default_cache_dir(onnx_path)
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, name)
    if not os.path.isfile(path):
        notice("building the TensorRT {} {} engine for {} (minutes on a Jetson; cached as {})".format(
            trt.__version__, plan.precision, os.path.basename(plan.onnx), name))
        del plan.notices[:]
        write_atomic(path, build_serialized(trt, plan, workspace_mb))
        for n in plan.notices:
            notice(n)
    return path
