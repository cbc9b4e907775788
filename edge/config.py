"""Device configuration: ``device_configs/<name>.yaml`` -> a frozen ``DeviceConfig``, validated on load.

An unknown key or a wrong type is a ``ConfigError`` naming the file and the dotted key
(``device_configs/coral-usb.yaml: camera.fps: expected int, got str '30fps'``), so a typo never
silently falls back to a default. CLI flags override the loaded values (``DeviceConfig.replace``).

Configs are looked up by name in ``$EDGE_DEVICE_CONFIGS`` and then in the repository's
``device_configs/`` directory; a path to a YAML file works anywhere.
"""
import dataclasses
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

from . import catalog
from .detect import parse_edgetpu_device

DEVICES = catalog.DEVICE_NAMES
BACKENDS = catalog.BACKEND_NAMES
PRECISIONS = catalog.PRECISIONS
TRT_PRECISIONS = ("fp32", "fp16", "int8")
SOURCE_KINDS = ("v4l2", "csi", "rtsp", "file", "test")
CONFIG_DIR = Path(__file__).resolve().parents[1] / "device_configs"


class ConfigError(ValueError):
    """A device config that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class CameraConfig:
    """Caps asked from a V4L2 camera (0 = let the camera choose).

    format:        comma-separated preference list tried in order until one negotiates: ``raw`` (any
                   raw format), a raw fourcc (``YUY2``, ``NV12`` ...) or ``MJPG`` (many UVC webcams give
                   720p30 only as MJPG); "" = ``raw,MJPG``
    mjpeg_decoder: the GStreamer decoder chain for MJPG frames: ``jpegdec`` (software), on a Jetson
                   ``jpegparse ! nvv4l2decoder mjpeg=1`` (hardware NVJPG; ``nvjpegdec`` also works)
    """

    width: int = 640
    height: int = 480
    fps: int = 30
    format: str = "raw,MJPG"
    mjpeg_decoder: str = "jpegdec"


@dataclass(frozen=True)
class CaptureConfig:
    """Frame size GStreamer scales to before Python sees it (0 = 2x the model's input size, which
    keeps the overlay readable and leaves preprocessing a cheap 2:1 area resize)."""

    width: int = 0
    height: int = 0
    scale_method: str = "bilinear"


@dataclass(frozen=True)
class RtspConfig:
    """latency_ms: rtspsrc jitterbuffer latency; protocols: tcp (robust through NAT/Wi-Fi) or udp.
    Only the video stream of a session is taken (audio and metadata streams are not set up)."""

    latency_ms: int = 200
    protocols: str = "tcp"


@dataclass(frozen=True)
class ReconnectConfig:
    """Live sources: backoff initial_s doubling to max_s, max_attempts consecutive failures (-1 =
    forever), stall_s without a frame counts as a failure (0 = never).

    start_s:    a (re)started pipeline that has neither negotiated caps nor failed after this long
                is taken as running (then stall_s judges it); also rtspsrc's TCP timeout
    teardown_s: close() waits at most this long for GStreamer to stop; a pipeline stuck in teardown
                (a frozen camera or server) is abandoned with a notice, never waited on
    """

    initial_s: float = 0.5
    max_s: float = 5.0
    max_attempts: int = -1
    stall_s: float = 5.0
    start_s: float = 5.0
    teardown_s: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` + 1 (0-based failures so far)."""
        return min(self.max_s, self.initial_s * (2 ** max(0, attempt)))


