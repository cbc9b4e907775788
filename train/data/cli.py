"""``edge-data``: prepare a clip cache, generate the synthetic set, inspect splits and manifests."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

EPILOG = """\
examples:
  # decode a UCF50-style folder (<Class>/<video>) into a cache of 20x64x64 clips, all cores
  edge-data prepare ../shared/data/ucf101-mini --out work/cache/ucf-mini
  # longer clips, skip videos shorter than 30 frames instead of padding them
  edge-data prepare DATA --out CACHE --frames 30 --size 112 --short skip --workers 4
  # the motion-only synthetic set (not flip safe: left/right are classes), then prepare it
  edge-data synth work/synth --classes 6 --clips-per-class 20 --seed 0
  edge-data prepare work/synth --out work/cache/synth
  # how a cache would be split (group-aware 75/25, 10%% of train for validation)
  edge-data split work/cache/synth --seed 0
  edge-data split work/cache/ucf --official ../shared/data/ucf101-splits/trainlist01.txt \\
                                          ../shared/data/ucf101-splits/testlist01.txt
  edge-data split work/cache/train --test-cache work/cache/test
  # what a cache holds (kept, skipped and why, per class)
  edge-data info work/cache/ucf-mini
"""


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _positive(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}")
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}")
    return n


def _size(v: str):
    try:
        parts = [int(p) for p in v.lower().replace("x", ",").split(",") if p]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or HxW, got {v!r}")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"size must be N or HxW, got {v!r}")
    return tuple(parts)


def _fraction(v: str) -> float:
    try:
        f = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {v!r}")
    if not 0.0 <= f < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {v!r}")
    return f


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-data", formatter_class=_Formatter, epilog=EPILOG,
        description="Video data for training: decode a <Class>/<video> folder once into a cache of "
                    "fixed-size clips (sampled exactly like the device samples), split it without "
                    "putting one group (same actors/scene) on two sides, and generate a synthetic "
                    "dataset whose classes differ only by motion.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    pr = sub.add_parser("prepare", formatter_class=_Formatter, epilog=EPILOG,
                        help="decode a video folder into a clip cache + manifest.json",
                        description="Walk DATA_DIR/<Class>/<video>, sample FRAMES frames evenly over each "
                                    "video (the paper's indices), resize to SIZE, and cache each clip as "
                                    "uint8 .npz in parallel processes. Bad files are skipped and listed with "
                                    "a reason; a re-run reuses every unchanged clip.")
    pr.add_argument("data_dir", metavar="DATA_DIR", help="folder with one sub-folder per class")
    pr.add_argument("--out", "-o", required=True, metavar="CACHE_DIR", help="cache folder (created)")
    pr.add_argument("--frames", type=_positive, default=20, help="frames per clip")
    pr.add_argument("--size", type=_size, default=(64, 64), help="frame size: N or HxW")
    pr.add_argument("--short", choices=["pad", "skip"], default="pad",
                    help="videos shorter than FRAMES: repeat the last frame, or skip the video")
    pr.add_argument("--workers", type=_positive, default=None,
                    help="decoding processes (default: usable cores; 1 = no subprocesses)")
    pr.add_argument("--prune", action="store_true", help="delete cached clips no entry uses any more")
    flip = pr.add_mutually_exclusive_group()
    flip.add_argument("--flip-safe", dest="flip_safe", action="store_true", default=None,
                      help="mirroring keeps labels (overrides DATA_DIR/dataset.json)")
    flip.add_argument("--not-flip-safe", dest="flip_safe", action="store_false",
                      help="mirroring changes labels (left/right classes): training must not flip")
    pr.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    sy = sub.add_parser("synth", formatter_class=_Formatter, epilog=EPILOG,
                        help="write the motion-only synthetic dataset (real AVI files)",
                        description="Write K classes x M clips as MJPG/AVI in UCF50 layout "
                                    "(<Class>/v_<Class>_gNN_cNN.avi). Classes: MoveLeft, MoveRight, Grow, Shrink, "
                                    "BounceUpDown, SwayLeftRight, RotateCW, RotateCCW (the first K). "
                                    "A single frame says nothing about the class; the data is NOT flip safe.")
    sy.add_argument("out_dir", metavar="OUT_DIR")
    sy.add_argument("--classes", type=_positive, default=4, help="number of classes, 1..8")
    sy.add_argument("--clips-per-class", type=_positive, default=12)
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--frames", type=_positive, default=40, help="frames per video")
    sy.add_argument("--size", type=_positive, default=64, help="frame side in pixels (square)")
    sy.add_argument("--groups", type=_positive, default=4, help="groups (scenes) per class, like UCF's gNN")
    sy.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    sp = sub.add_parser("split", formatter_class=_Formatter, epilog=EPILOG,
                        help="print the train/val/test split of a prepared cache",
                        description="Show how a prepared cache splits: group-aware stratified (default), "
                                    "official lists (--official), or a separately prepared test folder "
                                    "(--test-cache). No group is ever on two sides.")
    sp.add_argument("cache_dir", metavar="CACHE_DIR")
    src = sp.add_mutually_exclusive_group()
    src.add_argument("--official", nargs=2, metavar=("TRAINLIST", "TESTLIST"),
                     help="UCF-style lists, e.g. trainlist01.txt testlist01.txt")
    src.add_argument("--test-cache", metavar="TEST_CACHE_DIR", help="a second prepared cache used as test set")
    sp.add_argument("--test-fraction", type=_fraction, default=0.25)
    sp.add_argument("--val-fraction", type=_fraction, default=0.10)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--json", metavar="OUT", help="also write the split (paths per side) as JSON")

    inf = sub.add_parser("info", formatter_class=_Formatter, epilog=EPILOG,
                         help="summarise a prepared cache's manifest",
                         description="Print kept/skipped videos (with reasons), classes, cache statistics "
                                     "and the frame interval a device should sample at.")
    inf.add_argument("cache_dir", metavar="CACHE_DIR")
    inf.add_argument("--skipped", action="store_true", help="list every skipped video with its message")
    return p


def _safe(text: str) -> str:
    """File names that are not UTF-8 (surrogate escapes) print as backslash escapes, never crash."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _print(text: str) -> None:
    print(_safe(text))


