"""Training end to end on the tiny synthetic set: every model writes a complete run directory,
an interrupted run resumes, the CLI refuses bad input with exit code 2, config precedence."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("tensorflow")

from train_helpers import FRAMES, SIZE, tiny_run, train_args  # noqa: E402

RUN_FILES = ["model.keras", "labels.txt", "config.yaml", "split.json", "history.csv", "history.png",
             "metrics.json", "confusion_matrix.png", "confusion_matrix.csv", "report.md"]


@pytest.fixture(scope="module")
def runs_base(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "train-runs"


@pytest.mark.parametrize("model", ["lrcn", "convlstm", "lrcn-edge"])
def test_train_writes_complete_run_dir(model, runs_base, synth_cache):
    from train.models import load_model
    from train.run import load_run

    run_dir = tiny_run(runs_base, model, synth_cache)
    for f in RUN_FILES + (["encoder.keras", "head.keras"] if model == "lrcn-edge" else []):
        assert (run_dir / f).is_file() and (run_dir / f).stat().st_size > 0, f
    if model != "lrcn-edge":
        assert not (run_dir / "encoder.keras").exists()
    run = load_run(run_dir)
    assert run.model_name == model
    assert run.labels == ["Grow", "MoveLeft", "MoveRight", "Shrink"]
    cfg = run.config
    assert cfg["data"]["frames"] == FRAMES and cfg["data"]["size"] == [SIZE, SIZE]
    assert cfg["preprocess"]["scale"] == pytest.approx(1 / 255) and cfg["preprocess"]["offset"] == 0
    assert cfg["sampling"]["frame_interval_s"] > 0 and cfg["data"]["flip_safe"] is False
    assert cfg["augment"]["flip"] is False                      # synthetic set is not flip safe
    assert cfg["split"]["kind"] == "group" and cfg["train"]["patience"] == 10
    assert cfg["train"]["epochs"] == 2 and cfg["versions"]["tf_keras"].startswith("2.")

    split = run.split
    groups = {side: {e["group"] for e in split[side]} for side in ("train", "val", "test")}
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["val"])
    assert not (groups["val"] & groups["test"])
    assert split["train"] and split["val"] and split["test"]

    m = run.metrics
    for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_weighted",
              "recall_weighted", "f1_weighted", "per_class", "n_test", "training_time_s", "params",
              "model_size_bytes", "epochs_run"):
        assert k in m, k
    assert m["n_test"] == len(split["test"]) and m["epochs_run"] <= 2 and m["params"] > 0
    assert m["model_size_bytes"] == (run_dir / "model.keras").stat().st_size
    assert 0.0 <= m["f1_macro"] <= 1.0 and set(m["per_class"]) == set(run.labels)

    with open(run_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, m["epochs_run"] + 1))
    assert all(np.isfinite(float(r["loss"])) and r["val_loss"] for r in rows)
    cm = np.loadtxt(run_dir / "confusion_matrix.csv", delimiter=",", skiprows=1, usecols=range(1, 5))
    assert cm.sum() == m["n_test"]
    report = (run_dir / "report.md").read_text()
    assert "0.7717" in report and "0.6136" in report and model in report

    x, y = run.arrays("test")
    assert x.shape == (m["n_test"], FRAMES, SIZE, SIZE, 3) and x.dtype == np.float32 and y.dtype == np.int64
    assert run.input_spec().clip_shape == (FRAMES, SIZE, SIZE, 3)
    assert run.sampling().frames == FRAMES
    # the saved model reproduces the test metrics exactly
    model_k = run.load_model()
    pred = model_k.predict(x, verbose=0).argmax(-1)
    from edge.metrics import classification_metrics

    assert classification_metrics(y, pred, labels=run.labels)["f1_macro"] == pytest.approx(m["f1_macro"])
    if model == "lrcn-edge":
        enc, head = run.load_parts()
        feats = np.stack([enc.predict(c, verbose=0) for c in x[:2]])
        np.testing.assert_allclose(head.predict(feats, verbose=0), model_k.predict(x[:2], verbose=0), atol=1e-5)
    else:
        assert run.load_parts() is None


def test_baseline_trains(runs_base, synth_cache):
    from train.run import load_run

    run = load_run(tiny_run(runs_base, "baseline", synth_cache))
    assert run.model_name == "baseline" and run.metrics["epochs_run"] >= 1


class _Interrupt(Exception):
    pass


def test_resume_continues_an_interrupted_run(tmp_path, synth_cache):
    """Kill the run after epoch 1 of 3; --resume must run epochs 2 and 3 only."""
    import tf_keras as keras

    from train.cli import main
    from train.config import TrainConfig
    from train.trainer import train

    class KillAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise _Interrupt()

    out = tmp_path / "run"
    cfg = TrainConfig(model="lrcn-edge", data=str(synth_cache), out=str(out), epochs=3, frames=FRAMES,
                      size=SIZE, progress=False)
    with pytest.raises(_Interrupt):
        train(cfg, callbacks=[KillAfterFirstEpoch()], log=lambda s: None)
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert not (out / "metrics.json").exists()
    first_loss = state["history"][0]["loss"]
    # starting again without --resume is refused (nothing is overwritten)
    assert main(train_args("lrcn-edge", synth_cache, out, 3)) == 2
    # resume: same command + --resume
    assert main(train_args("lrcn-edge", synth_cache, out, 3, "--resume")) == 0
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    hist = state["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3] and state["finished"]
    assert hist[0]["loss"] == first_loss                      # epoch 1 was not run again
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs_run"] == 3
    with open(out / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]
    # the optimizer state came back: its step counter covers all three epochs
    from train.models import load_model

    last = load_model(out / "checkpoints" / "last.keras", compile=True)
    n_train = len(json.loads((out / "split.json").read_text())["train"])
    assert int(last.optimizer.iterations.numpy()) == 3 * int(np.ceil(n_train / 4))


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, synth_cache, capsys):
    from train.cli import main

    out = tmp_path / "run"
    assert main(train_args("lrcn", tmp_path / "missing", out)) == 2
    assert "no such data folder" in capsys.readouterr().err and not out.exists()
    assert main(train_args("lrcn", synth_cache, out, 2, "--model-opt", "lstm_unitz=3")) == 2
    assert "lstm_unitz" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    assert main(train_args("lrcn", synth_cache, out, 2, "--config", str(bad))) == 2
    assert "epochz" in capsys.readouterr().err
    # cache prepared with other settings than asked
    assert main(["--model", "lrcn", "--data", str(synth_cache), "--out", str(out), "--frames", "5"]) == 2
    assert "prepared with" in capsys.readouterr().err
    assert not out.exists()


def test_config_precedence(tmp_path):
    from train.config import ConfigError, TrainConfig, load_config

    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"epochs": 7, "batch_size": 8, "model_cfg": {"head_units": 32},
                                 "per_model": {"lrcn-edge": {"epochs": 9, "model_cfg": {"deltas": True}}}}))
    c = load_config(p, {"model": "lrcn-edge", "batch_size": 2, "model_cfg": {"feature_dim": 32}, "seed": None})
    assert c.epochs == 9 and c.batch_size == 2 and c.seed == 0
    assert c.model_cfg == {"head_units": 32, "deltas": True, "feature_dim": 32}
    c2 = load_config(p, {"model": "lrcn"})
    assert c2.epochs == 7 and c2.effective_lr_schedule == "none"
    assert TrainConfig(model="convlstm").effective_epochs == 50
    assert TrainConfig(model="lrcn").effective_epochs == 75
    with pytest.raises(ConfigError, match="per_model.nope"):
        TrainConfig.from_sources({"per_model": {"nope": {}}})
    with pytest.raises(ConfigError, match="strategy"):
        TrainConfig(strategy="tpu")


def test_demo_config_is_valid():
    from train.config import load_config, named_config

    p = named_config("demo")
    assert p.is_file()
    for model in ("lrcn", "lrcn-edge", "baseline"):
        c = load_config(p, {"model": model})
        assert c.model == model and c.effective_epochs >= 1


def test_strategy_auto_is_default_on_cpu(monkeypatch):
    from train.trainer import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    _, kind = make_strategy("auto")
    assert kind == "default"


def test_train_stream_is_deterministic_per_epoch():
    from train.data import AugmentConfig
    from train.trainer import TrainStream

    x = np.random.default_rng(0).random((10, 4, 8, 8, 3), dtype=np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(10) % 2]
    a = TrainStream(x, y, 4, AugmentConfig(flip=False), seed=3)
    b = TrainStream(x, y, 4, AugmentConfig(flip=False), seed=3, start_epoch=1)
    ea = list(a.epoch_batches(1))
    eb = next(iter([list(b.epoch_batches(1))]))
    assert len(ea) == 3 and sum(len(xb) for xb, _ in ea) == 10
    for (xa, ya), (xb, yb) in zip(ea, eb):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    e0 = list(a.epoch_batches(0))
    assert any(not np.array_equal(p[0], q[0]) for p, q in zip(e0, ea))     # a new draw each epoch
    # the endless generator starts at start_epoch
    gen = b()
    np.testing.assert_array_equal(next(gen)[0], eb[0][0])


def test_compare_writes_markdown_table(runs_base, synth_cache, tmp_path, capsys):
    from train.cli import main

    runs = [tiny_run(runs_base, m, synth_cache) for m in ("lrcn", "lrcn-edge")]
    out = tmp_path / "cmp" / "compare.md"
    assert main(["compare", *map(str, runs), "--out", str(out)]) == 0
    md = out.read_text()
    assert capsys.readouterr().out.endswith(md)
    lines = [l for l in md.splitlines() if l.startswith("|")]
    assert lines[0].startswith("| model | run | precision | recall | F1 | accuracy | params | size | training time")
    assert len(lines) == 4 and lines[2].startswith("| lrcn |") and lines[3].startswith("| lrcn-edge |")
    f1 = json.loads((runs[1] / "metrics.json").read_text())["f1_macro"]
    assert f"{f1:.4f}" in lines[3] and "0.7717" in md
    assert main(["compare", str(tmp_path)]) == 2


def test_label_swap_augmentation():
    """Time reversal / mirroring with label swap: the clip is transformed and the label follows."""
    from train.config import ConfigError
    from train.trainer import TrainStream, swap_table

    classes = ["MoveLeft", "MoveRight", "RotateCCW", "RotateCW"]
    rev = swap_table({"MoveLeft": "MoveRight", "RotateCW": "RotateCCW", "Grow": "Shrink"}, classes, "r")
    assert rev.tolist() == [1, 0, 3, 2]
    flip = swap_table({"MoveLeft": "MoveRight"}, classes, "f")
    assert flip.tolist() == [1, 0, -1, -1]
    with pytest.raises(ConfigError):
        swap_table({"Grow": "Shrink"}, classes, "r")
    rng = np.random.default_rng(0)
    x = rng.random((40, 5, 6, 6, 3), dtype=np.float32)
    y = np.eye(4, dtype=np.float32)[np.arange(40) % 4]
    s = TrainStream(x, y, 40, None, seed=1, reverse_map=rev, flip_map=flip)
    (xb, yb), = list(s.epoch_batches(0))
    changed = 0
    for i in range(40):
        c0, c1 = int(y[i].argmax()), int(yb[i].argmax())
        if np.array_equal(xb[i], x[i]):
            assert c1 == c0
            continue
        changed += 1
        candidates = [x[i][::-1], x[i][:, :, ::-1], x[i][::-1][:, :, ::-1]]
        k = next(j for j, cand in enumerate(candidates) if np.array_equal(xb[i], cand))
        expect = {0: rev[c0], 1: flip[c0], 2: flip[rev[c0]]}[k]
        assert c1 == expect
    assert 10 < changed < 40


def test_explicit_test_folder(tmp_path, synth_data):
    """--test-data: train/val from one folder, test from another (groups renamed so none is shared)."""
    import shutil

    from train.cli import main
    from train.run import load_run

    train_dir, test_dir = tmp_path / "train", tmp_path / "test"
    for cls_dir in sorted(p for p in synth_data.iterdir() if p.is_dir()):
        for f in sorted(cls_dir.glob("*.avi")):
            if "_g04_" in f.name:
                dst = test_dir / cls_dir.name / f.name.replace("_g04_", "_g09_")
            else:
                dst = train_dir / cls_dir.name / f.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst)
    out = tmp_path / "runs" / "run"
    assert main(train_args("lrcn-edge", train_dir, out, 1, "--test-data", str(test_dir), "--workers", "1")) == 0
    run = load_run(out)
    assert run.config["split"]["kind"] == "folder"
    assert {e["group"].split("/")[1] for e in run.split["test"]} == {"g09"}
    assert all(e["source"] == "test" for e in run.split["test"])
    x, y = run.arrays("test")
    assert len(x) == 8 and sorted(set(y.tolist())) == [0, 1, 2, 3]
    assert run.metrics["n_test"] == 8
    # the two caches sit side by side under runs/cache
    assert Path(run.config["data"]["test_cache_dir"]).parent == Path(run.config["data"]["cache_dir"]).parent