@dataclass(frozen=True)
class RunnerConfig:
    """The prediction settings of ``edge-run`` (the ``runner:`` section; flags override it):
    stride: predict every N-th captured frame once a clip is full; smooth: mean of the last K score
    vectors (1 = off); top_k: labels per prediction; threshold: top-1 below it -> label None (still
    in ``top``); interval_s: seconds between sampled frames (0 = the bundle's frame_interval_s)."""

    stride: int = 1
    smooth: int = 1
    top_k: int = 3
    threshold: float = 0.0
    interval_s: float = 0.0

    def __post_init__(self):
        for k in ("stride", "smooth", "top_k"):
            if getattr(self, k) < 1:
                raise ConfigError("runner.{0} must be >= 1, got {1}".format(k, getattr(self, k)))
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError("runner.threshold must be in [0, 1], got {0}".format(self.threshold))
        if self.interval_s < 0:
            raise ConfigError("runner.interval_s must be >= 0 (0 = the bundle's), got {0}".format(self.interval_s))


@dataclass(frozen=True)
class DeviceConfig:
    """Everything the runner needs to know about a board.

    device:         which bundle artifacts suit it (bundle ``devices``): cpu | coral | jetson
    backend:        runtime for the model (encoder for streaming bundles): tflite | edgetpu | tensorrt | onnxruntime
    head_backend:   runtime for a streaming bundle's temporal head (small; CPU is fine)
    precision:      preferred artifact precision (others are tried in order float32, ... when absent)
    threads:        CPU threads for tflite/onnxruntime (0 = all cores)
    edgetpu_device: pycoral device string: "" (first found), ":N", "usb", "usb:N", "pci", "pci:N"
    tensorrt_precision: fp32 | fp16 | int8 when an engine is built from ONNX on the device
    platform:       informational (arch, OS, JetPack, TensorRT versions ...), shown by --list-devices
    pipelines:      per-kind GStreamer template overrides (see edge.sources.pipelines)
    """

    name: str = "x86-cpu"
    description: str = ""
    device: str = "cpu"
    backend: str = "tflite"
    head_backend: str = "tflite"
    precision: str = "int8"
    threads: int = 0
    edgetpu_device: str = ""
    tensorrt_precision: str = "fp16"
    platform: Dict[str, str] = field(default_factory=dict)
    camera: CameraConfig = field(default_factory=CameraConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    rtsp: RtspConfig = field(default_factory=RtspConfig)
    reconnect: ReconnectConfig = field(default_factory=ReconnectConfig)
    pipelines: Dict[str, str] = field(default_factory=dict)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    source_file: str = field(default="", compare=False)  # where it was loaded from (not a YAML key)

    def replace(self, **changes) -> "DeviceConfig":
        """A copy with top-level fields changed (CLI overrides); ``None`` values are ignored."""
        changes = {k: v for k, v in changes.items() if v is not None}
        out = dataclasses.replace(self, **changes)
        _check_choices(out, out.source_file or "<overrides>")
        return out

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("source_file", None)
        return d


_CHOICES = {"device": DEVICES, "backend": BACKENDS, "head_backend": BACKENDS, "precision": PRECISIONS,
            "tensorrt_precision": TRT_PRECISIONS}


def _check_choices(cfg: DeviceConfig, where: str) -> None:
    for key, allowed in _CHOICES.items():
        v = getattr(cfg, key)
        if v not in allowed:
            raise ConfigError(f"{where}: {key}: {v!r} is not one of {', '.join(allowed)}")
    for kind in cfg.pipelines:
        if kind not in SOURCE_KINDS:
            raise ConfigError(f"{where}: pipelines.{kind}: unknown source kind (known: {', '.join(SOURCE_KINDS)})")
    if cfg.threads < 0:
        raise ConfigError(f"{where}: threads: must be >= 0")
    try:
        parse_edgetpu_device(cfg.edgetpu_device)
    except ValueError as e:
        raise ConfigError(f"{where}: edgetpu_device: {e}") from None


def _type_name(t) -> str:
    return getattr(t, "__name__", str(t))


def _dict_types(tp):
    """(key type, value type) when ``tp`` is ``Dict[K, V]``, else None. Reads ``__origin__``/``__args__``
    (``typing.get_origin/get_args`` are Python 3.8+; Mendel has 3.7, JetPack 4.6 has 3.6, where
    ``Dict[K, V].__origin__`` is ``typing.Dict`` instead of ``dict``)."""
    if getattr(tp, "__origin__", None) in (dict, Dict):
        args = getattr(tp, "__args__", None) or ()
        if len(args) == 2:
            return args
    return None


def _convert(value: Any, tp, where: str, key: str):
    """Check ``value`` against annotation ``tp``; nested dataclasses are built recursively."""
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: expected a mapping, got {type(value).__name__}")
        return _build(tp, value, where, key + ".")
    if _dict_types(tp) is not None:
        vt = _dict_types(tp)[1]
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: expected a mapping, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: {key}: keys must be strings, got {k!r}")
            if key == "platform" and isinstance(v, (int, float)) and not isinstance(v, bool):
                v = str(v)  # informational versions: platform: {jetpack: 4.6} -> "4.6"
            out[k] = _convert(v, vt, where, f"{key}.{k}")
        return out
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key}: expected float, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key}: expected int, got {type(value).__name__} {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key}: expected str, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key}: expected bool, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{where}: {key}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _build(cls, data: dict, where: str, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "source_file"]
    kwargs = {}
    for k, v in data.items():
        if k not in names:
            raise ConfigError(f"{where}: {prefix}{k}: unknown key (allowed: {', '.join(names)})")
        kwargs[k] = _convert(v, hints[k], where, prefix + k)
    return cls(**kwargs)


