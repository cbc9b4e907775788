"""Several cameras in one process (edge/multicam.py): one model loaded once, per-camera rings, events,
outputs and summaries; a camera that ends, fails or blocks does not stop the others; the batched
encoder gives the features of per-frame calls; the CLI keeps INPUT [OUTPUT] as it was.

Sources are test doubles (tests/runner_doubles.py) keyed by URI; the model is the tiny real TFLite bundle."""
import json
import os
import sys
import time

import numpy as np
import pytest
from live_view import wait_for_live_view

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import edge.runner  # noqa: E402
from edge.cli import build_parser, camera_list, main  # noqa: E402
from edge.multicam import CameraSpec, MultiRunner, load_cameras, per_camera_path  # noqa: E402
from edge.runner import RunError, RunOptions, Runner  # noqa: E402
from edge.sources import SourceError  # noqa: E402
from runner_doubles import FrameSource  # noqa: E402


@pytest.fixture(scope="module")
def bundle_dir():
    from _tiny_models import cached_bundle
    return cached_bundle()


class FailingSource(FrameSource):
    """Delivers ``n`` frames, then fails for good (a camera lost past --max-reconnects)."""

    live = True

    def read(self, timeout=1.0):
        if self.stats.frames >= self.n:
            self.stats.errors += 1
            raise SourceError("camera unplugged")
        return super().read(timeout)


def use_sources(monkeypatch, sources):
    """open_source by URI; counts model loads."""
    loads = []
    real = edge.runner.load_classifier
    monkeypatch.setattr(edge.runner, "open_source", lambda uri, cfg: sources[uri])
    monkeypatch.setattr(edge.runner, "load_classifier", lambda *a, **k: loads.append(1) or real(*a, **k))
    return loads


def opts(bundle_dir, **kw):
    return RunOptions(input="a", model=bundle_dir, device="cpu", quiet=True, **kw)


def test_three_cameras_one_model_and_one_failing_does_not_stop_the_others(monkeypatch, bundle_dir, tmp_path):
    srcs = {"a": FrameSource(60), "b": FailingSource(25), "c": FrameSource(45)}
    loads = use_sources(monkeypatch, srcs)
    cams = [CameraSpec(n, u, jsonl=str(tmp_path / "{0}.jsonl".format(n))) for n, u in
            (("door", "a"), ("yard", "b"), ("hall", "c"))]
    ev = build_parser().parse_args(["x", "--events", str(tmp_path / "ev.jsonl"), "--serve", "127.0.0.1:0",
                                    "--event-enter", "0.01", "--event-exit", "0", "--event-min-duration", "0.1"])
    mr = MultiRunner(opts(bundle_dir, events=ev, summary=str(tmp_path / "s.json")), cams, queue_frames=1000)
    mr.setup()
    state = mr.hub.web.state
    s = mr.run()
    assert len(loads) == 1                                      # one model for three cameras
    c = s["cameras"]
    assert (c["door"]["frames"], c["yard"]["frames"], c["hall"]["frames"]) == (60, 25, 45)
    assert c["door"]["stop_reason"] == "end of stream" and c["hall"]["stop_reason"] == "end of stream"
    assert c["yard"]["stop_reason"].startswith("source error") and c["yard"]["exit_code"] == 1
    assert s["exit_code"] == 1 and s["stop_reason"] == "every camera ended"
    assert s["frames"] == 130 and s["predictions"] == sum(v["predictions"] for v in c.values())
    assert s["latency_ms"]["capture"]["count"] == 130
    for name in ("door", "yard", "hall"):
        lines = (tmp_path / "{0}.jsonl".format(name)).read_text().splitlines()
        assert len(lines) == c[name]["predictions"] > 0
        assert c[name]["latency_ms"]["inference"]["count"] == c[name]["predictions"]
    events = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert {e["camera"] for e in events} == {"door", "yard", "hall"}
    last_yard = max(i for i, e in enumerate(events) if e["camera"] == "yard")
    first_door_end = min(i for i, e in enumerate(events) if e["camera"] == "door" and e["event"] == "end")
    assert events[last_yard]["event"] == "end" and last_yard < first_door_end   # ended when yard was lost
    assert set(s["events"]["by_camera"]) == {"door", "yard", "hall"}
    assert json.loads((tmp_path / "s.json").read_text())["cameras"]["yard"]["frames"] == 25
    metrics = {(n, tuple(sorted(lab.items()))): v for n, lab, v, _, _ in state.metric_samples()}
    assert metrics[("edge_frames_total", (("camera", "door"),))] == 60
    assert metrics[("edge_camera_lost_total", (("camera", "yard"),))] == 1
    assert metrics[("edge_frames_total", (("camera", "hall"),))] == 45


