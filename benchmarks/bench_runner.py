"""Benchmark ``edge-run`` on a live source, and the streaming saving per prediction.

1. End to end: ``edge-run --device cpu test://?width=640&height=480&fps=30 --stride 1`` (a live
   30 fps 640x480 source, a prediction on every frame) with an int8 lrcn-edge bundle, in its own
   process, for ``--seconds``. Targets: >= 29.5 fps processed, < 1 % frames dropped,
   capture-to-prediction p99 <= 20 ms.
2. Per-prediction cost, measured on the same bundle's backends: full clip (T encoder calls + head,
   and the bundle's ``full`` artifact) vs streaming (1 encoder call + head).

The bundle: ``--model DIR``, else ``work/bundles/lrcn-edge`` (``make demo`` writes it) when it
holds an int8 streaming bundle. No TensorFlow here: this runs on the devices too.

    python -m benchmarks.bench_runner                  # table
    python -m benchmarks.bench_runner --json out.json  # + machine-readable results
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = "test://?pattern=ball&width=640&height=480&fps=30"
TARGETS = {"fps": 29.5, "dropped_pct": 1.0, "c2p_p99_ms": 20.0}
DEFAULT_BUNDLE = ROOT / "work" / "bundles" / "lrcn-edge"


class NoBundle(Exception):
    """No bundle to benchmark; the message says how to get one."""


def find_bundle(model: Optional[str]) -> str:
    """``--model``, else the demo bundle when it is an int8 streaming (lrcn-edge) bundle."""
    from edge.bundle import load

    if model:
        return model
    if (DEFAULT_BUNDLE / "bundle.json").exists():
        b = load(str(DEFAULT_BUNDLE))
        if b.is_streaming and b.find(part="encoder", format="tflite", precision="int8"):
            return str(DEFAULT_BUNDLE)
    raise NoBundle("no int8 lrcn-edge bundle: pass --model DIR (edge-quantize output), or run `make demo` "
                   "(writes {0})".format(DEFAULT_BUNDLE))


def run_edge_run(bundle: str, source: str, seconds: float, threads: Optional[int], workdir: str) -> dict:
    summary = os.path.join(workdir, "summary.json")
    jsonl = os.path.join(workdir, "predictions.jsonl")
    cmd = [sys.executable, "-m", "edge.cli", "--device", "cpu", "--model", bundle, source, "--headless",
           "--stride", "1", "--duration", str(seconds), "--summary", summary, "--jsonl", jsonl, "-q"]
    if threads:
        cmd += ["--threads", str(threads)]
    t0 = time.time()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"edge-run failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    with open(summary) as f:
        s = json.load(f)
    s["_wall_s"] = time.time() - t0
    s["_cpu_s"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)   # all threads, incl. start-up
    s["_command"] = "edge-run " + " ".join(cmd[3:])
    return s


CONTROL = """
import json, sys, time
from edge.sources import open_source, SourceConfig
src = open_source(sys.argv[1], SourceConfig.sized(128, 128))
t0, n = time.monotonic(), 0
while time.monotonic() - t0 < float(sys.argv[2]):
    f = src.read(0.5)
    n += f is not None
src.close()
print(json.dumps({"frames": n, "dropped": src.stats.dropped}))
"""


def start_control(source: str, seconds: float) -> subprocess.Popen:
    """A bare consumer of the same live source (pull + copy, no model) running alongside edge-run:
    the drops it sees are what the machine's scheduling costs, whatever the runner does."""
    return subprocess.Popen([sys.executable, "-c", CONTROL, source, str(seconds)], cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)


def per_prediction_cost(bundle_dir: str, repeats: int = 30, threads: Optional[int] = None) -> Dict[str, float]:
    """Median ms per prediction: streaming (1 encode + head) vs full clip (T encodes + head, full model)."""
    from benchmarks.latency import median_ms
    from edge.backends import BackendOptions, load_backend
    from edge.bundle import load

    b = load(bundle_dir)
    T, h, w = b.input.frames, b.input.height, b.input.width
    opts = BackendOptions(threads=threads)
    enc = load_backend(b.path(b.find(part="encoder", format="tflite", precision="int8")[0]), options=opts)
    head = load_backend(b.path(b.find(part="head", format="tflite", precision="int8")[0]), options=opts)
    rng = np.random.default_rng(0)
    frame = rng.random((1, h, w, 3), dtype=np.float32)
    feats = rng.random((1, T, int(np.prod(enc.output.shape[1:]))), dtype=np.float32)

    def med(fn):
        return median_ms(fn, repeats)

    out = {"encoder_ms": med(lambda: enc.infer(frame)), "head_ms": med(lambda: head.infer(feats))}
    out["streaming_ms"] = med(lambda: (enc.infer(frame), head.infer(feats)))
    out["split_full_clip_ms"] = med(lambda: ([enc.infer(frame) for _ in range(T)], head.infer(feats)))
    full = b.find(part="full", format="tflite", precision="int8")
    if full:
        fm = load_backend(b.path(full[0]), options=opts)
        clip = rng.random((1, T, h, w, 3), dtype=np.float32)
        out["full_model_ms"] = med(lambda: fm.infer(clip))
    out["speedup_vs_split"] = out["split_full_clip_ms"] / out["streaming_ms"]
    return out


