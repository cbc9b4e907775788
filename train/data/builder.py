"""``prepare``: turn a folder of videos into a cache of fixed-size uint8 clips + ``manifest.json``.

Why a cache: decoding is the slow part of training on video (the paper re-decodes every clip each
run). Each clip is decoded once, in parallel over processes (decoding is CPU-bound and OpenCV's
FFmpeg calls hold the GIL for part of the work), stored as a compressed ``.npz`` of uint8 frames
(4x smaller than float32; normalised on load by ``edge.preprocess.normalize``, the same code the
device runs) and reused while nothing changes.

Cache key = sha1 of (absolute path, size, mtime_ns, frames, size HxW, short policy, cache version).
Touching a file, changing a sampling setting or a new extraction code version (``CACHE_VERSION``)
misses; anything else hits. A hit is checked cheaply: the previous manifest names the key and the
``.npz`` still exists. Files that failed keep their failure in the manifest and are not retried
until they change (except permission problems, retried every run).

Bad input never stops a build; each skipped video gets a ``reason``:

=================== ==============================================================
``empty-file``      zero bytes
``unreadable``      OpenCV cannot open it (not a video, header destroyed)
``permission``      no read permission
``no-frames``       opens but no frame decodes
``truncated``       fewer than ``TRUNCATED_BELOW`` of the frames the container announces decode
``too-short``       fewer than ``frames`` frames and ``short_policy="skip"``
``error``           anything else (message kept)
=================== ==============================================================
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

import edge
from edge.sampling import SHORT_POLICIES

from .layout import walk_dataset
from .manifest import OK, SKIPPED, Entry, Manifest, ManifestError, load_manifest

CACHE_VERSION = "1"          # bump when extraction changes what a cached clip contains
CLIPS_DIR = "clips"
DATASET_FILE = "dataset.json"  # optional DATA_DIR/dataset.json, e.g. {"flip_safe": false}
TRUNCATED_BELOW = 0.9        # decoded / announced frames below this -> "truncated"
RETRY_REASONS = frozenset({"permission", "error"})
MAX_LISTED = 20               # skipped/ignored files named in the end-of-build summary

SizeLike = Union[int, Tuple[int, int], Sequence[int]]


@dataclass(frozen=True)
class PrepareSettings:
    """The sampling settings that shape a cached clip (all part of the cache key)."""

    frames: int = 20
    size: Tuple[int, int] = (64, 64)   # (height, width)
    short_policy: str = "pad"

    def __post_init__(self):
        if int(self.frames) < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be (height, width) >= 1, got {self.size}")
        if self.short_policy not in SHORT_POLICIES:
            raise ValueError(f"short_policy must be one of {SHORT_POLICIES}, got {self.short_policy!r}")

    def to_dict(self) -> dict:
        return {"frames": int(self.frames), "size": [int(self.size[0]), int(self.size[1])],
                "short_policy": self.short_policy, "cache_version": f"{CACHE_VERSION}-{edge.__version__}"}


def as_size(size: SizeLike) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return (int(size), int(size))
    h, w = size
    return (int(h), int(w))


def cache_key(path: str, settings: PrepareSettings) -> str:
    """sha1 over what makes a cached clip valid: the file's identity and the sampling settings."""
    st = os.stat(path)
    ident = json.dumps([os.path.abspath(path), st.st_size, st.st_mtime_ns, settings.to_dict()],
                       sort_keys=True)
    return hashlib.sha1(ident.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Job:
    path: str          # absolute video path
    out: str           # absolute .npz path
    frames: int
    size: Tuple[int, int]
    short_policy: str


def _worker_init() -> None:
    # Quiet FFmpeg's per-macroblock complaints about corrupt files (the manifest reports them),
    # and one decoding thread per process: the pool is the parallelism.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import cv2
        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover
        pass


@contextlib.contextmanager
def _utf8_path(path: str):
    """``path`` itself, or, when its name is not valid UTF-8 (OpenCV cannot take it), a temporary
    symlink with a plain name pointing at it."""
    try:
        path.encode("utf-8")
        yield path
        return
    except UnicodeEncodeError:
        pass
    with tempfile.TemporaryDirectory(prefix="edge-data-") as d:
        link = os.path.join(d, "clip" + os.path.splitext(path)[1].encode("ascii", "ignore").decode())
        os.symlink(os.path.abspath(path), link)
        yield link


def extract(job: _Job) -> dict:
    """Decode one clip and write its ``.npz``; never raises (a failure is a result)."""
    from edge.video import VideoError, probe, read_clip

    meta: Dict[str, object] = {"frames": 0, "fps": 0.0, "width": 0, "height": 0, "indices": [],
                               "padded": False, "status": SKIPPED, "reason": None, "message": None}
    try:
        if not os.access(job.path, os.R_OK):
            raise VideoError("permission", f"{job.path}: no read permission")
        with _utf8_path(job.path) as path:
            announced = probe(path)
            meta.update(fps=announced.fps, width=announced.width, height=announced.height,
                        frames=announced.frame_count)
            clip = read_clip(path, n_frames=job.frames, size=job.size,
                             short_policy=job.short_policy, as_uint8=True)
        real = clip.info.frame_count
        meta["frames"] = real
        if announced.frame_count > 0 and real < TRUNCATED_BELOW * announced.frame_count:
            raise VideoError("truncated", f"{job.path}: only {real} of the {announced.frame_count} "
                                          "announced frames decode (truncated or corrupt)")
        arr = np.ascontiguousarray(clip.frames, dtype=np.uint8)
        tmp = job.out + f".{os.getpid()}.tmp.npz"
        os.makedirs(os.path.dirname(job.out), exist_ok=True)
        np.savez_compressed(tmp, frames=arr, indices=np.asarray(clip.indices, dtype=np.int64))
        os.replace(tmp, job.out)
        meta.update(status=OK, indices=[int(i) for i in clip.indices], padded=bool(clip.padded))
    except VideoError as e:
        meta.update(reason=e.reason, message=str(e))
    except Exception as e:  # noqa: BLE001 - a broken file must never stop the build
        meta.update(reason="error", message=f"{type(e).__name__}: {e}")
    return meta


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _pool_context():
    # Not "fork": prepare() may run inside a process that already started TensorFlow's threads.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _read_dataset_json(data_dir: str) -> dict:
    p = os.path.join(data_dir, DATASET_FILE)
    if not os.path.isfile(p):
        return {}
    try:
        d = json.loads(Path(p).read_text(encoding="utf-8"))
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def _previous(cache_dir: Path) -> Dict[str, Entry]:
    try:
        old = load_manifest(cache_dir)
    except ManifestError:
        return {}
    return {e.key: e for e in old.entries if e.key}


def prepare(data_dir, cache_dir, *, frames: int = 20, size: SizeLike = (64, 64), short_policy: str = "pad",
            workers: Optional[int] = None, progress: bool = True, prune: bool = False,
            flip_safe: Optional[bool] = None) -> Manifest:
    """Decode every video under ``data_dir`` (``<Class>/<video>``) into ``cache_dir`` and write
    ``cache_dir/manifest.json``; returns the manifest (``.stats`` has ok/skipped/hits/misses).

    ``workers``: processes (default: usable cores; 1 = in this process). ``prune`` deletes cached
    clips no entry references any more. ``flip_safe`` overrides ``DATA_DIR/dataset.json``
    (the synthetic set writes ``{"flip_safe": false}``: a mirrored clip changes its class).
    """
    t0 = time.perf_counter()
    settings = PrepareSettings(int(frames), as_size(size), short_policy)
    data_root = os.path.abspath(os.fspath(data_dir))
    cache_root = Path(cache_dir).resolve()
    classes, videos, ignored = walk_dataset(data_root, exclude=[cache_root])
    clips_dir = cache_root / CLIPS_DIR
    clips_dir.mkdir(parents=True, exist_ok=True)
    previous = _previous(cache_root)
    index = {c: i for i, c in enumerate(classes)}

    entries: List[Optional[Entry]] = [None] * len(videos)
    jobs: List[Tuple[int, _Job]] = []
    hits = 0
    for i, v in enumerate(videos):
        base = Entry(path=v.rel, label=v.label, label_index=index[v.label], group=v.group)
        try:
            key = cache_key(v.path, settings)
        except OSError as e:
            base.status, base.reason, base.message = SKIPPED, "unreadable", f"{v.rel}: {e.strerror or e}"
            entries[i] = base
            continue
        base.key = key
        rel_cache = f"{CLIPS_DIR}/{key[:2]}/{key}.npz"
        old = previous.get(key)
        if old is not None and old.path == v.rel and (
                (old.ok and (cache_root / rel_cache).exists())
                or (not old.ok and old.reason not in RETRY_REASONS)):
            reuse = Entry.from_dict(old.to_dict(), str(cache_root))
            reuse.label, reuse.label_index, reuse.group = v.label, index[v.label], v.group
            entries[i] = reuse
            hits += 1
            continue
        base.cache = rel_cache
        entries[i] = base
        jobs.append((i, _Job(v.path, str(cache_root / rel_cache), settings.frames, settings.size,
                             settings.short_policy)))

    n_workers = max(1, int(workers)) if workers else _default_workers()
    n_workers = min(n_workers, max(1, len(jobs)))
    bar = _progress(len(jobs), progress, f"decoding {len(jobs)} videos ({hits} cached)")
    try:
        for i, meta in _run(jobs, n_workers):
            _apply(entries[i], meta)
            bar.update(1)
    finally:
        bar.close()

    final = [e for e in entries if e is not None]
    for e in final:
        e.cache_root = str(cache_root)
    dataset = _read_dataset_json(data_root)
    if flip_safe is None:
        flip_safe = bool(dataset.get("flip_safe", True))
    stats = {
        "ok": sum(e.ok for e in final), "skipped": sum(not e.ok for e in final),
        "hits": hits, "misses": len(jobs), "workers": n_workers if jobs else 0,
        "seconds": round(time.perf_counter() - t0, 3),
        "skipped_by_reason": dict(Counter(e.reason for e in final if not e.ok)),
    }
    manifest = Manifest(
        entries=final, classes=classes, settings=settings.to_dict(), flip_safe=flip_safe,
        data_dir=data_root, ignored=[{"path": g.rel, "reason": g.reason, "detail": g.detail} for g in ignored],
        stats=stats, dataset=dataset,
        created=datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    )
    if prune:
        stats["pruned"] = prune_cache(cache_root, manifest)
    manifest.save(cache_root)
    return manifest


def _apply(entry: Entry, meta: dict) -> None:
    entry.frames = int(meta["frames"])
    entry.fps = float(meta["fps"])
    entry.width = int(meta["width"])
    entry.height = int(meta["height"])
    entry.indices = list(meta["indices"])
    entry.padded = bool(meta["padded"])
    entry.status = str(meta["status"])
    entry.reason = meta["reason"]
    entry.message = meta["message"]
    if entry.status != OK:
        entry.cache = None


def _ping() -> int:
    return os.getpid()


def _failed(message: str) -> dict:
    return {"frames": 0, "fps": 0.0, "width": 0, "height": 0, "indices": [], "padded": False,
            "status": SKIPPED, "reason": "error", "message": message}


def _run(jobs: List[Tuple[int, _Job]], n_workers: int):
    """Yield (position, result) as jobs finish: in-process for 1 worker, else a process pool.

    A pool that cannot start at all (e.g. ``__main__`` read from stdin) falls back to this process
    with a warning. A worker that dies mid-job (a decoder crash on a hostile file) breaks the pool;
    the unfinished jobs are then retried one per single-worker pool so only the culprit fails.
    """
    if not jobs:
        return
    if n_workers == 1:
        yield from _run_here(jobs)
        return
    ctx = _pool_context()
    broken: List[Tuple[int, _Job]] = []
    with cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_init) as pool:
        try:
            pool.submit(_ping).result(timeout=300)
        except Exception as e:  # noqa: BLE001
            warnings.warn(f"edge-data: process pool unavailable ({type(e).__name__}: {e}); "
                          "decoding in this process", RuntimeWarning, stacklevel=3)
            pool.shutdown(wait=False, cancel_futures=True)
            yield from _run_here(jobs)
            return
        futures = {pool.submit(extract, job): (i, job) for i, job in jobs}
        for fut in cf.as_completed(futures):
            i, job = futures[fut]
            try:
                res = fut.result()
            except Exception:  # noqa: BLE001 - BrokenProcessPool: retried below
                broken.append((i, job))
                continue
            yield i, res
    for i, job in sorted(broken):
        try:
            with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_worker_init) as one:
                res = one.submit(extract, job).result()
        except Exception as e:  # noqa: BLE001
            res = _failed(f"{job.path}: the decoding process died ({type(e).__name__}); "
                          "the file probably crashes the decoder")
        yield i, res


