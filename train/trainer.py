"""Training loop around ``model.fit``: data, split, strategy, augmentation, checkpoints, resume, outputs.

``train(cfg)`` does, in order:

1. data: ``cfg.data`` is a raw video folder (prepared into a clip cache, default
   ``<out>/../cache/<hash of folder + sampling>``) or a prepared cache (has ``manifest.json``);
2. split: group-aware and class-stratified (``group_split``), or the dataset's official lists, or an
   explicit test folder; validation is carved from train the same group-aware way (never Keras'
   ``validation_split``, which takes the *last* 20% of unshuffled data = the last class);
3. model: built inside the ``tf.distribute`` strategy scope;
4. fit: training clips flow through ``tf.data.Dataset.from_generator`` with numpy augmentation on
   the fly (a new seeded draw per epoch; flip off when the manifest says it changes labels);
   validation/test clips are never augmented. After each epoch ``EpochController`` updates the LR
   schedule and early stopping, saves ``checkpoints/last.keras`` (weights + optimizer state) and
   ``state.json`` (epoch, history, early-stopping and LR state), so ``--resume`` continues exactly
   where an interrupted run stopped;
5. outputs: best weights restored (also when the epoch budget ends before early stopping fires),
   test metrics via ``edge.metrics`` (same code as the device), every run-directory file.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge.metrics import classification_metrics
from edge.preprocess import InputSpec
from edge.sampling import TemporalSampling

from . import run as rd
from .config import ConfigError, TrainConfig, load_yaml
from .features import EpochBatches

STATE_FILE = "state.json"
LAST_CKPT = "last.keras"
BEST_WEIGHTS = "best_weights.npz"
TRAIN_CONFIG = "train_config.yaml"


class TrainError(RuntimeError):
    """A problem with the inputs of a run (message is one line, CLI exits 2)."""


# ---------------------------------------------------------------------------------------- data
@dataclass
class Data:
    manifest: Any
    test_manifest: Any
    cache_dir: str
    test_cache_dir: Optional[str]
    data_dir: Optional[str]
    test_data_dir: Optional[str]
    split: Any

    def manifest_of(self, side: str):
        """The manifest a split side's clips are in (the test side may come from its own folder)."""
        return self.test_manifest if (side == "test" and self.test_manifest is not None) else self.manifest


def _is_cache(path: Path) -> bool:
    return (path / "manifest.json").is_file()


def default_cache_dir(cfg: TrainConfig, data_dir: Path) -> Path:
    """``<out>/../cache/<hash>``: runs side by side share one cache per folder + sampling settings."""
    key = json.dumps([str(data_dir.resolve()), cfg.frames, list(cfg.size), cfg.short_policy])
    h = hashlib.sha1(key.encode()).hexdigest()[:12]
    base = Path(cfg.out).resolve().parent if cfg.out else Path.cwd()
    return base / "cache" / f"{data_dir.name}-{h}"


def _open_data(cfg: TrainConfig, folder: str, cache: Optional[str], log) -> Tuple[Any, str, Optional[str]]:
    from train.data import load_manifest, prepare

    p = Path(folder)
    if not p.exists():
        raise TrainError(f"{folder}: no such data folder")
    if _is_cache(p):
        m = load_manifest(p)
        s = m.settings
        want = {"frames": cfg.frames, "size": list(cfg.size), "short_policy": cfg.short_policy}
        have = {"frames": s.get("frames"), "size": list(s.get("size", [])), "short_policy": s.get("short_policy")}
        if want != have:
            raise TrainError(f"{folder}: prepared with {have}, the run asks for {want}; "
                             "prepare it again or pass matching --frames/--size")
        return m, str(p.resolve()), m.data_dir
    cache_dir = Path(cache) if cache else default_cache_dir(cfg, p)
    log(f"preparing {p} -> {cache_dir} ({cfg.frames} frames, {cfg.size[0]}x{cfg.size[1]})")
    m = prepare(str(p), str(cache_dir), frames=cfg.frames, size=tuple(cfg.size), short_policy=cfg.short_policy,
                workers=cfg.workers, progress=cfg.progress)
    return m, str(cache_dir.resolve()), str(p.resolve())


