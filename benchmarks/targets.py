"""Which artifacts of a bundle this machine can time, and why the others cannot.

A *target* is one row of the report: a whole-clip artifact (``part=full``), or an encoder + head
pair for streaming bundles (``lrcn-edge``: the encoder runs once per frame, the head once per
prediction). Every artifact of the bundle ends up in a row: timed, or skipped with the reason
(wrong device, runtime missing, not produced by the host, filtered out). Nothing is dropped.

Which device times which format, which backend runs it, which head goes with an encoder and why
something is skipped all come from ``edge.catalog`` and ``edge.select.pair_head``: the rows edge-bench
times for a device config include exactly the artifacts ``edge-run`` runs with it (``edge.select.plan``).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from edge import catalog as C
from edge.bundle import Artifact, Bundle
from edge.select import pair_head


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


def _row(bundle: Bundle, a: Artifact, device: str, head_backend: str, formats) -> Target:
    """The row of one full/encoder artifact: pending (backend set, head paired) or skipped with why."""
    parts = C.pairing_of(a.part)
    t = Target(key=target_key(a.format, a.precision, parts), format=a.format, precision=a.precision,
               parts=parts, artifacts={a.part: a})
    head, hb = None, None
    backend = C.backend_on(device, a.format)
    if a.part == "encoder" and backend is not None:
        head, hb, _ = pair_head(bundle, a, C.head_backend_for(backend, head_backend), device)
        if head is not None:
            t.artifacts["head"] = head
    if a.status != "ok":
        t.status, t.reason = "skipped", f"artifact status {a.status!r} in bundle.json" + (f": {a.notes}" if a.notes else "")
    elif backend is None or not C.runs_on(a.devices, device):
        t.status, t.reason = "skipped", C.why_not_on(a.format, device, a.devices)
    elif not selected(t.key, a.format, a.precision, formats, parts):
        t.status, t.reason = "skipped", f"not selected by --formats {' '.join(formats or [])}"
    elif a.part == "encoder" and head is None:
        t.status, t.reason = "skipped", "no head artifact a CPU backend runs to pair with this encoder"
    else:
        t.backend, t.head_backend = backend, hb
    return t


def plan_targets(bundle: Bundle, device: str, formats: Optional[Sequence[str]] = None,
                 head_backend: Optional[str] = None) -> List[Target]:
    """Rows for every artifact of ``bundle`` on ``device``; pending ones are to be timed, skipped
    ones carry a reason. ``head_backend``: where streaming heads run (default: the device's, from
    the catalog; a device config's ``head_backend`` when given). Order: bundle order of the
    full/encoder artifacts, rows the device builds itself (TensorRT from ONNX), unused heads, then
    skipped entries the host recorded (``bundle.skipped``)."""
    if device not in C.DEVICE:
        raise ValueError(f"device must be one of {sorted(C.DEVICE)}, got {device!r}")
    head_backend = head_backend or C.DEVICE[device].head_backend
    rows = [_row(bundle, a, device, head_backend, formats) for a in bundle.artifacts if a.part in C.RUN_PARTS]
    rows += _built_on_device(bundle, device, head_backend, formats)
    used_heads = {t.artifacts["head"].name for t in rows if "head" in t.artifacts and t.status == "pending"}
    for a in bundle.artifacts:
        if a.part == "head" and a.name not in used_heads:
            rows.append(Target(key=target_key(a.format, a.precision, "head"), format=a.format, precision=a.precision,
                               parts="head", artifacts={"head": a}, status="skipped",
                               reason="a temporal head is timed with its encoder; no encoder timed here pairs with it"))
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


def _built_on_device(bundle: Bundle, device: str, head_backend: str, formats) -> List[Target]:
    """Engines the device builds itself from a source format (catalog ``builds_from``: on a Jetson,
    TensorRT from the bundle's ONNX; edge-run does the same and caches the engine). One fp16 row per
    source full model / encoder that has no shipped artifact of the backend's own format and part."""
    out = []
    for backend, src in C.built_on_device(device):
        own = C.native_format(backend)
        shipped = {a.part for a in bundle.artifacts if a.format == own and a.status == "ok"}
        for a in bundle.artifacts:
            if a.format != src or a.status != "ok" or a.part not in C.RUN_PARTS or a.part in shipped:
                continue
            parts = C.pairing_of(a.part)
            t = Target(key=target_key(own, "float16", parts), format=own, precision="float16",
                       parts=parts, artifacts={a.part: a}, backend=backend, options={"precision": "fp16"},
                       note=f"engine built on this device from {a.file} (fp16, cached next to the bundle); "
                            f"init_ms includes the build unless the engine was cached")
            if a.part == "encoder":
                head, hb, _ = pair_head(bundle, a, C.head_backend_for(backend, head_backend), device)
                if head is None:
                    t.status, t.reason = "skipped", "no head artifact to pair with this encoder"
                else:
                    t.artifacts["head"], t.head_backend = head, hb
            if t.status == "pending" and not selected(t.key, own, "float16", formats, parts):
                t.status, t.reason = "skipped", f"not selected by --formats {' '.join(formats or [])}"
            out.append(t)
    return out
