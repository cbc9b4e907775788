"""The catalog (edge/catalog.py) is the one table; every consumer knows every row of it, and
edge-run (edge.select.plan) and edge-bench (benchmarks.targets) choose the same artifacts for every
device config in device_configs/."""
import importlib
import json
import os

import pytest

from edge import catalog as C
from edge.bundle import Artifact, Bundle, load, validate
from edge.config import available_configs, load_config
from edge.preprocess import InputSpec
from edge.sampling import TemporalSampling
from edge.select import ModelError, pair_head, plan, select_artifacts

CONFIGS = sorted(available_configs())


# -- every consumer knows every row -------------------------------------------------------------
def test_every_format_has_a_backend_class_and_a_suffix_that_maps_back():
    for f in C.FORMATS:
        if f.backend is None:
            assert f.name == "keras"          # the only host-only format
            continue
        b = C.BACKEND[f.backend]
        cls = getattr(importlib.import_module(b.module), b.cls)   # runtimes are imported lazily
        from edge.backends.base import Backend
        assert issubclass(cls, Backend), cls
        for s in f.suffixes:
            assert C.backend_for_file("m/part" + s) == f.backend
            assert C.format_for_file("m/part" + s) == f.name
    with pytest.raises(ValueError, match="known suffixes"):
        C.backend_for_file("model.pb")


def test_backend_registry_is_the_catalog():
    from edge.backends import REGISTRY, backend_for_path
    assert set(REGISTRY) == set(C.BACKEND_NAMES)
    assert backend_for_path("x/encoder_int8_edgetpu.tflite") == "edgetpu"
    assert backend_for_path("x/encoder_int8.tflite") == "tflite"


def test_every_export_row_has_an_exporter_and_a_catalog_format():
    from quantize.formats import EXPORTERS, FORMATS
    assert set(EXPORTERS) == {e.name for e in C.EXPORTS} == set(FORMATS)
    for e in C.EXPORTS:
        assert e.format in C.FORMAT and e.precision in C.FORMAT[e.format].precisions
        assert C.format_for_file("part" + e.suffix) == e.format, e
        assert all(n in C.EXPORT and n != e.name for n in e.needs)
        assert set(e.devices) <= set(C.DEVICE_NAMES)
        assert callable(FORMATS[e.name].export)
    # every deployable format can be produced by some export
    assert {f.name for f in C.FORMATS} == {e.format for e in C.EXPORTS}


def test_every_device_has_backends_a_cpu_head_backend_and_bench_rows():
    from benchmarks.targets import plan_targets
    b = _bundle(tmp=None)
    for d in C.DEVICES:
        assert d.backends and all(x in C.BACKEND for x in d.backends)
        assert C.BACKEND[d.head_backend].on_cpu
        assert d.precision in C.PRECISIONS
        rows = plan_targets(b, d.name)
        assert any(t.status == "pending" for t in rows), d.name        # edge-bench times something
        assert {a.name for t in rows for a in t.artifacts.values()} == {a.name for a in b.artifacts}


def test_every_device_config_uses_catalog_values():
    assert CONFIGS, "no device configs found"
    for name in CONFIGS:
        cfg = load_config(name)
        assert cfg.device in C.DEVICE, name
        assert cfg.backend in C.DEVICE[cfg.device].backends, name
        assert C.BACKEND[cfg.head_backend].on_cpu, name


def test_bundle_schema_accepts_every_catalog_value_and_nothing_else(tmp_path):
    b = _bundle(tmp_path)
    data = json.load(open(os.path.join(b.root, "bundle.json")))
    validate(data)
    assert {a["format"] for a in data["artifacts"]} == set(C.FORMAT_NAMES)
    data["artifacts"][0]["format"] = "pb"
    with pytest.raises(ValueError, match="format"):
        validate(data)


def test_edge_eval_knows_every_cpu_format(tmp_path):
    from train.evaluate import _cpu_bundle_targets
    b = _bundle(tmp_path)
    names = {t.name for t in _cpu_bundle_targets(b, None)}
    for a in b.artifacts:
        if a.format in C.device_formats("cpu") and a.part == "full" and C.runs_on(a.devices, "cpu"):
            assert a.name in names
        elif a.part == "full" and a.format in C.device_formats("cpu"):
            assert a.name not in names      # e.g. the FP16 ONNX for TensorRT: a Jetson's, not this CPU's
    # encoders are scored with the head edge-run pairs on the CPU: a CPU runtime runs its own head
    enc = next(a for a in b.artifacts if a.part == "encoder" and a.format == "onnx")
    head, backend, _ = pair_head(b, enc, C.head_backend_for("onnxruntime", "tflite"))
    assert f"{enc.name}+{head.name}" in names and backend == "onnxruntime" and head.format == "onnx"


