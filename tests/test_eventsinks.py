"""Event sinks against real local endpoints: a webhook server that is slow and answers 500s, a JSONL
file, the clip recorder (unwritable directory, a full disk), and the URI factory."""
import json
import logging
import os
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest

from benchmarks.hook_server import start_hook_server
from edge.events import make_event
from edge.eventsinks import open_event_sink, redact_uri, sink_kind
from edge.eventsinks.hub import EventHub
from edge.eventsinks.record import ClipRecorder


def ev(i=0, kind="start", cam="cam1", label="Archery", t=1.0):
    return make_event(kind, cam, label, 0.9, 0.85, 1795591455.0 + t, t, [i, i + 3])


@pytest.fixture
def hook():
    """A real HTTP server on a free loopback port; ``behaviour(n)`` -> (status, delay_s) per request."""
    state = {"bodies": [], "headers": [], "behaviour": lambda n: (200, 0.0)}
    lock = threading.Lock()

    def on_body(body, headers):
        with lock:
            state["bodies"].append(json.loads(body))
            state["headers"].append(headers)

    srv, state["url"] = start_hook_server(lambda n: state["behaviour"](n), on_body)
    yield state
    srv.shutdown()
    srv.server_close()


def test_webhook_retries_500s_with_backoff_then_delivers_in_order(hook):
    hook["behaviour"] = lambda n: (500, 0.0) if n <= 2 else (200, 0.0)
    sink = open_event_sink(hook["url"] + "?backoff=0.05&retries=3")
    events = [ev(i) for i in range(3)]
    for e in events:
        sink.publish(e)
    sink.close(timeout=10)
    c = sink.counters()
    assert hook["bodies"] == events
    assert c["delivered"] == 3 and c["failures"] == 2 and c["retries"] == 2 and c["dropped"] == 0
    assert c["http_5xx"] == 2
    assert hook["headers"][0]["Content-Type"] == "application/json"


def test_webhook_slow_endpoint_never_blocks_the_caller_and_counts_drops(hook):
    hook["behaviour"] = lambda n: (200, 1.5)
    sink = open_event_sink(hook["url"] + "?timeout=0.2&retries=1&backoff=0.05&queue=4")
    t0 = time.perf_counter()
    for i in range(200):
        sink.publish(ev(i))
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.2, "publish() blocked: {:.3f}s for 200 events".format(elapsed)
    time.sleep(0.6)                       # the worker tries, times out, retries
    sink.close(timeout=0.5)
    c = sink.counters()
    assert c["published"] == 200
    assert c["delivered"] + c["dropped"] == 200, c
    assert c["dropped"] >= 195 and c["timeouts"] >= 1 and c["queued"] == 0
    assert sink.faults_by_camera() == {"cam1": c["dropped"]}


def test_webhook_4xx_is_not_retried_and_down_endpoint_is_counted(hook):
    hook["behaviour"] = lambda n: (400, 0.0)
    sink = open_event_sink(hook["url"] + "?backoff=0.05")
    sink.publish(ev())
    sink.close(timeout=5)
    c = sink.counters()
    assert c["failures"] == 1 and c["retries"] == 0 and c["dropped"] == 1 and c["http_4xx"] == 1

    dead = open_event_sink("http://127.0.0.1:9/hook?backoff=0.01&retries=2")   # discard port: refused
    dead.publish(ev())
    dead.close(timeout=5)
    c = dead.counters()
    assert c["connect_errors"] == 3 and c["dropped"] == 1 and c["delivered"] == 0


def test_webhook_basic_auth_sent_but_never_logged(hook, caplog):
    hook["behaviour"] = lambda n: (500, 0.0) if n == 1 else (200, 0.0)
    caplog.set_level(logging.DEBUG)
    sink = open_event_sink(hook["url"].replace("http://", "http://alice:s3cret@") + "?backoff=0.01")
    sink.publish(ev())
    sink.close(timeout=5)
    assert hook["headers"][0]["Authorization"].startswith("Basic ")
    assert "s3cret" not in caplog.text and "s3cret" not in sink.name
    assert "failures" in sink.counters() and "s3cret" not in json.dumps(sink.counters())
    assert redact_uri("mqtt://bob:pw@h:1883/t") == "mqtt://bob:***@h:1883/t"


def test_jsonl_sink_appends_and_unwritable_path_is_counted(tmp_path):
    path = tmp_path / "ev" / "events.jsonl"
    sink = open_event_sink(str(path))
    events = [ev(i) for i in range(5)]
    for e in events:
        sink.publish(e)
    sink.close()
    assert [json.loads(l) for l in path.read_text().splitlines()] == events
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    bad = open_event_sink(str(blocker / "sub" / "events.jsonl"))
    bad.publish(ev())
    bad.close(timeout=5)
    c = bad.counters()
    assert c["dropped"] == 1 and c["failures"] >= 1 and "cannot open" in bad.last_error


def test_factory_kinds_and_errors():
    assert sink_kind("mqtt://h/t") == "mqtt" and sink_kind("mqtts://h/t") == "mqtt"
    assert sink_kind("https://h/x") == "webhook" and sink_kind("out/e.jsonl") == "file"
    with pytest.raises(ValueError, match="(?s)unknown event sink.*mqtt://"):
        sink_kind("kafka://u:p@h/t")
    with pytest.raises(ValueError, match="host and a topic"):
        open_event_sink("mqtt://localhost:1883/")


