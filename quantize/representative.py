"""Representative data for int8 calibration, drawn from the *training* clips (never the test split).

The converter needs a few hundred input samples covering the value ranges the model sees. Clips are
picked stratified by class (round-robin over classes, seeded) so a rare class still contributes;
an encoder is calibrated on individual frames of those clips and a temporal head on the encoder's
features of them.
"""
from __future__ import annotations

from typing import Callable, Iterable, List

import numpy as np


def pick_clips(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` clips of ``x``, class-balanced (round-robin over classes), deterministic for ``seed``."""
    if len(x) == 0:
        raise ValueError("no training clips to calibrate with")
    rng = np.random.default_rng(seed)
    by_class = {}
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        by_class[int(c)] = list(rng.permutation(idx))
    order: List[int] = []
    while len(order) < min(n, len(x)):
        for c in sorted(by_class):
            if by_class[c] and len(order) < n:
                order.append(int(by_class[c].pop()))
        if not any(by_class.values()):
            break
    return x[np.array(order)]


def clip_dataset(clips: np.ndarray) -> Callable[[], Iterable[List[np.ndarray]]]:
    """Whole-clip models: yields ``[clip[None]]`` (batch 1, float32)."""
    def gen():
        for c in clips:
            yield [np.asarray(c, np.float32)[None]]
    return gen


def frame_dataset(clips: np.ndarray, max_frames: int = 256, seed: int = 0) -> Callable[[], Iterable[List[np.ndarray]]]:
    """Per-frame encoders: yields ``[frame[None]]`` for up to ``max_frames`` frames of the clips."""
    frames = clips.reshape((-1,) + clips.shape[2:])
    if len(frames) > max_frames:
        idx = np.sort(np.random.default_rng(seed).choice(len(frames), max_frames, replace=False))
        frames = frames[idx]

    def gen():
        for f in frames:
            yield [np.asarray(f, np.float32)[None]]
    return gen


def feature_dataset(features: np.ndarray) -> Callable[[], Iterable[List[np.ndarray]]]:
    """Temporal heads: ``features`` (N, T, F) -> yields ``[features[i][None]]``."""
    def gen():
        for f in features:
            yield [np.asarray(f, np.float32)[None]]
    return gen


def encode_clips(encoder, clips: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, T, H, W, 3) -> (N, T, F) with a Keras encoder (for head calibration)."""
    n, t = clips.shape[:2]
    frames = clips.reshape((-1,) + clips.shape[2:])
    feats = encoder.predict(frames, batch_size=batch_size, verbose=0)
    return feats.reshape(n, t, -1)
