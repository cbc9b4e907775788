"""Temporal heads of ``lrcn-edge``: (T, F) per-frame features -> K class scores.

Every head takes the whole (T, F) window, so the device streams all of them the same way: the encoder
runs once per frame into the feature ring and the head runs on the ring's T x F window
(``edge.classifier``). Which one to pick:

* ``lstm`` / ``gru``: recurrent, the paper's choice; small; CPU (the Edge TPU does not run them).
* ``tcn``: temporal convolutions written as ``Conv2D`` with a (k, 1) kernel over a (T, 1, F) map plus
  a mean over time: only CONV_2D / MEAN / FULLY_CONNECTED / RESHAPE, so encoder and head can both
  map to the Edge TPU.
* ``attention``: a small transformer encoder over the frame features with learned positions (the
  paper's "next step"); for CPU and Jetson.

All start with an optional per-frame projection (``proj_dim``) so a 1280-wide pretrained encoder
does not make the head large.

``export_view`` is the head as it deploys: the same layers and weights, with a GRU traced unrolled
over its T steps (a Keras GRU otherwise converts to a TFLite WHILE loop, which TFLite's full-int8
calibrator cannot take; the LSTM converts to one fused sequence op and is left alone).
"""
from __future__ import annotations

from typing import Callable, Dict

import tf_keras as keras

from . import HEADS
from .layers import PositionEmbedding


def _project(x, c):
    reg = keras.regularizers.l2(c.l2) if c.l2 else None
    if c.proj_dim:
        x = keras.layers.Dense(c.proj_dim, kernel_regularizer=reg, name="head_proj")(x)
        x = keras.layers.ReLU(name="head_proj_relu")(x)
    return x


def recurrent(x, frames: int, c):
    rnn = keras.layers.LSTM if c.head == "lstm" else keras.layers.GRU
    return rnn(c.head_units, name=f"head_{c.head}")(_project(x, c))


def tcn(x, frames: int, c):
    """Conv2D over time on a (T, 1, F) map, dilations 1, 2, 4... ('same' padding), ReLU, then mean over T."""
    reg = keras.regularizers.l2(c.l2) if c.l2 else None
    x = _project(x, c)
    feat = int(x.shape[-1])
    x = keras.layers.Reshape((frames, 1, feat), name="head_tcn_to_map")(x)
    for i in range(int(c.tcn_layers)):
        d = 2 ** i
        if (c.tcn_kernel - 1) * d >= frames:
            d = 1
        x = keras.layers.Conv2D(c.head_units, (c.tcn_kernel, 1), padding="same", dilation_rate=(d, 1),
                                kernel_regularizer=reg, name=f"head_tcn{i + 1}")(x)
        x = keras.layers.ReLU(name=f"head_tcn{i + 1}_relu")(x)
    return keras.layers.GlobalAveragePooling2D(name="head_tcn_mean")(x)


def attention(x, frames: int, c):
    """Pre-norm transformer encoder layers (width ``head_units``) with learned positions, mean over T."""
    d = int(c.head_units)
    x = keras.layers.Dense(d, name="head_attn_in")(x)
    x = PositionEmbedding(name="head_positions")(x)
    for i in range(int(c.attn_layers)):
        p = f"head_attn{i + 1}_"
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=p + "ln1")(x)
        h = keras.layers.MultiHeadAttention(int(c.attn_heads), max(1, d // int(c.attn_heads)),
                                            dropout=0.0, name=p + "mha")(h, h)
        x = keras.layers.Add(name=p + "res1")([x, h])
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=p + "ln2")(x)
        h = keras.layers.Dense(2 * d, activation="relu", name=p + "ffn1")(h)
        h = keras.layers.Dense(d, name=p + "ffn2")(h)
        x = keras.layers.Add(name=p + "res2")([x, h])
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="head_attn_ln")(x)
    return keras.layers.GlobalAveragePooling1D(name="head_attn_mean")(x)


# Keras recurrent layers exported unrolled (see ``export_view``). Measured with tensorflow 2.21: full-int8
# conversion of a GRU head kept as a WHILE loop kills the process (segmentation fault in the calibrator);
# unrolled it becomes FULLY_CONNECTED / LOGISTIC / TANH / MUL / ADD / SUB ops that quantize.
UNROLL_FOR_EXPORT = ("GRU",)


def _needs_unroll(layer) -> bool:
    return layer.__class__.__name__ in UNROLL_FOR_EXPORT and not layer.unroll


def _unrolled(layer):
    """``layer`` itself, or for a GRU not yet unrolled an ``RNN`` over the *same* cell (same weight
    variables, same math) with ``unroll=True``."""
    if not _needs_unroll(layer):
        return layer
    return keras.layers.RNN(layer.cell, return_sequences=layer.return_sequences, return_state=layer.return_state,
                            go_backwards=layer.go_backwards, unroll=True, name=layer.name)


def export_view(head: keras.Model) -> keras.Model:
    """The head model to export/deploy: ``head`` itself unless it holds a GRU, else a model over the same
    layer objects (weights shared: training one trains the other) whose GRU runs unrolled over T.

    Unrolling needs the static T every head has (its input is (T, F)); it changes the graph, not the
    result (the scores equal the head's to float rounding)."""
    if not any(_needs_unroll(layer) for layer in head.layers):
        return head
    return keras.models.clone_model(head, clone_function=_unrolled)


BUILDERS: Dict[str, Callable] = {"lstm": recurrent, "gru": recurrent, "tcn": tcn, "attention": attention}


def temporal(x, frames: int, c):
    """Apply the configured temporal head to a (B, T, F) tensor; returns (B, D)."""
    if c.head not in BUILDERS:
        raise ValueError(f"lrcn-edge: head must be one of {', '.join(HEADS)}, got {c.head!r}")
    return BUILDERS[c.head](x, frames, c)
