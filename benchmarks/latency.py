"""Model latency measured the way TFLite's ``benchmark_model`` does it.

``benchmark_model`` reports: init time (load + allocate), the first inference on its own (it pays
for lazy allocation, weight packing, delegate preparation), warm-up runs, then steady-state runs
until *both* a minimum run count and a minimum run time are reached, stopping early only past a
maximum time. We do the same, per call, in Python, through the same ``Backend.infer`` path that
``edge-run`` uses, so the numbers are what a user's pipeline pays (including the float<->int8
conversion at the backend boundary). ``benchmarks/bench_overhead.py`` checks that this harness adds
less than 10% over a bare ``Interpreter.invoke()`` loop.

No TensorFlow here: this module runs on the Jetson / Coral board (numpy + ``edge`` only).
"""

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from edge.timing import LatencyStats  # the one definition (edge-run's summary uses it too)

MAX_STORED_SAMPLES = 2000   # raw samples kept in report.json for plots (stats use all of them)


def thin(samples: Sequence[float], n: int) -> List[float]:
    """At most ``n`` samples, evenly strided over the run (keeps drift and the distribution shape)."""
    if len(samples) <= n:
        return list(samples)
    idx = np.linspace(0, len(samples) - 1, n).round().astype(int)
    return [samples[i] for i in idx]


@dataclass(frozen=True)
class RunPolicy:
    """How long to measure (``benchmark_model`` flags in brackets).

    min_runs [--num_runs] and min_seconds [--min_secs] must both be reached; max_seconds
    [--max_secs] stops a slow model early (the run in progress finishes). warmup_runs
    [--warmup_runs] untimed-for-stats calls after the first inference, until also
    warmup_min_seconds [--warmup_min_secs] passed.
    """

    min_runs: int = 50
    min_seconds: float = 5.0
    max_seconds: float = 150.0
    warmup_runs: int = 10
    warmup_min_seconds: float = 0.5

    def __post_init__(self):
        if self.min_runs < 1:
            raise ValueError(f"min_runs must be >= 1, got {self.min_runs}")
        if self.min_seconds < 0 or self.warmup_min_seconds < 0:
            raise ValueError("min_seconds and warmup_min_seconds must be >= 0")
        if self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")
        if self.warmup_runs < 0:
            raise ValueError(f"warmup_runs must be >= 0, got {self.warmup_runs}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Timing:
    """One benchmarked callable: first call, warm-up and steady state (all ms)."""

    first_ms: float
    warmup: Optional[LatencyStats]
    steady: LatencyStats
    samples_ms: List[float] = field(default_factory=list)
    stopped_by: str = "min_runs"          # min_runs | min_seconds | max_seconds
    init_ms: Optional[float] = None       # load/allocate time when the caller measured it

    def to_dict(self, with_samples: bool = False) -> dict:
        d = {"init_ms": self.init_ms, "first_ms": self.first_ms,
             "warmup": self.warmup.to_dict() if self.warmup else None,
             "steady": self.steady.to_dict(), "stopped_by": self.stopped_by}
        if with_samples:
            d["samples_ms"] = [round(x, 4) for x in thin(self.samples_ms, MAX_STORED_SAMPLES)]
        return d


def sample_calls(fn: Callable[[], object], n: int, clock: Callable[[], float] = time.perf_counter) -> List[float]:
    """Time ``n`` calls of ``fn`` one by one; ms per call. The harness's whole per-call overhead is
    two clock reads and a list append (the honesty check measures it against a bare loop)."""
    out: List[float] = []
    append = out.append
    for _ in range(n):
        t0 = clock()
        fn()
        append((clock() - t0) * 1e3)
    return out


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median ms of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    return float(np.median(sample_calls(fn, repeats)))


def _run_until(fn, min_runs: int, min_seconds: float, max_seconds: float, clock) -> (List[float], str):
    samples: List[float] = []
    start = clock()
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        samples.append((t1 - t0) * 1e3)
        elapsed = t1 - start
        if elapsed >= max_seconds:
            return samples, "max_seconds"
        if len(samples) >= min_runs and elapsed >= min_seconds:
            return samples, ("min_seconds" if len(samples) > min_runs else "min_runs")


def time_calls(fn: Callable[[], object], policy: RunPolicy = RunPolicy(),
               clock: Callable[[], float] = time.perf_counter, init_ms: Optional[float] = None) -> Timing:
    """First call, warm-up, then steady-state runs per ``policy`` (benchmark_model's loop)."""
    t0 = clock()
    fn()
    first_ms = (clock() - t0) * 1e3
    warm = None
    if policy.warmup_runs > 0 or policy.warmup_min_seconds > 0:
        w, _ = _run_until(fn, max(policy.warmup_runs, 1), policy.warmup_min_seconds, policy.max_seconds, clock)
        warm = LatencyStats.from_samples(w)
    samples, stopped = _run_until(fn, policy.min_runs, policy.min_seconds, policy.max_seconds, clock)
    return Timing(first_ms=first_ms, warmup=warm, steady=LatencyStats.from_samples(samples),
                  samples_ms=samples, stopped_by=stopped, init_ms=init_ms)


def timed(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter):
    """(result, ms) of one call: for load/init times."""
    t0 = clock()
    r = fn()
    return r, (clock() - t0) * 1e3


def random_input(shape: Sequence[int], low: float = 0.0, high: float = 1.0, seed: int = 0) -> np.ndarray:
    """A fixed pseudo-random float32 tensor in the model's input range (benchmark_model feeds
    random data too; latency of these models does not depend on the pixel values)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=tuple(int(s) for s in shape)).astype(np.float32)


def stats_dict(t: Optional[Timing], with_samples: bool = False) -> Optional[Dict]:
    return t.to_dict(with_samples) if t is not None else None
