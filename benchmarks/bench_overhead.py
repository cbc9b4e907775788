"""Honesty check: is edge-bench's per-clip latency the model's, or the harness's?

Times the float TFLite model of a bundle two ways, side by side in one process:

  A. edge-bench's path: ``benchmarks.latency.time_calls`` around ``Backend.infer(x)``, exactly the
     loop edge-bench runs (per call: LSTM state reset, the float->tensor copy, invoke, output copy,
     two clock reads; the steady-state samples after time_calls' own first call), and
  B. a bare loop: ``Interpreter.invoke()`` after ``Interpreter.invoke()`` on a second interpreter of
     the same model (input set once), each call between two ``perf_counter()`` reads (~0.1 us, far
     below a model call), and the whole loop timed too,

interleaved in rounds (A B, B A, A B ...) so that CPU frequency, cache state and the load of other
processes drift over both alike.

Which statistic decides. The harness adds a fixed amount of work per call; other processes add
preemption delays of whole milliseconds to random calls. On a quiet machine every statistic agrees.
On a busy one (this project's CI runs several trainings at once on 2 cores) the means and even the
medians of both sides swing by +-30% from run to run, while the lower quartile -- calls that no other
process interrupted -- is stable to ~1%. The verdict therefore compares the per-call **p25** of A
and B; p10, p50 and the ratio of means are printed next to it. Passes when the overhead is within
``--limit`` (10%) either way (exit 0); more fails (exit 1); a bare loop slower than edge-bench beyond
the limit can only be noise and is reported as inconclusive (exit 3). ``--json FILE`` writes it all.

  python -m benchmarks.bench_overhead --model work/bundles/lrcn-edge
  python -m benchmarks.bench_overhead --model path/to/model_float32.tflite --rounds 60
"""
import argparse
import json
import math
import os
import sys
import time
from typing import Optional

import numpy as np

VERDICT_QUANTILE = 25


def _pick_model(path: str) -> str:
    """A .tflite file, or the float32 TFLite artifact of a bundle (full model, else the encoder)."""
    if path.endswith(".tflite"):
        if not os.path.isfile(path):
            raise SystemExit(f"bench_overhead: {path}: no such file")
        return path
    from edge.bundle import BundleError, load
    try:
        b = load(path)
    except BundleError as e:
        raise SystemExit(f"bench_overhead: {e}")
    for part in ("full", "encoder"):
        arts = b.find(format="tflite", precision="float32", part=part)
        if arts:
            return b.path(arts[0])
    raise SystemExit(f"bench_overhead: {path}: no float32 TFLite artifact in the bundle")


