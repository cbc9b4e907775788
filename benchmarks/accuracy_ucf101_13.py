"""lrcn-edge on the real ``ucf101-13`` clips: encoder (scratch / pretrained frozen / fine-tuned) x head x
input size -> macro-F1 mean ± std over seeds, int8 F1, params, int8 encoder ms/frame, Edge TPU ops mapped.

Each seed is a different group-aware, class-stratified split (no UCF group on two sides) and a
different initialisation. Frozen-encoder runs share their per-frame features through the feature
cache (``train.features``), so extra seeds and heads cost seconds. For each run the int8 bundle is
made with ``edge-quantize --formats tflite-fp32,tflite-int8 --no-prune --no-qat`` (post-training
int8) and scored on the same test split; the int8 encoder is timed on this CPU (1 thread, batch 1)
and analysed op by op with ``quantize.edgetpu_analyzer``.

    python benchmarks/accuracy_ucf101_13.py                            # the default grid, seeds 0,1,2
    python benchmarks/accuracy_ucf101_13.py --grid lite0-frozen-128-lstm,lite0-frozen-128-tcn --seeds 0
    python benchmarks/accuracy_ucf101_13.py --list                     # the grid's names

Runs / bundles that already finished in ``--work`` are reused (``--force`` redoes them; ``--report-only``
only tabulates what finished, e.g. after runs made by several invocations). Writes
``benchmarks/results/ucf101_13_accuracy.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "ucf101-13"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "ucf101_13_accuracy.md"
SCRATCH = {"epochs": 40, "lr_schedule": "cosine", "patience": 40, "restore_best": False,
           "model_cfg": {"encoder": "scratch", "widths": [32, 64, 128], "encoder_dropout": 0.2}}


def _lite(size: int, head: str, mode: str = "frozen", variants: int = 2, **extra) -> dict:
    mc = {"encoder": "efficientnet-lite0", "train_mode": mode, "head": head, "head_units": 64,
          "encoder_dropout": 0.3, "proj_dim": 128 if head in ("tcn", "attention") else 0, **extra}
    cfg = {"size": size, "epochs": 40, "lr_schedule": "cosine", "patience": 40, "restore_best": False,
           "feature_variants": variants, "model_cfg": mc}
    if mode != "frozen":
        cfg.update(epochs=8, batch_size=4)
        mc["learning_rate"] = 3e-4
    return cfg


GRID: Dict[str, dict] = {
    "scratch-64-lstm": {"size": 64, **SCRATCH},
    "lite0-frozen-128-lstm": _lite(128, "lstm"),
    "lite0-frozen-128-gru": _lite(128, "gru"),
    "lite0-frozen-128-tcn": _lite(128, "tcn"),
    "lite0-frozen-128-attention": _lite(128, "attention"),
    "lite0-frozen-96-lstm": _lite(96, "lstm"),
    "lite0-frozen-160-lstm": _lite(160, "lstm"),
    "lite0-frozen-224-lstm": _lite(224, "lstm", variants=0),
    "lite0-frozen-224-tcn": _lite(224, "tcn", variants=0),
    "lite0-frozen-224-gru": _lite(224, "gru", variants=0),
    "lite0-frozen-224-attention": _lite(224, "attention", variants=0),
    "lite0-last2-128-lstm": _lite(128, "lstm", "last-blocks", fine_tune_blocks=2),
}
DEFAULT_GRID = ("lite0-frozen-224-lstm", "lite0-frozen-224-gru", "lite0-frozen-224-tcn", "lite0-frozen-224-attention",
                "lite0-frozen-96-lstm", "lite0-frozen-128-lstm", "lite0-frozen-160-lstm", "lite0-last2-128-lstm",
                "scratch-64-lstm")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python benchmarks/accuracy_ucf101_13.py --seeds 0,1,2\n"
               "  python benchmarks/accuracy_ucf101_13.py --grid lite0-frozen-128-tcn --seeds 0 --no-int8")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="ucf101-13 folder (default ../shared/data/ucf101-13)")
    ap.add_argument("--work", default=str(REPO / "work" / "bench" / "ucf101-13"), help="runs, bundles, caches")
    ap.add_argument("--grid", default=",".join(DEFAULT_GRID), help="comma-separated grid entries (see --list)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--no-int8", action="store_true", help="skip the int8 bundle, timing and Edge TPU analysis")
    ap.add_argument("--int8-seeds", help="comma-separated seeds that get the int8 bundle (default: all)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown result file (.json written beside it)")
    ap.add_argument("--force", action="store_true", help="redo runs and bundles that already finished")
    ap.add_argument("--report-only", action="store_true",
                    help="train and quantize nothing: tabulate the runs and int8 bundles already finished in --work "
                         "(missing seeds are left out; the seeds / runs columns say how many were measured)")
    ap.add_argument("--list", action="store_true", help="print the grid entries and exit")
    return ap.parse_args(argv)


def train_one(name: str, seed: int, data: Path, work: Path, force: bool, report_only: bool = False) -> Optional[dict]:
    from train.config import TrainConfig
    from train.trainer import train

    run = work / "runs" / f"{name}-s{seed}"
    metrics = run / "metrics.json"
    if metrics.is_file() and not force:
        return json.loads(metrics.read_text())
    if report_only:
        return None
    if run.exists():
        import shutil

        shutil.rmtree(run)
    spec = json.loads(json.dumps(GRID[name]))
    size = spec.pop("size")
    cfg = TrainConfig.from_sources(spec, {"model": "lrcn-edge", "data": str(data), "out": str(run), "seed": seed,
                                          "size": size, "progress": False,
                                          "cache": str(work / "cache" / f"{size}")}, where=name)
    t0 = time.time()
    res = train(cfg, log=lambda m: print(f"  [{name} s{seed}] {m}", flush=True))
    res.metrics["wall_s"] = round(time.time() - t0, 1)
    return res.metrics


def int8_one(name: str, seed: int, work: Path, force: bool, report_only: bool = False) -> Optional[dict]:
    """Post-training int8 bundle of one run: its F1, the encoder's ms/frame and Edge TPU mapping."""
    run = work / "runs" / f"{name}-s{seed}"
    bundle = work / "bundles" / f"{name}-s{seed}"
    summary = bundle.with_suffix(".json")
    if report_only and not summary.is_file():
        return None
    if not summary.is_file() or force:
        if bundle.exists():
            import shutil

            shutil.rmtree(bundle)
        cmd = [sys.executable, "-m", "quantize.cli", str(run), "--out", str(bundle), "--formats",
               "tflite-fp32,tflite-int8", "--no-prune", "--no-qat", "--no-progress", "--json", str(summary)]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if r.returncode != 0:
            print(r.stdout[-3000:], file=sys.stderr)
            return None
    out = {"seed": seed, "summary": json.loads(summary.read_text())}
    enc = next(iter(sorted(bundle.glob("encoder*int8*.tflite"))), None)
    if enc is not None:
        out["encoder_ms"] = time_encoder(enc)
        from quantize.edgetpu_analyzer import analyze

        rep = analyze(str(enc))
        out["edgetpu"] = f"{rep.ops_on_tpu}/{rep.ops_total}"
    return out