def _run_here(jobs: List[Tuple[int, _Job]]):
    _worker_init()
    for i, job in jobs:
        yield i, extract(job)


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool, desc: str):
    if not enabled or total == 0:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in [train]
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="clip", file=sys.stderr, dynamic_ncols=True)


def prune_cache(cache_root: Path, manifest: Manifest) -> int:
    """Delete ``.npz`` files under ``clips/`` that no entry references; returns how many."""
    keep = {str(Path(cache_root) / e.cache) for e in manifest.entries if e.ok and e.cache}
    n = 0
    for p in (Path(cache_root) / CLIPS_DIR).rglob("*.npz"):
        if str(p) not in keep:
            p.unlink(missing_ok=True)
            n += 1
    return n


def stale_files(cache_root: Path, manifest: Manifest) -> int:
    keep = {str(Path(cache_root) / e.cache) for e in manifest.entries if e.ok and e.cache}
    return sum(1 for p in (Path(cache_root) / CLIPS_DIR).rglob("*.npz") if str(p) not in keep)


def build_summary(manifest: Manifest) -> str:
    """The few lines printed at the end of a build."""
    s = manifest.stats
    how = f"{s.get('workers')} workers" if s.get("workers") else "all from cache"
    lines = [f"prepared {len(manifest.entries)} videos in {s.get('seconds', 0):.1f}s "
             f"({how}): ok {s.get('ok', 0)}, skipped {s.get('skipped', 0)}; "
             f"cache hits {s.get('hits', 0)}, misses {s.get('misses', 0)}"]
    padded = sum(e.padded for e in manifest.ok_entries)
    if padded:
        lines.append(f"  padded (shorter than {manifest.settings.get('frames')} frames): {padded}")
    reasons = Counter(e.reason for e in manifest.skipped_entries)
    if reasons:
        lines.append("  skipped by reason: " + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())))
    shown = 0
    for e in manifest.skipped_entries:
        if shown == MAX_LISTED:
            lines.append(f"  ... {len(manifest.skipped_entries) - shown} more skipped (edge-data info CACHE --skipped)")
            break
        lines.append(f"  skipped [{e.reason}] {e.path}" + (f": {e.message.split(': ', 1)[-1]}" if e.message else ""))
        shown += 1
    for k, g in enumerate(manifest.ignored):
        if k == MAX_LISTED:
            lines.append(f"  ... {len(manifest.ignored) - k} more ignored (edge-data info CACHE --skipped)")
            break
        lines.append(f"  ignored [{g['reason']}] {g['path']}" + (f" ({g['detail']})" if g.get("detail") else ""))
    if "pruned" in s:
        lines.append(f"  pruned {s['pruned']} stale cached clips")
    lines.append(f"manifest: {manifest.path}")
    return "\n".join(lines)
