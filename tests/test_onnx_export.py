"""ONNX export (tf2onnx) verified with onnxruntime against Keras on real clips: within 1e-4."""
from __future__ import annotations

import numpy as np
import pytest


def _real_clips(shared_data, frames, size, n=3):
    from edge.video import read_clip

    paths = sorted((shared_data / "ucf101-mini").glob("*/*.avi"))[:: 18][:n]
    clips = []
    for p in paths:
        c = read_clip(str(p), n_frames=frames, size=size)
        clips.append(np.asarray(getattr(c, "frames", c), np.float32))
    return clips


@pytest.mark.parametrize("name", ["lrcn", "convlstm"])
def test_onnx_matches_keras_on_real_clips(name, shared_data, tmp_path):
    from quantize.onnx_export import export, verify
    from quantize.rewrite import export_friendly
    from train.models import build_model

    model = export_friendly(build_model(name, num_classes=6, frames=6, size=(24, 24), compile=False))
    clips = _real_clips(shared_data, 6, (24, 24))
    assert clips[0].shape == (6, 24, 24, 3) and 0.0 <= clips[0].min() and clips[0].max() <= 1.0
    path = export(model, str(tmp_path / f"{name}.onnx"))
    import onnx
    m = onnx.load(path)
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 13
    chk = verify(path, model, clips)
    assert chk.n == len(clips)
    assert chk.max_abs_diff <= 1e-4, chk
    assert chk.top1_agreement == 1.0 and chk.ok()


def test_onnx_lrcn_edge_parts_match_keras(shared_data, tmp_path):
    from quantize.onnx_export import export, verify
    from quantize.representative import encode_clips
    from train.models import build_parts

    p = build_parts(6, 6, (24, 24), compile=False)
    clips = _real_clips(shared_data, 6, (24, 24), n=2)
    frames = list(np.concatenate(clips))
    assert verify(export(p.encoder, str(tmp_path / "enc.onnx")), p.encoder, frames).max_abs_diff <= 1e-4
    feats = list(encode_clips(p.encoder, np.stack(clips)))
    assert verify(export(p.head, str(tmp_path / "head.onnx")), p.head, feats).max_abs_diff <= 1e-4
    assert verify(export(p.full, str(tmp_path / "full.onnx")), p.full, clips).max_abs_diff <= 1e-4


def test_opset_below_13_rejected(tmp_path):
    from quantize.onnx_export import export
    from train.models import build_model

    with pytest.raises(ValueError):
        export(build_model("lrcn", num_classes=2, frames=2, size=(8, 8), compile=False), str(tmp_path / "x.onnx"), 12)


# ---- the ONNX variants TensorRT builds from ---------------------------------------------------------
def _fakes():
    import os
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from fakes import onnx_models
    return onnx_models


def test_fp16_onnx_keeps_float_io_and_matches_float(tmp_path):
    import onnx
    from onnx import TensorProto

    from quantize.onnx_export import export_fp16, verify_fp16

    OM = _fakes()
    f = OM.save(OM.float_model(), tmp_path / "encoder.onnx")
    h = export_fp16(f, str(tmp_path / "encoder_fp16.onnx"))
    m = onnx.load(h)
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert m.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    floats = {t.name: t.data_type for t in m.graph.initializer}
    assert floats["W"] == TensorProto.FLOAT16 and floats["shape"] == TensorProto.INT64
    rng = np.random.default_rng(0)
    chk = verify_fp16(h, f, [rng.random(OM.SHAPE[1:], np.float32) for _ in range(4)])
    assert chk.ok() and 0 < chk.max_abs_diff < 1e-2, chk     # fp16 really changed the arithmetic


@pytest.fixture(scope="module")
def int8_encoder(tmp_path_factory):
    """(directory, int8 TFLite) of the tiny encoder, with its float ONNX as encoder.onnx; built once."""
    _fakes()
    from _tiny_models import build_parts, to_onnx, to_tflite

    from quantize.onnx_export import export

    d = tmp_path_factory.mktemp("enc")
    enc, _head, _full = build_parts()
    (d / "encoder_int8.tflite").write_bytes(to_tflite(enc, int8=True))
    export(enc, str(d / "encoder.onnx"))          # what edge-quantize writes: dynamic batch
    to_onnx(enc, str(d / "encoder_b1.onnx"))      # a batch-1 ONNX (older bundles)
    return d, str(d / "encoder_int8.tflite")


