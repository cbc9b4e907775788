"""Unit tests of the quantize building blocks (tiny models, random data)."""
from __future__ import annotations

import numpy as np
import pytest


def test_prune_config_overrides_by_layer_type():
    import tf_keras as keras

    from quantize.prune import PruneConfig

    cfg = PruneConfig(target_sparsity=0.6, per_layer_type={"LSTM": 0.2, "Conv2D": 0.8})
    assert cfg.sparsity_for(keras.layers.LSTM(4)) == 0.2
    assert cfg.sparsity_for(keras.layers.TimeDistributed(keras.layers.Conv2D(2, 3))) == 0.8   # inner type
    assert cfg.sparsity_for(keras.layers.Dense(3)) == 0.6
    with pytest.raises(ValueError):
        PruneConfig(target_sparsity=1.0)
    with pytest.raises(ValueError):
        PruneConfig(per_layer_type={"Dense": -0.1})


def test_prune_timedistributed_with_override_and_strip_to_stock_layers():
    import tf_keras as keras

    from quantize.prune import PruneConfig, overall_sparsity, prune_model
    from train.models import build_model

    m = build_model("lrcn", num_classes=3, frames=4, size=(12, 12))
    x = np.random.default_rng(0).random((6, 4, 12, 12, 3), dtype=np.float32)
    y = np.arange(6) % 3
    before = m.predict(x, verbose=0)
    pm, rows = prune_model(m, x, y, PruneConfig(target_sparsity=0.7, per_layer_type={"LSTM": 0.0}, epochs=1))
    by = {(r["layer"], r["weight"]): r["sparsity"] for r in rows}
    assert abs(by[("td_conv", "kernel")] - 0.7) <= 0.02
    assert abs(by[("scores", "kernel")] - 0.7) <= 0.02
    assert by[("lstm", "kernel")] < 0.05               # override: LSTM kept dense
    assert type(pm.get_layer("td_conv")) is keras.layers.TimeDistributed   # subclass swapped back
    assert 0.0 < overall_sparsity(pm, rows) < 0.7
    assert pm.predict(x, verbose=0).shape == before.shape
    # the original model is untouched
    assert np.allclose(m.predict(x, verbose=0), before)


def test_qat_keeps_sparsity_and_skips_weightless_layers():
    from quantize import qat
    from quantize.prune import PruneConfig, prune_model
    from train.models import build_model, to_flat

    m = build_model("lrcn", num_classes=3, frames=4, size=(12, 12))
    x = np.random.default_rng(1).random((6, 4, 12, 12, 3), dtype=np.float32)
    y = np.arange(6) % 3
    pm, _ = prune_model(m, x, y, PruneConfig(epochs=1))
    flat = to_flat(pm)
    names = qat.quantizable_layers(flat)
    assert "conv" in names and "scores" in names
    assert "lstm" not in names and "frames_to_batch" not in names   # LSTM float; custom layer untouched
    q = qat.qat_model(flat, x, y, qat.QATConfig(epochs=1, preserve_sparsity=True))
    sp = dict(qat.kernel_sparsity(q))
    assert abs(sp["quant_conv/kernel"] - 0.5) <= 0.02
    assert abs(sp["lstm/kernel"] - 0.5) <= 0.02 and abs(sp["quant_scores/kernel"] - 0.5) <= 0.02


def test_rewrite_maxpool3d_is_exact():
    from quantize.rewrite import export_friendly, needs_rewrite
    from train.models import build_model

    m = build_model("convlstm", num_classes=3, frames=3, size=(12, 12))
    assert needs_rewrite(m)
    r = export_friendly(m)
    assert not needs_rewrite(r)
    x = np.random.default_rng(2).random((2, 3, 12, 12, 3), dtype=np.float32)
    assert np.array_equal(m.predict(x, verbose=0), r.predict(x, verbose=0))


def test_pick_clips_is_class_balanced_and_seeded():
    from quantize.representative import frame_dataset, pick_clips

    x = np.arange(20, dtype=np.float32).reshape(20, 1, 1, 1, 1) * np.ones((20, 2, 2, 2, 3), np.float32)
    y = np.array([0] * 14 + [1] * 3 + [2] * 3)
    c = pick_clips(x, y, 6, seed=0)
    labels = [int(y[int(v)]) for v in c[:, 0, 0, 0, 0]]
    assert sorted(labels) == [0, 0, 1, 1, 2, 2]
    assert np.array_equal(c, pick_clips(x, y, 6, seed=0))
    assert len(pick_clips(x, y, 100)) == 20
    frames = list(frame_dataset(c, max_frames=5)())
    assert len(frames) == 5 and frames[0][0].shape == (1, 2, 2, 3)


