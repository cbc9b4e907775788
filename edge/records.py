"""What ``edge-run`` writes, as types: one ``PredictionRecord`` per JSONL line, one ``RunSummary`` per run.

``edge-bench`` (benchmarks/e2e.py), the tests and any consumer read them back with ``from_dict``
instead of guessing key names; ``to_dict`` is exactly what is written. A JSONL line:

    {"timestamp": 3.2, "wall_time": 1795591455.87, "frame": 96, "label": "Archery", "score": 0.91,
     "top": [{"label": "Archery", "score": 0.91}, ...], "clip": [0, 96], "epoch": 0,
     "latency_ms": {"capture": 0.4, "preprocess": 0.1, "inference": 1.9, "postprocess": 0.05,
                    "capture_to_prediction": 2.6}, "dropped": 0, "partial": false}

``timestamp``: stream time (live: capture clock since the first frame; files: PTS); ``wall_time``:
UNIX time of the capture; ``clip``: first and last source frame index of the clip; ``epoch``: the
source's reconnect count; ``partial``: the one prediction made at the end of a file shorter than one
clip span. ``latency_ms`` uses the stage names of ``edge.timing.STAGES``.
"""
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple


def _r(x: Optional[float], digits: int = 6) -> Optional[float]:
    return None if x is None else round(float(x), digits)


def _top_dicts(top: List[Tuple[str, float]]) -> List[dict]:
    return [{"label": lab, "score": _r(s)} for lab, s in top]


def _top_pairs(top: List[dict]) -> List[Tuple[str, float]]:
    return [(t["label"], float(t["score"])) for t in top or []]


@dataclass
class PredictionRecord:
    """One prediction of a run. ``scores`` (all classes, smoothed; in the bundle's label order) is
    for in-process consumers (events, web view) and is not written to JSONL."""

    timestamp: float
    frame: int
    label: Optional[str]
    top: List[Tuple[str, float]]
    clip: List[int]
    latency_ms: Dict[str, float]
    wall_time: Optional[float] = None
    epoch: int = 0
    dropped: int = 0
    partial: bool = False
    scores: Any = field(default=None, repr=False, compare=False)

    @property
    def score(self) -> Optional[float]:
        return float(self.top[0][1]) if self.top else None

    def to_dict(self) -> dict:
        return {
            "timestamp": _r(self.timestamp), "wall_time": _r(self.wall_time), "frame": int(self.frame),
            "label": self.label, "score": _r(self.score), "top": _top_dicts(self.top),
            "clip": [int(c) for c in self.clip], "epoch": int(self.epoch),
            "latency_ms": {k: round(float(v), 3) for k, v in self.latency_ms.items()},
            "dropped": int(self.dropped), "partial": bool(self.partial),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "PredictionRecord":
        return cls(timestamp=float(d["timestamp"]), frame=int(d["frame"]), label=d.get("label"),
                   top=_top_pairs(d.get("top")), clip=list(d.get("clip") or []),
                   latency_ms={k: float(v) for k, v in (d.get("latency_ms") or {}).items()},
                   wall_time=d.get("wall_time"), epoch=int(d.get("epoch", 0)), dropped=int(d.get("dropped", 0)),
                   partial=bool(d.get("partial", False)))


@dataclass
class FilePrediction:
    """The answer for a whole file, sampled the way training and ``edge-eval`` sample a clip (the
    bundle's T frames evenly over the whole video): top-1 and the top-3 (label, score)."""

    label: str
    score: float
    top: List[Tuple[str, float]] = field(default_factory=list)

    @classmethod
    def from_scores(cls, scores, labels: List[str], k: int = 3) -> "FilePrediction":
        order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
        top = [(labels[i], float(scores[i])) for i in order[:k]]
        return cls(label=top[0][0], score=top[0][1], top=top)

    def to_dict(self) -> dict:
        return {"label": self.label, "score": _r(self.score), "top": _top_dicts(self.top)}

    @classmethod
    def from_dict(cls, d: dict) -> "FilePrediction":
        return cls(label=d["label"], score=float(d["score"]), top=_top_pairs(d.get("top")))


@dataclass
class RunSummary:
    """The end-of-run summary (``--summary``). ``latency_ms``: stage -> ``LatencyStats.summary()``;
    ``file_prediction``: only for a file source (None for live sources: they keep the window);
    ``events``: with --events/--record/--serve, events per kind, sink counters and faults
    (``edge.sinks.events_summary``); ``cameras``: several cameras in one run (``edge.multicam``):
    camera name -> that camera's summary dict, the top-level numbers then being the totals (``fps``:
    the sum over the cameras)."""

    frames: int = 0
    predictions: int = 0
    dropped: int = 0
    dropped_pct: float = 0.0
    reconnects: int = 0
    source_errors: int = 0
    fps: float = 0.0
    source_fps: Optional[float] = None
    elapsed_s: float = 0.0
    stop_reason: str = "stopped"
    exit_code: int = 0
    latency_ms: Dict[str, Dict[str, float]] = field(default_factory=dict)
    source: Dict[str, Any] = field(default_factory=dict)
    backend: Optional[str] = None
    artifact: Optional[str] = None
    config: Optional[str] = None
    device: Optional[str] = None
    model: Dict[str, Any] = field(default_factory=dict)
    sampling: Dict[str, Any] = field(default_factory=dict)
    last_label: Optional[str] = None
    file_prediction: Optional[FilePrediction] = None
    events: Dict[str, Any] = field(default_factory=dict)
    cameras: Dict[str, Any] = field(default_factory=dict)
    version: str = ""

    def to_dict(self) -> dict:
        d = {"version": self.version}
        for f in fields(self):
            if f.name in ("events", "cameras") and not getattr(self, f.name):
                continue   # only with events / several cameras: a plain run's summary is unchanged
            if f.name not in ("version", "file_prediction"):
                d[f.name] = getattr(self, f.name)
        if self.file_prediction is not None:
            d["file_prediction"] = self.file_prediction.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSummary":
        """Keys this version does not know are ignored; missing ones keep their defaults."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known and k != "file_prediction"}
        fp = d.get("file_prediction")
        return cls(file_prediction=FilePrediction.from_dict(fp) if fp else None, **kw)

    def stage(self, name: str) -> Optional[Dict[str, float]]:
        """The latency block of one stage, None when it never ran."""
        st = self.latency_ms.get(name)
        return st if st and st.get("count") else None
