"""Shared bits for model builders: optimizer by name, compile with the paper's loss."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Dict, Optional, Type, TypeVar

import tf_keras as keras

T = TypeVar("T")


def make_optimizer(name: str, learning_rate: Optional[float] = None, clipnorm: Optional[float] = None):
    """``rmsprop`` (paper LRCN), ``adam`` (paper ConvLSTM), ``adamw``, ``sgd``; Keras default LR if None."""
    name = name.lower()
    kw: Dict[str, Any] = {}
    if learning_rate is not None:
        kw["learning_rate"] = float(learning_rate)
    if clipnorm:
        kw["clipnorm"] = float(clipnorm)
    table = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
             "adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD}
    if name not in table:
        raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(table)})")
    if name == "sgd":
        kw.setdefault("momentum", 0.9)
    return table[name](**kw)


def compile_model(model, optimizer: str, learning_rate: Optional[float] = None,
                  label_smoothing: float = 0.0, clipnorm: Optional[float] = None):
    """Categorical cross-entropy + accuracy, as the paper compiles both of its models."""
    model.compile(optimizer=make_optimizer(optimizer, learning_rate, clipnorm),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(label_smoothing)),
                  metrics=["accuracy"])
    return model


def config_from(cls: Type[T], cfg: Dict[str, Any], model: str) -> T:
    """Build a config dataclass from a dict; unknown keys are an error naming the model and key."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"{model}: unknown config key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**cfg)
