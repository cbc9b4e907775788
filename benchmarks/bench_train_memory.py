"""Peak memory and throughput of training from disk (``--stream-data``) vs the in-memory path.

Writes a synthetic uint8 clip cache (default 4,000 clips of 8 x 128 x 128: a moving square per clip,
``manifest.json`` + ``.npz`` exactly as ``edge-data prepare`` writes them), then in a fresh process
per measurement trains lrcn-edge for a fixed number of steps and reports peak RSS
(``resource.getrusage``, includes TensorFlow itself) and clips/s:

* ``stream``: all clips, read from the cache on demand (tf.data, parallel decode + augmentation);
* ``memory``: today's path, the whole split loaded as float32 first, on a subset that fits
  (``--memory-clips``, default 400); its RSS grows with N x T x H x W x 3 x 4 bytes.

    python benchmarks/bench_train_memory.py                       # 4000 clips, writes results/train_memory.md
    python benchmarks/bench_train_memory.py --clips 500 --steps 20 --out /tmp/m.md
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from benchmarks.results_io import write_results  # noqa: E402  (after the path fix)
DEFAULT_OUT = REPO / "benchmarks" / "results" / "train_memory.md"


def write_cache(root: Path, clips: int, frames: int, size: int, classes: int = 4) -> Path:
    """A prepared-cache folder of synthetic clips (skipped when it already holds ``clips`` clips)."""
    import numpy as np

    from train.data.manifest import Entry, Manifest

    man = root / "manifest.json"
    if man.is_file() and len(json.loads(man.read_text())["entries"]) == clips:
        return root
    (root / "clips").mkdir(parents=True, exist_ok=True)
    names = [f"Class{c}" for c in range(classes)]
    rng = np.random.default_rng(0)
    entries = []
    for i in range(clips):
        c = i % classes
        x = rng.integers(0, 40, (frames, size, size, 3), dtype=np.uint8)
        row = int(rng.integers(0, size - 16))
        for t in range(frames):
            col = (t * (size - 16) // max(1, frames - 1)) if c % 2 == 0 else (size - 16 - t * (size - 16) // max(1, frames - 1))
            x[t, row:row + 16, col:col + 16] = 200 + 10 * c
        rel = f"clips/{i:06d}.npz"
        np.savez_compressed(root / rel, frames=x)
        entries.append(Entry(path=f"{names[c]}/clip{i:06d}.avi", label=names[c], label_index=c,
                             group=f"{names[c]}/g{i // classes % 25:02d}", frames=frames, cache=rel, key=f"{i:06d}"))
        if i % 500 == 0:
            print(f"  cache: {i}/{clips} clips", file=sys.stderr, flush=True)
    m = Manifest(entries=entries, classes=names, settings={"frames": frames, "size": [size, size],
                                                            "short_policy": "pad"}, flip_safe=False)
    m.save(root)
    return root


def measure(cache: Path, mode: str, clips: int, steps: int, batch: int) -> dict:
    """Run in a child process: train ``steps`` steps, return peak RSS and clips/s."""
    code = f"""
import json, os, resource, sys, time
sys.path.insert(0, {str(REPO)!r})
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
from train.data import load_manifest, load_clips, AugmentConfig
from train.data.stream import ClipSource
from train.models import build_model
from train.trainer import TrainStream
m = load_manifest({str(cache)!r}); entries = m.entries[:{clips}]
labels = np.array([e.label_index for e in entries]); eye = np.eye(len(m.classes), dtype=np.float32)
t0 = time.time()
x = ClipSource(m, entries) if {mode!r} == "stream" else load_clips(m, entries)[0]
load_s = time.time() - t0
s = TrainStream(x, eye[labels], {batch}, AugmentConfig(flip=False), seed=0)
model = build_model("lrcn-edge", num_classes=len(m.classes), frames=x.shape[1], size=x.shape[2:4])
ds = s.dataset()
model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)          # warm-up (graph building)
t1 = time.time()
model.fit(ds, steps_per_epoch={steps}, epochs=1, verbose=0)
dt = time.time() - t1
print(json.dumps({{"mode": {mode!r}, "clips": len(entries), "load_s": round(load_s, 1),
                  "clips_per_s": round({steps} * {batch} / dt, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}}))
"""
    r = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if r.returncode != 0:
        raise RuntimeError(f"{mode} measurement failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  python benchmarks/bench_train_memory.py --clips 4000 --steps 40")
    ap.add_argument("--work", default=str(REPO / "work" / "bench" / "train-memory"), help="cache folder parent")
    ap.add_argument("--clips", type=int, default=4000, help="synthetic clips in the cache (default 4000)")
    ap.add_argument("--memory-clips", type=int, default=400, help="clips for the in-memory comparison (default 400)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=40, help="timed training steps per measurement (default 40)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown result (.json beside it)")
    args = ap.parse_args(argv)
    cache = write_cache(Path(args.work) / f"cache-{args.clips}-{args.frames}x{args.size}", args.clips,
                        args.frames, args.size)
    rows = [measure(cache, "stream", args.clips, args.steps, args.batch_size),
            measure(cache, "stream", args.memory_clips, args.steps, args.batch_size),
            measure(cache, "memory", args.memory_clips, args.steps, args.batch_size)]
    per_clip_mb = args.frames * args.size * args.size * 3 * 4 / 2 ** 20
    md = ["# Training memory: streamed from the cache vs loaded into memory", "",
          f"Command: `python benchmarks/bench_train_memory.py --clips {args.clips} --memory-clips {args.memory_clips} "
          f"--frames {args.frames} --size {args.size} --steps {args.steps} --batch-size {args.batch_size}`", "",
          f"lrcn-edge, {args.frames} x {args.size} x {args.size} clips, batch {args.batch_size}, {args.steps} timed steps, "
          f"augmentation on; {os.cpu_count()} shared cores. Peak RSS includes TensorFlow (~1 GB).", "",
          "| path | clips | peak RSS (MB) | clips/s | load before training (s) |", "|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['mode']} | {r['clips']} | {r['peak_rss_mb']} | {r['clips_per_s']} | {r['load_s']} |")
    md += ["", f"The in-memory path needs {per_clip_mb:.2f} MB of float32 per clip: {args.clips} clips would be "
               f"{per_clip_mb * args.clips / 1024:.2f} GB before training starts."]
    write_results(args.out, md, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
