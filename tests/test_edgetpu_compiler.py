"""edgetpu_compiler step: the output parser on real compiler text, and (co-)compilation through a stand-in.

The real compiler is not installable here (Coral's apt repository is off the allowed network), so
the subprocess path runs a stand-in ``edgetpu_compiler`` on PATH that prints and writes what the real
one does (stdout block per model, ``<stem>_edgetpu.tflite``, ``<stem>_edgetpu.log``; format as in
the real outputs under tests/fixtures/edgetpu/). Nothing here claims a model was compiled for a TPU.
"""
import json
import os
import re
import sys

import pytest

from quantize import edgetpu_compiler as EC

FIX = os.path.join(os.path.dirname(__file__), "fixtures", "edgetpu")


def fixture(name: str) -> str:
    with open(os.path.join(FIX, name)) as f:
        return f.read()


# ------------------------------------------------------------------------------ parser, real text
def test_fully_mapped_stdout_without_table():
    log = EC.parse_log(fixture("full_mobilenet_v1_stdout_v15.txt"))
    assert log.version == "15.0.340273435" and log.success
    assert (log.ops_total, log.ops_on_tpu, log.ops_on_cpu, log.subgraphs) == (31, 31, 0, 1)
    assert log.mappable and log.operators == []


@pytest.mark.parametrize("name,total", [("full_tinyyolo_v2.0.log", 25), ("full_mnist7_v15.log", 8)])
def test_fully_mapped_operation_log(name, total):
    log = EC.parse_log(fixture(name))
    assert (log.ops_total, log.ops_on_tpu, log.ops_on_cpu) == (total, total, 0)
    assert log.mappable and log.table_complete and log.cpu_operators() == []


def test_stdout_and_its_log_are_one_model_not_two():
    """The bug of issue 10 finding 3: `-s` stdout table + the .log table were added up (ops doubled,
    a fully mapped model recorded as not mappable). Real .log text, stdout in the real -s layout."""
    op_log = fixture("full_mnist7_v15.log")
    table = op_log[op_log.index("Operator"):]
    stdout = ("Edge TPU Compiler version 15.0.340273435\n\nModel compiled successfully in 35 ms.\n\n"
              "Input model: mnist7.tflite\nOutput model: mnist7_edgetpu.tflite\nNumber of Edge TPU subgraphs: 1\n"
              "Total number of operations: 8\nOperation log: mnist7_edgetpu.log\n\n" + table)
    for log in (EC.parse_log(stdout, op_log), EC.parse_log(stdout + "\n" + op_log)):
        assert (log.ops_total, log.ops_on_tpu, log.ops_on_cpu) == (8, 8, 0)
        assert sum(o["count"] for o in log.operators) == 8 and log.mappable


def test_partly_mapped_log_counts_from_table():
    log = EC.parse_log(fixture("partial_mnist4_v15.log"))
    assert (log.ops_total, log.ops_on_tpu, log.ops_on_cpu) == (10, 8, 2)
    assert {o["op"] for o in log.cpu_operators()} == {"QUANTIZE", "DEQUANTIZE"}
    assert log.success and not log.mappable
    assert log.to_dict()["source"] == "edgetpu_compiler"


def test_partly_mapped_stdout_summary_wins_over_cut_table():
    log = EC.parse_log(fixture("partial_stdout_s_v15_excerpt.txt"))
    assert (log.ops_total, log.ops_on_tpu, log.ops_on_cpu) == (136, 135, 1)
    assert log.on_chip_bytes == int(1.92 * 1024 ** 2) and log.off_chip_bytes == int(3.23 * 1024 ** 2)
    assert log.on_chip_remaining_bytes == int(1.75 * 1024)
    assert log.success and not log.mappable and len(log.operators) == 4


def test_second_subgraph_rows_are_cpu():
    log = EC.parse_log(fixture("partial_transpose_stdout_s.txt"))
    assert (log.ops_total, log.ops_on_tpu, log.ops_on_cpu) == (155, 2, 153)
    assert sum(o["count"] for o in log.cpu_operators()) == 153 and log.notes == []


@pytest.mark.parametrize("name,total", [("none_mapped_stdout_v14.txt", 2),
                                        ("none_mapped_dtype_stdout_v16_excerpt.txt", 157)])
