"""Regression: a TFLite model with an LSTM must give the same scores for the same clip every time.

Converted Keras LSTMs keep state in TFLite variable tensors that survive between invokes; without a
reset, the second prediction on an identical clip differs (and every live prediction depends on the
previous ones). ``TFLiteBackend`` resets variables before each inference."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge.backends import load_backend  # noqa: E402


@pytest.fixture(scope="module")
def bundle_dir():
    from _tiny_models import cached_bundle
    return cached_bundle()


@pytest.mark.parametrize("name", ["full_float32.tflite", "head_float32.tflite", "head_int8.tflite",
                                  "full_int8.tflite"])
def test_repeated_inference_is_stateless(bundle_dir, name):
    b = load_backend(os.path.join(bundle_dir, name))
    rng = np.random.default_rng(0)
    x, y = (rng.random(b.input_shape, dtype=np.float32) for _ in range(2))
    first = b.infer(x)
    b.infer(y)                       # something else in between, like a live stream
    again = [b.infer(x) for _ in range(3)]
    for a in again:
        np.testing.assert_array_equal(a, first)
    onnx = os.path.join(bundle_dir, name.split("_")[0] + ".onnx")
    if "float32" in name:            # and it is what the model computes (ONNX Runtime has no such state)
        ref = load_backend(onnx).infer(x)
        assert np.abs(ref - first).max() <= 1e-4
