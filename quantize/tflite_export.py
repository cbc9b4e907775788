"""Keras -> TFLite in four precisions: float32, float16, dynamic-range and full-integer int8.

Why a concrete function with a static batch of 1: Keras LSTM/ConvLSTM layers only lower to TFLite's
fused sequence ops (or a clean WHILE loop) when every shape is known, and a device runs one clip at
a time anyway. A fresh ``TFLiteConverter`` is made for every conversion: re-using one converter for
a second ``convert()`` fails in TF 2.21.

Full int8 uses ``TFLITE_BUILTINS_INT8`` only, so a model that cannot be fully quantized fails loudly
instead of silently keeping float ops; the representative dataset comes from training clips
(``quantize.representative``).
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Sequence

import numpy as np

PRECISIONS = ("float32", "float16", "dynamic", "int8")
IO_DTYPES = ("int8", "uint8", "float32")


class ExportError(RuntimeError):
    """A conversion failed; the message says which model/precision and why (one line)."""


@dataclass
class TFLiteOptions:
    """precision: float32 | float16 | dynamic | int8.
    io_dtype: int8 (default for int8 models: Edge TPU and TFLite's int8 kernels want it) | uint8
    (older Coral examples) | float32 (keep float I/O, quantize inside only).
    representative: zero-arg callable yielding ``[array]`` with the model's batch-1 input shape.
    """

    precision: str = "float32"
    io_dtype: str = "int8"
    representative: Optional[Callable[[], Iterable[List[np.ndarray]]]] = None
    allow_float_fallback: bool = False  # int8 only: let unquantizable ops stay float (CPU use)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} not one of {PRECISIONS}")
        if self.io_dtype not in IO_DTYPES:
            raise ValueError(f"io_dtype {self.io_dtype!r} not one of {IO_DTYPES}")
        if self.precision == "int8" and self.representative is None:
            raise ValueError("int8 conversion needs a representative dataset (clips from the training split)")


def static_input_shape(model) -> tuple:
    """The model's input shape with batch fixed to 1; every other dim must be known."""
    shape = tuple(model.inputs[0].shape)
    if any(d is None for d in shape[1:]):
        raise ExportError(f"{model.name}: input shape {shape} has unknown dims; TFLite export needs them static")
    return (1,) + tuple(int(d) for d in shape[1:])


def concrete_function(model):
    """A batch-1 concrete function of the model in inference mode (dropout/BN frozen)."""
    import tensorflow as tf

    spec = tf.TensorSpec(static_input_shape(model), tf.float32, name="input")

    @tf.function(input_signature=[spec])
    def serve(x):
        return model(x, training=False)

    return serve.get_concrete_function()


def make_converter(model, options: TFLiteOptions):
    """A new converter configured for ``options`` (never re-use one: see the module docstring)."""
    import tensorflow as tf

    fn = concrete_function(model)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    p = options.precision
    if p == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif p == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif p == "int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = options.representative
        if options.allow_float_fallback:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        else:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if options.io_dtype != "float32":
            io = tf.int8 if options.io_dtype == "int8" else tf.uint8
            conv.inference_input_type = io
            conv.inference_output_type = io
    return conv


def has_conv_rnn(model) -> bool:
    """True when the model (or a nested one) has a ConvLSTM2D / ConvRNN layer."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.__class__.__name__ in ("Functional", "Model", "Sequential"):
            if has_conv_rnn(layer):
                return True
        elif layer.__class__.__name__ in ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "ConvRNN"):
            return True
    return False


@contextlib.contextmanager
def unrolled_rnn():
    """Trace Keras RNN loops unrolled (static T): no WHILE loop in the graph.

    Why: in TF 2.21 full-int8 conversion of a ConvLSTM2D kept as a WHILE loop kills the process with a
    segmentation fault (measured: post-training *and* from the QAT model), and ConvLSTM2D refuses
    ``unroll=True``. Its time loop goes through ``tf_keras`` ``backend.rnn``, so tracing with that
    function's ``unroll`` defaulted to True gives the same math as T explicit steps, which converts
    (max abs diff ~1e-3 vs Keras on random input). Only used while tracing for export."""
    import tf_keras.src.backend as kb

    orig = kb.rnn
    kb.rnn = functools.partial(orig, unroll=True)
    try:
        yield
    finally:
        kb.rnn = orig


def convert(model, options: TFLiteOptions, unroll: Optional[bool] = None) -> bytes:
    """Convert a tf_keras model; returns the flatbuffer bytes. Raises ExportError with a short reason.

    ``unroll`` (default: int8 of a ConvLSTM model) traces RNN loops unrolled, see ``unrolled_rnn``."""
    if unroll is None:
        unroll = options.precision == "int8" and has_conv_rnn(model)
    try:
        with (unrolled_rnn() if unroll else contextlib.nullcontext()):
            conv = make_converter(model, options)
            return conv.convert()
    except ExportError:
        raise
    except Exception as e:  # converter errors are long MLIR dumps: keep the first meaningful line
        raise ExportError(f"{model.name}: {options.precision} TFLite conversion failed: {short_error(e)}") from e


def export(model, path: str, options: TFLiteOptions, unroll: Optional[bool] = None) -> str:
    data = convert(model, options, unroll)
    with open(path, "wb") as f:
        f.write(data)
    return path


def short_error(e: BaseException, limit: int = 300) -> str:
    """First informative line of a (possibly huge) converter error."""
    text = str(e).strip() or type(e).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln:
            return ln[ln.index("error:"):][:limit]
    return (lines[0] if lines else text)[:limit]


def io_quantization(path: str) -> dict:
    """{"input": {dtype, scale, zero_point} | None, "output": ...} read with the edge TFLite runtime."""
    from edge.backends.tflite import TFLiteBackend

    b = TFLiteBackend(path)
    try:
        out = {}
        for key, info in (("input", b.input), ("output", b.output)):
            q = info.quant
            out[key] = q.to_dict() if q is not None and q.is_quantized else None
        return out
    finally:
        b.close()


def run_tflite(path: str, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Run a .tflite on each input (batch 1 each) through edge.backends (no TF): stacked float outputs."""
    from edge.backends.tflite import TFLiteBackend   # resets LSTM state before every call

    b = TFLiteBackend(path)
    try:
        return np.stack([b.infer(np.asarray(x)[None] if np.asarray(x).ndim == len(b.input_shape) - 1 else x)
                         .reshape(-1) for x in inputs])
    finally:
        b.close()