def test_nothing_mapped(name, total):
    log = EC.parse_log(fixture(name))
    assert log.success and log.ops_on_tpu == 0 and log.ops_on_cpu == total == log.ops_total
    assert not log.mappable


@pytest.mark.parametrize("name,err", [
    ("fail_not_quantized_v15.txt", "Model not quantized"),
    ("fail_large_activations_v16.txt", "Compilation failed: Compilation failed due to large activation tensors"),
    ("fail_op_version_v2.0.txt", "Didn't find op for builtin opcode 'RESIZE_BILINEAR' version '3'")])
def test_failures(name, err):
    log = EC.parse_log(fixture(name))
    assert not log.success and not log.mappable and log.ops_on_tpu is None
    assert any(err in e for e in log.errors), log.errors


def test_cocompile_stdout_splits_per_model():
    header, blocks = EC.split_models(fixture("cocompile_stdout_v16_excerpt.txt"))
    assert "Models compiled successfully" in header and len(blocks) == 2
    first, second = (EC.parse_log(header + b) for b in blocks)
    assert first.input_model == "temp_models/1.tflite" and first.ops_total == 57 and first.mappable
    assert second.input_model == "temp_models/2.tflite" and second.ops_total == 6
    assert first.on_chip_bytes == int(2.27 * 1024 ** 2)


def test_garbage_gives_nothing():
    log = EC.parse_log("bash: edgetpu_compiler: command not found\n")
    assert log.ops_total is None and log.ops_on_tpu is None and not log.success and not log.mappable


# ------------------------------------------------------------------------- stand-in compiler runs
FAKE = r'''#!{python}
"""Stand-in for edgetpu_compiler: argv/outputs/stdout in the real layout; tables from fixtures."""
import json, os, shutil, sys
args = sys.argv[1:]
with open(os.environ["FAKE_ETPU_ARGV"], "w") as f:
    json.dump(args, f)
show = "-s" in args
out = args[args.index("-o") + 1] if "-o" in args else "."
models = [a for a in args if a.endswith(".tflite")]
tables = json.loads(os.environ.get("FAKE_ETPU_TABLES", "{{}}"))
print("Edge TPU Compiler version 16.0.384591198")
print("Started a compilation timeout timer of 180 seconds.")
for m in models:
    if b"float" in open(m, "rb").read():
        print("Invalid model: " + m)
        print("Model not quantized")
        sys.exit(1)
print("")
print(("Models" if len(models) > 1 else "Model") + " compiled successfully in 12 ms.")
for m in models:
    stem = os.path.splitext(os.path.basename(m))[0]
    text = open(tables[stem]).read()
    table = text[text.index("Operator"):]
    rows = [l.split(None, 2) for l in table.splitlines()[1:] if l.strip()]
    total = sum(int(r[1]) for r in rows)
    tpu = sum(int(r[1]) for r in rows if r[2].strip() == "Mapped to Edge TPU")
    shutil.copy(m, os.path.join(out, stem + "_edgetpu.tflite"))
    with open(os.path.join(out, stem + "_edgetpu.log"), "w") as f:
        f.write("Edge TPU Compiler version 16.0.384591198\nInput: %s\nOutput: %s_edgetpu.tflite\n\n%s"
                % (m, stem, table))
    print("")
    print("Input model: " + m)
    print("Output model: " + os.path.join(out, stem + "_edgetpu.tflite"))
    print("Number of Edge TPU subgraphs: 1")
    print("Total number of operations: %d" % total)
    print("Operation log: " + os.path.join(out, stem + "_edgetpu.log"))
    if tpu != total:
        print("")
        print("Model successfully compiled but not all operations are supported by the Edge TPU.")
        print("Number of operations that will run on Edge TPU: %d" % tpu)
        print("Number of operations that will run on CPU: %d" % (total - tpu))
    if show:
        print("")
        print(table)
    else:
        print("See the operation log file for individual operation details.")
print("Compilation child process completed within timeout period.")
print("Compilation succeeded! ")
'''


