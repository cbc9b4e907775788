"""(De)quantization at the backend boundary, done once: float32 in, float32 out.

TFLite/Edge TPU int8 tensors carry ``real = scale * (q - zero_point)``.
"""
from typing import NamedTuple, Optional

import numpy as np


class QuantParams(NamedTuple):
    scale: float
    zero_point: int
    dtype: np.dtype

    @property
    def is_quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(np.dtype(self.dtype), np.integer)

    def to_dict(self) -> dict:
        return {"dtype": np.dtype(self.dtype).name, "scale": float(self.scale), "zero_point": int(self.zero_point)}


def quantize(x: np.ndarray, q: Optional[QuantParams]) -> np.ndarray:
    """float -> the tensor's integer type (round to nearest, saturate)."""
    if q is None or not q.is_quantized:
        return x if q is None else x.astype(q.dtype, copy=False)
    info = np.iinfo(q.dtype)
    v = np.round(x / np.float32(q.scale)) + q.zero_point
    return np.clip(v, info.min, info.max).astype(q.dtype)


def dequantize(x: np.ndarray, q: Optional[QuantParams]) -> np.ndarray:
    """the tensor's integer type -> float32."""
    if q is None or not q.is_quantized:
        return x.astype(np.float32, copy=False)
    return (x.astype(np.float32) - np.float32(q.zero_point)) * np.float32(q.scale)