def _batch_dim(path):
    import onnx

    m = onnx.load(str(path))
    return [vi.type.tensor_type.shape.dim[0].dim_param or vi.type.tensor_type.shape.dim[0].dim_value
            for vi in list(m.graph.input) + list(m.graph.output)]


def test_encoder_onnx_and_its_variants_have_a_dynamic_batch(int8_encoder, tmp_path):
    """float, FP16 and QDQ int8 encoder ONNX: input and output batch is ``batch``; onnxruntime runs
    4 frames in one call and gives the per-frame outputs."""
    import shutil

    from edge.backends.onnxruntime import OnnxRuntimeBackend
    from quantize.onnx_export import batch_agrees, export_fp16, export_qdq

    d, tfl = int8_encoder
    f = shutil.copy(str(d / "encoder.onnx"), str(tmp_path / "encoder.onnx"))
    paths = [f, export_fp16(f, str(tmp_path / "encoder_fp16.onnx")), export_qdq(tfl, str(tmp_path / "encoder_int8.onnx"))]
    x = np.random.default_rng(7).random((4, 16, 16, 3)).astype(np.float32)
    for p in paths:
        assert _batch_dim(p) == ["batch", "batch"], p
        assert batch_agrees(p, n=3)
        b = OnnxRuntimeBackend(p)
        try:
            assert b.input.shape == (1, 16, 16, 3)
            many = b.session.run(None, {b.input.name: x})[0]
            one = np.concatenate([b.infer(f1[None]) for f1 in x])
        finally:
            b.close()
        assert many.shape == (4, 8) and np.abs(many - one).max() < 1e-5, p
    assert _batch_dim(d / "encoder_b1.onnx") == [1, 1]
    assert batch_agrees(str(d / "encoder_b1.onnx")) is False      # a fixed batch is told apart


def test_batch_agrees_is_false_when_the_graph_bakes_in_batch_1(tmp_path):
    """A Reshape to [1, -1] runs only batch 1: the export check must keep such a graph at batch 1."""
    import onnx

    from quantize.onnx_export import batch_agrees, name_batch_dim

    OM = _fakes()
    p = str(tmp_path / "m.onnx")
    onnx.save(name_batch_dim(OM.float_model()), p)          # batch made symbolic, Reshape still [1, -1]
    assert _batch_dim(p) == ["batch", "batch"] and not batch_agrees(p)
    onnx.save(OM.float_model(dynamic=True), p)
    assert batch_agrees(p)


def test_qdq_onnx_from_int8_tflite_is_symmetric_and_agrees(int8_encoder, tmp_path):
    """INT8 by explicit quantization: QDQ ONNX from the (QAT) int8 TFLite, zero points 0 for TensorRT,
    float I/O, and onnxruntime on it agrees with the int8 TFLite."""
    import onnx
    from onnx import TensorProto, numpy_helper

    from quantize.onnx_export import export_qdq, verify_qdq

    _d, tfl = int8_encoder
    q = export_qdq(tfl, str(tmp_path / "encoder_int8.onnx"))
    m = onnx.load(q)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    qdq = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) >= 6 and all(len(n.input) == 3 for n in qdq)
    assert all(inits[n.input[2]].dtype == np.int8 and not inits[n.input[2]].any() for n in qdq)
    assert all(v.dtype != np.int32 for v in inits.values())           # biases are float for TensorRT
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert [m.graph.input[0].name, m.graph.output[0].name] == ["input", "scores"]
    rng = np.random.default_rng(2)
    chk = verify_qdq(q, tfl, [rng.random((16, 16, 3), np.float32) for _ in range(6)])
    assert chk.ok(), chk
    assert chk.max_abs_diff > 0        # a real int8 model, not the float one


