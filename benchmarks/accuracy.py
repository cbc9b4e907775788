"""Accuracy of one artifact on a folder of real videos, through the path ``edge-eval`` uses:
``edge.video.read_clip`` with the bundle's sampling and input spec -> ``ClipClassifier`` ->
``edge.metrics.classification_metrics``. No TensorFlow, no scikit-learn (runs on the device).

``--data`` is a raw UCF-style folder (``<Class>/<video>``). Class folders are matched to the bundle's
labels by name; other folders are ignored and reported. ``--clips FILE`` limits the clips to a list:
a UCF split file (``Class/v_Class_g01_c01.avi [label]`` per line, CRLF ok) or a run's ``split.json``
(its ``test`` entries), so the held-out split of a training run can be scored on the device.
Clips are decoded once and reused for every artifact.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge.classifier import ClipClassifier
from edge.metrics import classification_metrics
from edge.preprocess import InputSpec, normalize
from edge.sampling import TemporalSampling
from edge.video import VideoError, read_clip

VIDEO_EXTS = (".avi", ".mp4", ".mpg", ".mpeg", ".mkv", ".mov", ".webm", ".m4v", ".3gp", ".flv", ".wmv")


class DataError(ValueError):
    """--data / --clips cannot be used; the message says why (CLI: one line, exit 2)."""


@dataclass
class EvalSet:
    """Decoded clips (uint8, (T,H,W,3)) with labels, plus what was left out and why."""

    paths: List[str]
    clips: List[np.ndarray]
    y: np.ndarray
    labels: List[str]
    ignored_classes: List[str] = field(default_factory=list)
    unreadable: Dict[str, str] = field(default_factory=dict)   # path -> reason
    source: str = ""

    def __len__(self) -> int:
        return len(self.clips)

    def summary(self) -> dict:
        return {"source": self.source, "n_clips": len(self), "classes_present": sorted({self.labels[i] for i in self.y}),
                "ignored_class_folders": self.ignored_classes,
                "unreadable": [{"path": p, "reason": r} for p, r in sorted(self.unreadable.items())]}


def _read_clip_list(path: str) -> List[str]:
    """Relative video paths from a UCF list (.txt) or a run's split.json (test entries)."""
    if not os.path.isfile(path):
        raise DataError(f"--clips {path}: no such file")
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"--clips {path}: not valid JSON ({e})") from e
        entries = data.get("test", data) if isinstance(data, dict) else data
        out = []
        for e in entries if isinstance(entries, list) else []:
            p = e.get("path") if isinstance(e, dict) else e
            if isinstance(p, str):
                out.append(p)
        if not out:
            raise DataError(f"--clips {path}: no 'test' entries with a 'path' found")
        return out
    out = [ln.strip().split()[0] for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not out:
        raise DataError(f"--clips {path}: empty list")
    return out


def find_videos(data_dir: str, labels: Sequence[str], clip_list: Optional[str] = None,
                max_clips: Optional[int] = None) -> Tuple[List[Tuple[str, int]], List[str]]:
    """[(path, label index)] for the videos of ``data_dir`` whose class folder is a bundle label,
    optionally restricted to ``clip_list``; ``max_clips`` takes classes in turn (round-robin over
    sorted names) so a small budget still covers every class. Also returns ignored folders."""
    if not os.path.isdir(data_dir):
        raise DataError(f"--data {data_dir}: not a directory")
    index = {name: i for i, name in enumerate(labels)}
    ignored, per_class = [], {}
    for cls in sorted(os.listdir(data_dir)):
        d = os.path.join(data_dir, cls)
        if cls.startswith(".") or not os.path.isdir(d):
            continue
        if cls not in index:
            ignored.append(cls)
            continue
        files = sorted(f for f in os.listdir(d) if not f.startswith(".") and f.lower().endswith(VIDEO_EXTS))
        per_class[cls] = [os.path.join(d, f) for f in files]
    if clip_list:
        wanted = {p.replace("\\", "/").lstrip("./") for p in _read_clip_list(clip_list)}
        wanted_names = {os.path.basename(p) for p in wanted}
        for cls, files in per_class.items():
            per_class[cls] = [p for p in files if os.path.relpath(p, data_dir).replace(os.sep, "/") in wanted
                              or os.path.basename(p) in wanted_names]
    if not any(per_class.values()):
        raise DataError(f"--data {data_dir}: no videos in class folders named like the bundle's labels "
                        f"({', '.join(labels[:6])}{'...' if len(labels) > 6 else ''})"
                        + (f" and listed in {clip_list}" if clip_list else ""))
    items: List[Tuple[str, int]] = []
    queues = {c: list(v) for c, v in per_class.items() if v}
    while queues and (max_clips is None or len(items) < max_clips):
        for c in sorted(list(queues)):
            if max_clips is not None and len(items) >= max_clips:
                break
            items.append((queues[c].pop(0), index[c]))
            if not queues[c]:
                del queues[c]
    items.sort(key=lambda t: (t[1], t[0]))
    return items, ignored


def load_eval_set(data_dir: str, labels: Sequence[str], spec: InputSpec, sampling: TemporalSampling,
                  clip_list: Optional[str] = None, max_clips: Optional[int] = None, progress=None) -> EvalSet:
    """Decode every selected video once with the bundle's sampling (uint8 kept; normalised per use)."""
    items, ignored = find_videos(data_dir, labels, clip_list, max_clips)
    paths, clips, ys, bad = [], [], [], {}
    it = progress(items, desc="decode clips") if progress else items
    for path, y in it:
        try:
            clip = read_clip(path, n_frames=spec.frames, size=spec.size, short_policy=sampling.short_policy,
                             as_uint8=True)
        except VideoError as e:
            bad[path] = f"{e.reason}: {e}"
            continue
        paths.append(path)
        clips.append(clip.frames)
        ys.append(y)
    if not clips:
        raise DataError(f"--data {data_dir}: none of the {len(items)} videos could be decoded")
    return EvalSet(paths=paths, clips=clips, y=np.asarray(ys, dtype=np.int64), labels=list(labels),
                   ignored_classes=ignored, unreadable=bad,
                   source=os.path.abspath(data_dir) + (f" (clips listed in {clip_list})" if clip_list else ""))


def evaluate(classifier: ClipClassifier, data: EvalSet, spec: InputSpec, progress=None) -> dict:
    """macro-F1, accuracy ... of ``classifier`` on ``data`` (edge.metrics, same as edge-eval).
    Every clip is scored independently: the TFLite backend resets LSTM state before each call."""
    preds = []
    it = progress(data.clips, desc="predict", leave=False) if progress else data.clips
    for clip in it:
        preds.append(int(np.argmax(classifier.predict(normalize(clip, spec)))))
    m = classification_metrics(data.y, np.asarray(preds), labels=data.labels)
    return {"f1_macro": m["f1_macro"], "accuracy": m["accuracy"], "n_clips": m["n_test"],
            "precision_macro": m["precision_macro"], "recall_macro": m["recall_macro"],
            "confusion_matrix": m["confusion_matrix"]}