def from_dict(data: dict, where: str = "<dict>") -> DeviceConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: top level must be a mapping")
    cfg = _build(DeviceConfig, data, where)
    cfg = dataclasses.replace(cfg, source_file=where)
    _check_choices(cfg, where)
    return cfg


def config_dirs() -> List[Path]:
    dirs = []
    env = os.environ.get("EDGE_DEVICE_CONFIGS")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(CONFIG_DIR)  # a source checkout / editable install
    # a regular `pip install .` on a device: pyproject ships device_configs/ as data files here
    dirs.append(Path(sys.prefix) / "share" / "edge-action" / "device_configs")
    return dirs


def available_configs() -> Dict[str, Path]:
    """name -> path of every device config found (first directory wins)."""
    out: Dict[str, Path] = {}
    for d in config_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                out.setdefault(p.stem, p)
    return out


def resolve(name_or_path: str) -> Path:
    p = Path(name_or_path).expanduser()
    if p.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not p.is_file():
            raise ConfigError(f"{name_or_path}: no such device config file")
        return p
    found = available_configs()
    if name_or_path not in found:
        raise ConfigError(f"unknown device config {name_or_path!r} (known: {', '.join(sorted(found)) or 'none'}; "
                          f"or pass a path to a .yaml)")
    return found[name_or_path]


def load_config(name_or_path: str) -> DeviceConfig:
    """Load and validate a device config by name (``coral-usb``) or path."""
    import yaml

    path = resolve(name_or_path)
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        data = {}
    cfg = from_dict(data, where=str(path))
    if "name" not in data:
        cfg = dataclasses.replace(cfg, name=path.stem)
    return cfg


_BUILTIN = {
    "cpu": dict(device="cpu", backend="tflite", head_backend="tflite", precision="int8", threads=1),
    "coral": dict(device="coral", backend="edgetpu", head_backend="tflite", precision="int8", threads=2,
                  edgetpu_device=""),
    "jetson": dict(device="jetson", backend="tensorrt", head_backend="onnxruntime", precision="float32",
                   tensorrt_precision="fp16", threads=2),
}


def builtin(name: str = "x86-cpu") -> DeviceConfig:
    """The config named ``name`` when its YAML is found, else built-in defaults for its device kind
    (an installed package without the repository's device_configs/ still runs)."""
    try:
        return load_config(name)
    except ConfigError:
        kind = "jetson" if name.startswith("jetson") else "coral" if name.startswith("coral") else "cpu"
        return DeviceConfig(name=name, description=f"built-in {kind} defaults (no {name}.yaml found)",
                            source_file="<built-in>", **_BUILTIN[kind])