def time_encoder(path: Path, reps: int = 50, warmup: int = 5) -> float:
    """Median ms of one int8 encoder call (1 thread, batch 1) after a warm-up: the median, because
    this shared machine's other jobs show up as outliers in a mean."""
    import numpy as np

    from benchmarks.latency import median_ms
    from edge.backends import BackendOptions, load_backend

    b = load_backend(str(path), None, BackendOptions(threads=1))
    shape = [int(d) for d in b.input_shape] if hasattr(b, "input_shape") else None
    x = np.random.default_rng(0).random(shape or (1, 128, 128, 3)).astype(np.float32)
    return median_ms(lambda: b.infer(x), reps, warmup)


def _int8_f1(summary: dict) -> Optional[float]:
    """macro-F1 of the int8 encoder + int8 head pair in an ``edge-quantize --json`` summary."""
    for a in summary.get("artifacts", []):
        m = a.get("metrics") or {}
        if a.get("part") == "encoder" and a.get("precision") == "int8" and m.get("f1_macro") is not None:
            return float(m["f1_macro"])
    return None


def _mean_std(v: List[float]) -> str:
    import numpy as np

    if not v:
        return "-"
    return f"{np.mean(v):.3f} ± {np.std(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def table(results: Dict[str, dict]) -> str:
    lines = ["| setting | encoder | mode | head | size | aug. feature copies | macro-F1 (mean ± std) | seeds | "
             "int8 F1 (float F1 of the same runs) | params | "
             "int8 encoder ms/frame (median, this CPU, 1 thread) | Edge TPU ops mapped |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        spec = GRID[name]
        mc = spec.get("model_cfg", {})
        f1 = [m["f1_macro"] for m in r["runs"]]
        q = [x for x in r.get("int8", []) if x]
        qf1 = [v for v in (_int8_f1(x["summary"]) for x in q) if v is not None]
        ref = [float(x["summary"]["reference"]["f1_macro"]) for x in q if "reference" in x["summary"]]
        ms = [x["encoder_ms"] for x in q if "encoder_ms" in x]
        tpu = sorted({x["edgetpu"] for x in q if "edgetpu" in x})
        lines.append(f"| {name} | {mc.get('encoder', 'scratch')} | {mc.get('train_mode') or 'full'} | "
                     f"{mc.get('head', 'lstm')} | {spec['size']} | "
                     f"{spec.get('feature_variants', '-') if mc.get('encoder') else '-'} | {_mean_std(f1)} | {len(f1)} | "
                     f"{_mean_std(qf1)} ({_mean_std(ref)}, {len(qf1)} run{'s' if len(qf1) != 1 else ''}) | "
                     f"{r['runs'][0].get('params', '-') if r['runs'] else '-'} | "
                     f"{(sum(ms) / len(ms)) if ms else float('nan'):.1f} | {', '.join(tpu) or '-'} |")
    return "\n".join(lines) + "\n"


def per_seed_int8(results: Dict[str, dict]) -> str:
    """One line per setting: int8 F1 / float F1 of the same run, seed by seed, and the int8 - float gap."""
    lines = ["int8 F1 / float F1 per seed (post-training int8 bundle vs the float run it was made from):", ""]
    for name, r in results.items():
        cells, gaps = [], []
        for x in r.get("int8", []):
            q = _int8_f1(x["summary"]) if x else None
            ref = x["summary"].get("reference", {}).get("f1_macro") if x else None
            if q is None or ref is None:
                continue
            cells.append(f"s{x.get('seed', '?')} {q:.3f} / {float(ref):.3f}")
            gaps.append(q - float(ref))
        if cells:
            lines.append(f"- {name}: {', '.join(cells)}; int8 - float {_mean_std(gaps)}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for k, v in GRID.items():
            print(f"{k}: {json.dumps(v)}")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data, work = Path(args.data), Path(args.work)
    if not data.is_dir():
        print(f"accuracy_ucf101_13: error: {data}: no such folder (needs ../shared/data/ucf101-13)", file=sys.stderr)
        return 2
    names = [n for n in args.grid.split(",") if n]
    bad = [n for n in names if n not in GRID]
    if bad:
        print(f"accuracy_ucf101_13: error: unknown grid entries {bad} (see --list)", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",") if s != ""]
    results: Dict[str, dict] = {}
    for name in names:
        results[name] = {"runs": [], "int8": [], "seeds": []}
        for seed in seeds:
            print(f"== {name} seed {seed}", flush=True)
            m = train_one(name, seed, data, work, args.force, args.report_only)
            if m is None:
                print("   not finished in --work: left out (--report-only)", flush=True)
                continue
            results[name]["runs"].append(m)
            results[name]["seeds"].append(seed)
            print(f"   macro-F1 {m['f1_macro']:.4f}", flush=True)
            if not args.no_int8 and (args.int8_seeds is None or str(seed) in args.int8_seeds.split(",")):
                q = int8_one(name, seed, work, args.force, args.report_only)
                if q is not None or not args.report_only:
                    results[name]["int8"].append(q)
    from benchmarks.machine import cpu_model

    md = ["# lrcn-edge on ucf101-13 (13 classes x 18 groups, group-aware split)", "",
          f"Command: `python {' '.join(shlex.quote(a) for a in ['benchmarks/accuracy_ucf101_13.py', *(argv if argv is not None else sys.argv[1:])])}`",
          f"Machine: {cpu_model()} ({platform.machine()}), {os.cpu_count()} cores (shared), "
          f"{time.strftime('%Y-%m-%d')}", "", table(results), per_seed_int8(results)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md), encoding="utf-8")
    slim = {n: {"grid": GRID[n], "seeds": r["seeds"], "f1_macro": [m["f1_macro"] for m in r["runs"]],
                "params": [m.get("params") for m in r["runs"]],
                "int8": [None if x is None else {k: v for k, v in x.items() if k != "summary"} | {
                    "int8_f1": _int8_f1(x["summary"]), "float_f1": x["summary"].get("reference", {}).get("f1_macro")}
                    for x in r["int8"]]}
            for n, r in results.items()}
    out.with_suffix(".json").write_text(json.dumps(slim, indent=1), encoding="utf-8")
    print(md[-2])
    print(md[-1])
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