def _fail(msg: str) -> int:
    print(f"edge-data: error: {_safe(msg)}", file=sys.stderr)
    return 2


def cmd_prepare(a) -> int:
    from .builder import build_summary, prepare, stale_files

    if not os.path.isdir(a.data_dir):
        return _fail(f"{a.data_dir}: not a folder")
    try:
        m = prepare(a.data_dir, a.out, frames=a.frames, size=a.size, short_policy=a.short,
                    workers=a.workers, progress=not a.quiet, prune=a.prune, flip_safe=a.flip_safe)
    except (OSError, ValueError) as e:
        return _fail(str(e))
    _print(build_summary(m))
    if not a.prune:
        n = stale_files(m.cache_dir, m)
        if n:
            print(f"  {n} cached clips are no longer used (--prune deletes them)")
    if not m.ok_entries:
        print("edge-data: warning: no usable clip", file=sys.stderr)
        return 1
    return 0


def cmd_synth(a) -> int:
    import time

    from .synth import synthesize

    t0 = time.perf_counter()
    try:
        out = synthesize(a.out_dir, classes=a.classes, clips_per_class=a.clips_per_class, seed=a.seed,
                         frames=a.frames, size=a.size, groups=a.groups, progress=not a.quiet)
    except (OSError, ValueError, RuntimeError) as e:
        return _fail(str(e))
    print(f"wrote {a.classes} classes x {a.clips_per_class} clips ({a.frames} frames, {a.size}x{a.size}, "
          f"{a.groups} groups/class, seed {a.seed}) to {out} in {time.perf_counter() - t0:.1f}s")
    print("note: not flip safe (dataset.json says flip_safe: false); next: "
          f"edge-data prepare {out} --out CACHE_DIR")
    return 0


def cmd_split(a) -> int:
    from .manifest import ManifestError, load_manifest
    from .splits import LeakageError, folder_split, group_split, official_split

    try:
        m = load_manifest(a.cache_dir)
        if a.official:
            for f in a.official:
                if not os.path.isfile(f):
                    return _fail(f"{f}: no such split list")
            s = official_split(m, a.official[0], a.official[1], val_fraction=a.val_fraction, seed=a.seed)
        elif a.test_cache:
            s = folder_split(m, load_manifest(a.test_cache), val_fraction=a.val_fraction, seed=a.seed)
        else:
            s = group_split(m.entries, test_fraction=a.test_fraction, val_fraction=a.val_fraction,
                            seed=a.seed, classes=m.classes)
    except (ManifestError, LeakageError, ValueError, OSError) as e:
        return _fail(str(e))
    _print(s.summary())
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(s.to_dict(), f, indent=1)
        print(f"wrote {a.json}")
    return 0


def cmd_info(a) -> int:
    from .manifest import ManifestError, load_manifest

    try:
        m = load_manifest(a.cache_dir)
    except ManifestError as e:
        return _fail(str(e))
    _print(m.summary())
    if a.skipped:
        for e in m.skipped_entries:
            _print(f"  [{e.reason}] {e.path}: {e.message}")
        for g in m.ignored:
            _print(f"  [{g['reason']}] {g['path']}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"prepare": cmd_prepare, "synth": cmd_synth, "split": cmd_split, "info": cmd_info}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("edge-data: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `edge-data info CACHE | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
