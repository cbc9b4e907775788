"""Accuracy of lrcn, convlstm and lrcn-edge on the real ``ucf101-mini`` clips, 3 seeds each.

Each seed is a different group-aware, class-stratified split (75% train / 25% test, validation 10% of
train, no UCF group on two sides) *and* a different initialisation, so the spread covers both. All
models of one seed see the same split. Training recipe: ``train/configs/ucf101_mini.yaml``
(the paper's settings for lrcn/convlstm; the edge recipe for lrcn-edge).

Writes ``benchmarks/results/ucf101_mini_accuracy.md`` and ``.json`` (macro-F1 mean ± std per model,
per-seed numbers, the exact command). Runs that already finished (``metrics.json`` present in the
work dir) are reused, so an interrupted benchmark continues where it stopped (``--force`` retrains).

    python benchmarks/accuracy_ucf101_mini.py                     # all models, seeds 0,1,2
    python benchmarks/accuracy_ucf101_mini.py --models lrcn-edge --seeds 0
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "ucf101-mini"
DEFAULT_CONFIG = REPO / "train" / "configs" / "ucf101_mini.yaml"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "ucf101_mini_accuracy.md"
MODELS = ("lrcn", "convlstm", "lrcn-edge")
PAPER = {"lrcn": 0.7717, "convlstm": 0.6136}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Train lrcn / convlstm / lrcn-edge on ucf101-mini with group-aware splits over several "
                    "seeds and write a macro-F1 table (mean ± std).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python benchmarks/accuracy_ucf101_mini.py\n"
               "  python benchmarks/accuracy_ucf101_mini.py --models lrcn-edge --seeds 0,1 --work /tmp/bench")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="ucf101-mini folder (default ../shared/data/ucf101-mini)")
    ap.add_argument("--work", default=str(REPO / "work" / "bench" / "ucf101-mini"), help="runs + cache go here")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="training recipe YAML (per_model sections)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated (default all three)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown result file (.json written beside it)")
    ap.add_argument("--force", action="store_true", help="retrain runs that already finished")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data = Path(args.data)
    if not data.is_dir():
        print(f"accuracy_ucf101_mini: error: {data}: no such folder (needs ../shared/data/ucf101-mini)", file=sys.stderr)
        return 2
    from train.config import ConfigError, load_config

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    work = Path(args.work)
    cache = work / "cache"
    results: Dict[str, List[dict]] = {m: [] for m in models}
    t0 = time.time()
    for seed in seeds:
        for model in models:
            out = work / "runs" / f"{model}-seed{seed}"
            try:
                cfg = load_config(args.config, {"model": model, "data": str(data), "out": str(out), "seed": seed,
                                                "cache": str(cache), "progress": False, "resume": True})
            except ConfigError as e:
                print(f"accuracy_ucf101_mini: error: {e}", file=sys.stderr)
                return 2
            if args.force and out.exists():
                import shutil

                shutil.rmtree(out)
            mfile = out / "metrics.json"
            if not mfile.is_file():
                from train.trainer import train
                import tf_keras as keras

                print(f"== {model} seed {seed} -> {out}", flush=True)
                keras.backend.clear_session()
                train(cfg, log=lambda s: print("   " + s, flush=True) if s.startswith(("epoch", "test", "restored")) else None)
            m = json.loads(mfile.read_text())
            results[model].append({"seed": seed, "f1_macro": m["f1_macro"], "accuracy": m["accuracy"],
                                   "n_test": m["n_test"], "epochs_run": m["epochs_run"], "best_epoch": m.get("best_epoch"),
                                   "training_time_s": m["training_time_s"], "params": m["params"],
                                   "model_size_bytes": m["model_size_bytes"], "run_dir": str(out)})
            print(f"{model} seed {seed}: macro-F1 {m['f1_macro']:.4f}", flush=True)
    write_results(args, results, time.time() - t0)
    return 0


def _stats(vals):
    import numpy as np

    a = np.asarray(vals, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def write_results(args, results: Dict[str, List[dict]], seconds: float) -> None:
    import tensorflow as tf

    defaults = vars(parse_args([]))
    cmd = "python benchmarks/accuracy_ucf101_mini.py " + " ".join(
        f"--{k} {shlex.quote(str(v))}" for k, v in vars(args).items()
        if k not in ("force", "out") and v != defaults[k])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    summary = {}
    for model, rs in results.items():
        if not rs:
            continue
        f1m, f1s = _stats([r["f1_macro"] for r in rs])
        am, as_ = _stats([r["accuracy"] for r in rs])
        tm, _ = _stats([r["training_time_s"] for r in rs])
        summary[model] = {"f1_macro_mean": f1m, "f1_macro_std": f1s, "accuracy_mean": am, "accuracy_std": as_,
                          "training_time_s_mean": tm, "params": rs[0]["params"], "runs": rs}
        per_seed = ", ".join(f"{r['f1_macro']:.3f}" for r in rs)
        paper = f"{PAPER[model]:.4f} (UCF50)" if model in PAPER else "-"
        rows.append(f"| {model} | **{f1m:.3f} ± {f1s:.3f}** | {per_seed} | {am:.3f} ± {as_:.3f} | "
                    f"{rs[0]['params']:,} | {tm:.0f} s | {sum(r['epochs_run'] for r in rs) / len(rs):.0f} | {paper} |")
    n_test = sorted({r["n_test"] for rs in results.values() for r in rs})
    n_runs = sum(len(rs) for rs in results.values())
    train_total = sum(r["training_time_s"] for rs in results.values() for r in rs)
    md = [
        "# ucf101-mini accuracy (group-aware split, 3 seeds)", "",
        f"Data: `../shared/data/ucf101-mini` (6 classes x 18 clips, one UCF group per clip). Each seed draws "
        f"its own group-aware, class-stratified split (75% train / 25% test = {'/'.join(map(str, n_test))} test clips; "
        "validation = 10% of train, group-aware, for early stopping) and its own initialisation; all models "
        "of a seed share the split. 20 frames of 64x64 per clip (the paper's sampling).", "",
        "| model | macro-F1 (mean ± std) | per seed | accuracy | params | train time / run | epochs | paper F1 |",
        "|---|---|---|---|---|---|---|---|", *rows, "",
        "Std is the sample standard deviation over seeds. With ~24 test clips per seed one clip is ~4 points of "
        "accuracy: read differences below ~0.05 as noise.", "",
        f"Command (from the repo root): `{cmd.strip()}`  ",
        f"Recipe: `{Path(args.config).relative_to(REPO) if Path(args.config).is_relative_to(REPO) else args.config}`; "
        f"runs in `{args.work}`; training time summed over the {n_runs} runs {train_total / 60:.1f} min on "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), TensorFlow {tf.__version__}, "
        "shared with other jobs (times are inflated by that load).", "",
        "Recipes: `lrcn` and `convlstm` keep the paper's training (batch 4, RMSprop / Adam, 75 / 50 epochs, "
        "EarlyStopping(val_loss, patience 10) restoring the best weights) with only the validation split fixed. "
        "`lrcn-edge`: per-frame BatchNorm CNN encoder (32-64-128, 4x4 grid -> 64 features, feature dropout 0.2) "
        "+ LSTM(48) head, label smoothing 0.1, augmentation, 40 epochs with a cosine LR decay, last-epoch "
        "weights (best-weight restore on a 6-clip validation set picked on noise). \"epochs\" = mean epochs run.", "",
        "Paper numbers are on UCF50 (50 classes, its own split), shown for scale only. On this data the paper's "
        "code as written (Keras `validation_split` on class-sorted clips) reaches about 0.2 macro-F1 and about "
        "0.70 with only that fixed (issue 3).",
    ]
    out.write_text("\n".join(md) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"command": cmd.strip(), "config": str(args.config),
                                                    "training_seconds_total": train_total,
                                                    "models": summary}, indent=1) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