def test_each_camera_predicts_what_a_single_camera_run_predicts(monkeypatch, bundle_dir, tmp_path):
    """Same records as the single-camera runner: the batched encoder changes nothing."""
    use_sources(monkeypatch, {"a": FrameSource(50), "b": FrameSource(50)})
    mr = MultiRunner(opts(bundle_dir), [CameraSpec("a", "a", jsonl=str(tmp_path / "a.jsonl")),
                                        CameraSpec("b", "b", jsonl=str(tmp_path / "b.jsonl"))], queue_frames=1000)
    s = mr.run()
    assert s["sampling"]["encoded_frames"] == 100
    monkeypatch.setattr(edge.runner, "open_source", lambda uri, cfg: FrameSource(50))
    single = Runner(opts(bundle_dir, jsonl=str(tmp_path / "single.jsonl"))).run()
    ref = [json.loads(x) for x in (tmp_path / "single.jsonl").read_text().splitlines()]
    for name in ("a", "b"):
        got = [json.loads(x) for x in (tmp_path / "{0}.jsonl".format(name)).read_text().splitlines()]
        assert [(g["frame"], g["clip"], g["label"]) for g in got] == [(r["frame"], r["clip"], r["label"]) for r in ref]
        assert max(abs(t1["score"] - t2["score"]) for g, r in zip(got, ref) for t1, t2 in zip(g["top"], r["top"])) < 1e-5
    assert single["predictions"] == s["cameras"]["a"]["predictions"]


def test_batched_encoder_gives_the_per_frame_features(bundle_dir):
    from edge.backends import load_backend
    from edge.bundle import load
    from edge.classifier import ClipClassifier
    b = load(bundle_dir)
    x = np.random.default_rng(1).random((5, b.input.height, b.input.width, 3), dtype=np.float32)
    for prec in ("int8", "float32"):
        part = {p: load_backend(b.path(b.find(part=p, format="tflite", precision=prec)[0])) for p in ("encoder", "head")}
        clf = ClipClassifier(encoder=part["encoder"], head=part["head"])
        one = np.stack([clf.encode_frame(f) for f in x])
        many = clf.encode_frames(x)
        assert clf.batch_note == "" and many.shape == one.shape
        assert np.abs(one - many).max() < 1e-5, prec
        clf.close()


def test_a_blocked_camera_and_a_slow_model_never_stall_the_others_capture(monkeypatch, bundle_dir):
    stuck = FrameSource(5, then="block", live=True)
    fast = FrameSource(10 ** 6, then="end", live=True)

    class Slow(object):   # a model far slower than the camera: the queue drops, capture goes on
        def __init__(self, clf):
            self.clf = clf

        def __getattr__(self, k):
            return getattr(self.clf, k)

        def encode_frames(self, x):
            time.sleep(0.02)
            return self.clf.encode_frames(x)
    use_sources(monkeypatch, {"s": stuck, "f": fast})
    mr = MultiRunner(opts(bundle_dir, duration=1.5), [CameraSpec("stuck", "s"), CameraSpec("fast", "f")],
                     classifier_hook=Slow, queue_frames=4)
    t0 = time.monotonic()
    s = mr.run()
    assert time.monotonic() - t0 < 1.5 + 6
    st = s["cameras"]["stuck"]
    assert stuck.blocked.is_set() and st["frames"] + st["source"]["queue_dropped"] == 5
    fast_c = s["cameras"]["fast"]
    assert fast_c["source"]["queue_dropped"] > 0 and fast_c["dropped"] == fast_c["source"]["queue_dropped"]
    assert fast.stats.frames > 10 * fast_c["frames"] > 0          # capture ran far ahead of the slow model
    assert s["stop_reason"] == "duration"