def measure(model: str, rounds: int = 40, runs: int = 10, threads: Optional[int] = None,
            limit: float = 0.10) -> dict:
    from edge.backends import BackendOptions, load_backend
    from edge.backends.tflite import interpreter_class

    from .latency import RunPolicy, random_input, time_calls

    threads = threads or os.cpu_count() or 1
    be = load_backend(model, "tflite", BackendOptions(threads=threads))
    x = random_input(be.input_shape)
    Interpreter, _, runtime = interpreter_class()
    bare = Interpreter(model_path=model, num_threads=threads)
    bare.allocate_tensors()
    inp = bare.get_input_details()[0]
    bare.set_tensor(inp["index"], x.reshape(inp["shape"]).astype(inp["dtype"]))
    invoke = bare.invoke
    clock = time.perf_counter

    t0 = clock()
    n_warm = 0
    while n_warm < 5 or clock() - t0 < 0.4:  # warm both up (weight packing, caches, thread pools)
        be.infer(x)
        invoke()
        n_warm += 1
    est_ms = (clock() - t0) * 1e3 / (2 * n_warm)
    # each side of a round lasts >= ~20 ms, so both sides of a round see the same machine state
    runs = max(runs, int(math.ceil(20.0 / max(est_ms, 1e-3))))
    policy = RunPolicy(min_runs=runs, min_seconds=0.0, warmup_runs=0, warmup_min_seconds=0.0)

    a, b, b_loop = [], [], []
    for r in range(rounds):
        for who in (("A", "B") if r % 2 == 0 else ("B", "A")):
            if who == "A":  # exactly edge-bench's loop: time_calls around the same lambda
                a += time_calls(lambda: be.infer(x), policy).samples_ms
            else:
                s = []
                t_loop = clock()
                for _ in range(runs):
                    t = clock()
                    invoke()
                    s.append((clock() - t) * 1e3)
                b_loop.append((clock() - t_loop) * 1e3 / runs)
                b += s
    a, b = np.asarray(a), np.asarray(b)
    q = {p: (float(np.percentile(a, p)), float(np.percentile(b, p))) for p in (10, 25, 50)}
    ratio = {f"p{p}": av / bv - 1.0 for p, (av, bv) in q.items()}
    overhead = ratio[f"p{VERDICT_QUANTILE}"]
    # edge-bench cannot be faster than a bare loop around the same invoke(): a clearly negative
    # overhead is measurement noise, not a result either way
    verdict = "pass" if abs(overhead) <= limit else ("fail" if overhead > limit else "inconclusive")
    return {"model": model, "runtime": runtime, "threads": threads, "rounds": rounds, "runs_per_round": runs,
            "edge_bench_mean_ms": float(a.mean()), "bare_invoke_mean_ms": float(np.mean(b_loop)),
            "edge_bench_ms": {f"p{p}": v[0] for p, v in q.items()},
            "bare_invoke_ms": {f"p{p}": v[1] for p, v in q.items()},
            "overhead_by_quantile": ratio, "overhead_of_means": float(a.mean() / np.mean(b_loop) - 1.0),
            "statistic": f"p{VERDICT_QUANTILE}", "overhead": overhead,
            "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "limit": limit, "verdict": verdict, "passed": verdict == "pass"}


def format_result(r: dict) -> str:
    e, b, o = r["edge_bench_ms"], r["bare_invoke_ms"], r["overhead_by_quantile"]
    lines = [
        f"model: {r['model']} ({r['runtime']}, {r['threads']} threads, {r['rounds']} interleaved rounds x "
        f"{r['runs_per_round']} calls per side)",
        "                         p10        p25        p50        mean",
        f"  edge-bench infer()  {e['p10']:9.4f}  {e['p25']:9.4f}  {e['p50']:9.4f}  {r['edge_bench_mean_ms']:9.4f} ms",
        f"  bare invoke() loop  {b['p10']:9.4f}  {b['p25']:9.4f}  {b['p50']:9.4f}  {r['bare_invoke_mean_ms']:9.4f} ms",
        f"  overhead            {o['p10']:+9.2%}  {o['p25']:+9.2%}  {o['p50']:+9.2%}  {r['overhead_of_means']:+9.2%}",
        f"  verdict on {r['statistic']}: {r['overhead']:+.2%} (limit {r['limit']:.0%}): {r['verdict'].upper()}",
    ]
    if r.get("load_avg") and r["load_avg"][0] > 0.5 * (os.cpu_count() or 1):
        lines.append(f"  note: load average {r['load_avg'][0]:.2f} on {os.cpu_count()} cores: means and medians "
                     f"include other processes' preemptions; the lower quartile does not")
    if r["verdict"] == "inconclusive":
        lines.append("  the bare loop measured slower than edge-bench beyond the limit: noise; rerun on a quieter machine")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_overhead", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="bundle dir (its float32 TFLite artifact) or a .tflite file")
    p.add_argument("--rounds", type=int, default=40, help="interleaved rounds (default 40)")
    p.add_argument("--runs", type=int, default=10,
                   help="calls per side per round (default 10; raised so that a side lasts >= 20 ms)")
    p.add_argument("--threads", type=int, default=None, help="interpreter threads (default: all cores)")
    p.add_argument("--limit", type=float, default=0.10, help="allowed relative overhead (default 0.10)")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    a = p.parse_args(argv)
    if a.rounds < 1 or a.runs < 1:
        print("bench_overhead: --rounds and --runs must be >= 1", file=sys.stderr)
        return 2
    r = measure(_pick_model(a.model), a.rounds, a.runs, a.threads, a.limit)
    print(format_result(r))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
    return {"pass": 0, "fail": 1}.get(r["verdict"], 3)


if __name__ == "__main__":
    sys.exit(main())
