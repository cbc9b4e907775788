"""Training data that does not fit in memory: clips read from the uint8 cache on demand.

The in-memory path (``train.data.load_clips``) holds N x T x H x W x 3 float32: UCF101 at 128x128
is ~52 GB. Here ``ClipSource`` reads only the clips a batch needs (``.npz`` -> uint8 -> float32 via
``edge.preprocess.normalize``, the device's own function), and ``parallel_batches`` builds a
``tf.data`` pipeline over ``TrainStream``'s batch plan:

* shuffle: the epoch's full permutation of clip *indices* (exact, unlike a shuffle buffer of clips,
  and it costs 8 bytes per clip);
* parallel decode + augmentation: ``map(num_parallel_calls)`` over (epoch, batch) pairs,
  ``deterministic=True``; each batch draws its augmentation from ``default_rng([seed, epoch, batch+1])``,
  so the batches equal the in-memory path's for the same seed;
* prefetch: ``tf.data.AUTOTUNE``.

Memory stays at a few batches in flight, whatever the dataset size. Multi-worker training shards the
clip *files* per worker (``shard_entries``): each worker reads only its own part.
"""
from __future__ import annotations

import itertools
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from edge.preprocess import normalize

from .loader import CacheError, load_clip_uint8
from .manifest import Entry, Manifest


class ClipSource:
    """Array-like view of cached clips: ``len()``, ``shape``, ``src[idx]`` -> float32 (n, T, H, W, 3)."""

    def __init__(self, manifest: Manifest, entries: Sequence[Entry]):
        self.manifest, self.entries = manifest, list(entries)
        s = manifest.settings
        h, w = s.get("size", [64, 64])
        self.shape = (len(self.entries), int(s.get("frames", 20)), int(h), int(w), 3)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.atleast_1d(np.asarray(idx))
        out = np.empty((len(idx),) + self.shape[1:], np.float32)
        for j, i in enumerate(idx):
            e = self.entries[int(i)]
            u8 = load_clip_uint8(self.manifest, e)
            if u8.shape != self.shape[1:]:
                raise CacheError(f"{e.path}: cached clip is {u8.shape}, manifest says {self.shape[1:]}")
            out[j] = normalize(u8)
        return out

    def labels(self) -> np.ndarray:
        return np.asarray([e.label_index for e in self.entries], dtype=np.int64)


def batches_of(source: ClipSource, batch_size: int):
    """Unaugmented float32 batches of ``source`` in order (validation / test without loading all)."""
    for i in range(0, len(source), batch_size):
        yield source[np.arange(i, min(i + batch_size, len(source)))]


def shard_entries(entries: Sequence[Entry], num_workers: int, index: int, equal: bool = False) -> List[Entry]:
    """Worker ``index`` of ``num_workers`` gets every ``num_workers``-th clip file (disjoint, all covered).

    ``equal``: pad the shorter shards with their own first clips so every worker runs the same number
    of steps (synchronous multi-worker training deadlocks otherwise)."""
    if num_workers < 1 or not 0 <= index < num_workers:
        raise ValueError(f"bad shard {index} of {num_workers}")
    entries = list(entries)
    mine = entries[index::num_workers]
    if equal and mine:
        size = -(-len(entries) // num_workers)
        mine = (mine * (size // len(mine) + 1))[:size]
    return mine


def worker_shard() -> Tuple[int, int]:
    """(num_workers, this worker's index) from TF_CONFIG; (1, 0) when it is not set."""
    import json

    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 1, 0
    cfg = json.loads(raw)
    cluster, task = cfg.get("cluster", {}), cfg.get("task", {})
    workers = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
    if not workers:
        return 1, 0
    offset = len(cluster.get("chief", [])) if task.get("type") == "worker" else 0
    return len(workers), offset + int(task.get("index", 0))


def parallel_batches(stream, signature, parallel: Optional[int] = None):
    """``tf.data`` pipeline of ``stream``'s batches (same values and order as ``stream.epoch_batches``)."""
    import tensorflow as tf

    steps = stream.steps
    plans = {}

    def plan_of(epoch: int):
        p = plans.get(epoch)
        if p is None:                          # deterministic: a race only recomputes the same plan
            p = stream.plan(epoch)
            plans.clear()                      # one epoch's plan kept at a time
            plans[epoch] = p
        return p

    def keys():
        for epoch in itertools.count(stream.start_epoch):
            for b in range(steps):
                yield epoch, b

    def load(epoch, b):
        e, b = int(epoch), int(b)
        return stream.batch(e, b, plan_of(e)[b])

    def tf_load(epoch, b):
        x, y = tf.numpy_function(load, [epoch, b], [tf.float32, tf.float32], stateful=False)
        x.set_shape(signature[0].shape)
        y.set_shape(signature[1].shape)
        return x, y

    ds = tf.data.Dataset.from_generator(keys, output_signature=(tf.TensorSpec((), tf.int64),
                                                                 tf.TensorSpec((), tf.int64)))
    calls = parallel if parallel else tf.data.AUTOTUNE
    ds = ds.map(tf_load, num_parallel_calls=calls, deterministic=True).prefetch(tf.data.AUTOTUNE)
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # sharded by file
    return ds.with_options(opts)
