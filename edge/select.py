"""Which bundle artifacts run on this device, and loading them into a ``ClipClassifier``.

Streaming bundles (lrcn-edge) run the ``encoder`` on the device's accelerator (Edge TPU, TensorRT,
or the CPU) and the small temporal ``head`` on the CPU (``head_backend``); other bundles run their
``full`` artifact. A missing artifact is one clear line naming what is missing, why (the bundle's
``skipped`` reason) and how to get it. Every shape/label mismatch is caught here, before capture.
"""
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from . import catalog as C
from .backends import BackendOptions
from .bundle import Artifact, Bundle, read_labels
from .classifier import ClipClassifier
from .evaluation import classifier_for
from .preprocess import InputSpec
from .sampling import TemporalSampling

PRECISION_ORDER = C.PRECISION_ORDER  # kept for callers; the catalog decides


class ModelError(ValueError):
    """The model/bundle does not fit the device or is inconsistent; one line for the user."""


@dataclass
class Plan:
    """What runs: the main artifact (full, or encoder of a streaming bundle) with its backend, the
    head with its backend, notes (fallbacks taken) and why other artifacts of the bundle are not used."""

    backend: str
    main: Artifact                 # full, or encoder for streaming
    head: Optional[Artifact] = None
    head_backend: Optional[str] = None
    notes: List[str] = field(default_factory=list)
    device: str = "cpu"
    skipped: List[str] = field(default_factory=list)

    @property
    def streaming(self) -> bool:
        return self.head is not None

    @property
    def artifacts(self) -> List[Artifact]:
        return [self.main] + ([self.head] if self.head is not None else [])

    def describe(self) -> dict:
        return {"backend": self.backend, "artifact": self.main.file, "part": self.main.part,
                "precision": self.main.precision, "head": self.head.file if self.head else None,
                "head_backend": self.head_backend, "notes": self.notes}


Selection = Plan  # the runner's name for it


class _Wanted(object):
    """device / backend / precision / head backend asked for: a device config, overrides on top."""

    def __init__(self, device_config=None, backend=None, precision=None, head_backend=None):
        if device_config is None or isinstance(device_config, str):
            dev = C.DEVICE[device_config or "cpu"]
            self.device, base_backend, base_prec, base_head = dev.name, dev.backends[0], dev.precision, dev.head_backend
        else:
            self.device = device_config.device
            base_backend, base_prec = device_config.backend, device_config.precision
            base_head = device_config.head_backend
        self.backend = backend or base_backend
        self.precision = precision or base_prec
        self.head_backend = head_backend or base_head
        if self.backend not in C.BACKEND:
            raise ModelError(f"unknown backend {self.backend!r} (known: {', '.join(C.BACKEND_NAMES)})")


def _pick(bundle: Bundle, formats: List[str], part: str, precisions: List[str],
          device: Optional[str] = None) -> Optional[Artifact]:
    """First ok artifact of ``part`` in format order, then precision order, that runs on ``device``."""
    for fmt in formats:
        for p in precisions:
            for a in bundle.find(format=fmt, part=part, precision=p):
                if device is None or C.runs_on(a.devices, device):
                    return a
    return None


def co_compiled_head(bundle: Bundle, encoder: Artifact, device: str = "coral") -> Optional[Artifact]:
    """The Edge TPU head compiled in one ``edgetpu_compiler`` run with this Edge TPU ``encoder``
    (each records the other in ``edgetpu.co_compiled_with``), or None."""
    if encoder.format != "edgetpu":
        return None
    for h in bundle.find(format="edgetpu", part="head"):
        mates = (h.edgetpu or {}).get("co_compiled_with") or []
        if os.path.basename(encoder.file) in mates and C.runs_on(h.devices, device):
            return h
    return None


def pair_head(bundle: Bundle, encoder: Artifact, head_backend: str,
              device: str = "cpu") -> Tuple[Optional[Artifact], Optional[str], List[str]]:
    """The head that goes with ``encoder``: an Edge TPU head co-compiled with an Edge TPU encoder
    (runs on the Edge TPU too); else the one ``head_backend`` runs, the encoder's precision first;
    else any head a CPU backend runs (noted). The one pairing rule of the project."""
    precs = C.precision_preference(encoder.precision, C.HEAD_PRECISION_ORDER)
    tpu_head = co_compiled_head(bundle, encoder, device)
    if tpu_head is not None:
        return tpu_head, "edgetpu", [f"{tpu_head.file} was co-compiled with {encoder.file}: the head runs on "
                                     f"the Edge TPU too"]
    want = C.native_format(head_backend)
    head = _pick(bundle, [want], "head", precs, device)
    if head is not None:
        return head, head_backend, []
    for b in C.BACKENDS:
        if b.on_cpu and b.name != head_backend:
            head = _pick(bundle, [C.native_format(b.name)], "head", precs, device)
            if head is not None:
                return head, b.name, [f"no {want} head: using {head.file} on {b.name}"]
    return None, None, []


def _skip_reasons(bundle: Bundle, formats: List[str]) -> List[str]:
    return [f"{s.get('format')} {s.get('part', 'full')}: {s.get('reason', '')}" for s in bundle.skipped
            if s.get("format") in formats]


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
        src = _pick(bundle, ["tflite"], part, ["int8"])
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