# -- one planner: edge-run and edge-bench agree ---------------------------------------------------
def _art(name, fmt, prec, part, devices):
    suffix = {"tflite": ".tflite", "edgetpu": "_edgetpu.tflite", "onnx": ".onnx", "tensorrt": ".engine",
              "keras": ".keras"}[fmt]
    return Artifact(name=name, file=name + suffix, format=fmt, precision=prec, part=part, devices=list(devices))


def _all_artifacts(streaming):
    arts = []
    for part in (("encoder", "head", "full") if streaming else ("full",)):
        for p in C.PRECISIONS:
            arts.append(_art(f"{part}-{p}-tflite", "tflite", p, part, ["cpu", "coral"] if p == "int8" else ["cpu"]))
        arts.append(_art(f"{part}-float32-onnx", "onnx", "float32", part, ["cpu", "jetson"]))
        if part != "head":
            arts.append(_art(f"{part}-int8-edgetpu", "edgetpu", "int8", part, ["coral"]))
            # TensorRT's inputs (edge-quantize's onnx-fp16 / onnx-int8 rows)
            arts.append(_art(f"{part}-float16-onnx", "onnx", "float16", part, C.EXPORT["onnx-fp16"].devices))
            arts.append(_art(f"{part}-int8-onnx", "onnx", "int8", part, C.EXPORT["onnx-int8"].devices))
    arts.append(_art("full-float32-keras", "keras", "float32", "full", ["cpu"]))
    return arts


def _bundle(tmp, streaming=True, arts=None):
    arts = arts if arts is not None else _all_artifacts(streaming) + [
        _art("full-float16-tensorrt", "tensorrt", "float16", "full", ["jetson"])]
    b = Bundle(name="t", model="lrcn-edge" if streaming else "lrcn", labels=["a", "b"],
               input=InputSpec(frames=4, height=8, width=8), sampling=TemporalSampling(frames=4), artifacts=arts,
               streaming={"feature_dim": 4} if streaming else None, root=str(tmp) if tmp else "/nonexistent")
    if tmp:
        for a in arts:
            open(os.path.join(str(tmp), a.file), "wb").write(b"x")
        b.save(str(tmp))
        b = load(str(tmp))
    return b


@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize("name", CONFIGS)
def test_edge_bench_times_what_edge_run_runs(tmp_path, name, streaming):
    from benchmarks.targets import plan_targets
    cfg = load_config(name)
    b = _bundle(tmp_path, streaming, arts=_all_artifacts(streaming))   # no shipped engine: built from ONNX
    p = plan(b, cfg)
    run_arts = {a.name for a in p.artifacts}
    # what edge-run itself asks (runner.py calls select_artifacts with the config's fields)
    sel = select_artifacts(b, cfg.backend, cfg.precision, cfg.head_backend)
    assert {a.name for a in sel.artifacts} == run_arts and sel.backend == p.backend
    rows = [t for t in plan_targets(b, cfg.device, head_backend=cfg.head_backend) if t.status == "pending"]
    match = [t for t in rows if {a.name for a in t.artifacts.values()} == run_arts and t.backend == p.backend]
    assert match, f"{name}: edge-run runs {sorted(run_arts)} on {p.backend}, edge-bench times " \
                  f"{[(t.key, t.backend) for t in rows]}"
    assert match[0].head_backend == p.head_backend
    assert p.streaming == streaming
    if streaming:
        assert p.main.part == "encoder" and p.head.part == "head"
        assert C.BACKEND[p.head_backend].on_cpu


def test_plan_prefers_the_config_precision_then_catalog_order(tmp_path):
    b = _bundle(tmp_path, arts=[a for a in _all_artifacts(True) if a.precision != "int8"])
    p = plan(b, "cpu")                      # cpu prefers int8: none, so the catalog order's next
    assert p.main.precision == C.PRECISION_ORDER[1] and p.main.format == "tflite"
    assert any("no int8 encoder" in n for n in p.notes)
    assert p.head.precision == p.main.precision           # head matched to the encoder's precision
    p = plan(b, "cpu", precision="float16")
    assert p.main.precision == "float16" and p.head.precision == "float16" and not p.notes


