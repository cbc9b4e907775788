"""Benchmark several cameras in one ``edge-run`` process: how many live cameras does this machine hold?

For N = 1, 2, 4, 6, 8 ... (``--counts``): ``edge-run --device cpu --model B --cameras N.yaml --stride K``
(the same as ``edge-run ... SRC SRC ...``; a cameras file runs N = 1 through the same scheduler) with N live ``test://?pattern=ball&width=640&height=480&fps=30`` sources (GStreamer, 640x480 YUY2
like a USB camera, scaled in the pipeline), the int8 lrcn-edge bundle, a prediction every trained
frame interval (``K = round(frame_interval_s * 30)``: each sampled frame encoded once, then the
head; ``--stride 1`` predicts on every frame), for ``--seconds``. Per camera: sustained FPS,
dropped frames, capture->prediction p99. N holds when every camera keeps >= 29.5 FPS with < 1 %
dropped. It also times the batched encoder (one call for N frames vs N calls) on this CPU.
Stops after the first N that does not hold (``--all`` runs every count).

    python -m benchmarks.bench_multicam                         # 1, 2, 4, 6, 8 cameras, 20 s each
    nice -n 10 python -m benchmarks.bench_multicam --counts 1,2,4 --seconds 30 --json out.json

No TensorFlow here: this runs on the devices too (``--device`` passes through).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

from benchmarks.bench_runner import NoBundle, cpu_pressure, find_bundle
from benchmarks.latency import median_ms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE = "test://?pattern=ball&width=640&height=480&fps=30"
TARGETS = {"fps": 29.5, "dropped_pct": 1.0}


def interval_stride(bundle_dir, fps=30.0):
    # type: (str, float) -> int
    """Frames between predictions at the bundle's trained frame interval (1 without one)."""
    from edge.bundle import load

    iv = load(bundle_dir).sampling.frame_interval_s
    return max(1, int(round(iv * fps))) if iv else 1


