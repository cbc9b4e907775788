"""edge-quantize end to end on tiny real runs (synthetic videos -> edge-train -> edge-quantize):
pruning reaches its target, QAT keeps the zeros, every .tflite runs without TensorFlow, ONNX matches
Keras, the Edge TPU analysis passes the lrcn-edge encoder and flags the others, bundle.json validates."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.5
TOL = 0.02


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    from train.data import synthesize

    return synthesize(tmp_path_factory.mktemp("qsynth") / "data", classes=3, clips_per_class=8, seed=1,
                      frames=12, size=32, groups=4)


def _train(tmp_path_factory, data, model):
    from train.config import TrainConfig
    from train.trainer import train

    root = tmp_path_factory.mktemp(f"qrun-{model}")
    cfg = TrainConfig(model=model, data=str(data), out=str(root / "run"), cache=str(root / "cache"), frames=6,
                      size=(16, 16), epochs=1, batch_size=4, progress=False, seed=0)
    train(cfg, log=lambda *a, **k: None)
    return root / "run"


@pytest.fixture(scope="session")
def edge_run(tmp_path_factory, tiny_data):
    return _train(tmp_path_factory, tiny_data, "lrcn-edge")


@pytest.fixture(scope="session")
def lrcn_run(tmp_path_factory, tiny_data):
    return _train(tmp_path_factory, tiny_data, "lrcn")


@pytest.fixture(scope="session")
def convlstm_run(tmp_path_factory, tiny_data):
    return _train(tmp_path_factory, tiny_data, "convlstm")


def _quantize(run, out, formats, *extra):
    from quantize.cli import main

    rc = main([str(run), "--out", str(out), "--formats", formats, "--prune-epochs", "1", "--qat-epochs", "1",
               "--calib-clips", "6", "--no-progress", *extra])
    assert rc == 0
    from edge.bundle import load
    return load(str(out))        # validates bundle.json and that every ok artifact's file exists


def _int8_weight_sparsity(path):
    """Zero fraction of the int8 weight operands of CONV_2D / FULLY_CONNECTED / DEPTHWISE ops (flatbuffer)."""
    from ai_edge_litert import schema_py_generated as s

    data = open(path, "rb").read()
    m = s.Model.GetRootAsModel(data, 0)
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    g = m.Subgraphs(0)
    zeros = total = 0
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        if name not in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D"):
            continue
        t = g.Tensors(int(op.InputsAsNumpy()[1]))
        buf = m.Buffers(t.Buffer())
        if buf.DataLength() == 0 or t.Type() != s.TensorType.INT8:
            continue
        w = buf.DataAsNumpy().view(np.int8)
        if w.size < 16:
            continue
        zeros += int((w == 0).sum())
        total += int(w.size)
    return zeros / total if total else None


NO_TF_RUNNER = r"""
import sys, json
import numpy as np
for name in ("tensorflow", "tf_keras", "tensorflow_model_optimization"):
    sys.modules[name] = None          # any import of TensorFlow now fails
from edge.bundle import load
from edge.backends import load_backend
b = load(sys.argv[1])
out = {}
for a in b.artifacts:
    if a.format != "tflite" or a.status != "ok":
        continue
    be = load_backend(b.path(a))
    y = be.infer(np.random.default_rng(0).random(be.input_shape, dtype=np.float32))
    out[a.name] = [list(be.input_shape), bool(np.isfinite(y).all()), be.runtime]
