"""TensorRT 8.2 / 8.6 / 10 / 11 and cuda-python 12/13 + pycuda, proven against FAKE runtimes.

The fake ``tensorrt`` modules (tests/fakes/fake_tensorrt.py) expose exactly the attribute surface of
NVIDIA/TensorRT's Python bindings at each release tag (tests/fakes/tensorrt_api.json, generated from
the binding sources by tests/fakes/gen_tensorrt_api.py) and raise AttributeError for anything else;
inference runs the ONNX on onnxruntime. Nothing here is a real GPU or a real TensorRT: what these
tests prove is that build, cache, load and infer call only names each release has, pick the right
ONNX variant and flags, and share one cache key between host and device.
"""
import json
import logging
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fakes import fake_cuda, fake_tensorrt as FT, onnx_models as OM  # noqa: E402

from edge.backends.base import BackendOptions, BackendUnavailable  # noqa: E402

VERSIONS = FT.VERSIONS
X = np.random.default_rng(3).random(OM.SHAPE).astype(np.float32)


@pytest.fixture
def use_trt(monkeypatch):
    """use_trt("11") -> a fresh fake tensorrt 11 module, importable as ``tensorrt``."""
    def use(version):
        mod = FT.make_module(version)
        monkeypatch.setitem(sys.modules, "tensorrt", mod)
        return mod
    return use


@pytest.fixture
def cuda13(monkeypatch):
    fake_cuda.install(monkeypatch, "cuda-python-13")


@pytest.fixture
def part(tmp_path):
    """A bundle-like directory with encoder.onnx, encoder_fp16.onnx and encoder_int8.onnx (QDQ)."""
    from quantize.onnx_export import export_fp16

    onnx_path = OM.save(OM.float_model(), tmp_path / "encoder.onnx")
    export_fp16(onnx_path, str(tmp_path / "encoder_fp16.onnx"))
    OM.save(OM.qdq_model(), tmp_path / "encoder_int8.onnx")
    return tmp_path


def load(path, precision="fp16", cache_dir=None):
    from edge.backends.tensorrt import TensorRTBackend

    opts = BackendOptions(precision=precision, cache_dir=str(cache_dir) if cache_dir else None)
    return TensorRTBackend(str(path), opts)


def parse_engine_name(path):
    from edge.trt_build import parse_engine_name as parse

    return parse(path)


