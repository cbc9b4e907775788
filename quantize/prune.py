"""Magnitude pruning with tensorflow-model-optimization, for models tfmot cannot wrap by itself.

tfmot prunes layers it knows (Conv2D, Dense, LSTM ...) or layers implementing its ``PrunableLayer``
protocol (``get_prunable_weights()``). ``TimeDistributed`` and ``ConvLSTM2D`` are neither, so the
model is cloned with a ``clone_function`` that swaps them for subclasses implementing that protocol
(returning the inner kernels), then wrapped with ``prune_low_magnitude``. After fine-tuning with
``UpdatePruningStep`` the wrappers are stripped and the subclasses swapped back, so the result is a
plain tf_keras model with zeros in its kernels (what the converters and gzip then exploit).

Nested models (the lrcn-edge encoder/head inside the full model) are pruned as their own models;
see ``prune_parts``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .rewrite import copy_layer_weights


@dataclass
class PruneConfig:
    """target_sparsity: fraction of zeros reached at the end of fine-tuning (PolynomialDecay from 0).
    per_layer_type: class name -> sparsity override (e.g. {"LSTM": 0.3, "Dense": 0.0}; 0 = keep dense).
    epochs/batch_size/learning_rate: the fine-tuning run (a few epochs are enough for small models).
    """

    target_sparsity: float = 0.5
    per_layer_type: Dict[str, float] = field(default_factory=dict)
    epochs: int = 2
    batch_size: int = 4
    learning_rate: float = 1e-4
    min_weights: int = 16           # smaller kernels are left dense (nothing to gain)

    def __post_init__(self):
        for k, v in [("target_sparsity", self.target_sparsity), *self.per_layer_type.items()]:
            if not 0.0 <= float(v) < 1.0:
                raise ValueError(f"sparsity for {k} must be in [0, 1), got {v}")

    def sparsity_for(self, layer) -> float:
        for name in _type_names(layer):
            if name in self.per_layer_type:
                return float(self.per_layer_type[name])
        return float(self.target_sparsity)


def _type_names(layer) -> List[str]:
    """Class names to match overrides against, innermost first for wrappers (TimeDistributed(Conv2D))."""
    names = []
    inner = getattr(layer, "layer", None)
    if inner is not None:
        names.append(type(inner).__name__)
    names.append(type(layer).__name__)
    return names


def _tfmot():
    import tensorflow_model_optimization as tfmot
    return tfmot


_CLASSES: Dict[str, type] = {}


def _prunable_classes():
    """Subclasses of TimeDistributed / ConvLSTM2D implementing tfmot's PrunableLayer (built lazily)."""
    if _CLASSES:
        return _CLASSES
    import tf_keras as keras

    tfmot = _tfmot()

    class PrunableTimeDistributed(keras.layers.TimeDistributed, tfmot.sparsity.keras.PrunableLayer):
        def get_prunable_weights(self):
            inner = self.layer
            if hasattr(inner, "get_prunable_weights"):
                return inner.get_prunable_weights()
            return [w for w in (getattr(inner, "kernel", None), getattr(inner, "depthwise_kernel", None))
                    if w is not None]

    class PrunableConvLSTM2D(keras.layers.ConvLSTM2D, tfmot.sparsity.keras.PrunableLayer):
        def get_prunable_weights(self):
            return [self.cell.kernel, self.cell.recurrent_kernel]

    _CLASSES.update({"TimeDistributed": PrunableTimeDistributed, "ConvLSTM2D": PrunableConvLSTM2D})
    return _CLASSES


def _weight_count(layer) -> int:
    return int(sum(np.prod(w.shape) for w in layer.weights if "kernel" in w.name))


def _is_candidate(layer) -> bool:
    import tf_keras as keras
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    if isinstance(layer, keras.Model):
        return False
    if isinstance(layer, keras.layers.TimeDistributed):
        inner = layer.layer
        return any(getattr(inner, a, None) is not None for a in ("kernel", "depthwise_kernel"))
    if isinstance(layer, keras.layers.ConvLSTM2D):
        return True
    return bool(layer.weights) and PruneRegistry.supports(layer) and _weight_count(layer) > 0


def make_prunable(model, cfg: PruneConfig, total_steps: int):
    """Clone ``model`` with pruning wrappers on every prunable layer; weights copied over."""
    import tf_keras as keras

    tfmot = _tfmot()
    classes = _prunable_classes()
    end = max(int(total_steps) - 1, 1)
    wrapped: List[str] = []

    def clone(layer):
        cfg_ = layer.get_config()
        if isinstance(layer, keras.layers.TimeDistributed):
            new = classes["TimeDistributed"](keras.layers.deserialize(
                {"class_name": layer.layer.__class__.__name__, "config": layer.layer.get_config()},
                custom_objects={layer.layer.__class__.__name__: layer.layer.__class__}), name=layer.name)
        elif isinstance(layer, keras.layers.ConvLSTM2D):
            new = classes["ConvLSTM2D"].from_config(cfg_)
        else:
            new = layer.__class__.from_config(cfg_)
        target = cfg.sparsity_for(layer)
        if target <= 0 or not _is_candidate(layer) or _weight_count(layer) < cfg.min_weights:
            return new
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=target, begin_step=0, end_step=end, frequency=1)
        wrapped.append(layer.name)
        return tfmot.sparsity.keras.prune_low_magnitude(new, pruning_schedule=schedule)

    pruned = keras.models.clone_model(model, clone_function=clone)
    copy_layer_weights(model, pruned)
    pruned._edge_pruned_layers = wrapped
    return pruned