@pytest.fixture
def fake_compiler(tmp_path, monkeypatch):
    if os.uname().machine not in ("x86_64", "AMD64"):
        pytest.skip("compile_models refuses non-x86-64 hosts, as the real compiler does")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "edgetpu_compiler"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ.get('PATH', '')}")
    argv_file = tmp_path / "argv.json"
    monkeypatch.setenv("FAKE_ETPU_ARGV", str(argv_file))

    def run(tables):
        monkeypatch.setenv("FAKE_ETPU_TABLES", json.dumps({k: os.path.join(FIX, v) for k, v in tables.items()}))
        return lambda: json.loads(argv_file.read_text())
    return run


def _model(tmp_path, name, content=b"int8 model bytes"):
    p = tmp_path / name
    p.write_bytes(content)
    return str(p)


def test_compile_fully_mapped_model_is_mappable(fake_compiler, tmp_path):
    argv = fake_compiler({"enc_int8": "full_mnist7_v15.log"})
    res = EC.compile_model(_model(tmp_path, "enc_int8.tflite"), str(tmp_path / "out"))
    assert argv()[:3] == ["-s", "-o", str(tmp_path / "out")]
    assert res.produced and os.path.basename(res.output) == "enc_int8_edgetpu.tflite"
    assert (res.log.ops_total, res.log.ops_on_tpu, res.log.ops_on_cpu) == (8, 8, 0)
    assert res.log.mappable and res.record()["mappable"]
    kept = open(res.log_path).read()
    assert kept.startswith("$ ") and "enc_int8_edgetpu.log" in kept     # command line + stdout + own .log
    assert EC.parse_log(kept).ops_on_tpu == 8                             # `edge-quantize parse-log` on it


def test_compile_partly_mapped_model(fake_compiler, tmp_path):
    fake_compiler({"enc_int8": "partial_mnist4_v15.log"})
    res = EC.compile_model(_model(tmp_path, "enc_int8.tflite"), str(tmp_path / "out"))
    assert res.produced and not res.log.mappable
    assert (res.log.ops_total, res.log.ops_on_tpu, res.log.ops_on_cpu) == (10, 8, 2)


def test_compile_failure_says_why(fake_compiler, tmp_path):
    fake_compiler({})
    res = EC.compile_model(_model(tmp_path, "enc_float.tflite", b"float weights"), str(tmp_path / "out"))
    assert not res.produced and res.output is None
    assert "Model not quantized" in res.reason and "exit code 1" in res.reason


def test_co_compile_encoder_and_head(fake_compiler, tmp_path):
    argv = fake_compiler({"encoder_int8": "full_mnist7_v15.log", "head_int8": "full_tinyyolo_v2.0.log"})
    enc, head = _model(tmp_path, "encoder_int8.tflite"), _model(tmp_path, "head_int8.tflite")
    out = str(tmp_path / "out")
    r_enc, r_head = EC.compile_models([enc, head], out)
    assert argv() == ["-s", "-o", out, enc, head]                  # one run, encoder cached first
    assert EC.compile_command([enc, head], out)[1:] == argv()
    assert r_enc.produced and r_head.produced
    assert (r_enc.log.ops_total, r_head.log.ops_total) == (8, 25)   # each model its own block + .log
    assert r_enc.log.mappable and r_head.log.mappable
    assert r_enc.co_compiled_with == ["head_int8_edgetpu.tflite"] and r_enc.cache_priority == 0
    assert r_head.co_compiled_with == ["encoder_int8_edgetpu.tflite"] and r_head.cache_priority == 1
    rec = r_head.record()
    assert rec["co_compiled_with"] == ["encoder_int8_edgetpu.tflite"]
    assert re.match(r"edgetpu_compiler -s -o \S+ \S+encoder_int8.tflite \S+head_int8.tflite$", rec["command"])


def test_co_compile_refuses_clashing_names(tmp_path):
    with pytest.raises(ValueError, match="distinct file names"):
        EC.compile_models([str(tmp_path / "a" / "m.tflite"), str(tmp_path / "b" / "m.tflite")], str(tmp_path))


def test_compiler_absent_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))          # nothing on PATH
    res = EC.compile_models([str(tmp_path / "a.tflite"), str(tmp_path / "b.tflite")], str(tmp_path / "out"))
    assert len(res) == 2 and not any(r.produced for r in res)
    assert all("edgetpu_compiler" in r.reason for r in res)
    assert ("apt-get install edgetpu-compiler" in res[0].reason) or ("x86-64" in res[0].reason)