# clip recorder ---------------------------------------------------------------------------------------
def frame(i, h=120, w=160):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = (i * 7) % 256
    cv2.putText(img, str(i), (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
    return img


def drive(rec, n, start_at, end_at, fps=10.0, cam="cam1"):
    """Frames at ``fps``; a start event at ``start_at`` (reporting that time) and an end at ``end_at``."""
    events = []
    for i in range(n):
        t = i / fps
        rec.push_frame(cam, frame(i), t, 1795591455.0 + t)
        if i == int(start_at * fps):
            e = make_event("start", cam, "Archery", 0.9, 0.9, 1795591455.0 + t, t, [i, i])
            rec.publish(e)
            events.append(e)
        if i == int(end_at * fps):
            e = make_event("end", cam, "Archery", 0.9, 0.9, 1795591455.0 + t, t, [0, i])
            rec.publish(e)
            events.append(e)
    return events


def test_clip_recorder_writes_preroll_event_and_postroll_with_snapshot(tmp_path):
    rec = ClipRecorder(str(tmp_path / "clips"), pre_s=1.0, post_s=1.0, fps=10.0)
    events = drive(rec, 60, start_at=2.0, end_at=3.0)
    rec.close()
    start, end = events
    assert start["clip"] and start["clip"] == end["clip"]
    name = os.path.basename(start["clip"])
    assert name.startswith("cam1_Archery_") and name.endswith(".mp4") and "_20261125-072417_" in name   # start: 1795591455 + 2.0 s, UTC
    cap = cv2.VideoCapture(start["clip"])
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    # pre-roll t=1.0..2.0 (11 frames incl. the start frame) + t=2.1..3.0 (10) + post-roll 3.1..4.0 (10)
    assert n == 31, n
    assert os.path.getsize(start["clip"][:-4] + ".jpg") > 0
    c = rec.counters()
    assert c["clips_written"] == 1 and c["clips_failed"] == 0 and c["frames_written"] == 31


def test_clip_recorder_unwritable_directory_is_counted_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")              # root ignores permissions: a file where a directory must go
    rec = ClipRecorder(str(blocker / "clips"), pre_s=0.5, post_s=0.5, fps=10.0)
    events = drive(rec, 30, start_at=1.0, end_at=1.5)
    rec.close()
    c = rec.counters()
    assert c["unwritable"] == 1 and c["clips_failed"] == 1 and c["clips_written"] == 0
    assert events[0]["clip"].endswith(".mp4") and "cannot create the directory" in rec.last_error
    assert rec.faults_by_camera() == {"cam1": 1}


@pytest.fixture
def tiny_disk(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mnt)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        pytest.skip("cannot mount a tiny tmpfs to fill up (needs root/CAP_SYS_ADMIN): "
                    + r.stderr.decode().strip())
    yield mnt
    subprocess.run(["umount", str(mnt)])


def test_clip_recorder_disk_full_is_counted_and_the_next_clip_still_tried(tiny_disk):
    rec = ClipRecorder(str(tiny_disk), pre_s=1.0, post_s=1.0, fps=10.0)
    noise = np.random.default_rng(0)
    for i in range(80):                  # incompressible frames fill 192 KB quickly
        t = i / 10.0
        rec.push_frame("cam1", noise.integers(0, 255, (240, 320, 3), dtype=np.uint8), t, None)
        if i in (10, 50):
            rec.publish(make_event("start", "cam1", "Surfing", 0.9, 0.9, None, t, [i, i]))
        if i in (30, 70):
            rec.publish(make_event("end", "cam1", "Surfing", 0.9, 0.9, None, t, [i, i]))
    rec.close()
    c = rec.counters()
    assert c["clips_started"] == 2 and c["clips_failed"] == 2 and c["clips_written"] == 0, c
    assert c["disk_full"] == 2, (c, rec.last_error)


def test_hub_sets_clip_before_sinks_and_counts(tmp_path):
    rec = ClipRecorder(str(tmp_path / "clips"), pre_s=0.2, post_s=0.2, fps=10.0)
    out = tmp_path / "events.jsonl"
    from edge.events import EventConfig
    hub = EventHub(["A", "B"], EventConfig(min_duration_s=0.0, hold_s=0.0, smoothing="none"),
                   sinks=[open_event_sink(str(out))], recorder=rec)
    for i in range(30):
        t = i / 10.0
        hub.on_frame("cam1", frame(i), t, None)
        hub.on_prediction("cam1", [0.9, 0.1] if 5 <= i < 15 else [0.1, 0.1], t, None, i)
    counters = hub.close()
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert [(l["event"], l["label"]) for l in lines] == [("start", "A"), ("end", "A")]
    assert lines[0]["clip"] and os.path.exists(lines[0]["clip"])
    assert counters["by_camera"]["cam1"]["start"] == 1 and counters["record"]["clips_written"] == 1
    names = {s[0] for s in hub.metric_samples()}
    assert {"edge_events_total", "edge_event_sink_delivered_total", "edge_event_sink_clips_written_total"} <= names
