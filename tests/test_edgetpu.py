"""Edge TPU: the flatbuffer analyzer (a prediction) against the real compiler, plus the log parser on
real yolov3-tiny/MNIST compiler text (more compiler tests: tests/test_edgetpu_compiler.py)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from quantize import edgetpu_compiler as EC

sys.path.insert(0, os.path.dirname(__file__))
from conftest import shared_data_path  # noqa: E402

PAIRS_DIR = shared_data_path() / "edgetpu-compiled"
PAIRS = ("keras_lstm_mnist_ptq", "mobilenet_v1_0.25_128_quant", "deeplabv3_mnv2_dm05_pascal_quant",
         "posenet_mobilenet_v1_075_353_481_16_quant_decoder", "split_concat")

# Real edgetpu_compiler stdout (Edge TPU Compiler 15.0.340273435 compiling yolov3-tiny), as published in a
# public GitHub README about compiling YOLO for the Edge TPU. Partially mapped model.
YOLO_STDOUT = """\
Edge TPU Compiler version 15.0.340273435

Model compiled successfully in 577 ms.

Input model: /home/yolo/yolov3-tiny_int8.tflite
Input size: 8.58MiB
Output model: /home/yolo/yolov3-tiny_int8_edgetpu.tflite
Output size: 8.70MiB
On-chip memory used for caching model parameters: 3.00KiB
On-chip memory remaining for caching model parameters: 7.67MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 36
Operation log: /home/yolo/yolov3-tiny_int8_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 2
Number of operations that will run on CPU: 34

Operator                       Count      Status

MAX_POOL_2D                    6          More than one subgraph is not supported
QUANTIZE                       2          Operation is otherwise supported, but not mapped due to some unspecified limitation
QUANTIZE                       1          Mapped to Edge TPU
QUANTIZE                       1          More than one subgraph is not supported
CONV_2D                        1          Mapped to Edge TPU
CONV_2D                        12         More than one subgraph is not supported
RESIZE_NEAREST_NEIGHBOR        1          Operation version not supported
LEAKY_RELU                     11         Operation not supported
CONCATENATION                  1          More than one subgraph is not supported
"""

# Real *_edgetpu.log operation log (Edge TPU Compiler 15.0.340273435, an MNIST CNN), from a public
# GitHub README: no summary counts, only the operator table.
MNIST_LOG = """\
Edge TPU Compiler version 15.0.340273435
Input: mnist4.tflite
Output: mnist4_edgetpu.tflite

Operator                       Count      Status

