"""Clips/s of ``edge-data prepare`` against the paper's frames_extraction loop, on the same clips.

The paper (per clip): open the video, and for each of the N frames ``cap.set(CAP_PROP_POS_FRAMES,
i * skip)`` + ``cap.read()`` + ``cv2.resize`` + ``/ 255``, one process, every run of training.
``prepare`` decodes forward once with grab/retrieve (``edge.video.read_clip``) in a process pool and
caches uint8 clips; a warm run only checks the cache.

Measured in one run on the same files (read once beforehand, so every method sees them in the page
cache): paper loop; prepare cold with 1 worker (the decoding strategy alone); prepare cold with the
default workers; prepare warm; prepare warm + ``load_clips`` (float32 arrays in memory, what the
paper's loop produces). Targets (issue 2): cold >= 3x, warm cache >= 50x, judged on ``prepare``
clips/s; warm + load is printed as the stricter view (what a training run waits for).

    python -m benchmarks.bench_data                       # ../shared/data/ucf101-mini
    python -m benchmarks.bench_data --data DIR --json work/reports/bench_data.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ucf101-mini"
TARGET_COLD, TARGET_WARM = 3.0, 50.0


def paper_frames_extraction(video_path: str, sequence_length: int = 20, height: int = 64, width: int = 64):
    """The paper's loop, as published (seek per frame, resize, /255)."""
    import cv2

    frames_list = []
    video_reader = cv2.VideoCapture(video_path)
    video_frames_count = int(video_reader.get(cv2.CAP_PROP_FRAME_COUNT))
    skip_frames_window = max(int(video_frames_count / sequence_length), 1)
    for frame_counter in range(sequence_length):
        video_reader.set(cv2.CAP_PROP_POS_FRAMES, frame_counter * skip_frames_window)
        success, frame = video_reader.read()
        if not success:
            break
        resized_frame = cv2.resize(frame, (height, width))
        normalized_frame = resized_frame / 255
        frames_list.append(normalized_frame)
    video_reader.release()
    return frames_list


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def run(data: Path, frames: int = 20, size: int = 64, workers: Optional[int] = None,
        limit: Optional[int] = None, log=print) -> dict:
    from train.data import load_clips, prepare
    from train.data.builder import _default_workers
    from train.data.layout import walk_dataset

    _, videos, _ = walk_dataset(data)
    if limit:
        videos = videos[:limit]
    if not videos:
        raise SystemExit(f"bench_data: no videos under {data}")
    work = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        subset = work / "data"
        if limit:
            for v in videos:
                dst = subset / v.rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(v.path, dst)
        else:
            subset = data
        for v in videos:                      # page cache: every method reads warm files
            Path(v.path).read_bytes()
        n = len(videos)
        load0 = os.getloadavg()
        log(f"{n} clips from {data}, {frames} frames at {size}x{size}; load average {load0[0]:.2f}")

        t_paper, out = _timed(lambda: [paper_frames_extraction(v.path, frames, size, size) for v in videos])
        short = sum(len(c) < frames for c in out)
        log(f"  paper loop: {t_paper:.2f}s")
        kw = dict(frames=frames, size=size, progress=False)
        t_cold1, m1 = _timed(lambda: prepare(subset, work / "cache1", workers=1, **kw))
        log(f"  prepare cold, 1 worker: {t_cold1:.2f}s")
        n_workers = workers or _default_workers()
        t_cold, m = _timed(lambda: prepare(subset, work / "cache", workers=n_workers, **kw))
        log(f"  prepare cold, {n_workers} workers: {t_cold:.2f}s")
        t_warm, mw = _timed(lambda: prepare(subset, work / "cache", workers=n_workers, **kw))
        assert mw.stats["hits"] == n and mw.stats["misses"] == 0, mw.stats

        def warm_and_load():
            mm = prepare(subset, work / "cache", workers=n_workers, **kw)
            return load_clips(mm, mm.ok_entries)

        t_warm_load, (x, _) = _timed(warm_and_load)
        load1 = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        ("paper loop (seek per frame, 1 process)", t_paper),
        ("prepare cold, 1 worker (grab/retrieve)", t_cold1),
        (f"prepare cold, {n_workers} workers", t_cold),
        ("prepare warm (cache check only)", t_warm),
        ("prepare warm + load_clips (float32 in memory)", t_warm_load),
    ]
    res = {
        "clips": n, "frames": frames, "size": size, "workers": n_workers, "data": str(data),
        "ok": len(m.ok_entries), "paper_short_clips": short, "loaded_shape": list(x.shape),
        "cpu_count": os.cpu_count(), "load_avg_before": round(load0[0], 2), "load_avg_after": round(load1[0], 2),
        "python": platform.python_version(), "machine": platform.machine(),
        "results": [{"method": name, "seconds": round(t, 4), "clips_per_s": round(n / t, 2),
                     "speedup": round(t_paper / t, 2)} for name, t in rows],
    }
    res["speedup_cold"] = round(t_paper / t_cold, 2)
    res["speedup_warm"] = round(t_paper / t_warm, 2)
    res["speedup_warm_load"] = round(t_paper / t_warm_load, 2)
    res["target_cold_met"] = res["speedup_cold"] >= TARGET_COLD
    res["target_warm_met"] = res["speedup_warm"] >= TARGET_WARM
    return res


def table(res: dict) -> str:
    w = max(len(r["method"]) for r in res["results"])
    lines = [f"{'method':<{w}}  {'seconds':>8}  {'clips/s':>9}  {'vs paper':>8}"]
    for r in res["results"]:
        lines.append(f"{r['method']:<{w}}  {r['seconds']:>8.3f}  {r['clips_per_s']:>9.1f}  {r['speedup']:>7.1f}x")
    lines.append(f"cold: {res['speedup_cold']:.1f}x (target >= {TARGET_COLD:g}x: "
                 f"{'met' if res['target_cold_met'] else 'NOT met'}); "
                 f"warm: {res['speedup_warm']:.1f}x (target >= {TARGET_WARM:g}x: "
                 f"{'met' if res['target_warm_met'] else 'NOT met'}); "
                 f"warm + load_clips: {res['speedup_warm_load']:.1f}x")
    lines.append(f"{res['clips']} clips, {res['cpu_count']} CPUs, {res['workers']} workers, load average "
                 f"{res['load_avg_before']} before / {res['load_avg_after']} after"
                 + (" (other work was running: numbers are pessimistic)" if res["load_avg_before"] > 0.5 else ""))
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_data", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Clips/s of edge-data prepare (cold and warm cache) vs the paper's seek-per-frame "
                    "frames_extraction loop, on the same clips in one run.",
        epilog="examples:\n  python -m benchmarks.bench_data\n"
               "  python -m benchmarks.bench_data --data ../shared/data/ucf101-mini --json work/bench_data.json\n"
               "  python -m benchmarks.bench_data --limit 24 --workers 2")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"video folder (default {DEFAULT_DATA})")
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--workers", type=int, default=None, help="prepare workers (default: usable cores)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N clips")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    a = p.parse_args(argv)
    if not a.data.is_dir():
        print(f"bench_data: error: {a.data}: not a folder (the real clips live in ../shared/data)", file=sys.stderr)
        return 2
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    res = run(a.data, a.frames, a.size, a.workers, a.limit, log=lambda s: print(s, file=sys.stderr))
    print(table(res))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1), encoding="utf-8")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