def load_data(cfg: TrainConfig, log=print) -> Data:
    from train.data import folder_split, group_split, official_split

    if not cfg.data:
        raise TrainError("--data is required (a video folder or a prepared cache)")
    manifest, cache_dir, data_dir = _open_data(cfg, cfg.data, cfg.cache, log)
    if len(manifest.ok_entries) == 0:
        raise TrainError(f"{cfg.data}: no usable video (see {cache_dir}/manifest.json)")
    test_manifest = test_cache = test_data_dir = None
    seed = cfg.effective_split_seed
    if cfg.test_data:
        test_cache_arg = None
        if not _is_cache(Path(cfg.test_data)):
            test_cache_arg = str(Path(cfg.cache).parent / (Path(cfg.cache).name + "-test")) if cfg.cache \
                else str(default_cache_dir(cfg, Path(cfg.test_data)))
        test_manifest, test_cache, test_data_dir = _open_data(cfg, cfg.test_data, test_cache_arg, log)
        split = folder_split(manifest, test_manifest, val_fraction=cfg.val_fraction, seed=seed)
    elif cfg.trainlist:
        split = official_split(manifest, cfg.trainlist, cfg.testlist, val_fraction=cfg.val_fraction, seed=seed)
    else:
        split = group_split(manifest.entries, test_fraction=cfg.test_fraction, val_fraction=cfg.val_fraction,
                            seed=seed, classes=manifest.classes)
    for side in ("train", "test"):
        if not getattr(split, side):
            raise TrainError(f"the split has no {side} clips ({len(manifest.ok_entries)} usable videos); "
                             "add data or change --test-data")
    if len({e.label_index for e in split.train}) < 2:
        raise TrainError("the training split holds fewer than 2 classes")
    return Data(manifest, test_manifest, cache_dir, test_cache, data_dir, test_data_dir, split)


def split_arrays(data: Data, side: str) -> Tuple[np.ndarray, np.ndarray]:
    from train.data import load_clips

    entries = getattr(data.split, side)
    if not entries:
        return None, None
    return load_clips(data.manifest_of(side), entries)


def split_json(data: Data, cfg: TrainConfig) -> dict:
    def item(e, source):
        return {"path": e.path, "label": e.label, "label_index": int(e.label_index), "group": e.group,
                "source": source}

    s = data.split
    return {
        "kind": cfg.split_kind, "seed": cfg.effective_split_seed, "test_fraction": cfg.test_fraction,
        "val_fraction": cfg.val_fraction, "classes": list(s.classes), "notes": list(s.notes),
        "cache_dir": data.cache_dir, "test_cache_dir": data.test_cache_dir,
        "train": [item(e, "main") for e in s.train], "val": [item(e, "main") for e in s.val],
        "test": [item(e, "test" if data.test_manifest is not None else "main") for e in s.test],
    }


# ------------------------------------------------------------------------------------ strategy
def make_strategy(kind: str = "auto"):
    """``auto``: MultiWorkerMirrored when TF_CONFIG is set, Mirrored on >1 GPU, else the default."""
    import tensorflow as tf

    if kind == "auto":
        if os.environ.get("TF_CONFIG"):
            kind = "multi-worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy(), kind
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(), kind
    return tf.distribute.get_strategy(), kind


def is_chief() -> bool:
    """Only the chief (or worker 0 when there is no chief) writes the run directory."""
    tf_config = os.environ.get("TF_CONFIG")
    if not tf_config:
        return True
    task = json.loads(tf_config).get("task", {})
    cluster = json.loads(tf_config).get("cluster", {})
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and task.get("index", 0) == 0 and "chief" not in cluster


