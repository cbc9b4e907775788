"""From per-prediction class scores to action *events*: start / update / end.

One ``EventDetector`` per camera turns the stream of score vectors into events with, per class:

- **smoothing** of the scores: an exponential moving average (``smoothing="ema"``, weight ``alpha``
  for the newest vector) or the mean of the last ``window`` vectors (``smoothing="window"``), or none;
- **hysteresis**: a class becomes a *candidate* when its smoothed score reaches its ``enter``
  threshold and stays active until it falls below its lower ``exit`` threshold;
- a **minimum duration**: the candidate must stay at or above ``exit`` for ``min_duration_s`` of
  stream time before ``start`` is emitted (short blips never become events), and an active event
  ends only after ``hold_s`` below ``exit`` (a one-prediction dip does not split an event);
- **background / idle**: a class named ``_background`` (``EventConfig.background``) never makes
  events, and a camera with no active event is idle (``EventDetector.idle``).

Every event is a plain dict with exactly these keys::

    {"event": "start" | "update" | "end", "camera": "cam1", "label": "Archery",
     "confidence": 0.91, "mean_confidence": 0.87, "wall_time": 1795591455.87,
     "stream_time": 12.4, "frames": [first, last], "clip": null}

- ``stream_time`` / ``wall_time``: for ``start`` the moment the event began (the first prediction at
  or above ``enter``; the message itself goes out ``min_duration_s`` later), for ``update`` the
  current prediction, for ``end`` the last prediction at or above ``exit`` (the message goes out
  ``hold_s`` later).
- ``frames``: the first and the latest frame index of the event so far.
- ``confidence``: the class's smoothed score at that moment (``end``: the peak over the event);
  ``mean_confidence``: the mean smoothed score over the event's predictions so far.
- ``clip``: filled in by the clip recorder (``edge.eventsinks.record``), else ``None``.

``update`` is emitted every ``update_every_s`` of stream time while an event is active (0 = never).
Pure Python + numpy, no threads: the caller's loop calls ``update()`` once per prediction.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

BACKGROUND = "_background"
EVENT_KEYS = ("event", "camera", "label", "confidence", "mean_confidence", "wall_time", "stream_time",
              "frames", "clip")
SMOOTHING = ("ema", "window", "none")


class EventConfig(object):
    """Thresholds and timing of the event state machine (validated on construction).

    ``per_class`` maps a label to ``(enter, exit)`` and overrides ``enter``/``exit`` for it."""

    def __init__(self, enter=0.6, exit=0.4, min_duration_s=0.5, hold_s=0.5, update_every_s=0.0,
                 smoothing="ema", alpha=0.5, window=3, per_class=None, background=BACKGROUND):
        # type: (float, float, float, float, float, str, float, int, Optional[Dict[str, Tuple[float, float]]], str) -> None
        self.enter = float(enter)
        self.exit = float(exit)
        self.min_duration_s = float(min_duration_s)
        self.hold_s = float(hold_s)
        self.update_every_s = float(update_every_s)
        self.smoothing = smoothing
        self.alpha = float(alpha)
        self.window = int(window)
        self.per_class = dict(per_class or {})
        self.background = background
        self._validate()

    def _validate(self):
        pairs = [("default", (self.enter, self.exit))] + sorted(self.per_class.items())
        for name, pair in pairs:
            if len(pair) != 2:
                raise ValueError("events: thresholds for {!r} must be (enter, exit), got {!r}".format(name, pair))
            enter, exit_ = float(pair[0]), float(pair[1])
            if not (0.0 < enter <= 1.0 and 0.0 <= exit_ <= enter):
                raise ValueError("events: thresholds for {!r} need 0 <= exit <= enter <= 1 and enter > 0, "
                                 "got enter={} exit={}".format(name, enter, exit_))
        for key in ("min_duration_s", "hold_s", "update_every_s"):
            if getattr(self, key) < 0:
                raise ValueError("events: {} must be >= 0, got {}".format(key, getattr(self, key)))
        if self.smoothing not in SMOOTHING:
            raise ValueError("events: smoothing must be one of {}, got {!r}".format(", ".join(SMOOTHING),
                                                                                     self.smoothing))
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError("events: alpha must be in (0, 1], got {}".format(self.alpha))
        if self.window < 1:
            raise ValueError("events: window must be >= 1, got {}".format(self.window))

    def thresholds(self, label):
        # type: (str) -> Tuple[float, float]
        pair = self.per_class.get(label)
        if pair is None:
            return self.enter, self.exit
        return float(pair[0]), float(pair[1])

    def as_dict(self):
        # type: () -> Dict
        return {"enter": self.enter, "exit": self.exit, "min_duration_s": self.min_duration_s,
                "hold_s": self.hold_s, "update_every_s": self.update_every_s, "smoothing": self.smoothing,
                "alpha": self.alpha, "window": self.window,
                "per_class": {k: list(v) for k, v in self.per_class.items()}, "background": self.background}


class ScoreSmoother(object):
    """EMA or sliding-window mean of score vectors (constant memory)."""

    def __init__(self, config, num_classes):
        # type: (EventConfig, int) -> None
        self.mode = config.smoothing
        self.alpha = config.alpha
        self._ema = None  # type: Optional[np.ndarray]
        self._win = np.zeros((config.window if self.mode == "window" else 1, num_classes), np.float64)
        self._n = 0

    def __call__(self, scores):
        # type: (np.ndarray) -> np.ndarray
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if self.mode == "none":
            return s
        if self.mode == "ema":
            self._ema = s.copy() if self._ema is None else self.alpha * s + (1.0 - self.alpha) * self._ema
            return self._ema
        self._win[self._n % len(self._win)] = s
        self._n += 1
        return self._win[:min(self._n, len(self._win))].mean(axis=0)


class _Track(object):
    """State of one class on one camera: idle -> candidate -> active -> (ending) -> idle."""

    __slots__ = ("state", "t0", "w0", "f0", "last_t", "last_w", "last_f", "last_above_t", "last_above_w",
                 "last_above_f", "below_since", "sum", "n", "peak", "last_update_t", "conf")

    def __init__(self):
        self.state = "idle"

    def begin(self, t, w, f, conf):
        self.state = "candidate"
        self.t0, self.w0, self.f0 = t, w, f
        self.sum, self.n, self.peak = 0.0, 0, 0.0
        self.below_since = None
        self.last_update_t = t
        self.observe(t, w, f, conf, above=True)

    def observe(self, t, w, f, conf, above):
        self.last_t, self.last_w, self.last_f, self.conf = t, w, f, conf
        self.sum += conf
        self.n += 1
        self.peak = max(self.peak, conf)
        if above:
            self.last_above_t, self.last_above_w, self.last_above_f = t, w, f
            self.below_since = None
        elif self.below_since is None:
            self.below_since = t


class EventDetector(object):
    """Events of one camera. ``update()`` per prediction returns the events it caused (often [])."""

    def __init__(self, camera, labels, config=None):
        # type: (str, Sequence[str], Optional[EventConfig]) -> None
        self.camera = str(camera)
        self.labels = [str(x) for x in labels]
        self.config = config or EventConfig()
        unknown = sorted(set(self.config.per_class) - set(self.labels))
        if unknown:
            raise ValueError("events: thresholds given for unknown class(es) {}; the model's classes are: {}"
                             .format(", ".join(unknown), ", ".join(self.labels)))
        self._smooth = ScoreSmoother(self.config, len(self.labels))
        self._tracks = [_Track() for _ in self.labels]
        self._thr = [self.config.thresholds(lab) for lab in self.labels]
        self._skip = [lab == self.config.background for lab in self.labels]
        self.counts = {"predictions": 0, "start": 0, "update": 0, "end": 0}

    @property
    def idle(self):
        # type: () -> bool
        """True when no class is active (below-threshold or background)."""
        return not self.active()

    def active(self):
        # type: () -> List[str]
        return [lab for lab, tr in zip(self.labels, self._tracks) if tr.state in ("active",)]

    def score_vector(self, scores):
        # type: (object) -> np.ndarray
        """Accept a score array in label order or a ``{label: score}`` dict."""
        if isinstance(scores, dict):
            return np.array([float(scores.get(lab, 0.0)) for lab in self.labels], np.float64)
        arr = np.asarray(scores, dtype=np.float64).reshape(-1)
        if arr.shape[0] != len(self.labels):
            raise ValueError("events: got {} scores for {} labels".format(arr.shape[0], len(self.labels)))
        return arr

    def update(self, scores, stream_time, wall_time=None, frame_index=0):
        # type: (object, float, Optional[float], int) -> List[Dict]
        t = float(stream_time)
        w = float(wall_time) if wall_time is not None else None
        f = int(frame_index)
        smoothed = self._smooth(self.score_vector(scores))
        self.counts["predictions"] += 1
        out = []  # type: List[Dict]
        for i, tr in enumerate(self._tracks):
            if self._skip[i]:
                continue
            ev = self._step(i, tr, float(smoothed[i]), t, w, f)
            if ev is not None:
                out.append(ev)
        for ev in out:
            self.counts[ev["event"]] += 1
        return out

    def _step(self, i, tr, conf, t, w, f):
        enter, exit_ = self._thr[i]
        if tr.state == "idle":
            if conf >= enter:
                tr.begin(t, w, f, conf)
                return self._promote(i, tr, t)
            return None
        tr.observe(t, w, f, conf, above=conf >= exit_)
        if tr.state == "candidate":
            if conf < exit_:          # fell back before the minimum duration: a blip, no event
                tr.state = "idle"
                return None
            return self._promote(i, tr, t)
        # active
        if tr.below_since is not None:
            if t - tr.below_since >= self.config.hold_s:
                tr.state = "idle"
                return self._event("end", i, tr)
            return None
        every = self.config.update_every_s
        if every > 0 and t - tr.last_update_t >= every:
            tr.last_update_t = t
            return self._event("update", i, tr)
        return None

    def _promote(self, i, tr, t):
        if t - tr.t0 >= self.config.min_duration_s:
            tr.state = "active"
            tr.last_update_t = t
            return self._event("start", i, tr)
        return None

    def _event(self, kind, i, tr):
        if kind == "start":
            t, w, conf = tr.t0, tr.w0, tr.conf
        elif kind == "update":
            t, w, conf = tr.last_t, tr.last_w, tr.conf
        else:
            t, w, conf = tr.last_above_t, tr.last_above_w, tr.peak
        last_f = tr.last_above_f if kind == "end" else tr.last_f
        return make_event(kind, self.camera, self.labels[i], conf, tr.sum / max(tr.n, 1), w, t,
                          [tr.f0, last_f])

    def flush(self):
        # type: () -> List[Dict]
        """End every active event (end of stream or shutdown); candidates are dropped."""
        out = []
        for i, tr in enumerate(self._tracks):
            if tr.state == "active":
                out.append(self._event("end", i, tr))
                self.counts["end"] += 1
            tr.state = "idle"
        return out


def _round(x, nd=6):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), nd)


def make_event(kind, camera, label, confidence, mean_confidence, wall_time, stream_time, frames, clip=None):
    # type: (str, str, str, float, float, Optional[float], float, List[int], Optional[str]) -> Dict
    """The one constructor of an event dict (keys: ``EVENT_KEYS``)."""
    return {"event": kind, "camera": camera, "label": label, "confidence": _round(confidence, 4),
            "mean_confidence": _round(mean_confidence, 4), "wall_time": _round(wall_time),
            "stream_time": _round(stream_time), "frames": [int(frames[0]), int(frames[1])], "clip": clip}
