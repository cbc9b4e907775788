"""TFLite on the CPU: ai-edge-litert (numpy 2), else tflite_runtime (Coral boards, numpy<2),
else tf.lite when TensorFlow happens to be installed (host only)."""
import os

import numpy as np

from ..quant import QuantParams, dequantize, quantize
from .base import Backend, BackendUnavailable, TensorInfo

INSTALL_HINT = ("no TFLite runtime: `pip install ai-edge-litert` (x86-64/aarch64, numpy 2) or "
                "`pip install tflite-runtime` (numpy<2); on a Coral board: "
                "`sudo apt-get install python3-tflite-runtime` from Coral's package repository")


RUNTIMES = ("ai_edge_litert", "tflite_runtime")   # the CPU backend's preference
RUNTIME_NAMES = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}


def interpreter_class(order=RUNTIMES):
    """(Interpreter, load_delegate, name) of the first TFLite runtime of ``order`` that imports."""
    import importlib

    for module in order:
        try:
            m = importlib.import_module(module + ".interpreter")
        except ImportError:
            continue
        return m.Interpreter, m.load_delegate, RUNTIME_NAMES[module]
    raise BackendUnavailable(INSTALL_HINT)


def tensor_info(d: dict) -> TensorInfo:
    scale, zp = d.get("quantization", (0.0, 0))
    dtype = np.dtype(d["dtype"])
    q = QuantParams(float(scale), int(zp), dtype) if scale else None
    return TensorInfo(name=d["name"], shape=tuple(int(s) for s in d["shape"]), dtype=dtype.name, quant=q)


class TFLiteBackend(Backend):
    name = "tflite"

    def _make_interpreter(self):
        Interpreter, _, self.runtime = interpreter_class()
        threads = self.options.threads or os.cpu_count() or 1
        return Interpreter(model_path=self.path, num_threads=threads)

    def _load(self) -> None:
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"model file not found: {self.path}")
        self.interpreter = self._make_interpreter()
        self.interpreter.allocate_tensors()
        ins = self.interpreter.get_input_details()
        outs = self.interpreter.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise ValueError(f"{self.path}: expected 1 input and 1 output, got {len(ins)} and {len(outs)}")
        self._in, self._out = ins[0], outs[0]
        self.input, self.output = tensor_info(self._in), tensor_info(self._out)
        self._reset = getattr(self.interpreter, "reset_all_variables", None)
        if any(s <= 0 for s in self.input.shape):  # dynamic dims: fix batch to 1
            shape = [1 if s <= 0 else s for s in self._in["shape_signature"]]
            self.interpreter.resize_tensor_input(self._in["index"], shape)
            self.interpreter.allocate_tensors()
            self._in = self.interpreter.get_input_details()[0]
            self._out = self.interpreter.get_output_details()[0]
            self.input, self.output = tensor_info(self._in), tensor_info(self._out)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        q_in = self.input.quant if self.input.quant is not None else QuantParams(0.0, 0, np.dtype(self.input.dtype))
        # Converted Keras LSTMs keep their state in TFLite *variable tensors* that carry over from one
        # invoke to the next (measured: float LSTM heads drift on repeated identical inputs). Every
        # clip is independent, so start each inference from the zero state, as Keras does (~0.2 us).
        if self._reset is not None:
            self._reset()
        self.interpreter.set_tensor(self._in["index"], quantize(x, q_in))
        self.interpreter.invoke()
        return dequantize(self.interpreter.get_tensor(self._out["index"]), self.output.quant)

    def close(self) -> None:
        self.interpreter = None