# -------------------------------------------------------------------------------- input stream
class TrainStream(EpochBatches):
    """Endless generator of (augmented) training batches; epoch ``e`` always draws the same order
    (``rng = default_rng([seed, e])``) and batch ``b`` of it the same augmentations
    (``default_rng([seed, e, b + 1])``), so a resumed run continues the stream it would have seen and
    batches can be built in parallel without changing them.

    ``x`` is an in-memory float32 array (N, T, H, W, 3), or a ``train.data.stream.ClipSource`` that
    reads the uint8 cache on demand (``x[idx]`` -> float32 batch): data that does not fit in memory.
    Both give the same batches for the same seed."""

    def __init__(self, x, y_onehot: np.ndarray, batch_size: int, augment, seed: int,
                 start_epoch: int = 0, reverse_map: Optional[np.ndarray] = None,
                 flip_map: Optional[np.ndarray] = None, parallel: Optional[int] = None):
        self.x, self.y, self.bs = x, y_onehot, int(batch_size)
        self.augment, self.seed, self.start_epoch = augment, int(seed), int(start_epoch)
        # class index -> class index after time reversal / mirroring (-1: not allowed for that class)
        self.reverse_map, self.flip_map = reverse_map, flip_map
        self.parallel = parallel

    @property
    def steps(self) -> int:
        return int(math.ceil(len(self.x) / self.bs))

    def plan(self, epoch: int) -> List[np.ndarray]:
        """The clip indices of every batch of one epoch (a full permutation: an exact shuffle)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))
        return [np.sort(order[i:i + self.bs]) for i in range(0, len(order), self.bs)]

    def batch(self, epoch: int, b: int, idx: np.ndarray):
        from train.data import augment_batch

        rng = np.random.default_rng([self.seed, epoch, b + 1])
        xb = self.x[idx]
        yb = self.y[idx]
        if self.augment is not None and self.augment.active:
            xb = augment_batch(xb, self.augment, rng)
        if self.reverse_map is not None or self.flip_map is not None:
            xb, yb = self._swap(xb, yb, rng)
        return xb.astype(np.float32, copy=False), yb.astype(np.float32, copy=False)

    def epoch_batches(self, epoch: int):
        for b, idx in enumerate(self.plan(epoch)):
            yield self.batch(epoch, b, idx)

    def _swap(self, xb: np.ndarray, yb: np.ndarray, rng: np.random.Generator):
        xb, yb = np.array(xb), np.array(yb)
        for i in range(len(xb)):
            c = int(yb[i].argmax())
            for table, op in ((self.reverse_map, lambda v: v[::-1]), (self.flip_map, lambda v: v[:, :, ::-1])):
                if table is None:
                    continue
                go = rng.random() < 0.5
                if go and table[c] >= 0:
                    xb[i] = op(xb[i])
                    c = int(table[c])
            yb[i] = 0
            yb[i, c] = 1
        return xb, yb


    def dataset(self):
        import tensorflow as tf

        t, h, w, c = self.x.shape[1:]
        sig = (tf.TensorSpec((None, t, h, w, c), tf.float32), tf.TensorSpec((None, self.y.shape[1]), tf.float32))
        if isinstance(self.x, np.ndarray):
            return tf.data.Dataset.from_generator(self, output_signature=sig).prefetch(2)
        from train.data.stream import parallel_batches

        return parallel_batches(self, sig, self.parallel)


# ------------------------------------------------------------------------------ epoch control
def lr_at(epoch: int, base_lr: float, cfg: TrainConfig, total: int, plateau_lr: Optional[float] = None) -> float:
    """LR for a 0-based epoch: linear warm-up, then cosine to 5% of base (``cosine``) or the current
    plateau-reduced value (``plateau``) or constant (``none``)."""
    if cfg.warmup_epochs and epoch < cfg.warmup_epochs:
        return base_lr * (epoch + 1) / (cfg.warmup_epochs + 1)
    sched = cfg.effective_lr_schedule
    if sched == "cosine":
        span = max(total - cfg.warmup_epochs, 1)
        p = min(max(epoch - cfg.warmup_epochs, 0) / span, 1.0)
        return base_lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))
    if sched == "plateau" and plateau_lr is not None:
        return plateau_lr
    return base_lr


def _get_lr(model) -> float:
    import tf_keras as keras

    return float(keras.backend.get_value(model.optimizer.learning_rate))


def _set_lr(model, lr: float) -> None:
    import tf_keras as keras

    keras.backend.set_value(model.optimizer.learning_rate, lr)


def make_controller(run_dir: Path, cfg: TrainConfig, state: dict, total_epochs: int, steps: int,
                    log: Callable[[str], None], write: bool = True):
    """Keras callback: LR schedule, early stopping, per-epoch checkpoint + state + progress line."""
    import tf_keras as keras

    ckpt_dir = run_dir / rd.CHECKPOINT_DIR
    mode_min = "loss" in cfg.monitor

    class EpochController(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.t0 = None
            self.bar = None
            self.best_weights = None      # kept in memory too: non-chief workers write no file

        def on_train_begin(self, logs=None):
            if state.get("base_lr") is None:
                state["base_lr"] = _get_lr(self.model)
            if cfg.progress:
                from tqdm import tqdm

                self.bar = tqdm(total=total_epochs, initial=state["epoch"], desc=f"training {cfg.model}",
                                unit="epoch", leave=False, file=sys.stderr)

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.time()
            _set_lr(self.model, lr_at(epoch, state["base_lr"], cfg, total_epochs, state.get("plateau_lr")))

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            lr = _get_lr(self.model)
            row = {"epoch": epoch + 1, "loss": logs.get("loss"), "accuracy": logs.get("accuracy"),
                   "val_loss": logs.get("val_loss"), "val_accuracy": logs.get("val_accuracy"), "lr": lr,
                   "seconds": round(time.time() - self.t0, 3)}
            state["history"].append(row)
            state["epoch"] = epoch + 1
            state["train_seconds"] = state.get("train_seconds", 0.0) + row["seconds"]
            value = logs.get(cfg.monitor)
            if value is None or not np.isfinite(value):
                improved = False
            elif state.get("best") is None:
                improved = True
            else:
                improved = value < state["best"] - 1e-7 if mode_min else value > state["best"] + 1e-7
            if improved:
                state.update(best=float(value), best_epoch=epoch + 1, wait=0)
                # every worker reads the weights: under MultiWorkerMirroredStrategy reading sync-on-read
                # variables (BatchNorm statistics) is a collective op all workers must join
                weights = self.model.get_weights()
                self.best_weights = weights
                if write:
                    np.savez(ckpt_dir / BEST_WEIGHTS, *weights)
            else:
                state["wait"] = state.get("wait", 0) + 1
            # plateau LR: reduce after lr_patience epochs without improvement
            if cfg.effective_lr_schedule == "plateau":
                state["plateau_wait"] = 0 if improved else state.get("plateau_wait", 0) + 1
                if state["plateau_wait"] >= cfg.lr_patience:
                    state["plateau_lr"] = max(lr * cfg.lr_factor, state["base_lr"] * 1e-3)
                    state["plateau_wait"] = 0
            if state["wait"] >= cfg.patience and epoch + 1 >= cfg.min_epochs:
                self.model.stop_training = True
                state["stopped_early"] = True
            if write:
                _save_checkpoint(self.model, ckpt_dir, state)
            else:
                _save_checkpoint_elsewhere(self.model)
            msg = (f"epoch {epoch + 1}/{total_epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.3f}"
                   + (f"  val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.3f}"
                      if row["val_loss"] is not None else "")
                   + f"  lr {lr:.2e}  {row['seconds']:.1f}s" + ("  *" if improved else "")
                   + ("  (early stop)" if state.get("stopped_early") else ""))
            if self.bar is not None:
                self.bar.update(1)
                self.bar.clear()
            log(msg)
            if self.bar is not None:
                self.bar.refresh()

        def on_train_end(self, logs=None):
            if self.bar is not None:
                self.bar.close()

    return EpochController()


def swap_table(mapping: Dict[str, str], classes: Sequence[str], what: str) -> Optional[np.ndarray]:
    """{"A": "B", ...} -> int array: class index -> swapped index (-1 where the class is not listed).
    Classes named but absent from the data are ignored (a 4-class synthetic set has no Grow)."""
    if not mapping:
        return None
    index = {c: i for i, c in enumerate(classes)}
    table = np.full(len(classes), -1, dtype=np.int64)
    for a, b in mapping.items():
        if a in index and b in index:
            table[index[a]] = index[b]
            if b not in mapping:
                table[index[b]] = index[a]      # a swap is symmetric unless told otherwise
    if (table < 0).all():
        raise ConfigError(f"{what}: none of its classes are in the data ({', '.join(classes)})")
    return table


def _save_checkpoint(model, ckpt_dir: Path, state: dict) -> None:
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / f".tmp-{os.getpid()}.keras"
    model.save(tmp)
    os.replace(tmp, ckpt_dir / LAST_CKPT)
    rd.write_json(ckpt_dir / STATE_FILE, state)      # written after the model: state never runs ahead


def _save_checkpoint_elsewhere(model) -> None:
    """Non-chief workers save too (a collective op under multi-worker), into a temporary dir."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="edge-train-worker-") as d:
        model.save(Path(d) / "last.keras")


