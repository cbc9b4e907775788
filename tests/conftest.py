"""Shared fixtures: the real clips in ``../shared/data`` (skipped when absent) and a tiny synthetic
dataset generated once per test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")   # corrupt-file tests: keep FFmpeg quiet

# Load matplotlib's font stack and TensorFlow before any test imports GStreamer: in one process,
# numpy -> Gst.init -> matplotlib segfaults in matplotlib._mathtext_data, and TensorFlow imported
# after Gst aborts in its random ops (PyGObject 3.50, matplotlib 3.11, TF 2.21 on Debian 12), so the
# suite would pass or crash by the order pytest collects files in. Both are host (train) dependencies:
# the device side (edge-run) never loads them, and edge-bench runs edge-run in a subprocess.
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.font_manager  # noqa: F401
    import matplotlib.mathtext  # noqa: F401
    import tensorflow  # noqa: F401
except ImportError:
    pass

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# The session's synthetic set: 4 classes (MoveLeft, MoveRight, Grow, Shrink) x 8 clips,
# 4 groups per class, 24 frames of 32x32. Not flip safe.
SYNTH_KW = dict(classes=4, clips_per_class=8, seed=0, frames=24, size=32, groups=4)
# How ``synth_cache`` samples it: 8 frames per clip at 32x32.
SYNTH_CACHE_KW = dict(frames=8, size=(32, 32), short_policy="pad")


def shared_data_path() -> Path:
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real UCF101/HMDB51/... clips), or skip when this checkout has none."""
    if not (SHARED_DATA / "ucf101-mini").is_dir():
        pytest.skip(f"real clips not available: {SHARED_DATA} is absent (tests with real data need ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    """A tiny motion-only synthetic dataset in UCF50 layout (see ``SYNTH_KW``), generated once."""
    from train.data import synthesize

    return synthesize(tmp_path_factory.mktemp("synth") / "data", **SYNTH_KW)


@pytest.fixture(scope="session")
def synth_cache(synth_data, tmp_path_factory) -> Path:
    """``synth_data`` prepared once (``SYNTH_CACHE_KW``, in-process); returns the cache dir.
    Treat as read-only: tests that change a cache build their own."""
    from train.data import prepare

    out = tmp_path_factory.mktemp("synth-cache") / "cache"
    prepare(synth_data, out, workers=1, progress=False, **SYNTH_CACHE_KW)
    return out