print(json.dumps(out))
"""


def _run_without_tf(bundle_dir):
    p = subprocess.run([sys.executable, "-c", NO_TF_RUNNER, str(bundle_dir)], capture_output=True, text=True,
                       cwd=str(REPO), timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def _check_sparsity_rows(bundle):
    rows = bundle.producer["sparsity"]
    assert rows, "no sparsity report"
    for r in rows:
        if r["size"] >= 16:
            assert abs(r["sparsity"] - TARGET) <= TOL, r
    # prune-preserving QAT kept every kernel at the target (LSTM/ConvLSTM included)
    qrows = bundle.producer["qat_sparsity"]
    assert qrows
    for r in qrows:
        assert abs(r["sparsity"] - TARGET) <= TOL, r
    return rows


def _check_int8_choice(bundle, artifact):
    ch = bundle.producer["int8_choice"]
    assert ch["source"] in ("QAT", "post-training") and ch["n_clips"] > 0
    assert set(ch["agreement_on_train_val"]) == {"QAT", "post-training"}     # both candidates converted
    assert all(0.0 <= v <= 1.0 for v in ch["agreement_on_train_val"].values())
    assert f"from the {ch['source']} model" in artifact.notes


def _check_tensorrt_variants(b, out):
    """TensorRT's inputs next to encoder.onnx / full.onnx, verified; what is missing says why."""
    fp16 = b.artifact("encoder-float16-onnx")
    assert (fp16.file, fp16.devices) == ("encoder_fp16.onnx", ["jetson"])
    assert fp16.metrics["reference"] == "encoder.onnx" and fp16.metrics["verified"]
    # The QDQ int8 ONNX of the trained, pruned encoder (unfolded BatchNorms) agrees with its int8 TFLite
    # and is recorded (issue 10: it used to be dropped, max abs diff ~2 against a tolerance ~0.1).
    assert not [s for s in b.skipped if (s["format"], s["part"], s.get("precision")) == ("onnx", "encoder", "int8")]
    qdq = b.artifact("encoder-int8-onnx")
    assert (qdq.file, qdq.devices) == ("encoder_int8.onnx", ["cpu", "jetson"]) and qdq.metrics["verified"]
    assert qdq.metrics["reference"] == "encoder_int8.tflite" and qdq.metrics["n_verify"] > 0
    m = qdq.metrics       # a replica of the int8 TFLite, or as close to the float ONNX as the TFLite (qdq2)
    assert m["criterion"] in ("replica", "float-distance") and m["float_reference"] == "encoder.onnx", m
    if m["criterion"] == "replica":
        assert 0 < m["max_abs_diff"] <= m["tolerance"], m
    else:
        assert m["max_abs_diff_vs_float"] <= m["float_ratio_limit"] * m["int8_tflite_max_abs_diff_vs_float"], m
    assert "top1_agreement_vs_reference" in m       # the verification's own key: scoring keeps it
    assert b"QuantizeLinear" in (out / qdq.file).read_bytes()
    assert b.artifact("full-float16-onnx").devices == ["jetson"]
    no_qdq = [s for s in b.skipped if (s["format"], s["part"], s.get("precision")) == ("onnx", "full", "int8")]
    assert no_qdq and "no int8 TFLite" in no_qdq[0]["reason"]       # lrcn-edge's int8 parts: encoder, head
    trt = {(s["part"], s["precision"]): s["reason"] for s in b.skipped if s["format"] == "tensorrt"}
    if trt:                                     # no TensorRT here: one trtexec per family, nothing built
        assert "TensorRT 8.2: `trtexec --onnx=encoder.onnx" in trt[("encoder", "fp16")]
        assert "TensorRT 11: `trtexec --onnx=encoder_fp16.onnx" in trt[("encoder", "fp16")]
        assert "TensorRT 11" in fp16.notes
        assert "--onnx=encoder_int8.onnx" in trt[("encoder", "int8")]


def _check_edgetpu_skips(b):
    skipped = {(s["format"], s["part"]): s for s in b.skipped}
    if ("edgetpu", "encoder") not in skipped:
        return
    enc = skipped[("edgetpu", "encoder")]        # no compiler here: said so, with how to get it
    assert "edgetpu_compiler" in enc["reason"] and "_edgetpu.tflite not produced" in enc["reason"]
    if b.artifact("head-int8-tflite").edgetpu["mappable"]:     # co-compiled elsewhere: one command
        assert enc["command"] == "edgetpu_compiler -s -o . encoder_int8.tflite head_int8.tflite"
        assert skipped[("edgetpu", "head")]["predicted"]["mappable"] is True
    else:
        assert enc["command"] == "edgetpu_compiler -s -o . encoder_int8.tflite"


def test_lrcn_edge_chain(edge_run, tmp_path):
    out = tmp_path / "bundle"
    b = _quantize(edge_run, out, "tflite-fp32,tflite-int8,onnx,edgetpu,tensorrt")
    assert b.model == "lrcn-edge" and b.is_streaming
    assert b.streaming["feature_dim"] > 0
    assert (out / "labels.txt").read_text().split() == b.labels
    assert b.input.frames == 6 and b.input.height == 16 and b.sampling.frames == 6

    rows = _check_sparsity_rows(b)
    assert any(r["layer"].startswith("encoder/") for r in rows) and any(r["layer"].startswith("head/") for r in rows)

    enc = b.artifact("encoder-int8-tflite")
    head = b.artifact("head-int8-tflite")
    assert enc.part == "encoder" and head.part == "head" and enc.precision == "int8"
    assert enc.devices == ["cpu", "coral"], enc.devices
    assert enc.edgetpu["mappable"] and enc.edgetpu["ops_on_tpu"] == enc.edgetpu["ops_total"]
    assert not b.artifact("encoder-float32-tflite").edgetpu["mappable"]          # float flagged
    assert enc.quantization["input"]["dtype"] == "int8" and enc.quantization["input"]["scale"] > 0
    _check_int8_choice(b, enc)
    # the zeros survive all the way into the int8 flatbuffer
    assert abs(_int8_weight_sparsity(str(out / enc.file)) - TARGET) <= TOL + 0.01
    assert abs(enc.sparsity - TARGET) <= TOL

    for a in b.artifacts:
        assert a.size_bytes == os.path.getsize(out / a.file) and len(a.sha256) == 64
        if a.format in ("tflite", "onnx") and "cpu" in a.devices:
            assert 0.0 <= a.metrics["f1_macro"] <= 1.0 and 0.0 <= a.metrics["top1_agreement"] <= 1.0
            assert a.metrics["n_test"] > 0
    for a in b.find(format="onnx", precision="float32"):
        assert a.metrics["max_abs_diff_vs_keras"] <= 1e-4, a
        assert "jetson" in a.devices
    assert b.artifact("full-float32-onnx").part == "full"
    _check_tensorrt_variants(b, out)
    _check_edgetpu_skips(b)

    ran = _run_without_tf(out)
    assert set(ran) == {a.name for a in b.find(format="tflite")}
    assert all(ok for _, ok, _ in ran.values())
    assert ran["encoder-int8-tflite"][0] == [1, 16, 16, 3]


