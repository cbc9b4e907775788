"""Process memory: current and peak resident set size (RSS).

Peak RSS is what decides whether a model fits next to the camera pipeline on a 4 GB Jetson Nano
or a 1 GB Coral Dev Board. Linux gives it two ways: ``VmHWM`` in ``/proc/self/status`` (the
high-water mark, in kB) and ``getrusage().ru_maxrss`` (kB on Linux, bytes on macOS). We prefer
``/proc`` and fall back to getrusage. ``benchmark_model`` reports the same idea as "memory
footprint delta" at init and overall; ``RssProbe`` gives those deltas for one artifact.
"""
import os
import re
import sys
from dataclasses import dataclass
from typing import Dict, Optional

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None


def read_status(path: str = "/proc/self/status") -> Dict[str, float]:
    """VmRSS / VmHWM / VmSize ... from a /proc status file, in MB."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r"^(Vm\w+):\s+(\d+)\s+kB", line)
                if m:
                    out[m.group(1)] = int(m.group(2)) / 1024.0
    except OSError:
        pass
    return out


def _ru_maxrss_mb(who) -> Optional[float]:
    if resource is None:
        return None
    v = resource.getrusage(who).ru_maxrss
    return v / (1024.0 * 1024.0) if sys.platform == "darwin" else v / 1024.0


def current_rss_mb() -> Optional[float]:
    return read_status().get("VmRSS")


def peak_rss_mb() -> Optional[float]:
    """Peak RSS of this process so far (MB)."""
    st = read_status()
    if "VmHWM" in st:
        return st["VmHWM"]
    return _ru_maxrss_mb(resource.RUSAGE_SELF) if resource else None


def peak_rss_source() -> str:
    return "/proc/self/status VmHWM" if "VmHWM" in read_status() else "getrusage ru_maxrss"


def children_peak_rss_mb() -> Optional[float]:
    """Largest peak RSS among waited-for child processes (getrusage RUSAGE_CHILDREN)."""
    return _ru_maxrss_mb(resource.RUSAGE_CHILDREN) if resource else None


@dataclass
class RssProbe:
    """RSS before/after loading an artifact and after running it (MB), like benchmark_model's
    'memory footprint delta' (init / overall). Deltas are approximate: Python's allocator and
    shared libraries loaded for the first backend count towards the first artifact."""

    before: Optional[float] = None
    after_init: Optional[float] = None
    after_runs: Optional[float] = None

    def start(self) -> "RssProbe":
        self.before = current_rss_mb()
        return self

    def mark_init(self) -> None:
        self.after_init = current_rss_mb()

    def mark_runs(self) -> None:
        self.after_runs = current_rss_mb()

    def to_dict(self) -> dict:
        def d(a, b):
            return round(a - b, 3) if a is not None and b is not None else None
        return {"rss_before_mb": self.before, "rss_after_mb": self.after_runs,
                "init_delta_mb": d(self.after_init, self.before),
                "overall_delta_mb": d(self.after_runs, self.before)}


def file_size_mb(path: str) -> float:
    """File size in MB of 2**20 bytes (the unit Ultralytics' benchmark table and RSS use)."""
    return os.path.getsize(path) / float(1 << 20)
