"""Tiny ONNX models written with onnx.helper (no TensorFlow): a float "encoder" and its QDQ int8
variant, for the fake-TensorRT tests. Input ``input`` (1, 4, 4, 3) float32, output ``scores`` (1, 5);
with ``dynamic=True`` the batch dimension is the symbolic ``batch`` (as quantize.onnx_export writes it)."""
import numpy as np

SHAPE = (1, 4, 4, 3)
CLASSES = 5


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((int(np.prod(SHAPE[1:])), CLASSES)).astype(np.float32) * 0.3,
            rng.standard_normal(CLASSES).astype(np.float32) * 0.1)


def _model(nodes, inits, dynamic=False):
    from onnx import TensorProto, helper, numpy_helper

    b = "batch" if dynamic else 1
    g = helper.make_graph(nodes, "tiny",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [b] + list(SHAPE[1:]))],
                          [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [b, CLASSES])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _flat(dynamic):
    return np.array([0 if dynamic else 1, -1], np.int64)   # 0: keep the batch dimension as it comes


def float_model(seed=0, dynamic=False):
    from onnx import helper

    w, b = _weights(seed)
    nodes = [helper.make_node("Reshape", ["input", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "W"], ["mm"]),
             helper.make_node("Add", ["mm", "B"], ["logits"]), helper.make_node("Softmax", ["logits"], ["scores"])]
    return _model(nodes, {"W": w, "B": b, "shape": _flat(dynamic)}, dynamic)


def qdq_model(seed=0, zero_point=0, dynamic=False):
    """Input and weights behind QuantizeLinear/DequantizeLinear (int8, ``zero_point`` on the input)."""
    from onnx import helper

    w, b = _weights(seed)
    nodes = [helper.make_node("QuantizeLinear", ["input", "s_in", "z_in"], ["q_in"]),
             helper.make_node("DequantizeLinear", ["q_in", "s_in", "z_in"], ["dq_in"]),
             helper.make_node("QuantizeLinear", ["W", "s_w", "z_w"], ["q_w"], axis=1),
             helper.make_node("DequantizeLinear", ["q_w", "s_w", "z_w"], ["dq_w"], axis=1),
             helper.make_node("Reshape", ["dq_in", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "dq_w"], ["mm"]),
             helper.make_node("Add", ["mm", "B"], ["logits"]), helper.make_node("Softmax", ["logits"], ["scores"])]
    inits = {"W": w, "B": b, "shape": _flat(dynamic), "s_in": np.array(1 / 127, np.float32),
             "z_in": np.array(zero_point, np.int8), "s_w": (np.abs(w).max(0) / 127).astype(np.float32),
             "z_w": np.zeros(CLASSES, np.int8)}
    return _model(nodes, inits, dynamic)


def save(model, path):
    import onnx

    onnx.save(model, str(path))
    return str(path)


def reference(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: np.asarray(x, np.float32)})[0]
