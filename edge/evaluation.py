"""The one evaluation path: a clip file -> a prediction, a folder of clips -> metrics.

A file is sampled the way the model was trained: ``bundle.input.frames`` frames evenly over the
WHOLE clip (``edge.video.read_clip``, the paper's indices, the bundle's ``short_policy``), resized to
the bundle's input size and normalised with ``edge.preprocess.normalize``. That is what training's
cache (``edge-data prepare``), ``edge-eval``, ``edge-bench --data``, edge-quantize's scoring and
``edge-run``'s ``file_prediction`` (for a finite source) all use; a live source is different: it has
no whole clip, so the runner predicts over a sliding window.

``classifier_for(bundle, plan, options)`` is the one factory of ``ClipClassifier`` objects from a
plan (``edge.select.plan``). TensorFlow-free: runs on the devices too.
"""
import json
import os
import time
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .backends import BackendOptions, load_backend
from .bundle import Bundle
from .classifier import ClipClassifier
from .metrics import classification_metrics, top1_agreement
from .preprocess import InputSpec, normalize
from .sampling import TemporalSampling
from .video import VideoError, read_clip

VIDEO_EXTS = (".avi", ".mp4", ".mpg", ".mpeg", ".mkv", ".mov", ".webm", ".m4v", ".3gp", ".flv", ".wmv")


class Prediction(NamedTuple):
    """Top-1 of one clip: class index, its label and score, and every class score."""

    index: int
    label: str
    score: float
    scores: np.ndarray

    def to_dict(self) -> dict:
        return {"label": self.label, "score": round(float(self.score), 6)}


class DataError(ValueError):
    """A data folder / clip list cannot be used; the message says why (CLIs: one line, exit 2)."""


# -- the factory ---------------------------------------------------------------------------------
def classifier_for(bundle: Bundle, plan, options: Optional[BackendOptions] = None) -> ClipClassifier:
    """Open a plan's artifacts (``edge.select.Plan``: main + backend, head + head backend) as a
    ``ClipClassifier``. Load times per part land in ``classifier.load_ms``. BackendUnavailable
    propagates; nothing stays open when a part fails."""
    options = options or BackendOptions()
    t0 = time.perf_counter()
    main = load_backend(bundle.path(plan.main), plan.backend, options)
    load_ms = {"main": (time.perf_counter() - t0) * 1000.0}
    if plan.head is None:
        clf = ClipClassifier(full=main)
    else:
        t1 = time.perf_counter()
        try:
            # a head on the main backend (an Edge TPU head co-compiled with its encoder) uses the same device
            same = plan.head_backend == plan.backend
            head = load_backend(bundle.path(plan.head), plan.head_backend,
                                BackendOptions(threads=options.threads, device=options.device if same else None))
        except Exception:
            main.close()
            raise
        load_ms["head"] = (time.perf_counter() - t1) * 1000.0
        clf = ClipClassifier(encoder=main, head=head)
    clf.load_ms = load_ms
    return clf


# -- one clip ------------------------------------------------------------------------------------
def read_file_clip(spec: InputSpec, sampling: TemporalSampling, path: str) -> np.ndarray:
    """(T, H, W, 3) uint8: ``spec.frames`` frames evenly over the whole file (training's sampling).
    Raises ``edge.video.VideoError`` for a file that gives no clip."""
    return read_clip(path, n_frames=spec.frames, size=spec.size, short_policy=sampling.short_policy,
                     as_uint8=True).frames


