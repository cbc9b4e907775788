"""Run exported artifacts the way the device does (edge.backends, no TensorFlow) and compare.

TFLite's fused LSTM kernels keep their state in *variable* tensors that survive ``invoke()``: without
``reset_all_variables()`` before each clip, clip 2 starts from clip 1's final state (measured: 0.01
abs error on the second clip of a float32 LRCN). ``StatelessTFLiteBackend`` resets them so every clip
is scored independently, as Keras does. (``edge.backends.tflite.TFLiteBackend`` now resets them
too; this subclass keeps the guarantee for code that must not depend on that, and the reset is
idempotent.)
"""
from __future__ import annotations

from edge.backends.tflite import TFLiteBackend


class StatelessTFLiteBackend(TFLiteBackend):
    """TFLiteBackend that resets variable (LSTM state) tensors before every inference."""

    def _infer(self, x):
        self.interpreter.reset_all_variables()
        return super()._infer(x)