def test_head_runs_on_a_cpu_main_backend_else_on_the_configs_head_backend(tmp_path):
    b = _bundle(tmp_path)
    assert plan(b, "cpu", backend="onnxruntime").head.format == "onnx"          # one runtime on the CPU
    assert plan(b, "cpu").head.format == "tflite"
    assert plan(b, "coral").head_backend == "tflite"                            # next to the Edge TPU
    assert plan(b, "jetson").head_backend == "onnxruntime"                      # next to TensorRT
    assert C.head_backend_for("edgetpu", "tflite") == "tflite" and C.head_backend_for(None, "tflite") == "tflite"


def test_plan_falls_back_to_any_cpu_head_and_says_so(tmp_path):
    arts = [a for a in _all_artifacts(True) if not (a.part == "head" and a.format == "tflite")]
    p = plan(_bundle(tmp_path, arts=arts), "coral")
    assert p.backend == "edgetpu" and p.main.format == "edgetpu"
    assert p.head.format == "onnx" and p.head_backend == "onnxruntime"
    assert any("no tflite head" in n for n in p.notes)


def test_plan_uses_artifact_devices(tmp_path):
    arts = [a for a in _all_artifacts(False)]
    for a in arts:
        if a.format == "onnx":
            a.devices = ["coral"]           # marked by the host for another device only
    b = _bundle(tmp_path, streaming=False, arts=arts)
    with pytest.raises(ModelError, match="marked for devices"):
        plan(b, "jetson")
    assert plan(b, "cpu").main.format == "tflite"


def test_plan_missing_edgetpu_says_how_to_get_it(tmp_path):
    arts = [a for a in _all_artifacts(True) if a.format != "edgetpu"]
    with pytest.raises(ModelError, match="edgetpu_compiler"):
        plan(_bundle(tmp_path, arts=arts), "coral")


# -- TensorRT's ONNX variants: the planner picks what edge/trt_build.py builds from ----------------
JETSONS = [n for n in CONFIGS if load_config(n).device == "jetson"]
CORALS = [n for n in CONFIGS if load_config(n).device == "coral"]


def _variant_bundle(tmp):
    """encoder/full ONNX as edge-quantize names them: <part>.onnx, <part>_fp16.onnx, <part>_int8.onnx (QDQ)."""
    arts = []
    for part in ("encoder", "full"):
        for prec, row in (("float32", "onnx"), ("float16", "onnx-fp16"), ("int8", "onnx-int8")):
            e = C.EXPORT[row]
            arts.append(Artifact(name=f"{part}-{prec}-onnx", file=part + e.suffix, format="onnx", precision=prec,
                                 part=part, devices=list(e.devices)))
    arts.append(Artifact(name="head-float32-onnx", file="head.onnx", format="onnx", part="head",
                         devices=["cpu", "jetson"]))
    b = _bundle(tmp, arts=arts)
    open(os.path.join(str(tmp), "encoder_int8.onnx"), "wb").write(b"..QuantizeLinear..DequantizeLinear..")
    return b


class _Trt(object):
    """What edge.trt_build.TrtApi reads of a tensorrt module: 10.x has the FP16/INT8 flags, 11 none."""

    def __init__(self, version, flags):
        import types
        self.__version__ = version
        self.BuilderFlag = types.SimpleNamespace(**{f: i for i, f in enumerate(flags)})


@pytest.mark.parametrize("name", JETSONS)
def test_jetson_plan_runs_the_float_onnx_and_trt_build_finds_the_variants_next_to_it(tmp_path, name):
    from edge.trt_build import TrtApi, plan_build
    cfg = load_config(name)
    b = _variant_bundle(tmp_path)
    p = plan(b, cfg)
    sel = select_artifacts(b, cfg.backend, cfg.precision, cfg.head_backend)      # what edge-run asks
    assert p.backend == sel.backend == "tensorrt" and p.main.file == sel.main.file == "encoder.onnx"
    assert p.head.file == "head.onnx" and p.head_backend == "onnxruntime"
    main = b.path(p.main)
    strongly_typed, flagged = TrtApi(_Trt("11.1", [])), TrtApi(_Trt("10.3", ["FP16", "INT8"]))
    got = {(api.version, prec): plan_build(api, main, prec) for api in (strongly_typed, flagged)
           for prec in ("fp16", "int8")}
    assert os.path.basename(got[("11.1", "fp16")].onnx) == "encoder_fp16.onnx"      # FP16 ONNX, no flag
    assert os.path.basename(got[("10.3", "fp16")].onnx) == "encoder.onnx" and got[("10.3", "fp16")].flags == ["FP16"]
    for v in ("11.1", "10.3"):                                                      # int8: QDQ on every version
        assert os.path.basename(got[(v, "int8")].onnx) == "encoder_int8.onnx" and got[(v, "int8")].precision == "int8"
    files = {a.file for a in b.artifacts}
    for api in (strongly_typed, flagged):      # what the config builds at is an ONNX the bundle ships
        assert os.path.basename(plan_build(api, main, cfg.tensorrt_precision).onnx) in files


