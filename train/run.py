"""The run directory: what ``edge-train`` writes and what ``edge-eval``/``edge-quantize`` read.

Layout (names are a contract; quantize and bundle code rely on them)::

    RUN_DIR/
      model.keras            full clip model (T, H, W, 3) -> (K,) softmax
      encoder.keras          lrcn-edge only: one frame (H, W, 3) -> (F,)
      head.keras             lrcn-edge only: (T, F) -> (K,)
      labels.txt             one class name per line, index = output position
      config.yaml            everything needed to reproduce (model + cfg, data, sampling, preprocessing,
                             split, hyper-parameters, versions, command)
      split.json             train/val/test entry paths + labels (+ which cache they come from)
      history.csv/.png       per-epoch loss/accuracy/val/lr
      metrics.json           edge.metrics.classification_metrics on the test split + training facts
      confusion_matrix.csv/.png
      report.md              one page for a person
      checkpoints/           last.keras (model + optimizer), best_weights.npz, state.json,
                             train_config.yaml (what --resume continues)

``load_run(RUN_DIR)`` gives the pieces back: labels, config, models, the exact split arrays (through
the clip cache, re-prepared from the data folder when the cache is gone), and the ``InputSpec`` /
``TemporalSampling`` a device needs. Imports TensorFlow only when a model is loaded.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import yaml

from edge.preprocess import InputSpec
from edge.sampling import TemporalSampling

MODEL_FILE = "model.keras"
ENCODER_FILE = "encoder.keras"
HEAD_FILE = "head.keras"
LABELS_FILE = "labels.txt"
CONFIG_FILE = "config.yaml"
SPLIT_FILE = "split.json"
HISTORY_CSV = "history.csv"
HISTORY_PNG = "history.png"
METRICS_FILE = "metrics.json"
CM_CSV = "confusion_matrix.csv"
CM_PNG = "confusion_matrix.png"
REPORT_FILE = "report.md"
CHECKPOINT_DIR = "checkpoints"
SPLITS = ("train", "val", "test")


class RunError(ValueError):
    """Not a run directory, or a run file is missing/corrupt; the message names the file."""


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, ensure_ascii=False, default=_json_default) + "\n")


def write_yaml(path: Path, obj: Any) -> None:
    write_text_atomic(path, yaml.safe_dump(_plain(obj), sort_keys=False, allow_unicode=True))


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _plain(o):
    """Tuples -> lists, numpy scalars -> python, Paths -> str (safe_dump accepts only plain types)."""
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, np.generic):
        return o.item()
    return o


def read_labels(path: Path) -> List[str]:
    return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def is_run_dir(path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / CONFIG_FILE).is_file() and (p / LABELS_FILE).is_file()


@dataclass
class Run:
    dir: Path
    config: Dict[str, Any]
    labels: List[str]
    model_name: str

    @property
    def model_cfg(self) -> Dict[str, Any]:
        """The model's resolved settings as trained (config.yaml ``model.cfg``: encoder, train_mode, head ...)."""
        return dict((self.config.get("model") or {}).get("cfg") or {})

    # files --------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.dir / name

    @property
    def metrics(self) -> Dict[str, Any]:
        p = self.path(METRICS_FILE)
        if not p.is_file():
            raise RunError(f"{p}: no metrics (the run did not finish)")
        return json.loads(p.read_text(encoding="utf-8"))

    @property
    def split(self) -> Dict[str, Any]:
        p = self.path(SPLIT_FILE)
        if not p.is_file():
            raise RunError(f"{p}: missing")
        return json.loads(p.read_text(encoding="utf-8"))

    # models -------------------------------------------------------------------------------------
    def load_model(self, compile: bool = False):
        from train.models import load_model

        p = self.path(MODEL_FILE)
        if not p.is_file():
            raise RunError(f"{p}: missing (the run did not finish?)")
        return load_model(p, compile=compile)

    def load_parts(self, compile: bool = False) -> Optional[Tuple[Any, Any]]:
        """(encoder, head) Keras models for lrcn-edge runs; None for whole-clip models."""
        if not self.path(ENCODER_FILE).is_file() or not self.path(HEAD_FILE).is_file():
            return None
        from train.models import load_model

        return load_model(self.path(ENCODER_FILE), compile=compile), load_model(self.path(HEAD_FILE), compile=compile)

    # data ---------------------------------------------------------------------------------------
    def input_spec(self) -> InputSpec:
        d = self.config["data"]
        pre = self.config.get("preprocess", {})
        h, w = d["size"]
        return InputSpec(frames=int(d["frames"]), height=int(h), width=int(w),
                         scale=float(pre.get("scale", 1.0 / 255.0)), offset=float(pre.get("offset", 0.0)),
                         color=str(pre.get("color", "RGB")))

    def sampling(self) -> TemporalSampling:
        return TemporalSampling.from_dict(self.config["sampling"])

    def manifests(self):
        """(train-side manifest, test-side manifest or None), re-preparing a cache that is gone."""
        d = self.config["data"]
        main = _manifest_or_prepare(d.get("cache_dir"), d.get("data_dir"), d)
        test = None
        if d.get("test_cache_dir") or d.get("test_data_dir"):
            test = _manifest_or_prepare(d.get("test_cache_dir"), d.get("test_data_dir"), d)
        return main, test

    def entries(self, split: str):
        """Manifest entries of one side of the run's split, labels as the run indexes them."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        main, test = self.manifests()
        sources = {"main": main, "test": test}
        index = {}
        for name, m in sources.items():
            if m is not None:
                for e in m.entries:
                    index[(name, e.path)] = (m, e)
        out = []
        for item in self.split[split]:
            key = (item.get("source", "main"), item["path"])
            if key not in index:
                raise RunError(f"{self.path(SPLIT_FILE)}: {item['path']} is not in the {key[0]} cache "
                               f"(the data folder changed since training)")
            m, e = index[key]
            out.append((m, replace(e, label_index=int(item["label_index"]))))
        return out

    def arrays(self, split: str = "test") -> Tuple[np.ndarray, np.ndarray]:
        """X float32 (N, T, H, W, 3) in [0, 1] and y int64 for "train", "val" or "test"."""
        from train.data import load_clips

        pairs = self.entries(split)
        spec = self.input_spec()
        if not pairs:
            return np.zeros((0,) + spec.clip_shape, np.float32), np.zeros((0,), np.int64)
        xs, ys = [], []
        # entries may come from two caches (folder split): load per cache, keep order
        i = 0
        while i < len(pairs):
            m = pairs[i][0]
            j = i
            while j < len(pairs) and pairs[j][0] is m:
                j += 1
            x, y = load_clips(m, [e for _, e in pairs[i:j]])
            xs.append(x)
            ys.append(y)
            i = j
        return np.concatenate(xs), np.concatenate(ys)


def _manifest_or_prepare(cache_dir: Optional[str], data_dir: Optional[str], d: Dict[str, Any]):
    from train.data import load_manifest, prepare
    from train.data.manifest import ManifestError

    if cache_dir:
        try:
            return load_manifest(cache_dir)
        except ManifestError:
            if not data_dir:
                raise
    if not data_dir or not Path(data_dir).is_dir():
        raise RunError(f"clip cache {cache_dir} is gone and the data folder {data_dir} is not there to rebuild it")
    return prepare(data_dir, cache_dir, frames=int(d["frames"]), size=tuple(d["size"]),
                   short_policy=d.get("short_policy", "pad"), progress=False)


def load_run(run_dir) -> Run:
    p = Path(run_dir)
    if not p.is_dir():
        raise RunError(f"{p}: not a directory")
    cfg_path = p / CONFIG_FILE
    if not cfg_path.is_file():
        raise RunError(f"{p}: not a run directory (no {CONFIG_FILE}; train one with edge-train)")
    try:
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise RunError(f"{cfg_path}: invalid YAML ({e})") from None
    if not isinstance(cfg, dict) or "model" not in cfg or "data" not in cfg:
        raise RunError(f"{cfg_path}: not an edge-train config (needs 'model' and 'data')")
    labels_path = p / LABELS_FILE
    if not labels_path.is_file():
        raise RunError(f"{labels_path}: missing")
    return Run(dir=p.resolve(), config=cfg, labels=read_labels(labels_path), model_name=str(cfg["model"]["name"]))
