"""tf_keras -> ONNX with tf2onnx (opset 13+), verified against Keras with onnxruntime.

The model is traced through a ``tf.function`` with a fixed batch of 1 (like the TFLite export: the
device scores one clip / one frame at a time, and TensorRT builds faster, better engines for static
shapes). ONNX is the Jetson path: onnxruntime (CPU/CUDA) directly, or TensorRT built from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

DEFAULT_OPSET = 13


def export(model, path: str, opset: int = DEFAULT_OPSET) -> str:
    """Write ``path`` (.onnx) from a tf_keras model; input named ``input``, batch fixed to 1."""
    import tensorflow as tf
    import tf2onnx

    from .tflite_export import static_input_shape

    if opset < 13:
        raise ValueError(f"opset must be >= 13, got {opset}")
    spec = tf.TensorSpec(static_input_shape(model), tf.float32, name="input")

    @tf.function(input_signature=[spec])
    def serve(x):
        return {"scores": model(x, training=False)}

    tf2onnx.convert.from_function(serve, input_signature=[spec], opset=opset, output_path=path)
    return path


@dataclass
class OnnxCheck:
    max_abs_diff: float
    top1_agreement: float
    n: int

    def ok(self, tol: float = 1e-4) -> bool:
        return self.max_abs_diff <= tol and self.top1_agreement == 1.0

    def to_dict(self) -> dict:
        return {"max_abs_diff_vs_keras": self.max_abs_diff, "top1_agreement_vs_keras": self.top1_agreement,
                "n_verify": self.n}


def verify(path: str, model, inputs: Sequence[np.ndarray]) -> OnnxCheck:
    """Run ``inputs`` (each one un-batched sample) through onnxruntime (edge backend) and Keras."""
    from edge.backends.onnxruntime import OnnxRuntimeBackend
    from edge.metrics import top1_agreement

    b = OnnxRuntimeBackend(path)
    try:
        onnx_out = np.stack([b.infer(np.asarray(x)[None]).reshape(-1) for x in inputs])
    finally:
        b.close()
    keras_out = np.asarray(model.predict(np.stack(inputs), verbose=0)).reshape(len(inputs), -1)
    return OnnxCheck(float(np.abs(onnx_out - keras_out).max()) if len(inputs) else 0.0,
                     top1_agreement(onnx_out, keras_out), len(inputs))