def test_tensorrt_variants_for_a_part(int8_encoder, tmp_path):
    """What the bundle writer calls per part: both variants written next to the float ONNX, verified."""
    import shutil

    from quantize.onnx_export import tensorrt_variants

    d, tfl = int8_encoder
    shutil.copy(str(d / "encoder.onnx"), str(tmp_path / "encoder.onnx"))
    rng = np.random.default_rng(4)
    inputs = [rng.random((16, 16, 3), np.float32) for _ in range(3)]
    rows = tensorrt_variants(str(tmp_path / "encoder.onnx"), tfl, inputs)
    assert [(r["precision"], r["ok"]) for r in rows] == [("float16", True), ("int8", True)], rows
    assert rows[0]["file"] == str(tmp_path / "encoder_fp16.onnx")
    assert rows[1]["file"] == str(tmp_path / "encoder_int8.onnx")
    assert rows[1]["metrics"]["reference"] == "encoder_int8.tflite" and rows[1]["metrics"]["n_verify"] == 3
    none = tensorrt_variants(str(tmp_path / "encoder.onnx"), None, [])
    assert none[1]["file"] is None and "fp16 instead" in none[1]["reason"]
    assert none[0]["file"] and not none[0]["ok"] and none[0]["reason"] == "not verified (no inputs given)"


# ---- issue 10: the QDQ ONNX of a trained lrcn-edge encoder disagreed with its int8 TFLite ----------
# The pruned + QAT encoder keeps its BatchNorms unfolded: TFLite MUL/ADD by per-channel constants that
# are int8 *per tensor, asymmetric* (a positive BN scale: zero point -128, real range [0, 255*scale]).
# Re-quantizing them with zero point 0 and the same scale clipped every value above 127*scale, and the
# graph input's widened scale lost a bit that the BN multipliers amplified.
BN_SCALE = np.array([0.5, 3.0, 9.0, 14.0], np.float32)     # trained BN scales span a wide range
BN_OFFSET = np.array([0.1, -0.5, 0.3, 0.2], np.float32)


@pytest.fixture(scope="module")
def unfolded_bn_tflite(tmp_path_factory):
    """int8 TFLite of Conv -> MaxPool -> per-channel scale/offset (an unfolded BatchNorm: the pool keeps
    the converter from folding it into the Conv) -> ReLU -> Dense."""
    _fakes()
    from _tiny_models import _tf, to_tflite

    _tf_mod, keras = _tf()
    keras.utils.set_random_seed(0)
    x_in = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(x_in)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Rescaling(BN_SCALE, offset=BN_OFFSET)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dense(5)(keras.layers.Flatten()(x))
    p = tmp_path_factory.mktemp("bn") / "encoder_int8.tflite"
    p.write_bytes(to_tflite(keras.Model(x_in, x), int8=True))
    return str(p)


def _run_onnx(model, feed, names):
    """onnxruntime on ``model`` (an onnx.ModelProto) with the tensors ``names`` made graph outputs."""
    import copy

    import onnxruntime as ort
    from onnx import helper

    m = copy.deepcopy(model)
    m.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names)
    del m.graph.value_info[:]
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in s.get_outputs()], s.run(None, {s.get_inputs()[0].name: feed})))
    return [out[n] for n in names]


def test_qdq_keeps_an_unfolded_batchnorm_scale_exact(unfolded_bn_tflite, tmp_path):
    """The BN scale reaches the Mul as its exact float value (no Q/DQ clipping it at 127*scale), and
    the QDQ ONNX agrees with the int8 TFLite (before the fix: max abs diff ~9 against a tolerance ~1)."""
    import onnx
    from onnx import numpy_helper

    from quantize.onnx_export import export_qdq, verify_qdq

    q = export_qdq(unfolded_bn_tflite, str(tmp_path / "encoder_int8.onnx"))
    rng = np.random.default_rng(3)
    chk = verify_qdq(q, unfolded_bn_tflite, [rng.random((8, 8, 3), np.float32) for _ in range(8)])
    assert chk.ok(), chk
    assert chk.max_abs_diff <= chk.tolerance / 2, chk     # not a borderline pass
    m = onnx.load(q)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    (mul,) = [n for n in m.graph.node if n.op_type == "Mul"]
    consts = [inits[x] for x in mul.input if x in inits]
    assert len(consts) == 1, "the BN scale must reach the Mul as a float initializer, not through Q/DQ"
    step = BN_SCALE.max() / 255          # TFLite's per-tensor grid of the [0, 14] constant
    assert np.abs(consts[0].reshape(-1) - BN_SCALE).max() <= step / 2 + 1e-6, consts[0]


