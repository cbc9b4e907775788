"""The live web view (edge.web): HTTP routes, token rules and /metrics without a browser, then the page
in a real headless Chromium (Debian's chromium driven by playwright; skipped with a reason when absent)."""
import json
import os
import shutil
import threading
import time
import urllib.request
from urllib.error import HTTPError

import cv2
import numpy as np
import pytest

from edge.events import EventConfig, make_event
from edge.eventsinks import open_event_sink
from edge.eventsinks.hub import EventHub
from edge.web import LiveState, WebError, WebView, parse_bind

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


def frame(i, h=120, w=160):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 1] = (i * 37) % 256            # the whole frame changes colour every frame
    cv2.putText(img, str(i), (10, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
    return img


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read(), dict(r.headers)
    except HTTPError as e:
        return e.code, e.read(), dict(e.headers)


class Feeder(object):
    """A capture loop stand-in: frames + predictions for two cameras through an EventHub, at ~20 Hz."""

    def __init__(self, hub, event_at=1.0):
        self.hub, self.event_at = hub, event_at
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        while not self.stop.is_set():
            t = i * 0.05
            for cam in ("cam1", "cam2"):
                self.hub.on_frame(cam, frame(i), t, time.time())
                a = 0.9 if (cam == "cam1" and t >= self.event_at) else 0.1
                self.hub.on_prediction(cam, [a, 0.05, 1 - a - 0.05], t, time.time(), i,
                                       {"capture": 1.0 + (i % 5), "inference": 3.0, "capture_to_prediction": 5.0})
                self.hub.set_stats(cam, frames=i + 1, dropped=0, predictions=i + 1, fps=20.0)
            i += 1
            time.sleep(0.05)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        self.t.join(5)


@pytest.fixture
def view():
    views = []

    def make(**kw):
        v = WebView(port=0, **kw).start()
        views.append(v)
        return v
    yield make
    for v in views:
        v.close()


def make_hub(web, tmp_path=None):
    sinks = [open_event_sink(str(tmp_path / "e.jsonl"))] if tmp_path else []
    return EventHub(["Archery", "Surfing", "_background"],
                    EventConfig(min_duration_s=0.2, smoothing="none"), sinks=sinks, web=web)


def test_routes_state_events_frame_and_metrics(view, tmp_path):
    web = view()
    hub = make_hub(web, tmp_path)
    with Feeder(hub, event_at=0.2):
        time.sleep(1.0)
        code, body, _ = get(web.url + "api/state")
        st = json.loads(body)
        assert code == 200 and sorted(st["cameras"]) == ["cam1", "cam2"]
        assert st["cameras"]["cam1"]["top"][0]["label"] == "Archery"
        assert st["cameras"]["cam1"]["latency_ms"][-1]["inference"] == 3.0
        code, body, _ = get(web.url + "api/events?after=0")
        evs = json.loads(body)["events"]
        assert [(e["event"], e["camera"], e["label"]) for e in evs][:1] == [("start", "cam1", "Archery")]
        code, jpg, hdr = get(web.url + "frame/cam2.jpg")
        assert code == 200 and hdr["Content-Type"] == "image/jpeg"
        assert cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)
        code, text, hdr = get(web.url + "metrics")
    hub.close(close_web=False)
    text = text.decode()
    assert hdr["Content-Type"].startswith("text/plain; version=0.0.4")
    assert '# TYPE edge_frames_total counter' in text and 'edge_frames_total{camera="cam1"}' in text
    assert 'edge_events_total{camera="cam1",event="start"} 1' in text
    assert 'edge_dropped_total{camera="cam2"} 0' in text
    assert 'edge_event_sink_dropped_total{sink="file"' in text
    assert 'edge_latency_ms{camera="cam1",stage="inference"} 3' in text
    assert get(web.url + "nope")[0] == 404


def test_mjpeg_stream_sends_new_frames(view):
    web = view()
    hub = make_hub(web)
    with Feeder(hub):
        r = urllib.request.urlopen(web.url + "stream/cam1.mjpg", timeout=5)
        assert r.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        data = b""
        while data.count(b"--frame") < 3:
            data += r.read1(65536)
        r.close()
    parts = [p for p in data.split(b"--frame") if b"image/jpeg" in p][:2]
    imgs = [cv2.imdecode(np.frombuffer(p.split(b"\r\n\r\n", 1)[1], np.uint8), cv2.IMREAD_COLOR) for p in parts]
    assert all(im is not None for im in imgs) and not np.array_equal(imgs[0], imgs[1])


def test_token_rules(view):
    with pytest.raises(WebError, match="token"):
        WebView(host="0.0.0.0", port=0)
    web = view(token="s3cret")
    assert get(web.url + "metrics")[0] == 401
    assert get(web.url + "?token=wrong")[0] == 401
    assert get(web.url + "api/state", {"Authorization": "Bearer s3cret"})[0] == 200
    code, _, hdr = get(web.url + "?token=s3cret")
    assert code == 200 and hdr["Set-Cookie"].startswith("edge_token=s3cret")
    assert get(web.url + "api/state", {"Cookie": "edge_token=s3cret"})[0] == 200
    assert web.counts["refused"] == 2
    remote = view(host="0.0.0.0", token="t0k")
    assert get("http://127.0.0.1:{}/healthz".format(remote.port))[0] == 401
    assert get("http://127.0.0.1:{}/healthz?token=t0k".format(remote.port))[0] == 200
    assert parse_bind("8080") == ("127.0.0.1", 8080) and parse_bind("0.0.0.0:9") == ("0.0.0.0", 9)
    with pytest.raises(WebError):
        parse_bind("host:http")


# the real browser -----------------------------------------------------------------------------------
@pytest.fixture
def browser(tmp_path):
    pw = pytest.importorskip("playwright.sync_api", reason="playwright (python package) not installed: "
                             "pip install 'edge-action[webtest]'")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; scripts/setup.sh does)")
    with pw.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                   headless=True, args=CHROME_ARGS)
        try:
            yield ctx
        finally:
            ctx.close()


