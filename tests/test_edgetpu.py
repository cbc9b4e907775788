"""Edge TPU: the flatbuffer analyzer and the edgetpu_compiler step (log parser on real log text)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from quantize import edgetpu_compiler as EC

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


def test_parse_garbage_gives_nothing():
    log = EC.parse_log("bash: edgetpu_compiler: command not found\n")
    assert log.ops_total is None and log.ops_on_tpu is None and not log.success and not log.mappable


def test_compiler_absent_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))          # nothing on PATH
    res = EC.compile_model(str(tmp_path / "m.tflite"), str(tmp_path / "out"))
    assert not res.produced and res.output is None
    assert "edgetpu_compiler" in res.reason
    assert ("apt-get install edgetpu-compiler" in res.reason) or ("x86-64" in res.reason)


def test_compiler_runs_and_log_is_kept(tmp_path, monkeypatch):
    """A stand-in executable that prints the real log format proves the subprocess/log plumbing; the
    real compiler is only available on x86-64 Linux with Coral's apt repository."""
    if EC.unavailable_reason() is not None and EC.find_compiler() is None and \
            os.uname().machine not in ("x86_64", "AMD64"):
        pytest.skip("not x86-64 Linux")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    logfile = tmp_path / "sample.log"
    logfile.write_text(MNIST_LOG)
    exe = bindir / "edgetpu_compiler"
    exe.write_text("#!/bin/sh\n# args: -s -o OUT MODEL\nout=$3; model=$4; b=$(basename \"$model\" .tflite)\n"
                   f"cp \"$model\" \"$out/${{b}}_edgetpu.tflite\"; cat {logfile}\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ.get('PATH', '')}")
    model = tmp_path / "enc_int8.tflite"
    model.write_bytes(b"x" * 64)
    res = EC.compile_model(str(model), str(tmp_path / "out"))
    assert res.produced and os.path.basename(res.output) == "enc_int8_edgetpu.tflite"
    assert os.path.exists(res.log_path) and "Mapped to Edge TPU" in open(res.log_path).read()
    assert res.log.ops_on_tpu == 8


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
