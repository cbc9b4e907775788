"""Which bundle artifacts run on this device, and loading them into a ``ClipClassifier``.

Streaming bundles (lrcn-edge) run the ``encoder`` on the device's accelerator (Edge TPU, TensorRT,
or the CPU) and the small temporal ``head`` on the CPU (``head_backend``); other bundles run their
``full`` artifact. A missing artifact is one clear line naming what is missing, why (the bundle's
``skipped`` reason) and how to get it. Every shape/label mismatch is caught here, before capture.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from .backends import BackendOptions, backend_for_path, load_backend
from .bundle import Artifact, Bundle, read_labels
from .classifier import ClipClassifier
from .preprocess import InputSpec
from .sampling import TemporalSampling

BACKEND_FORMAT = {"tflite": "tflite", "edgetpu": "edgetpu", "onnxruntime": "onnx", "tensorrt": "tensorrt"}
PRECISION_ORDER = ("int8", "float32", "float16", "dynamic")


class ModelError(ValueError):
    """The model/bundle does not fit the device or is inconsistent; one line for the user."""


@dataclass
class Selection:
    backend: str
    main: Artifact                 # full, or encoder for streaming
    head: Optional[Artifact] = None
    head_backend: Optional[str] = None
    notes: List[str] = field(default_factory=list)

    @property
    def streaming(self) -> bool:
        return self.head is not None

    def describe(self) -> dict:
        return {"backend": self.backend, "artifact": self.main.file, "part": self.main.part,
                "precision": self.main.precision, "head": self.head.file if self.head else None,
                "head_backend": self.head_backend, "notes": self.notes}


def _precisions(preferred: Optional[str], backend: str) -> List[str]:
    if backend == "edgetpu":
        return ["int8"]
    order = [preferred] if preferred else []
    return order + [p for p in PRECISION_ORDER if p not in order]


def _pick(bundle: Bundle, fmt: str, part: str, precisions: List[str]) -> Optional[Artifact]:
    for p in precisions:
        found = bundle.find(format=fmt, part=part, precision=p)
        if found:
            return found[0]
    return None


def _missing(bundle: Bundle, fmt: str, part: str, backend: str) -> str:
    reason = ""
    for s in bundle.skipped:
        if s.get("format") == fmt and s.get("part", part) in (part, "full", "encoder"):
            reason = s.get("reason", "")
            break
    have = sorted({f"{a.part}:{a.format}/{a.precision}" for a in bundle.artifacts if a.status == "ok"})
    if fmt == "edgetpu" and "install" in reason:  # the bundle already says how to get it
        hint = "or run on the CPU with --device cpu"
    elif fmt == "edgetpu":
        src = _pick(bundle, "tflite", part, ["int8"])
        src_name = src.file if src else f"{part}_int8.tflite"
        hint = (f"compile {src_name} on an x86-64 host with `edgetpu_compiler {src_name}` (Coral apt repo: "
                f"`sudo apt-get install edgetpu-compiler`) and rebuild the bundle with edge-quantize, "
                f"or run on the CPU with --device cpu")
    elif fmt in ("onnx", "tensorrt"):
        hint = "rebuild the bundle with `edge-quantize ... --formats onnx` or choose another --backend"
    else:
        hint = "rebuild the bundle with `edge-quantize ... --formats tflite` or choose another --backend"
    if reason:
        return f"bundle {bundle.root} has no {fmt} {part} artifact: {reason.rstrip('. ')}; {hint}"
    return (f"bundle {bundle.root} has no {fmt} {part} artifact; {hint} "
            f"(bundle has: {', '.join(have) or 'nothing usable'})")


def select_artifacts(bundle: Bundle, backend: str, precision: Optional[str] = None,
                     head_backend: str = "tflite", prefer_streaming: bool = True) -> Selection:
    """Artifacts for ``backend`` (tflite | edgetpu | onnxruntime | tensorrt). Raises ModelError."""
    if backend not in BACKEND_FORMAT:
        raise ModelError(f"unknown backend {backend!r} (known: {', '.join(BACKEND_FORMAT)})")
    precs = _precisions(precision, backend)
    formats = [BACKEND_FORMAT[backend]] + (["onnx"] if backend == "tensorrt" else [])
    notes: List[str] = []
    if bundle.is_streaming and prefer_streaming:
        enc = next((a for f in formats for a in [_pick(bundle, f, "encoder", precs)] if a), None)
        if enc is not None:
            head_fmt = BACKEND_FORMAT.get(head_backend, "tflite")
            head_precs = [enc.precision] + [p for p in PRECISION_ORDER if p != enc.precision]
            head = _pick(bundle, head_fmt, "head", head_precs)
            hb = head_backend
            if head is None:  # any CPU-runnable head
                for fmt, b in (("tflite", "tflite"), ("onnx", "onnxruntime")):
                    head = _pick(bundle, fmt, "head", head_precs)
                    if head is not None:
                        hb = b
                        notes.append(f"no {head_fmt} head: using {head.file} on {b}")
                        break
            if head is not None:
                if precision and enc.precision != precision:
                    notes.append(f"no {precision} encoder for {backend}: using {enc.precision}")
                return Selection(backend, enc, head, hb, notes)
            notes.append("streaming bundle without a usable head: running the full-clip model")
    full = next((a for f in formats for a in [_pick(bundle, f, "full", precs)] if a), None)
    if full is None:
        part = "encoder" if bundle.is_streaming else "full"
        raise ModelError(_missing(bundle, BACKEND_FORMAT[backend], part, backend))
    if precision and full.precision != precision:
        notes.append(f"no {precision} model for {backend}: using {full.precision}")
    return Selection(backend, full, None, None, notes)


def bundle_from_model_file(path: str, labels_path: Optional[str] = None) -> Bundle:
    """Wrap a single ``.tflite``/``.onnx``/``.engine`` full-clip model as an in-memory bundle.

    Labels from ``labels_path`` or ``labels.txt`` next to the model; the input spec is read from the
    model itself when the classifier is built (``check_model``)."""
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such model file or bundle directory")
    fmt = {"tflite": "tflite", "edgetpu": "edgetpu", "onnxruntime": "onnx", "tensorrt": "tensorrt"}[
        backend_for_path(path)]
    root = os.path.dirname(os.path.abspath(path))
    labels_path = labels_path or os.path.join(root, "labels.txt")
    if not os.path.isfile(labels_path):
        raise ModelError(f"{path}: a bare model file needs class names: --labels FILE or labels.txt next to it "
                         f"(or pass the bundle directory)")
    labels = read_labels(labels_path)
    art = Artifact(name=os.path.basename(path), file=os.path.basename(path), format=fmt,
                   precision="int8" if "int8" in path or fmt == "edgetpu" else "float32", part="full",
                   devices=["cpu", "coral", "jetson"])
    return Bundle(name=os.path.basename(path), model="file", labels=labels, input=InputSpec(),
                  sampling=TemporalSampling(frames=InputSpec().frames), artifacts=[art], root=root)


def load_classifier(bundle: Bundle, sel: Selection, options: BackendOptions) -> ClipClassifier:
    """Open the selected artifacts with their backends (BackendUnavailable propagates)."""
    main = load_backend(bundle.path(sel.main), sel.backend, options)
    if sel.head is None:
        return ClipClassifier(full=main)
    try:
        head = load_backend(bundle.path(sel.head), sel.head_backend,
                            BackendOptions(threads=options.threads))
    except Exception:
        main.close()
        raise
    return ClipClassifier(encoder=main, head=head)


def infer_spec(bundle: Bundle, clf: ClipClassifier) -> Bundle:
    """For a bare model file: take frames/height/width from the model's input shape."""
    if bundle.model != "file" or clf.full is None:
        return bundle
    shape = tuple(clf.full.input_shape)
    if len(shape) != 5 or shape[-1] != 3:
        raise ModelError(f"{bundle.root}: a bare model file must take (1, T, H, W, 3) clips, got {shape}")
    t, h, w = int(shape[1]), int(shape[2]), int(shape[3])
    bundle.input = InputSpec(frames=t, height=h, width=w)
    bundle.sampling = TemporalSampling(frames=t)
    return bundle