def _load_best(model, ckpt_dir: Path, in_memory=None) -> bool:
    if in_memory is not None:
        model.set_weights(in_memory)
        return True
    p = ckpt_dir / BEST_WEIGHTS
    if not p.is_file():
        return False
    with np.load(p, allow_pickle=False) as z:
        model.set_weights([z[f"arr_{i}"] for i in range(len(z.files))])
    return True


# ------------------------------------------------------------------------------------ outputs
def versions() -> dict:
    import tensorflow as tf
    import tf_keras

    import edge

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
            "numpy": np.__version__, "edge": getattr(edge, "__version__", "?"), "platform": platform.platform()}


def run_config(cfg: TrainConfig, data: Data, model_cfg: dict, augment, argv: Optional[Sequence[str]]) -> dict:
    from train.data import frame_interval_seconds

    try:
        fi = frame_interval_seconds(data.manifest)
    except ValueError:
        fi = None
    spec = InputSpec(frames=cfg.frames, height=cfg.size[0], width=cfg.size[1])
    sampling = TemporalSampling(frames=cfg.frames, method="even", frame_interval_s=fi, short_policy=cfg.short_policy)
    s = data.split
    return {
        "model": {"name": cfg.model, "cfg": model_cfg},
        "data": {"data_dir": data.data_dir, "cache_dir": data.cache_dir, "test_data_dir": data.test_data_dir,
                 "test_cache_dir": data.test_cache_dir, "frames": cfg.frames, "size": list(cfg.size),
                 "short_policy": cfg.short_policy, "frame_interval_s": fi, "flip_safe": bool(data.manifest.flip_safe),
                 "classes": list(s.classes), "num_classes": len(s.classes)},
        "preprocess": spec.to_dict(),
        "sampling": sampling.to_dict(),
        "split": {"kind": cfg.split_kind, "seed": cfg.effective_split_seed, "test_fraction": cfg.test_fraction,
                  "val_fraction": cfg.val_fraction, "trainlist": cfg.trainlist, "testlist": cfg.testlist,
                  "sizes": {"train": len(s.train), "val": len(s.val), "test": len(s.test)}},
        "train": {"epochs": cfg.effective_epochs, "batch_size": cfg.batch_size, "seed": cfg.seed,
                  "patience": cfg.patience, "monitor": cfg.monitor, "min_epochs": cfg.min_epochs,
                  "restore_best_weights": cfg.restore_best, "lr_schedule": cfg.effective_lr_schedule,
                  "lr_factor": cfg.lr_factor, "lr_patience": cfg.lr_patience, "warmup_epochs": cfg.warmup_epochs,
                  "loss": "categorical_crossentropy", "strategy": cfg.strategy},
        "augment": augment.to_dict(),
        "versions": versions(),
        "command": list(argv) if argv is not None else None,
        "train_config": cfg.to_dict(),
    }


