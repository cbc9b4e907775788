"""The runner as a generator of (frame, prediction), its outputs (open_output), the typed records, and
stopping: --duration / SIGTERM / SIGINT end the run within a few seconds even when the source blocks
forever in read(); a second signal exits at once; JSONL and summary are flushed either way.

Sources here are test doubles (tests/runner_doubles.py); the model is the tiny real TFLite bundle."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import edge.runner  # noqa: E402
from edge.records import FilePrediction, PredictionRecord, RunSummary  # noqa: E402
from edge.runner import RunOptions, Runner, StopControl  # noqa: E402
from edge.sinks import OutputError, StatusSink, open_output, output_type  # noqa: E402
from edge.sources import Frame  # noqa: E402
from edge.timing import STAGES  # noqa: E402
from runner_doubles import FrameSource  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JSONL_KEYS = ["timestamp", "wall_time", "frame", "label", "score", "top", "clip", "epoch", "latency_ms", "dropped",
              "partial"]


@pytest.fixture(scope="module")
def bundle_dir():
    from _tiny_models import cached_bundle
    return cached_bundle()


def _runner(monkeypatch, bundle_dir, source, **kw):
    monkeypatch.setattr(edge.runner, "open_source", lambda uri, cfg: source)
    return Runner(RunOptions(input="test://", model=bundle_dir, device="cpu", quiet=True, **kw))


# -- the generator ------------------------------------------------------------------------------------
def test_frames_yields_every_frame_and_typed_predictions(monkeypatch, bundle_dir):
    r = _runner(monkeypatch, bundle_dir, FrameSource(40), stride=2)
    pairs = list(r.frames())
    frames = [f for f, _ in pairs]
    preds = [p for _, p in pairs if p is not None]
    assert [f.index for f in frames] == list(range(40)) and r.stop_reason == "end of stream"
    span = (r.bundle.input.frames - 1) * r.predictor.step + 1        # 6 frames, 0.1 s at 30 fps: step 3
    assert r.predictor.step == 3 and len(preds) == len(range(span - 1, 40, 2))
    for f, p in pairs:
        if p is not None:
            assert isinstance(p, PredictionRecord) and p.frame == f.index and p.clip == [f.index - span + 1, f.index]
            assert list(p.to_dict()) == JSONL_KEYS
            assert set(p.latency_ms) == {"capture", "preprocess", "inference", "postprocess", "capture_to_prediction"}
            assert p.scores.shape == (len(r.bundle.labels),) and p.label == r.bundle.labels[int(np.argmax(p.scores))]
            assert PredictionRecord.from_dict(p.to_dict()).to_dict() == p.to_dict()
    s = r.summary()
    assert (s.frames, s.predictions) == (40, len(preds))
    assert s.latency_ms["capture"]["count"] == 40 and s.latency_ms["inference"]["count"] == len(preds)
    assert list(s.latency_ms) == list(STAGES)
    r.close()


def test_short_file_ends_with_one_partial_prediction(monkeypatch, bundle_dir):
    r = _runner(monkeypatch, bundle_dir, FrameSource(5))
    pairs = list(r.frames())
    assert len(pairs) == 6 and pairs[-1][0] is None and pairs[-1][1].partial
    assert all(p is None for _, p in pairs[:-1])
    assert set(pairs[-1][1].latency_ms) == {"inference", "postprocess"}
    r.close()


def test_duration_ends_a_silent_source(monkeypatch, bundle_dir, tmp_path):
    src = FrameSource(20, then="silent", live=True)
    r = _runner(monkeypatch, bundle_dir, src, duration=0.8, jsonl=str(tmp_path / "p.jsonl"),
                summary=str(tmp_path / "s.json"))
    t0 = time.monotonic()
    s = r.run()
    assert time.monotonic() - t0 < 3.0 and s["stop_reason"] == "duration" and s["frames"] == 20
    assert src.reads > 21           # the loop kept asking (and checking the deadline) while nothing came
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert len(lines) == s["predictions"] == 5 and json.load(open(tmp_path / "s.json")) == s
    assert "file_prediction" not in s   # live sources keep the window only


def test_stop_control_order_and_max_frames():
    st = StopControl(duration=None, max_frames=3)
    assert st.reason(2) is None and st.reason(3) == "max frames"
    st.requested = "SIGTERM"
    assert st.reason(0) == "SIGTERM"


# -- stopping a process whose source never returns -----------------------------------------------------
def _start(bundle_dir, tmp_path, mode, *args):
    jl, sm = tmp_path / "p.jsonl", tmp_path / "s.json"
    cmd = [sys.executable, str(ROOT / "tests" / "runner_doubles.py"), mode, "30", "--", "--model", bundle_dir,
           "--device", "cpu", "test://", "--jsonl", str(jl), "--summary", str(sm)] + list(args)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    p = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None and (not jl.exists() or jl.stat().st_size == 0):
        time.sleep(0.05)
    time.sleep(0.3)   # the 30 frames are in; the source now blocks in read()
    return p, jl, sm


def _finish(p, jl, sm):
    out, err = p.communicate(timeout=30)
    s = json.load(open(sm))
    recs = [json.loads(x) for x in jl.read_text().splitlines()]   # every line complete
    assert len(recs) == s["predictions"] > 0 and s["frames"] == 30, (out, err)
    return s, out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_a_run_stuck_in_read(bundle_dir, tmp_path, sig):
    p, jl, sm = _start(bundle_dir, tmp_path, "block")
    assert p.poll() is None
    t0 = time.monotonic()
    p.send_signal(sig)
    s, out, err = _finish(p, jl, sm)
    took = time.monotonic() - t0
    assert took < 5.0, took
    assert p.returncode == 0 and s["stop_reason"].startswith(sig.name + " (forced after 3 s")
    assert "stopped: " + sig.name in out and "Traceback" not in err


def test_second_signal_exits_at_once(bundle_dir, tmp_path):
    p, jl, sm = _start(bundle_dir, tmp_path, "block")
    p.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    s, out, err = _finish(p, jl, sm)
    assert time.monotonic() - t0 < 2.0
    assert p.returncode == 128 + signal.SIGINT and s["stop_reason"] == "SIGINT (second signal: exited at once)"


def test_duration_ends_a_run_stuck_in_read(bundle_dir, tmp_path):
    t0 = time.monotonic()
    p, jl, sm = _start(bundle_dir, tmp_path, "block", "--duration", "1")
    s, out, err = _finish(p, jl, sm)
    assert p.returncode == 0 and s["stop_reason"].startswith("duration (forced after 3 s")
    assert time.monotonic() - t0 < 1 + 3 + 10   # start-up (model load) + duration + grace


def test_duration_with_a_silent_source_needs_no_force(bundle_dir, tmp_path):
    p, jl, sm = _start(bundle_dir, tmp_path, "silent", "--duration", "1")
    s, out, err = _finish(p, jl, sm)
    assert p.returncode == 0 and s["stop_reason"] == "duration"


# -- outputs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("uri,kind", [("p.jsonl", "jsonl"), ("jsonl:preds.log", "jsonl"), ("s.json", "summary"),
                                      ("summary:out.txt", "summary"), ("a.mp4", "video"), ("a.avi", "video"),
                                      ("display://0", "display"), ("stderr://status", "status"),
                                      ("stderr://progress", "progress")])
def test_output_types(uri, kind):
    assert output_type(uri) == kind


def test_output_errors_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(OutputError, match="output video must end in"):
        open_output(str(tmp_path / "x.txt"))
    with pytest.raises(OutputError, match="directory /nonexistent-dir does not exist"):
        open_output("jsonl:/nonexistent-dir/p.jsonl")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(OutputError, match="DISPLAY"):
        open_output("display://0")


def _rec(i, label="a"):
    return PredictionRecord(timestamp=i / 30, frame=i, label=label, top=[(label, 0.75), ("b", 0.25)], clip=[i - 5, i],
                            latency_ms={"inference": 1.0})


def test_jsonl_summary_and_video_sinks(tmp_path):
    frames = [Frame(np.full((24, 32, 3), 10 * i, np.uint8), i / 30, i) for i in range(6)]
    sinks = [open_output(str(tmp_path / "p.jsonl")), open_output("summary:" + str(tmp_path / "s.txt")),
             open_output(str(tmp_path / "v.avi"), fps=30)]
    for f in frames:
        for s in sinks:
            s.write(f, _rec(f.index) if f.index % 2 else None)
    summary = RunSummary(frames=6, predictions=3, file_prediction=FilePrediction.from_scores([0.2, 0.7, 0.1], ["b", "a", "c"]))
    for s in sinks:
        s.close(summary)
        s.close(summary)             # a second close is harmless
    lines = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == [1, 3, 5] and lines[0]["score"] == 0.75
    back = RunSummary.from_dict(json.loads((tmp_path / "s.txt").read_text()))
    assert back == summary and back.file_prediction.label == "a" and back.file_prediction.top[1] == ("b", 0.2)
    import cv2
    cap = cv2.VideoCapture(str(tmp_path / "v.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    ok, img = cap.read()
    assert ok and img.shape[:2] == (240, 320)   # enlarged 10x so the label is readable


def test_status_sink_prints_every_period():
    import io
    buf = io.StringIO()
    s = StatusSink(None, every=0.0, stream=buf)
    s.write(Frame(np.zeros((4, 4, 3), np.uint8), 0.0, 0), None)
    s.write(Frame(np.zeros((4, 4, 3), np.uint8), 0.1, 1), _rec(1, "Archery"))
    assert "(filling clip)" in buf.getvalue().splitlines()[0] and "Archery 0.75" in buf.getvalue()


def test_run_summary_reads_older_and_newer_summaries():
    s = RunSummary.from_dict({"frames": 3, "fps": 2.0, "a_key_from_the_future": 1})
    assert s.frames == 3 and s.fps == 2.0 and s.file_prediction is None and "file_prediction" not in s.to_dict()
    assert list(RunSummary().to_dict())[:3] == ["version", "frames", "predictions"]


# -- one merge of flags over the device config --------------------------------------------------------
def test_flags_merge_once_over_the_config_sections(tmp_path):
    from edge.runner import RunError, resolve_config
    cfg = tmp_path / "board.yaml"
    cfg.write_text("device: cpu\nrunner: {stride: 4, smooth: 2, interval_s: 0.25}\nreconnect: {max_attempts: 7}\n")
    c = resolve_config(RunOptions(input="test://", config=str(cfg), smooth=3, max_reconnects=2, threads=2))
    assert (c.runner.stride, c.runner.smooth, c.runner.interval_s, c.runner.top_k) == (4, 3, 0.25, 3)
    assert c.reconnect.max_attempts == 2 and c.threads == 2
    c = resolve_config(RunOptions(input="test://", config=str(cfg)))
    assert (c.runner.smooth, c.reconnect.max_attempts) == (2, 7)
    cfg.write_text("runner: {stride: 0}\n")
    with pytest.raises(RunError, match="runner.stride must be >= 1"):
        resolve_config(RunOptions(input="test://", config=str(cfg)))


def test_interval_from_the_config_reaches_the_predictor(monkeypatch, bundle_dir, tmp_path):
    cfg = tmp_path / "board.yaml"
    cfg.write_text("device: cpu\nrunner: {interval_s: 0.2}\n")
    r = _runner(monkeypatch, bundle_dir, FrameSource(3), config=str(cfg))
    list(r.frames())
    assert r.predictor.interval_s == 0.2 and r.predictor.step == 6      # 0.2 s at 30 fps
    assert r.summary().sampling["step_frames"] == 6
    r.close()
