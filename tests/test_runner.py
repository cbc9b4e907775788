"""edge-run end to end: live test:// sources and real clips, TFLite and ONNX backends, JSONL, drops with
a deliberately slow backend (a test double, never offered to users), reconnects, exit codes,
errors before capture, SIGINT, and that ``edge`` never imports TensorFlow."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge.cli import main  # noqa: E402
from edge.runner import RunOptions, Runner  # noqa: E402
from edge.sources.gstreamer import gst_available  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CLIP = DATA / "ucf101-mini" / "PlayingPiano" / "v_PlayingPiano_g10_c01.avi"
needs_gst = pytest.mark.skipif(not gst_available(), reason="GStreamer/PyGObject not importable")
needs_data = pytest.mark.skipif(not CLIP.exists(), reason=f"real data not found at {CLIP}")
LIVE = "test://?pattern=ball&width=320&height=240&fps=30"


@pytest.fixture(scope="module")
def bundle_dir():
    from _tiny_models import cached_bundle
    return cached_bundle()


def _labels(bundle_dir):
    return json.load(open(os.path.join(bundle_dir, "bundle.json")))["labels"]


def _read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _check_jsonl(recs, labels, top_k=3):
    assert recs
    keys = {"timestamp", "wall_time", "frame", "label", "score", "top", "clip", "epoch", "latency_ms", "dropped",
            "partial"}
    for r in recs:
        assert keys <= set(r)
        assert len(r["top"]) == min(top_k, len(labels))
        assert all(t["label"] in labels for t in r["top"])
        scores = [t["score"] for t in r["top"]]
        assert scores == sorted(scores, reverse=True)
        assert r["label"] in labels + [None]
        for stage in ("capture", "preprocess", "inference", "postprocess", "capture_to_prediction"):
            assert r["latency_ms"][stage] >= 0
        assert r["latency_ms"]["capture_to_prediction"] >= r["latency_ms"]["inference"]
        assert r["clip"][1] == r["frame"] and r["clip"][0] < r["frame"]
    ts = [r["timestamp"] for r in recs]
    assert all(b > a for a, b in zip(ts, ts[1:])), "timestamps must increase"
    assert all(abs(r["wall_time"] - time.time()) < 600 for r in recs)
    fr = [r["frame"] for r in recs]
    assert all(b > a for a, b in zip(fr, fr[1:]))


# -- live test:// ------------------------------------------------------------------------------------
@pytest.mark.gst
@needs_gst
def test_edge_run_live_tflite_int8_streaming(bundle_dir, tmp_path, capsys):
    jl, sm = tmp_path / "p.jsonl", tmp_path / "s.json"
    code = main(["--device", "cpu", "--model", bundle_dir, LIVE, "--duration", "2.5", "--jsonl", str(jl),
                 "--summary", str(sm), "--headless"])
    out = capsys.readouterr().out
    assert code == 0 and "edge-run summary" in out and "capture_to_prediction" in out
    s = json.load(open(sm))
    recs = _read_jsonl(jl)
    _check_jsonl(recs, _labels(bundle_dir))
    assert s["model"]["artifact"] == "encoder_int8.tflite" and s["model"]["head"] == "head_int8.tflite"
    assert s["sampling"]["streaming"] and s["sampling"]["step_frames"] == 3
    # 2.5 s of a 30 fps source: ~75 frames produced; on a loaded machine some are dropped (counted)
    assert s["frames"] >= 25 and s["frames"] + s["dropped"] >= 50 and s["predictions"] == len(recs)
    span = (s["sampling"]["frames"] - 1) * s["sampling"]["step_frames"] + 1
    # stride 1: every frame once the clip spans T sampled slots (a drop while filling only shortens that)
    assert s["frames"] - span + 1 <= s["predictions"] <= s["frames"]
    if s["dropped"] == 0:
        assert s["predictions"] == s["frames"] - span + 1
    assert s["source"]["live"] and "user-pw" not in json.dumps(s)
    assert s["latency_ms"]["capture_to_prediction"]["count"] == len(recs)
    assert s["stop_reason"] == "duration" and s["fps"] > 5    # ~30 on an idle machine


@pytest.mark.gst
@needs_gst
def test_edge_run_live_onnx_backend_stride_smooth(bundle_dir, tmp_path):
    jl, sm = tmp_path / "p.jsonl", tmp_path / "s.json"
    code = main(["--device", "cpu", "--backend", "onnxruntime", "--model", bundle_dir, LIVE, "--max-frames", "45",
                 "--stride", "5", "--smooth", "2", "--top-k", "2", "--jsonl", str(jl), "--summary", str(sm), "-q"])
    assert code == 0
    s = json.load(open(sm))
    assert s["model"]["backend"] == "onnxruntime" and s["model"]["artifact"] == "encoder.onnx"
    recs = _read_jsonl(jl)
    _check_jsonl(recs, _labels(bundle_dir), top_k=2)
    assert s["frames"] == 45 and s["stop_reason"] == "max frames"
    assert [r["frame"] - recs[0]["frame"] for r in recs] == list(range(0, 5 * len(recs), 5))


class SlowBackend:
    """Test double: a real backend that sleeps before each inference (simulates an overloaded device)."""

    def __init__(self, inner, sleep_s):
        self.inner, self.sleep_s = inner, sleep_s

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def infer(self, x):
        time.sleep(self.sleep_s)
        return self.inner.infer(x)


@pytest.mark.gst
@needs_gst
def test_slow_backend_drops_are_counted(bundle_dir, tmp_path):
    def slow(clf):
        clf.encoder = SlowBackend(clf.encoder, 0.07)   # 70 ms per frame at 30 fps: ~half the frames lost
        return clf

    jl = tmp_path / "p.jsonl"
    r = Runner(RunOptions(input="test://?fps=30", model=bundle_dir, device="cpu", duration=2.5, jsonl=str(jl),
                          quiet=True), classifier_hook=slow)
    r.setup()
    s = r.run()
    assert s["dropped"] > 10, s
    assert s["frames"] + s["dropped"] == pytest.approx(75, abs=25)   # 2.5 s of a 30 fps source
    assert 20 < s["dropped_pct"] < 95
    recs = _read_jsonl(jl)
    assert recs and recs[-1]["dropped"] > 0
    assert all(b["dropped"] >= a["dropped"] for a, b in zip(recs, recs[1:]))
    assert s["fps"] < 20


@pytest.mark.gst
@needs_gst
def test_live_source_reconnects_and_keeps_predicting(bundle_dir, tmp_path):
    jl, sm = tmp_path / "p.jsonl", tmp_path / "s.json"
    cfg = tmp_path / "fast-reconnect.yaml"
    cfg.write_text("device: cpu\nreconnect: {initial_s: 0.05, max_s: 0.2}\n")
    code = main(["--config", str(cfg), "--model", bundle_dir, "test://?fps=30&num-buffers=40", "--duration", "4",
                 "--jsonl", str(jl), "--summary", str(sm), "-q"])
    assert code == 0
    s = json.load(open(sm))
    assert s["reconnects"] >= 2 and s["source_errors"] >= 2
    recs = _read_jsonl(jl)
    epochs = sorted({r["epoch"] for r in recs})
    assert len(epochs) >= 2                      # predictions resumed after a reconnect
    ts = [r["timestamp"] for r in recs]
    assert all(b > a for a, b in zip(ts, ts[1:]))  # capture clock stays monotonic across reconnects


@pytest.mark.gst
@needs_gst
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly(bundle_dir, tmp_path, sig):
    jl, sm = tmp_path / "p.jsonl", tmp_path / "s.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    p = subprocess.Popen([sys.executable, "-m", "edge.cli", "--model", bundle_dir, "--device", "cpu", LIVE,
                          "--jsonl", str(jl), "--summary", str(sm)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and (not jl.exists() or jl.stat().st_size == 0):
        time.sleep(0.2)
    time.sleep(0.5)
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert f"stopped: {sig.name}" in out and "Traceback" not in err
    s = json.load(open(sm))
    recs = _read_jsonl(jl)                       # every line complete (flushed)
    assert s["stop_reason"] == sig.name and len(recs) == s["predictions"] > 0


# -- real clips ---------------------------------------------------------------------------------------
@pytest.mark.realdata
@needs_data
@pytest.mark.parametrize("backend,reader", [("tflite", "auto"), ("onnxruntime", "auto"), ("tflite", "opencv")])
def test_edge_run_real_clip_every_frame(bundle_dir, tmp_path, backend, reader):
    jl, sm, video = tmp_path / "p.jsonl", tmp_path / "s.json", tmp_path / "out.avi"
    args = ["--device", "cpu", "--backend", backend, "--model", bundle_dir, str(CLIP), "--jsonl", str(jl),
            "--summary", str(sm), "--stride", "4", "--reader", reader, "-q"]
    if backend == "tflite" and reader == "auto":
        args.insert(args.index(str(CLIP)) + 1, str(video))
    if reader == "auto" and not gst_available():
        pytest.skip("GStreamer/PyGObject not importable")
    assert main(args) == 0
    s = json.load(open(sm))
    import cv2
    cap = cv2.VideoCapture(str(CLIP))
    fps = cap.get(cv2.CAP_PROP_FPS)
    n = 0
    while cap.grab():
        n += 1
    assert s["frames"] == n and s["dropped"] == 0 and s["stop_reason"] == "end of stream"
    assert s["source_fps"] == pytest.approx(fps, rel=1e-3)
    recs = _read_jsonl(jl)
    _check_jsonl(recs, _labels(bundle_dir))
    step = s["sampling"]["step_frames"]
    assert step == round(0.1 * fps)
    span = (s["sampling"]["frames"] - 1) * step + 1
    assert len(recs) == len(range(span - 1, n, 4))
    assert recs[0]["timestamp"] == pytest.approx((span - 1) / fps, abs=2e-3)   # file timestamps = PTS
    if video.exists() or (backend == "tflite" and reader == "auto"):
        out = cv2.VideoCapture(str(video))
        assert int(out.get(cv2.CAP_PROP_FRAME_COUNT)) == n
        ok, img = out.read()
        assert ok and img.shape[:2] == (320, 320)   # 2x the 16 px model input, enlarged 10x for the text


# -- errors: exit code 2, one line, before capture, nothing written ------------------------------------
def _err(capsys):
    return capsys.readouterr().err.strip().splitlines()


def test_missing_camera_exit_2(bundle_dir, tmp_path, capsys):
    jl = tmp_path / "p.jsonl"
    assert main(["--model", bundle_dir, "/dev/video9", "--jsonl", str(jl)]) == 2
    err = _err(capsys)
    assert len(err) == 1 and "/dev/video9" in err[0] and "v4l2-ctl --list-devices" in err[0]
    assert not jl.exists()


def test_no_model_hint(monkeypatch, capsys):
    monkeypatch.delenv("EDGE_MODEL", raising=False)
    assert main(["test://"]) == 2
    assert "--model" in _err(capsys)[0]


@pytest.mark.gst
@needs_gst
def test_edge_model_env(bundle_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGE_MODEL", bundle_dir)
    assert main(["--device", "cpu", "test://", "--max-frames", "3", "-q", "--summary", str(tmp_path / "s.json")]) == 0


def _edited_bundle(bundle_dir, tmp_path, edit):
    d = tmp_path / "edited"
    shutil.copytree(bundle_dir, d)
    data = json.load(open(d / "bundle.json"))
    edit(data)
    json.dump(data, open(d / "bundle.json", "w"))
    return str(d)


def test_label_mismatch_before_capture(bundle_dir, tmp_path, capsys):
    d = _edited_bundle(bundle_dir, tmp_path, lambda b: b["labels"].append("Extra"))
    jl = tmp_path / "p.jsonl"
    assert main(["--device", "cpu", "--model", d, "test://", "--jsonl", str(jl)]) == 2
    err = _err(capsys)
    assert len(err) == 1 and "outputs 3 scores but the bundle has 4 labels" in err[0]
    assert not jl.exists()


def test_input_shape_mismatch_before_capture(bundle_dir, tmp_path, capsys):
    def edit(b):
        b["input"]["height"] = b["input"]["width"] = 20
    d = _edited_bundle(bundle_dir, tmp_path, edit)
    assert main(["--device", "cpu", "--model", d, "/dev/video9"]) == 2   # model checked before the camera
    err = _err(capsys)
    assert len(err) == 1 and "does not match the bundle's frame size" in err[0]


@pytest.mark.parametrize("args,needle", [
    (["--stride", "0"], "--stride must be >= 1"),
    (["--threshold", "1.5"], "--threshold"),
    (["--size", "12"], "--size must be WxH"),
    (["--config", "no-such-board"], "unknown device config 'no-such-board'"),
])
def test_bad_flags_exit_2(bundle_dir, capsys, args, needle):
    assert main(["--model", bundle_dir, "test://"] + args) == 2
    assert needle in _err(capsys)[0]


def test_bad_output_uri(bundle_dir, capsys):
    assert main(["--model", bundle_dir, "test://", "out.txt"]) == 2
    assert "output video must end in" in _err(capsys)[0]
    assert main(["--model", bundle_dir, "test://", "--jsonl", "/nonexistent-dir/p.jsonl"]) == 2
    assert "--jsonl /nonexistent-dir/p.jsonl: directory /nonexistent-dir does not exist" in _err(capsys)[0]


def test_display_needs_a_session(bundle_dir, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not gst_available():
        pytest.skip("GStreamer/PyGObject not importable")
    assert main(["--device", "cpu", "--model", bundle_dir, "test://", "display://0", "--max-frames", "2", "-q"]) == 2
    assert "DISPLAY" in _err(capsys)[0]


@pytest.mark.gst
@needs_gst
def test_bare_model_file_with_labels(bundle_dir, tmp_path):
    sm = tmp_path / "s.json"
    model = os.path.join(bundle_dir, "full_float32.tflite")
    assert main(["--device", "cpu", "--model", model, "--labels", os.path.join(bundle_dir, "labels.txt"),
                 "test://", "--max-frames", "10", "--summary", str(sm), "-q"]) == 0
    s = json.load(open(sm))
    assert s["model"]["artifact"] == "full_float32.tflite" and not s["sampling"]["streaming"]
    assert s["sampling"]["step_frames"] == 1                       # no interval: consecutive frames
    assert s["predictions"] >= 10 - s["sampling"]["frames"] + 1


# -- the help and the no-TensorFlow rule --------------------------------------------------------------
def test_help_is_built_from_parts(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for needle in ("input URI kinds", "csi://0", "rtsp://", "test://", "gst://", "display://0", "devices",
                   "coral", "jetson", "examples:", "edge-run --device coral --model bundles/lrcn-edge /dev/video0"):
        assert needle in out


def test_edge_imports_no_tensorflow():
    code = ("import sys, edge.cli, edge.runner, edge.sources, edge.sources.gstreamer, edge.stream, edge.sinks, "
            "edge.backends.edgetpu, edge.backends.tensorrt, edge.backends.tflite, edge.detect, edge.config, "
            "edge.select, edge.trt_build\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'tf_keras', 'keras', 'sklearn', 'matplotlib', 'train', 'quantize', 'benchmarks')]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
