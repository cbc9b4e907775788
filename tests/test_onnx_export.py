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