def strip(pruned):
    """Remove pruning wrappers and turn the protocol subclasses back into stock Keras layers."""
    import tf_keras as keras

    tfmot = _tfmot()
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    classes = _prunable_classes()

    def back(layer):
        if isinstance(layer, classes["TimeDistributed"]):
            return keras.layers.TimeDistributed(layer.layer.__class__.from_config(layer.layer.get_config()),
                                                name=layer.name)
        if isinstance(layer, classes["ConvLSTM2D"]):
            return keras.layers.ConvLSTM2D.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    plain = keras.models.clone_model(stripped, clone_function=back)
    copy_layer_weights(stripped, plain)
    return plain


def sparsity_report(model) -> List[Dict]:
    """One row per kernel: layer, weight, size, zeros, sparsity (nested models are walked)."""
    rows = []

    def walk(m, prefix=""):
        for layer in m.layers:
            if hasattr(layer, "layers") and layer.__class__.__name__ in ("Functional", "Model", "Sequential"):
                walk(layer, prefix + layer.name + "/")
                continue
            for w in layer.weights:
                if "kernel" not in w.name or "quantize" in w.name:
                    continue
                v = w.numpy()
                rows.append({"layer": prefix + layer.name, "weight": w.name.split("/")[-1].split(":")[0],
                             "size": int(v.size), "zeros": int((v == 0).sum()),
                             "sparsity": float((v == 0).mean()) if v.size else 0.0})
    walk(model)
    return rows


def overall_sparsity(model, rows: Optional[List[Dict]] = None, min_size: int = 0) -> float:
    """Fraction of zeros over every kernel (weighted by size)."""
    rows = rows if rows is not None else sparsity_report(model)
    rows = [r for r in rows if r["size"] >= min_size]
    total = sum(r["size"] for r in rows)
    return float(sum(r["zeros"] for r in rows) / total) if total else 0.0


def _fit(model, x, y, cfg: PruneConfig, callbacks: Sequence = (), progress: bool = False):
    import tf_keras as keras

    k = int(model.output_shape[-1])
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, keras.utils.to_categorical(y, k), batch_size=cfg.batch_size, epochs=cfg.epochs,
              shuffle=True, verbose=2 if progress else 0, callbacks=list(callbacks))   # one line per epoch


def steps_for(n: int, cfg: PruneConfig) -> int:
    return int(np.ceil(max(n, 1) / cfg.batch_size)) * cfg.epochs


def prune_model(model, x: np.ndarray, y: np.ndarray, cfg: PruneConfig = PruneConfig(),
                progress: bool = False):
    """Prune + fine-tune + strip a whole-clip model. Returns (plain model, sparsity rows)."""
    tfmot = _tfmot()
    pruned = make_prunable(model, cfg, steps_for(len(x), cfg))
    _fit(pruned, x, y, cfg, [tfmot.sparsity.keras.UpdatePruningStep()], progress)
    out = strip(pruned)
    return out, sparsity_report(out)


def prune_parts(encoder, head, x: np.ndarray, y: np.ndarray, cfg: PruneConfig = PruneConfig(),
                progress: bool = False):
    """lrcn-edge: prune the per-frame encoder (plain CNN) and the temporal head together.

    They are fine-tuned end to end as frames-in-batch -> encoder -> head (``qat.compose``) and the pruned weights are
    written back into ``encoder``/``head`` in place (so a full model sharing their layers follows).
    Returns the sparsity rows (encoder and head)."""
    tfmot = _tfmot()
    steps = steps_for(len(x), cfg)
    p_enc = make_prunable(encoder, cfg, steps)
    p_head = make_prunable(head, cfg, steps)
    from .qat import compose

    train_model = compose(p_enc, p_head, tuple(x.shape[1:]))
    _fit(train_model, x, y, cfg, [tfmot.sparsity.keras.UpdatePruningStep()], progress)
    s_enc, s_head = strip(p_enc), strip(p_head)
    encoder.set_weights(s_enc.get_weights())
    head.set_weights(s_head.get_weights())
    return ([dict(r, layer="encoder/" + r["layer"]) for r in sparsity_report(encoder)]
            + [dict(r, layer="head/" + r["layer"]) for r in sparsity_report(head)])