PIXEL_JS = """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth;
  c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(2, 2, 1, 1).data).slice(0, 3); }"""


def test_page_in_headless_chromium(view, browser, tmp_path):
    web = view(token="tok-123")
    hub = make_hub(web)
    with Feeder(hub, event_at=1.5):
        page = browser.new_page()
        resp = page.goto(web.url + "?token=wrong")
        assert resp.status == 401 and "wrong or missing token" in page.content()

        resp = page.goto(web.url + "?token=tok-123")
        assert resp.status == 200 and page.title() == "edge-action live"
        page.wait_for_selector(".cam[data-camera=cam1]")
        page.wait_for_selector(".cam[data-camera=cam2]")           # the grid: one card per camera
        img = page.locator(".cam[data-camera=cam1] img")
        page.wait_for_function("() => document.querySelector('.cam[data-camera=cam1] img').naturalWidth > 0")
        first = img.evaluate(PIXEL_JS)
        time.sleep(0.6)
        second = img.evaluate(PIXEL_JS)
        assert first != second, "the MJPEG image did not update: {} {}".format(first, second)

        page.wait_for_selector("#events li[data-event=start]", timeout=10000)
        text = page.locator("#events li[data-event=start]").first.inner_text()
        assert "cam1" in text and "Archery" in text
        assert page.locator(".cam[data-camera=cam1] .bar").count() == 3
        assert "Archery" in page.locator(".cam[data-camera=cam1] .bars").inner_text()
        assert "inference" in page.locator(".cam[data-camera=cam1] .legend").inner_text()
        out = os.environ.get("EDGE_WEB_SCREENSHOT") or str(tmp_path / "live.png")
        page.screenshot(path=out, full_page=True)
        assert os.path.getsize(out) > 10000
    hub.close(close_web=False)


def test_faults_are_counted_and_visible_in_metrics(view, tmp_path):
    """A refused webhook and an unwritable clip directory: the loop goes on, /metrics shows both."""
    from edge.eventsinks.record import ClipRecorder
    blocker = tmp_path / "file"
    blocker.write_text("x")
    web = view()
    hub = EventHub(["Archery", "_background"], EventConfig(min_duration_s=0.0, hold_s=0.0, smoothing="none"),
                   sinks=[open_event_sink("http://127.0.0.1:9/hook?retries=0")],
                   recorder=ClipRecorder(str(blocker / "clips"), pre_s=0.2, post_s=0.2, fps=10), web=web)
    t0 = time.perf_counter()
    for i in range(20):
        hub.on_frame("cam1", frame(i), i / 10.0, None)
        hub.on_prediction("cam1", [0.9, 0.1] if i < 10 else [0.1, 0.9], i / 10.0, None, i)
    assert time.perf_counter() - t0 < 1.0
    hub.set_stats("cam1", frames=20, dropped=3, reconnects=1)
    hub.close(timeout=2, close_web=False)
    text = get(web.url + "metrics")[1].decode()
    assert 'edge_event_sink_connect_errors_total{sink="webhook",target="webhook http://127.0.0.1:9/hook"} 2' in text
    assert 'edge_event_sink_unwritable_total{sink="record"' in text and "} 1" in text.split(
        'edge_event_sink_unwritable_total{sink="record"')[1].splitlines()[0]
    assert 'edge_event_sink_camera_faults_total{camera="cam1",sink="webhook"} 2' in text
    assert 'edge_event_sink_camera_faults_total{camera="cam1",sink="record"} 1' in text
    assert 'edge_dropped_total{camera="cam1"} 3' in text and 'edge_reconnects_total{camera="cam1"} 1' in text
