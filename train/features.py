"""Frozen-encoder training: per-frame features cached on disk, then the temporal head trains alone.

With a frozen pretrained encoder (``lrcn-edge`` ``train_mode: frozen``) every epoch would run the same
encoder on the same frames. Instead each clip is encoded once and its (T, F) features are stored next
to the clip cache::

    <clip cache>/features/<key>/<clip hash>_v<N>.npy      float16 (T, F)

``key`` hashes everything the features depend on (encoder, its weights file, size, frames, the
augmentation settings for variants > 0), so a new setting never reads stale features and every seed /
split of the same data reuses them. Variant 0 is the clean clip; variants 1..V are augmented copies
(the run's augmentation, a fixed draw per clip and variant): each training epoch picks one variant
per clip, so augmentation still reaches the head. Validation and test use variant 0.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

FEATURE_DIR = "features"


def is_frozen(model: str, model_cfg: Dict[str, Any]) -> bool:
    """True when the run trains only the head on cached features."""
    if model != "lrcn-edge":
        return False
    from train.models.lrcn_edge import LRCNEdgeConfig, train_mode
    from train.models.common import config_from

    return train_mode(config_from(LRCNEdgeConfig, dict(model_cfg), model)) == "frozen"


def _file_id(path: Optional[str]) -> Optional[str]:
    if not path or path == "imagenet" or not Path(path).is_file():
        return path
    st = Path(path).stat()
    return f"{Path(path).resolve()}:{st.st_size}:{int(st.st_mtime)}"


def feature_key(model_cfg: Dict[str, Any], size, frames: int, augment: Dict[str, Any]) -> str:
    parts = {"encoder": model_cfg.get("encoder"), "weights": _file_id(model_cfg.get("encoder_weights")),
             "affine": [model_cfg.get("encoder_input_scale"), model_cfg.get("encoder_input_offset")],
             "size": list(size), "frames": int(frames), "augment": augment, "v": 1}
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class EpochBatches:
    """A generator of training batches for ``tf.data.Dataset.from_generator``: ``epoch_batches(e)``
    of epoch after epoch, from ``start_epoch`` on (a resumed run continues the same sequence)."""

    start_epoch = 0

    def epoch_batches(self, epoch: int):
        raise NotImplementedError

    def __call__(self):
        epoch = self.start_epoch
        while True:
            yield from self.epoch_batches(epoch)
            epoch += 1


class FeatureCache:
    """Encode clips of a manifest once per (clip, variant) and keep the features on disk."""

    def __init__(self, encoder, key: str, augment=None, log=print, batch_frames: int = 64):
        self.encoder, self.key, self.augment, self.log = encoder, key, augment, log
        self.batch_frames = int(batch_frames)
        self.computed = 0
        self.reused = 0

    def _path(self, manifest, entry, variant: int) -> Path:
        h = hashlib.sha1(str(entry.path).encode()).hexdigest()[:16]
        return Path(manifest.cache_dir) / FEATURE_DIR / self.key / f"{h}_v{variant}.npy"

    def _clip(self, manifest, entry, variant: int) -> np.ndarray:
        from edge.preprocess import normalize
        from train.data import augment_clip, load_clip_uint8

        x = normalize(load_clip_uint8(manifest, entry))
        if variant > 0 and self.augment is not None and self.augment.active:
            seed = int(hashlib.sha1(f"{entry.path}|{variant}".encode()).hexdigest()[:8], 16)
            x = augment_clip(x, self.augment, np.random.default_rng(seed))
        return x

    def one(self, manifest, entry, variant: int = 0) -> np.ndarray:
        p = self._path(manifest, entry, variant)
        if p.is_file():
            self.reused += 1
            return np.load(p, allow_pickle=False).astype(np.float32)
        clip = self._clip(manifest, entry, variant)
        feats = self.encoder.predict(clip, batch_size=self.batch_frames, verbose=0).astype(np.float32)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}.npy")
        half = feats.astype(np.float16)
        np.save(tmp, half)
        os.replace(tmp, p)
        self.computed += 1
        return half.astype(np.float32)     # same values whether computed or read

    def many(self, manifest, entries: Sequence, variants: int = 1, what: str = "clips",
             progress: bool = True) -> np.ndarray:
        """(N, V, T, F) features of ``entries`` for variants 0..V-1 (with a progress bar)."""
        entries = list(entries)
        bar = None
        if progress and entries:
            import sys

            from tqdm import tqdm

            bar = tqdm(total=len(entries) * variants, desc=f"encoding {what}", unit="clip", leave=False,
                       file=sys.stderr)
        out = []
        for e in entries:
            row = []
            for v in range(variants):
                row.append(self.one(manifest, e, v))
                if bar is not None:
                    bar.update(1)
            out.append(np.stack(row))
        if bar is not None:
            bar.close()
        return np.stack(out) if out else np.zeros((0, variants, 0, 0), np.float32)


class FeatureStream(EpochBatches):
    """Endless (features, one-hot) batches; epoch ``e`` draws its order and variants from ``[seed, e]``."""

    def __init__(self, feats: np.ndarray, y_onehot: np.ndarray, batch_size: int, seed: int, start_epoch: int = 0):
        self.f, self.y, self.bs, self.seed, self.start_epoch = feats, y_onehot, int(batch_size), int(seed), start_epoch

    @property
    def steps(self) -> int:
        return int(math.ceil(len(self.f) / self.bs))

    def epoch_batches(self, epoch: int):
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.f))
        variant = rng.integers(0, self.f.shape[1], size=len(self.f))
        for i in range(0, len(order), self.bs):
            idx = np.sort(order[i:i + self.bs])
            yield self.f[idx, variant[idx]], self.y[idx]


    def dataset(self):
        import tensorflow as tf

        t, f = self.f.shape[2:]
        sig = (tf.TensorSpec((None, t, f), tf.float32), tf.TensorSpec((None, self.y.shape[1]), tf.float32))
        return tf.data.Dataset.from_generator(self, output_signature=sig).prefetch(2)


def split_features(cache: FeatureCache, data, side: str, variants: int, progress: bool) -> Optional[np.ndarray]:
    """Features of one side of the run's split ((N, V, T, F); None when the side is empty)."""
    entries = getattr(data.split, side)
    if not entries:
        return None
    return cache.many(data.manifest_of(side), entries, variants=variants, what=f"{side} clips", progress=progress)


def labels_of(data, side: str) -> np.ndarray:
    return np.asarray([e.label_index for e in getattr(data.split, side)], dtype=np.int64)


def describe(cache: FeatureCache) -> List[str]:
    return [f"features: {cache.computed} clip variants encoded, {cache.reused} read from the cache ({cache.key})"]