def test_qdq_input_keeps_its_int8_grid(unfolded_bn_tflite, tmp_path):
    """The float input's asymmetric int8 (s = 1/255, zero point -128) becomes symmetric without losing
    its bit: the first Conv of the QDQ ONNX computes what the tf2onnx conversion (asymmetric, int8
    input) computes, to float rounding (the widened input scale 2/255 of before differed by 0.4% of the largest
    output, ~400x that)."""
    import onnx
    import tf2onnx
    from onnx import numpy_helper

    from quantize.onnx_export import export_qdq
    from quantize.tflite_export import io_quantization

    m = onnx.load(export_qdq(unfolded_bn_tflite, str(tmp_path / "encoder_int8.onnx")))
    raw, _ = tf2onnx.convert.from_tflite(unfolded_bn_tflite, opset=13)
    (conv,) = [n for n in raw.graph.node if n.op_type == "Conv"]
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    assert all(not inits[n.input[2]].any() for n in m.graph.node
               if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[2] in inits)
    qin = io_quantization(unfolded_bn_tflite)["input"]
    assert (qin["scale"], qin["zero_point"]) == (pytest.approx(1 / 255, rel=1e-3), -128)
    x = np.random.default_rng(5).random((1, 8, 8, 3), np.float32)
    xq = np.clip(np.round(x / qin["scale"]) + qin["zero_point"], -128, 127).astype(np.int8)
    (ours,) = _run_onnx(m, x, [conv.output[0]])
    (ref,) = _run_onnx(raw, xq, [conv.output[0]])
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max()), np.abs(ours - ref).max()


def test_qdq_tolerance_has_a_floor_of_int8_output_steps(unfolded_bn_tflite):
    """5% of the largest output, but never under QDQ_OUTPUT_STEPS steps of the TFLite's int8 output:
    when the data use few output levels, 5% is one step, which any int8 rewrite may differ by."""
    from quantize.onnx_export import QDQ_OUTPUT_STEPS, qdq_tolerance
    from quantize.tflite_export import io_quantization

    step = io_quantization(unfolded_bn_tflite)["output"]["scale"]
    assert qdq_tolerance(unfolded_bn_tflite, np.full((2, 5), step)) == pytest.approx(QDQ_OUTPUT_STEPS * step)
    big = np.full((2, 5), 1000 * step)
    assert qdq_tolerance(unfolded_bn_tflite, big) == pytest.approx(0.05 * 1000 * step)


def test_a_flip_within_the_tolerance_is_no_disagreement():
    """Top-1 counts where the reference decides (top-2 margin above the tolerance): a near tie may swap,
    a clear decision may not."""
    from quantize.onnx_export import _compare

    ref = np.array([[1.0, 0.98, 0.0], [1.0, 0.0, 0.0]], np.float32)
    swap_tie = np.array([[0.97, 0.99, 0.0], [1.0, 0.0, 0.0]], np.float32)
    c = _compare("r", swap_tie, ref, tol=0.05)
    assert (c.top1_agreement, c.top1_decided, c.n_decided) == (0.5, 1.0, 1) and c.ok()
    ref = np.array([[1.0, 0.92, 0.0]], np.float32)           # margin 0.08: decided at tolerance 0.05
    flip = np.array([[0.955, 0.965, 0.0]], np.float32)       # every output within 0.05, top-1 swapped
    c = _compare("r", flip, ref, tol=0.05)
    assert c.max_abs_diff <= c.tolerance and (c.top1_decided, c.n_decided) == (0.0, 1) and not c.ok()


