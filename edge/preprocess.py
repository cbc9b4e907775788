"""Frame preprocessing shared by training and the device: the single implementation.

A frame arrives as HxWx3 uint8 (RGB from GStreamer, BGR from OpenCV), is resized to the model's
HxW and scaled to float32 in [0, 1] (the paper's ``frame / 255``). Quantized backends convert that
float input to their integer type once, at the backend boundary (see ``edge.quant``).
"""
from dataclasses import dataclass
from typing import Tuple

import numpy as np

try:  # cv2 is a base dependency, imported lazily-tolerant so pure helpers stay importable
    import cv2
except ImportError:  # pragma: no cover - reported where a resize is actually needed
    cv2 = None


@dataclass(frozen=True)
class InputSpec:
    """What the model's input tensor wants: ``frames`` x ``height`` x ``width`` x 3, RGB,
    ``value = pixel * scale + offset`` (paper: scale 1/255, offset 0, i.e. [0, 1])."""

    frames: int = 20
    height: int = 64
    width: int = 64
    channels: int = 3
    color: str = "RGB"
    scale: float = 1.0 / 255.0
    offset: float = 0.0

    @property
    def size(self) -> Tuple[int, int]:
        """(height, width)"""
        return (self.height, self.width)

    @property
    def clip_shape(self) -> Tuple[int, int, int, int]:
        return (self.frames, self.height, self.width, self.channels)

    def to_dict(self) -> dict:
        return {
            "frames": self.frames, "height": self.height, "width": self.width,
            "channels": self.channels, "layout": "NTHWC", "color": self.color,
            "scale": self.scale, "offset": self.offset, "range": [self.offset, 255 * self.scale + self.offset],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        return cls(
            frames=int(d["frames"]), height=int(d["height"]), width=int(d["width"]),
            channels=int(d.get("channels", 3)), color=str(d.get("color", "RGB")),
            scale=float(d.get("scale", 1.0 / 255.0)), offset=float(d.get("offset", 0.0)),
        )


def resize_rgb(frame: np.ndarray, size: Tuple[int, int], bgr: bool = False) -> np.ndarray:
    """Resize an HxWx3 uint8 frame to ``size`` = (height, width) and return it as RGB uint8.

    Area interpolation when shrinking (no aliasing of fine motion texture), linear when growing.
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 frame, got shape {frame.shape}")
    h, w = size
    if frame.shape[0] != h or frame.shape[1] != w:
        if cv2 is None:
            raise RuntimeError("opencv-python-headless is required to resize frames: pip install opencv-python-headless")
        shrinking = frame.shape[0] > h or frame.shape[1] > w
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if bgr:
        frame = frame[:, :, ::-1]
    return np.ascontiguousarray(frame)


def normalize(frames_uint8: np.ndarray, spec: InputSpec = InputSpec()) -> np.ndarray:
    """uint8 pixels -> float32 model values (``pixel * scale + offset``), any leading shape."""
    out = frames_uint8.astype(np.float32)
    out *= np.float32(spec.scale)
    if spec.offset:
        out += np.float32(spec.offset)
    return out
