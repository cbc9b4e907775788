"""edge-run with --events / --record / --serve: the event hub wired into the runner.

In process (a test-double source, the tiny real TFLite bundle): every frame and prediction reaches
the hub, the summary has the events section, a lost camera is counted in the summary and /metrics.
End to end (subprocess ``edge-run`` on a live ``test://`` source): events arrive at a real mosquitto
subscriber, a clip and a snapshot are recorded, /metrics is served while it runs."""
import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from live_view import wait_for_live_view

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import edge.runner  # noqa: E402
from edge.cli import build_parser, main  # noqa: E402
from edge.runner import RunOptions, Runner  # noqa: E402
from runner_doubles import FrameSource  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# enter at any score: every class of the untrained tiny model starts an event after min-duration
ALWAYS = ["--event-enter", "0.01", "--event-exit", "0.0", "--event-min-duration", "0.1", "--event-hold", "0"]


@pytest.fixture(scope="module")
def bundle_dir():
    from _tiny_models import cached_bundle
    return cached_bundle()


def event_args(*extra):
    return build_parser().parse_args(["x"] + ALWAYS + list(extra))


class LosingSource(FrameSource):
    """Frames, with the camera lost (a pipeline error + reconnect) once, after frame 10."""

    live = True

    def read(self, timeout=1.0):
        f = super().read(timeout)
        if f is not None and f.index == 10:
            self.stats.errors += 1
            self.stats.reconnects += 1
        return f


def test_events_reach_the_hub_and_the_summary(monkeypatch, bundle_dir, tmp_path):
    src = LosingSource(60)
    monkeypatch.setattr(edge.runner, "open_source", lambda uri, cfg: src)
    args = event_args("--events", str(tmp_path / "ev.jsonl"), "--serve", "127.0.0.1:0")
    r = Runner(RunOptions(input="test://", model=bundle_dir, device="cpu", quiet=True, events=args, camera="door",
                          summary=str(tmp_path / "s.json")))
    r.setup()
    web = r.hub.web
    seen = {}
    orig = r.hub.on_frame

    def on_frame(camera, rgb, *a, **kw):   # the live view gets the overlay, not the raw frame
        seen["bgr"] = kw.get("annotated_bgr")
        return orig(camera, rgb, *a, **kw)
    r.hub.on_frame = on_frame
    summary = r.run()
    ev = summary["events"]
    lines = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    starts = [e for e in lines if e["event"] == "start"]
    assert len(starts) == len(r.bundle.labels) and {e["camera"] for e in lines} == {"door"}
    assert ev["events"]["start"] == len(starts) and ev["events"]["end"] == len(starts)   # ended at end of stream
    assert ev["delivered"] == len(lines) and ev["sink_faults"] == 0
    assert ev["by_camera"]["door"]["predictions"] == summary["predictions"]
    assert summary["source_errors"] == 1 and summary["reconnects"] == 1
    assert seen["bgr"] is not None and seen["bgr"].shape[0] >= 32
    assert json.load(open(str(tmp_path / "s.json")))["events"] == ev
    # the web view was closed with the hub; its state still says what /metrics said
    text = "\n".join("{0} {1} {2}".format(n, lab, v) for n, lab, v, _, _ in web.state.metric_samples())
    assert "edge_camera_lost_total {'camera': 'door'} 1.0" in text
    assert "edge_frames_total {'camera': 'door'} 60.0" in text
    assert re.search(r"edge_events_total \{'camera': 'door', 'event': 'start'\} [1-9]", text)


def test_plain_run_has_no_events_section(monkeypatch, bundle_dir):
    monkeypatch.setattr(edge.runner, "open_source", lambda uri, cfg: FrameSource(20))
    s = Runner(RunOptions(input="test://", model=bundle_dir, device="cpu", quiet=True)).run()
    assert "events" not in s and "cameras" not in s


def test_bad_event_option_fails_before_capture(monkeypatch, bundle_dir, capsys, tmp_path):
    opened = []
    monkeypatch.setattr(edge.runner, "open_source", lambda uri, cfg: opened.append(uri) or FrameSource(5))
    code = main(["test://", "--model", bundle_dir, "--device", "cpu", "--events", "ftp://x/y",
                 "--jsonl", str(tmp_path / "p.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown event sink" in err and not opened
    code = main(["test://", "--model", bundle_dir, "--device", "cpu", "--event-class", "NoSuchClass=0.9",
                 "--events", str(tmp_path / "e.jsonl")])
    assert code == 2 and "not a class of this model" in capsys.readouterr().err


# -- end to end: edge-run -> mosquitto -> a subscriber; a clip; /metrics ------------------------------
def _mqtt_ready():
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        return "paho-mqtt not installed: pip install 'edge-action[events]'"
    from test_eventsinks_mqtt import MOSQUITTO
    import shutil
    if MOSQUITTO is None or not shutil.which("mosquitto_passwd"):
        return "Debian's mosquitto is not installed (apt-get install mosquitto mosquitto-clients)"
    import importlib.util
    if importlib.util.find_spec("gi") is None:   # not imported here: gi + TensorFlow in one process crash
        return "GStreamer (PyGObject) is not available for test:// sources"
    return ""


@pytest.mark.skipif(bool(_mqtt_ready()), reason=_mqtt_ready() or "ok")
def test_edge_run_events_to_mqtt_with_clip_and_metrics(bundle_dir, tmp_path):
    from test_eventsinks_mqtt import PASSWORD, USER, Broker, Subscriber

    broker = Broker(tmp_path).start()
    sub = Subscriber(broker.port, "edge/ev")
    clips, summary = tmp_path / "clips", tmp_path / "s.json"
    cmd = [sys.executable, "-m", "edge.cli", "--device", "cpu", "--model", bundle_dir,
           "test://?pattern=ball&width=320&height=240&fps=30", "--headless", "--duration", "5",
           "--events", "mqtt://{0}:{1}@127.0.0.1:{2}/edge/ev".format(USER, PASSWORD, broker.port),
           "--record", str(clips), "--pre-roll", "0.5", "--post-roll", "0.5", "--serve", "127.0.0.1:0",
           "--summary", str(summary)] + ALWAYS
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        url = wait_for_live_view(p)
        sub.wait(lambda msgs: any(t == "edge/ev" for t, _, _ in msgs), timeout=20)
        metrics = urllib.request.urlopen(url + "metrics", timeout=5).read().decode()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
        sub.close()
        broker.stop()
    assert p.returncode == 0, err.decode()[-2000:]
    assert 'edge_frames_total{camera="cam1"}' in metrics and 'edge_camera_lost_total{camera="cam1"} 0' in metrics
    assert 'edge_events_total{camera="cam1",event="start"}' in metrics
    events = [json.loads(x) for t, x, _ in sub.msgs if t == "edge/ev"]
    assert [e["event"] for e in events].count("start") >= 1 and events[0]["camera"] == "cam1"
    assert ("edge/ev/status", "offline") in [m[:2] for m in sub.msgs]
    s = json.loads(summary.read_text())
    assert s["events"]["sinks"] and list(s["events"]["sinks"].values())[0]["delivered"] == len(events)
    clip = events[0]["clip"]
    assert clip and os.path.getsize(clip) > 0 and os.path.exists(clip[:-4] + ".jpg")
    assert s["events"]["record"]["clips_written"] >= 1 and PASSWORD not in err.decode() + out.decode()
