"""The catalog: the ONE table of formats, precisions, backends, devices and model parts.

Every other module asks this table instead of keeping its own list: the bundle validator (which
values are legal), the backend registry (which runtime opens which file suffix), the planner
(``edge.select.plan``: which artifacts a device runs, in which preference order, which head goes
with which encoder), edge-bench (which rows a device can time), edge-eval (what the CPU runs) and
edge-quantize (``quantize/formats.py`` attaches one exporter to each exported format here).

Adding a format, a backend, a device or a model part starts with one row here (see ARCHITECTURE.md,
"Adding ..."); ``tests/test_catalog.py`` checks that every consumer knows every row.

TensorFlow-free and importable on Python 3.6 (the Jetson Nano's JetPack Python).
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

# -- precisions ---------------------------------------------------------------------------------
PRECISIONS = ("float32", "float16", "dynamic", "int8")
# The preference order when a device config's precision is absent from a bundle: after the preferred
# one, int8 first (smallest, fastest on every board), then the float models.
PRECISION_ORDER = ("int8", "float32", "float16", "dynamic")


# A streaming head is tiny: after the encoder's own precision, the most accurate one first.
HEAD_PRECISION_ORDER = ("float32", "float16", "dynamic", "int8")


def precision_preference(preferred: Optional[str] = None, order: Sequence[str] = PRECISION_ORDER) -> List[str]:
    """``preferred`` first, then ``order``."""
    first = [preferred] if preferred else []
    return first + [p for p in order if p not in first]


# -- formats ------------------------------------------------------------------------------------
class Format(NamedTuple):
    name: str                      # bundle "format"
    suffixes: Tuple[str, ...]      # file endings, most specific first
    precisions: Tuple[str, ...]    # precisions this format can hold
    backend: Optional[str]         # edge backend that runs the file (None: host-only)
    host_requires: str             # what the host needs to produce it
    devices: Tuple[str, ...]       # devices an artifact of this format is meant for
    where: str                     # where it runs / how to time it (edge-bench's skip reason)


FORMATS = (
    Format("keras", (".keras",), ("float32",), None, "tf_keras", ("cpu",),
           "a Keras model: host-only (needs TensorFlow); edge-bench times deployable formats "
           "(use `edge-eval` for Keras accuracy)"),
    Format("tflite", (".tflite",), PRECISIONS, "tflite", "tensorflow", ("cpu",),
           "a CPU TFLite model: run with `--device cpu` to time it on this machine's CPU"),
    Format("edgetpu", ("_edgetpu.tflite",), ("int8",), "edgetpu",
           "edgetpu_compiler (x86-64 Linux, Coral apt repo)", ("coral",),
           "an Edge TPU artifact: run `edge-bench --device coral` on a machine with a Coral "
           "(libedgetpu1-std from Coral's apt repository)"),
    Format("onnx", (".onnx",), ("float32", "float16", "int8"), "onnxruntime", "tf2onnx", ("cpu", "jetson"),
           "an ONNX model: timed with `--device cpu` (ONNX Runtime CPU) or `--device jetson` (CUDA)"),
    Format("tensorrt", (".engine", ".plan", ".trt"), ("float32", "float16", "int8"), "tensorrt",
           "tensorrt + NVIDIA GPU (build on the Jetson)", ("jetson",),
           "a TensorRT engine: run `edge-bench --device jetson` on the Jetson it was built for"),
)
FORMAT = {f.name: f for f in FORMATS}  # type: Dict[str, Format]
FORMAT_NAMES = tuple(f.name for f in FORMATS)


# What edge-quantize writes: one row per (format, precision) with its file ending and the devices the
# artifact is marked for (``Artifact.devices``; an int8 model keeps ``coral`` only when the Edge TPU
# analysis says it maps). ``quantize/formats.py`` attaches one ``export_<name>`` function to each row.
class Export(NamedTuple):
    name: str                      # edge-quantize --formats name
    format: str                    # bundle format (a FORMATS row)
    precision: str
    suffix: str                    # file name ending after "<part>"
    devices: Tuple[str, ...]
    needs: Tuple[str, ...]         # the exports that must run first (edgetpu compiles tflite-int8)
    note: str


EXPORTS = (
    Export("keras", "keras", "float32", ".keras", ("cpu",), (),
           "the (pruned) float Keras model; host-side reference, not for devices"),
    Export("tflite-fp32", "tflite", "float32", "_fp32.tflite", ("cpu",), (), ""),
    Export("tflite-fp16", "tflite", "float16", "_fp16.tflite", ("cpu",), (),
           "float16 weights, float compute on CPU (half the size of fp32)"),
    Export("tflite-dynamic", "tflite", "dynamic", "_dynamic.tflite", ("cpu",), (),
           "int8 weights, float activations"),
    Export("tflite-int8", "tflite", "int8", "_int8.tflite", ("cpu", "coral"), (),
           "full integer; coral only when the Edge TPU analysis says mappable"),
    Export("edgetpu", "edgetpu", "int8", "_int8_edgetpu.tflite", ("coral",), ("tflite-int8",), ""),
    Export("onnx", "onnx", "float32", ".onnx", ("cpu", "jetson"), (), ""),
    # TensorRT's inputs next to ``<part>.onnx`` (edge/trt_build.py finds them by these names): the FP16
    # ONNX (strongly typed TensorRT 11 builds fp16 from it) and the QDQ ONNX (int8 by explicit
    # quantization with the QAT scales, every TensorRT; ONNX Runtime runs it on a CPU too).
    Export("onnx-fp16", "onnx", "float16", "_fp16.onnx", ("jetson",), ("onnx",),
           "FP16 ONNX for TensorRT (fp16 engine on strongly typed TensorRT)"),
    Export("onnx-int8", "onnx", "int8", "_int8.onnx", ("cpu", "jetson"), ("onnx", "tflite-int8"),
           "QDQ ONNX with the int8 TFLite's scales: TensorRT int8 by explicit quantization"),
    Export("tensorrt", "tensorrt", "float16", ".engine", ("jetson",), ("onnx-fp16", "onnx-int8"),
           "engines are device-specific: built on the target"),
)
EXPORT = {e.name: e for e in EXPORTS}  # type: Dict[str, Export]


# -- backends -----------------------------------------------------------------------------------
class Backend(NamedTuple):
    name: str
    module: str
    cls: str
    builds_from: Tuple[str, ...]   # other formats it turns into its own on the device (TensorRT <- ONNX)
    on_cpu: bool                   # runs on the board's CPU (can run a streaming head anywhere)
    install: str                   # what to install, on which device


BACKENDS = (
    Backend("tflite", "edge.backends.tflite", "TFLiteBackend", (), True,
            "pip install ai-edge-litert (x86-64/aarch64) or tflite-runtime"),
    Backend("edgetpu", "edge.backends.edgetpu", "EdgeTPUBackend", (), False,
            "libedgetpu1-std + pycoral from Coral's apt repository"),
    Backend("onnxruntime", "edge.backends.onnxruntime", "OnnxRuntimeBackend", (), True,
            "pip install onnxruntime (onnxruntime-gpu on a Jetson for CUDA)"),
    Backend("tensorrt", "edge.backends.tensorrt", "TensorRTBackend", ("onnx",), False,
            "JetPack's python3-libnvinfer + cuda-python on the Jetson"),
)
BACKEND = {b.name: b for b in BACKENDS}  # type: Dict[str, Backend]
BACKEND_NAMES = tuple(b.name for b in BACKENDS)


def native_format(backend: str) -> str:
    """The format a backend runs as it is (tflite -> tflite, onnxruntime -> onnx ...)."""
    for f in FORMATS:
        if f.backend == backend:
            return f.name
    raise ValueError("unknown backend {!r} (known: {})".format(backend, ", ".join(BACKEND_NAMES)))


def backend_formats(backend: str) -> List[str]:
    """Formats ``backend`` can open, its own first (tensorrt: tensorrt, then onnx it builds from)."""
    return [native_format(backend)] + list(BACKEND[backend].builds_from)


def suffix_table() -> List[Tuple[str, str]]:
    """(suffix, backend) pairs, most specific suffix first (``_edgetpu.tflite`` before ``.tflite``)."""
    pairs = [(s, f.backend) for f in FORMATS if f.backend for s in f.suffixes]
    return sorted(pairs, key=lambda p: -len(p[0]))


def backend_for_file(path: str) -> str:
    """Backend implied by a file name; ValueError listing the known suffixes otherwise."""
    low = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    for suffix, backend in suffix_table():
        if low.endswith(suffix):
            return backend
    known = sorted({s for s, _ in suffix_table()})
    raise ValueError("{}: unknown model file type (known suffixes: {})".format(path, ", ".join(known)))


def format_for_file(path: str) -> str:
    """Bundle format implied by a file name (``.keras`` included)."""
    low = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    for f in sorted(FORMATS, key=lambda f: -max(len(s) for s in f.suffixes)):
        if any(low.endswith(s) for s in f.suffixes):
            return f.name
    raise ValueError("{}: unknown model file type".format(path))


# -- devices ------------------------------------------------------------------------------------
class Device(NamedTuple):
    name: str
    backends: Tuple[str, ...]      # backends this device runs, the default first
    head_backend: str              # where a streaming head runs (always a CPU backend)
    precision: str                 # preferred precision when the config does not say
    what: str


DEVICES = (
    Device("cpu", ("tflite", "onnxruntime"), "tflite", "int8",
           "any x86-64 / ARM CPU: TFLite (ai-edge-litert / tflite_runtime) or ONNX Runtime"),
    Device("coral", ("edgetpu",), "tflite", "int8",
           "Google Coral Edge TPU (USB or Dev Board); a streaming head runs on the host CPU"),
    Device("jetson", ("tensorrt", "onnxruntime"), "onnxruntime", "float32",
           "NVIDIA Jetson: TensorRT engine (built from ONNX on the device) or ONNX Runtime CUDA"),
)
DEVICE = {d.name: d for d in DEVICES}  # type: Dict[str, Device]
DEVICE_NAMES = tuple(d.name for d in DEVICES)


def device_formats(device: str) -> List[str]:
    """Formats ``device`` runs as they are, in the order of its backends (cpu: tflite, onnx)."""
    out = []  # type: List[str]
    for b in DEVICE[device].backends:
        f = native_format(b)
        if f not in out:
            out.append(f)
    return out


def backend_on(device: str, fmt: str) -> Optional[str]:
    """The backend ``device`` runs ``fmt`` files with as they are (None: it does not)."""
    for b in DEVICE[device].backends:
        if native_format(b) == fmt:
            return b
    return None


def built_on_device(device: str) -> List[Tuple[str, str]]:
    """(backend, source format) pairs the device builds itself (jetson: tensorrt from onnx)."""
    return [(b, src) for b in DEVICE[device].backends for src in BACKEND[b].builds_from]


def head_backend_for(main_backend: Optional[str], configured: str) -> str:
    """Where a streaming head runs: on the main backend when that is a CPU runtime (one runtime for
    the whole model: tflite + tflite head, onnxruntime + ONNX head), else on the device config's
    ``head_backend`` (next to an Edge TPU or TensorRT encoder)."""
    return main_backend if main_backend in BACKEND and BACKEND[main_backend].on_cpu else configured


def runs_on(artifact_devices: Sequence[str], device: str) -> bool:
    """An artifact marked for ``artifact_devices`` (bundle ``devices``) runs on ``device``: its own
    device, or any board's CPU when marked ``cpu``."""
    return not artifact_devices or device in artifact_devices or "cpu" in artifact_devices


