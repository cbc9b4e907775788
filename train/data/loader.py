"""Reading cached clips back for training: uint8 ``.npz`` -> float32 in [0, 1].

Normalisation goes through ``edge.preprocess.normalize``, the function the device runs on camera
frames, so training and inference cannot drift apart. ``allow_pickle=False``: a cache file can
only ever hold arrays.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from edge.preprocess import InputSpec, normalize

from .manifest import Entry, Manifest


# numpy parses every .npy header with ast.literal_eval, and CPython's AST construction is not safe
# to run in two threads at once: "SystemError: AST constructor recursion depth mismatch" (see
# python/cpython gh-106905; seen here in CI on 3.11.7). Cache reads are therefore serialised; the
# float conversion, the other half of the work, still runs in parallel.
_NPY_READ_LOCK = threading.Lock()


class CacheError(RuntimeError):
    """A cached clip is missing or unreadable (re-run ``edge-data prepare``)."""


def clip_path(manifest: Manifest, entry: Entry) -> Path:
    if not entry.ok or not entry.cache:
        raise CacheError(f"{entry.path}: entry is {entry.status} ({entry.reason}), it has no cached clip")
    root = Path(entry.cache_root) if entry.cache_root else manifest.cache_dir
    return root / entry.cache


def load_clip_uint8(manifest: Manifest, entry: Entry) -> np.ndarray:
    """One cached clip as uint8 (T, H, W, 3)."""
    p = clip_path(manifest, entry)
    try:
        with _NPY_READ_LOCK, np.load(p, allow_pickle=False) as z:
            frames = z["frames"]
    except (OSError, KeyError, ValueError) as e:
        raise CacheError(f"{p}: cannot read cached clip for {entry.path} ({e}); "
                         "re-run `edge-data prepare`") from e
    if frames.dtype != np.uint8 or frames.ndim != 4:
        raise CacheError(f"{p}: unexpected array {frames.dtype} {frames.shape}")
    return frames


def _spec(manifest: Manifest) -> InputSpec:
    s = manifest.settings
    h, w = s.get("size", [64, 64])
    return InputSpec(frames=int(s.get("frames", 20)), height=int(h), width=int(w))


def load_clips(manifest: Manifest, entries: Sequence[Entry], *, threads: Optional[int] = None
               ) -> Tuple[np.ndarray, np.ndarray]:
    """X float32 (N, T, H, W, 3) in [0, 1] and y int64 (N,) (``entry.label_index``).

    Skipped entries raise ``CacheError`` (filter with ``e.ok``; splits only hold ok entries).
    Clips are read by a few threads (zlib inflation and the float conversion release the GIL);
    ``threads=1`` reads them one by one.
    """
    entries = list(entries)
    spec = _spec(manifest)
    x = np.empty((len(entries),) + spec.clip_shape, dtype=np.float32)
    y = np.empty((len(entries),), dtype=np.int64)

    def one(i: int) -> None:
        e = entries[i]
        u8 = load_clip_uint8(manifest, e)
        if u8.shape != spec.clip_shape:
            raise CacheError(f"{e.path}: cached clip is {u8.shape}, manifest says {spec.clip_shape}")
        x[i] = normalize(u8, spec)
        y[i] = e.label_index

    n_threads = threads if threads is not None else min(4, os.cpu_count() or 1)
    if n_threads <= 1 or len(entries) < 8:
        for i in range(len(entries)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            for _ in pool.map(one, range(len(entries))):
                pass
    return x, y
