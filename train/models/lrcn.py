"""The paper's LRCN, and the same network written "flat" for tensorflow-model-optimization.

Paper structure (kept exactly for the ``td`` variant)::

    TimeDistributed(Conv2D(16, 3x3, same, relu)) -> TimeDistributed(MaxPool2D(2))
    -> TimeDistributed(Dropout(0.25)) -> TimeDistributed(Flatten()) -> LSTM(32) -> Dense(K, softmax)
    compiled with RMSprop + categorical cross-entropy

The ``flat`` variant replaces every ``TimeDistributed`` by folding frames into the batch
(``FramesToBatch`` ... ``BatchToFrames``), so tfmot can wrap the Conv2D. Layer names and weight order
are identical, so ``to_flat``/``from_flat`` copy weights one-to-one and the outputs agree
(``tests/test_models.py::test_flat_lrcn_equals_timedistributed``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import tf_keras as keras

from .common import compile_model, config_from
from .layers import BatchToFrames, FramesToBatch

VARIANTS = ("td", "flat")


@dataclass
class LRCNConfig:
    filters: int = 16
    kernel: int = 3
    pool: int = 2
    dropout: float = 0.25
    lstm_units: int = 32
    optimizer: str = "rmsprop"
    learning_rate: Optional[float] = None      # None = Keras default (0.001), as the paper
    label_smoothing: float = 0.0
    variant: str = "td"                        # "td" (paper) or "flat" (tfmot-friendly)


def build_lrcn(num_classes: int, frames: int = 20, size: Tuple[int, int] = (64, 64),
               compile: bool = True, **cfg) -> keras.Model:
    c = config_from(LRCNConfig, cfg, "lrcn")
    if c.variant not in VARIANTS:
        raise ValueError(f"lrcn: variant must be one of {VARIANTS}, got {c.variant!r}")
    h, w = size
    inp = keras.Input((frames, h, w, 3), name="clip")
    conv = keras.layers.Conv2D(c.filters, (c.kernel, c.kernel), padding="same", activation="relu", name="conv")
    pool = keras.layers.MaxPooling2D((c.pool, c.pool), name="pool")
    drop = keras.layers.Dropout(c.dropout, name="dropout")
    flat = keras.layers.Flatten(name="flatten")
    if c.variant == "td":
        x = keras.layers.TimeDistributed(conv, name="td_conv")(inp)
        x = keras.layers.TimeDistributed(pool, name="td_pool")(x)
        x = keras.layers.TimeDistributed(drop, name="td_dropout")(x)
        x = keras.layers.TimeDistributed(flat, name="td_flatten")(x)
    else:
        x = FramesToBatch(name="frames_to_batch")(inp)
        x = flat(drop(pool(conv(x))))
        x = BatchToFrames(frames, name="batch_to_frames")(x)
    x = keras.layers.LSTM(c.lstm_units, name="lstm")(x)
    out = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    model = keras.Model(inp, out, name=f"lrcn_{c.variant}" if c.variant != "td" else "lrcn")
    if compile:
        compile_model(model, c.optimizer, c.learning_rate, c.label_smoothing)
    return model


def _geometry(model: keras.Model):
    _, frames, h, w, _ = model.input_shape
    return int(frames), (int(h), int(w)), int(model.output_shape[-1])


def _convert(model: keras.Model, variant: str, **cfg) -> keras.Model:
    frames, size, k = _geometry(model)
    conv = model.get_layer("td_conv").layer if variant == "flat" else model.get_layer("conv")
    lstm = model.get_layer("lstm")
    base = dict(filters=conv.filters, kernel=conv.kernel_size[0], lstm_units=lstm.units)
    base.update(cfg)
    new = build_lrcn(k, frames, size, compile=False, variant=variant, **base)
    new.set_weights(model.get_weights())
    return new


def to_flat(model: keras.Model, **cfg) -> keras.Model:
    """Paper (TimeDistributed) LRCN -> the flat variant with the same weights (uncompiled)."""
    return _convert(model, "flat", **cfg)


def from_flat(model: keras.Model, **cfg) -> keras.Model:
    """Flat LRCN -> the paper's TimeDistributed structure with the same weights (uncompiled)."""
    return _convert(model, "td", **cfg)
