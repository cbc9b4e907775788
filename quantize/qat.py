"""Quantization-aware training (tfmot) of the conv/dense parts, optionally preserving sparsity.

What gets fake-quantized: exactly the layers tfmot's *default 8-bit registry* supports (Conv2D,
DepthwiseConv2D, Dense, BatchNormalization after a conv, pooling, ReLU, Flatten, Reshape ...).
LSTM/GRU/ConvLSTM2D are not in that registry: they stay float in Keras and the TFLite converter
quantizes them from the representative dataset. Layers tfmot cannot see into (``TimeDistributed``)
are why ``lrcn`` is first rewritten to its "flat" variant (``train.models.to_flat``), which computes
the same function with top-level Conv2D/Dense layers.

tfmot 0.8.1 bug worked around here: ``PrunePreserveQuantizeRegistry.supports()`` answers True for
*any* layer without trainable weights (TimeDistributed(MaxPool), TFOpLambda, our FramesToBatch ...).
``quantize_apply`` then asks it for an output-quantize config of the un-annotated layer feeding an
annotated one and ``get_quantize_config`` raises inside the default registry ("called on an
unsupported layer FramesToBatch"). Two fixes: layers are annotated only when the *default* 8-bit
registry supports them, and the prune-preserve scheme is used through ``_PrunePreserveScheme`` whose
registry answers ``supports()`` = default registry supports it AND the prune-preserve one does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from .rewrite import copy_layer_weights


@dataclass
class QATConfig:
    """epochs/batch_size/learning_rate of the QAT fine-tuning; preserve_sparsity selects tfmot's
    ``Default8BitPrunePreserveQuantizeScheme`` (use after pruning so zeros stay zeros)."""

    epochs: int = 2
    batch_size: int = 4
    learning_rate: float = 1e-4
    preserve_sparsity: bool = False


def _default_registry():
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as reg)
    return reg.Default8BitQuantizeRegistry()


_SCHEME = []


def prune_preserve_scheme():
    """tfmot's Default8BitPrunePreserveQuantizeScheme with the supports() fix (see module docstring)."""
    if _SCHEME:
        return _SCHEME[0]()
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        default_8bit_prune_preserve_quantize_scheme as sch, prune_preserve_quantize_registry as ppr)

    class _Registry(ppr.Default8bitPrunePreserveQuantizeRegistry):
        def supports(self, layer):  # tfmot 0.8.1: base answers True for every weightless layer
            try:
                if not _default_registry().supports(layer):
                    return False
            except Exception:
                return False
            return ppr.Default8bitPrunePreserveQuantizeRegistry.supports(layer)

    class _PrunePreserveScheme(sch.Default8BitPrunePreserveQuantizeScheme):
        def get_quantize_registry(self):
            return _Registry()

    _SCHEME.append(_PrunePreserveScheme)
    return _PrunePreserveScheme()


def quantizable_layers(model) -> List[str]:
    """Names of the top-level layers the default 8-bit registry can fake-quantize."""
    import tf_keras as keras

    registry = _default_registry()
    out = []
    for layer in model.layers:
        if isinstance(layer, (keras.layers.InputLayer, keras.Model)):
            continue
        try:
            ok = registry.supports(layer)
        except Exception:
            ok = False
        if ok:
            out.append(layer.name)
    return out


def scope():
    """tfmot's quantize_scope plus this project's custom layers (for cloning/loading QAT models)."""
    import tensorflow_model_optimization as tfmot

    objs = {}
    try:
        from train.models import custom_objects
        objs.update(custom_objects())
    except Exception:  # train package absent: models without custom layers still work
        pass
    return tfmot.quantization.keras.quantize_scope(objs)


def quantize_aware(model, preserve_sparsity: bool = False):
    """Annotate the supported layers of ``model`` (weights copied) and apply the QAT scheme.

    Returns an uncompiled QAT model. Raises ValueError naming the model if nothing is quantizable."""
    import tf_keras as keras
    import tensorflow_model_optimization as tfmot

    names = set(quantizable_layers(model))
    if not names:
        raise ValueError(f"{model.name}: no layer tfmot can quantize (nested model or TimeDistributed? "
                         "rewrite it flat first)")

    def clone(layer):
        new = layer.__class__.from_config(layer.get_config())
        if layer.name in names:
            return tfmot.quantization.keras.quantize_annotate_layer(new)
        return new

    with scope():
        annotated = keras.models.clone_model(model, clone_function=clone)
        copy_layer_weights(model, annotated)
        if preserve_sparsity:
            return tfmot.quantization.keras.quantize_apply(annotated, prune_preserve_scheme())
        return tfmot.quantization.keras.quantize_apply(annotated)