def check_model(bundle: Bundle, clf: ClipClassifier) -> Tuple[int, ...]:
    """Shapes and labels agree, and one inference runs: ModelError otherwise (before capture)."""
    spec = bundle.input
    k = len(bundle.labels)
    where = bundle.root or bundle.name
    if clf.full is not None:
        want = (1,) + spec.clip_shape
        got = tuple(clf.full.input_shape)
        if got != want:
            raise ModelError(f"{where}: model input {got} does not match the bundle's input spec {want} "
                             f"(frames x height x width x channels)")
        out = clf.predict(np.zeros(spec.clip_shape, np.float32))
    else:
        want = (1, spec.height, spec.width, spec.channels)
        got = tuple(clf.encoder.input_shape)
        if got != want:
            raise ModelError(f"{where}: encoder input {got} does not match the bundle's frame size {want}")
        feat = clf.encode_frame(np.zeros(want[1:], np.float32))
        head_in = tuple(clf.head.input_shape)
        if head_in != (1, spec.frames, feat.size):
            raise ModelError(f"{where}: head input {head_in} does not fit {spec.frames} frames x "
                             f"{feat.size} encoder features")
        if bundle.streaming and bundle.streaming.get("feature_dim") not in (None, feat.size):
            raise ModelError(f"{where}: streaming.feature_dim {bundle.streaming['feature_dim']} != encoder "
                             f"output size {feat.size}")
        out = clf.predict_features(np.zeros((spec.frames, feat.size), np.float32))
    if out.size != k:
        raise ModelError(f"{where}: model outputs {out.size} scores but the bundle has {k} labels")
    if not np.all(np.isfinite(out)):
        raise ModelError(f"{where}: model produced non-finite scores on a blank clip")
    return tuple(out.shape)