def run_cameras(bundle, n, source, seconds, stride, device, threads, workdir):
    # type: (str, int, str, float, int, str, Optional[int], str) -> dict
    """One edge-run with ``n`` cameras; its summary plus CPU time, wall time and the load average."""
    summary = os.path.join(workdir, "summary-{0}.json".format(n))
    cams = os.path.join(workdir, "cameras-{0}.yaml".format(n))
    with open(cams, "w") as f:   # a cameras file: the multi-camera scheduler for N = 1 too
        f.write("cameras:\n" + "".join("  - {{name: cam{0}, uri: '{1}'}}\n".format(i + 1, source) for i in range(n)))
    cmd = [sys.executable, "-m", "edge.cli", "--device", device, "--model", bundle, "--cameras", cams,
           "--headless", "--stride", str(stride), "--duration", str(seconds), "--summary", summary, "-q"]
    if threads:
        cmd += ["--threads", str(threads)]
    load0 = os.getloadavg()
    t0 = time.time()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit("edge-run with {0} cameras failed ({1}): {2}".format(n, proc.returncode,
                                                                            proc.stderr.strip()[-800:]))
    with open(summary) as f:
        s = json.load(f)
    s["_wall_s"] = time.time() - t0
    s["_cpu_s"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    s["_load"] = [load0, os.getloadavg()]
    s["_command"] = "edge-run " + " ".join(cmd[3:])
    return s


def camera_rows(s):
    # type: (dict) -> List[dict]
    """Per camera: fps, dropped %, c2p p50/p99 (a single-camera summary has no ``cameras``)."""
    cams = s.get("cameras") or {"cam1": s}
    rows = []
    for name, c in cams.items():
        c2p = (c.get("latency_ms") or {}).get("capture_to_prediction") or {}
        total = c["frames"] + c["dropped"]
        rows.append({"camera": name, "fps": c["fps"], "frames": c["frames"], "dropped": c["dropped"],
                     "dropped_pct": 100.0 * c["dropped"] / total if total else 0.0,
                     "predictions": c["predictions"], "c2p_p50_ms": c2p.get("p50_ms", 0.0),
                     "c2p_p99_ms": c2p.get("p99_ms", 0.0), "stop_reason": c["stop_reason"],
                     "queue_dropped": (c.get("source") or {}).get("queue_dropped", 0)})
    return rows


def verdict(rows):
    # type: (List[dict]) -> bool
    return all(r["fps"] >= TARGETS["fps"] and r["dropped_pct"] < TARGETS["dropped_pct"] for r in rows)


def batch_cost(bundle_dir, sizes=(2, 4, 8), repeats=50, threads=None):
    # type: (str, tuple, int, Optional[int]) -> Dict[str, float]
    """Median ms to encode N frames: one batched call vs N single calls (the int8 TFLite encoder)."""
    from edge.backends import BackendOptions, load_backend
    from edge.bundle import load
    from edge.classifier import ClipClassifier

    b = load(bundle_dir)
    part = {p: load_backend(b.path(b.find(part=p, format="tflite", precision="int8")[0]),
                            options=BackendOptions(threads=threads)) for p in ("encoder", "head")}
    clf = ClipClassifier(encoder=part["encoder"], head=part["head"])
    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        x = rng.random((n, b.input.height, b.input.width, 3), dtype=np.float32)
        for name, fn in (("batched", lambda: clf.encode_frames(x)),
                         ("single", lambda: [clf.encode_frame(f) for f in x])):
            out["{0}x{1}_ms".format(name, n)] = median_ms(fn, repeats)
    out["batching"] = clf.batch_note or "on"
    clf.close()
    return out


def print_table(results):
    print("{0:>7} {1:>7} {2:>13} {3:>12} {4:>15} {5:>10} {6:>11} {7:>6}".format(
        "cameras", "camera", "fps", "dropped", "c2p p50/p99 ms", "CPU %", "load avg", "holds"))
    for r in results:
        for i, row in enumerate(r["rows"]):
            first = i == 0
            print("{0:>7} {1:>7} {2:>13.2f} {3:>11.2f}% {4:>15} {5:>10} {6:>11} {7:>6}".format(
                r["cameras"] if first else "", row["camera"], row["fps"], row["dropped_pct"],
                "{0:.1f}/{1:.1f}".format(row["c2p_p50_ms"], row["c2p_p99_ms"]),
                "{0:.0f}".format(r["cpu_pct"]) if first else "",
                "{0:.1f}".format(r["load_avg"][1][0]) if first else "", ("yes" if r["holds"] else "NO") if first else ""))


def main(argv=None):
    # type: (Optional[List[str]]) -> int
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_multicam", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model", help="int8 lrcn-edge bundle (default: work/bundles/lrcn-edge, from make demo)")
    p.add_argument("--source", default=DEFAULT_SOURCE, help="live URI for every camera (default %(default)s)")
    p.add_argument("--counts", default="1,2,4,6,8", help="camera counts to try (default %(default)s)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds per run (default 20)")
    p.add_argument("--stride", type=int, help="predict every N frames (default: the trained frame interval)")
    p.add_argument("--device", default="cpu", help="edge-run --device (default cpu)")
    p.add_argument("--threads", type=int, help="CPU threads for the backends")
    p.add_argument("--all", action="store_true", help="run every count, also after one that does not hold")
    p.add_argument("--json", help="also write the results as JSON here")
    args = p.parse_args(argv)
    try:
        bundle = find_bundle(args.model)
        counts = [int(c) for c in args.counts.split(",") if c.strip()]
    except NoBundle as e:
        print("bench_multicam: error: {0}".format(e), file=sys.stderr)
        return 2
    except ValueError:
        print("bench_multicam: error: --counts must be numbers, e.g. 1,2,4", file=sys.stderr)
        return 2
    stride = args.stride or interval_stride(bundle)
    print("bench_multicam: bundle {0}, stride {1}, {2:.0f} s per run, load average {3:.1f} at start".format(
        bundle, stride, args.seconds, os.getloadavg()[0]), file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-multicam-") as wd:
        for n in counts:
            print("bench_multicam: {0} camera(s) ...".format(n), file=sys.stderr, flush=True)
            s = run_cameras(bundle, n, args.source, args.seconds, stride, args.device, args.threads, wd)
            rows = camera_rows(s)
            res = {"cameras": n, "rows": rows, "holds": verdict(rows), "cpu_s": s["_cpu_s"], "wall_s": s["_wall_s"],
                   "cpu_pct": 100.0 * s["_cpu_s"] / max(1e-9, s["_wall_s"]), "load_avg": s["_load"],
                   "sampling": s.get("sampling"), "command": s["_command"], "total_fps": s["fps"]}
            results.append(res)
            if not res["holds"] and not args.all:
                break
    held = [r["cameras"] for r in results if r["holds"]]
    cost = batch_cost(bundle, threads=args.threads)
    print_table(results)
    print("largest camera count that holds (every camera >= {0} fps, < {1}% dropped): {2}".format(
        TARGETS["fps"], TARGETS["dropped_pct"], max(held) if held else "none"))
    print("encoder, N frames: one batched call vs N calls (median ms): " + ", ".join(
        "{0}: {1:.2f} vs {2:.2f}".format(n, cost["batchedx{0}_ms".format(n)], cost["singlex{0}_ms".format(n)])
        for n in (2, 4, 8)) + " (batching {0})".format(cost["batching"]))
    print("load average now {0}; CPUs {1}; {2}".format(" ".join("{0:.2f}".format(x) for x in os.getloadavg()),
                                                        os.cpu_count(), cpu_pressure() or ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bundle": bundle, "source": args.source, "stride": stride, "seconds": args.seconds,
                       "results": results, "largest_holding": max(held) if held else 0, "encoder_batch": cost,
                       "targets": TARGETS, "cpus": os.cpu_count()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
