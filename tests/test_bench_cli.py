"""edge-bench end to end on a tiny real bundle (tests/_tiny_models.py: tf_keras -> TFLite float32/int8
+ ONNX, encoder + head + full): report.json validates against its schema, report.md has a row per
artifact, formats that cannot run here are skipped with a reason, --compare flags a regression."""
import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.report import SCHEMA_PATH

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FAST = ["--min-runs", "5", "--min-seconds", "0", "--warmup", "1", "--warmup-seconds", "0", "--no-e2e", "-q"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """The shared tiny streaming bundle, plus an Edge TPU artifact as edge-quantize lists one when
    edgetpu_compiler ran. (Its bytes are the int8 encoder: on a machine without libedgetpu the file
    is never opened, which is exactly the case under test.)"""
    sys.path.insert(0, str(ROOT / "tests"))
    from _tiny_models import cached_bundle

    from edge.bundle import Artifact, file_digest, load
    src = cached_bundle()
    dst = tmp_path_factory.mktemp("bundle") / "tiny"
    shutil.copytree(src, dst)
    b = load(str(dst))
    shutil.copy(dst / "encoder_int8.tflite", dst / "encoder_int8_edgetpu.tflite")
    b.artifacts.append(Artifact(name="encoder-int8-edgetpu", file="encoder_int8_edgetpu.tflite", format="edgetpu",
                                precision="int8", part="encoder", devices=["coral"],
                                **file_digest(str(dst / "encoder_int8_edgetpu.tflite"))))
    # what edge-quantize records when the compiler ran but could not map the whole-clip model
    b.skipped = [{"format": "edgetpu", "part": "full", "reason": "edgetpu_compiler: the LSTM (WHILE loop) of the "
                  "full model is not supported by the Edge TPU"}]
    b.save(str(dst))
    return str(dst)


def _schema_validate(report):
    jsonschema = pytest.importorskip("jsonschema")
    with open(SCHEMA_PATH) as f:
        jsonschema.Draft7Validator(json.load(f)).validate(report)


@pytest.fixture(scope="module")
def cpu_run(tiny_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "cpu"
    ref = out.parent / "x86-cpu.csv"
    rc = main(["--model", tiny_bundle, "--out", str(out), "--device", "cpu", "--write-reference", str(ref)] + FAST)
    return rc, out, ref


def test_report_json_validates_and_covers_every_artifact(cpu_run, tiny_bundle):
    rc, out, _ = cpu_run
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    _schema_validate(report)
    bundle = json.loads((Path(tiny_bundle) / "bundle.json").read_text())
    covered = {a["name"] for r in report["results"] for a in r["artifacts"]}
    assert covered == {a["name"] for a in bundle["artifacts"]}
    by = {r["key"]: r for r in report["results"]}
    ok = [k for k, r in by.items() if r["status"] == "ok"]
    assert sorted(ok) == sorted(["tflite-float32", "tflite-int8", "onnx-float32", "tflite-float32:encoder+head",
                                 "tflite-int8:encoder+head", "onnx-float32:encoder+head"])
    for k in ok:
        lat = by[k]["latency"]
        st = lat["clip"]["steady"]
        assert st["count"] >= 5 and 0 < st["min_ms"] <= st["p50_ms"] <= st["p90_ms"] <= st["p99_ms"] <= st["max_ms"]
        assert lat["init_ms"] > 0 and lat["clip"]["first_ms"] > 0 and by[k]["fps"] > 0
        assert by[k]["threads"] == os.cpu_count() and by[k]["size_mb"] > 0
        if k.endswith("encoder+head"):
            # one streaming prediction (1 encoder + 1 head call) must cost less than a whole clip (6 + 1)
            assert lat["frame"]["steady"]["count"] >= 5 and lat["head"]["steady"]["count"] >= 5
            assert lat["streaming_speedup"] > 1.0
    # a CPU runtime runs its own head (what edge-run --backend onnxruntime pairs)
    assert [a["name"] for a in by["onnx-float32:encoder+head"]["artifacts"]][1] == "head-float32-onnx" and \
        by["onnx-float32:encoder+head"]["head_backend"] == "onnxruntime"
    tpu = by["edgetpu-int8:encoder+head"]
    assert tpu["status"] == "skipped" and "--device coral" in tpu["reason"] and tpu["latency"] is None
    host_skip = [r for r in report["results"] if "not produced by edge-quantize" in r["reason"]]
    assert host_skip and "WHILE loop" in host_skip[0]["reason"] and host_skip[0]["key"] == "edgetpu-int8"     # the bundle's own `skipped` list
    assert report["machine"]["cores"] == os.cpu_count() and report["machine"]["runtimes"]["ai-edge-litert"]
    assert report["memory"]["peak_rss_mb"] > 10
    assert report["end_to_end"] == {"status": "skipped", "reason": "--no-e2e",
                                    "source": report["end_to_end"]["source"]}


def test_report_md_has_a_row_per_result_and_reasons(cpu_run):
    _, out, _ = cpu_run
    md = (out / "report.md").read_text()
    report = json.loads((out / "report.json").read_text())
    models = md.split("## Models")[1].split("\n\n")[1]
    rows = [ln for ln in models.splitlines() if ln.startswith("| `")]
    assert len(rows) == len(report["results"])
    assert sum("✅ ok" in r for r in rows) == 6 and sum("skipped" in r for r in rows) == 2
    assert "--device coral" in md and "WHILE loop" in md
    assert (out / "latency_distribution.png").stat().st_size > 1000
    assert "Streaming vs full clip" in md


def test_compare_passes_equal_run_and_flags_injected_regression(cpu_run, tiny_bundle, tmp_path):
    from benchmarks import compare as C
    _, out, ref = cpu_run
    report = json.loads((out / "report.json").read_text())
    table = C.read_reference(str(ref))
    assert len(table) == 6
    verdicts = C.compare(report, table, 0.15, 0.02)            # the run that wrote the reference: equal
    assert verdicts and {v.verdict for v in verdicts} == {"ok"}
    # inject: the reference says tflite-float32 took 1 ns per clip, which no machine can match now
    # (a 10x margin is not enough: the tiny model's ~10 us latency swings 10x under other helpers' load)
    lines = open(ref).read().splitlines()
    assert lines[0].startswith("# lrcn-edge: ") and "cores" in lines[0]        # where the rows were measured
    rows = list(csv.DictReader(ln for ln in lines if not ln.startswith("#")))
    for r in rows:
        if r["format"] == "tflite-float32":
            r["p50_ms"], r["p99_ms"], r["fps"] = "0.000001", "0.000001", "1000000000"
    bad = tmp_path / "ref.csv"
    with open(bad, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out2 = tmp_path / "r2"
    rc = main(["--model", tiny_bundle, "--out", str(out2), "--device", "cpu", "--formats", "tflite-float32:full",
               "--compare", str(bad), "--overhead-check"] + FAST)
    assert rc == 1
    rep2 = json.loads((out2 / "report.json").read_text())
    _schema_validate(rep2)
    regs = [r for r in rep2["compare"]["rows"] if r["verdict"] == "regression"]
    assert {r["format"] for r in regs} == {"tflite-float32"} and {r["metric"] for r in regs} == {"p50_ms"}
    worse = {r["metric"] for r in rep2["compare"]["rows"] if r["verdict"] == "worse"}
    assert {"p99_ms", "fps"} <= worse                         # shown, not fatal by default (--check p50,f1)
    assert "regression" in (out2 / "report.md").read_text()
    o = rep2["overhead"]                                       # --overhead-check: the honesty check in the report
    assert o["status"] == "ok" and o["model"] == "full_float32.tflite" and o["verdict"] in ("pass", "fail", "inconclusive")
    assert "Harness overhead" in (out2 / "report.md").read_text()


def test_coral_device_without_edgetpu_skips_with_install_reason(tiny_bundle, tmp_path):
    # a device config name works too: coral-usb -> device coral, its Edge TPU (usb:0) and threads
    rc = main(["--model", tiny_bundle, "--out", str(tmp_path), "--device", "coral-usb"] + FAST)
    assert rc == 0
    report = json.loads((tmp_path / "report.json").read_text())
    by = {r["key"]: r for r in report["results"]}
    tpu = by["edgetpu-int8:encoder+head"]
    assert tpu["status"] == "skipped" and tpu["reason"]
    assert "libedgetpu" in tpu["reason"] or "edgetpu" in tpu["reason"].lower()
    assert by["tflite-int8"]["status"] == "skipped" and "--device cpu" in by["tflite-int8"]["reason"]
    assert report["device"]["resolved"] == "coral" and isinstance(report["device"]["edgetpu_devices"], list)
    assert report["device"]["config"] == "coral-usb" and report["device"]["edgetpu_used"] == "usb:0"


@pytest.mark.parametrize("args, needle", [
    (["--model", "/nonexistent/bundle"], "not a bundle"),
    (["--data", "/nonexistent/data"], "--data"),
    (["--compare", "/nonexistent/ref.csv"], "--compare"),
    (["--clips", "/nonexistent/list.txt"], "--clips needs --data"),
    (["--min-runs", "0"], "--min-runs"),
    (["--formats", "tflite-int9"], "--formats tflite-int9: matches no artifact"),
    (["--device", "tpu"], "--device tpu: not one of cpu, coral, jetson, auto and not a device config"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tiny_bundle, tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    argv = ["--model", tiny_bundle, "--out", str(out)] + FAST
    for i in range(0, len(args), 2):
        if args[i] in argv:
            argv[argv.index(args[i]) + 1] = args[i + 1]
        else:
            argv += args[i:i + 2]
    with pytest.raises(SystemExit) if args[0] == "--min-runs" else _nullctx() as e:   # argparse's own check
        rc = main(argv)
    rc = e.value.code if args[0] == "--min-runs" else rc
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1] and "Traceback" not in "\n".join(err)
    assert not out.exists()


class _nullctx:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def test_out_must_be_a_directory(tiny_bundle, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep me")
    assert main(["--model", tiny_bundle, "--out", str(f)] + FAST) == 2
    assert f.read_text() == "keep me" and "not a directory" in capsys.readouterr().err


def test_help_teaches():
    out = subprocess.run([sys.executable, "-m", "benchmarks.cli", "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0
    for needle in ("benchmark_model", "examples:", "--compare", "--write-reference", "exit codes", "skipped"):
        assert needle in out.stdout


@pytest.mark.realdata
def test_accuracy_on_real_clips(tiny_bundle, tmp_path):
    data = SHARED / "ucf101-mini"
    if not data.is_dir():
        pytest.skip(f"real data not found at {data}")
    rc = main(["--model", tiny_bundle, "--out", str(tmp_path), "--device", "cpu", "--formats", "tflite-float32:full",
               "tflite-int8:encoder+head", "--data", str(data), "--max-clips", "6"] + FAST)
    assert rc == 0
    report = json.loads((tmp_path / "report.json").read_text())
    _schema_validate(report)
    assert report["data"]["n_clips"] == 6 and set(report["data"]["classes_present"]) == {"Archery", "BasketballDunk", "HorseRace"}
    assert "PlayingPiano" in report["data"]["ignored_class_folders"]
    for r in report["results"]:
        if r["status"] == "ok":
            acc = r["accuracy"]
            assert acc["n_clips"] == 6 and 0 <= acc["f1_macro"] <= 1 and 0 <= acc["accuracy"] <= 1
            assert sum(map(sum, acc["confusion_matrix"])) == 6
    assert (tmp_path / "size_vs_f1.png").exists()


def test_overhead_check_measures_both_sides(tiny_bundle):
    from benchmarks.bench_overhead import _pick_model, measure
    model = _pick_model(tiny_bundle)
    assert model.endswith("full_float32.tflite")
    r = measure(model, rounds=4, runs=5)
    assert r["edge_bench_mean_ms"] > 0 and r["bare_invoke_mean_ms"] > 0 and r["rounds"] == 4
    assert r["runs_per_round"] >= 5             # raised so a side of a round lasts ~20 ms (tiny model: many)
    assert r["overhead_of_means"] == pytest.approx(r["edge_bench_mean_ms"] / r["bare_invoke_mean_ms"] - 1)
    assert -1 < r["overhead"] and math.isfinite(r["overhead"])   # the size of it is the slow test's job
    assert r["verdict"] in ("pass", "fail", "inconclusive") and r["passed"] == (r["verdict"] == "pass")
    e, b = r["edge_bench_ms"], r["bare_invoke_ms"]
    assert 0 < e["p10"] <= e["p25"] <= e["p50"] and 0 < b["p10"] <= b["p25"] <= b["p50"]
    assert r["overhead"] == pytest.approx(e["p25"] / b["p25"] - 1) and r["statistic"] == "p25"


@pytest.mark.slow
def test_overhead_within_10_percent_on_a_realistic_float_model(tmp_path):
    """The issue's honesty check on an lrcn-edge-sized float model (20x64x64 clips, 3 conv stages,
    64 features, LSTM head): edge-bench's per-clip latency within 10% of a bare invoke() loop."""
    sys.path.insert(0, str(ROOT / "tests"))
    from _tiny_models import build_parts, to_tflite

    from benchmarks.bench_overhead import measure
    _, _, full = build_parts(num_classes=6, frames=20, size=64, feature_dim=64, widths=(16, 32, 64), lstm_units=48)
    path = tmp_path / "full_float32.tflite"
    path.write_bytes(to_tflite(full))
    r = measure(str(path), threads=1)
    assert r["verdict"] == "pass", r


@pytest.mark.gst
def test_end_to_end_runs_edge_run_on_a_live_test_source(tiny_bundle, tmp_path):
    pytest.importorskip("gi", reason="GStreamer Python bindings (PyGObject) not installed")
    args = [a for a in FAST if a != "--no-e2e"]
    rc = main(["--model", tiny_bundle, "--out", str(tmp_path), "--device", "cpu", "--formats", "tflite-int8:full",
               "--e2e-seconds", "2"] + args)
    assert rc == 0
    report = json.loads((tmp_path / "report.json").read_text())
    _schema_validate(report)
    e = report["end_to_end"]
    assert e["status"] == "ok", e
    assert e["frames"] > 10 and e["fps"] > 5 and e["dropped"] >= 0 and 0 <= e["drop_rate"] < 1
    assert {"capture", "preprocess", "inference", "postprocess", "capture_to_prediction"} <= set(e["stages"])
    c2p = e["capture_to_prediction"]
    assert c2p["count"] == e["predictions"] and 0 < c2p["p50_ms"] <= c2p["p99_ms"]
    assert e["peak_rss_mb"] > 10 and e["artifact"] and e["source"].startswith("test://")
    md = (tmp_path / "report.md").read_text()
    assert "capture_to_prediction" in md and "edge-run used" in md
    assert (tmp_path / "e2e_summary.json").exists() and (tmp_path / "e2e_predictions.jsonl").exists()


def test_accuracy_scores_each_clip_independently_of_lstm_state(tiny_bundle):
    """TFLite's fused LSTM keeps state across invoke(): the same clip scored after another input gives
    other scores unless the state is reset (tensorflow/tensorflow#47813; edge/backends/tflite.py
    resets before every call, which evaluate() relies on). edge-bench's accuracy must not depend on
    what ran before (e.g. its own random latency inputs)."""
    import numpy as np

    from edge.bundle import load
    from edge.evaluation import classifier_for
    from edge.select import Plan
    b = load(tiny_bundle)
    clf = classifier_for(b, Plan("tflite", b.find(format="tflite", precision="float32", part="full")[0]))
    rng = np.random.default_rng(0)
    clip = rng.random(b.input.clip_shape, dtype=np.float32)
    other = rng.random(b.input.clip_shape, dtype=np.float32)
    first = clf.predict(clip)
    clf.predict(other)
    clf.predict(other)
    fresh = clf.predict(clip)                  # no explicit reset: the backend's own guarantee
    assert np.allclose(fresh, first, atol=1e-6)