def cpu_pressure() -> Optional[str]:
    """/proc/pressure/cpu 'some' line: the share of time runnable tasks waited for a CPU."""
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().strip()
    except OSError:
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_runner", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m benchmarks.bench_runner --seconds 30\n"
               "  python -m benchmarks.bench_runner --model work/bundles/lrcn-edge --json bench.json")
    p.add_argument("--model", help="int8 lrcn-edge bundle (default: work/bundles/lrcn-edge, from make demo)")
    p.add_argument("--source", default=DEFAULT_SOURCE, help=f"live URI (default {DEFAULT_SOURCE})")
    p.add_argument("--seconds", type=float, default=20.0, help="edge-run duration (default 20)")
    p.add_argument("--threads", type=int, help="CPU threads for the backends")
    p.add_argument("--json", help="also write results as JSON to this file")
    args = p.parse_args(argv)
    if args.seconds <= 0:
        print("bench_runner: error: --seconds must be > 0", file=sys.stderr)
        return 2
    try:
        bundle = find_bundle(args.model)
    except NoBundle as e:
        print("bench_runner: error: {0}".format(e), file=sys.stderr)
        return 2
    control = start_control(args.source, args.seconds + 1.0)
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as wd:
        s = run_edge_run(bundle, args.source, args.seconds, args.threads, wd)
    try:
        ctl = json.loads(control.communicate(timeout=60)[0].strip().splitlines()[-1])
        ctl["dropped_pct"] = 100.0 * ctl["dropped"] / max(1, ctl["frames"] + ctl["dropped"])
    except Exception as e:  # the control is informative only
        ctl = {"error": str(e)}
    cost = per_prediction_cost(bundle, threads=args.threads)
    c2p = s["latency_ms"]["capture_to_prediction"]
    res = {
        "bundle": bundle, "source": args.source, "seconds": args.seconds, "command": s["_command"],
        "frames": s["frames"], "predictions": s["predictions"], "dropped": s["dropped"],
        "dropped_pct": s["dropped_pct"], "fps": s["fps"], "reconnects": s["reconnects"],
        "c2p_p50_ms": c2p["p50_ms"], "c2p_p95_ms": c2p["p95_ms"], "c2p_p99_ms": c2p["p99_ms"],
        "stages": s["latency_ms"], "sampling": s["sampling"], "cost_per_prediction": cost,
        "cpu_s": s["_cpu_s"], "wall_s": s["_wall_s"], "control_bare_consumer": ctl,
        "cpu_ms_per_frame": 1e3 * s["_cpu_s"] / max(1, s["frames"]),
        "cpu_pct_of_one_core": 100.0 * s["_cpu_s"] / max(1e-9, s["_wall_s"]),
        "load_avg": os.getloadavg(), "cpus": os.cpu_count(), "cpu_pressure": cpu_pressure(),
    }
    res["pass"] = {"fps": res["fps"] >= TARGETS["fps"], "dropped_pct": res["dropped_pct"] < TARGETS["dropped_pct"],
                   "c2p_p99_ms": res["c2p_p99_ms"] <= TARGETS["c2p_p99_ms"]}
    ok = lambda k: "PASS" if res["pass"][k] else "FAIL"  # noqa: E731
    print(f"edge-run --device cpu {args.source}  ({args.seconds:.0f} s, stride 1, bundle {bundle})")
    print(f"{'metric':<34}{'value':>12}  target")
    print(f"{'processed fps':<34}{res['fps']:>12.2f}  >= {TARGETS['fps']}   {ok('fps')}")
    print(f"{'dropped frames':<34}{res['dropped_pct']:>11.2f}%  < {TARGETS['dropped_pct']}%    {ok('dropped_pct')}"
          f"   ({res['dropped']} of {res['frames'] + res['dropped']})")
    print(f"{'capture-to-prediction p50/p95 ms':<34}{res['c2p_p50_ms']:>6.2f}/{res['c2p_p95_ms']:<5.2f}")
    print(f"{'capture-to-prediction p99 ms':<34}{res['c2p_p99_ms']:>12.2f}  <= {TARGETS['c2p_p99_ms']}   {ok('c2p_p99_ms')}")
    print(f"{'predictions':<34}{res['predictions']:>12d}")
    print("per stage (p50 / p99 ms): " + ", ".join(
        f"{k} {v['p50_ms']:.2f}/{v['p99_ms']:.2f}" for k, v in s["latency_ms"].items() if v["count"]))
    print(f"per prediction: streaming (1 encoder + head) {cost['streaming_ms']:.2f} ms vs full clip "
          f"({s['sampling']['frames']} encoder calls + head) {cost['split_full_clip_ms']:.2f} ms "
          f"= {cost['speedup_vs_split']:.1f}x less"
          + (f"; full-clip model {cost['full_model_ms']:.2f} ms" if "full_model_ms" in cost else "")
          + f" (encoder {cost['encoder_ms']:.3f} ms/frame, head {cost['head_ms']:.3f} ms)")
    print(f"edge-run CPU time: {res['cpu_s']:.2f} s over {res['wall_s']:.1f} s = {res['cpu_pct_of_one_core']:.0f}% "
          f"of one core, {res['cpu_ms_per_frame']:.2f} ms per frame (capture + preprocess + inference + output, "
          f"incl. start-up)")
    if "dropped_pct" in ctl:
        print(f"control: a bare consumer of the same source (no model), run alongside, dropped "
              f"{ctl['dropped_pct']:.2f}% ({ctl['dropped']} of {ctl['frames'] + ctl['dropped']})")
    print(f"machine: {os.cpu_count()} CPUs, load average {res['load_avg'][0]:.2f}, cpu pressure "
          f"{res['cpu_pressure'] or 'n/a'} (drops and p99 depend on what else runs)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0 if all(res["pass"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