@pytest.mark.parametrize("version", ["8.2", "10", "11"])
def test_qdq_onnx_builds_int8_on_fake_tensorrt(version, int8_encoder, tmp_path, monkeypatch):
    """The exported QDQ ONNX passes the fake TensorRT parser (symmetric rule) and builds INT8."""
    import sys

    from edge.backends.base import BackendOptions
    from edge.backends.tensorrt import TensorRTBackend
    from quantize.onnx_export import export_qdq

    OM = _fakes()
    from fakes import fake_cuda, fake_tensorrt

    import shutil

    d, tfl = int8_encoder
    shutil.copy(str(d / "encoder.onnx"), str(tmp_path / "encoder.onnx"))
    export_qdq(tfl, str(tmp_path / "encoder_int8.onnx"))
    fake_cuda.install(monkeypatch, "cuda-python-13")
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.make_module(version))
    b = TensorRTBackend(str(tmp_path / "encoder.onnx"), BackendOptions(precision="int8"))
    try:
        x = np.random.default_rng(0).random((1, 16, 16, 3)).astype(np.float32)
        assert b.engine_path.endswith("-int8.engine") and "encoder_int8-" in b.engine_path
        np.testing.assert_allclose(b.infer(x), OM.reference(tmp_path / "encoder_int8.onnx", x).reshape(1, -1),
                                   atol=1e-6)
        assert b.max_batch == 8 and "-b8-" in b.engine_path       # the exported QDQ ONNX batches on TensorRT
        xs = np.random.default_rng(1).random((3, 16, 16, 3)).astype(np.float32)
        ref = np.concatenate([OM.reference(tmp_path / "encoder_int8.onnx", f[None]) for f in xs])
        np.testing.assert_allclose(b.infer(xs), ref, atol=1e-6)
    finally:
        b.close()


@pytest.mark.slow
def test_qdq_export_of_int8_lstm_says_why(tmp_path):
    """Known limit (tf2onnx 1.17): no QDQ ONNX from an int8 LSTM; the error says TensorRT builds fp16."""
    from _tiny_models import build_parts, to_tflite

    from quantize.onnx_export import export_qdq

    _fakes()
    _enc, head, _full = build_parts()
    p = tmp_path / "head_int8.tflite"
    p.write_bytes(to_tflite(head, int8=True))
    with pytest.raises(ValueError, match="tf2onnx cannot convert this int8 TFLite.*fp16 instead"):
        export_qdq(str(p), str(tmp_path / "head_int8.onnx"))


# ---- brief qdq2: a ReLU6 network (EfficientNet-Lite0-like): no exact replica, as good as the TFLite --
# Post-training int8 gives each ReLU6 tensor the asymmetric range [0, 6] (zero point -128); TensorRT's
# symmetric int8 widens it to [-6, 6]: one bit lost per tensor, so the QDQ ONNX cannot replicate the
# TFLite, and over 6 blocks it misses the replica tolerance. Against the float model it is as close as
# the TFLite up to that bit (measured here: ~1.7x max, ~1.9x mean; QDQ_FLOAT_RATIO = 2.5).
RELU6_SIZE = 16


@pytest.fixture(scope="module")
def relu6_encoder(tmp_path_factory):
    """(float ONNX, int8 TFLite) of Conv -> 6 x [BN, ReLU6, depthwise, BN, ReLU6, 1x1 Conv] -> BN ->
    ReLU6 -> Flatten, BN gains in [1.5, 4] (a trained network amplifies rounding errors)."""
    _fakes()
    from _tiny_models import _tf, to_tflite

    from quantize.onnx_export import export

    _tf_mod, keras = _tf()
    keras.utils.set_random_seed(0)
    x_in = keras.Input((RELU6_SIZE, RELU6_SIZE, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x_in)
    for _ in range(6):
        x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))
        x = keras.layers.Conv2D(16, 1, use_bias=False)(x)
    x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))
    model = keras.Model(x_in, keras.layers.Flatten()(x))
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(1.5, 4.0, n).astype(np.float32), rng.uniform(-0.5, 1.0, n).astype(np.float32),
                               np.zeros(n, np.float32), np.ones(n, np.float32)])
    rep_rng = np.random.default_rng(0)

    def rep():
        for _ in range(32):
            yield [rep_rng.random((1, RELU6_SIZE, RELU6_SIZE, 3), np.float32)]
    d = tmp_path_factory.mktemp("relu6")
    (d / "encoder_int8.tflite").write_bytes(to_tflite(model, int8=True, representative=rep))
    return export(model, str(d / "encoder.onnx")), str(d / "encoder_int8.tflite")


