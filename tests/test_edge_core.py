"""Core contracts of edge/: bundle schema, boundary (de)quantization, metrics, TFLite backend."""
import json
import os

import numpy as np
import pytest

from edge import bundle as B
from edge.metrics import classification_metrics, confusion_matrix, top1_agreement
from edge.preprocess import InputSpec, normalize, resize_rgb
from edge.quant import QuantParams, dequantize, quantize
from edge.sampling import TemporalSampling


def _bundle(tmp_path, **kw):
    (tmp_path / "m.tflite").write_bytes(b"x" * 10)
    art = B.Artifact(name="full-float32", file="m.tflite", format="tflite", **B.file_digest(str(tmp_path / "m.tflite")))
    b = B.Bundle(name="t", model="lrcn", labels=["a", "b"], input=InputSpec(frames=8, height=16, width=16),
                 sampling=TemporalSampling(frames=8, frame_interval_s=0.2), artifacts=[art], **kw)
    b.save(str(tmp_path))
    return b


def test_bundle_round_trip(tmp_path):
    _bundle(tmp_path, skipped=[{"format": "edgetpu", "reason": "no compiler"}])
    b = B.load(str(tmp_path))
    assert b.labels == ["a", "b"] and (tmp_path / "labels.txt").read_text().split() == ["a", "b"]
    assert b.input.clip_shape == (8, 16, 16, 3)
    assert b.sampling.clip_seconds == pytest.approx(1.6)
    a = b.find(format="tflite")[0]
    assert a.size_bytes == 10 and len(a.sha256) == 64
    assert os.path.exists(b.path(a))
    assert b.find(format="onnx") == []


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.update(colour="x"), "unknown key 'colour'"),
    (lambda d: d["input"].update(frames="20"), "'frames' has type str"),
    (lambda d: d["artifacts"][0].update(format="caffe"), "format='caffe'"),
    (lambda d: d["artifacts"][0].update(file="../etc/passwd"), "inside the bundle"),
    (lambda d: d.update(schema_version=99), "schema_version 99"),
    (lambda d: d["sampling"].update(frames=9), "sampling.frames != input.frames"),
    (lambda d: d.update(labels=[]), "labels"),
])
def test_bundle_validation_names_file_and_key(tmp_path, mutate, needle):
    _bundle(tmp_path)
    jf = tmp_path / "bundle.json"
    data = json.loads(jf.read_text())
    mutate(data)
    jf.write_text(json.dumps(data))
    with pytest.raises(B.BundleError) as e:
        B.load(str(tmp_path))
    assert needle in str(e.value) and "bundle.json" in str(e.value)


def test_bundle_missing_artifact_file_is_an_error(tmp_path):
    _bundle(tmp_path)
    os.remove(tmp_path / "m.tflite")
    with pytest.raises(B.BundleError, match="missing"):
        B.load(str(tmp_path))


def test_not_a_bundle_says_how_to_make_one(tmp_path):
    with pytest.raises(B.BundleError, match="edge-quantize"):
        B.load(str(tmp_path))


def test_quantize_dequantize_round_trip_and_saturation():
    q = QuantParams(scale=1 / 255, zero_point=-128, dtype=np.dtype("int8"))
    x = np.linspace(0, 1, 256, dtype=np.float32)
    xi = quantize(x, q)
    assert xi.dtype == np.int8 and xi.min() == -128 and xi.max() == 127
    assert np.abs(dequantize(xi, q) - x).max() <= 0.5 / 255 + 1e-7
    assert quantize(np.array([5.0, -5.0], np.float32), q).tolist() == [127, -128]
    qu = QuantParams(scale=0.5, zero_point=10, dtype=np.dtype("uint8"))
    assert quantize(np.array([0.0, 1.0, -100.0]), qu).tolist() == [10, 12, 0]
    # float tensors pass through
    assert dequantize(x, None) is x or np.array_equal(dequantize(x, None), x)


def test_metrics_match_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 5, 200))
    p[p == 4] = 3  # class 4 never predicted: zero_division path
    m = classification_metrics(y, p, labels=list("abcde"))
    P, R, F, S = sk.precision_recall_fscore_support(y, p, labels=range(5), zero_division=0)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, p))
    assert m["f1_macro"] == pytest.approx(F.mean())
    assert m["precision_macro"] == pytest.approx(P.mean())
    assert m["recall_weighted"] == pytest.approx(sk.recall_score(y, p, average="weighted", zero_division=0))
    assert m["f1_weighted"] == pytest.approx(sk.f1_score(y, p, average="weighted", zero_division=0))
    assert m["per_class"]["e"]["support"] == int(S[4])
    assert np.array_equal(np.array(m["confusion_matrix"]), sk.confusion_matrix(y, p, labels=range(5)))
    assert confusion_matrix([0, 1], [1, 1], 2).tolist() == [[0, 1], [0, 1]]
    assert top1_agreement(np.eye(3), np.eye(3)[[0, 2, 2]]) == pytest.approx(2 / 3)


def test_preprocess_is_resize_then_scale():
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 0] = 255  # pure red in RGB
    spec = InputSpec(height=12, width=16)
    out = normalize(resize_rgb(frame, spec.size), spec)
    assert out.shape == (12, 16, 3) and out.dtype == np.float32
    assert np.allclose(out[..., 0], 1.0) and np.allclose(out[..., 1:], 0.0)
    bgr = resize_rgb(frame, (12, 16), bgr=True)  # BGR input: red channel last -> first
    assert bgr[..., 2].max() == 255 and bgr[..., 0].max() == 0
    assert normalize(np.array([0, 51, 255], np.uint8)).tolist() == pytest.approx([0.0, 0.2, 1.0])
    with pytest.raises(ValueError):
        resize_rgb(np.zeros((4, 4), np.uint8), (2, 2))