RESHAPE                        1          Mapped to Edge TPU
CONV_2D                        2          Mapped to Edge TPU
SOFTMAX                        1          Mapped to Edge TPU
QUANTIZE                       1          Operation is otherwise supported, but not mapped due to some unspecified limitation
DEQUANTIZE                     1          Operation is working on an unsupported data type
MAX_POOL_2D                    2          Mapped to Edge TPU
FULLY_CONNECTED                2          Mapped to Edge TPU
"""


def test_parse_real_stdout_partial_mapping():
    log = EC.parse_log(YOLO_STDOUT)
    assert log.version == "15.0.340273435"
    assert (log.ops_total, log.ops_on_tpu, log.ops_on_cpu, log.subgraphs) == (36, 2, 34, 1)
    assert log.on_chip_bytes == 3 * 1024 and log.off_chip_bytes == 0
    assert len(log.operators) == 9
    assert {"op": "LEAKY_RELU", "count": 11, "status": "Operation not supported"} in log.operators
    assert sum(o["count"] for o in log.operators) == 36
    assert not log.mappable and log.success


def test_parse_real_operation_log_counts_from_table():
    log = EC.parse_log(MNIST_LOG)
    assert log.ops_total == 10                    # 1+2+1+1+1+2+2 rows
    assert log.ops_on_tpu == 8 and log.ops_on_cpu == 2
    assert not log.mappable
    d = log.to_dict()
    assert d["source"] == "edgetpu_compiler" and d["ops_on_tpu"] == 8


# ------------------------------------------------------------------------------------- analyzer
@pytest.fixture(scope="module")
def tiny_tflites(tmp_path_factory):
    """A float CNN, its int8 version (int8 I/O), an lrcn-edge int8 encoder and a float ConvLSTM (WHILE)."""
    import tf_keras as keras

    from quantize import tflite_export as T
    from train.models import build_model, build_parts

    d = tmp_path_factory.mktemp("tfl")
    rng = np.random.default_rng(0)
    frames = rng.random((8, 16, 16, 3), dtype=np.float32)

    def rep():
        for f in frames:
            yield [f[None]]

    parts = build_parts(3, 4, (16, 16), compile=False)
    out = {}
    out["enc_fp32"] = T.export(parts.encoder, str(d / "enc_fp32.tflite"), T.TFLiteOptions("float32"))
    out["enc_int8"] = T.export(parts.encoder, str(d / "enc_int8.tflite"), T.TFLiteOptions("int8", representative=rep))
    out["enc_int8_floatio"] = T.export(parts.encoder, str(d / "enc_int8_fio.tflite"),
                                       T.TFLiteOptions("int8", io_dtype="float32", representative=rep))
    conv = build_model("convlstm", num_classes=3, frames=4, size=(16, 16), compile=False)
    from quantize.rewrite import export_friendly
    out["convlstm_fp32"] = T.export(export_friendly(conv), str(d / "cl_fp32.tflite"), T.TFLiteOptions("float32"))
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3)(i)
    x = keras.layers.LeakyReLU(0.1)(x)     # LEAKY_RELU: int8 kernel exists, not an Edge TPU op
    x = keras.layers.Conv2D(4, 3)(x)
    out["lrelu_int8"] = T.export(keras.Model(i, x), str(d / "lrelu_int8.tflite"),
                               T.TFLiteOptions("int8", representative=rep))
    return out


def test_lrcn_edge_int8_encoder_is_fully_mappable(tiny_tflites):
    from quantize.edgetpu_analyzer import analyze

    r = analyze(tiny_tflites["enc_int8"])
    assert r.mappable, r.summary()
    assert r.ops_on_tpu == r.ops_total > 3
    assert r.first_unsupported is None and r.input_dtype == "int8"
    assert {o.op for o in r.ops} >= {"CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED"}
    d = r.to_dict()
    assert d["mappable"] and d["fraction_on_tpu"] == 1.0


def test_float_io_int8_keeps_boundary_ops_on_cpu_without_cutting(tiny_tflites):
    from quantize.edgetpu_analyzer import analyze

    r = analyze(tiny_tflites["enc_int8_floatio"])
    boundary = [o for o in r.ops if o.boundary]
    assert boundary and {o.op for o in boundary} <= {"QUANTIZE", "DEQUANTIZE"}
    assert r.mappable and r.ops_on_tpu == r.ops_total - len(boundary)


def test_float_model_is_flagged(tiny_tflites):
    from quantize.edgetpu_analyzer import analyze

    r = analyze(tiny_tflites["enc_fp32"])
    assert not r.mappable and r.ops_on_tpu == 0 and r.first_unsupported == 0
    assert any("float32" in why for why in r.ops[0].reasons)
    assert any("float model input" in n for n in r.notes)


def test_while_loop_is_flagged(tiny_tflites):
    from quantize.edgetpu_analyzer import analyze

    r = analyze(tiny_tflites["convlstm_fp32"])
    assert not r.mappable
    assert r.subgraphs > 1 and any("WHILE" in n for n in r.notes)
    assert any(o.op == "WHILE" and "operation not supported by the Edge TPU" in o.reasons for o in r.ops)


def test_unsupported_op_cuts_the_graph(tiny_tflites):
    from quantize.edgetpu_analyzer import analyze

    r = analyze(tiny_tflites["lrelu_int8"])
    assert not r.mappable
    cut = r.ops[r.first_unsupported]
    assert cut.op == "LEAKY_RELU" and cut.reasons == ["operation not supported by the Edge TPU"]
    # everything before the cut on the TPU, the cut and everything after on the CPU
    assert all(o.on_tpu for o in r.ops[:cut.index])
    assert not any(o.on_tpu for o in r.ops[cut.index:])
    assert r.ops_on_tpu == cut.index >= 1


def test_analyzer_rejects_non_tflite(tmp_path):
    from quantize.edgetpu_analyzer import analyze

    p = tmp_path / "x.tflite"
    p.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(Exception):
        analyze(str(p))


def test_analyze_cli(tiny_tflites, capsys):
    from quantize.cli import main

    assert main(["analyze", tiny_tflites["enc_int8"]]) == 0
    assert "100% mappable" in capsys.readouterr().out
    assert main(["analyze", tiny_tflites["convlstm_fp32"]]) == 1
    assert main(["analyze", "/nonexistent.tflite"]) == 2


# ------------------------------------------------------------------ analyzer vs the real compiler
def compiled_cpu_ops(path: str):
    """Operators the real compiler left outside ``edgetpu-custom-op`` in a ``*_edgetpu.tflite``."""
    from ai_edge_litert import schema_py_generated as s

    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    with open(path, "rb") as f:
        m = s.Model.GetRootAsModel(f.read(), 0)
    g, out = m.Subgraphs(0), []
    for i in range(g.OperatorsLength()):
        code = m.OperatorCodes(g.Operators(i).OpcodeIndex())
        name = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if name == "CUSTOM":
            name = "CUSTOM:" + code.CustomCode().decode()
        if name != "CUSTOM:edgetpu-custom-op":
            out.append(name)
    return out


@pytest.mark.realdata
@pytest.mark.parametrize("pair", PAIRS)
def test_analyzer_agrees_with_the_compiler(pair):
    """Predicted CPU ops == what the real compiler left on the CPU (order included), for every pair."""
    from quantize.edgetpu_analyzer import analyze

    src, compiled = PAIRS_DIR / f"{pair}.tflite", PAIRS_DIR / f"{pair}_edgetpu.tflite"
    if not compiled.exists():
        pytest.skip(f"{PAIRS_DIR} is absent (real compiler outputs; see ../shared/data/edgetpu-compiled/README.md)")
    real = compiled_cpu_ops(str(compiled))
    r = analyze(str(src))
    assert r.cpu_ops() == real, r.summary()
    assert r.mappable == (real == [])
    assert r.to_dict()["verdict"] == "predicted"


def _analyze_pair(name: str):
    """The analyzer's report on one input model of the shared compiler pairs (skips when absent)."""
    from quantize.edgetpu_analyzer import analyze

    path = PAIRS_DIR / name
    if not path.exists():
        pytest.skip(f"{PAIRS_DIR} is absent")
    return analyze(str(path))


