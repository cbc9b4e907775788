"""The model bundle: the contract between the host (quantize/) and the device (edge/).

A bundle is a directory with ``bundle.json``, ``labels.txt`` and the artifacts. The device reads
nothing else: how frames are sampled and normalised, which artifact suits which device, and what
each artifact measured on the host.

bundle.json (schema_version 1)::

    {
      "schema_version": 1,
      "name": "lrcn-edge",                 # bundle name (usually the model name)
      "model": "lrcn-edge",                # architecture: lrcn | convlstm | lrcn-edge
      "created": "2026-11-25T10:00:00Z",
      "labels": ["Archery", ...],          # class names, index = output position
      "input": {frames, height, width, channels, layout, color, scale, offset, range},
      "sampling": {frames, method, frame_interval_s, clip_seconds, short_policy},
      "streaming": null | {"feature_dim": 64},   # lrcn-edge: encoder per frame + temporal head
      "artifacts": [
        {"name": "encoder-int8-edgetpu", "file": "encoder_int8_edgetpu.tflite",
         "format": "edgetpu",            # keras | tflite | edgetpu | onnx | tensorrt
         "precision": "int8",            # float32 | float16 | dynamic | int8
         "part": "encoder",              # full | encoder | head
         "devices": ["coral"],           # cpu | coral | jetson
         "size_bytes": 12345, "sha256": "...",
         "sparsity": 0.5 | null,
         "quantization": {"input": {"dtype": "int8", "scale": 0.0039, "zero_point": -128} | null,
                           "output": {...} | null},
         "metrics": {"f1_macro": 0.91, "accuracy": 0.92, "top1_agreement": 0.99, ...} | {},
         "edgetpu": {"mappable": true, "ops_total": 12, "ops_on_tpu": 12, ...} | null,
         "status": "ok" | "failed" | "not-run",
         "notes": "..." }
      ],
      "skipped": [{"format": "edgetpu", "part": "full", "reason": "edgetpu_compiler not on PATH ..."}],
      "producer": {"tool": "edge-quantize", "versions": {...}, "run_dir": "..."}
    }
"""
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from . import catalog
from .preprocess import InputSpec
from .sampling import TemporalSampling

SCHEMA_VERSION = 1
BUNDLE_FILE = "bundle.json"
LABELS_FILE = "labels.txt"

# legal values: the catalog's
FORMATS = catalog.FORMAT_NAMES
PRECISIONS = catalog.PRECISIONS
PARTS = catalog.PARTS
DEVICES = catalog.DEVICE_NAMES
STATUSES = catalog.STATUSES


class BundleError(ValueError):
    """bundle.json is missing, malformed or inconsistent; the message names the file and field."""


@dataclass
class Artifact:
    name: str
    file: str
    format: str
    precision: str = "float32"
    part: str = "full"
    devices: List[str] = field(default_factory=lambda: ["cpu"])
    size_bytes: int = 0
    sha256: str = ""
    sparsity: Optional[float] = None
    quantization: Dict[str, Any] = field(default_factory=dict)
    metrics: Dict[str, Any] = field(default_factory=dict)
    edgetpu: Optional[Dict[str, Any]] = None
    status: str = "ok"
    notes: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Bundle:
    name: str
    model: str
    labels: List[str]
    input: InputSpec
    sampling: TemporalSampling
    artifacts: List[Artifact] = field(default_factory=list)
    streaming: Optional[Dict[str, Any]] = None
    skipped: List[Dict[str, str]] = field(default_factory=list)
    producer: Dict[str, Any] = field(default_factory=dict)
    created: str = ""
    root: str = ""  # directory the bundle was loaded from (not serialised)

    # -- queries the device needs -------------------------------------------------------------
    def path(self, artifact: Artifact) -> str:
        return os.path.join(self.root, artifact.file)

    def find(self, *, format: Optional[str] = None, part: Optional[str] = None,
             precision: Optional[str] = None, device: Optional[str] = None) -> List[Artifact]:
        """Artifacts matching every given field (status ``ok`` only), in bundle order."""
        out = []
        for a in self.artifacts:
            if a.status != "ok":
                continue
            if format and a.format != format:
                continue
            if part and a.part != part:
                continue
            if precision and a.precision != precision:
                continue
            if device and device not in a.devices:
                continue
            out.append(a)
        return out

    def artifact(self, name: str) -> Artifact:
        for a in self.artifacts:
            if a.name == name:
                return a
        raise BundleError(f"{self.root}: no artifact named {name!r} (have: {[a.name for a in self.artifacts]})")

    @property
    def is_streaming(self) -> bool:
        return bool(self.streaming)

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "model": self.model,
            "created": self.created,
            "labels": list(self.labels),
            "input": self.input.to_dict(),
            "sampling": self.sampling.to_dict(),
            "streaming": self.streaming,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "skipped": list(self.skipped),
            "producer": self.producer,
        }

    def save(self, directory: Optional[str] = None) -> str:
        """Write bundle.json and labels.txt into ``directory`` (default: ``root``); validates first."""
        directory = directory or self.root
        if not directory:
            raise BundleError("Bundle.save needs a directory")
        os.makedirs(directory, exist_ok=True)
        data = self.to_dict()
        validate(data, where=os.path.join(directory, BUNDLE_FILE))
        tmp = os.path.join(directory, BUNDLE_FILE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, os.path.join(directory, BUNDLE_FILE))
        with open(os.path.join(directory, LABELS_FILE), "w") as f:
            f.write("\n".join(self.labels) + "\n")
        self.root = directory
        return os.path.join(directory, BUNDLE_FILE)


