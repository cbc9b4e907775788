"""Live clip sampling, ring buffer, smoothing, latency stats, and streaming == full-clip inference."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge.bundle import load as load_bundle  # noqa: E402
from edge.classifier import ClipClassifier  # noqa: E402
from edge.preprocess import normalize, resize_rgb  # noqa: E402
from edge.ringbuffer import RingBuffer  # noqa: E402
from edge.config import RunnerConfig  # noqa: E402
from edge.stream import ClipSampler, StreamPredictor  # noqa: E402
from edge.timing import LatencyStats  # noqa: E402


# -- ring buffer -------------------------------------------------------------------------------------
def test_ring_buffer_overwrites_oldest_and_finds_by_key():
    r = RingBuffer(4, x=((2,), np.float32))
    for k in (0, 1, 3, 4, 7):
        r.append(k, k / 10, x=[k, -k])
    assert len(r) == 4 and r.full and r.ordered_keys() == [1, 3, 4, 7]
    assert r.data["x"][r.find(5)][0] == 4      # newest key <= 5
    assert r.data["x"][r.find(7)][0] == 7
    assert r.find(0) is None                   # older than anything kept
    with pytest.raises(ValueError):
        r.append(6)
    p = r.append(9)
    assert not r.valid["x"][p]                 # new entry: field not filled yet
    r.set(p, "x", [9, 9])
    assert r.valid["x"][p]
    big = RingBuffer(100)
    for k in range(0, 330, 3):   # 110 entries: 0..27 overwritten
        big.append(k)
    assert big.keys[big.find(152)] == 150 and big.find(29) is None and big.keys[big.find(31)] == 30


def test_ring_buffer_memory_is_preallocated():
    r = RingBuffer(8, frame=((16, 16, 3), np.uint8))
    before = r.data["frame"].ctypes.data
    for k in range(100):
        r.append(k, frame=np.full((16, 16, 3), k % 255, np.uint8))
    assert r.data["frame"].ctypes.data == before and len(r) == 8


# -- sampling ----------------------------------------------------------------------------------------
def test_clip_sampler_step_and_slots_with_drops():
    s = ClipSampler(frames=5, interval_s=0.1, fps=30)
    assert s.step == 3 and s.span == 13
    slots = [s.slot(t, i) for i, t in enumerate([0.0, 1 / 30, 2 / 30, 5 / 30, 6 / 30])]
    assert slots == [0, 1, 2, 5, 6]            # frames 3 and 4 dropped: the gap is kept
    assert s.clip_slots(12) == [0, 3, 6, 9, 12]
    assert ClipSampler(5, None, 30).step == 1  # no interval in the bundle: consecutive frames
    assert ClipSampler(5, 0.1, None).step == 1


# -- latency stats -----------------------------------------------------------------------------------
def test_latency_percentiles_match_numpy_within_one_percent():
    rng = np.random.default_rng(0)
    v = rng.lognormal(mean=1.0, sigma=0.8, size=20000)
    st = LatencyStats()
    st.extend(v)
    for q in (50, 95, 99):
        assert st.percentile(q) == pytest.approx(np.percentile(v, q), rel=0.012)
    assert st.count == 20000 and st.mean == pytest.approx(v.mean()) and st.max == pytest.approx(v.max())
    assert LatencyStats().summary()["p99_ms"] == 0.0


# -- streaming predictor on a real tiny bundle --------------------------------------------------------
@pytest.fixture(scope="module")
def bundle():
    from _tiny_models import cached_bundle
    return load_bundle(cached_bundle())


def _clf(b, part_fmt_prec):
    arts = [b.find(part=p, format=f, precision=q)[0] for p, f, q in part_fmt_prec]
    from edge.catalog import backend_for_file
    from edge.evaluation import classifier_for
    from edge.select import Plan
    head = arts[1] if len(arts) > 1 else None
    return classifier_for(b, Plan(backend_for_file(arts[0].file), arts[0], head,
                                  backend_for_file(head.file) if head is not None else None))


def _frames(n, size=(24, 24), seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (n,) + size + (3,), dtype=np.uint8)
    # smooth-ish moving content so int8 scores are not a coin toss
    return [np.roll(base[0], 2 * i, axis=1) // 2 + base[i] // 2 for i in range(n)]


@pytest.mark.parametrize("fmt,prec,tol", [("tflite", "float32", 1e-4), ("onnx", "float32", 1e-4),
                                          ("tflite", "int8", None)])
def test_streaming_equals_full_clip(bundle, fmt, prec, tol):
    spec, T = bundle.input, bundle.input.frames
    streaming = _clf(bundle, [("encoder", fmt, prec), ("head", fmt, prec)])
    full = _clf(bundle, [("full", fmt, prec)])
    assert streaming.streaming and not full.streaming
    fps = 30.0
    pred = StreamPredictor(streaming, bundle.labels, spec, bundle.sampling, RunnerConfig(stride=1), fps=fps)
    step = pred.step
    assert step == round(bundle.sampling.frame_interval_s * fps)
    frames = _frames(pred.sampler.span + 12)
    preds = []
    for i, f in enumerate(frames):
        p = pred.push(f, i / fps, i)
        if p is not None:
            preds.append(p)
    assert len(preds) == len(frames) - pred.sampler.span + 1
    # steady state (after one prediction per phase of the step): one encoder call per prediction
    # (the new frame), not T; and no frame is ever encoded twice
    assert preds[0].encoded == T and all(p.encoded == 1 for p in preds[step:])
    assert sum(p.encoded for p in preds) == len({i for p in preds for i in p.clip_indices})
    diffs, agree = [], []
    for p in preds:
        assert p.clip_indices == [p.frame_index - (T - 1 - j) * step for j in range(T)]
        clip = normalize(np.stack([resize_rgb(frames[i], spec.size) for i in p.clip_indices]), spec)
        ref = full.predict(clip)
        diffs.append(np.abs(ref - p.scores).max())
        agree.append(int(np.argmax(ref)) == int(np.argmax(p.scores)))
    if tol is not None:
        assert max(diffs) <= tol, max(diffs)
    else:
        assert all(agree), (diffs, agree)
    streaming.close()
    full.close()


def test_full_clip_model_predictor_and_stride_smooth_threshold(bundle):
    full = _clf(bundle, [("full", "tflite", "float32")])
    spec = bundle.input
    cfg = RunnerConfig(stride=4, smooth=3, top_k=2, threshold=0.99)
    pred = StreamPredictor(full, bundle.labels, spec, bundle.sampling, cfg, fps=30)
    frames = _frames(pred.sampler.span + 20, seed=1)
    preds = [p for i, f in enumerate(frames) for p in [pred.push(f, i / 30, i)] if p is not None]
    idx = [p.frame_index for p in preds]
    assert idx[0] == pred.sampler.span - 1 and all(b - a == 4 for a, b in zip(idx, idx[1:]))
    assert len(preds[0].top) == 2 and preds[0].top[0][1] >= preds[0].top[1][1]
    # smoothing = mean of the last 3 raw score vectors
    np.testing.assert_allclose(preds[4].smoothed, np.mean([p.scores for p in preds[2:5]], axis=0), rtol=1e-6)
    assert all(p.label is None for p in preds if p.top[0][1] < 0.99)   # below threshold: no label
    full.close()


def test_epoch_change_resets_the_clip(bundle):
    enc_head = _clf(bundle, [("encoder", "tflite", "float32"), ("head", "tflite", "float32")])
    pred = StreamPredictor(enc_head, bundle.labels, bundle.input, bundle.sampling, RunnerConfig(), fps=30)
    frames = _frames(pred.sampler.span + 2)
    out = [pred.push(f, i / 30, i, epoch=0) for i, f in enumerate(frames)]
    assert out[-1] is not None
    # a reconnect: the stream restarts; no prediction until a whole new clip is in
    again = [pred.push(f, i / 30, 100 + i, epoch=1) for i, f in enumerate(frames[: pred.sampler.span - 1])]
    assert all(p is None for p in again)
    p = pred.push(frames[0], (pred.sampler.span - 1) / 30, 500, epoch=1)
    assert p is not None and min(p.clip_indices) >= 100
    enc_head.close()


def test_dropped_frames_are_served_by_the_previous_frame(bundle):
    full = _clf(bundle, [("full", "tflite", "float32")])
    pred = StreamPredictor(full, bundle.labels, bundle.input, bundle.sampling, RunnerConfig(), fps=30)
    frames = _frames(pred.sampler.span + 5)
    got = []
    for i, f in enumerate(frames):
        if i in (4, 5):      # dropped by the source: never pushed
            continue
        p = pred.push(f, i / 30, i)
        if p is not None:
            got.append(p)
    first = got[0]
    step = pred.step
    want = [first.frame_index - (bundle.input.frames - 1 - j) * step for j in range(bundle.input.frames)]
    expect = [3 if w in (4, 5) else w for w in want]
    assert first.clip_indices == expect
    full.close()


def test_flush_predicts_a_short_file_like_training(bundle):
    """A file shorter than one clip span gets one prediction at its end, over its frames sampled the
    way training samples a whole short video (paper indices, padded)."""
    from edge.sampling import pad_indices, paper_indices
    full = _clf(bundle, [("full", "tflite", "float32")])
    spec = bundle.input
    pred = StreamPredictor(full, bundle.labels, spec, bundle.sampling, RunnerConfig(), fps=30)
    n = pred.sampler.span - 5
    frames = _frames(n, seed=3)
    assert all(pred.push(f, i / 30, i) is None for i, f in enumerate(frames))
    p = pred.flush()
    assert p is not None and p.partial and p.frame_index == n - 1
    idx = paper_indices(n, spec.frames)
    idx = pad_indices(idx, spec.frames) if len(idx) < spec.frames else idx
    assert p.clip_indices == idx
    clip = normalize(np.stack([resize_rgb(frames[i], spec.size) for i in idx]), spec)
    assert np.abs(full.predict(clip) - p.scores).max() <= 1e-6
    assert pred.flush() is None                      # once only
    short = StreamPredictor(full, bundle.labels, spec, bundle.sampling, RunnerConfig(), fps=30)
    short.push(frames[0], 0.0, 0)
    assert short.flush().clip_indices == [0] * spec.frames   # 1 frame: padded like training's "pad"
    full.close()
