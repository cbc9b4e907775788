"""Grad-CAM: PNG grid + animated GIF per model; maps are per frame, normalised, class selectable."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from train_helpers import FRAMES, tiny_run  # noqa: E402


@pytest.fixture(scope="module")
def runs_base(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "train-runs"


@pytest.mark.parametrize("model", ["lrcn", "convlstm", "lrcn-edge"])
def test_explain_writes_png_and_gif(model, runs_base, synth_cache, synth_data, tmp_path):
    from PIL import Image

    from train.cli import main

    run = tiny_run(runs_base, model, synth_cache)
    video = sorted((synth_data / "MoveLeft").glob("*.avi"))[0]
    out = tmp_path / "cam"
    assert main(["explain", str(run), str(video), "--out", str(out), "--class", "Grow"]) == 0
    info = json.loads((out / "gradcam.json").read_text())
    assert info["class"] == "Grow" and len(info["frame_weight"]) == FRAMES
    assert 0 <= min(info["frame_weight"]) and max(info["frame_weight"]) <= 1
    grid = Image.open(out / "gradcam_grid.png")
    assert grid.size[0] > 100 and grid.size[1] > 100
    gif = Image.open(out / "gradcam.gif")
    assert getattr(gif, "n_frames", 1) == FRAMES
    expected_layer = {"lrcn": "td_conv", "convlstm": "convlstm_2"}.get(model)
    if expected_layer:
        assert info["layer"] == expected_layer
    else:
        assert info["layer"].startswith("enc_relu")          # inside the encoder


def test_grad_cam_maps_follow_the_gradient():
    """On a toy model whose score depends on the left half of the frame only, the map is left."""
    import tf_keras as keras

    from train.gradcam import grad_cam
    from train.models import build_model

    m = build_model("lrcn", num_classes=2, frames=4, size=16, compile=False)
    conv = m.get_layer("td_conv").layer
    w = np.zeros(conv.kernel.shape, np.float32)
    w[1, 1, :, :] = 1.0
    conv.kernel.assign(w)
    conv.bias.assign(np.zeros(conv.bias.shape, np.float32))
    clip = np.zeros((4, 16, 16, 3), np.float32)
    clip[:, :, :8] = 1.0                          # bright left half, dark right half
    res = grad_cam(m, clip, "lrcn", class_index=0, labels=["a", "b"])
    assert res.cams.shape == (4, 16, 16) and res.cams.max() <= 1.0
    if res.cams.max() > 0:                        # relu conv on a dark half is zero: no evidence there
        assert res.cams[:, :, 8:].max() == 0.0


def test_explain_bad_input(runs_base, synth_cache, synth_data, tmp_path, capsys):
    from train.cli import main

    run = tiny_run(runs_base, "lrcn", synth_cache)
    video = sorted((synth_data / "MoveLeft").glob("*.avi"))[0]
    assert main(["explain", str(run), str(video), "--out", str(tmp_path / "o"), "--class", "Nope"]) == 2
    assert "not one of the run's classes" in capsys.readouterr().err
    assert main(["explain", str(run), str(tmp_path / "missing.avi"), "--out", str(tmp_path / "o")]) == 2
    assert main(["explain", str(tmp_path), str(video), "--out", str(tmp_path / "o")]) == 2
    assert "not a run directory" in capsys.readouterr().err
