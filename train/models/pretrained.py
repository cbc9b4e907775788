"""Pretrained per-frame encoders for ``lrcn-edge``: EfficientNet-Lite0 (packaged ImageNet weights) or
any Keras image model saved on disk (``encoder=keras``, ``encoder_weights=FILE``).

Every encoder takes frames in [0, 1] (the project's input spec) and returns one feature vector per
frame; a model that ends in a feature map gets a global average pool. ``train_mode`` decides what
trains: ``frozen`` (nothing: features can be cached), ``last-blocks`` (the last ``blocks`` blocks of
Lite0, or the last ``10 * blocks`` layers of a Keras file), ``full`` (everything).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import tf_keras as keras

from .efficientnet_lite import WeightsError, build_efficientnet_lite0, set_trainable_blocks

KERAS_HINT = ("save one without downloading, e.g. python -c \"import tf_keras as k; "
              "k.applications.MobileNetV2(input_shape=(128,128,3), include_top=False, weights=None)"
              ".save('mnv2.keras')\" (weights='imagenet' needs a download once)")


def _lite0(size: Tuple[int, int], weights: Optional[str]) -> keras.Model:
    if weights and weights != "imagenet" and not Path(weights).is_file():
        raise WeightsError(f"--encoder-weights {weights}: no such file (efficientnet-lite0 takes a .pth state dict)")
    return build_efficientnet_lite0(size, weights=weights or "imagenet", name="encoder")


def _from_file(size: Tuple[int, int], path: Optional[str], affine: Tuple[float, float]) -> keras.Model:
    if not path:
        raise WeightsError(f"encoder=keras needs --encoder-weights FILE (a .keras/.h5 image model); {KERAS_HINT}")
    if not Path(path).is_file():
        raise WeightsError(f"--encoder-weights {path}: no such file; {KERAS_HINT}")
    try:
        base = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as e:
        raise WeightsError(f"--encoder-weights {path}: not a Keras model file ({e})") from None
    base._name = "pretrained_base"
    inp = keras.Input((size[0], size[1], 3), name="frame")
    x = keras.layers.Rescaling(float(affine[0]), offset=float(affine[1]), name="base_normalize")(inp)
    x = base(x)
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="base_gap")(x)
    elif len(x.shape) != 2:
        raise WeightsError(f"--encoder-weights {path}: output {tuple(x.shape)} is neither a feature map nor a vector")
    return keras.Model(inp, x, name="encoder")


def _trainable_keras(model: keras.Model, mode: str, blocks: int) -> None:
    base = model.get_layer("pretrained_base")
    if mode == "full":
        base.trainable = True
        return
    base.trainable = mode != "frozen"
    if mode == "last-blocks":
        for layer in base.layers[:-10 * int(blocks)]:
            layer.trainable = False


def build_pretrained_encoder(size: Tuple[int, int], name: str, weights: Optional[str], mode: str, blocks: int,
                             affine: Tuple[float, float] = (2.0, -1.0)) -> keras.Model:
    """(H, W, 3) in [0, 1] -> (F,) with the trainable part set by ``mode``; model name ``encoder``."""
    if name == "efficientnet-lite0":
        inner = _lite0(size, weights)
        set_trainable_blocks(inner, {"frozen": 0, "last-blocks": int(blocks), "full": None}[mode])
    else:
        inner = _from_file(size, weights, affine)
        _trainable_keras(inner, mode, blocks)
    return inner     # named "encoder": parts_of / quantize find it by that name