def _plan_streaming(bundle: Bundle, w: _Wanted, formats: List[str], precs: List[str]) -> Optional[Plan]:
    enc = _pick(bundle, formats, "encoder", precs, w.device)
    if enc is None:
        return None
    head, hb, notes = pair_head(bundle, enc, C.head_backend_for(w.backend, w.head_backend), w.device)
    if head is None:
        return None
    if w.precision and enc.precision != w.precision:
        notes.append(f"no {w.precision} encoder for {w.backend}: using {enc.precision}")
    return Plan(w.backend, enc, head, hb, notes, w.device)


def plan(bundle: Bundle, device_config=None, backend: Optional[str] = None, precision: Optional[str] = None,
         head_backend: Optional[str] = None, prefer_streaming: bool = True) -> Plan:
    """What ``device_config`` (a ``DeviceConfig``, a catalog device name, or None = cpu) runs of
    ``bundle``; ``backend``/``precision``/``head_backend`` override the config. Raises ModelError.

    Streaming bundles: the encoder the backend runs (its own format first, then what it builds from,
    e.g. TensorRT from ONNX), in precision order, and the head ``pair_head`` gives it; else the full
    model. A bare model file (``bundle_from_model_file``) runs with the backend its suffix names."""
    w = _Wanted(device_config, backend, precision, head_backend)
    if bundle.model == "file":
        b = backend or C.backend_for_file(bundle.artifacts[0].file)
        return Plan(b, bundle.artifacts[0], device=w.device)
    formats = C.backend_formats(w.backend)
    precs = C.precision_preference(w.precision)
    skipped = _skip_reasons(bundle, formats)
    notes = []  # type: List[str]
    if bundle.is_streaming and prefer_streaming:
        p = _plan_streaming(bundle, w, formats, precs)
        if p is not None:
            p.skipped = skipped
            return p
        if _pick(bundle, formats, "encoder", precs, w.device) is not None:
            notes.append("streaming bundle without a usable head: running the full-clip model")
    full = _pick(bundle, formats, "full", precs, w.device)
    if full is None:
        part = "encoder" if bundle.is_streaming else "full"
        other = _pick(bundle, formats, part, precs)
        if other is not None:   # there is one, but the host marked it for other devices
            raise ModelError(f"bundle {bundle.root}: {other.file} is marked for devices {other.devices}, "
                             f"not {w.device}; choose another --backend or rebuild the bundle")
        raise ModelError(_missing(bundle, formats[0], part, w.backend))
    if w.precision and full.precision != w.precision:
        notes.append(f"no {w.precision} model for {w.backend}: using {full.precision}")
    return Plan(w.backend, full, None, None, notes, w.device, skipped)


def select_artifacts(bundle: Bundle, backend: str, precision: Optional[str] = None,
                     head_backend: str = "tflite", prefer_streaming: bool = True) -> Plan:
    """``plan`` for an explicit backend (the runner's call). Raises ModelError."""
    device = next((d.name for d in C.DEVICES if backend in d.backends), "cpu")
    return plan(bundle, device, backend, precision, head_backend, prefer_streaming)


def bundle_from_model_file(path: str, labels_path: Optional[str] = None) -> Bundle:
    """Wrap a single ``.tflite``/``.onnx``/``.engine`` full-clip model as an in-memory bundle.

    Labels from ``labels_path`` or ``labels.txt`` next to the model; the input spec is read from the
    model itself when the classifier is built (``check_model``)."""
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such model file or bundle directory")
    try:
        fmt = C.format_for_file(path)
        C.backend_for_file(path)
    except ValueError as e:
        raise ModelError(str(e)) from None
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


def plan_files(full: Optional[str] = None, encoder: Optional[str] = None, head: Optional[str] = None,
               backend: Optional[str] = None, labels: Optional[List[str]] = None) -> Tuple[Bundle, Plan]:
    """A plan for model files outside a bundle (edge-eval MODEL.tflite, tests): a full model, or an
    encoder + head; backends from the suffixes unless ``backend`` names the main one."""
    if full is None and (encoder is None or head is None):
        raise ModelError("need a full-clip model file, or an encoder and a head")
    def art(path: str, part: str) -> Artifact:
        return Artifact(name=os.path.basename(path), file=os.path.abspath(path), format=C.format_for_file(path),
                        part=part, devices=list(C.DEVICE_NAMES))
    main = art(full or encoder, "full" if full else "encoder")
    h = art(head, "head") if full is None else None
    bundle = Bundle(name=main.name, model="file", labels=list(labels or []), input=InputSpec(),
                    sampling=TemporalSampling(frames=InputSpec().frames), artifacts=[main] + ([h] if h else []))
    p = Plan(backend or C.backend_for_file(main.file), main, h,
             C.backend_for_file(h.file) if h is not None else None)
    return bundle, p


def load_classifier(bundle: Bundle, sel: Plan, options: BackendOptions) -> ClipClassifier:
    """Open the planned artifacts (``edge.evaluation.classifier_for``; BackendUnavailable propagates)."""
    return classifier_for(bundle, sel, options)


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
