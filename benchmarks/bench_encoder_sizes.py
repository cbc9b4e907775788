"""EfficientNet-Lite0 encoder at several input sizes: int8 TFLite size, ms/frame on this CPU, Edge TPU ops.

Post-training int8 with real frames for calibration (``--data``, first frames of a few clips; random
frames when absent), then ``edge`` TFLite backend timing (batch 1, ``--threads``) and the op-by-op
Edge TPU analysis of ``quantize.edgetpu_analyzer``. Accuracy per size comes from
``benchmarks/accuracy_ucf101_13.py``.

    python benchmarks/bench_encoder_sizes.py --sizes 96,128,160,224
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from benchmarks.results_io import write_results  # noqa: E402  (after the path fix)
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ucf101-13"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "encoder_sizes.md"


def calibration_frames(data: Path, size: int, n: int = 32):
    import numpy as np

    from edge.preprocess import preprocess_frame

    frames = []
    if data.is_dir():
        import cv2

        for video in sorted(data.glob("*/*.avi"))[::7][:n]:
            cap = cv2.VideoCapture(str(video))
            ok, f = cap.read()
            cap.release()
            if ok:
                frames.append(preprocess_frame(f, _spec(size), bgr=True))
    if not frames:
        frames = list(np.random.default_rng(0).random((n, size, size, 3)).astype(np.float32))
    return frames


def _spec(size: int):
    from edge.preprocess import InputSpec

    return InputSpec(frames=1, height=size, width=size)


def one(size: int, data: Path, threads: int, reps: int, work: Path) -> dict:
    import numpy as np

    from edge.backends import BackendOptions, load_backend
    from quantize.edgetpu_analyzer import analyze
    from quantize.formats import export_tflite_int8
    from train.models.efficientnet_lite import build_efficientnet_lite0

    enc = build_efficientnet_lite0((size, size))
    frames = calibration_frames(data, size)

    def rep():
        for f in frames:
            yield [f[None]]

    path = work / f"lite0_{size}_int8.tflite"
    export_tflite_int8(enc, str(path), representative=rep)
    b = load_backend(str(path), None, BackendOptions(threads=threads))
    x = frames[0][None].astype(np.float32)
    b.infer(x)
    t0 = time.perf_counter()
    for _ in range(reps):
        b.infer(x)
    ms = (time.perf_counter() - t0) / reps * 1000
    r = analyze(str(path))
    return {"size": size, "int8_bytes": path.stat().st_size, "ms_per_frame": round(ms, 2),
            "edgetpu_ops": f"{r.ops_on_tpu}/{r.ops_total}", "params": int(enc.count_params())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  python benchmarks/bench_encoder_sizes.py --sizes 96,128,160,224")
    ap.add_argument("--sizes", default="96,128,160,224")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="clips for calibration (default ../shared/data/ucf101-13)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lite0-sizes-") as d:
        for s in [int(v) for v in args.sizes.split(",")]:
            print(f"size {s} ...", file=sys.stderr, flush=True)
            rows.append(one(s, Path(args.data), args.threads, args.reps, Path(d)))
    md = ["# EfficientNet-Lite0 encoder (ImageNet weights) by input size: post-training int8", "",
          f"Command: `python benchmarks/bench_encoder_sizes.py --sizes {args.sizes} --threads {args.threads}`", "",
          "ms/frame: edge TFLite backend, batch 1, this x86 CPU (2 cores shared with other jobs: an upper bound).",
          "", "| input | params | int8 size (bytes) | int8 ms/frame | Edge TPU ops mapped (analyzer) |",
          "|---|---|---|---|---|"]
    md += [f"| {r['size']}x{r['size']} | {r['params']} | {r['int8_bytes']} | {r['ms_per_frame']} | {r['edgetpu_ops']} |"
           for r in rows]
    write_results(args.out, md, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
