"""Which artifacts of a bundle this machine can time, and why the others cannot.

A *target* is one row of the report: a whole-clip artifact (``part=full``), or an encoder + head
pair for streaming bundles (``lrcn-edge``: the encoder runs once per frame, the head once per
prediction). Every artifact of the bundle ends up in a row: timed, or skipped with the reason
(wrong device, runtime missing, not produced by the host, filtered out). Nothing is dropped.

Device -> formats timed here:
  cpu    -> tflite (float32, float16, dynamic, int8) and onnx on the CPU
  coral  -> edgetpu artifacts (Edge TPU; the head of a streaming bundle runs on the CPU)
  jetson -> tensorrt engines, and onnx through ONNX Runtime's CUDA provider
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from edge.bundle import Artifact, Bundle

DEVICE_FORMATS = {
    "cpu": ("tflite", "onnx"),
    "coral": ("edgetpu",),
    "jetson": ("tensorrt", "onnx"),
}
BACKEND_FOR = {  # (device, format) -> edge.backends registry name
    ("cpu", "tflite"): "tflite", ("cpu", "onnx"): "onnxruntime",
    ("coral", "edgetpu"): "edgetpu",
    ("jetson", "tensorrt"): "tensorrt", ("jetson", "onnx"): "onnxruntime",
}
FORMAT_DEVICE_HINT = {
    "edgetpu": "an Edge TPU artifact: run `edge-bench --device coral` on a machine with a Coral "
               "(libedgetpu1-std from Coral's apt repository)",
    "tensorrt": "a TensorRT engine: run `edge-bench --device jetson` on the Jetson it was built for",
    "keras": "a Keras model: host-only (needs TensorFlow); edge-bench times deployable formats "
             "(use `edge-eval` for Keras accuracy)",
    "tflite": "a CPU TFLite model: run with `--device cpu` to time it on this machine's CPU",
    "onnx": "an ONNX model: timed with `--device cpu` (ONNX Runtime CPU) or `--device jetson` (CUDA)",
}
PRECISION_ORDER = ("float32", "float16", "dynamic", "int8")


@dataclass
class Target:
    """One report row."""

    key: str                       # "tflite-int8", "tflite-int8:encoder+head", "edgetpu-int8:encoder+head"
    format: str
    precision: str
    parts: str                     # "full" | "encoder+head"
    artifacts: Dict[str, Artifact] = field(default_factory=dict)   # part -> artifact
    backend: Optional[str] = None  # backend of the full model / encoder
    head_backend: Optional[str] = None
    options: Dict[str, str] = field(default_factory=dict)   # extra BackendOptions (tensorrt precision)
    note: str = ""
    status: str = "pending"        # pending | ok | skipped | failed
    reason: str = ""

    @property
    def streaming(self) -> bool:
        return self.parts == "encoder+head"

    def size_bytes(self) -> int:
        return sum(a.size_bytes for a in self.artifacts.values())


def target_key(fmt: str, precision: str, parts: str) -> str:
    k = f"{fmt}-{precision}" if precision and precision != "-" else fmt
    return k if parts == "full" else f"{k}:{parts}"


def selected(key: str, fmt: str, precision: str, selectors: Optional[Sequence[str]], parts: str = "full") -> bool:
    """``--formats`` filter: a selector matches a format (``tflite``), a format-precision
    (``tflite-int8``: whole-clip and encoder+head rows) or one row (``tflite-int8:full``,
    ``tflite-int8:encoder+head``)."""
    if not selectors:
        return True
    for s in selectors:
        s = s.strip().lower().replace("fp32", "float32").replace("fp16", "float16")  # edge-quantize names
        if s in (fmt, f"{fmt}-{precision}", key.lower(), f"{fmt}-{precision}:{parts}"):
            return True
    return False


def _pick_head(bundle: Bundle, enc: Artifact, head_format: str) -> Optional[Artifact]:
    heads = [a for a in bundle.artifacts if a.part == "head" and a.status == "ok" and a.format == head_format]
    if not heads:
        return None
    same = [a for a in heads if a.precision == enc.precision]
    if same:
        return same[0]
    return sorted(heads, key=lambda a: PRECISION_ORDER.index(a.precision)
                  if a.precision in PRECISION_ORDER else 99)[0]


def plan_targets(bundle: Bundle, device: str, formats: Optional[Sequence[str]] = None) -> List[Target]:
    """Rows for every artifact of ``bundle`` on ``device``; pending ones are to be timed, skipped
    ones carry a reason. Order: bundle order of the full/encoder artifacts, then skipped entries
    the host recorded (``bundle.skipped``)."""
    if device not in DEVICE_FORMATS:
        raise ValueError(f"device must be one of {sorted(DEVICE_FORMATS)}, got {device!r}")
    runnable = DEVICE_FORMATS[device]
    rows: List[Target] = []
    used_heads = set()
    for a in bundle.artifacts:
        if a.part == "head":
            continue
        parts = "full" if a.part == "full" else "encoder+head"
        t = Target(key=target_key(a.format, a.precision, parts), format=a.format, precision=a.precision,
                   parts=parts, artifacts={a.part: a})
        if a.part == "encoder":
            head_format = "tflite" if a.format == "edgetpu" else a.format
            head = _pick_head(bundle, a, head_format)
            if head is not None:
                t.artifacts["head"] = head
                used_heads.add(head.name)
        rows.append(t)
        if a.status != "ok":
            t.status, t.reason = "skipped", f"artifact status {a.status!r} in bundle.json" + (f": {a.notes}" if a.notes else "")
        elif a.format not in runnable:
            t.status, t.reason = "skipped", f"not for --device {device}: " + FORMAT_DEVICE_HINT.get(a.format, a.format)
        elif not selected(t.key, a.format, a.precision, formats, parts):
            t.status, t.reason = "skipped", f"not selected by --formats {' '.join(formats or [])}"
        elif a.part == "encoder" and "head" not in t.artifacts:
            t.status, t.reason = "skipped", f"no {a.format if a.format != 'edgetpu' else 'tflite'} head artifact to pair with this encoder"
        else:
            t.backend = BACKEND_FOR[(device, a.format)]
            if t.streaming:
                hf = t.artifacts["head"].format
                t.head_backend = "tflite" if hf == "tflite" else BACKEND_FOR.get((device, hf), "tflite")
    if device == "jetson":
        rows += _tensorrt_from_onnx(bundle, rows, formats)
    for a in bundle.artifacts:
        if a.part == "head" and a.name not in used_heads:
            rows.append(Target(key=target_key(a.format, a.precision, "head"), format=a.format, precision=a.precision,
                               parts="head", artifacts={"head": a}, status="skipped",
                               reason="a temporal head is timed with its encoder; no encoder of this format in the bundle"))
    for s in bundle.skipped:
        fmt = str(s.get("format", "?"))
        prec = str(s.get("precision", "") or ("int8" if fmt == "edgetpu" else "-"))
        part = str(s.get("part", "full"))
        parts = "full" if part == "full" else ("encoder+head" if part == "encoder" else part)
        rows.append(Target(key=target_key(fmt, prec, parts), format=fmt, precision=prec, parts=parts,
                           status="skipped", reason="not produced by edge-quantize: " + str(s.get("reason", ""))))
    seen: Dict[str, int] = {}
    for t in rows:  # keys identify rows in reports and reference CSVs: keep them unique
        n = seen.get(t.key, 0)
        seen[t.key] = n + 1
        if n:
            t.key = f"{t.key}#{n + 1}"
    return rows


def _tensorrt_from_onnx(bundle: Bundle, rows: List[Target], formats) -> List[Target]:
    """On a Jetson, TensorRT engines are usually built on the device from the bundle's ONNX (edge-run
    does the same: its tensorrt backend accepts .onnx and caches the engine). One fp16 row per ONNX
    full model / encoder that has no shipped engine of the same part."""
    out = []
    shipped = {a.part for a in bundle.artifacts if a.format == "tensorrt" and a.status == "ok"}
    for a in bundle.artifacts:
        if a.format != "onnx" or a.status != "ok" or a.part == "head" or a.part in shipped:
            continue
        parts = "full" if a.part == "full" else "encoder+head"
        t = Target(key=target_key("tensorrt", "float16", parts), format="tensorrt", precision="float16",
                   parts=parts, artifacts={a.part: a}, backend="tensorrt", options={"precision": "fp16"},
                   note=f"engine built on this device from {a.file} (fp16, cached next to the bundle); "
                        f"init_ms includes the build unless the engine was cached")
        if a.part == "encoder":
            head = _pick_head(bundle, a, "tflite") or _pick_head(bundle, a, "onnx")
            if head is None:
                t.status, t.reason = "skipped", "no head artifact to pair with this encoder"
            else:
                t.artifacts["head"] = head
                t.head_backend = "tflite" if head.format == "tflite" else "onnxruntime"
        if t.status == "pending" and not selected(t.key, "tensorrt", "float16", formats, parts):
            t.status, t.reason = "skipped", f"not selected by --formats {' '.join(formats or [])}"
        out.append(t)
    return out
