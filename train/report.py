"""Human-readable outputs: loss/accuracy curves, confusion matrix (PNG + CSV), the one-page
``report.md`` of a run, and the paper-style comparison table over several runs.

Matplotlib runs headless (Agg) and is imported lazily: ``edge-train --help`` stays fast.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

# The paper's results on UCF50 (reported beside ours in every report).
PAPER = {"lrcn": {"f1": 0.7717}, "convlstm": {"f1": 0.6136}}
PAPER_NOTE = "paper (UCF50): LRCN F1 0.7717, ConvLSTM F1 0.6136"
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_history_csv(rows: Sequence[Dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(HISTORY_FIELDS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in HISTORY_FIELDS})
    from train.run import write_text_atomic

    write_text_atomic(path, buf.getvalue())


def read_history_csv(path: Path) -> List[Dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        out.append({k: (float(v) if v not in ("", None) and k != "epoch" else (int(v) if k == "epoch" else None))
                    for k, v in r.items()})
    return out


def plot_history(rows: Sequence[Dict], path: Path, title: str = "", best_epoch: Optional[int] = None) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ep = [r["epoch"] for r in rows]
    for ax, key, name in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(ep, [r.get(key) for r in rows], label=f"train {name}")
        if any(r.get(f"val_{key}") is not None for r in rows):
            ax.plot(ep, [r.get(f"val_{key}") for r in rows], label=f"val {name}")
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_confusion_csv(cm, labels: Sequence[str], path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true \\ predicted"] + list(labels))
    for name, row in zip(labels, np.asarray(cm)):
        w.writerow([name] + [int(v) for v in row])
    Path(path).write_text(buf.getvalue(), encoding="utf-8")


def plot_confusion(cm, labels: Sequence[str], path: Path, title: str = "") -> None:
    plt = _plt()
    cm = np.asarray(cm)
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * k, 1.0 + 0.55 * k))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    thresh = cm.max() / 2 if cm.size and cm.max() > 0 else 0.5
    for i in range(k):
        for j in range(k):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > thresh else "black")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_eval_outputs(out_dir: Path, metrics: Dict, title: str = "") -> None:
    """metrics.json + confusion_matrix.csv/.png in ``out_dir`` (shared by training and edge-eval)."""
    from train.run import CM_CSV, CM_PNG, METRICS_FILE, write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / METRICS_FILE, metrics)
    write_confusion_csv(metrics["confusion_matrix"], metrics["labels"], out_dir / CM_CSV)
    plot_confusion(metrics["confusion_matrix"], metrics["labels"], out_dir / CM_PNG, title)


def human_bytes(n: Optional[float]) -> str:
    """Byte count in binary units (1 KiB = 1024 B), as the run and bundle reports print sizes."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return str(n)


def metrics_table(metrics: Dict) -> str:
    lines = ["| metric | macro | weighted |", "|---|---|---|"]
    for m in ("precision", "recall", "f1"):
        lines.append(f"| {m} | {metrics[f'{m}_macro']:.4f} | {metrics[f'{m}_weighted']:.4f} |")
    lines.append(f"| accuracy | {metrics['accuracy']:.4f} | |")
    lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, pc in metrics["per_class"].items():
        lines.append(f"| {name} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['f1']:.3f} | {pc['support']} |")
    return "\n".join(lines)


def write_run_report(run_dir: Path) -> Path:
    """``report.md``: one page (data, split, model, params, time, metrics, the paper's numbers)."""
    from train.run import REPORT_FILE, load_run, write_text_atomic

    run = load_run(run_dir)
    cfg, m = run.config, run.metrics
    d, s, t = cfg["data"], cfg["split"], cfg["train"]
    paper = PAPER.get(run.model_name)
    f1_line = f"{m['f1_macro']:.4f}" + (f" (paper, UCF50: {paper['f1']:.4f})" if paper else "")
    lines = [
        f"# Run report: {run.model_name}", "",
        f"Run directory: `{run.dir}`", "",
        "## Data",
        f"- data: `{d.get('data_dir')}`" + (f", test folder `{d.get('test_data_dir')}`" if d.get("test_data_dir") else ""),
        f"- classes ({len(run.labels)}): {', '.join(run.labels)}",
        f"- clips: {d['frames']} frames of {d['size'][0]}x{d['size'][1]} px, short videos: {d.get('short_policy')}, "
        f"values = pixel x {cfg['preprocess']['scale']:.6g} + {cfg['preprocess']['offset']}"
        + (f", one sampled frame every {d['frame_interval_s']:.3f} s" if d.get("frame_interval_s") else ""),
        f"- split: {s['kind']} (seed {s['seed']}, test {s.get('test_fraction')}, val {s.get('val_fraction')} of train), "
        f"clips train/val/test = {s['sizes']['train']}/{s['sizes']['val']}/{s['sizes']['test']}; "
        "no group on two sides", "",
        "## Model and training",
        f"- model: `{run.model_name}` {cfg['model'].get('cfg')}",
        f"- parameters: {m.get('params'):,}, model.keras {human_bytes(m.get('model_size_bytes'))}",
        f"- epochs run: {m.get('epochs_run')} of {t.get('epochs')} (best epoch {m.get('best_epoch')}, "
        f"early stopping on {t.get('monitor')} patience {t.get('patience')}; weights of "
        f"{'the best epoch' if m.get('restored_best') else 'the last epoch'}), batch {t.get('batch_size')}, "
        f"LR schedule {t.get('lr_schedule')}, augmentation {'on' if cfg.get('augment', {}).get('enabled') else 'off'}",
        f"- training time: {m.get('training_time_s', 0):.1f} s", "",
        "## Test metrics", "",
        f"Macro F1: **{f1_line}**, accuracy {m['accuracy']:.4f} on {m['n_test']} test clips.", "",
        metrics_table(m), "",
        f"Reference: {PAPER_NOTE}. Different data (UCF50 there, this run's data here): the numbers "
        "sit side by side for scale, not as a like-for-like comparison.", "",
        "![history](history.png)", "", "![confusion matrix](confusion_matrix.png)", "",
    ]
    out = run.dir / REPORT_FILE
    write_text_atomic(out, "\n".join(lines))
    return out


def compare_rows(run_dirs: Sequence) -> List[Dict]:
    from train.run import load_run

    rows = []
    for rd in run_dirs:
        run = load_run(rd)
        m = run.metrics
        rows.append({"run": str(rd), "model": run.model_name, "precision": m["precision_macro"],
                     "recall": m["recall_macro"], "f1": m["f1_macro"], "accuracy": m["accuracy"],
                     "params": m.get("params"), "size": m.get("model_size_bytes"),
                     "time": m.get("training_time_s"), "n_test": m.get("n_test")})
    return rows


def compare_markdown(rows: Sequence[Dict], paper: bool = True) -> str:
    lines = ["| model | run | precision | recall | F1 | accuracy | params | size | training time | test clips |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {Path(r['run']).name} | {r['precision']:.4f} | {r['recall']:.4f} | "
                     f"{r['f1']:.4f} | {r['accuracy']:.4f} | {r['params']:,} | {human_bytes(r['size'])} | "
                     f"{(r['time'] or 0):.1f} s | {r['n_test']} |")
    if paper:
        lines += ["", "Precision/recall/F1 are macro averages over classes. " + PAPER_NOTE + "."]
    return "\n".join(lines) + "\n"
