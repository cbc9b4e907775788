"""The one small interface every runtime implements: load, input spec, infer, close.

``infer`` takes and returns float32: (de)quantization happens once, inside the backend, at the
boundary (``edge.quant``). Batch dimension included: ``infer(x)`` with ``x.shape == input_shape``.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..quant import QuantParams


class BackendUnavailable(RuntimeError):
    """The runtime or accelerator a backend needs is not installed / not present.

    The message says what to install on which device; CLIs print it as one line (no traceback).
    """


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: Tuple[int, ...]
    dtype: str                       # numpy dtype name of the tensor itself (int8, uint8, float32, ...)
    quant: Optional[QuantParams] = None

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "quant": self.quant.to_dict() if self.quant is not None and self.quant.is_quantized else None}


@dataclass
class BackendOptions:
    threads: Optional[int] = None            # CPU threads (tflite, onnxruntime)
    device: Optional[str] = None             # edgetpu: "usb", "usb:0", "pci:0"; tensorrt/onnx: "cuda:0"
    precision: Optional[str] = None          # tensorrt: fp32 | fp16 | int8
    cache_dir: Optional[str] = None          # tensorrt engine cache
    extra: Dict[str, Any] = field(default_factory=dict)


class Backend:
    """Base class. Subclasses set ``name`` and implement ``_load``/``_infer``; which files they open
    (suffixes) and on which devices they run is the catalog's (``edge.catalog``)."""

    name = "base"

    def __init__(self, path: str, options: Optional[BackendOptions] = None):
        self.path = path
        self.options = options or BackendOptions()
        self.input: TensorInfo
        self.output: TensorInfo
        self._load()

    # subclasses ---------------------------------------------------------------------------------
    def _load(self) -> None:
        raise NotImplementedError

    def _infer(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # public -------------------------------------------------------------------------------------
    @property
    def input_shape(self) -> Tuple[int, ...]:
        return self.input.shape

    def infer(self, x: np.ndarray) -> np.ndarray:
        """float32 input of ``input_shape`` -> float32 output (scores / features)."""
        x = np.asarray(x, dtype=np.float32)
        if tuple(x.shape) != tuple(self.input.shape):
            if x.size == int(np.prod(self.input.shape)):
                x = x.reshape(self.input.shape)
            else:
                raise ValueError(f"{self.name}: input shape {x.shape} does not match model input "
                                 f"{self.input.shape} ({self.path})")
        return self._infer(x)

    def describe(self) -> dict:
        return {"backend": self.name, "path": self.path, "input": self.input.to_dict(),
                "output": self.output.to_dict()}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
