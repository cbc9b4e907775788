"""Temporal heads (lstm, gru, tcn, attention): each trains on tiny data, exports to TFLite (float and
int8), and streaming (encoder once per frame into a ring, head on the T x F window) equals the full clip.

The parts exported are the ones edge-quantize exports (``split_parts``): a GRU head as its unrolled
export view (``heads.export_view``), since TFLite's int8 calibrator segfaults on a GRU's WHILE loop."""
import collections

import numpy as np
import pytest

from train.models import build_parts, load_model, split_parts
from train.models.heads import HEADS

T, S, K = 6, 32, 2
TINY = dict(widths=[8, 16], grid=4, grid_channels=4, feature_dim=16, head_units=8, proj_dim=8,
            head_dropout=0.0, learning_rate=3e-3)


def _data(n: int = 24, seed: int = 0):
    """A bright square moving left->right (class 0) or right->left (class 1): only order tells them apart."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, T, S, S, 3), np.float32)
    y = np.zeros((n, K), np.float32)
    for i in range(n):
        c = i % K
        row = rng.integers(4, S - 10)
        for t in range(T):
            col = 2 + t * 4 if c == 0 else S - 8 - t * 4
            x[i, t, row:row + 6, col:col + 6] = 1.0
        y[i, c] = 1
    return x + rng.normal(0, 0.02, x.shape).astype(np.float32), y


def _stream(enc, head, frames: np.ndarray):
    """Device-style streaming: one encoder call per frame, head on each full window of T features."""
    ring = collections.deque(maxlen=T)
    out = []
    for f in frames:
        ring.append(enc(f[None]).reshape(-1))
        if len(ring) == T:
            out.append(head(np.stack(ring)[None]).reshape(-1))
    return np.stack(out)


def _tflite_fn(path):
    from edge.backends import load_backend

    b = load_backend(str(path))
    return b.infer


def _keras_fn(model):
    return lambda a: model(a, training=False).numpy()


def _check_stream(parts, enc_fn, head_fn, x):
    long_clip = np.concatenate([x[0], x[1]])                      # 2T frames: T+1 windows
    streamed = _stream(enc_fn, head_fn, long_clip)
    windows = np.stack([long_clip[i:i + T] for i in range(T + 1)])
    full = parts.full.predict(windows, verbose=0)
    assert np.abs(streamed - full).max() <= 1e-4
    return long_clip, full


@pytest.fixture(scope="module")
def trained():
    """One tiny model per head, trained a few epochs (shared by the tests below)."""
    x, y = _data()
    out = {}
    for head in HEADS:
        parts = build_parts(K, frames=T, size=(S, S), head=head, **TINY)
        hist = parts.full.fit(x, y, batch_size=8, epochs=6, verbose=0)
        out[head] = (parts, hist.history["loss"])
    return out, x


@pytest.mark.parametrize("head", HEADS)
def test_head_trains_saves_and_streams(head, trained, tmp_path):
    models, x = trained
    parts, losses = models[head]
    assert losses[-1] < losses[0] - 0.05, (head, losses)
    parts.full.save(tmp_path / "model.keras")                      # custom layers registered
    again = load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(again.predict(x[:2], verbose=0), parts.full.predict(x[:2], verbose=0), atol=1e-5)
    _check_stream(parts, _keras_fn(parts.encoder), _keras_fn(parts.head), x)


def _tflite_check(head, trained, tmp_path):
    from quantize.formats import export_tflite_fp32, export_tflite_int8

    models, x = trained
    parts, _ = models[head]
    deploy = split_parts("lrcn-edge", parts.full)                  # what edge-quantize exports
    enc_f, head_f = tmp_path / "enc.tflite", tmp_path / "head.tflite"
    export_tflite_fp32(deploy["encoder"], str(enc_f))
    export_tflite_fp32(deploy["head"], str(head_f))
    long_clip, full = _check_stream(parts, _tflite_fn(enc_f), _tflite_fn(head_f), x)
    # a WHILE loop is what kills the int8 calibrator (segfault): catch it here, before converting
    assert "WHILE" not in _op_names(head_f), (head, sorted(_op_names(head_f)))

    frames = x[:4].reshape(-1, S, S, 3)
    feats = parts.encoder.predict(frames, verbose=0).reshape(4, T, -1)

    def rep():
        for f in frames:
            yield [f[None]]

    def rep_head():
        for f in feats:
            yield [f[None].astype(np.float32)]

    enc_q, head_q = tmp_path / "enc_int8.tflite", tmp_path / "head_int8.tflite"
    export_tflite_int8(deploy["encoder"], str(enc_q), representative=rep)
    export_tflite_int8(deploy["head"], str(head_q), representative=rep_head)
    q = _stream(_tflite_fn(enc_q), _tflite_fn(head_q), long_clip)
    assert q.shape == full.shape and np.isfinite(q).all()
    assert np.abs(q - full).max() < 0.25
    _check_int8_top1(parts, _tflite_fn(enc_q), _tflite_fn(head_q), x)


def _check_int8_top1(parts, enc_fn, head_fn, x, margin: float = 0.2) -> float:
    """int8 encoder + int8 head pick the float model's class on every tiny clip the float model is
    sure of (top-1 margin >= ``margin``; measured int8 deviations stay under 0.06); returns the
    agreement over all clips (near-ties of the barely trained models may flip)."""
    q = np.stack([head_fn(np.stack([enc_fn(f[None]).reshape(-1) for f in clip])[None]).reshape(-1) for clip in x])
    ref = parts.full.predict(x, verbose=0)
    top2 = np.sort(ref, -1)[:, -2:]
    same = q.argmax(-1) == ref.argmax(-1)
    sure = top2[:, 1] - top2[:, 0] >= margin
    assert same[sure].all(), (q[sure & ~same], ref[sure & ~same])
    return float(same.mean())


def _op_names(path) -> set:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    return {d["op_name"] for d in interp._get_ops_details()}


@pytest.mark.parametrize("head", HEADS)
def test_export_view_unrolls_only_a_gru_and_shares_its_weights(head, tmp_path):
    """edge-quantize exports ``split_parts``'s head: for a GRU an unrolled view over the same layers
    (no WHILE loop, which TFLite's int8 calibrator cannot take), for the other heads the head itself."""
    from quantize.formats import export_tflite_fp32

    parts = build_parts(K, frames=T, size=(S, S), head=head, deltas=True, **TINY)   # deltas: a branching graph
    view = split_parts("lrcn-edge", parts.full)["head"]
    if head != "gru":
        assert view is parts.head
        return
    assert view is not parts.head and view.get_layer("head_gru").unroll
    feats = np.random.default_rng(1).normal(size=(3, T, TINY["feature_dim"])).astype(np.float32)
    np.testing.assert_allclose(view(feats).numpy(), parts.head(feats).numpy(), atol=1e-6)
    view.set_weights([w * 0.5 for w in view.get_weights()])        # same variables: the full model follows
    np.testing.assert_allclose(view(feats).numpy(), parts.head(feats).numpy(), atol=1e-6)
    path = export_tflite_fp32(view, str(tmp_path / "head.tflite"))
    ops = _op_names(path)
    assert "WHILE" not in ops and {"FULLY_CONNECTED", "LOGISTIC", "TANH"} <= ops, sorted(ops)
    # and it converts to full int8 (the trained heads are checked in the slow test below)
    from quantize.formats import export_tflite_int8

    q_path = export_tflite_int8(view, str(tmp_path / "head_int8.tflite"),
                                representative=lambda: ([f[None]] for f in feats))
    q = np.stack([_tflite_fn(q_path)(f[None]).reshape(-1) for f in feats])
    assert np.abs(q - view(feats).numpy()).max() < 0.25


def test_tcn_tflite_float_streams_equal_and_int8_exports(trained, tmp_path):
    """The Edge TPU-mappable head, in the default suite: float TFLite streams equal, int8 converts."""
    _tflite_check("tcn", trained, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("head", [h for h in HEADS if h != "tcn"])
def test_head_tflite_float_streams_equal_and_int8_exports(head, trained, tmp_path):
    _tflite_check(head, trained, tmp_path)
