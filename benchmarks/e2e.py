"""End-to-end pipeline on a live source: what a camera user gets, not just the model.

Runs ``edge-run`` (the on-device runner) as a child process on a live URI (default the synthetic
``test://`` source, 640x480 at 30 fps), headless, for a fixed duration, with ``--summary`` and
``--jsonl``; then reads processed FPS, dropped frames, per-stage latency (capture, preprocess,
inference, postprocess) and capture-to-prediction p50/p99. A child process keeps the runner's
memory separate from the benchmark's, so its peak RSS is its own (``os.wait4`` rusage).

The summary and the JSONL lines are read as ``edge.records.RunSummary`` / ``PredictionRecord`` (the
types edge-run writes), stage names are ``edge.timing.STAGES``. Capture-to-prediction is recomputed
here from the per-prediction JSONL records when present, with the same ``LatencyStats`` as the model
timings, so both tables use one definition of p50/p99.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from edge.records import PredictionRecord, RunSummary
from edge.timing import STAGES, LatencyStats

DEFAULT_SOURCE = "test://?pattern=ball&width=640&height=480&fps=30"
C2P = "capture_to_prediction"


@dataclass
class E2EConfig:
    bundle: str
    device: str = "cpu"
    source: str = DEFAULT_SOURCE
    seconds: float = 10.0
    threads: Optional[int] = None
    extra_args: tuple = ()
    timeout_s: float = 120.0


def edge_run_command() -> Optional[List[str]]:
    """How to start edge-run: the console script next to this Python, else ``-c`` on edge.cli.main.
    None when the runner is not installed (edge/cli.py missing)."""
    try:
        import importlib.util
        if importlib.util.find_spec("edge.cli") is None:
            return None
    except (ImportError, ValueError):
        return None
    exe = os.path.join(os.path.dirname(sys.executable), "edge-run")
    if os.path.exists(exe):
        return [exe]
    w = shutil.which("edge-run")
    if w:
        return [w]
    return [sys.executable, "-c", "import sys; from edge.cli import main; sys.exit(main())"]


def stage_stats_from_jsonl(path: str) -> Dict[str, dict]:
    """stage -> LatencyStats dict (exact percentiles), from the runner's per-prediction records."""
    samples: Dict[str, List[float]] = {}
    try:
        with open(path) as f:
            for line in f:
                try:
                    rec = PredictionRecord.from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError):  # a torn last line of a killed run
                    continue
                for k, v in rec.latency_ms.items():
                    samples.setdefault(k, []).append(v)
    except OSError:
        return {}
    return {k: LatencyStats.from_samples(v).to_dict() for k, v in samples.items() if v}


def summarize(summary: dict, stages_from_jsonl: Dict[str, dict]) -> dict:
    """The numbers the report shows, from edge-run's summary JSON (``edge.records.RunSummary``) and
    per-prediction JSONL.

    Per-stage latency comes from the summary (the runner times every frame: capture and preprocess
    per frame, inference/postprocess per prediction); capture-to-prediction is recomputed exactly
    from the JSONL records when present (the summary's percentiles come from a 1%-wide histogram)."""
    s = RunSummary.from_dict(summary)
    stages = {k: s.stage(k) for k in STAGES if s.stage(k)}
    source = "edge-run summary"
    if not stages:
        stages, source = {k: stages_from_jsonl[k] for k in STAGES if k in stages_from_jsonl}, "edge-run JSONL"
    c2p = stages_from_jsonl.get(C2P) or stages.get(C2P)
    total = s.frames + s.dropped
    return {
        "frames": s.frames, "predictions": s.predictions, "dropped": s.dropped,
        "drop_rate": (s.dropped / total) if total else None,
        "fps": s.fps, "source_fps": s.source_fps, "duration_s": s.elapsed_s, "reconnects": s.reconnects,
        "stages": stages, "stages_source": source,
        "capture_to_prediction": c2p,
        "capture_to_prediction_source": "edge-run JSONL (exact)" if C2P in stages_from_jsonl else source,
        "backend": s.backend, "artifact": s.artifact, "config": s.config, "streaming": s.sampling.get("streaming"),
        "precision": s.model.get("precision"), "head": s.model.get("head"),
    }


def run_e2e(cfg: E2EConfig, workdir: str) -> dict:
    """Run edge-run once; always returns a dict with ``status`` ok | skipped | failed and a reason."""
    base = {"source": cfg.source, "device": cfg.device, "seconds": cfg.seconds}
    cmd0 = edge_run_command()
    if cmd0 is None:
        return dict(base, status="skipped", reason="edge-run is not installed here (edge/cli.py missing)")
    os.makedirs(workdir, exist_ok=True)
    summary_path = os.path.join(workdir, "e2e_summary.json")
    jsonl_path = os.path.join(workdir, "e2e_predictions.jsonl")
    log_path = os.path.join(workdir, "e2e_edge-run.log")
    for p in (summary_path, jsonl_path):
        if os.path.exists(p):
            os.remove(p)
    cmd = cmd0 + ["--device", cfg.device, "--model", cfg.bundle, cfg.source, "--headless",
                  "--duration", str(cfg.seconds), "--summary", summary_path, "--jsonl", jsonl_path]
    if cfg.threads:
        cmd += ["--threads", str(cfg.threads)]
    cmd += list(cfg.extra_args)
    shown = ["edge-run"] + cmd[len(cmd0):]
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        except OSError as e:
            return dict(base, status="failed", reason=f"cannot start edge-run: {e}", command=shown)
        rusage = None
        deadline = time.monotonic() + cfg.seconds + cfg.timeout_s
        try:
            while True:  # os.wait4 instead of Popen.wait: it also returns the child's own peak RSS
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    rusage = ru
                    proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") \
                        else (status >> 8)
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    _, status, rusage = os.wait4(proc.pid, 0)
                    proc.returncode = -9
                    break
                time.sleep(0.05)
        except BaseException:  # Ctrl-C or an error here: never leave edge-run running behind us
            if proc.returncode is None:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
            raise
    wall = time.perf_counter() - t0
    with open(log_path, errors="replace") as f:  # runtime chatter (TFLite INFO lines) is not the reason
        tail = [ln.rstrip() for ln in f.readlines() if ln.strip() and not ln.startswith("INFO:")][-5:]
    peak = round(rusage.ru_maxrss / 1024.0, 1) if rusage is not None else None
    out = dict(base, command=shown, returncode=proc.returncode, wall_s=round(wall, 2), peak_rss_mb=peak,
               log=os.path.basename(log_path))
    if proc.returncode != 0 or not os.path.exists(summary_path):
        why = tail[-1] if tail else f"exit code {proc.returncode}"
        status = "skipped" if proc.returncode == 2 else "failed"
        return dict(out, status=status, reason=f"edge-run exited {proc.returncode}: {why}")
    try:
        with open(summary_path) as f:
            summary = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        return dict(out, status="failed", reason=f"edge-run summary unreadable: {e}")
    res = summarize(summary, stage_stats_from_jsonl(jsonl_path))
    return dict(out, status="ok", reason="", **res, summary_file=os.path.basename(summary_path))
