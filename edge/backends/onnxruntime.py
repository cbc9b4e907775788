"""ONNX Runtime: CPU everywhere, CUDA on a Jetson/GPU host when the CUDA provider is installed."""
import os

import numpy as np

from .base import Backend, BackendUnavailable, TensorInfo

INSTALL_HINT = ("onnxruntime is not installed: `pip install onnxruntime` (CPU); on a Jetson use the "
                "onnxruntime-gpu wheel built for your JetPack (NVIDIA's Jetson Zoo)")

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int8)": "int8",
           "tensor(uint8)": "uint8", "tensor(int64)": "int64"}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    suffixes = (".onnx",)

    def _load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendUnavailable(INSTALL_HINT) from e
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"model file not found: {self.path}")
        so = ort.SessionOptions()
        threads = self.options.threads or os.cpu_count() or 1
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        available = ort.get_available_providers()
        want = ["CPUExecutionProvider"]
        if (self.options.device or "").startswith("cuda"):
            if "CUDAExecutionProvider" not in available:
                raise BackendUnavailable("onnxruntime has no CUDAExecutionProvider here: install "
                                         "onnxruntime-gpu for your CUDA/JetPack, or use --device cpu")
            want = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self.session = ort.InferenceSession(self.path, sess_options=so, providers=want)
        self.providers = self.session.get_providers()
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        if len(ins) != 1 or len(outs) < 1:
            raise ValueError(f"{self.path}: expected 1 input, got {len(ins)}")
        shape = tuple(int(s) if isinstance(s, int) and s > 0 else 1 for s in ins[0].shape)
        self._in_name, self._out_name = ins[0].name, outs[0].name
        self._in_dtype = np.dtype(_DTYPES.get(ins[0].type, "float32"))
        self.input = TensorInfo(ins[0].name, shape, self._in_dtype.name)
        out_shape = tuple(int(s) if isinstance(s, int) and s > 0 else 1 for s in outs[0].shape)
        self.output = TensorInfo(outs[0].name, out_shape, _DTYPES.get(outs[0].type, "float32"))

    def _infer(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([self._out_name], {self._in_name: x.astype(self._in_dtype, copy=False)})[0]
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        self.session = None
