"""Custom layers that let a clip model be written without ``TimeDistributed``.

Why: tensorflow-model-optimization (pruning, QAT) wraps ``Conv2D``/``Dense`` layers it finds at the
top level of a model, but it cannot look inside ``TimeDistributed``. Folding the time axis into the
batch axis (``FramesToBatch``), running ordinary per-frame layers and unfolding it again
(``BatchToFrames``) computes exactly the same function with layers tfmot can wrap. Both lower to a
single RESHAPE in TFLite/ONNX.

Both layers are registered as serializable (package ``edge_action``), so ``model.keras`` files load
once this module is imported (``train.models`` imports it).
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

PACKAGE = "edge_action"


@keras.utils.register_keras_serializable(package=PACKAGE)
class FramesToBatch(keras.layers.Layer):
    """(B, T, *S) -> (B*T, *S): every frame becomes its own batch item (time order kept: b-major)."""

    def call(self, x):
        inner = x.shape[2:]
        if any(d is None for d in inner):
            inner = tf.shape(x)[2:]
            return tf.reshape(x, tf.concat([[-1], inner], axis=0))
        return tf.reshape(x, [-1] + [int(d) for d in inner])

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        b, t = input_shape[0], input_shape[1]
        bt = b * t if (b is not None and t is not None) else None
        return tf.TensorShape([bt]).concatenate(input_shape[2:])


@keras.utils.register_keras_serializable(package=PACKAGE)
class BatchToFrames(keras.layers.Layer):
    """(B*T, *S) -> (B, T, *S) for a fixed ``frames`` = T (the inverse of ``FramesToBatch``)."""

    def __init__(self, frames: int, **kwargs):
        super().__init__(**kwargs)
        self.frames = int(frames)

    def call(self, x):
        inner = x.shape[1:]
        if any(d is None for d in inner):
            inner = tf.shape(x)[1:]
            return tf.reshape(x, tf.concat([[-1, self.frames], inner], axis=0))
        return tf.reshape(x, [-1, self.frames] + [int(d) for d in inner])

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        bt = input_shape[0]
        b = bt // self.frames if bt is not None else None
        return tf.TensorShape([b, self.frames]).concatenate(input_shape[1:])

    def get_config(self):
        cfg = super().get_config()
        cfg["frames"] = self.frames
        return cfg


@keras.utils.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """(B, T, D) + a learned (T, D) position table (the attention head's positions). Lowers to one ADD."""

    def build(self, input_shape):
        t, d = int(input_shape[1]), int(input_shape[2])
        self.positions = self.add_weight(name="positions", shape=(t, d),
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))
        super().build(input_shape)

    def call(self, x):
        return x + self.positions[None]

    def compute_output_shape(self, input_shape):
        return input_shape


def custom_objects() -> dict:
    """Everything ``keras.models.load_model`` needs for models built by ``train.models``."""
    layers = {"FramesToBatch": FramesToBatch, "BatchToFrames": BatchToFrames, "PositionEmbedding": PositionEmbedding}
    out = dict(layers)
    out.update({f"{PACKAGE}>{k}": v for k, v in layers.items()})
    return out
