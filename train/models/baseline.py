"""Single-frame baseline: classify every frame on its own and average the scores over the clip.

It sees the same frames as the temporal models but not their order, so on the motion-only synthetic
data (classes differ only in how the object moves) it should stay near chance. That is the control
that shows the temporal models learn motion rather than appearance.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import tf_keras as keras

from .common import compile_model, config_from
from .layers import BatchToFrames, FramesToBatch


@dataclass
class BaselineConfig:
    widths: List[int] = field(default_factory=lambda: [16, 32])
    dense: int = 64
    dropout: float = 0.3
    optimizer: str = "adam"
    learning_rate: Optional[float] = 1e-3
    label_smoothing: float = 0.0


def build_baseline(num_classes: int, frames: int = 20, size: Tuple[int, int] = (64, 64),
                   compile: bool = True, **cfg) -> keras.Model:
    c = config_from(BaselineConfig, cfg, "baseline")
    h, w = size
    inp = keras.Input((frames, h, w, 3), name="clip")
    x = FramesToBatch(name="frames_to_batch")(inp)
    for i, width in enumerate(c.widths):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(c.dense, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(c.dropout, name="dropout")(x)
    x = keras.layers.Dense(num_classes, activation="softmax", name="frame_scores")(x)
    x = BatchToFrames(frames, name="batch_to_frames")(x)
    out = keras.layers.GlobalAveragePooling1D(name="scores")(x)   # order-free mean over frames
    model = keras.Model(inp, out, name="baseline")
    if compile:
        compile_model(model, c.optimizer, c.learning_rate, c.label_smoothing)
    return model