def _relu6_frames(n=16):
    return list(np.random.default_rng(9).random((n, RELU6_SIZE, RELU6_SIZE, 3)).astype(np.float32))


def _one_dq_scale_off(path, factor):
    """The QDQ ONNX at ``path`` with the Dequantize of one mid-network activation ``factor`` x off (its
    Quantize unchanged): the kind of export bug the verification must catch."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    acts = [n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] not in inits
            and not n.input[0].endswith("_q")]
    dq = acts[len(acts) // 2]
    name = dq.input[1] + "_broken"
    m.graph.initializer.append(numpy_helper.from_array((inits[dq.input[1]] * factor).astype(np.float32), name))
    dq.input[1] = name
    onnx.save(m, path)
    return path


def test_relu6_qdq_is_no_replica_but_as_good_as_the_int8_tflite(relu6_encoder, tmp_path):
    """The replica check (QDQ vs int8 TFLite) fails on this network, the float-distance one passes,
    and the metrics record which criterion passed with both distances."""
    from quantize.onnx_export import QDQ_FLOAT_RATIO, export_qdq, verify_qdq

    f, tfl = relu6_encoder
    q = export_qdq(tfl, str(tmp_path / "encoder_int8.onnx"))
    frames = _relu6_frames()
    old = verify_qdq(q, tfl, frames)                       # part 1's check alone
    assert not old.ok() and old.max_abs_diff > old.tolerance and old.criterion() == "", old
    chk = verify_qdq(q, tfl, frames, float_model=f)
    assert not chk.replica_ok() and chk.ok() and chk.criterion() == "float-distance", chk
    v = chk.vs_float
    assert 0 < v.int8_max < v.qdq_max <= QDQ_FLOAT_RATIO * v.int8_max, v    # TensorRT's bit costs something
    assert 0 < v.int8_mean < v.qdq_mean <= QDQ_FLOAT_RATIO * v.int8_mean, v
    d = chk.to_dict()
    assert d["criterion"] == "float-distance" and d["float_reference"] == "encoder.onnx"
    assert d["max_abs_diff_vs_float"] == v.qdq_max and d["int8_tflite_max_abs_diff_vs_float"] == v.int8_max
    assert "top1_agreement" not in d and 0 <= d["top1_agreement_vs_reference"] <= 1   # no clash with scoring


def test_a_broken_qdq_is_rejected_by_both_criteria(relu6_encoder, tmp_path):
    """One activation's Dequantize scale 1.5x off: far from the TFLite and from the float model."""
    from quantize.onnx_export import _why_not, export_qdq, verify_qdq

    f, tfl = relu6_encoder
    q = _one_dq_scale_off(export_qdq(tfl, str(tmp_path / "encoder_int8.onnx")), 1.5)
    chk = verify_qdq(q, tfl, _relu6_frames(), float_model=f)
    assert not chk.ok() and chk.criterion() == "" and chk.to_dict()["criterion"] == "none", chk
    assert chk.vs_float.qdq_max > chk.vs_float.ratio * chk.vs_float.int8_max, chk.vs_float
    assert "farther from the float model than 2.5x the int8 TFLite" in _why_not(chk, "QDQ ONNX differs")


def test_tensorrt_variants_verify_the_qdq_against_the_float_onnx_too(relu6_encoder, tmp_path):
    """tensorrt_variants passes the part's float ONNX: the ReLU6 QDQ is kept, criterion recorded."""
    import shutil

    from quantize.onnx_export import tensorrt_variants

    f, tfl = relu6_encoder
    p = shutil.copy(f, str(tmp_path / "encoder.onnx"))
    rows = tensorrt_variants(p, tfl, _relu6_frames(8))
    (int8,) = [r for r in rows if r["precision"] == "int8"]
    assert int8["ok"] and int8["metrics"]["criterion"] in ("replica", "float-distance"), int8
    assert int8["metrics"]["float_reference"] == "encoder.onnx" and int8["metrics"]["n_verify"] == 8