def model_file_size(path: Path) -> int:
    return int(Path(path).stat().st_size) if Path(path).exists() else 0


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict
    history: List[dict]
    model: Any


def _prepare_run_dir(cfg: TrainConfig) -> Tuple[Path, Optional[dict]]:
    """Create the run dir, or find the checkpoint to resume. Refuses to overwrite a finished run."""
    if not cfg.out:
        raise TrainError("--out RUN_DIR is required")
    out = Path(cfg.out)
    ckpt = out / rd.CHECKPOINT_DIR
    state = None
    if cfg.resume:
        if (ckpt / STATE_FILE).is_file() and (ckpt / LAST_CKPT).is_file():
            state = json.loads((ckpt / STATE_FILE).read_text(encoding="utf-8"))
    elif out.exists() and any(out.iterdir()):
        raise TrainError(f"{out}: already holds a run; use --resume to continue it or choose another --out")
    return out, state


def split_sources(data: Data, side: str):
    """(ClipSource, labels) of one side: clips read from the cache on demand (``--stream-data``)."""
    from train.data.stream import ClipSource

    entries = getattr(data.split, side)
    if not entries:
        return None, None
    src = ClipSource(data.manifest_of(side), entries)
    return src, src.labels()


def _streamed_train(data: Data, log):
    """Training clips for --stream-data, sharded by file across tf.distribute workers (TF_CONFIG)."""
    from train.data.stream import ClipSource, shard_entries, worker_shard

    n, i = worker_shard()
    entries = data.split.train
    if n > 1:
        entries = shard_entries(entries, n, i, equal=True)
        log(f"worker {i} of {n}: {len(entries)} of {len(data.split.train)} training clips")
    src = ClipSource(data.manifest, entries)
    return src, src.labels()