# -- the command line -----------------------------------------------------------------------------------
def cams(argv):
    return camera_list(build_parser().parse_args(argv))


def test_positional_input_output_is_unchanged_and_several_live_inputs_are_cameras():
    assert cams(["clip.avi"]) is None and cams(["clip.avi", "out.mp4"]) is None
    assert cams(["/dev/video0", "display://0"]) is None
    two = cams(["/dev/video0", "rtsp://u:p@h/s"])
    assert [(c.name, c.uri) for c in two] == [("cam1", "/dev/video0"), ("cam2", "rtsp://u:p@h/s")]
    three = cams(["test://", "test://?pattern=ball", "csi://0", "--jsonl", "p/preds-{camera}.jsonl"])
    assert [c.jsonl for c in three] == ["p/preds-cam1.jsonl", "p/preds-cam2.jsonl", "p/preds-cam3.jsonl"]
    assert per_camera_path("preds.jsonl", "door") == "preds.door.jsonl"
    with pytest.raises(ValueError, match="--cameras"):
        cams(["test://", "test://", "out.mp4"])


def test_cameras_yaml(tmp_path, capsys):
    f = tmp_path / "cams.yaml"
    f.write_text("cameras:\n  - {name: door, uri: 'test://', output: door.mp4}\n  - uri: /dev/video1\n")
    got = load_cameras(str(f), jsonl="x.jsonl")
    assert [(c.name, c.uri, c.jsonl, c.output) for c in got] == [
        ("door", "test://", "x.door.jsonl", "door.mp4"), ("cam2", "/dev/video1", "x.cam2.jsonl", None)]
    f.write_text("cameras:\n  - {name: a, uri: 'test://'}\n  - {name: a, uri: 'test://'}\n")
    with pytest.raises(RunError, match="given twice"):
        load_cameras(str(f))
    f.write_text("cameras:\n  - {name: a, url: 'test://'}\n")
    assert main(["--cameras", str(f), "--model", "x"]) == 2 and "has no 'uri'" in capsys.readouterr().err


# -- end to end: two live GStreamer cameras through the edge-run command, /metrics per camera ------------
def _gst():
    import importlib.util
    return importlib.util.find_spec("gi") is not None   # the edge-run child imports it, not this process


@pytest.mark.skipif(not _gst(), reason="GStreamer (PyGObject) is not available for test:// sources")
def test_edge_run_two_live_cameras_with_live_view(bundle_dir, tmp_path):
    import subprocess
    import urllib.request
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = "test://?pattern=ball&width=320&height=240&fps=30"
    cmd = [sys.executable, "-m", "edge.cli", "--device", "cpu", "--model", bundle_dir, src, src + "&num-buffers=30",
           "--duration", "4", "--jsonl", str(tmp_path / "p-{camera}.jsonl"), "--summary", str(tmp_path / "s.json"),
           "--serve", "127.0.0.1:0", "--max-reconnects", "0"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=root))
    try:
        url = wait_for_live_view(p)
        time.sleep(1.5)
        metrics = urllib.request.urlopen(url + "metrics", timeout=5).read().decode()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    s = json.loads((tmp_path / "s.json").read_text())
    assert p.returncode == s["exit_code"] == 1, err.decode()[-2000:]     # cam2's source ended for good
    assert 'edge_frames_total{camera="cam1"}' in metrics and 'edge_frames_total{camera="cam2"}' in metrics
    c1, c2 = s["cameras"]["cam1"], s["cameras"]["cam2"]
    assert c2["frames"] <= 30 and c2["stop_reason"].startswith("source error")
    assert c1["stop_reason"] == "duration" and c1["frames"] > c2["frames"] and c1["fps"] > 20
    assert len((tmp_path / "p-cam1.jsonl").read_text().splitlines()) == c1["predictions"] > 0
    assert "edge-run summary (2 cameras)" in out.decode() and "cam2" in out.decode()


