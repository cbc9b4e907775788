"""Export-friendly rewrites of a trained tf_keras model that keep its function exactly.

TFLite has no builtin MAX_POOL_3D, and the paper's ConvLSTM pools with ``MaxPooling3D((1, 2, 2))``:
a pool of 1 along time is the same as a 2-D max pool on every frame, so it is rewritten as
``TimeDistributed(MaxPooling2D((2, 2)))`` (no weights involved; outputs are identical).
"""
from __future__ import annotations

from typing import Callable


def _keras():
    import tf_keras as keras
    return keras


def clone_with(model, fn: Callable, copy_weights: bool = True):
    """``clone_model`` with ``fn(layer) -> new layer | None`` (None = plain copy), then copy weights
    layer by layer (by position in ``model.layers``; rewrites must keep weight order)."""
    keras = _keras()

    def clone(layer):
        new = fn(layer)
        if new is not None:
            return new
        return layer.__class__.from_config(layer.get_config())

    new_model = keras.models.clone_model(model, clone_function=clone)
    if copy_weights:
        copy_layer_weights(model, new_model)
    return new_model


def copy_layer_weights(src, dst) -> None:
    """Copy weights between two models with the same layer sequence (wrappers unwrapped)."""
    if len(src.layers) != len(dst.layers):
        raise ValueError(f"cannot copy weights: {len(src.layers)} vs {len(dst.layers)} layers")
    for a, b in zip(src.layers, dst.layers):
        wa = a.get_weights()
        if not wa:
            continue
        target = getattr(b, "layer", b) if len(b.get_weights()) != len(wa) else b
        target.set_weights(wa)


def _time_pool(layer):
    keras = _keras()
    if not isinstance(layer, (keras.layers.MaxPooling3D, keras.layers.AveragePooling3D)):
        return None
    cfg = layer.get_config()
    pool = tuple(cfg["pool_size"])
    strides = tuple(cfg.get("strides") or pool)
    if pool[0] != 1 or strides[0] != 1 or cfg.get("data_format", "channels_last") != "channels_last":
        return None
    cls = keras.layers.MaxPooling2D if isinstance(layer, keras.layers.MaxPooling3D) else keras.layers.AveragePooling2D
    return keras.layers.TimeDistributed(cls(pool[1:], strides=strides[1:], padding=cfg["padding"]),
                                        name=layer.name)


def needs_rewrite(model) -> bool:
    return any(_time_pool(layer) is not None for layer in model.layers)


def export_friendly(model):
    """The same function with TFLite-friendly layers (see module docstring); ``model`` if nothing to do."""
    if not needs_rewrite(model):
        return model
    return clone_with(model, _time_pool)
