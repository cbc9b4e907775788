"""Clip classification on top of backends: a whole-clip model, or a per-frame encoder + temporal head.

``lrcn-edge`` bundles ship an ``encoder`` (one frame -> feature vector; the Edge TPU / TensorRT part)
and a ``head`` (T feature vectors -> class scores). Streaming runs the encoder once per sampled frame
and keeps features; a prediction then costs one head call. ``predict(clip)`` on such a pair encodes
every frame and runs the head, which is what full-clip evaluation of the split model means.

Built from a plan by ``edge.evaluation.classifier_for`` (the one factory).
"""
from typing import Dict, Optional

import numpy as np

from .backends import Backend


class ClipClassifier:
    """Scores for a (T, H, W, 3) float32 clip in [0, 1]; built from a full model or encoder + head."""

    def __init__(self, full: Optional[Backend] = None, encoder: Optional[Backend] = None,
                 head: Optional[Backend] = None):
        if full is None and (encoder is None or head is None):
            raise ValueError("ClipClassifier needs a full-clip model, or both an encoder and a head")
        self.full, self.encoder, self.head = full, encoder, head
        self.load_ms = {}  # type: Dict[str, float]   (set by the factory: ms to open each part)

    # inference ----------------------------------------------------------------------------------
    @property
    def streaming(self) -> bool:
        return self.full is None

    def encode_frame(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 -> (F,) feature vector (streaming models only)."""
        if self.encoder is None:
            raise RuntimeError("encode_frame needs an encoder (this is a whole-clip model)")
        return self.encoder.infer(frame[None]).reshape(-1)

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """(T, F) features -> (K,) scores."""
        return self.head.infer(features[None]).reshape(-1)

    def predict(self, clip: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) float32 clip -> (K,) class scores."""
        if self.full is not None:
            return self.full.infer(clip[None]).reshape(-1)
        feats = np.stack([self.encode_frame(f) for f in clip])
        return self.predict_features(feats)

    def predict_many(self, clips: np.ndarray) -> np.ndarray:
        """(N, T, H, W, 3) -> (N, K)."""
        return np.stack([self.predict(c) for c in clips])

    def close(self) -> None:
        for b in (self.full, self.encoder, self.head):
            if b is not None:
                b.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
