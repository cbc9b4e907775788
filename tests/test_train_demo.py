"""Slow: on the motion-only synthetic set, the temporal models learn (macro-F1 >= 0.9 within the demo
budget of ``train/configs/demo.yaml``) while the single-frame baseline stays near chance.

Run with ``pytest -m slow tests/test_train_demo.py`` (a few minutes per model on 2 cores).
"""
from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    from train.config import named_config, recipe_dataset
    from train.data import synthesize

    spec = recipe_dataset(named_config("demo"))["synth"]
    return synthesize(tmp_path_factory.mktemp("demo") / "synth", **spec)


def _train(model, data, out):
    from train.cli import main

    t = time.time()
    assert main(["--model", model, "--data", str(data), "--out", str(out), "--config", "demo", "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    print(f"\n{model}: macro-F1 {m['f1_macro']:.3f} accuracy {m['accuracy']:.3f} n={m['n_test']} "
          f"epochs {m['epochs_run']} train {m['training_time_s']:.0f}s wall {time.time() - t:.0f}s")
    return m


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lrcn-edge", "lrcn"])
def test_temporal_model_learns_motion(model, demo_data, tmp_path):
    m = _train(model, demo_data, tmp_path / model)
    assert m["f1_macro"] >= 0.9, m["confusion_matrix"]


@pytest.mark.slow
def test_single_frame_baseline_stays_near_chance(demo_data, tmp_path):
    m = _train("baseline", demo_data, tmp_path / "baseline")
    chance = 1.0 / len(m["labels"])
    assert m["accuracy"] <= chance + 0.15, m["confusion_matrix"]