@pytest.mark.realdata
def test_int8_lstm_with_int16_state_maps():
    r = _analyze_pair("keras_lstm_mnist_ptq.tflite")
    lstm = next(o for o in r.ops if o.op == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    assert lstm.on_tpu and lstm.reasons == []
    assert r.first_unsupported is None and r.mappable


@pytest.mark.realdata
def test_cut_sends_supported_ops_after_it_to_the_cpu():
    r = _analyze_pair("deeplabv3_mnv2_dm05_pascal_quant.tflite")
    cut = r.ops[r.first_unsupported]
    assert cut.op == "RESIZE_BILINEAR" and "1x1" in cut.reasons[0]
    after = r.ops[cut.index + 1:]
    assert any(o.supported and not o.on_tpu for o in after)      # CONCATENATION, CONV_2D: supported, CPU
    assert r.ops_on_tpu == cut.index


def test_lrcn_edge_int8_lstm_head_is_predicted_mappable():
    """The head (int8 UNIDIRECTIONAL_SEQUENCE_LSTM, int16 cell state) was marked CPU-only before."""
    from _tiny_models import cached_bundle

    from quantize.edgetpu_analyzer import analyze

    r = analyze(os.path.join(cached_bundle(), "head_int8.tflite"))
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in {o.op for o in r.ops}
    assert r.mappable and r.first_unsupported is None, r.summary()
    assert r.cpu_ops() == []


def test_analyze_json_keeps_op_counts(tiny_tflites, capsys):
    import json

    from quantize.cli import main

    assert main(["analyze", "--json", tiny_tflites["lrelu_int8"]]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["op_counts"]["LEAKY_RELU"] == {"count": 1, "on_tpu": 0}
    assert d["op_counts"]["CONV_2D"]["count"] == 2 and d["op_counts"]["CONV_2D"]["on_tpu"] == 1
    assert d["verdict"] == "predicted" and d["cpu_ops"] == ["LEAKY_RELU", "CONV_2D"]