def _source_dataset(src, y_onehot: np.ndarray, batch_size: int):
    import tensorflow as tf

    from train.data.stream import batches_of

    def gen():
        for i, xb in enumerate(batches_of(src, batch_size)):
            yield xb, y_onehot[i * batch_size:i * batch_size + len(xb)]

    sig = (tf.TensorSpec((None,) + tuple(src.shape[1:]), tf.float32), tf.TensorSpec((None, y_onehot.shape[1]), tf.float32))
    return tf.data.Dataset.from_generator(gen, output_signature=sig).prefetch(2)


def _check_encoder_weights(model_cfg: dict) -> None:
    """A missing --encoder-weights file fails before anything is written (one line)."""
    w = model_cfg.get("encoder_weights")
    if model_cfg.get("encoder") == "keras" and not w:
        raise ConfigError("--encoder keras needs --encoder-weights FILE (a .keras/.h5 image model saved on disk)")
    if model_cfg.get("encoder") not in (None, "scratch") and w and w != "imagenet" and not Path(w).is_file():
        raise ConfigError(f"--encoder-weights {w}: no such file")


def _clip_inputs(cfg: TrainConfig, data: Data, augment, classes, state: dict, log):
    """Training stream of (augmented) clips and the validation dataset (whole model trains)."""
    import tensorflow as tf

    eye = np.eye(len(classes), dtype=np.float32)
    if cfg.stream_data:
        x_tr, y_tr = _streamed_train(data, log)
        x_va, y_va = split_sources(data, "val")
    else:
        x_tr, y_tr = split_arrays(data, "train")
        x_va, y_va = split_arrays(data, "val")
    stream = TrainStream(x_tr, eye[y_tr], cfg.batch_size, augment, cfg.seed, start_epoch=state["epoch"],
                         reverse_map=swap_table(cfg.reverse_swap, classes, "reverse_swap"),
                         flip_map=swap_table(cfg.flip_swap, classes, "flip_swap"))
    val = None
    if x_va is not None and len(x_va) and cfg.stream_data:
        val = _source_dataset(x_va, eye[y_va], cfg.batch_size)
    elif x_va is not None and len(x_va):
        val = tf.data.Dataset.from_tensor_slices((x_va, eye[y_va])).batch(cfg.batch_size)
    else:
        log("warning: no validation clips; early stopping and the LR plateau schedule watch nothing")
    return stream, val