def test_lrcn_chain(lrcn_run, tmp_path):
    out = tmp_path / "bundle"
    b = _quantize(lrcn_run, out, "tflite-fp32,tflite-int8,onnx")   # fp16/dynamic: test_quantize_units
    assert not b.is_streaming
    _check_sparsity_rows(b)
    names = {a.name for a in b.artifacts}
    assert names == {"full-float32-tflite", "full-int8-tflite", "full-float32-onnx"}
    fp32 = b.artifact("full-float32-tflite")
    int8 = b.artifact("full-int8-tflite")
    _check_int8_choice(b, int8)
    assert abs(_int8_weight_sparsity(str(out / int8.file)) - TARGET) <= TOL + 0.01
    # float artifacts of the same (pruned) model agree with each other on every clip
    assert b.artifact("full-float32-onnx").metrics["max_abs_diff_vs_keras"] <= 1e-4
    assert fp32.metrics["f1_macro"] == b.artifact("full-float32-onnx").metrics["f1_macro"]
    # a whole-clip LRCN is not an Edge TPU model: 5-D clip tensors, LSTM
    assert not int8.edgetpu["mappable"] and int8.devices == ["cpu"]
    assert "NOT Edge TPU compatible" in int8.notes
    assert int8.size_bytes * 3.5 <= b.producer["reference"]["size_bytes"]
    ran = _run_without_tf(out)
    assert len(ran) == 2 and all(ok for _, ok, _ in ran.values())


def test_convlstm_int8_path(convlstm_run, tmp_path):
    out = tmp_path / "bundle"
    b = _quantize(convlstm_run, out, "keras,tflite-fp32,tflite-int8")
    k = b.artifact("full-float32-keras")
    assert k.format == "keras" and (out / k.file).stat().st_size == k.size_bytes and k.metrics == {}
    _check_sparsity_rows(b)
    int8 = b.artifact("full-int8-tflite")
    assert int8.status == "ok" and int8.quantization["input"]["dtype"] == "int8"
    _check_int8_choice(b, int8)
    assert not int8.edgetpu["mappable"] and "NOT Edge TPU compatible" in int8.notes
    fp32 = b.artifact("full-float32-tflite")
    assert fp32.edgetpu["subgraphs"] > 1            # float ConvLSTM keeps its WHILE loop: flagged
    assert any("WHILE" in n for n in fp32.edgetpu["notes"])
    ran = _run_without_tf(out)
    assert ran["full-int8-tflite"][1]


def test_fp32_tflite_agrees_with_keras_when_nothing_changes(edge_run, tmp_path):
    """No pruning, no QAT: the float TFLite pair must pick exactly what the Keras model picks."""
    b = _quantize(edge_run, tmp_path / "b", "tflite-fp32", "--no-prune", "--no-qat")
    for a in b.artifacts:
        assert a.metrics["top1_agreement"] == 1.0, a.name
        assert a.metrics["f1_macro"] == pytest.approx(b.producer["reference"]["f1_macro"])
    assert b.producer["sparsity"] == [] and b.artifact("encoder-float32-tflite").sparsity is None


@pytest.mark.parametrize("argv,needle", [
    (["/nonexistent/run", "--out", "/tmp/x"], "not a directory"),
    (["RUN", "--out", "OUT", "--formats", "tflite-int4"], "unknown format"),
    (["RUN", "--out", "OUT", "--sparsity", "1.5"], "--sparsity"),
    (["RUN", "--out", "OUT", "--layer-sparsity", "LSTM"], "TYPE=SPARSITY"),
    (["RUN"], "--out"),
])
def test_cli_bad_input_exits_2(argv, needle, tmp_path, capsys):
    from quantize.cli import main

    argv = [str(tmp_path) if a == "RUN" else str(tmp_path / "o") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_cli_help_is_fast_and_teaches():
    import time

    t = time.time()
    p = subprocess.run([sys.executable, "-m", "quantize.cli", "--help"], capture_output=True, text=True,
                       cwd=str(REPO), timeout=60)
    assert p.returncode == 0 and "examples:" in p.stdout and "tflite-int8" in p.stdout
    assert time.time() - t < 10
    p = subprocess.run([sys.executable, "-c", "import quantize.cli, sys; print('tensorflow' in sys.modules)"],
                       capture_output=True, text=True, cwd=str(REPO), timeout=60)
    assert p.stdout.strip() == "False"