def file_sha256(path: str) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks (the project's one file hasher)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: str) -> Dict[str, Any]:
    """size_bytes and sha256 of an artifact file."""
    return {"size_bytes": os.path.getsize(path), "sha256": file_sha256(path)}


# -- validation (no jsonschema dependency on the device) ------------------------------------------
_TOP = {"schema_version": int, "name": str, "model": str, "created": str, "labels": list,
        "input": dict, "sampling": dict, "streaming": (dict, type(None)), "artifacts": list,
        "skipped": list, "producer": dict}
_REQUIRED_TOP = ("schema_version", "name", "model", "labels", "input", "sampling", "artifacts")
_INPUT = {"frames": int, "height": int, "width": int, "channels": int, "layout": str, "color": str,
          "scale": (int, float), "offset": (int, float), "range": list}
_SAMPLING = {"frames": int, "method": str, "frame_interval_s": (int, float, type(None)),
             "clip_seconds": (int, float, type(None)), "short_policy": str}
_ARTIFACT = {"name": str, "file": str, "format": str, "precision": str, "part": str, "devices": list,
             "size_bytes": int, "sha256": str, "sparsity": (int, float, type(None)),
             "quantization": dict, "metrics": dict, "edgetpu": (dict, type(None)), "status": str,
             "notes": str}
_CHOICES = {"format": FORMATS, "precision": PRECISIONS, "part": PARTS, "status": STATUSES}


def _check_keys(obj: dict, spec: dict, where: str, required=()) -> None:
    for k in obj:
        if k not in spec:
            raise BundleError(f"{where}: unknown key {k!r} (allowed: {sorted(spec)})")
        if not isinstance(obj[k], spec[k]) or (spec[k] is int and isinstance(obj[k], bool)):
            raise BundleError(f"{where}: key {k!r} has type {type(obj[k]).__name__}, expected {spec[k]}")
    for k in required:
        if k not in obj:
            raise BundleError(f"{where}: missing key {k!r}")


def validate(data: dict, where: str = BUNDLE_FILE) -> None:
    """Raise BundleError naming the file and key for anything the device could trip over."""
    if not isinstance(data, dict):
        raise BundleError(f"{where}: top level must be an object")
    _check_keys(data, _TOP, where, _REQUIRED_TOP)
    if data["schema_version"] != SCHEMA_VERSION:
        raise BundleError(f"{where}: schema_version {data['schema_version']} is not supported "
                          f"(this edge package reads {SCHEMA_VERSION})")
    if not data["labels"] or not all(isinstance(x, str) and x for x in data["labels"]):
        raise BundleError(f"{where}: labels must be a non-empty list of names")
    _check_keys(data["input"], _INPUT, f"{where}: input", ("frames", "height", "width"))
    _check_keys(data["sampling"], _SAMPLING, f"{where}: sampling", ("frames",))
    if data["sampling"]["frames"] != data["input"]["frames"]:
        raise BundleError(f"{where}: sampling.frames != input.frames")
    names = set()
    for i, a in enumerate(data["artifacts"]):
        w = f"{where}: artifacts[{i}]"
        if not isinstance(a, dict):
            raise BundleError(f"{w}: must be an object")
        _check_keys(a, _ARTIFACT, w, ("name", "file", "format"))
        for k, allowed in _CHOICES.items():
            if k in a and a[k] not in allowed:
                raise BundleError(f"{w}: {k}={a[k]!r} not one of {allowed}")
        for d in a.get("devices", []):
            if d not in DEVICES:
                raise BundleError(f"{w}: device {d!r} not one of {DEVICES}")
        if a["name"] in names:
            raise BundleError(f"{w}: duplicate artifact name {a['name']!r}")
        names.add(a["name"])
        if os.path.isabs(a["file"]) or ".." in a["file"].replace("\\", "/").split("/"):
            raise BundleError(f"{w}: file must be a path inside the bundle, got {a['file']!r}")
    for i, s in enumerate(data.get("skipped", [])):
        if not isinstance(s, dict) or "reason" not in s:
            raise BundleError(f"{where}: skipped[{i}] needs a 'reason'")


def load(path: str) -> Bundle:
    """Load a bundle from its directory (or its bundle.json). Validates; checks files exist."""
    root = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    jf = os.path.join(root, BUNDLE_FILE)
    if not os.path.exists(jf):
        raise BundleError(f"{root}: not a bundle (no {BUNDLE_FILE}); make one with `edge-quantize RUN_DIR --out DIR`")
    try:
        with open(jf) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise BundleError(f"{jf}: not valid JSON ({e})") from e
    validate(data, where=jf)
    arts = [Artifact(**a) for a in data["artifacts"]]
    for a in arts:
        if a.status == "ok" and not os.path.exists(os.path.join(root, a.file)):
            raise BundleError(f"{jf}: artifact {a.name!r} file {a.file!r} is missing")
    return Bundle(
        name=data["name"], model=data["model"], labels=list(data["labels"]),
        input=InputSpec.from_dict(data["input"]), sampling=TemporalSampling.from_dict(data["sampling"]),
        artifacts=arts, streaming=data.get("streaming"), skipped=list(data.get("skipped", [])),
        producer=dict(data.get("producer", {})), created=data.get("created", ""), root=root,
    )


def read_labels(path: str) -> List[str]:
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]