def _frozen_inputs(cfg: TrainConfig, data: Data, model, model_cfg: dict, augment, state: dict, log):
    """Frozen encoder: (head, feature stream, val features, test features, test labels).

    Features come from the on-disk feature cache (``train.features``); the head shares its layers
    with ``model``, so the full model is trained when the head is."""
    import tensorflow as tf

    from train.models import parts_of
    from train.models.common import compile_model

    from .features import FeatureCache, FeatureStream, describe, feature_key, labels_of, split_features

    parts = parts_of(model)
    variants = 1 + (int(cfg.feature_variants) if augment.active else 0)
    key = feature_key(model_cfg, cfg.size, cfg.frames, augment.to_dict() if augment.active else {})
    cache = FeatureCache(parts.encoder, key, augment, log)
    f_tr = split_features(cache, data, "train", variants, cfg.progress)
    f_va = split_features(cache, data, "val", 1, cfg.progress)
    f_te = split_features(cache, data, "test", 1, cfg.progress)
    for line in describe(cache):
        log(line)
    k = len(data.split.classes)
    eye = np.eye(k, dtype=np.float32)
    compile_model(parts.head, model_cfg["optimizer"], model_cfg["learning_rate"], model_cfg["label_smoothing"],
                  model_cfg["clipnorm"])
    stream = FeatureStream(f_tr, eye[labels_of(data, "train")], cfg.batch_size, cfg.seed, state["epoch"])
    val = None
    if f_va is not None and len(f_va):
        val = tf.data.Dataset.from_tensor_slices((f_va[:, 0], eye[labels_of(data, "val")])).batch(cfg.batch_size)
    return parts.head, stream, val, f_te[:, 0], labels_of(data, "test")


