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

    _batched = None   # batch size -> a batch-N copy of the encoder (encode_frames), made on first use
    _no_batch = ""    # why encode_frames runs one frame per call ("" while batching works)

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

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float32 -> (N, F): one batched encoder call when ``batching(N)`` allows it
        (the multi-camera scheduler encodes the new frames of several cameras at once), else one
        call per frame (the Edge TPU: one at a time, interleaved)."""
        n = len(frames)
        if n > 1 and self.batching(n):
            try:
                return self._batched[n].infer(frames).reshape(n, -1)
            except Exception as e:  # a model that resizes but cannot run batched: per frame from now on
                self._no_batch = "batched encoder call failed: {0}".format(e)
                self._batched = {}
        return np.stack([self.encode_frame(f) for f in frames]) if n else np.zeros((0, 0), np.float32)

    def batching(self, n: int) -> bool:
        """Whether ``encode_frames`` can run ``n`` frames in one call; loads the batch-``n`` copy
        of the encoder on first use. ``batch_note`` says why not when it cannot."""
        if self.encoder is None or self._no_batch:
            return False
        if self._batched is None:
            self._batched = {}
        if n not in self._batched:
            try:
                self._batched[n] = batched_backend(self.encoder, n)
            except BatchUnsupported as e:
                self._no_batch = str(e)
                return False
        return True

    @property
    def batch_note(self) -> str:
        """'' while batching works (or was never asked for), else the reason it is off."""
        return self._no_batch

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
        seen = set()   # a TensorRT encoder is its own batched copy: close it once
        for b in [self.full, self.encoder, self.head] + list((self._batched or {}).values()):
            if b is not None and id(b) not in seen:
                seen.add(id(b))
                b.close()
        self._batched = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- batched encoder (several cameras in one call) ----------------------------------------------------
BATCH_BACKENDS = ("tflite", "onnxruntime", "tensorrt")   # one call for N frames; the Edge TPU runs one at a time


class BatchUnsupported(Exception):
    """This encoder cannot run several frames in one call; the message says why."""


def batched_backend(encoder: Backend, n: int) -> Backend:
    """A second instance of ``encoder`` that takes ``n`` frames per call: TFLite resized to batch
    ``n`` (a model whose ops cannot take it raises ``BatchUnsupported``), ONNX Runtime when the
    model's batch dimension is dynamic, TensorRT (the encoder itself) when its engine has a dynamic
    batch profile (``max_batch`` > 1; it splits larger batches). The Edge TPU (a compiled batch-1
    graph, one device) runs one frame at a time."""
    if encoder.name not in BATCH_BACKENDS:
        raise BatchUnsupported("{0} runs one frame at a time".format(encoder.name))
    if encoder.name == "tensorrt":
        return _tensorrt_batch(encoder)
    twin = type(encoder)(encoder.path, encoder.options)
    shape = (n,) + tuple(encoder.input.shape[1:])
    if encoder.name == "tflite":
        _resize_tflite(twin, shape)
    else:
        _check_onnx_batch(twin, shape)
    import dataclasses
    twin.input = dataclasses.replace(twin.input, shape=shape)
    return twin


def _tensorrt_batch(encoder: Backend) -> Backend:
    """The TensorRT encoder itself (one engine, one context: it sets the input shape per call)."""
    if int(getattr(encoder, "max_batch", 1)) < 2:
        raise BatchUnsupported("the TensorRT engine takes batch 1 only (built from a fixed-batch ONNX): "
                               "re-export the bundle with edge-quantize for a dynamic batch")
    return encoder


def _resize_tflite(backend: Backend, shape) -> None:
    it = backend.interpreter
    try:
        it.resize_tensor_input(backend._in["index"], list(shape))
        it.allocate_tensors()
    except Exception as e:
        raise BatchUnsupported("the TFLite encoder cannot be resized to batch {0}: {1}".format(shape[0], e))
    backend._in = it.get_input_details()[0]
    backend._out = it.get_output_details()[0]
    if int(backend._out["shape"][0]) != shape[0]:
        raise BatchUnsupported("the TFLite encoder's output keeps batch {0} after resizing".format(
            int(backend._out["shape"][0])))


def _check_onnx_batch(backend: Backend, shape) -> None:
    dim = backend.session.get_inputs()[0].shape[0]
    if isinstance(dim, int) and dim != shape[0]:
        raise BatchUnsupported("the ONNX encoder has a fixed batch of {0}".format(dim))
