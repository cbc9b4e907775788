"""Soak test: run ``edge-run`` on a live ``test://`` source for minutes and watch for leaks and crashes.

Samples the child's resident memory (``VmRSS`` from /proc/<pid>/status) every ``--sample-every``
seconds. RSS growth = last sample minus the sample at the end of the warm-up (the first 10% of
the run, at least 20 s: model load, first clip fill and allocator pools settle there). Targets:
growth <= 5 MB, 0 crashes (non-zero exit or no summary). Also reports frames, dropped frames and
reconnects from edge-run's own summary. ``--reconnect-every N`` makes the test source end every N
frames so the reconnect path is soaked too.

    python -m benchmarks.soak                       # 10 minutes
    python -m benchmarks.soak --minutes 3 --json soak.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
RSS_TARGET_MB = 5.0


def rss_kb(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def growth_mb(samples: List[Tuple[float, int]], warmup_s: float) -> Tuple[float, float, float]:
    """(growth MB after warm-up, RSS at warm-up end MB, last RSS MB) from (t, kB) samples."""
    if not samples:
        return 0.0, 0.0, 0.0
    after = [s for s in samples if s[0] >= warmup_s] or samples[-1:]
    base = after[0][1] / 1024.0
    last = samples[-1][1] / 1024.0
    return last - base, base, last


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m benchmarks.soak --minutes 10\n"
               "  python -m benchmarks.soak --minutes 3 --reconnect-every 900 --json soak.json")
    p.add_argument("--minutes", type=float, default=10.0, help="run time (default 10)")
    p.add_argument("--model", help="int8 lrcn-edge bundle (default: work/bundles/lrcn-edge, from make demo)")
    p.add_argument("--source", default="test://?pattern=ball&width=640&height=480&fps=30")
    p.add_argument("--reconnect-every", type=int, default=0, help="end the test source every N frames")
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    p.add_argument("--threads", type=int)
    p.add_argument("--json", help="write results as JSON here")
    args = p.parse_args(argv)
    if args.minutes <= 0:
        print("soak: error: --minutes must be > 0", file=sys.stderr)
        return 2
    from .bench_runner import NoBundle, find_bundle
    try:
        bundle = find_bundle(args.model)
    except NoBundle as e:
        print("soak: error: {0}".format(e), file=sys.stderr)
        return 2
    source = args.source
    if args.reconnect_every:
        source += ("&" if "?" in source else "?") + f"num-buffers={args.reconnect_every}"
    seconds = args.minutes * 60.0
    warmup = max(20.0, 0.1 * seconds)
    with tempfile.TemporaryDirectory(prefix="soak-") as wd:
        summary_path = os.path.join(wd, "summary.json")
        jsonl = os.path.join(wd, "predictions.jsonl")
        cmd = [sys.executable, "-m", "edge.cli", "--device", "cpu", "--model", bundle, source, "--headless",
               "--duration", str(seconds), "--summary", summary_path, "--jsonl", jsonl, "-q"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
        samples: List[Tuple[float, int]] = []
        next_sample = 0.0
        while proc.poll() is None:
            now = time.monotonic() - t0
            if now >= next_sample:
                kb = rss_kb(proc.pid)
                if kb:
                    samples.append((now, kb))
                    if not args.json:
                        print(f"  t={now:6.0f}s  RSS {kb / 1024:.1f} MB", file=sys.stderr)
                next_sample += args.sample_every
            time.sleep(0.2)
        out, err = proc.communicate()
        summary = None
        if os.path.exists(summary_path):
            with open(summary_path) as f:
                summary = json.load(f)
        jsonl_lines = sum(1 for _ in open(jsonl)) if os.path.exists(jsonl) else 0
    crashes = int(proc.returncode != 0 or summary is None)
    grow, base, last = growth_mb(samples, warmup)
    res = {
        "minutes": args.minutes, "source": source, "bundle": bundle, "returncode": proc.returncode,
        "crashes": crashes, "rss_growth_mb": round(grow, 2), "rss_after_warmup_mb": round(base, 1),
        "rss_last_mb": round(last, 1), "rss_peak_mb": round(max((s[1] for s in samples), default=0) / 1024, 1),
        "warmup_s": warmup, "samples": [(round(t, 1), k) for t, k in samples],
        "frames": summary["frames"] if summary else None, "predictions": summary["predictions"] if summary else None,
        "jsonl_lines": jsonl_lines, "dropped": summary["dropped"] if summary else None,
        "dropped_pct": round(summary["dropped_pct"], 3) if summary else None,
        "reconnects": summary["reconnects"] if summary else None, "fps": round(summary["fps"], 2) if summary else None,
        "c2p_p99_ms": summary["latency_ms"]["capture_to_prediction"]["p99_ms"] if summary else None,
        "load_avg": os.getloadavg(), "stderr_tail": err.strip()[-400:] if crashes else "",
    }
    res["pass"] = {"rss": grow <= RSS_TARGET_MB, "crashes": crashes == 0}
    print(f"soak: {args.minutes:g} min of edge-run on {source}")
    print(f"  RSS after warm-up {base:.1f} MB -> last {last:.1f} MB: growth {grow:+.2f} MB "
          f"(target <= {RSS_TARGET_MB} MB) {'PASS' if res['pass']['rss'] else 'FAIL'}")
    print(f"  crashes {crashes} {'PASS' if crashes == 0 else 'FAIL'} (exit code {proc.returncode})")
    if summary:
        print(f"  frames {summary['frames']}  predictions {summary['predictions']}  dropped {summary['dropped']} "
              f"({summary['dropped_pct']:.2f}%)  reconnects {summary['reconnects']}  fps {summary['fps']:.2f}  "
              f"c2p p99 {res['c2p_p99_ms']} ms  load avg {res['load_avg'][0]:.1f}")
    if crashes:
        print(f"  stderr: {res['stderr_tail']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0 if all(res["pass"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