def train(cfg: TrainConfig, *, callbacks: Sequence = (), log: Callable[[str], None] = print,
          argv: Optional[Sequence[str]] = None) -> TrainResult:
    """Train one model as configured and write the complete run directory (see ``train.run``)."""
    from train.data import AugmentConfig
    from train.models import build_model, load_model, resolve_config

    out, state = _prepare_run_dir(cfg)                  # checks only; nothing written yet
    try:                                                # bad config fails before anything is written
        model_cfg = resolve_config(cfg.model, **cfg.model_cfg)
        _check_encoder_weights(model_cfg)
        from .features import is_frozen

        is_frozen(cfg.model, model_cfg)                 # validates train_mode against the encoder
        augment = AugmentConfig.off() if cfg.no_augment else AugmentConfig.from_dict(cfg.augment)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None
    data = load_data(cfg, log)                          # bad data fails before the run dir exists
    augment = augment.for_manifest(data.manifest)       # flip off when mirroring changes labels
    log(data.split.summary())

    import tensorflow as tf
    import tf_keras as keras

    ckpt_dir = out / rd.CHECKPOINT_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write = is_chief()
    if state is None:
        rd.write_yaml(ckpt_dir / TRAIN_CONFIG, cfg.to_dict())
    keras.utils.set_random_seed(int(cfg.seed))          # python, numpy, tf
    classes = list(data.split.classes)
    k = len(classes)

    from .features import is_frozen

    frozen = is_frozen(cfg.model, model_cfg)
    if frozen and state is not None:
        log("frozen encoder: the head trains in seconds on cached features; starting it again")
        state = None
    eye = np.eye(k, dtype=np.float32)
    total = cfg.effective_epochs
    strategy, strategy_kind = make_strategy(cfg.strategy)
    with strategy.scope():
        if state is not None:
            model = load_model(ckpt_dir / LAST_CKPT, compile=True)
            log(f"resuming from epoch {state['epoch']} ({ckpt_dir / LAST_CKPT})")
        else:
            model = build_model(cfg.model, num_classes=k, frames=cfg.frames, size=cfg.size, **cfg.model_cfg)
            state = {"epoch": 0, "history": [], "best": None, "best_epoch": None, "wait": 0,
                     "base_lr": None, "stopped_early": False, "train_seconds": 0.0}
    if write:
        rd.write_text_atomic(out / rd.LABELS_FILE, "\n".join(classes) + "\n")
        rd.write_yaml(out / rd.CONFIG_FILE, run_config(cfg, data, model_cfg, augment, argv))
        rd.write_json(out / rd.SPLIT_FILE, split_json(data, cfg))

    if frozen:
        fit_model, stream, val, test_x, y_te = _frozen_inputs(cfg, data, model, model_cfg, augment, state, log)
    else:
        fit_model = model
        stream, val = _clip_inputs(cfg, data, augment, classes, state, log)
    controller = make_controller(out, cfg, state, total, stream.steps, log, write)
    t_start = time.time()
    if state["epoch"] < total and not state.get("stopped_early"):
        fit_model.fit(stream.dataset(), steps_per_epoch=stream.steps, epochs=total, initial_epoch=state["epoch"],
                      validation_data=val, callbacks=[controller, *callbacks], verbose=0)
    restored = cfg.restore_best and _load_best(fit_model, ckpt_dir, controller.best_weights)
    if restored:
        log(f"restored best weights from epoch {state['best_epoch']} ({cfg.monitor} {state['best']:.4f})")
    train_seconds = state.get("train_seconds", time.time() - t_start)

    # ---- evaluate on the test split and write everything
    if not frozen and cfg.stream_data:
        src, y_te = split_sources(data, "test")
        test_x = _source_dataset(src, np.eye(k, dtype=np.float32)[y_te], max(cfg.batch_size, 8))
    elif not frozen:
        test_x, y_te = split_arrays(data, "test")
    if isinstance(test_x, np.ndarray):
        probs = fit_model.predict(test_x, batch_size=max(cfg.batch_size, 8), verbose=0)
    else:
        probs = fit_model.predict(test_x, verbose=0)
    metrics = classification_metrics(y_te, probs.argmax(-1), labels=classes)
    metrics["predicted_classes"] = int(len(set(probs.argmax(-1).tolist())))
    if metrics["predicted_classes"] == 1 and k > 1:
        # the failure mode of small batches + BatchNorm + early stopping on a tiny validation set
        log(f"warning: the model predicts one class ({classes[int(probs.argmax(-1)[0])]}) for every test clip")
    final_weights = model.get_weights()                 # every worker (collective under multi-worker)
    if write:
        # saved uncompiled (no optimizer state): the deliverable is the network, not the training run
        export = build_model(cfg.model, num_classes=k, frames=cfg.frames, size=cfg.size, compile=False,
                             **cfg.model_cfg)
        export.set_weights(final_weights)
        export.save(out / rd.MODEL_FILE)
        if cfg.model == "lrcn-edge":
            from train.models import parts_of

            parts = parts_of(export)
            parts.encoder.save(out / rd.ENCODER_FILE)
            parts.head.save(out / rd.HEAD_FILE)
    metrics.update({
        "model": cfg.model, "split": "test", "training_time_s": round(float(train_seconds), 2),
        "params": int(model.count_params()), "model_size_bytes": model_file_size(out / rd.MODEL_FILE),
        "epochs_run": int(state["epoch"]), "best_epoch": state.get("best_epoch"),
        "stopped_early": bool(state.get("stopped_early")), "restored_best": bool(restored),
        "strategy": strategy_kind,
    })
    if write:
        from . import report

        report.write_history_csv(state["history"], out / rd.HISTORY_CSV)
        report.plot_history(state["history"], out / rd.HISTORY_PNG, title=f"{cfg.model} ({out.name})",
                            best_epoch=state.get("best_epoch"))
        report.write_eval_outputs(out, metrics, title=f"{cfg.model}: test F1 {metrics['f1_macro']:.3f}")
        report.write_run_report(out)
        state["finished"] = True
        rd.write_json(ckpt_dir / STATE_FILE, state)
    log(f"test: macro-F1 {metrics['f1_macro']:.4f}  accuracy {metrics['accuracy']:.4f}  "
        f"({metrics['n_test']} clips)  -> {out}")
    return TrainResult(out, metrics, state["history"], model)


def config_for_resume(run_dir, overrides: Optional[dict] = None) -> TrainConfig:
    """The saved TrainConfig of an interrupted run, with ``resume`` on and ``overrides`` applied
    (only epochs/patience/progress/strategy may change when resuming)."""
    p = Path(run_dir) / rd.CHECKPOINT_DIR / TRAIN_CONFIG
    if not p.is_file():
        raise TrainError(f"{run_dir}: nothing to resume (no {rd.CHECKPOINT_DIR}/{TRAIN_CONFIG})")
    saved = load_yaml(p)
    allowed = {"epochs", "patience", "progress", "strategy", "min_epochs"}
    extra = {k: v for k, v in (overrides or {}).items() if v is not None}
    bad = sorted(set(extra) - allowed - {"resume", "out"})
    if bad:
        raise TrainError(f"cannot change {', '.join(bad)} when resuming (allowed: {', '.join(sorted(allowed))})")
    saved.update({k: v for k, v in extra.items() if k in allowed})
    saved.update(resume=True, out=str(run_dir))
    return TrainConfig.from_sources(saved, where=str(p))
