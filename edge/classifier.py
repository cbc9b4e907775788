"""Clip classification on top of backends: a whole-clip model, or a per-frame encoder + temporal head.

``lrcn-edge`` bundles ship an ``encoder`` (one frame -> feature vector; the Edge TPU / TensorRT part)
and a ``head`` (T feature vectors -> class scores). Streaming runs the encoder once per sampled frame
and keeps features; a prediction then costs one head call. ``predict(clip)`` on such a pair encodes
every frame and runs the head, which is what full-clip evaluation of the split model means.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from .backends import Backend, BackendOptions, load_backend
from .bundle import Artifact, Bundle, BundleError


class ClipClassifier:
    """Scores for a (T, H, W, 3) float32 clip in [0, 1]; built from a full model or encoder + head."""

    def __init__(self, full: Optional[Backend] = None, encoder: Optional[Backend] = None,
                 head: Optional[Backend] = None):
        if full is None and (encoder is None or head is None):
            raise ValueError("ClipClassifier needs a full-clip model, or both an encoder and a head")
        self.full, self.encoder, self.head = full, encoder, head

    # construction -------------------------------------------------------------------------------
    @classmethod
    def from_files(cls, full: Optional[str] = None, encoder: Optional[str] = None,
                   head: Optional[str] = None, options: Optional[BackendOptions] = None,
                   encoder_backend: Optional[str] = None, backend: Optional[str] = None) -> "ClipClassifier":
        return cls(
            full=load_backend(full, backend, options) if full else None,
            encoder=load_backend(encoder, encoder_backend or backend, options) if encoder else None,
            head=load_backend(head, None, BackendOptions(threads=options.threads if options else None))
            if head else None,
        )

    @classmethod
    def from_artifacts(cls, bundle: Bundle, artifacts: List[Artifact],
                       options: Optional[BackendOptions] = None, backend: Optional[str] = None) -> "ClipClassifier":
        """``artifacts``: one ``full`` artifact, or an ``encoder`` and a ``head``."""
        by_part = {a.part: a for a in artifacts}
        if "full" in by_part:
            return cls.from_files(full=bundle.path(by_part["full"]), options=options, backend=backend)
        if "encoder" in by_part and "head" in by_part:
            return cls.from_files(encoder=bundle.path(by_part["encoder"]), head=bundle.path(by_part["head"]),
                                  options=options, encoder_backend=backend)
        raise BundleError(f"{bundle.root}: need a full artifact or an encoder+head pair, got {sorted(by_part)}")

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
