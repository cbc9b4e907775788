"""Unit tests of edge-bench's parts: latency statistics, run policy, tegrastats, governor, compare,
report schema validation, target planning, clip lists, end-to-end summary parsing.
No TensorFlow, no models: fast."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import compare as C
from benchmarks.accuracy import DataError, find_videos
from benchmarks.e2e import stage_stats_from_jsonl, summarize
from benchmarks.latency import LatencyStats, RunPolicy, thin, time_calls
from benchmarks.machine import (governor_warning, parse_tegrastats, read_governors, summarize_tegrastats)
from benchmarks.report import load_schema, validation_errors
from benchmarks.targets import plan_targets, selected
from edge.bundle import Artifact, Bundle
from edge.preprocess import InputSpec
from edge.records import PredictionRecord
from edge.sampling import TemporalSampling

ROOT = Path(__file__).resolve().parents[1]


# -- latency statistics ---------------------------------------------------------------------------
def test_latency_stats_on_known_samples():
    s = LatencyStats.from_samples(list(range(1, 101)))   # 1..100 ms
    assert s.count == 100 and s.min_ms == 1 and s.max_ms == 100
    assert s.mean_ms == pytest.approx(50.5)
    assert s.std_ms == pytest.approx(math.sqrt((100 ** 2 - 1) / 12))    # population std of 1..n
    # linear interpolation between order statistics: rank q/100 * (n-1)
    assert s.p50_ms == pytest.approx(50.5)
    assert s.p90_ms == pytest.approx(90.1)
    assert s.p95_ms == pytest.approx(95.05)
    assert s.p99_ms == pytest.approx(99.01)
    assert s.fps == pytest.approx(1000 / 50.5)
    one = LatencyStats.from_samples([4.0])
    assert (one.p50_ms, one.p99_ms, one.std_ms) == (4.0, 4.0, 0.0)
    # order does not matter, a single outlier moves p99 but not p50
    rng = np.random.default_rng(0)
    x = rng.permutation(np.r_[np.full(99, 2.0), 200.0])
    s2 = LatencyStats.from_samples(x)
    assert s2.p50_ms == 2.0 and s2.p99_ms == pytest.approx(2.0 + 0.01 * 198) and s2.max_ms == 200.0


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [-1.0], [float("inf")]])
def test_latency_stats_reject_bad_samples(bad):
    with pytest.raises(ValueError):
        LatencyStats.from_samples(bad)


class FakeClock:
    """Every call of the timed function takes ``step`` seconds."""

    def __init__(self, step):
        self.t, self.step, self.calls = 0.0, step, 0

    def __call__(self):
        return self.t

    def work(self):
        self.calls += 1
        self.t += self.step


def test_time_calls_obeys_min_runs_and_min_seconds():
    clk = FakeClock(0.010)                                     # 10 ms per call
    t = time_calls(clk.work, RunPolicy(min_runs=5, min_seconds=1.0, warmup_runs=3, warmup_min_seconds=0.0), clock=clk)
    assert t.first_ms == pytest.approx(10.0)
    assert t.warmup.count == 3
    assert t.steady.count == 100                               # 1 s / 10 ms > 5 runs
    assert t.stopped_by == "min_seconds"
    assert t.steady.p50_ms == pytest.approx(10.0) and t.steady.std_ms == pytest.approx(0.0, abs=1e-9)
    assert clk.calls == 1 + 3 + 100


def test_time_calls_min_runs_dominates_for_slow_model_and_max_seconds_stops():
    clk = FakeClock(0.5)
    t = time_calls(clk.work, RunPolicy(min_runs=6, min_seconds=1.0, warmup_runs=0, warmup_min_seconds=0.0), clock=clk)
    assert t.steady.count == 6 and t.stopped_by == "min_runs" and t.warmup is None
    clk = FakeClock(2.0)
    t = time_calls(clk.work, RunPolicy(min_runs=50, min_seconds=0, max_seconds=10.0, warmup_runs=0,
                                       warmup_min_seconds=0), clock=clk)
    assert t.steady.count == 5 and t.stopped_by == "max_seconds"


@pytest.mark.parametrize("kw", [dict(min_runs=0), dict(min_seconds=-1), dict(max_seconds=0), dict(warmup_runs=-1)])
def test_run_policy_validation(kw):
    with pytest.raises(ValueError):
        RunPolicy(**kw)


def test_thin_keeps_ends_and_count():
    x = list(range(10_000))
    t = thin(x, 2000)
    assert len(t) == 2000 and t[0] == 0 and t[-1] == 9999 and t == sorted(t)
    assert thin([1, 2], 2000) == [1, 2]


# -- machine: tegrastats and governor ------------------------------------------------------------
# Real tegrastats lines, as printed on the devices (taken from public code and docs that quote them):
NANO_JP4 = ("RAM 1766/3964MB (lfb 197x4MB) SWAP 0/2048MB (cached 0MB) CPU [24%@1224,15%@1224,13%@1224,10%@1224] "
            "EMC_FREQ 0% GR3D_FREQ 0% PLL@21C CPU@25C PMIC@100C GPU@23.5C AO@33.5C thermal@24.5C "
            "POM_5V_IN 2545/2547 POM_5V_GPU 0/0 POM_5V_CPU 549/529")
NANO_JP4_OFF = ("RAM 1409/3964MB (lfb 28x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
                "CPU [22%@518,67%@518,off,off] EMC_FREQ 0%@1600 GR3D_FREQ 0%@76 APE 25 PLL@28.5C CPU@32C "
                "PMIC@50C GPU@30.5C AO@39.5C thermal@31.25C POM_5V_IN 2003/2003 POM_5V_GPU 0/0 POM_5V_CPU 320/320")
ORIN_NANO_JP6 = ("07-29-2026 18:00:27 RAM 2272/7620MB (lfb 4x4MB) SWAP 221/3810MB (cached 0MB) "
                 "CPU [0%@729,0%@1036,0%@1036,0%@1036,0%@729,0%@729] GR3D_FREQ 0% cpu@54.937C soc2@55.562C "
                 "soc0@56.156C gpu@55.468C tj@56.656C soc1@56.656C VDD_IN 4673mW/4673mW VDD_CPU_GPU_CV 527mW/527mW "
                 "VDD_SOC 1339mW/1339mW")
ORIN_AGX = ("RAM 13123/62841MB (lfb 63x4MB) SWAP 9/31420MB (cached 0MB) CPU [3%@729,4%@729,1%@729,4%@729,1%@729,"
            "3%@729,2%@729,1%@729,4%@729,2%@729,1%@729,1%@729] GR3D_FREQ 0% cpu@48.156C soc2@43.562C soc0@45.125C "
            "tj@48.156C soc1@44.343C VDD_GPU_SOC 3193mW/3193mW VDD_CPU_CV 399mW/399mW VIN_SYS_5V0 4306mW/4306mW")
TX1_OLD = ("RAM 3607/3983MB (lfb 47x4MB) SWAP 873/8192MB (cached 281MB) cpu [17%,11%,65%,0%]@1734 EMC 1%@1600 "
           "APE 25 GR3D 39%@76")


def test_tegrastats_jetson_nano_jetpack4():
    s = parse_tegrastats(NANO_JP4)
    assert (s["ram_mb"], s["ram_total_mb"], s["swap_mb"]) == (1766, 3964, 0)
    assert s["cpu_load"] == [24.0, 15.0, 13.0, 10.0] and s["cpu_mhz"] == [1224] * 4
    assert s["gpu_load"] == 0.0
    assert s["temps_c"] == {"PLL": 21.0, "CPU": 25.0, "PMIC": 100.0, "GPU": 23.5, "AO": 33.5, "thermal": 24.5}
    assert s["rails_mw"] == {"POM_5V_IN": (2545, 2547), "POM_5V_GPU": (0, 0), "POM_5V_CPU": (549, 529)}
    assert s["power_mw"] == 2545


def test_tegrastats_nano_with_offline_cores_and_iram():
    s = parse_tegrastats(NANO_JP4_OFF)
    assert s["cpu_load"] == [22.0, 67.0, None, None]
    assert "IRAM" not in s["rails_mw"] and "APE" not in s["rails_mw"]
    assert s["power_mw"] == 2003 and s["temps_c"]["thermal"] == 31.25


def test_tegrastats_orin_nano_jetpack6_with_timestamp():
    s = parse_tegrastats(ORIN_NANO_JP6)
    assert s["ram_mb"] == 2272 and s["swap_mb"] == 221 and len(s["cpu_load"]) == 6
    assert s["cpu_mhz"][1] == 1036
    assert s["temps_c"]["tj"] == pytest.approx(56.656) and s["temps_c"]["gpu"] == pytest.approx(55.468)
    assert s["rails_mw"]["VDD_IN"] == (4673, 4673) and s["rails_mw"]["VDD_SOC"] == (1339, 1339)
    assert s["power_mw"] == 4673


def test_tegrastats_orin_agx_without_input_rail_sums_rails_and_old_tx1_format():
    s = parse_tegrastats(ORIN_AGX)
    assert s["power_mw"] == 4306            # VIN_SYS_5V0 is the input rail on AGX Orin
    assert len(s["cpu_load"]) == 12
    old = parse_tegrastats(TX1_OLD)
    assert old["ram_mb"] == 3607 and old["cpu_load"] == [17.0, 11.0, 65.0, 0.0] and old["gpu_load"] == 39.0
    assert old["power_mw"] is None and old["rails_mw"] == {}


def test_tegrastats_summary():
    sm = summarize_tegrastats([parse_tegrastats(NANO_JP4), parse_tegrastats(NANO_JP4_OFF)])
    assert sm["samples"] == 2 and sm["power_mw_mean"] == pytest.approx((2545 + 2003) / 2)
    assert sm["power_mw_max"] == 2545 and sm["temps_c_max"]["CPU"] == 32.0
    assert summarize_tegrastats([]) is None


def _gov_tree(tmp_path, govs):
    for i, g in enumerate(govs):
        d = tmp_path / f"cpu{i}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(g + "\n")
    (tmp_path / "cpufreq").mkdir()         # not a cpuN directory: ignored
    return str(tmp_path)


def test_governor_warning_logic(tmp_path):
    root = _gov_tree(tmp_path / "a", ["performance"] * 12)
    govs = read_governors(root)
    assert list(govs) == [f"cpu{i}" for i in range(12)]     # numeric order, cpu10 after cpu9
    assert governor_warning(govs) is None
    govs = read_governors(_gov_tree(tmp_path / "b", ["performance", "schedutil", "ondemand"]))
    w = governor_warning(govs)
    assert w and "ondemand" in w and "schedutil" in w and "2/3" in w and "performance" in w
    assert governor_warning(read_governors(str(tmp_path / "nothing"))) is None   # unreadable: no warning


# -- compare ----------------------------------------------------------------------------------------
def _report(rows, model="lrcn-edge"):
    res = []
    for key, p50, p99, fps, f1 in rows:
        res.append({"key": key, "status": "ok", "fps": fps,
                    "latency": {"clip": {"steady": {"p50_ms": p50, "p99_ms": p99}}},
                    "accuracy": {"f1_macro": f1} if f1 is not None else None})
    res.append({"key": "edgetpu-int8:encoder+head", "status": "skipped", "latency": None})
    return {"bundle": {"model": model}, "results": res}


def test_compare_round_trip_equal_run_passes(tmp_path):
    rep = _report([("tflite-int8", 2.0, 3.0, 480.0, 0.85), ("onnx-float32", 5.0, 6.5, 190.0, None)])
    ref = tmp_path / "ref.csv"
    C.write_reference(rep, str(ref))
    text = ref.read_text().splitlines()
    assert text[0] == "model,format,p50_ms,p99_ms,fps,f1" and len(text) == 3     # skipped rows not written
    rep["machine"] = {"cpu": "Test CPU", "cores": 2, "os": "x", "load_avg": [0.5, 0, 0]}
    rep.update(created="2026-11-25T00:00:00Z", tool={"command": "edge-bench ..."}, settings={"threads": 2})
    C.write_reference(rep, str(ref))
    C.write_reference(rep, str(ref))                                           # provenance replaced, not repeated
    text = ref.read_text().splitlines()
    assert text[0].startswith("# lrcn-edge: 2026-11-25T00:00:00Z on Test CPU, 2 cores") and "load average 0.50" in text[0]
    assert text[1].startswith("model,") and len(text) == 4
    table = C.read_reference(str(ref))
    assert table[("lrcn-edge", "tflite-int8")]["p50_ms"] == 2.0 and table[("lrcn-edge", "onnx-float32")]["f1"] is None
    v = C.compare(rep, table, 0.15, 0.02)
    assert v and all(x.verdict == "ok" for x in v)


def test_compare_flags_injected_regressions(tmp_path):
    ref = {("lrcn-edge", "tflite-int8"): {"model": "lrcn-edge", "format": "tflite-int8", "p50_ms": 2.0, "p99_ms": 3.0,
                                          "fps": 480.0, "f1": 0.85},
           ("lrcn-edge", "tflite-float32"): {"model": "lrcn-edge", "format": "tflite-float32", "p50_ms": 5.0,
                                             "p99_ms": 6.0, "fps": 200.0, "f1": 0.86},
           ("lrcn", "tflite-int8"): {"model": "lrcn", "format": "tflite-int8", "p50_ms": 9.0, "p99_ms": 9.0,
                                     "fps": 1.0, "f1": 0.5}}
    rep = _report([("tflite-int8", 2.0 * 1.2, 3.0 * 1.1, 480.0 / 1.2, 0.80),     # +20% p50, -0.05 F1
                   ("onnx-float32", 1.0, 1.0, 1.0, None)])
    v = {(x.format, x.metric): x for x in C.compare(rep, ref, tolerance=0.15, f1_tolerance=0.02,
                                                    checked=C.parse_checked("p50,p99,fps,f1"))}
    assert v[("tflite-int8", "p50_ms")].verdict == "regression" and v[("tflite-int8", "p50_ms")].change == "+20.0%"
    assert v[("tflite-int8", "p99_ms")].verdict == "ok"                        # +10% is inside 15%
    assert v[("tflite-int8", "fps")].verdict == "regression"
    assert v[("tflite-int8", "f1")].verdict == "regression"
    assert v[("onnx-float32", "*")].verdict == "new"
    assert v[("tflite-float32", "*")].verdict == "missing"
    assert ("tflite-int8", "*") not in v and all(x.format != "lrcn" for x in v.values())   # other model ignored
    s = C.compare_summary(list(v.values()), "ref.csv", 0.15, 0.02)
    assert s["regressions"] == 3
    default = {(x.format, x.metric): x.verdict for x in C.compare(rep, ref)}      # checks p50 and F1 only
    assert default[("tflite-int8", "p50_ms")] == "regression" and default[("tflite-int8", "fps")] == "worse"
    slow_tail = _report([("tflite-int8", 2.0, 30.0, 100.0, 0.85)])               # p99/fps swing: not fatal
    assert {x.verdict for x in C.compare(slow_tail, ref) if x.format == "tflite-int8"} == {"ok", "worse"}
    with pytest.raises(ValueError, match="p42"):
        C.parse_checked("p50,p42")
    faster = _report([("tflite-int8", 1.0, 1.5, 960.0, 0.85)])
    vv = {(x.format, x.metric): x.verdict for x in C.compare(faster, ref)}
    assert vv[("tflite-int8", "p50_ms")] == "improved" and "regression" not in vv.values()


@pytest.mark.parametrize("text, needle", [
    ("model,format,p50_ms\nx,y,1\n", "missing"),
    ("model,format,p50_ms,p99_ms,fps,f1\nx,y,abc,1,1,1\n", "not a number"),
    ("model,format,p50_ms,p99_ms,fps,f1\nx,y,1,1\n", "fields"),
    ("", "empty"),
])
def test_read_reference_errors(tmp_path, text, needle):
    p = tmp_path / "r.csv"
    p.write_text(text)
    with pytest.raises(C.ReferenceError, match=needle):
        C.read_reference(str(p))
    with pytest.raises(C.ReferenceError, match="no such file"):
        C.read_reference(str(tmp_path / "absent.csv"))


def test_write_reference_merges_other_models(tmp_path):
    ref = tmp_path / "x86-cpu.csv"
    C.write_reference(_report([("tflite-int8", 2.0, 3.0, 400.0, 0.8)], model="lrcn"), str(ref))
    C.write_reference(_report([("tflite-int8", 1.0, 2.0, 900.0, 0.9)], model="lrcn-edge"), str(ref))
    t = C.read_reference(str(ref))
    assert set(t) == {("lrcn", "tflite-int8"), ("lrcn-edge", "tflite-int8")}


# -- report schema -----------------------------------------------------------------------------------
def _stats(v=1.0):
    return {"count": 3, "min_ms": v, "max_ms": v, "mean_ms": v, "std_ms": 0.0, "p50_ms": v, "p90_ms": v,
            "p95_ms": v, "p99_ms": v, "fps": 1000 / v}


def minimal_report():
    timing = {"init_ms": 1.0, "first_ms": 2.0, "warmup": None, "steady": _stats(), "stopped_by": "min_runs"}
    return {
        "schema_version": 1, "tool": {"name": "edge-bench", "version": "0.1.0", "command": "edge-bench ..."},
        "created": "2026-11-25T00:00:00Z",
        "bundle": {"path": "/b", "name": "b", "model": "lrcn-edge", "labels": ["a"], "streaming": None},
        "device": {"requested": "auto", "resolved": "cpu"},
        "settings": {"policy": {"min_runs": 50, "min_seconds": 5.0, "max_seconds": 150.0, "warmup_runs": 10},
                     "threads": 2},
        "machine": {"cpu": "x", "cores": 2, "os": "linux", "python": "3.11", "runtimes": {"onnxruntime": None}},
        "results": [{"key": "tflite-float32", "format": "tflite", "precision": "float32", "parts": "full",
                     "status": "ok", "reason": "", "artifacts": [{"name": "a", "file": "a.tflite", "part": "full",
                                                                  "size_bytes": 10}],
                     "size_mb": 0.1, "latency": {"init_ms": 1.0, "clip": timing}, "fps": 1000.0,
                     "accuracy": {"f1_macro": 0.5, "accuracy": 0.5, "n_clips": 4}}],
        "end_to_end": {"status": "skipped", "reason": "--no-e2e"},
        "memory": {"peak_rss_mb": 100.0, "source": "VmHWM"},
        "notes": [], "warnings": [],
    }


@pytest.mark.parametrize("mutate", [
    lambda r: r.update(schema_version=2),
    lambda r: r.pop("machine"),
    lambda r: r["results"][0].update(status="maybe"),
    lambda r: r["results"][0]["latency"]["clip"]["steady"].update(p50_ms=-1.0),
    lambda r: r["results"][0]["latency"]["clip"]["steady"].pop("p99_ms"),
    lambda r: r["results"][0]["accuracy"].update(f1_macro=1.5),
    lambda r: r["results"][0].update(surprise=1),
    lambda r: r["device"].update(resolved="tpu"),
    lambda r: r["results"][0]["latency"]["clip"].update(warmup="none"),
    lambda r: r["settings"]["policy"].update(min_runs=True),
])
def test_builtin_validator_agrees_with_jsonschema(mutate):
    pytest.importorskip("jsonschema")
    schema = load_schema()
    good = minimal_report()
    assert validation_errors(good, schema, use_jsonschema=True) == []
    assert validation_errors(good, schema, use_jsonschema=False) == []
    bad = minimal_report()
    mutate(bad)
    assert validation_errors(bad, schema, use_jsonschema=True), "jsonschema accepted a bad report"
    assert validation_errors(bad, schema, use_jsonschema=False), "built-in validator accepted a bad report"


# -- target planning ----------------------------------------------------------------------------------
def _bundle(arts, skipped=()):
    return Bundle(name="t", model="lrcn-edge", labels=["a", "b"], input=InputSpec(frames=4, height=8, width=8),
                  sampling=TemporalSampling(frames=4), artifacts=arts, streaming={"feature_dim": 4},
                  skipped=list(skipped), root="/nonexistent")


def _art(name, fmt, prec, part, status="ok"):
    suffix = {"tflite": ".tflite", "edgetpu": "_edgetpu.tflite", "onnx": ".onnx", "tensorrt": ".engine",
              "keras": ".keras"}[fmt]
    return Artifact(name=name, file=name + suffix, format=fmt, precision=prec, part=part, status=status)


ARTS = [_art("full-f32", "tflite", "float32", "full"), _art("full-i8", "tflite", "int8", "full"),
        _art("full-onnx", "onnx", "float32", "full"), _art("full-keras", "keras", "float32", "full"),
        _art("enc-i8", "tflite", "int8", "encoder"), _art("head-i8", "tflite", "int8", "head"),
        _art("head-f32", "tflite", "float32", "head"),
        _art("enc-tpu", "edgetpu", "int8", "encoder"), _art("enc-f16", "tflite", "float16", "encoder"),
        _art("full-trt", "tensorrt", "float16", "full"), _art("full-bad", "tflite", "dynamic", "full", status="failed"),
        _art("head-onnx", "onnx", "float32", "head")]


def _by_key(ts):
    return {t.key: t for t in ts}


def test_plan_targets_cpu_covers_every_artifact_with_reasons():
    b = _bundle(ARTS, skipped=[{"format": "edgetpu", "part": "full", "reason": "edgetpu_compiler not on PATH"}])
    ts = plan_targets(b, "cpu")
    k = _by_key(ts)
    covered = {a.name for t in ts for a in t.artifacts.values()}
    assert covered == {a.name for a in ARTS}                       # nothing silently dropped
    assert k["tflite-float32"].status == "pending" and k["tflite-float32"].backend == "tflite"
    assert k["onnx-float32"].backend == "onnxruntime"
    assert k["tflite-int8:encoder+head"].artifacts["head"].name == "head-i8"        # same precision head
    assert k["tflite-float16:encoder+head"].artifacts["head"].name == "head-f32"    # float head for fp16 encoder
    assert k["edgetpu-int8:encoder+head"].status == "skipped" and "--device coral" in k["edgetpu-int8:encoder+head"].reason
    assert k["tensorrt-float16"].status == "skipped" and "jetson" in k["tensorrt-float16"].reason
    assert k["keras-float32"].status == "skipped" and "TensorFlow" in k["keras-float32"].reason
    assert k["tflite-dynamic"].status == "skipped" and "failed" in k["tflite-dynamic"].reason
    assert k["onnx-float32:head"].status == "skipped" and "encoder" in k["onnx-float32:head"].reason
    assert k["edgetpu-int8"].status == "skipped" and "edgetpu_compiler not on PATH" in k["edgetpu-int8"].reason


def test_plan_targets_coral_and_jetson_and_formats_filter():
    k = _by_key(plan_targets(_bundle(ARTS), "coral"))
    tpu = k["edgetpu-int8:encoder+head"]
    assert tpu.status == "pending" and tpu.backend == "edgetpu" and tpu.head_backend == "tflite"
    assert tpu.artifacts["head"].name == "head-i8"            # head runs on the CPU next to the TPU
    assert k["tflite-int8"].status == "skipped" and "--device cpu" in k["tflite-int8"].reason
    k = _by_key(plan_targets(_bundle(ARTS), "jetson"))
    assert k["tensorrt-float16"].backend == "tensorrt" and k["onnx-float32"].backend == "onnxruntime"
    assert k["tflite-float32"].status == "skipped"
    # no engine shipped for the encoder: built on the Jetson from encoder.onnx, head on the CPU
    built = [t for t in k.values() if t.key == "tensorrt-float16:encoder+head"]
    assert built == [] or built[0].options == {"precision": "fp16"}
    arts = [a for a in ARTS if a.format != "tensorrt"] + [_art("enc-onnx", "onnx", "float32", "encoder")]
    k = _by_key(plan_targets(_bundle(arts), "jetson"))
    trt = k["tensorrt-float16:encoder+head"]
    assert trt.status == "pending" and trt.backend == "tensorrt" and trt.options == {"precision": "fp16"}
    # the head edge-run pairs on a Jetson: its head_backend (onnxruntime) runs the ONNX head
    assert trt.artifacts["encoder"].name == "enc-onnx" and "built on this device" in trt.note
    assert trt.head_backend == "onnxruntime" and trt.artifacts["head"].name == "head-onnx"
    assert k["tensorrt-float16"].artifacts["full"].name == "full-onnx"
    assert k["onnx-float32:encoder+head"].backend == "onnxruntime"
    k = _by_key(plan_targets(_bundle(ARTS), "cpu", formats=["tflite-int8"]))
    pending = sorted(t for t, v in k.items() if v.status == "pending")
    assert pending == ["tflite-int8", "tflite-int8:encoder+head"]
    assert "--formats" in k["onnx-float32"].reason
    assert selected("tflite-int8:encoder+head", "tflite", "int8", ["TFLITE-INT8:ENCODER+HEAD"])
    assert not selected("tflite-int8", "tflite", "int8", ["onnx"])
    assert selected("tflite-int8", "tflite", "int8", ["tflite-int8:full"], "full")
    assert selected("tflite-float16", "tflite", "float16", ["tflite-fp16"])     # edge-quantize's format names
    assert not selected("tflite-int8:encoder+head", "tflite", "int8", ["tflite-int8:full"], "encoder+head")
    with pytest.raises(ValueError):
        plan_targets(_bundle(ARTS), "tpu")


# -- clip lists -------------------------------------------------------------------------------------
def _tree(tmp_path):
    for cls, n in (("Archery", 4), ("HorseRace", 3), ("Other", 2)):
        d = tmp_path / "data" / cls
        d.mkdir(parents=True)
        for i in range(n):
            (d / f"v_{cls}_g{8 + i:02d}_c01.avi").write_bytes(b"")
        (d / ".hidden.avi").write_bytes(b"")
        (d / "notes.txt").write_text("x")
    return tmp_path / "data"


def test_find_videos_labels_lists_and_budget(tmp_path):
    data = _tree(tmp_path)
    items, ignored = find_videos(str(data), ["Archery", "HorseRace", "Surfing"])
    assert len(items) == 7 and ignored == ["Other"] and {y for _, y in items} == {0, 1}
    items, _ = find_videos(str(data), ["Archery", "HorseRace"], max_clips=4)
    assert sorted(y for _, y in items) == [0, 0, 1, 1]                 # round-robin over classes
    ucf = tmp_path / "testlist.txt"
    ucf.write_bytes(b"Archery/v_Archery_g09_c01.avi 1\r\nHorseRace/v_HorseRace_g08_c01.avi 2\r\n\r\n")
    items, _ = find_videos(str(data), ["Archery", "HorseRace"], clip_list=str(ucf))
    assert [os.path.basename(p) for p, _ in items] == ["v_Archery_g09_c01.avi", "v_HorseRace_g08_c01.avi"]
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [{"path": "Archery/v_Archery_g08_c01.avi"}],
                                 "test": [{"path": "HorseRace/v_HorseRace_g10_c01.avi", "label": "HorseRace"}]}))
    items, _ = find_videos(str(data), ["Archery", "HorseRace"], clip_list=str(split))
    assert [os.path.basename(p) for p, _ in items] == ["v_HorseRace_g10_c01.avi"]
    with pytest.raises(DataError, match="no videos"):
        find_videos(str(data), ["Surfing"])
    with pytest.raises(DataError, match="not a directory"):
        find_videos(str(tmp_path / "nope"), ["a"])


# -- end-to-end summary parsing ----------------------------------------------------------------------
def test_e2e_stage_stats_from_jsonl(tmp_path):
    p = tmp_path / "p.jsonl"
    recs = [PredictionRecord(timestamp=i / 30, frame=i, label="a", top=[("a", 0.9)], clip=[i - 5, i],
                             latency_ms={"capture": 1.0, "preprocess": 0.5, "inference": 2.0 + i, "postprocess": 0.1,
                                         "capture_to_prediction": 4.0 + i}).to_dict() for i in range(100)]
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n{broken\n")   # a killed run's torn last line
    st = stage_stats_from_jsonl(str(p))
    assert set(st) == {"capture", "preprocess", "inference", "postprocess", "capture_to_prediction"}
    assert st["inference"]["count"] == 100 and st["inference"]["p50_ms"] == pytest.approx(51.5)
    assert st["capture_to_prediction"]["p99_ms"] == pytest.approx(4.0 + 98.01)
    s = summarize({"frames": 290, "dropped": 10, "fps": 29.0, "predictions": 100}, st)
    assert s["drop_rate"] == pytest.approx(10 / 300) and s["capture_to_prediction"]["p50_ms"] == pytest.approx(53.5)
    assert list(s["stages"])[:4] == ["capture", "preprocess", "inference", "postprocess"]
    assert s["stages_source"] == "edge-run JSONL"


# trimmed from a real `edge-run --summary` of the tiny bundle on test:// (640x480 @ 30 fps, 4 s)
RUNNER_SUMMARY = {
    "frames": 120, "predictions": 106, "dropped": 2, "dropped_pct": 1.639, "reconnects": 0, "fps": 29.591,
    "source_fps": 30.0, "elapsed_s": 4.022, "stop_reason": "duration", "exit_code": 0,
    "latency_ms": {
        "capture": {"count": 120, "mean_ms": 4.719, "min_ms": 0.199, "max_ms": 37.669, "p50_ms": 1.141,
                    "p95_ms": 21.274, "p99_ms": 29.251},
        "preprocess": {"count": 120, "mean_ms": 0.022, "min_ms": 0.008, "max_ms": 0.052, "p50_ms": 0.022,
                       "p95_ms": 0.027, "p99_ms": 0.031},
        "inference": {"count": 106, "mean_ms": 0.265, "min_ms": 0.149, "max_ms": 4.322, "p50_ms": 0.225,
                      "p95_ms": 0.262, "p99_ms": 0.382},
        "postprocess": {"count": 106, "mean_ms": 0.026, "min_ms": 0.018, "max_ms": 0.055, "p50_ms": 0.025,
                        "p95_ms": 0.031, "p99_ms": 0.04},
        "capture_to_prediction": {"count": 106, "mean_ms": 4.336, "min_ms": 0.484, "max_ms": 28.592,
                                  "p50_ms": 1.421, "p95_ms": 20.242, "p99_ms": 28.11},
        "output": {"count": 0, "mean_ms": 0.0}},
    "backend": "tflite", "artifact": "encoder_int8.tflite", "config": "x86-cpu",
    "model": {"precision": "int8", "head": "head_int8.tflite"}, "sampling": {"streaming": True},
}


def test_e2e_summary_of_a_real_edge_run():
    s = summarize(RUNNER_SUMMARY, {})
    assert (s["frames"], s["predictions"], s["dropped"], s["fps"]) == (120, 106, 2, 29.591)
    assert s["drop_rate"] == pytest.approx(2 / 122)
    assert list(s["stages"]) == ["capture", "preprocess", "inference", "postprocess", "capture_to_prediction"]
    assert s["stages"]["capture"]["count"] == 120 and s["stages_source"] == "edge-run summary"
    assert s["capture_to_prediction"]["p99_ms"] == 28.11
    assert (s["artifact"], s["head"], s["precision"], s["streaming"]) == ("encoder_int8.tflite", "head_int8.tflite",
                                                                           "int8", True)
    exact = {"capture_to_prediction": {"count": 106, "p50_ms": 1.4, "p99_ms": 28.0}}
    s2 = summarize(RUNNER_SUMMARY, exact)
    assert s2["capture_to_prediction"]["p50_ms"] == 1.4 and "JSONL" in s2["capture_to_prediction_source"]


# -- import boundary: edge-bench runs on the devices ---------------------------------------------------
def test_edge_bench_modules_import_no_tensorflow():
    mods = ["benchmarks.cli", "benchmarks.latency", "benchmarks.measure", "benchmarks.machine", "benchmarks.memory",
            "benchmarks.report", "benchmarks.compare", "benchmarks.targets", "benchmarks.accuracy", "benchmarks.e2e",
            "benchmarks.bench_overhead"]
    code = ("import importlib, sys\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "from benchmarks.cli import build_parser; build_parser()\n"
            "print(','.join(sorted(k for k in sys.modules if k.split('.')[0] in "
            "('tensorflow', 'tf_keras', 'keras', 'sklearn', 'train', 'quantize', 'matplotlib'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"edge-bench pulled in host-only modules: {out.stdout.strip()}"
