"""Latency statistics and the runner's stage names: the one definition used by edge-run and edge-bench.

``STAGES`` are the per-frame stages ``edge-run`` times (ms):

- ``capture``: camera timestamp -> frame in Python (GStreamer scaling/conversion + waiting in the appsink)
- ``preprocess``: resize to the model input
- ``inference``: encoder for new frames + head, or the full clip
- ``postprocess``: smoothing + top-k
- ``capture_to_prediction``: camera timestamp -> prediction ready
- ``output``: the sinks (JSONL, overlay, video, ...)

``LatencyStats`` serves both users:

- streaming (``add``/``extend``, what a run of hours needs): exact count/mean/min/max/std and a
  log-spaced histogram (1 us .. 100 s, bins 1% apart), so p50/p95/p99 are within 1% of the exact
  value whatever the run length and memory stays ~15 KB per stage;
- exact (``from_samples``, what a benchmark of a few thousand calls wants): the samples are kept and
  percentiles interpolate linearly between order statistics (numpy's default, like TFLite's
  ``benchmark_model``).
"""
import math
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

STAGES = ("capture", "preprocess", "inference", "postprocess", "capture_to_prediction", "output")
PERCENTILES = (50, 90, 95, 99)
_LO_MS = 1e-3
_HI_MS = 1e5
_RATIO = 1.01
_NBINS = int(math.ceil(math.log(_HI_MS / _LO_MS) / math.log(_RATIO))) + 2


class LatencyStats:
    """Latency statistics in milliseconds; see the module docstring for the two modes."""

    def __init__(self, keep_samples: bool = False):
        self.count = 0
        self.total = 0.0
        self._sq = 0.0
        self.min = math.inf
        self.max = 0.0
        self._hist = np.zeros(_NBINS, dtype=np.int64)
        self._samples = [] if keep_samples else None  # type: Optional[List[float]]

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> "LatencyStats":
        """Exact statistics of finished samples; raises ValueError when empty, negative or not finite."""
        a = np.asarray(samples_ms, dtype=np.float64).reshape(-1)
        if a.size == 0:
            raise ValueError("no latency samples")
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError("latency samples must be finite and >= 0")
        s = cls(keep_samples=True)
        s.extend(a.tolist())
        s.total = float(a.sum())  # numpy's pairwise sum, as the mean of the samples
        return s

    def add(self, ms: float) -> None:
        ms = max(float(ms), 0.0)
        self.count += 1
        self.total += ms
        self._sq += ms * ms
        self.min = min(self.min, ms)
        self.max = max(self.max, ms)
        self._hist[self._bin(ms)] += 1
        if self._samples is not None:
            self._samples.append(ms)

    def extend(self, values: Iterable[float]) -> None:
        for v in values:
            self.add(v)

    @staticmethod
    def _bin(ms: float) -> int:
        if ms <= _LO_MS:
            return 0
        return min(_NBINS - 1, 1 + int(math.log(ms / _LO_MS) / math.log(_RATIO)))

    @staticmethod
    def _value(b: int) -> float:
        """Geometric centre of bin ``b``."""
        if b == 0:
            return _LO_MS
        lo = _LO_MS * _RATIO ** (b - 1)
        return lo * math.sqrt(_RATIO)

    # values ---------------------------------------------------------------------------------------
    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def std(self) -> float:
        """Population standard deviation (like benchmark_model)."""
        if not self.count:
            return 0.0
        if self._samples is not None:
            return float(np.asarray(self._samples).std())
        return math.sqrt(max(0.0, self._sq / self.count - self.mean ** 2))

    def percentile(self, q: float) -> float:
        """q in [0, 100]. Kept samples: linear interpolation (numpy); else nearest rank on the
        histogram, clamped to the exact min/max."""
        if not self.count:
            return 0.0
        if self._samples is not None:
            return float(np.percentile(np.asarray(self._samples), q))
        rank = max(1, int(math.ceil(q / 100.0 * self.count)))
        b = int(np.searchsorted(np.cumsum(self._hist), rank))
        return float(min(max(self._value(b), self.min), self.max))

    min_ms = property(lambda self: self.min if self.count else 0.0)
    max_ms = property(lambda self: self.max)
    mean_ms = property(lambda self: self.mean)
    std_ms = property(lambda self: self.std)
    p50_ms = property(lambda self: self.percentile(50))
    p90_ms = property(lambda self: self.percentile(90))
    p95_ms = property(lambda self: self.percentile(95))
    p99_ms = property(lambda self: self.percentile(99))

    @property
    def fps(self) -> float:
        """Sustained calls per second (1000 / mean ms)."""
        return 1000.0 / self.mean if self.mean > 0 else math.inf

    # views ----------------------------------------------------------------------------------------
    def summary(self) -> Dict[str, float]:
        """The runner's summary block (rounded to 1 us): count, mean, min, max, p50, p95, p99."""
        return {"count": self.count, "mean_ms": round(self.mean, 3), "min_ms": round(self.min_ms, 3),
                "max_ms": round(self.max, 3), "p50_ms": round(self.percentile(50), 3),
                "p95_ms": round(self.percentile(95), 3), "p99_ms": round(self.percentile(99), 3)}

    def to_dict(self) -> dict:
        """The benchmark report's block (unrounded): + std, p90 and fps."""
        d = {"count": self.count, "min_ms": self.min_ms, "max_ms": self.max, "mean_ms": self.mean,
             "std_ms": self.std}
        d.update({"p%d_ms" % q: self.percentile(q) for q in PERCENTILES})
        d["fps"] = round(self.fps, 3) if math.isfinite(self.fps) else None
        return d


class StageTimer:
    """Named ``LatencyStats`` for the stages of a run (``add(name, ms)``, ``add_all(times)``)."""

    def __init__(self, stages: Iterable[str] = STAGES):
        self.stats = {s: LatencyStats() for s in stages}  # type: Dict[str, LatencyStats]

    def add(self, stage: str, ms: float) -> None:
        self.stats.setdefault(stage, LatencyStats()).add(ms)

    def add_all(self, times_ms: Dict[str, float]) -> None:
        for k, v in times_ms.items():
            self.add(k, v)

    def summary(self) -> Dict[str, Dict[str, float]]:
        return {k: v.summary() for k, v in self.stats.items()}
