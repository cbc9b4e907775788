"""``TrainConfig``: every setting of a training run, from defaults <- recipe <- YAML file <- CLI flags.

The recipe layer is what ``edge-train`` starts from when the user names none (``train.recipes``
picks it per model and encoder); ``TrainConfig.from_sources`` without one is the built-in defaults.

YAML layout (all keys optional; the same names as the dataclass fields)::

    model: lrcn-edge
    frames: 20
    size: 64            # or [height, width]
    epochs: 40
    batch_size: 8
    model_cfg: {head_units: 64}          # passed to train.models.build_model
    augment: {noise_std: 0.03}           # train.data.AugmentConfig fields
    per_model:                           # overrides applied only when that model is trained
      lrcn: {epochs: 30, model_cfg: {lstm_units: 64}}
    dataset: {synth: {classes: 4}}       # what data the recipe was made for (read by recipe_dataset)

Unknown keys are errors that name the file and the key (a typo must not silently train the wrong
thing). ``None`` for ``epochs`` / ``lr_schedule`` means "the model's default" (the paper's 75 / 50
epochs; a schedule only for ``lrcn-edge``).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from train.models import ALL_MODELS, DEFAULT_EPOCHS

STRATEGIES = ("auto", "default", "mirrored", "multi-worker")
LR_SCHEDULES = ("none", "plateau", "cosine")
SPLIT_KINDS = ("group", "folder", "official")
# Per-model defaults that differ from the paper-faithful defaults of the dataclass.
MODEL_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "lrcn": {"lr_schedule": "none"},
    "convlstm": {"lr_schedule": "none"},
    "baseline": {"lr_schedule": "none"},
    "lrcn-edge": {"lr_schedule": "plateau"},
}


class ConfigError(ValueError):
    """Bad configuration value or key; the message names where it came from."""


@dataclass
class TrainConfig:
    model: str = "lrcn-edge"
    data: Optional[str] = None           # raw video folder or prepared cache (has manifest.json)
    out: Optional[str] = None            # run directory
    test_data: Optional[str] = None      # explicit test folder (folder split)
    trainlist: Optional[str] = None      # official split lists (UCF101 trainlist01.txt / testlist01.txt)
    testlist: Optional[str] = None
    cache: Optional[str] = None          # cache dir for --data (default <out>/../cache/<hash>)
    frames: int = 20
    size: Tuple[int, int] = (64, 64)     # (height, width)
    short_policy: str = "pad"
    workers: Optional[int] = None        # prepare processes
    epochs: Optional[int] = None         # None: paper default for the model (75 / 50)
    batch_size: int = 4
    seed: int = 0
    split_seed: Optional[int] = None     # None: same as seed
    test_fraction: float = 0.25
    val_fraction: float = 0.10
    patience: int = 10                   # EarlyStopping(val_loss) patience
    monitor: str = "val_loss"
    min_epochs: int = 0                  # early stopping never fires before this epoch
    restore_best: bool = True            # end with the best-val_loss weights (False: the last epoch's)
    lr_schedule: Optional[str] = None    # none | plateau | cosine; None: model default
    lr_factor: float = 0.5               # plateau: multiply LR by this ...
    lr_patience: int = 4                 # ... after this many epochs without val_loss improvement
    warmup_epochs: int = 0
    augment: Dict[str, Any] = field(default_factory=dict)   # AugmentConfig fields
    no_augment: bool = False
    # Label-swapping augmentation for datasets whose classes map onto each other under time reversal
    # or mirroring (synthetic: MoveLeft <-> MoveRight, RotateCW <-> RotateCCW; a class mapped to itself
    # keeps its label). Each applies with probability 0.5 per training clip. The same scene then shows
    # up under both labels, so only the motion can tell them apart: appearance memorising stops paying.
    reverse_swap: Dict[str, str] = field(default_factory=dict)
    flip_swap: Dict[str, str] = field(default_factory=dict)
    model_cfg: Dict[str, Any] = field(default_factory=dict)
    # frozen pretrained encoder: augmented feature copies cached per training clip (plus the clean one)
    feature_variants: int = 2
    # read training clips from the uint8 cache on demand (tf.data, parallel decode + augmentation)
    # instead of loading the whole split as float32: for data that does not fit in memory
    stream_data: bool = False
    strategy: str = "auto"
    resume: bool = False
    progress: bool = True

    # ------------------------------------------------------------------------------------------
    def __post_init__(self):
        self.size = _size(self.size)
        self.validate()

    def validate(self) -> "TrainConfig":
        if self.model not in ALL_MODELS:
            raise ConfigError(f"model: unknown model {self.model!r} (known: {', '.join(ALL_MODELS)})")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy: must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.lr_schedule is not None and self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule: must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        for name in ("frames", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if int(self.feature_variants) < 0:
            raise ConfigError(f"feature_variants: must be >= 0, got {self.feature_variants}")
        if self.epochs is not None and int(self.epochs) < 1:
            raise ConfigError(f"epochs: must be >= 1, got {self.epochs}")
        if not 0 < self.test_fraction < 1 or not 0 < self.val_fraction < 1:
            raise ConfigError("test_fraction and val_fraction must be in (0, 1)")
        if self.short_policy not in ("pad", "skip"):
            raise ConfigError(f"short_policy: must be pad or skip, got {self.short_policy!r}")
        if bool(self.trainlist) != bool(self.testlist):
            raise ConfigError("trainlist and testlist go together")
        return self

    # derived ------------------------------------------------------------------------------------
    @property
    def effective_epochs(self) -> int:
        return int(self.epochs) if self.epochs is not None else DEFAULT_EPOCHS[self.model]

    @property
    def effective_lr_schedule(self) -> str:
        return self.lr_schedule or MODEL_DEFAULTS.get(self.model, {}).get("lr_schedule", "none")

    @property
    def effective_split_seed(self) -> int:
        return int(self.seed if self.split_seed is None else self.split_seed)

    @property
    def split_kind(self) -> str:
        return "folder" if self.test_data else ("official" if self.trainlist else "group")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size)
        return d

    # construction -------------------------------------------------------------------------------
    @classmethod
    def from_sources(cls, file_cfg: Optional[Mapping[str, Any]] = None,
                     overrides: Optional[Mapping[str, Any]] = None, where: str = "config",
                     recipe: Optional[Mapping[str, Any]] = None, recipe_where: str = "recipe") -> "TrainConfig":
        """defaults <- recipe <- file <- overrides, in one merge (the recipe and the file each with
        their ``per_model`` section for the chosen model).

        ``overrides`` holds only what the user actually set (CLI flags left at None are dropped).
        ``recipe`` is the starting recipe ``train.recipes`` picks for edge-train (None: the built-in
        defaults); it never chooses the model. ``MERGED_KEYS`` are merged key by key, everything else
        replaced.
        """
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        rec_top, rec_per = split_per_model(recipe, recipe_where)
        rec_top.pop("model", None)
        top, per = split_per_model(file_cfg, where)
        model = overrides.get("model", top.get("model", cls.model))
        layers = [(rec_top, recipe_where), (rec_per.get(model) or {}, f"{recipe_where}: per_model.{model}"),
                  (top, where), (per.get(model) or {}, f"{where}: per_model.{model}"), (overrides, "command line")]
        merged: Dict[str, Any] = {}
        for layer, lwhere in layers:
            _check_keys(layer, lwhere)
            for k, v in layer.items():
                if k in MERGED_KEYS and isinstance(v, Mapping):
                    merged[k] = {**merged.get(k, {}), **copy.deepcopy(dict(v))}
                else:
                    merged[k] = v
        try:
            return cls(**merged)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from None


# settings merged key by key across the layers (the rest is replaced by the later layer)
MERGED_KEYS = ("model_cfg", "augment", "reverse_swap", "flip_swap")


def split_per_model(cfg: Optional[Mapping[str, Any]], where: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """A config file's settings as (top level, ``per_model`` section), both checked; ``dataset`` dropped
    (it describes the data a recipe is for, not a training setting)."""
    top = dict(cfg or {})
    top.pop("dataset", None)
    per_model = top.pop("per_model", {}) or {}
    if not isinstance(per_model, Mapping):
        raise ConfigError(f"{where}: per_model must be a mapping of model name -> settings")
    for name in per_model:
        if name not in ALL_MODELS:
            raise ConfigError(f"{where}: per_model.{name}: unknown model (known: {', '.join(ALL_MODELS)})")
    _check_keys(top, where)
    return top, dict(per_model)


def _size(v) -> Tuple[int, int]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (int(v), int(v))
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return (int(v[0]), int(v[1]))
    raise ConfigError(f"size: expected an int or [height, width], got {v!r}")


def _check_keys(d: Mapping[str, Any], where: str) -> None:
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")


def load_yaml(path) -> Dict[str, Any]:
    """Read a YAML config file as a mapping (empty file = {}); errors name the file."""
    p = Path(path)
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML ({e})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(d).__name__}")
    return d


def load_config(path=None, overrides: Optional[Mapping[str, Any]] = None) -> TrainConfig:
    return TrainConfig.from_sources(load_yaml(path) if path else {}, overrides, where=str(path or "config"))


CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def named_config(name: str) -> Path:
    """``demo`` -> train/configs/demo.yaml (a path is returned as is)."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return CONFIG_DIR / f"{name}.yaml"


def recipe_dataset(path) -> Dict[str, Any]:
    """The ``dataset:`` section of a recipe (e.g. demo.yaml's synthetic-data parameters)."""
    d = load_yaml(path).get("dataset") or {}
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: dataset must be a mapping")
    return d