def test_qdq_onnx_runs_on_a_cpu_with_onnxruntime_and_the_fp16_onnx_only_on_a_jetson(tmp_path):
    b = _variant_bundle(tmp_path)
    p = plan(b, "cpu", backend="onnxruntime")          # cpu prefers int8: the QDQ ONNX
    assert p.main.file == "encoder_int8.onnx" and p.head.file == "head.onnx"
    assert plan(b, "cpu", backend="onnxruntime", precision="float32").main.file == "encoder.onnx"
    assert plan(b, "cpu", backend="onnxruntime", precision="float16").main.file != "encoder_fp16.onnx"
    assert plan(b, "jetson", precision="float16").main.file == "encoder_fp16.onnx"


# -- Edge TPU: a head co-compiled with its encoder runs on the Edge TPU too -----------------------
def _coral_bundle(tmp, co_compiled):
    arts = [a for a in _all_artifacts(True) if a.format != "edgetpu"]
    enc = _art("encoder-int8-edgetpu", "edgetpu", "int8", "encoder", ["coral"])
    head = _art("head-int8-edgetpu", "edgetpu", "int8", "head", ["coral"])
    if co_compiled:
        enc.edgetpu = {"mappable": True, "co_compiled_with": [head.file], "cache_priority": 0}
        head.edgetpu = {"mappable": True, "co_compiled_with": [enc.file], "cache_priority": 1}
    else:   # compiled, but in another run (another parameter cache): not a pair
        head.edgetpu = {"mappable": True, "co_compiled_with": ["other_int8_edgetpu.tflite"]}
    return _bundle(tmp, arts=arts + [enc, head])


@pytest.mark.parametrize("co_compiled", [True, False])
@pytest.mark.parametrize("name", CORALS)
def test_coral_runs_a_co_compiled_head_on_the_edge_tpu_and_edge_bench_agrees(tmp_path, name, co_compiled):
    from benchmarks.targets import plan_targets
    cfg = load_config(name)
    b = _coral_bundle(tmp_path, co_compiled)
    p = plan(b, cfg)
    sel = select_artifacts(b, cfg.backend, cfg.precision, cfg.head_backend)
    assert p.main.name == sel.main.name == "encoder-int8-edgetpu"
    if co_compiled:
        assert (p.head.name, p.head_backend) == ("head-int8-edgetpu", "edgetpu")
        assert any("co-compiled" in n for n in p.notes)
    else:
        assert p.head.format == "tflite" and p.head_backend == cfg.head_backend
    assert (sel.head.name, sel.head_backend) == (p.head.name, p.head_backend)
    rows = [t for t in plan_targets(b, cfg.device, head_backend=cfg.head_backend) if t.status == "pending"
            and t.artifacts.get("encoder") is not None and t.artifacts["encoder"].name == p.main.name]
    assert rows and rows[0].head_backend == p.head_backend and rows[0].artifacts["head"].name == p.head.name


def test_edge_tpu_head_opens_on_the_encoders_device_string(tmp_path, monkeypatch):
    from edge import evaluation
    from edge.backends import BackendOptions
    opened = []

    class _Fake(object):
        def __init__(self, path, backend, options):
            opened.append((os.path.basename(path), backend, options.device))

        def close(self):
            pass
    monkeypatch.setattr(evaluation, "load_backend", _Fake)
    for co in (True, False):
        (tmp_path / str(co)).mkdir()
        b = _coral_bundle(tmp_path / str(co), co)
        evaluation.classifier_for(b, plan(b, "coral"), BackendOptions(device="pci:0"))
    assert opened == [("encoder-int8-edgetpu_edgetpu.tflite", "edgetpu", "pci:0"),
                      ("head-int8-edgetpu_edgetpu.tflite", "edgetpu", "pci:0"),
                      ("encoder-int8-edgetpu_edgetpu.tflite", "edgetpu", "pci:0"),
                      ("head-int8-tflite.tflite", "tflite", None)]


def test_why_not_on_names_the_artifacts_own_devices():
    """An FP16 ONNX made for TensorRT is skipped on cpu because of the artifact, not the format (ONNX runs on cpu)."""
    from edge import catalog as C

    assert C.why_not_on("onnx", "cpu", ["jetson"]) == "not for --device cpu: this artifact is made for jetson"
    assert "TensorRT engine" in C.why_not_on("tensorrt", "cpu", ["jetson"])      # the format itself is not on cpu
