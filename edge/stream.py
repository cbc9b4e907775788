"""Live clip sampling and (streaming) prediction.

Sampling like training
----------------------
A bundle says how far apart its training frames were (``sampling.frame_interval_s``, e.g. 0.32 s
for 20 frames over a 6.4 s UCF101 clip). On a live stream of ``fps`` frames per second that is a
step of ``k = round(interval * fps)`` captured frames. Each captured frame gets a *slot*
``round((t - t0) * fps)`` from its capture timestamp, so a dropped frame leaves a gap instead of
shifting everything after it. A prediction at slot ``s`` uses the T slots
``s - (T-1)k, ..., s - k, s`` (newest = the frame just captured); a missing slot (dropped frame) is
served by the newest frame before it. The ring buffer therefore holds ``(T-1)k + 1`` frames:
bounded, preallocated. Without ``frame_interval_s`` (or fps) the step falls back to 1 frame.

``--stride N`` predicts every N-th captured frame once the buffer spans a whole clip; ``--smooth K``
averages the last K score vectors (the device config's ``runner:`` section, ``edge.config.RunnerConfig``,
with the flags merged over it).

Streaming (lrcn-edge)
---------------------
For a streaming bundle the classifier is an encoder (one frame -> F features) and a head
(T x F -> scores). Each frame is encoded at most once, when a prediction first needs it, and the
feature is cached next to the frame in the ring buffer; a prediction then costs the encoder for the
new frame(s) plus one head call, instead of T encoder calls. The output is the same as running
the full clip (tests/test_stream*.py).
"""
import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .classifier import ClipClassifier
from .config import RunnerConfig
from .preprocess import InputSpec, normalize, resize_rgb
from .ringbuffer import RingBuffer
from .sampling import TemporalSampling, pad_indices, paper_indices

log = logging.getLogger("edge.stream")


@dataclass
class Prediction:
    frame_index: int                  # source frame index that triggered it (the newest in the clip)
    timestamp_s: float
    scores: np.ndarray                # raw model scores (K,)
    smoothed: np.ndarray              # mean of the last ``smooth`` score vectors
    top: List[Tuple[str, float]]      # top-k (label, smoothed score)
    label: Optional[str]              # top-1 label, None when below the threshold
    clip_indices: List[int]           # source frame indices that formed the clip (oldest first)
    timings_ms: Dict[str, float] = field(default_factory=dict)
    encoded: int = 0                  # encoder calls this prediction needed (streaming)
    partial: bool = False             # made by flush(): a file shorter than one clip span


class Due(object):
    """A prediction that is due: the newest frame's slot, index and time, its preprocess ms."""

    __slots__ = ("slot", "index", "timestamp_s", "preprocess_ms")

    def __init__(self, slot, index, timestamp_s, preprocess_ms=0.0):
        # type: (int, int, float, float) -> None
        self.slot, self.index, self.timestamp_s, self.preprocess_ms = slot, index, timestamp_s, preprocess_ms


class ClipSampler:
    """Slot arithmetic for one stream (pure; see the module docstring)."""

    def __init__(self, frames: int, interval_s: Optional[float], fps: Optional[float]):
        self.frames = int(frames)
        self.fps = float(fps) if fps else None
        if interval_s and self.fps:
            self.step = max(1, int(round(interval_s * self.fps)))
        else:
            self.step = 1
        self.span = (self.frames - 1) * self.step + 1   # slots covered by one clip
        self._t0 = None  # type: Optional[float]
        self._last_slot = None  # type: Optional[int]
        self._index_slot0 = 0

    def reset(self) -> None:
        self._t0 = None
        self._last_slot = None

    def slot(self, timestamp_s: float, index: int) -> int:
        """Time slot of a frame; strictly increasing (two frames in one slot get consecutive slots)."""
        if self.fps is None:
            s = index
        else:
            if self._t0 is None:
                self._t0 = timestamp_s
            s = int(round((timestamp_s - self._t0) * self.fps))
        if self._last_slot is not None and s <= self._last_slot:
            s = self._last_slot + 1
        self._last_slot = s
        return s

    def clip_slots(self, newest: int) -> List[int]:
        return [newest - (self.frames - 1 - j) * self.step for j in range(self.frames)]


