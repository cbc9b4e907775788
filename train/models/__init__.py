"""Model registry: every trainable model by name, built from a small config (tf_keras only).

    build_model("lrcn-edge", num_classes=6, frames=20, size=(64, 64), head_units=64)

``MODEL_NAMES`` are the three models the project ships; ``baseline`` (single frame, order-free) is
the control used to show the temporal models learn motion. ``load_model`` knows the custom layers.

TensorFlow is imported lazily (first builder call or attribute access), so the constants here are
cheap to import from CLI code that only needs ``--help``.
"""
from __future__ import annotations

import importlib
from dataclasses import asdict
from typing import Any, Dict

MODEL_NAMES = ("lrcn", "convlstm", "lrcn-edge")
# lrcn-edge choices (here, not in the builders, so CLI --help needs no TensorFlow)
ENCODERS = ("scratch", "efficientnet-lite0", "keras")
TRAIN_MODES = ("frozen", "last-blocks", "full")
HEADS = ("lstm", "gru", "tcn", "attention")
ALL_MODELS = MODEL_NAMES + ("baseline",)

# The paper's epoch budgets (EarlyStopping usually ends runs sooner).
DEFAULT_EPOCHS = {"lrcn": 75, "convlstm": 50, "lrcn-edge": 75, "baseline": 75}

# name -> (module, builder, config dataclass)
_BUILDERS = {
    "lrcn": ("lrcn", "build_lrcn", "LRCNConfig"),
    "convlstm": ("convlstm", "build_convlstm", "ConvLSTMConfig"),
    "lrcn-edge": ("lrcn_edge", "build_lrcn_edge", "LRCNEdgeConfig"),
    "baseline": ("baseline", "build_baseline", "BaselineConfig"),
}

# How each model deploys (the pairings of edge.catalog.PAIRINGS): one whole-clip model ("full"), or a
# per-frame encoder + temporal head ("encoder+head", split by ``split_parts``). edge-quantize asks
# these instead of testing model names. ``_QAT_VIEW``: the twin QAT trains (the paper LRCN's
# TimeDistributed weights do not quantize-wrap; its flat twin with the same weights does).
DEPLOY = {"lrcn": "full", "convlstm": "full", "lrcn-edge": "encoder+head", "baseline": "full"}
_QAT_VIEW = {"lrcn": ("lrcn", "to_flat")}

# lazily re-exported names -> module
_LAZY = {
    "build_parts": "lrcn_edge", "parts_of": "lrcn_edge", "EdgeParts": "lrcn_edge", "LRCNEdgeConfig": "lrcn_edge",
    "to_flat": "lrcn", "from_flat": "lrcn", "LRCNConfig": "lrcn", "build_lrcn": "lrcn",
    "ConvLSTMConfig": "convlstm", "build_convlstm": "convlstm",
    "BaselineConfig": "baseline", "build_baseline": "baseline",
    "FramesToBatch": "layers", "BatchToFrames": "layers", "custom_objects": "layers",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check(name: str) -> None:
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(ALL_MODELS)})")


def _parts(name: str):
    _check(name)
    mod, builder, cfg = _BUILDERS[name]
    m = importlib.import_module(f".{mod}", __name__)
    return getattr(m, builder), getattr(m, cfg)


def resolve_config(name: str, **cfg) -> Dict[str, Any]:
    """The full config (defaults + overrides) a model is built with; stored in the run's config.yaml."""
    from .common import config_from

    _, cls = _parts(name)
    return asdict(config_from(cls, cfg, name))


def build_model(name: str, *, num_classes: int, frames: int = 20, size=(64, 64), compile: bool = True, **cfg):
    """Build (and by default compile with the model's optimizer + categorical cross-entropy) a model."""
    builder, _ = _parts(name)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return builder(int(num_classes), int(frames), size, compile=compile, **cfg)


def deploy_pairing(name: str) -> str:
    """"full" or "encoder+head": how ``name`` is split into deployable parts."""
    _check(name)
    return DEPLOY[name]


def split_parts(name: str, model) -> Dict[str, Any]:
    """The deployable parts of a trained ``name`` model: {"full": model}, or for an encoder+head model
    {"encoder", "head", "full"} sharing the same layer objects (the head as it exports: ``heads.export_view``)."""
    if deploy_pairing(name) == "full":
        return {"full": model}
    from .heads import export_view
    from .lrcn_edge import parts_of
    enc, head, full = parts_of(model)
    return {"encoder": enc, "head": export_view(head), "full": full}


def qat_view(name: str, model, default):
    """The model QAT trains for a whole-clip ``name`` model (``default`` unless the model has a twin)."""
    if name not in _QAT_VIEW:
        return default
    mod, fn = _QAT_VIEW[name]
    return getattr(importlib.import_module(f".{mod}", __name__), fn)(model)


def chain_hints(name: str, model_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Model-specific advice for the shrink chain (edge-quantize): whether pruning / QAT pay for this model.

    A frozen ImageNet encoder (lrcn-edge ``encoder`` != scratch, ``train_mode`` frozen) keeps its
    pretrained weights: pruning them needs fine-tuning the encoder (which the frozen recipe avoids)
    and post-training int8 measured within 1 point of float on ucf101-13
    (benchmarks/results/ucf101_13_accuracy.md), so neither is worth its cost. Everything else: both.
    """
    cfg = dict(model_cfg or {})
    pretrained = name == "lrcn-edge" and cfg.get("encoder", "scratch") != "scratch"
    frozen = pretrained and (cfg.get("train_mode") or "frozen") == "frozen"
    if frozen:
        why = "frozen pretrained encoder: post-training int8 keeps its accuracy; pruning/QAT would retrain it"
        return {"prune": False, "qat": False, "reason": why}
    return {"prune": True, "qat": True, "reason": "trained weights: pruning and QAT fine-tune them"}


def load_model(path, compile: bool = True):
    """Load a ``.keras`` file written by this project (custom layers registered)."""
    import tf_keras as keras

    from .layers import custom_objects

    return keras.models.load_model(str(path), custom_objects=custom_objects(), compile=compile)


__all__ = ["MODEL_NAMES", "ALL_MODELS", "ENCODERS", "TRAIN_MODES", "HEADS", "DEFAULT_EPOCHS", "DEPLOY",
           "build_model", "resolve_config", "load_model", "deploy_pairing", "split_parts", "qat_view", "chain_hints",
           *sorted(_LAZY)]
