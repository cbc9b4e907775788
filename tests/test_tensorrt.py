"""TensorRT builder: everything up to the tensorrt import runs here; the build itself on a Jetson."""
import importlib.util

import numpy as np
import pytest

from quantize import tensorrt as TRT

SHA = "ab" * 32


def test_engine_name_encodes_model_version_device_precision():
    n = TRT.engine_name(SHA, "8.6.2", "NVIDIA Jetson Orin Nano", "int8", stem="encoder")
    assert n == "encoder-abababababab-b8-trt8.6.2-nvidia-jetson-orin-nano-int8.engine"   # b8: default max batch
    others = {TRT.engine_name("cd" * 32, "8.6.2", "NVIDIA Jetson Orin Nano", "int8", "encoder"),
              TRT.engine_name(SHA, "10.3.0", "NVIDIA Jetson Orin Nano", "int8", "encoder"),
              TRT.engine_name(SHA, "8.6.2", "Jetson Xavier NX", "int8", "encoder"),
              TRT.engine_name(SHA, "8.6.2", "NVIDIA Jetson Orin Nano", "fp16", "encoder")}
    assert n not in others and len(others) == 4
    from edge.trt_build import engine_file_name, parse_engine_name
    b4 = engine_file_name("encoder", SHA, "8.6.2", "NVIDIA Jetson Orin Nano", "int8", max_batch=4)
    assert b4 != n and "-b4-" in b4 and parse_engine_name(b4)["max_batch"] == "4"
    assert parse_engine_name(n)["stem"] == "encoder" and parse_engine_name(n)["precision"] == "int8"
    old = "encoder-abababababab-trt8.6.2-nvidia-jetson-orin-nano-int8.engine"    # before the batch was in the key
    assert parse_engine_name(old)["max_batch"] is None and parse_engine_name(old)["trt"] == "8.6.2"
    for bad in (0, -1, "x", 2.5):
        with pytest.raises(ValueError, match="max_batch"):
            engine_file_name("encoder", SHA, "8.6.2", "orin", "int8", max_batch=bad)
    with pytest.raises(ValueError):
        TRT.engine_name(SHA, "8.6", "orin", "int4")
    with pytest.raises(ValueError):
        TRT.engine_name("not-a-hash", "8.6", "orin", "fp16")


def test_engine_path_uses_file_hash(tmp_path):
    a = tmp_path / "m.onnx"
    a.write_bytes(b"model-a")
    p1 = TRT.engine_path(str(tmp_path), str(a), "8.6", "orin", "fp16")
    a.write_bytes(b"model-b")
    p2 = TRT.engine_path(str(tmp_path), str(a), "8.6", "orin", "fp16")
    assert p1 != p2 and p1.startswith(str(tmp_path)) and p1.endswith("-fp16.engine")


def test_engine_path_matches_device_side_cache_key(tmp_path):
    """The Jetson runner looks engines up with edge.trt_build.engine_cache_name: same key."""
    trt_build = pytest.importorskip("edge.trt_build")
    m = tmp_path / "encoder.onnx"
    m.write_bytes(b"onnx-bytes")
    ours = TRT.engine_path(str(tmp_path), str(m), "10.3.0", "Orin (nvgpu)", "fp16")
    theirs = trt_build.engine_cache_name(str(m), "10.3.0", "Orin (nvgpu)", "fp16")
    assert ours == str(tmp_path / theirs)


def test_calibration_batches_pad_last_batch_and_keep_order():
    samples = [np.full((2, 3), i, np.float32) for i in range(5)]
    b = TRT.CalibrationBatches(samples, batch_size=2)
    batches = list(b)
    assert len(b) == len(batches) == 3
    assert all(x.shape == (2, 2, 3) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"] for x in batches)
    assert [int(x[0, 0, 0]) for x in batches] == [0, 2, 4]
    assert int(batches[-1][1, 0, 0]) == 0           # padded by wrapping around
    assert b.nbytes == 2 * 2 * 3 * 4
    with pytest.raises(ValueError):
        TRT.CalibrationBatches([], 1)
    with pytest.raises(ValueError):
        TRT.CalibrationBatches([np.zeros(2), np.zeros(3)], 1)


def test_calibration_samples_for_encoder_are_frames():
    clips = np.zeros((3, 4, 8, 8, 3), np.float32)
    assert TRT.calibration_samples(clips, "encoder", 5)[0].shape == (8, 8, 3)
    assert len(TRT.calibration_samples(clips, "encoder", 5)) <= 5
    assert TRT.calibration_samples(clips, "full")[0].shape == (4, 8, 8, 3)


def test_trtexec_command_per_release():
    """Finding 6: --memPoolSize only from 8.4 (8.2 knows --workspace); 11 has no --fp16 (strongly typed)."""
    c = TRT.trtexec_command("enc_int8.onnx", "enc.engine", "int8", calib_cache="enc.calib", trt_version="8.6.2")
    assert c.startswith("trtexec --onnx=enc_int8.onnx --saveEngine=enc.engine --memPoolSize=workspace:1024")
    assert "--int8" in c and "--calib=enc.calib" in c
    old = TRT.trtexec_command("a.onnx", "a.engine", "fp16", trt_version="8.2.1.8")
    assert "--workspace=1024" in old and "--memPoolSize" not in old and "--fp16" in old
    new = TRT.trtexec_command("a_fp16.onnx", "a.engine", "fp16", trt_version="11.1.0")
    assert "--memPoolSize=workspace:1024" in new and "--fp16" not in new and "--int8" not in new
    assert "--fp16" not in TRT.trtexec_command("a.onnx", "a.engine", "fp32", trt_version="10.3")
    cmds = TRT.trtexec_commands("enc.onnx", "enc.engine", "fp16")
    assert set(cmds) == {"8.2", "8.4-10", "11"} and "--onnx=enc_fp16.onnx" in cmds["11"]
    assert "--onnx=enc_int8.onnx" in TRT.trtexec_commands("enc.onnx", "e.engine", "int8")["8.2"]
    assert [TRT.trtexec_family(v) for v in ("8.2.1", "8.4.1", "8.6.2", "10.3.0", "11.1")] == [
        "8.2", "8.4-10", "8.4-10", "8.4-10", "11"]


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_missing_tensorrt_message(tmp_path):
    assert "JetPack" in TRT.available()
    with pytest.raises(TRT.TensorRTUnavailable, match="python3-libnvinfer"):
        TRT.build_engine(str(tmp_path / "m.onnx"), str(tmp_path), "fp16")


@pytest.mark.hardware
def test_build_engine_on_device(tmp_path):
    if importlib.util.find_spec("tensorrt") is None:
        pytest.skip("tensorrt not installed (build engines on a Jetson / NVIDIA GPU host)")
    import tf_keras as keras

    from quantize.onnx_export import export
    i = keras.Input((8, 8, 3))
    m = keras.Model(i, keras.layers.Dense(3)(keras.layers.Flatten()(i)))
    onnx_path = export(m, str(tmp_path / "m.onnx"))
    b = TRT.build_engine(onnx_path, str(tmp_path), "fp16")
    assert b.path.endswith("-fp16.engine") and not b.cached
    assert TRT.build_engine(onnx_path, str(tmp_path), "fp16").cached
