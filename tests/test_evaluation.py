"""The one evaluation path (edge/evaluation.py): a clip file gives the prediction the training
cache gives for it, metrics from uint8 and normalised clips agree, the factory builds every plan."""
import dataclasses
import os
import sys

import numpy as np
import pytest

from edge.bundle import load as load_bundle
from edge.evaluation import (classifier_for, clip_scores, evaluate, load_eval_set, metrics_of,
                             predict_file, read_file_clip)
from edge.preprocess import normalize
from edge.select import Plan, plan, plan_files

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="module")
def tiny():
    from _tiny_models import cached_bundle
    return load_bundle(cached_bundle(labels=["MoveLeft", "MoveRight", "Grow", "Shrink"], frames=8, size=32))


def test_predict_file_is_what_training_data_gives(tiny, synth_data, tmp_path):
    """edge-data prepare (what training and edge-eval read) and predict_file see the same frames,
    so they give the same prediction for every clip."""
    from train.data import load_clips, load_manifest, prepare
    prepare(str(synth_data), str(tmp_path / "cache"), frames=tiny.input.frames, size=tiny.input.size,
            short_policy=tiny.sampling.short_policy, progress=False)
    manifest = load_manifest(tmp_path / "cache")
    entries = manifest.ok_entries[::4]
    x, _ = load_clips(manifest, entries)
    with classifier_for(tiny, plan(tiny, "cpu")) as clf:
        for e, cached in zip(entries, x):
            path = os.path.join(str(synth_data), e.path)
            clip = read_file_clip(tiny.input, tiny.sampling, path)
            assert clip.dtype == np.uint8 and clip.shape == tiny.input.clip_shape
            assert np.array_equal(normalize(clip, tiny.input), cached)
            p = predict_file(clf, tiny, path)
            want = clf.predict(cached)
            assert p.index == int(np.argmax(want)) and p.label == tiny.labels[p.index]
            assert p.score == pytest.approx(float(want.max()), abs=1e-6)
            assert p.to_dict() == {"label": p.label, "score": round(p.score, 6)}


def test_evaluate_uint8_and_float_agree_and_folder_loads(tiny, synth_data):
    data = load_eval_set(str(synth_data), tiny.labels, tiny.input, tiny.sampling, max_clips=8)
    assert len(data) == 8 and len(set(data.y.tolist())) == 4          # round-robin over the classes
    with classifier_for(tiny, plan(tiny, "cpu", precision="float32")) as clf:
        ref = np.stack([clip_scores(clf, c, tiny.input) for c in data.clips])
        m8 = evaluate(clf, data.clips, data.y, tiny.labels, tiny.input, reference_scores=ref)
        mf = evaluate(clf, np.stack([normalize(c, tiny.input) for c in data.clips]), data.y, tiny.labels, tiny.input)
    assert m8["n_test"] == 8 and m8["top1_agreement"] == 1.0 and m8["seconds"] >= 0
    assert m8["f1_macro"] == mf["f1_macro"] and m8["confusion_matrix"] == mf["confusion_matrix"]


def test_metrics_of_counts_top1():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    m = metrics_of([0, 1, 1], scores, ["a", "b"], seconds=1.5, reference_scores=scores[:, ::-1])
    assert m["accuracy"] == pytest.approx(2 / 3) and m["clips_per_s"] == 2.0
    assert m["top1_agreement"] == 0.0


def test_factory_builds_full_and_streaming_plans_and_files(tiny):
    for device_plan in (plan(tiny, "cpu"), plan(tiny, "cpu", prefer_streaming=False),
                        plan(tiny, "cpu", backend="onnxruntime")):
        with classifier_for(tiny, device_plan) as clf:
            assert clf.streaming == device_plan.streaming
            assert set(clf.load_ms) == ({"main", "head"} if device_plan.streaming else {"main"})
            out = clf.predict(np.zeros(tiny.input.clip_shape, np.float32))
            assert out.shape == (len(tiny.labels),) and np.isfinite(out).all()
    enc = tiny.find(part="encoder", format="tflite", precision="float32")[0]
    head = tiny.find(part="head", format="onnx")[0]
    b, p = plan_files(encoder=tiny.path(enc), head=tiny.path(head))
    assert (p.backend, p.head_backend) == ("tflite", "onnxruntime")
    with classifier_for(b, p) as clf:
        assert clf.streaming
    broken = Plan("tflite", enc, dataclasses.replace(head, file="missing.onnx"), "onnxruntime")
    with pytest.raises(Exception):
        classifier_for(tiny, broken)


@pytest.mark.realdata
def test_predict_file_agrees_with_edge_eval_on_every_real_clip(shared_data, tmp_path):
    """Every clip of ucf101-mini: the top-1 of predict_file (edge-run's file prediction) is the top-1
    edge-eval computes from its prepared cache (train.data.prepare, the training sampling)."""
    from _tiny_models import cached_bundle
    from train.data import load_clips, load_manifest, prepare
    data = shared_data / "ucf101-mini"
    labels = sorted(p.name for p in data.iterdir() if p.is_dir())
    b = load_bundle(cached_bundle(labels=labels, frames=8, size=16))
    prepare(str(data), str(tmp_path / "cache"), frames=b.input.frames, size=b.input.size,
            short_policy=b.sampling.short_policy, progress=False)
    manifest = load_manifest(tmp_path / "cache")
    entries = manifest.ok_entries
    assert len(entries) == len(list(data.glob("*/*.avi")))
    x, _ = load_clips(manifest, entries)
    with classifier_for(b, plan(b, "cpu")) as clf:
        for e, cached in zip(entries, x):
            assert predict_file(clf, b, str(data / e.path)).index == int(np.argmax(clf.predict(cached))), e.path