def test_bench_multicam_verdict_and_bad_counts(bundle_dir, capsys):
    from benchmarks import bench_multicam as bm
    row = lambda fps, d: {"fps": fps, "dropped_pct": d}  # noqa: E731
    assert bm.verdict([row(30.0, 0.0), row(29.6, 0.9)]) and not bm.verdict([row(30.0, 0.0), row(29.0, 0.0)])
    assert not bm.verdict([row(30.0, 1.0)])
    s = {"cameras": {"a": {"fps": 30.0, "frames": 99, "dropped": 1, "predictions": 40, "stop_reason": "duration",
                           "latency_ms": {"capture_to_prediction": {"p50_ms": 2.0, "p99_ms": 9.0}}}}}
    assert bm.camera_rows(s)[0]["dropped_pct"] == 1.0 and bm.camera_rows(s)[0]["c2p_p99_ms"] == 9.0
    assert bm.main(["--model", bundle_dir, "--counts", "one"]) == 2 and "--counts" in capsys.readouterr().err


PY36 = os.path.expanduser("~/.pyenv/versions/3.6.15/bin/python")


@pytest.mark.skipif(not os.path.exists(PY36), reason="no Python 3.6 interpreter at " + PY36)
def test_multicam_module_compiles_on_python36():
    import subprocess
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "edge", "multicam.py")
    src = open(path).read()
    assert "dataclass" not in src and "from __future__ import annotations" not in src
    out = subprocess.run([PY36, "-m", "py_compile", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert out.returncode == 0, out.stdout.decode()


@pytest.mark.parametrize("version", ["8.2", "8.6", "10", "11"])
def test_tensorrt_encoder_batches_the_cameras_frames(version, monkeypatch, tmp_path):
    """FAKE TensorRT (tests/fakes: the release's API surface, onnxruntime behind it): a dynamic-batch
    encoder ONNX gives an engine that encode_frames calls once for several frames (split above
    max_batch), with the per-frame features; a batch-1 ONNX falls back to one call per frame and says why."""
    from edge.backends.base import BackendOptions
    from edge.backends.onnxruntime import OnnxRuntimeBackend
    from edge.backends.tensorrt import TensorRTBackend
    from edge.classifier import ClipClassifier
    from fakes import fake_cuda, fake_tensorrt
    from fakes import onnx_models as OM

    fake_cuda.install(monkeypatch, "cuda-python-13")
    trt = fake_tensorrt.make_module(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    x = np.random.default_rng(2).random((5,) + OM.SHAPE[1:]).astype(np.float32)
    for dynamic, calls in ((True, [3, 2]), (False, [1] * 5)):
        d = tmp_path / ("dyn" if dynamic else "b1")
        d.mkdir()
        onnx_path = OM.save(OM.float_model(dynamic=dynamic), d / "encoder.onnx")
        enc = TensorRTBackend(onnx_path, BackendOptions(precision="fp32", extra={"max_batch": 3}))
        clf = ClipClassifier(encoder=enc, head=OnnxRuntimeBackend(onnx_path))
        one = np.stack([clf.encode_frame(f) for f in x])
        del trt._stats["batches"][:]
        many = clf.encode_frames(x)
        assert trt._stats["batches"] == calls and np.abs(many - one).max() < 1e-6
        assert (clf.batch_note == "") == dynamic
        if not dynamic:
            assert "batch 1 only" in clf.batch_note and "re-export" in clf.batch_note
        clf.close()
        assert enc._dev == []   # closed (once: the TensorRT encoder is its own batched copy)
