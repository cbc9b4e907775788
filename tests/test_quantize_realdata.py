"""Real data (slow): train on ../shared/data/ucf101-mini, quantize, and check the issue's targets.

* int8 macro-F1 within 2 points of the float Keras model (int8 = QAT or post-training, chosen on
  train/val clips; no pruning, so this measures what quantization costs)
* int8 artifacts <= 1/3.5 of the float model.keras
* pruned (70%) + int8, gzip-compressed <= 1/8 of model.keras (its macro-F1 is printed: pruning costs
  accuracy of its own)

The test split is small (24 clips: one clip is ~4 points of accuracy), so the F1 check is coarse.
Set QUANTIZE_REAL_RUNS=DIR to reuse runs trained earlier (DIR/<model>/model.keras).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

TRAIN = {"lrcn-edge": dict(epochs=40, batch_size=8), "lrcn": dict(epochs=30, batch_size=4)}


def _run(model, shared_data, tmp_path_factory):
    reuse = os.environ.get("QUANTIZE_REAL_RUNS")
    if reuse and (Path(reuse) / model / "model.keras").is_file():
        return Path(reuse) / model
    from train.config import TrainConfig
    from train.trainer import train

    root = tmp_path_factory.mktemp(f"real-{model}")
    cfg = TrainConfig(model=model, data=str(shared_data / "ucf101-mini"), out=str(root / model),
                      cache=str(root / "cache"), frames=20, size=(64, 64), progress=False, seed=0, **TRAIN[model])
    train(cfg, log=lambda *a, **k: None)
    return root / model


def _quantize(run, out, *extra):
    from quantize.cli import main

    summary = out / "summary.json"
    assert main([str(run), "--out", str(out), "--formats", "tflite-fp32,tflite-int8", "--no-progress",
                 "--json", str(summary), *extra]) == 0
    s = json.loads(summary.read_text())
    int8 = [a for a in s["artifacts"] if a["precision"] == "int8"]
    return s, int8[0]["metrics"]


@pytest.mark.parametrize("model", ["lrcn-edge", "lrcn"])
def test_int8_targets_on_ucf101_mini(model, shared_data, tmp_path_factory, capsys):
    run = _run(model, shared_data, tmp_path_factory)
    s, m = _quantize(run, tmp_path_factory.mktemp(f"int8-{model}"), "--no-prune")
    sp, mp = _quantize(run, tmp_path_factory.mktemp(f"pruned-{model}"), "--sparsity", "0.7",
                       "--prune-epochs", "10")
    ref, sz, szp = s["reference"], s["sizes"], sp["sizes"]
    with capsys.disabled():
        print(f"\n{model}: float macro-F1 {ref['f1_macro']:.3f} | int8 {m['f1_macro']:.3f} (top-1 agreement "
              f"{m['top1_agreement']:.3f}) | pruned-70% float {sp['reference']['pruned_f1_macro']:.3f}, "
              f"pruned+int8 {mp['f1_macro']:.3f} | model.keras {sz['float_keras_bytes']} B, int8 "
              f"{sz['int8_bytes']} B ({sz['float_keras_over_int8']}x), pruned+int8 gzip {szp['int8_gzip_bytes']} B "
              f"({szp['float_keras_over_int8_gzip']}x) vs unpruned int8 gzip {sz['float_keras_over_int8_gzip']}x")
    assert m["f1_macro"] >= ref["f1_macro"] - 0.02
    assert sz["float_keras_over_int8"] >= 3.5
    assert szp["float_keras_over_int8_gzip"] >= 8.0
