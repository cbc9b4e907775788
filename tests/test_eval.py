"""edge-eval: reproduces a run's metrics, scores TFLite files and bundles through the device path
(edge.classifier + edge.backends), matches scikit-learn, and refuses bad input with exit code 2."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from train_helpers import tiny_run  # noqa: E402


@pytest.fixture(scope="module")
def runs_base(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "train-runs"


@pytest.mark.parametrize("model", ["lrcn", "lrcn-edge"])
def test_edge_eval_reproduces_run_metrics(model, runs_base, synth_cache, synth_data, tmp_path):
    from train.evaluate import main

    run = tiny_run(runs_base, model, synth_cache)
    want = json.loads((run / "metrics.json").read_text())
    # --data as the prepared cache, then as the raw folder the cache was made from
    for i, data in enumerate((synth_cache, synth_data)):
        out = tmp_path / f"eval{i}"
        assert main([str(run), "--data", str(data), "--out", str(out), "--quiet"]) == 0
        got = json.loads((out / "metrics.json").read_text())
        assert got["f1_macro"] == pytest.approx(want["f1_macro"], abs=1e-9)
        assert got["n_test"] == want["n_test"] and got["confusion_matrix"] == want["confusion_matrix"]
        assert got["scored"] == "the run's test split"
        assert (out / "confusion_matrix.png").is_file() and (out / "confusion_matrix.csv").is_file()
    # --split all scores every clip of the folder
    out = tmp_path / "all"
    assert main([str(run / "model.keras"), "--data", str(synth_cache), "--split", "all", "--out", str(out),
                 "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["n_test"] == 32


def _tflite(model, path: Path) -> Path:
    # batch fixed to 1 (as on the device): the LSTM lowers to a fused op only with static shapes
    spec = tf.TensorSpec((1,) + tuple(model.input_shape[1:]), tf.float32)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    path.write_bytes(conv.convert())
    return path


def test_edge_eval_tflite_and_bundle_use_the_device_path(runs_base, synth_cache, tmp_path):
    from edge.bundle import Artifact, Bundle
    from edge.preprocess import InputSpec
    from edge.sampling import TemporalSampling
    from train.evaluate import main
    from train.run import load_run

    run = load_run(tiny_run(runs_base, "lrcn-edge", synth_cache))
    want = run.metrics
    enc, head = run.load_parts()
    bdir = tmp_path / "bundle"
    bdir.mkdir()
    _tflite(enc, bdir / "encoder.tflite")
    _tflite(head, bdir / "head.tflite")
    _tflite(run.load_model(), bdir / "model.tflite")
    arts = [Artifact(name=n, file=f"{n}.tflite", format="tflite", part=p)
            for n, p in (("encoder", "encoder"), ("head", "head"), ("model", "full"))]
    Bundle(name="lrcn-edge", model="lrcn-edge", labels=run.labels, input=run.input_spec(),
           sampling=run.sampling(), artifacts=arts, streaming={"feature_dim": int(enc.output_shape[-1])}).save(str(bdir))

    # a single .tflite file with --run: same clips, same labels
    out = tmp_path / "tfl"
    assert main([str(bdir / "model.tflite"), "--run", str(run.dir), "--data", str(synth_cache), "--out", str(out),
                 "--quiet"]) == 0
    got = json.loads((out / "metrics.json").read_text())
    assert got["backend"] == "tflite" and got["n_test"] == want["n_test"]
    assert got["f1_macro"] == pytest.approx(want["f1_macro"], abs=1e-6)        # float TFLite == Keras

    # the bundle: every CPU artifact (full model; encoder paired with the head)
    out = tmp_path / "bundle-eval"
    assert main([str(bdir), "--run", str(run.dir), "--data", str(synth_cache), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"encoder+head", "model"}
    for name, m in summary.items():
        assert m["f1_macro"] == pytest.approx(want["f1_macro"], abs=1e-6), name
        assert (out / name / "metrics.json").is_file()
    # one artifact by name
    out = tmp_path / "one"
    assert main([str(bdir), "--artifact", "model", "--run", str(run.dir), "--data", str(synth_cache),
                 "--out", str(out), "--quiet"]) == 0
    assert (out / "metrics.json").is_file()


def test_metrics_match_sklearn(runs_base, synth_cache):
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    from train.evaluate import evaluate_keras
    from train.run import load_run

    run = load_run(tiny_run(runs_base, "lrcn", synth_cache))
    x, y = run.arrays("test")
    model = run.load_model()
    m = evaluate_keras(model, x, y, run.labels)
    pred = model.predict(x, verbose=0).argmax(-1)
    labels = list(range(len(run.labels)))
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        assert m[f"precision_{avg}"] == pytest.approx(p) and m[f"recall_{avg}"] == pytest.approx(r)
        assert m[f"f1_{avg}"] == pytest.approx(f)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    # a hand-made case where the metrics are not trivial
    from edge.metrics import classification_metrics

    yt, yp = np.array([0, 0, 1, 1, 2, 2, 2]), np.array([0, 1, 1, 1, 2, 0, 0])
    cm = classification_metrics(yt, yp, labels=["a", "b", "c"])
    p, r, f, _ = precision_recall_fscore_support(yt, yp, average="macro", zero_division=0)
    assert (cm["precision_macro"], cm["recall_macro"], cm["f1_macro"]) == pytest.approx((p, r, f))


def test_edge_eval_bad_input(tmp_path, synth_cache, runs_base, capsys):
    from train.evaluate import main

    assert main([str(tmp_path / "nope.keras"), "--data", str(synth_cache)]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "model.bin"
    junk.write_bytes(b"x")
    assert main([str(junk), "--data", str(synth_cache)]) == 2
    assert "unsupported model file" in capsys.readouterr().err
    run = tiny_run(runs_base, "lrcn", synth_cache)
    assert main([str(run), "--data", str(tmp_path / "nodata")]) == 2
    assert "no such data folder" in capsys.readouterr().err
