"""Tiny tf_keras models and bundles for tests and benchmarks (host only: imports TensorFlow lazily).

Other helpers may reuse these. Everything is deterministic (seeded weights) and small enough to
build in a few seconds on 2 cores:

- ``build_parts(...)``: an lrcn-edge-like trio: ``encoder`` (H,W,3)->(F,) small CNN,
  ``head`` (T,F)->(K,) LSTM + softmax, and ``full`` (T,H,W,3)->(K,) = TimeDistributed(encoder) -> head
  sharing the same layers, so full == head(encoder(each frame)).
- ``to_tflite(model, int8=False)``, ``to_onnx(model, path)``: conversions with a fixed batch of 1.
- ``make_bundle(directory, ...)``: writes a real bundle (``edge.bundle.Bundle.save``) with the
  artifacts asked for: ``streaming=True`` gives encoder + head + full artifacts (float32 and/or int8,
  tflite and/or onnx), ``streaming=False`` only full-clip ones.

``cached_bundle(...)`` keeps built bundles under ``$EDGE_TEST_CACHE`` (default
``/tmp/edge-test-cache``) keyed by the arguments and this file's content, so a rerun skips TF; it
builds in a child process (``python tests/_tiny_models.py DIR JSON_KWARGS``), so the caller never
imports TensorFlow (which crashes a process that already loaded GStreamer's gi/cairo).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

DEFAULT_LABELS = ("Archery", "BasketballDunk", "HorseRace")


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras
    return tf, keras


def build_parts(num_classes: int = 3, frames: int = 6, size: int = 16, feature_dim: int = 8,
                widths: Sequence[int] = (8,), lstm_units: int = 16, seed: int = 0):
    """(encoder, head, full) tf_keras models; ``widths`` = conv channels per block (each block:
    Conv2D stride 2 + BatchNorm + ReLU), then GlobalAveragePooling + Dense(feature_dim)."""
    tf, keras = _tf()
    keras.utils.set_random_seed(seed)
    enc_in = keras.Input((size, size, 3), name="frame")
    x = enc_in
    for w in widths:
        x = keras.layers.Conv2D(w, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(feature_dim, activation="relu")(x)
    encoder = keras.Model(enc_in, x, name="encoder")
    # Non-trivial BatchNorm statistics so float/int8 differences are realistic, not all-zero.
    rng = np.random.default_rng(seed)
    for layer in encoder.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([g, b + 0.1, m + rng.normal(0, 0.05, m.shape).astype("float32"),
                               v * rng.uniform(0.5, 1.5, v.shape).astype("float32")])
    h_in = keras.Input((frames, feature_dim), name="features")
    h = keras.layers.LSTM(lstm_units)(h_in)
    h = keras.layers.Dense(num_classes, activation="softmax")(h)
    head = keras.Model(h_in, h, name="head")
    dense = head.layers[-1]  # sharper logits: distinct top-1 scores make int8 comparisons meaningful
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 8.0, bias])
    f_in = keras.Input((frames, size, size, 3), name="clip")
    full = keras.Model(f_in, head(keras.layers.TimeDistributed(encoder)(f_in)), name="full")
    return encoder, head, full


def _representative(shape: Tuple[int, ...], n: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)

    def gen():
        for _ in range(n):
            yield [rng.random(shape, dtype=np.float32)]
    return gen


def to_tflite(model, int8: bool = False, representative=None) -> bytes:
    """Convert with a batch-1 signature; ``int8``: full-integer model with int8 input/output."""
    tf, _ = _tf()
    shape = (1,) + tuple(model.input_shape[1:])
    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec(shape, tf.float32)])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    if int8:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative or _representative(shape)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def to_onnx(model, path: str, opset: int = 13) -> str:
    tf, _ = _tf()
    import tf2onnx
    shape = (1,) + tuple(model.input_shape[1:])
    fn = tf.function(lambda x: model(x, training=False))
    tf2onnx.convert.from_function(fn, input_signature=[tf.TensorSpec(shape, tf.float32, name="input")],
                                  opset=opset, output_path=path)
    return path


def _feature_representative(encoder, frames: int, size: int, n: int = 16, seed: int = 0):
    """Representative features for the head: real encoder outputs on random frames."""
    rng = np.random.default_rng(seed)
    feats = [encoder(rng.random((frames, size, size, 3), dtype=np.float32), training=False).numpy()
             for _ in range(n)]

    def gen():
        for f in feats:
            yield [f[None].astype(np.float32)]
    return gen


def make_bundle(directory: str, *, streaming: bool = True, labels: Sequence[str] = DEFAULT_LABELS,
                frames: int = 6, size: int = 16, feature_dim: int = 8, widths: Sequence[int] = (8,),
                lstm_units: int = 16, frame_interval_s: Optional[float] = 0.1,
                precisions: Sequence[str] = ("float32", "int8"), formats: Sequence[str] = ("tflite", "onnx"),
                seed: int = 0, name: str = "tiny-lrcn-edge") -> str:
    """Build a real bundle in ``directory`` and return its path."""
    from edge.bundle import Artifact, Bundle, file_digest
    from edge.preprocess import InputSpec
    from edge.sampling import TemporalSampling

    encoder, head, full = build_parts(len(labels), frames, size, feature_dim, widths, lstm_units, seed)
    os.makedirs(directory, exist_ok=True)
    parts: Dict[str, object] = {"full": full}
    if streaming:
        parts.update(encoder=encoder, head=head)
    reps = {"full": None, "encoder": None, "head": _feature_representative(encoder, frames, size)}
    artifacts: List[Artifact] = []
    for part, model in parts.items():
        for prec in precisions:
            if "tflite" in formats:
                fname = f"{part}_{prec}.tflite"
                data = to_tflite(model, int8=(prec == "int8"), representative=reps[part])
                with open(os.path.join(directory, fname), "wb") as f:
                    f.write(data)
                devices = ["cpu", "coral"] if (prec == "int8" and part == "encoder") else ["cpu"]
                artifacts.append(Artifact(name=f"{part}-{prec}-tflite", file=fname, format="tflite",
                                          precision=prec, part=part, devices=devices,
                                          **file_digest(os.path.join(directory, fname))))
            if "onnx" in formats and prec == "float32":
                fname = f"{part}.onnx"
                to_onnx(model, os.path.join(directory, fname))
                artifacts.append(Artifact(name=f"{part}-float32-onnx", file=fname, format="onnx",
                                          precision="float32", part=part, devices=["cpu", "jetson"],
                                          **file_digest(os.path.join(directory, fname))))
    bundle = Bundle(
        name=name, model="lrcn-edge" if streaming else "lrcn", labels=list(labels),
        input=InputSpec(frames=frames, height=size, width=size),
        sampling=TemporalSampling(frames=frames, frame_interval_s=frame_interval_s),
        artifacts=artifacts, streaming={"feature_dim": feature_dim} if streaming else None,
        skipped=[{"format": "edgetpu", "part": "encoder",
                  "reason": "edgetpu_compiler was not available when this test bundle was built"}],
        producer={"tool": "tests/_tiny_models.py"}, created="2026-11-25T00:00:00Z",
    )
    bundle.save(directory)
    return directory


def cached_bundle(**kw) -> str:
    """``make_bundle`` with a cross-session cache (see module docstring). Returns the bundle dir."""
    root = os.environ.get("EDGE_TEST_CACHE", "/tmp/edge-test-cache")
    with open(__file__, "rb") as f:
        src = f.read()
    key = hashlib.sha256(src + json.dumps(kw, sort_keys=True, default=list).encode()).hexdigest()[:16]
    d = os.path.join(root, f"bundle-{key}")
    if os.path.exists(os.path.join(d, "bundle.json")):
        return d
    tmp = d + f".tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    # Build in a fresh interpreter: importing TensorFlow into a process that already loaded
    # GStreamer/PyGObject (gi, cairo) segfaults here, and the test process stays TF-free.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    root_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root_dir, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), tmp, json.dumps(kw, default=list)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the tiny bundle failed:\n{proc.stderr[-3000:]}")
    try:
        os.replace(tmp, d)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    # the bundle records no absolute paths, so the rename is safe
    return d


if __name__ == "__main__":  # python tests/_tiny_models.py OUT_DIR '{"streaming": true, ...}'
    _kw = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    for _k in ("labels", "widths", "precisions", "formats"):
        if _k in _kw:
            _kw[_k] = tuple(_kw[_k])
    make_bundle(sys.argv[1], **_kw)