def test_tflite_precisions_and_stateless_lstm(tmp_path):
    """Every precision converts and runs; repeated clips give identical scores (LSTM state reset)."""
    from quantize import tflite_export as T
    from quantize.representative import clip_dataset
    from edge.backends.tflite import TFLiteBackend
    from train.models import build_model

    m = build_model("lrcn", num_classes=3, frames=4, size=(12, 12))
    x = np.random.default_rng(3).random((4, 4, 12, 12, 3), dtype=np.float32)
    ref = m.predict(x, verbose=0)
    sizes = {}
    for p in T.PRECISIONS:
        path = T.export(m, str(tmp_path / f"{p}.tflite"),
                        T.TFLiteOptions(p, representative=clip_dataset(x) if p == "int8" else None))
        sizes[p] = (tmp_path / f"{p}.tflite").stat().st_size
        b = TFLiteBackend(path)                              # resets LSTM state before every call
        out = np.stack([b.infer(c[None]).reshape(-1) for c in list(x) + [x[0]]])
        assert np.array_equal(out[0], out[-1])            # same clip again -> same scores
        tol = {"float32": 1e-5, "float16": 1e-2, "dynamic": 5e-2, "int8": 8e-2}[p]
        assert np.abs(out[:4] - ref).max() <= tol, p
    assert sizes["float16"] < sizes["float32"] and sizes["int8"] < sizes["float16"]
    q = T.io_quantization(str(tmp_path / "int8.tflite"))
    assert q["input"]["dtype"] == "int8" and q["output"]["dtype"] == "int8"
    with pytest.raises(ValueError):
        T.TFLiteOptions("int8")                              # needs representative data


def test_uint8_io_option(tmp_path):
    from quantize import tflite_export as T
    from quantize.representative import frame_dataset
    from train.models import build_parts

    p = build_parts(3, 2, (12, 12), compile=False)
    x = np.random.default_rng(4).random((2, 2, 12, 12, 3), dtype=np.float32)
    path = T.export(p.encoder, str(tmp_path / "e.tflite"),
                    T.TFLiteOptions("int8", io_dtype="uint8", representative=frame_dataset(x)))
    assert T.io_quantization(path)["input"]["dtype"] == "uint8"


def test_format_table_and_parse():
    from quantize.formats import DEFAULT_FORMATS, FORMATS, parse_formats, table_text

    assert set(DEFAULT_FORMATS) <= set(FORMATS)
    assert parse_formats("tflite-int8, onnx") == ["tflite-int8", "onnx"]
    assert parse_formats("all") == list(FORMATS)
    with pytest.raises(ValueError, match="unknown format"):
        parse_formats("tflite-int4")
    t = table_text()
    assert "edgetpu_compiler" in t and "coral" in t and "jetson" in t
    for f in FORMATS.values():
        assert f.export is not None and f.name in t


def test_summary_table():
    from edge.bundle import Artifact
    from quantize.table import bundle_table

    a = Artifact(name="encoder-int8-tflite", file="e.tflite", format="tflite", precision="int8", part="encoder",
                 size_bytes=2048, sparsity=0.5, metrics={"f1_macro": 0.8123, "top1_agreement": 0.95},
                 edgetpu={"ops_on_tpu": 13, "ops_total": 13, "mappable": True})
    t = bundle_table([a], {"size_bytes": 8192, "f1_macro": 0.82}, [{"format": "edgetpu", "part": "encoder",
                                                                   "reason": "x"}])
    lines = t.splitlines()
    assert "macro-F1" in lines[0] and "Edge TPU ops" in lines[0] and "status" in lines[0]
    row = [ln for ln in lines if ln.startswith("encoder-int8-tflite")][0]
    assert "2.0 KiB" in row and "50.0%" in row and "0.812" in row and "95.0%" in row and "13/13 ok" in row
    assert any("skipped" in ln for ln in lines)
