"""Model structure tests: the paper's networks as specified, the flat (tfmot-friendly) LRCN equals the
TimeDistributed one, lrcn-edge's full model equals encoder + head, and the int8 encoder uses only
ops the Edge TPU maps."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

from train.models import (ALL_MODELS, MODEL_NAMES, build_model, build_parts, from_flat, load_model,  # noqa: E402
                          parts_of, resolve_config, to_flat)

T, S, K = 6, 24, 4


def _clips(n=3, t=T, s=S, seed=0):
    return np.random.default_rng(seed).random((n, t, s, s, 3), dtype=np.float32)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_builds_and_outputs_probabilities(name):
    m = build_model(name, num_classes=K, frames=T, size=S)
    out = m.predict(_clips(), verbose=0)
    assert out.shape == (3, K)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    assert m.optimizer is not None and m.loss is not None


def test_model_names():
    assert MODEL_NAMES == ("lrcn", "convlstm", "lrcn-edge")
    assert "baseline" in ALL_MODELS and "baseline" not in MODEL_NAMES
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet", num_classes=3)
    with pytest.raises(ValueError, match="unknown config key"):
        build_model("lrcn", num_classes=3, lstm_unitz=8)


def test_paper_lrcn_structure():
    m = build_model("lrcn", num_classes=K, frames=T, size=S)
    kinds = [(type(l).__name__, type(getattr(l, "layer", None)).__name__) for l in m.layers[1:]]
    assert kinds == [("TimeDistributed", "Conv2D"), ("TimeDistributed", "MaxPooling2D"),
                     ("TimeDistributed", "Dropout"), ("TimeDistributed", "Flatten"),
                     ("LSTM", "NoneType"), ("Dense", "NoneType")]
    conv = m.get_layer("td_conv").layer
    assert conv.filters == 16 and conv.kernel_size == (3, 3) and conv.padding == "same"
    assert conv.activation.__name__ == "relu"
    assert m.get_layer("td_pool").layer.pool_size == (2, 2)
    assert m.get_layer("td_dropout").layer.rate == 0.25
    assert m.get_layer("lstm").units == 32
    assert m.get_layer("scores").activation.__name__ == "softmax"
    assert type(m.optimizer).__name__ == "RMSprop"


def test_paper_convlstm_structure():
    m = build_model("convlstm", num_classes=K, frames=T, size=S)
    cl = [l for l in m.layers if type(l).__name__ == "ConvLSTM2D"]
    assert [l.filters for l in cl] == [4, 8]
    assert all(l.kernel_size == (3, 3) and l.recurrent_dropout == 0.2 and l.return_sequences
               and l.activation.__name__ == "tanh" for l in cl)
    pools = [l for l in m.layers if type(l).__name__ == "MaxPooling3D"]
    assert [p.pool_size for p in pools] == [(1, 2, 2)] * 2 and all(p.padding == "same" for p in pools)
    drops = [l.layer.rate for l in m.layers if type(l).__name__ == "TimeDistributed"]
    assert drops == [0.2, 0.2]
    assert type(m.optimizer).__name__ == "Adam"


def test_flat_lrcn_equals_timedistributed(tmp_path):
    td = build_model("lrcn", num_classes=K, frames=T, size=S)
    x = _clips(4)
    flat = to_flat(td)
    # tfmot needs the Conv2D at top level: no TimeDistributed left in the flat variant
    assert not any(type(l).__name__ == "TimeDistributed" for l in flat.layers)
    assert type(flat.get_layer("conv")).__name__ == "Conv2D"
    a, b = td.predict(x, verbose=0), flat.predict(x, verbose=0)
    assert np.abs(a - b).max() <= 1e-5
    # the custom layers survive a save/load round trip, and from_flat goes back
    flat.save(tmp_path / "flat.keras")
    again = load_model(tmp_path / "flat.keras", compile=False)
    assert np.abs(again.predict(x, verbose=0) - a).max() <= 1e-5
    back = from_flat(again)
    assert any(type(l).__name__ == "TimeDistributed" for l in back.layers)
    assert np.abs(back.predict(x, verbose=0) - a).max() <= 1e-5
    # and a different weight set gives different outputs (the comparison can fail)
    other = build_model("lrcn", num_classes=K, frames=T, size=S)
    assert np.abs(other.predict(x, verbose=0) - a).max() > 1e-4


def test_lrcn_edge_full_equals_encoder_plus_head(tmp_path):
    parts = build_parts(K, T, (S, S))
    enc, head, full = parts
    assert full.get_layer("encoder") is enc and full.get_layer("head") is head   # shared layers
    f = enc.output_shape[-1]
    assert f <= 256 and enc.input_shape == (None, S, S, 3) and head.input_shape == (None, T, f)
    x = _clips(3)
    # make BatchNorm statistics non-trivial so a wrong composition would show
    for l in enc.layers:
        if type(l).__name__ == "BatchNormalization":
            l.moving_mean.assign(np.random.default_rng(1).normal(0, 0.1, l.moving_mean.shape))
            l.moving_variance.assign(np.random.default_rng(2).uniform(0.5, 2.0, l.moving_variance.shape))
    feats = np.stack([enc.predict(c, verbose=0) for c in x])
    composed = head.predict(feats, verbose=0)
    direct = full.predict(x, verbose=0)
    assert np.abs(composed - direct).max() <= 1e-5
    assert all(l.momentum == 0.9 for l in enc.layers if type(l).__name__ == "BatchNormalization")
    # save -> load keeps the nested parts reachable
    full.save(tmp_path / "m.keras")
    loaded = parts_of(load_model(tmp_path / "m.keras", compile=False))
    assert np.abs(loaded.full.predict(x, verbose=0) - direct).max() <= 1e-5
    assert np.abs(loaded.encoder.predict(x[0], verbose=0) - feats[0]).max() <= 1e-5


def test_lrcn_edge_config_options():
    cfg = resolve_config("lrcn-edge", pooling="gap", head="gru", deltas=True, feature_dim=32)
    assert cfg["pooling"] == "gap" and cfg["head"] == "gru" and cfg["feature_dim"] == 32
    enc, head, full = build_parts(K, T, (S, S), pooling="gap", head="gru", deltas=True, feature_dim=32)
    assert enc.output_shape == (None, 32)
    assert any(type(l).__name__ == "GRU" for l in head.layers)
    assert full.predict(_clips(2), verbose=0).shape == (2, K)
    with pytest.raises(ValueError, match="feature_dim"):
        build_parts(K, T, (S, S), feature_dim=300)


def test_baseline_ignores_frame_order():
    m = build_model("baseline", num_classes=K, frames=T, size=S)
    x = _clips(2)
    perm = x[:, ::-1]
    np.testing.assert_allclose(m.predict(x, verbose=0), m.predict(perm, verbose=0), atol=1e-5)
    lrcn = build_model("lrcn", num_classes=K, frames=T, size=S)
    assert np.abs(lrcn.predict(x, verbose=0) - lrcn.predict(perm, verbose=0)).max() > 1e-6


# Ops the Edge TPU compiler maps (subset relevant here) + the quantize/dequantize at the ends.
EDGETPU_OK = {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "FULLY_CONNECTED",
              "RESHAPE", "ADD", "CONCATENATION", "RELU", "RELU6", "QUANTIZE", "DEQUANTIZE"}


@pytest.mark.parametrize("pooling", ["flatten", "gap", "both"])
def test_lrcn_edge_encoder_int8_uses_edgetpu_ops_only(pooling):
    enc = build_parts(K, T, (32, 32), pooling=pooling).encoder
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(8):
            yield [rng.random((1, 32, 32, 3), dtype=np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(enc)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    blob = conv.convert()
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # no default delegate: XNNPACK would fold the graph into one DELEGATE op
    interp = Interpreter(model_content=blob,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    ops = {d["op_name"] for d in interp._get_ops_details()}
    assert ops and ops <= EDGETPU_OK, f"ops the Edge TPU does not map: {sorted(ops - EDGETPU_OK)}"
    activations = {i for d in interp._get_ops_details() for i in d["outputs"]}
    activations |= {d["index"] for d in interp.get_input_details()}
    for t in interp.get_tensor_details():
        if t["index"] not in activations:          # weights (4-D conv kernels are fine)
            continue
        non_unit = [d for d in t["shape"] if d != 1]
        assert len(non_unit) <= 3, f"tensor {t['name']} has shape {t['shape']}"
        if t["dtype"] == np.float32:
            pytest.fail(f"float tensor left in the int8 encoder: {t['name']}")