def fine_tune(model, x: np.ndarray, y: np.ndarray, cfg: QATConfig, progress: bool = False):
    import tf_keras as keras

    if cfg.epochs <= 0:
        return model
    k = int(model.output_shape[-1])
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, keras.utils.to_categorical(y, k), batch_size=cfg.batch_size, epochs=cfg.epochs,
              shuffle=True, verbose=2 if progress else 0)
    return model


_KERNELS = ("kernel", "recurrent_kernel", "depthwise_kernel")


def _kernel_vars(model, prefix=""):
    """{(layer name without tfmot's 'quant_' prefix, weight leaf): variable}, nested models walked."""
    out = {}
    for layer in model.layers:
        if layer.__class__.__name__ in ("Functional", "Model", "Sequential"):
            out.update(_kernel_vars(layer, prefix + layer.name + "/"))
            continue
        name = layer.name[6:] if layer.name.startswith("quant_") else layer.name
        for w in layer.weights:
            leaf = w.name.split(":")[0].split("/")[-1]
            if leaf in _KERNELS:
                out[(prefix + name, leaf)] = w
    return out


def zero_masks(model) -> dict:
    """Where the kernels of a pruned model are zero (to keep them zero through QAT)."""
    return {k: (v.numpy() != 0).astype(np.float32) for k, v in _kernel_vars(model).items()}


def apply_masks(model, masks: dict) -> int:
    """Re-zero kernels of ``model`` where ``masks`` say so. The prune-preserve scheme masks the
    fake-quantized weights in the forward pass, but the float variables (and the LSTM, which tfmot
    does not wrap) still drift during fine-tuning; this puts the exact zeros back. Returns the
    number of kernels masked."""
    n = 0
    for key, var in _kernel_vars(model).items():
        m = masks.get(key)
        if m is not None and tuple(m.shape) == tuple(var.shape):
            var.assign(var.numpy() * m)
            n += 1
    return n


def qat_model(model, x: np.ndarray, y: np.ndarray, cfg: QATConfig = QATConfig(), progress: bool = False):
    """QAT a whole-clip model (already flat / free of TimeDistributed weights) and fine-tune it."""
    masks = zero_masks(model) if cfg.preserve_sparsity else None
    q = quantize_aware(model, cfg.preserve_sparsity)
    q = fine_tune(q, x, y, cfg, progress)
    if masks:
        apply_masks(q, masks)
    return q


def qat_encoder(encoder, head, x: np.ndarray, y: np.ndarray, cfg: QATConfig = QATConfig(),
                progress: bool = False):
    """lrcn-edge: QAT the per-frame encoder on its own (a plain CNN, fully quantizable), fine-tuned
    end to end through the float head (frames folded into the batch -> QAT encoder -> head; head weights are
    trained too and written back in place). Returns the QAT encoder."""
    import tf_keras as keras

    masks = (zero_masks(encoder), zero_masks(head)) if cfg.preserve_sparsity else None
    q_enc = quantize_aware(encoder, cfg.preserve_sparsity)
    if cfg.epochs > 0:
        train_model = compose(q_enc, head, tuple(x.shape[1:]))
        fine_tune(train_model, x, y, cfg, progress)
    if masks:
        apply_masks(q_enc, masks[0])
        apply_masks(head, masks[1])
    return q_enc


def compose(encoder, head, clip_shape):
    """clip -> frames in batch -> encoder -> back to (B, T, F) -> head (what lrcn-edge's full model
    does). Nested models stay visible to tfmot callbacks (TimeDistributed(model) would hide them)."""
    import tf_keras as keras
    from train.models import BatchToFrames, FramesToBatch

    inp = keras.Input(tuple(clip_shape), name="clip")
    x = FramesToBatch(name="frames_to_batch")(inp)
    x = encoder(x)
    x = BatchToFrames(int(clip_shape[0]), name="batch_to_frames")(x)
    return keras.Model(inp, head(x), name="edge_composite")


def kernel_sparsity(model) -> List[Tuple[str, float]]:
    """(layer/weight, sparsity) of the float kernel *variables* inside a (QAT) model, nested models
    included (inside a QuantizeWrapper ``layer.kernel`` is the fake-quantized tensor, not the variable)."""
    out = []

    def walk(m, prefix=""):
        for layer in m.layers:
            if layer.__class__.__name__ in ("Functional", "Model", "Sequential"):
                walk(layer, prefix + layer.name + "/")
                continue
            for w in layer.weights:
                name = w.name.split(":")[0]
                if name.split("/")[-1] not in ("kernel", "recurrent_kernel", "depthwise_kernel"):
                    continue
                v = w.numpy()
                out.append((prefix + layer.name + "/" + name.split("/")[-1], float((v == 0).mean())))
    walk(model)
    return out
