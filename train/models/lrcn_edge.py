"""``lrcn-edge``: an LRCN built to be split across an accelerator and a CPU.

Three Keras models share the same layer objects:

* ``encoder`` (H, W, 3) -> (F,): a small CNN run once per frame. This is the part pruned, quantized to
  int8 and compiled for the Edge TPU / TensorRT. It only uses ops the Edge TPU maps after int8
  conversion: Conv2D (+ BatchNorm, folded into the conv by the converter), ReLU, MaxPool2D, then
  Reshape + FullyConnected (``pooling="flatten"``, default), Mean (``pooling="gap"``) or both
  concatenated (``"both"``: where things are + what orientation/texture, position-free). No
  tensor has more than 3 non-unit dims (one frame at a time: 1 x H x W x C).
  ``encoder: efficientnet-lite0`` swaps in the ImageNet-pretrained EfficientNet-Lite0
  (``efficientnet_lite.py``; 1280 features, Edge TPU-native ops) and ``encoder: keras`` any Keras
  image model file (``pretrained.py``); ``train_mode`` frozen / last-blocks / full decides what trains
  (frozen: per-frame features cached on disk, ``train.features``).
* ``head`` (T, F) -> (K,): a temporal head (``heads.py``: lstm, gru, tcn, attention) + Dropout + Dense
  softmax; on the device it runs on the ring buffer of per-frame features (the T x F window).
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
from . import ENCODERS, HEADS, TRAIN_MODES
from .heads import temporal
from .layers import BatchToFrames, FramesToBatch

POOLINGS = ("flatten", "gap", "both")


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
    # encoder: "scratch" (the small CNN above), "efficientnet-lite0" (ImageNet-pretrained, 1280 features)
    # or "keras" (another Keras encoder saved on disk, e.g. MobileNetV2 from tf_keras.applications)
    encoder: str = "scratch"
    encoder_weights: Optional[str] = None    # lite0: None = packaged ImageNet .pth, or a .pth path;
    # keras: the .keras/.h5 file (H, W, 3) -> feature map or vector
    encoder_input_scale: float = 2.0         # keras files: value = x * scale + offset on x in [0, 1]
    encoder_input_offset: float = -1.0       # (tf_keras.applications MobileNet: [-1, 1])
    train_mode: Optional[str] = None         # frozen | last-blocks | full; None: frozen for a pretrained
    # encoder (features cached on disk, the head trains alone), full for scratch
    fine_tune_blocks: int = 3                # last-blocks: this many last blocks (lite0) / layers x 10 (keras)
    head: str = "lstm"               # lstm | gru | tcn | attention (train.models.heads)
    head_units: int = 48
    proj_dim: int = 0                # per-frame Dense projection before the head (0: none)
    tcn_kernel: int = 3
    tcn_layers: int = 2
    attn_heads: int = 2
    attn_layers: int = 1
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


def build_head(frames: int, num_classes: int, c: LRCNEdgeConfig, feature_dim: Optional[int] = None) -> keras.Model:
    if c.head not in HEADS:
        raise ValueError(f"lrcn-edge: head must be one of {', '.join(HEADS)}, got {c.head!r}")
    inp = keras.Input((frames, int(feature_dim or c.feature_dim)), name="features")
    x = inp
    if c.encoder_dropout:
        x = keras.layers.Dropout(c.encoder_dropout, name="feature_dropout")(x)
    if c.deltas:
        prev = keras.layers.Cropping1D((0, 1), name="features_prev")(x)          # f[0..T-2]
        prev = keras.layers.ZeroPadding1D((1, 0), name="features_prev_pad")(prev)  # [0, f0..f[T-2]]
        diff = keras.layers.Subtract(name="feature_deltas")([x, prev])
        x = keras.layers.Concatenate(name="features_and_deltas")([x, diff])
    x = temporal(x, frames, c)
    x = keras.layers.Dropout(c.head_dropout, name="head_dropout")(x)
    out = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="head")


def train_mode(c: LRCNEdgeConfig) -> str:
    """The effective training mode (frozen for a pretrained encoder unless set)."""
    mode = c.train_mode or ("full" if c.encoder == "scratch" else "frozen")
    if mode not in TRAIN_MODES:
        raise ValueError(f"lrcn-edge: train_mode must be one of {', '.join(TRAIN_MODES)}, got {mode!r}")
    if c.encoder == "scratch" and mode != "full":
        raise ValueError("lrcn-edge: train_mode frozen/last-blocks needs a pretrained encoder "
                         "(encoder=efficientnet-lite0 or encoder=keras)")
    return mode


def make_encoder(size: Tuple[int, int], c: LRCNEdgeConfig) -> keras.Model:
    """The per-frame encoder the config names, trainability set by ``train_mode``."""
    if c.encoder not in ENCODERS:
        raise ValueError(f"lrcn-edge: encoder must be one of {', '.join(ENCODERS)}, got {c.encoder!r}")
    mode = train_mode(c)
    if c.encoder == "scratch":
        return build_encoder(size, c)
    from .pretrained import build_pretrained_encoder

    return build_pretrained_encoder(size, c.encoder, c.encoder_weights, mode, c.fine_tune_blocks,
                                    (c.encoder_input_scale, c.encoder_input_offset))


def build_parts(num_classes: int, frames: int = 20, size: Tuple[int, int] = (64, 64),
                compile: bool = True, **cfg) -> EdgeParts:
    c = config_from(LRCNEdgeConfig, cfg, "lrcn-edge")
    size = (int(size[0]), int(size[1]))
    encoder = make_encoder(size, c)
    head = build_head(frames, num_classes, c, feature_dim=int(encoder.output_shape[-1]))
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