def clip_scores(classifier: ClipClassifier, clip: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Class scores of one clip: uint8 pixels are normalised first, float32 clips used as they are."""
    x = normalize(clip, spec) if clip.dtype == np.uint8 else np.asarray(clip, dtype=np.float32)
    return np.asarray(classifier.predict(x), dtype=np.float32).reshape(-1)


def to_prediction(scores: np.ndarray, labels: Sequence[str]) -> Prediction:
    i = int(np.argmax(scores))
    return Prediction(i, labels[i] if i < len(labels) else str(i), float(scores[i]), scores)


def predict_file(classifier: ClipClassifier, bundle: Bundle, path: str) -> Prediction:
    """The prediction for a whole clip file, sampled as in training (what edge-eval says for it)."""
    clip = read_file_clip(bundle.input, bundle.sampling, path)
    return to_prediction(clip_scores(classifier, clip, bundle.input), bundle.labels)


# -- many clips ----------------------------------------------------------------------------------
def score_clips(classifier: ClipClassifier, clips: Iterable[np.ndarray], spec: InputSpec, n_classes: int,
                progress: Optional[Callable] = None) -> Tuple[np.ndarray, float]:
    """(N, K) scores of every clip (each independent) and the seconds it took."""
    t = time.time()
    it = progress(clips) if progress else clips
    rows = [clip_scores(classifier, c, spec) for c in it]
    scores = np.stack(rows) if rows else np.zeros((0, n_classes), np.float32)
    return scores, time.time() - t


def metrics_of(y: Sequence[int], scores: np.ndarray, labels: Sequence[str], seconds: Optional[float] = None,
               reference_scores: Optional[np.ndarray] = None) -> Dict:
    """``edge.metrics.classification_metrics`` of top-1 + timing (+ top-1 agreement with a reference)."""
    m = classification_metrics(np.asarray(y), np.asarray(scores).argmax(-1) if len(scores) else
                               np.zeros(0, np.int64), labels=list(labels))
    if seconds is not None:
        m["seconds"] = round(float(seconds), 3)
        m["clips_per_s"] = round(len(y) / seconds, 2) if seconds > 0 else None
    if reference_scores is not None:
        m["top1_agreement"] = top1_agreement(scores, reference_scores)
    return m


def evaluate(classifier: ClipClassifier, clips, y: Sequence[int], labels: Sequence[str], spec: InputSpec,
             progress: Optional[Callable] = None, reference_scores: Optional[np.ndarray] = None) -> Dict:
    """Metrics of ``classifier`` on ``clips`` (uint8 or normalised float32, (N, T, H, W, 3)) with labels ``y``."""
    scores, secs = score_clips(classifier, clips, spec, len(labels), progress)
    return metrics_of(y, scores, labels, secs, reference_scores)


# -- a folder of videos --------------------------------------------------------------------------
class EvalSet(object):
    """Decoded clips (uint8, (T,H,W,3)) with labels, plus what was left out and why."""

    def __init__(self, paths: List[str], clips: List[np.ndarray], y: np.ndarray, labels: List[str],
                 ignored_classes: Optional[List[str]] = None, unreadable: Optional[Dict[str, str]] = None,
                 source: str = ""):
        self.paths, self.clips, self.y, self.labels = paths, clips, y, labels
        self.ignored_classes = ignored_classes or []
        self.unreadable = unreadable or {}     # path -> reason
        self.source = source

    def __len__(self) -> int:
        return len(self.clips)

    def summary(self) -> dict:
        return {"source": self.source, "n_clips": len(self.clips),
                "classes_present": sorted({self.labels[i] for i in self.y}),
                "ignored_class_folders": self.ignored_classes,
                "unreadable": [{"path": p, "reason": r} for p, r in sorted(self.unreadable.items())]}


def read_clip_list(path: str) -> List[str]:
    """Relative video paths from a UCF list (.txt) or a run's split.json (test entries)."""
    if not os.path.isfile(path):
        raise DataError("--clips {}: no such file".format(path))
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise DataError("--clips {}: not valid JSON ({})".format(path, e)) from e
        entries = data.get("test", data) if isinstance(data, dict) else data
        out = [e.get("path") if isinstance(e, dict) else e for e in (entries if isinstance(entries, list) else [])]
        out = [p for p in out if isinstance(p, str)]
        if not out:
            raise DataError("--clips {}: no 'test' entries with a 'path' found".format(path))
        return out
    out = [ln.strip().split()[0] for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not out:
        raise DataError("--clips {}: empty list".format(path))
    return out


def _class_folders(data_dir: str, labels: Sequence[str]) -> Tuple[Dict[str, List[str]], List[str]]:
    index = set(labels)
    ignored, per_class = [], {}  # type: List[str], Dict[str, List[str]]
    for cls in sorted(os.listdir(data_dir)):
        d = os.path.join(data_dir, cls)
        if cls.startswith(".") or not os.path.isdir(d):
            continue
        if cls not in index:
            ignored.append(cls)
            continue
        files = sorted(f for f in os.listdir(d) if not f.startswith(".") and f.lower().endswith(VIDEO_EXTS))
        per_class[cls] = [os.path.join(d, f) for f in files]
    return per_class, ignored


def _round_robin(per_class: Dict[str, List[str]], index: Dict[str, int],
                 max_clips: Optional[int]) -> List[Tuple[str, int]]:
    items = []  # type: List[Tuple[str, int]]
    queues = {c: list(v) for c, v in per_class.items() if v}
    while queues and (max_clips is None or len(items) < max_clips):
        for c in sorted(list(queues)):
            if max_clips is not None and len(items) >= max_clips:
                break
            items.append((queues[c].pop(0), index[c]))
            if not queues[c]:
                del queues[c]
    items.sort(key=lambda t: (t[1], t[0]))
    return items


def find_videos(data_dir: str, labels: Sequence[str], clip_list: Optional[str] = None,
                max_clips: Optional[int] = None) -> Tuple[List[Tuple[str, int]], List[str]]:
    """[(path, label index)] for the videos of ``data_dir`` whose class folder is a label,
    optionally restricted to ``clip_list``; ``max_clips`` takes classes in turn (round-robin over
    sorted names) so a small budget still covers every class. Also returns ignored folders."""
    if not os.path.isdir(data_dir):
        raise DataError("--data {}: not a directory".format(data_dir))
    per_class, ignored = _class_folders(data_dir, labels)
    if clip_list:
        wanted = {p.replace("\\", "/").lstrip("./") for p in read_clip_list(clip_list)}
        wanted_names = {os.path.basename(p) for p in wanted}
        for cls, files in per_class.items():
            per_class[cls] = [p for p in files if os.path.relpath(p, data_dir).replace(os.sep, "/") in wanted
                              or os.path.basename(p) in wanted_names]
    if not any(per_class.values()):
        raise DataError("--data {}: no videos in class folders named like the bundle's labels ({}{})".format(
            data_dir, ", ".join(labels[:6]), "..." if len(labels) > 6 else "")
            + (" and listed in {}".format(clip_list) if clip_list else ""))
    return _round_robin(per_class, {name: i for i, name in enumerate(labels)}, max_clips), ignored


def load_eval_set(data_dir: str, labels: Sequence[str], spec: InputSpec, sampling: TemporalSampling,
                  clip_list: Optional[str] = None, max_clips: Optional[int] = None, progress=None) -> EvalSet:
    """Decode every selected video once with the bundle's sampling (uint8 kept; normalised per use)."""
    items, ignored = find_videos(data_dir, labels, clip_list, max_clips)
    paths, clips, ys, bad = [], [], [], {}
    it = progress(items, desc="decode clips") if progress else items
    for path, y in it:
        try:
            clip = read_file_clip(spec, sampling, path)
        except VideoError as e:
            bad[path] = "{}: {}".format(e.reason, e)
            continue
        paths.append(path)
        clips.append(clip)
        ys.append(y)
    if not clips:
        raise DataError("--data {}: none of the {} videos could be decoded".format(data_dir, len(items)))
    return EvalSet(paths=paths, clips=clips, y=np.asarray(ys, dtype=np.int64), labels=list(labels),
                   ignored_classes=ignored, unreadable=bad,
                   source=os.path.abspath(data_dir) + (" (clips listed in {})".format(clip_list) if clip_list else ""))