def engine_header(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data.startswith(FT.MAGIC)
    return json.loads(data[len(FT.MAGIC):].split(b"\n", 1)[0])


# ---- the surface comes from the binding sources ----------------------------------------------------
def test_api_surface_records_tags_and_known_facts():
    api = FT.api_surface()
    assert api["source"] == "https://github.com/NVIDIA/TensorRT"
    tags = {v: api["versions"][v]["tag"] for v in VERSIONS}
    assert tags == {"8.2": "8.2.1", "8.6": "v8.6.1", "10": "v10.3.0", "11": "v11.1"}
    v = {k: api["versions"][k] for k in VERSIONS}
    flags = {k: v[k]["enums"]["BuilderFlag"]["values"] for k in VERSIONS}
    assert "FP16" in flags["8.2"] and "INT8" in flags["10"]
    assert "FP16" not in flags["11"] and "INT8" not in flags["11"]                       # finding 5
    assert "platform_has_fast_fp16" in v["10"]["classes"]["Builder"]["members"]
    assert "platform_has_fast_fp16" not in v["11"]["classes"]["Builder"]["members"]
    assert "int8_calibrator" not in v["11"]["classes"]["IBuilderConfig"]["members"]
    assert "IInt8EntropyCalibrator2" not in v["11"]["classes"] and "IInt8EntropyCalibrator2" in v["10"]["classes"]
    assert "max_workspace_size" in v["8.2"]["classes"]["IBuilderConfig"]["members"]
    assert "set_memory_pool_limit" not in v["8.2"]["classes"]["IBuilderConfig"]["members"]
    assert "num_io_tensors" not in v["8.2"]["classes"]["ICudaEngine"]["members"]
    assert "num_bindings" not in v["10"]["classes"]["ICudaEngine"]["members"]
    assert "execute_async_v3" in v["8.6"]["classes"]["IExecutionContext"]["members"]


@pytest.mark.skipif(not os.path.isdir(os.environ.get("TENSORRT_SRC", "/work/.mirror/NVIDIA+TensorRT/repo")),
                    reason="no NVIDIA/TensorRT clone to regenerate from (set TENSORRT_SRC)")
def test_api_surface_is_what_the_generator_makes():
    import subprocess

    src = os.environ.get("TENSORRT_SRC", "/work/.mirror/NVIDIA+TensorRT/repo")
    gen = os.path.join(os.path.dirname(__file__), "fakes", "gen_tensorrt_api.py")
    out = subprocess.check_output([sys.executable, gen, src])
    assert json.loads(out.decode()) == FT.api_surface()


@pytest.mark.parametrize("version", VERSIONS)
def test_fake_raises_for_names_the_release_lacks(version, use_trt):
    trt = use_trt(version)
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    config = builder.create_builder_config()
    if version == "11":
        for obj, name in ((trt.BuilderFlag, "FP16"), (trt.BuilderFlag, "INT8"), (builder, "platform_has_fast_fp16"),
                          (config, "int8_calibrator"), (trt, "IInt8EntropyCalibrator2")):
            with pytest.raises(AttributeError):
                getattr(obj, name)
    if version in ("10", "11"):
        with pytest.raises(AttributeError):          # removed in 10: setting it must fail, not pass silently
            config.max_workspace_size = 1 << 20
    if version == "8.2":
        with pytest.raises(AttributeError):
            config.set_memory_pool_limit(None, 1)
        with pytest.raises(AttributeError):
            getattr(trt, "TensorIOMode")
    else:
        with pytest.raises(AttributeError):
            getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_PRECISION_NOT_A_FLAG")


@pytest.mark.parametrize("version,expect", [
    ("8.2", dict(fp16_flag=True, strongly_typed=False, explicit_batch=True, memory_pool=False, calibrator=True,
                 tensor_io=False)),
    ("8.6", dict(fp16_flag=True, strongly_typed=False, explicit_batch=True, memory_pool=True, calibrator=True,
                 tensor_io=True)),
    ("10", dict(fp16_flag=True, strongly_typed=False, explicit_batch=False, memory_pool=True, calibrator=True,
                tensor_io=True)),
    ("11", dict(fp16_flag=False, strongly_typed=True, explicit_batch=False, memory_pool=True, calibrator=False,
                tensor_io=True)),
])
def test_api_chosen_by_feature(version, expect, use_trt):
    from edge.trt_build import TrtApi

    api = TrtApi(use_trt(version)).describe()
    assert {k: api[k] for k in expect} == expect


# ---- build, cache, load, infer on every release and CUDA layout --------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_load_infer_each_release(version, precision, use_trt, cuda13, part):
    trt = use_trt(version)
    b = load(part / "encoder.onnx", precision)
    try:
        y = b.infer(X)
        key = parse_engine_name(b.engine_path)
        assert key["trt"] == trt.__version__ and key["gpu"] == "orin-fake-nvgpu-sm87" and key["precision"] == precision
        src = {"fp32": "encoder.onnx", "fp16": "encoder_fp16.onnx" if version == "11" else "encoder.onnx",
               "int8": "encoder_int8.onnx"}[precision]
        assert key["stem"] == src[:-5]
        np.testing.assert_allclose(y, OM.reference(part / src, X), atol=1e-6)
        flags = engine_header(b.engine_path)["flags"]
        if version == "11":
            assert flags == []                     # strongly typed: the ONNX's types decide
        else:
            assert flags == {"fp32": [], "fp16": ["FP16"], "int8": ["FP16", "INT8"]}[precision]
        assert b.describe()["tensorrt"]["io_api"] == ("bindings" if version == "8.2" else "tensors")
    finally:
        b.close()
    assert trt._stats["builds"] == 1 and trt._stats["executions"] == 1


@pytest.mark.parametrize("layout", fake_cuda.LAYOUTS)
@pytest.mark.parametrize("version", ["8.2", "11"])
def test_each_cuda_layout(version, layout, use_trt, monkeypatch, part):
    from edge.trt_cuda import open_cuda

    fake_cuda.install(monkeypatch, layout)
    use_trt(version)
    cuda = open_cuda()
    assert cuda.layout == {"cuda-python-12-old": "cuda.cudart", "cuda-python-12": "cuda.bindings.runtime",
                           "cuda-python-13": "cuda.bindings.runtime", "pycuda": "pycuda"}[layout]
    assert cuda.gpu().ident() == "Orin (fake nvgpu) sm87"
    assert cuda.stream_handle == int(cuda.stream) if layout != "pycuda" else cuda.stream_handle
    b = load(part / "encoder.onnx", "fp32")
    try:
        np.testing.assert_allclose(b.infer(X), OM.reference(part / "encoder.onnx", X), atol=1e-6)
    finally:
        b.close()


def test_cuda_python_13_has_no_cuda_cudart(monkeypatch):
    """Finding 5: `from cuda import cudart` is gone in cuda-python 13; the helper uses cuda.bindings."""
    fake_cuda.install(monkeypatch, "cuda-python-13")
    with pytest.raises(ImportError):
        from cuda import cudart  # noqa: F401
    from quantize.tensorrt import device_name
    assert device_name() == "Orin (fake nvgpu) sm87"


def test_no_cuda_binding_is_one_clear_line(monkeypatch, use_trt, part):
    for name in ("cuda", "cuda.cudart", "cuda.bindings", "cuda.bindings.runtime", "pycuda", "pycuda.driver",
                 "pycuda.autoinit"):
        monkeypatch.setitem(sys.modules, name, None)
    use_trt("10")
    with pytest.raises(BackendUnavailable, match="pip install cuda-python"):
        load(part / "encoder.onnx")


# ---- one cache key, host and device; foreign engines rebuilt -------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
def test_host_built_engine_is_reused_by_the_device(version, use_trt, cuda13, part):
    """Finding 6: edge-quantize's engine (written next to the ONNX in the bundle) is the one edge-run loads."""
    from quantize.tensorrt import build_engine

    trt = use_trt(version)
    built = build_engine(str(part / "encoder.onnx"), str(part), "fp16", log=lambda *_: None)
    assert not built.cached and os.path.dirname(built.path) == str(part)
    b = load(part / "encoder.onnx", "fp16", cache_dir=part / "cache")
    try:
        assert b.engine_path == built.path
    finally:
        b.close()
    assert trt._stats["builds"] == 1            # the device built nothing
    assert build_engine(str(part / "encoder.onnx"), str(part), "fp16", log=lambda *_: None).cached


def test_foreign_engine_in_bundle_is_rebuilt_with_a_notice(use_trt, cuda13, part, caplog):
    from quantize.tensorrt import build_engine

    use_trt("10")
    host = build_engine(str(part / "encoder.onnx"), str(part), "fp16", log=lambda *_: None)
    trt11 = use_trt("11")
    with caplog.at_level(logging.WARNING):
        b = load(host.path, "fp16", cache_dir=part / "cache")
    try:
        assert b.engine_path != host.path and parse_engine_name(b.engine_path)["trt"] == "11.1.0"
        np.testing.assert_allclose(b.infer(X), OM.reference(part / "encoder_fp16.onnx", X), atol=1e-6)
    finally:
        b.close()
    notes = [r.getMessage() for r in caplog.records if "rebuilding from encoder.onnx" in r.getMessage()]
    assert len(notes) == 1 and "built with TensorRT 10.3.0" in notes[0] and "\n" not in notes[0]
    assert trt11._stats["builds"] == 1


def test_engine_for_another_gpu_is_rebuilt(use_trt, cuda13, part, monkeypatch, caplog):
    from quantize.tensorrt import build_engine

    use_trt("8.6")
    host = build_engine(str(part / "encoder.onnx"), str(part), "fp32", log=lambda *_: None)
    monkeypatch.setitem(fake_cuda.GPU, "name", "NVIDIA Tegra X1")
    monkeypatch.setitem(fake_cuda.GPU, "major", 5)
    monkeypatch.setitem(fake_cuda.GPU, "minor", 3)
    with caplog.at_level(logging.WARNING):
        b = load(host.path, "fp32", cache_dir=part / "cache")
    b.close()
    assert "nvidia-tegra-x1-sm53" in b.engine_path
    assert any("built for GPU orin-fake-nvgpu-sm87" in r.getMessage() for r in caplog.records)


def test_engine_older_than_its_onnx_is_rebuilt(use_trt, cuda13, part, caplog):
    from quantize.tensorrt import build_engine

    trt = use_trt("10")
    host = build_engine(str(part / "encoder.onnx"), str(part), "fp32", log=lambda *_: None)
    OM.save(OM.float_model(seed=1), part / "encoder.onnx")          # the model changed, the engine did not
    with caplog.at_level(logging.WARNING):
        b = load(host.path, "fp32", cache_dir=part / "cache")
    try:
        np.testing.assert_allclose(b.infer(X), OM.reference(part / "encoder.onnx", X), atol=1e-6)
    finally:
        b.close()
    assert any("built from an older encoder.onnx" in r.getMessage() for r in caplog.records)
    assert trt._stats["builds"] == 2


def test_unreadable_engine_is_rebuilt_from_the_onnx_next_to_it(use_trt, cuda13, part, caplog):
    use_trt("10")
    (part / "encoder.engine").write_bytes(b"not an engine")
    with caplog.at_level(logging.WARNING):
        b = load(part / "encoder.engine", "fp16", cache_dir=part / "cache")
    b.close()
    assert any("could not deserialize" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)


def test_unreadable_engine_without_onnx_says_what_to_do(use_trt, cuda13, tmp_path):
    use_trt("10")
    (tmp_path / "model.engine").write_bytes(b"not an engine")
    with pytest.raises(BackendUnavailable, match="no ONNX next to it.*edge-quantize"):
        load(tmp_path / "model.engine")


# ---- precision fallbacks and the calibrator -------------------------------------------------------
def test_int8_without_qdq_onnx_builds_fp16_with_a_notice(use_trt, cuda13, part, caplog):
    os.remove(str(part / "encoder_int8.onnx"))
    use_trt("11")
    with caplog.at_level(logging.WARNING):
        b = load(part / "encoder.onnx", "int8", cache_dir=part / "cache")
    b.close()
    assert parse_engine_name(b.engine_path)["precision"] == "fp16"
    assert any("no QDQ ONNX encoder_int8.onnx" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("version", VERSIONS)
def test_calibrator_only_where_it_exists(version, use_trt, cuda13, part):
    from quantize.tensorrt import CalibrationBatches, build_engine

    os.remove(str(part / "encoder_int8.onnx"))
    use_trt(version)
    batches = CalibrationBatches([X[0] for _ in range(3)], batch_size=1)
    if version == "11":
        with pytest.raises(ValueError, match="no calibrator"):
            build_engine(str(part / "encoder.onnx"), str(part), "int8", calibration=batches, log=lambda *_: None)
        return
    built = build_engine(str(part / "encoder.onnx"), str(part), "int8", calibration=batches, log=lambda *_: None)
    assert built.precision == "int8" and engine_header(built.path)["calibrated"] == 3


def test_qdq_with_a_zero_point_is_refused_by_the_fake_parser(use_trt, cuda13, tmp_path):
    """The fake enforces TensorRT's symmetric-only quantization (what export_qdq must produce)."""
    OM.save(OM.float_model(), tmp_path / "encoder.onnx")
    OM.save(OM.qdq_model(zero_point=3), tmp_path / "encoder_int8.onnx")
    use_trt("10")
    with pytest.raises(RuntimeError, match="symmetric"):
        load(tmp_path / "encoder.onnx", "int8")


# ---- dynamic batch: one profile (1..max_batch), input shape per call, larger batches split ----------
@pytest.fixture
def dyn_part(tmp_path):
    """encoder.onnx / _fp16 / _int8 (QDQ) with a dynamic batch dimension, as quantize.onnx_export writes them."""
    from quantize.onnx_export import export_fp16

    onnx_path = OM.save(OM.float_model(dynamic=True), tmp_path / "encoder.onnx")
    export_fp16(onnx_path, str(tmp_path / "encoder_fp16.onnx"))
    OM.save(OM.qdq_model(dynamic=True), tmp_path / "encoder_int8.onnx")
    return tmp_path


def load_batched(path, precision, max_batch):
    from edge.backends.tensorrt import TensorRTBackend

    return TensorRTBackend(str(path), BackendOptions(precision=precision, extra={"max_batch": max_batch}))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_dynamic_batch_build_and_batched_infer_each_release(version, precision, use_trt, cuda13, dyn_part):
    trt = use_trt(version)
    xs = np.random.default_rng(5).random((5,) + OM.SHAPE[1:]).astype(np.float32)
    b = load_batched(dyn_part / "encoder.onnx", precision, 2)
    try:
        assert b.max_batch == 2 and b.input.shape == OM.SHAPE and b.describe()["tensorrt"]["max_batch"] == 2
        key = parse_engine_name(b.engine_path)
        assert key["max_batch"] == "2" and key["precision"] == precision
        assert engine_header(b.engine_path)["profiles"] == [
            {"input": [[1, 4, 4, 3], [2, 4, 4, 3], [2, 4, 4, 3]]}]
        y = b.infer(xs)
        src = dyn_part / ("encoder_int8.onnx" if precision == "int8" else
                          "encoder_fp16.onnx" if version == "11" else "encoder.onnx")
        ref = np.concatenate([OM.reference(src, x[None]) for x in xs])
        assert y.shape == (5, OM.CLASSES)
        np.testing.assert_allclose(y, ref, atol=1e-6)
        assert trt._stats["batches"] == [2, 2, 1]          # 5 frames, max_batch 2: split into 3 calls
        np.testing.assert_allclose(b.infer(xs[:1]), ref[:1], atol=1e-6)   # batch 1 still works
        assert trt._stats["batches"][-1] == 1
    finally:
        b.close()


@pytest.mark.parametrize("version", ["8.2", "11"])
def test_max_batch_is_part_of_the_cache_key(version, use_trt, cuda13, dyn_part):
    trt = use_trt(version)
    paths = []
    for mb in (2, 4, 2):
        b = load_batched(dyn_part / "encoder.onnx", "fp32", mb)
        paths.append(b.engine_path)
        assert b.max_batch == mb
        b.close()
    assert paths[0] == paths[2] != paths[1] and trt._stats["builds"] == 2   # 2 again: the cached engine


def test_shape_outside_the_profile_is_refused(use_trt, cuda13, dyn_part):
    """The fake returns False like TensorRT for a shape out of the profile; the backend says so."""
    use_trt("10")
    b = load_batched(dyn_part / "encoder.onnx", "fp32", 2)
    try:
        with pytest.raises(ValueError, match="outside the engine's profile"):
            b.io.set_shape("input", (3,) + OM.SHAPE[1:])
    finally:
        b.close()


def test_dynamic_input_without_a_profile_does_not_build(use_trt, cuda13, dyn_part):
    """What add_batch_profile prevents: the fake refuses a dynamic network with no profile, as TensorRT does."""
    from edge.trt_build import TrtApi, parse_onnx

    from edge.trt_build import add_batch_profile

    trt = use_trt("8.6")
    logger = trt.Logger(trt.Logger.WARNING)
    builder, network, config, _p = parse_onnx(trt, str(dyn_part / "encoder.onnx"), 64, logger)
    assert builder.build_serialized_network(network, config) is None
    assert any("no optimization profile" in m for _s, m in logger._messages)
    assert add_batch_profile(builder, network, config, 3) == (3, 4, 4, 3)
    assert builder.build_serialized_network(network, config) is not None
    assert TrtApi(trt).explicit_batch


@pytest.mark.parametrize("version", ["8.2", "10"])
def test_fixed_batch_onnx_gives_a_batch_1_engine(version, use_trt, cuda13, part):
    use_trt(version)
    b = load_batched(part / "encoder.onnx", "fp32", 8)
    try:
        assert b.max_batch == 1 and "profiles" in engine_header(b.engine_path)
        assert engine_header(b.engine_path)["profiles"] == []
        with pytest.raises(ValueError, match="does not match model input"):
            b.infer(np.zeros((2,) + OM.SHAPE[1:], np.float32))
    finally:
        b.close()


@pytest.mark.parametrize("version", ["8.2", "8.6", "10"])
def test_calibration_of_a_dynamic_batch_network_fixes_the_calibrator_batch(version, use_trt, cuda13, dyn_part):
    """INT8 by calibration (no QDQ ONNX): the calibration profile takes the calibrator's batch, the
    engine keeps the 1..max_batch profile."""
    from quantize.tensorrt import CalibrationBatches, build_engine

    os.remove(str(dyn_part / "encoder_int8.onnx"))
    use_trt(version)
    batches = CalibrationBatches([X[0] for _ in range(4)], batch_size=2)
    built = build_engine(str(dyn_part / "encoder.onnx"), str(dyn_part), "int8", calibration=batches,
                         log=lambda *_: None)
    head = engine_header(built.path)
    assert head["calibrated"] == 2 and head["calibration_profile"] == {"input": [[2, 4, 4, 3]] * 3}
    assert head["profiles"] == [{"input": [[1, 4, 4, 3], [8, 4, 4, 3], [8, 4, 4, 3]]}]
