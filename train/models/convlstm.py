"""The paper's ConvLSTM network (kept exactly; the quantize helper wraps it for tfmot itself).

::

    ConvLSTM2D(4, 3x3, tanh, recurrent_dropout=0.2, return_sequences) -> MaxPool3D((1,2,2), same)
    -> TimeDistributed(Dropout(0.2)) -> ConvLSTM2D(8, ...) -> MaxPool3D((1,2,2), same)
    -> TimeDistributed(Dropout(0.2)) -> Flatten -> Dense(K, softmax)       compiled with Adam

``filters`` lists the ConvLSTM2D widths, so the paper's longer 4-8-14-16 stack is one config away.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import tf_keras as keras

from .common import compile_model, config_from


@dataclass
class ConvLSTMConfig:
    filters: List[int] = field(default_factory=lambda: [4, 8])
    kernel: int = 3
    recurrent_dropout: float = 0.2
    dropout: float = 0.2
    optimizer: str = "adam"
    learning_rate: Optional[float] = None
    label_smoothing: float = 0.0


def build_convlstm(num_classes: int, frames: int = 20, size: Tuple[int, int] = (64, 64),
                   compile: bool = True, **cfg) -> keras.Model:
    c = config_from(ConvLSTMConfig, cfg, "convlstm")
    h, w = size
    inp = keras.Input((frames, h, w, 3), name="clip")
    x = inp
    for i, f in enumerate(c.filters):
        x = keras.layers.ConvLSTM2D(int(f), (c.kernel, c.kernel), activation="tanh", data_format="channels_last",
                                    recurrent_dropout=c.recurrent_dropout, return_sequences=True,
                                    name=f"convlstm_{i + 1}")(x)
        x = keras.layers.MaxPooling3D((1, 2, 2), padding="same", data_format="channels_last", name=f"pool_{i + 1}")(x)
        x = keras.layers.TimeDistributed(keras.layers.Dropout(c.dropout), name=f"dropout_{i + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    out = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    model = keras.Model(inp, out, name="convlstm")
    if compile:
        compile_model(model, c.optimizer, c.learning_rate, c.label_smoothing)
    return model