class StreamPredictor:
    """Feed frames with ``push``; get a ``Prediction`` every ``stride`` frames once a clip is full."""

    def __init__(self, classifier: ClipClassifier, labels: Sequence[str], spec: InputSpec,
                 sampling: TemporalSampling, config: RunnerConfig = RunnerConfig(),
                 fps: Optional[float] = None, feature_dim: Optional[int] = None):
        self.classifier = classifier
        self.labels = list(labels)
        self.spec = spec
        self.config = config
        interval = config.interval_s or sampling.frame_interval_s
        if interval is None:
            log.warning("bundle has no sampling.frame_interval_s: using consecutive frames")
        self.interval_s = interval
        self.sampler = ClipSampler(spec.frames, interval, fps)
        self.streaming = classifier.streaming
        fields = {"frame": ((spec.height, spec.width, spec.channels), np.uint8), "index": ((), np.int64)}
        if self.streaming:
            if feature_dim is None:
                feature_dim = int(np.prod(classifier.encoder.output.shape[1:]))
            fields["feature"] = ((feature_dim,), np.float32)
        self.ring = RingBuffer(self.sampler.span, **fields)
        self._scores = RingBuffer(config.smooth, scores=((len(self.labels),), np.float32))
        self._first_slot = None  # type: Optional[int]
        self._since_full = None  # type: Optional[int]
        self._epoch = 0
        self.predictions = 0
        self.encoder_calls = 0

    @property
    def step(self) -> int:
        return self.sampler.step

    def reset(self) -> None:
        """Forget the clip (a reconnect broke the stream's continuity)."""
        self.ring.clear()
        self.sampler.reset()
        self._first_slot = None
        self._since_full = None

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """The device half of ``edge.preprocess``: resize to the model size (uint8 RGB)."""
        return resize_rgb(image, self.spec.size)

    def push(self, image: np.ndarray, timestamp_s: float, index: int, epoch: int = 0,
             timings: Optional[Dict[str, float]] = None) -> Optional[Prediction]:
        """Add one captured RGB frame. Returns a Prediction when one is due, else None.

        ``timings`` (optional dict) receives ``preprocess`` ms for this frame."""
        due = self.add(image, timestamp_s, index, epoch, timings)
        return self.predict_due(due) if due is not None else None

    def add(self, image: np.ndarray, timestamp_s: float, index: int, epoch: int = 0,
            timings: Optional[Dict[str, float]] = None, small: Optional[np.ndarray] = None) -> Optional[Due]:
        """The first half of ``push``: preprocess (unless ``small``, the frame already resized to the
        model size, is given) and store the frame; a ``Due`` when a prediction is due at it. Call
        ``predict_due`` with it before the next ``add`` (the multi-camera scheduler first encodes the
        missing features of several cameras in one batch: ``missing_features`` / ``set_features``)."""
        if epoch != self._epoch:
            self._epoch = epoch
            self.reset()
        t0 = time.perf_counter()
        if small is None:
            small = self.preprocess(image)
        slot = self.sampler.slot(timestamp_s, index)
        self.ring.append(slot, timestamp_s, frame=small, index=index)
        pre_ms = (time.perf_counter() - t0) * 1e3
        if timings is not None:
            timings["preprocess"] = pre_ms
        if self._first_slot is None:
            self._first_slot = slot
        if slot - (self.sampler.span - 1) < self._first_slot:
            return None  # the clip does not reach back far enough yet
        self._since_full = 0 if self._since_full is None else self._since_full + 1
        if self._since_full % self.config.stride:
            return None
        return Due(slot, index, timestamp_s, pre_ms)

    def predict_due(self, due: Due, t0: Optional[float] = None) -> Prediction:
        """The second half of ``push``: the prediction at ``due`` (``t0``: when its inference began,
        for a batched encoder call made before)."""
        t0 = time.perf_counter() if t0 is None else t0
        pred = self._predict_positions(self.clip_positions(due.slot), due.index, due.timestamp_s, t0)
        pred.timings_ms["preprocess"] = due.preprocess_ms
        return pred

    def missing_features(self, due: Due) -> List[int]:
        """Ring positions of the clip at ``due`` whose frame has no feature yet (streaming only)."""
        if not self.streaming:
            return []
        valid = self.ring.valid["feature"]
        return sorted(set(p for p in self.clip_positions(due.slot) if not valid[p]))

    def encoder_input(self, positions: List[int]) -> np.ndarray:
        """(N, H, W, 3) float32: the normalized frames at ``positions``, for a batched encoder call."""
        return normalize(self.ring.data["frame"][positions], self.spec)

    def set_features(self, positions: List[int], features: np.ndarray) -> None:
        for p, f in zip(positions, features):
            self.ring.set(p, "feature", f)
        self.encoder_calls += len(positions)

    def flush(self) -> Optional[Prediction]:
        """End of a finite stream that never filled a clip (a file shorter than the clip span):
        one prediction over the frames seen, sampled the way training samples a whole short video
        (``paper_indices`` over them, padded with the last frame). None if a prediction was made."""
        n = len(self.ring)
        if self.predictions or not n:
            return None
        idx = paper_indices(n, self.spec.frames)
        if len(idx) < self.spec.frames:
            idx = pad_indices(idx, self.spec.frames)
        pos = [self.ring.position(i) for i in idx]
        newest = self.ring.position(-1)
        pred = self._predict_positions(pos, int(self.ring.data["index"][newest]), float(self.ring.times[newest]))
        pred.partial = True
        return pred

    def clip_positions(self, newest_slot: int) -> List[int]:
        out = []
        for s in self.sampler.clip_slots(newest_slot):
            p = self.ring.find(s)
            if p is None:
                raise RuntimeError(f"ring buffer lost slot {s} (capacity {self.ring.capacity})")
            out.append(p)
        return out

    def _predict_positions(self, pos: List[int], index: int, ts: float, t0: Optional[float] = None) -> Prediction:
        t0 = time.perf_counter() if t0 is None else t0
        encoded = 0
        if self.streaming:
            valid = self.ring.valid["feature"]
            for p in pos:
                if not valid[p]:
                    x = normalize(self.ring.data["frame"][p], self.spec)
                    self.ring.set(p, "feature", self.classifier.encode_frame(x))
                    encoded += 1
            feats = self.ring.data["feature"][pos]
            scores = self.classifier.predict_features(feats)
        else:
            clip = normalize(self.ring.data["frame"][pos], self.spec)
            scores = self.classifier.predict(clip)
        t1 = time.perf_counter()
        self.encoder_calls += encoded
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        self._scores.append(self.predictions, scores=scores)
        n = len(self._scores)
        smoothed = self._scores.data["scores"][:n].mean(axis=0) if self.config.smooth > 1 else scores
        k = min(self.config.top_k, len(self.labels))
        order = np.argsort(-smoothed, kind="stable")[:k]
        top = [(self.labels[i], float(smoothed[i])) for i in order]
        label = top[0][0] if top and top[0][1] >= self.config.threshold else None
        self.predictions += 1
        t2 = time.perf_counter()
        return Prediction(frame_index=index, timestamp_s=ts, scores=scores, smoothed=smoothed, top=top,
                          label=label, clip_indices=[int(self.ring.data["index"][p]) for p in pos],
                          timings_ms={"inference": (t1 - t0) * 1e3, "postprocess": (t2 - t1) * 1e3},
                          encoded=encoded)