def why_not_on(fmt: str, device: str, artifact_devices: Sequence[str] = ()) -> str:
    """One line: why ``device`` does not run this artifact: the format's backends are not on it, or
    the artifact itself was made for other devices (``artifact_devices``: an FP16 ONNX for TensorRT)."""
    if fmt in FORMAT and device in DEVICE and backend_on(device, fmt) is not None and artifact_devices:
        return "not for --device {}: this artifact is made for {}".format(device, ", ".join(artifact_devices))
    return "not for --device {}: {}".format(device, FORMAT[fmt].where if fmt in FORMAT else fmt)


# -- model parts --------------------------------------------------------------------------------
PARTS = ("full", "encoder", "head")
# How a model's parts combine into what runs: a whole-clip model alone, or an encoder run once per
# frame whose features feed a temporal head (a "streaming" bundle). The head runs on a CPU backend
# (the device's ``head_backend``), matched to the encoder's precision first; the one exception is an
# Edge TPU head co-compiled with its Edge TPU encoder, which runs on the same Edge TPU
# (``edge.select.co_compiled_head``).
PAIRINGS = {"full": ("full",), "encoder+head": ("encoder", "head")}
PAIRED = {"encoder": "head"}       # part -> the part it needs
RUN_PARTS = ("full", "encoder")     # parts a plan's main artifact can be


def pairing_of(part: str) -> str:
    """The pairing a main part belongs to ("full" | "encoder+head")."""
    for name, parts in PAIRINGS.items():
        if part in parts:
            return name
    raise ValueError("unknown part {!r} (known: {})".format(part, ", ".join(PARTS)))


# -- artifact status ----------------------------------------------------------------------------
STATUSES = ("ok", "failed", "not-run")


def describe() -> str:
    """The catalog as text (``edge-run --list-devices`` style; also a quick check in a shell)."""
    lines = ["formats:"]
    for f in FORMATS:
        lines.append("  {:<9} {:<28} {:<32} backend {}".format(
            f.name, ",".join(f.suffixes), "/".join(f.precisions), f.backend or "- (host only)"))
    lines.append("devices:")
    for d in DEVICES:
        lines.append("  {:<7} backends {:<24} head on {:<12} {}".format(
            d.name, ",".join(d.backends), d.head_backend, d.what))
    return "\n".join(lines)
