"""``lrcn-edge``: an LRCN built to be split across an accelerator and a CPU.

Three Keras models share the same layer objects:

* ``encoder`` (H, W, 3) -> (F,): a small CNN run once per frame. This is the part pruned, quantized to
  int8 and compiled for the Edge TPU / TensorRT. It only uses ops the Edge TPU maps after int8
  conversion: Conv2D (+ BatchNorm, folded into the conv by the converter), ReLU, MaxPool2D, then
  Reshape + FullyConnected (``pooling="flatten"``, default), Mean (``pooling="gap"``) or both
  concatenated (``"both"``: where things are + what orientation/texture, position-free). No
  tensor has more than 3 non-unit dims (one frame at a time: 1 x H x W x C).
* ``head`` (T, F) -> (K,): LSTM (or GRU) + Dropout + Dense softmax, cheap enough for the CPU; on the
  device it runs on the ring buffer of per-frame features.
* ``full`` (T, H, W, 3) -> (K,): ``FramesToBatch`` -> encoder -> ``BatchToFrames`` -> head; what is
  trained and evaluated. Because frames are folded into the batch, BatchNorm sees B*T samples per
  step (80 with batch 4 x 20 frames), not 4.

Why ``flatten`` rather than global average pooling by default: GAP throws away *where* things are in
the frame, and the motion-only synthetic classes (left vs right, up-down vs sway...) are defined by
position over time. Keeping a coarse 4x4 grid before the Dense layer keeps position, at 16k weights.

Why BatchNorm ``momentum=0.9`` (Keras default 0.99): with ~20 steps per epoch on a 100-clip dataset
the moving statistics barely move in an epoch at 0.99, so validation (inference mode) sees stale
statistics and early stopping picks on noise; at 0.9 they track the data within an epoch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional, Tuple

import tf_keras as keras

from .common import compile_model, config_from
from .layers import BatchToFrames, FramesToBatch

POOLINGS = ("flatten", "gap", "both")
HEADS = ("lstm", "gru")


@dataclass
class LRCNEdgeConfig:
    widths: List[int] = field(default_factory=lambda: [16, 32, 64])  # conv width per stage (more stages
    # are added at the last width until the grid is reached)
    convs_per_stage: int = 1
    grid: int = 4                    # spatial size the encoder pools down to before flatten/GAP
    grid_channels: int = 16          # 1x1 conv width before flatten (flatten pooling only)
    feature_dim: int = 64            # F, the per-frame feature vector (<= 256)
    pooling: str = "flatten"         # "flatten" (keeps position), "gap" (position-free), "both" (concat)
    bn_momentum: float = 0.9
    encoder_dropout: float = 0.0     # dropout on the feature vector during training
    l2: float = 1e-4
    head: str = "lstm"               # "lstm" or "gru"
    head_units: int = 48
    head_dropout: float = 0.3
    deltas: bool = False             # head also sees feature differences f[t] - f[t-1] (motion cue)
    optimizer: str = "adam"
    learning_rate: Optional[float] = 1e-3
    label_smoothing: float = 0.1
    clipnorm: Optional[float] = 1.0


class EdgeParts(NamedTuple):
    encoder: keras.Model
    head: keras.Model
    full: keras.Model


def _stages(size: Tuple[int, int], c: LRCNEdgeConfig) -> List[int]:
    """Widths of the conv stages: one MaxPool2D(2) each until the smaller side reaches ``grid``."""
    side = min(size)
    n = 0
    while side > c.grid:
        side //= 2
        n += 1
    n = max(n, 1)
    return [int(c.widths[min(i, len(c.widths) - 1)]) for i in range(n)]


def build_encoder(size: Tuple[int, int], c: LRCNEdgeConfig) -> keras.Model:
    if c.feature_dim > 256 or c.feature_dim < 1:
        raise ValueError(f"lrcn-edge: feature_dim must be in 1..256, got {c.feature_dim}")
    if c.pooling not in POOLINGS:
        raise ValueError(f"lrcn-edge: pooling must be one of {POOLINGS}, got {c.pooling!r}")
    reg = keras.regularizers.l2(c.l2) if c.l2 else None
    h, w = size
    inp = keras.Input((h, w, 3), name="frame")
    x = inp
    for s, width in enumerate(_stages(size, c)):
        for j in range(c.convs_per_stage):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_regularizer=reg,
                                    name=f"enc_conv{s + 1}_{j + 1}")(x)
            x = keras.layers.BatchNormalization(momentum=c.bn_momentum, name=f"enc_bn{s + 1}_{j + 1}")(x)
            x = keras.layers.ReLU(name=f"enc_relu{s + 1}_{j + 1}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"enc_pool{s + 1}")(x)
    grid_map = x
    if c.pooling in ("flatten", "both"):
        x = keras.layers.Conv2D(c.grid_channels, 1, use_bias=False, kernel_regularizer=reg, name="enc_reduce")(grid_map)
        x = keras.layers.BatchNormalization(momentum=c.bn_momentum, name="enc_reduce_bn")(x)
        x = keras.layers.ReLU(name="enc_reduce_relu")(x)
        x = keras.layers.Flatten(name="enc_flatten")(x)
    if c.pooling in ("gap", "both"):
        g = keras.layers.GlobalAveragePooling2D(name="enc_gap")(grid_map)
        x = g if c.pooling == "gap" else keras.layers.Concatenate(name="enc_concat")([x, g])
    x = keras.layers.Dense(c.feature_dim, kernel_regularizer=reg, name="enc_features")(x)
    x = keras.layers.ReLU(name="enc_features_relu")(x)
    return keras.Model(inp, x, name="encoder")


def build_head(frames: int, num_classes: int, c: LRCNEdgeConfig) -> keras.Model:
    if c.head not in HEADS:
        raise ValueError(f"lrcn-edge: head must be one of {HEADS}, got {c.head!r}")
    inp = keras.Input((frames, c.feature_dim), name="features")
    x = inp
    if c.encoder_dropout:
        x = keras.layers.Dropout(c.encoder_dropout, name="feature_dropout")(x)
    if c.deltas:
        prev = keras.layers.Cropping1D((0, 1), name="features_prev")(x)          # f[0..T-2]
        prev = keras.layers.ZeroPadding1D((1, 0), name="features_prev_pad")(prev)  # [0, f0..f[T-2]]
        diff = keras.layers.Subtract(name="feature_deltas")([x, prev])
        x = keras.layers.Concatenate(name="features_and_deltas")([x, diff])
    rnn = keras.layers.LSTM if c.head == "lstm" else keras.layers.GRU
    x = rnn(c.head_units, name=f"head_{c.head}")(x)
    x = keras.layers.Dropout(c.head_dropout, name="head_dropout")(x)
    out = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="head")


def build_parts(num_classes: int, frames: int = 20, size: Tuple[int, int] = (64, 64),
                compile: bool = True, **cfg) -> EdgeParts:
    c = config_from(LRCNEdgeConfig, cfg, "lrcn-edge")
    size = (int(size[0]), int(size[1]))
    encoder = build_encoder(size, c)
    head = build_head(frames, num_classes, c)
    inp = keras.Input((frames, size[0], size[1], 3), name="clip")
    x = FramesToBatch(name="frames_to_batch")(inp)
    x = encoder(x)
    x = BatchToFrames(frames, name="batch_to_frames")(x)
    out = head(x)
    full = keras.Model(inp, out, name="lrcn_edge")
    if compile:
        compile_model(full, c.optimizer, c.learning_rate, c.label_smoothing, c.clipnorm)
    return EdgeParts(encoder, head, full)


def build_lrcn_edge(num_classes: int, frames: int = 20, size: Tuple[int, int] = (64, 64),
                    compile: bool = True, **cfg) -> keras.Model:
    return build_parts(num_classes, frames, size, compile=compile, **cfg).full


def parts_of(full: keras.Model) -> EdgeParts:
    """The encoder and head inside a (loaded) full lrcn-edge model; same layer objects."""
    return EdgeParts(full.get_layer("encoder"), full.get_layer("head"), full)
