"""Events from the real pipeline on real clips (slow, realdata).

A tiny lrcn-edge model is trained on two ucf101-mini classes (group g25 held out), quantized to an
int8 bundle, and ``edge-run`` runs it on one video made of the held-out Archery clip followed by the
held-out Surfing clip, predicting on every frame, with ``--events events.jsonl`` (the real
edge-run -> EventHub -> sink path; the same events as the detector gives offline on its JSONL): the events must be Archery start, Archery end, Surfing start, in this order, each at
the right time within one window (the span of one model clip). Set EVENTS_REAL_BUNDLE=DIR to reuse
a bundle trained earlier (it is printed).
"""
import json
import os
import subprocess
import sys

import cv2
import pytest

from edge.events import EventConfig
from edge.eventsinks import open_event_sink
from edge.eventsinks.hub import EventHub

pytestmark = [pytest.mark.slow, pytest.mark.realdata]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("Archery", "Surfing")
HELD_OUT = "g25"
FRAMES, INTERVAL = 8, 0.2          # model clip: 8 frames, 0.2 s apart at run time -> 1.4 s span


def bin_(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def run(cmd, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    assert p.returncode == 0, p.stdout.decode()[-4000:]
    return p.stdout.decode()


@pytest.fixture(scope="module")
def bundle(shared_data, tmp_path_factory):
    reuse = os.environ.get("EVENTS_REAL_BUNDLE")
    if reuse and os.path.isfile(os.path.join(reuse, "bundle.json")):
        return reuse
    root = tmp_path_factory.mktemp("events-real")
    data = root / "data"
    for c in CLASSES:
        (data / c).mkdir(parents=True)
        for f in sorted((shared_data / "ucf101-mini" / c).iterdir()):
            if "_{}_".format(HELD_OUT) not in f.name:
                os.symlink(str(f), str(data / c / f.name))
    out = root / "run"
    run(["nice", "-n", "10", bin_("edge-train"), "--model", "lrcn-edge", "--encoder", "scratch", "--no-recipe",
         "--data", str(data), "--out", str(out),
         "--frames", str(FRAMES), "--size", "32", "--epochs", "25", "--batch-size", "8", "--seed", "0",
         "--workers", "1", "--quiet", "--model-opt", "widths=[16,32]"], timeout=1500)
    b = root / "bundle"
    run(["nice", "-n", "10", bin_("edge-quantize"), str(out), "--out", str(b), "--formats", "tflite-int8",
         "--no-prune", "--no-qat", "--no-progress", "--calib-clips", "16"], timeout=900)
    print("\nbundle for reuse: EVENTS_REAL_BUNDLE={}".format(b))
    return str(b)


def concat_video(shared_data, path, fps=25.0):
    """The held-out clip of each class back to back, 320x240 MJPG at ``fps``; returns frames per part."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    counts = []
    for c in CLASSES:
        src = shared_data / "ucf101-mini" / c / "v_{}_{}_c01.avi".format(c, HELD_OUT)
        cap = cv2.VideoCapture(str(src))
        n = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            w.write(cv2.resize(img, (320, 240)))
            n += 1
        cap.release()
        counts.append(n)
    w.release()
    return counts


def test_archery_then_surfing_gives_start_end_start_at_the_right_times(bundle, shared_data, tmp_path):
    video = tmp_path / "a_then_b.avi"
    n_a, n_b = concat_video(shared_data, video)
    fps = 25.0
    boundary = n_a / fps
    preds, events_file = tmp_path / "preds.jsonl", tmp_path / "events.jsonl"
    # Two classes: enter 0.65 / exit 0.45 (this tiny model tops out near 0.75 on the held-out Surfing clip)
    cfg = EventConfig(enter=0.65, exit=0.45, min_duration_s=0.5, hold_s=0.5, smoothing="ema", alpha=0.5)
    run([bin_("edge-run"), str(video), "--model", bundle, "--jsonl", str(preds), "--headless", "--quiet",
         "--interval", str(INTERVAL), "--top-k", "2", "--reader", "opencv", "--events", str(events_file),
         "--event-enter", str(cfg.enter), "--event-exit", str(cfg.exit), "--event-min-duration",
         str(cfg.min_duration_s), "--event-hold", str(cfg.hold_s), "--event-smoothing", cfg.smoothing,
         "--event-alpha", str(cfg.alpha)], timeout=600)
    lines = [json.loads(l) for l in preds.read_text().splitlines()]
    assert len(lines) > 0.8 * (n_a + n_b - FRAMES * INTERVAL * fps)

    events = [json.loads(l) for l in events_file.read_text().splitlines()]
    assert {e["camera"] for e in events} == {"cam1"}
    seq = [(e["event"], e["label"], e["stream_time"]) for e in events if e["event"] != "update"]
    print("\nboundary {:.2f} s; events: {}".format(boundary, seq))
    assert [s[:2] for s in seq[:3]] == [("start", "Archery"), ("end", "Archery"), ("start", "Surfing")], seq
    assert seq[3:] in ([], [("end", "Surfing", seq[3][2])] if len(seq) > 3 else []), seq

    # the same events as the detector gives offline on the JSONL predictions (edge-run adds nothing)
    hub = EventHub(list(CLASSES), cfg, sinks=[open_event_sink(str(tmp_path / "offline.jsonl"))])
    for p in lines:
        scores = {t["label"]: t["score"] for t in p["top"]}
        hub.on_prediction("cam1", scores, p["timestamp"], p["wall_time"], p["frame"])
    hub.close()
    offline = [json.loads(l) for l in (tmp_path / "offline.jsonl").read_text().splitlines()]
    assert [(e["event"], e["label"], e["frames"]) for e in offline] == [(e["event"], e["label"], e["frames"])
                                                                         for e in events]

    window = (FRAMES - 1) * INTERVAL + 1 / fps       # the span of stream one prediction looks at
    a_start, a_end, b_start = seq[0][2], seq[1][2], seq[2][2]
    assert a_start <= window + cfg.min_duration_s, "Archery started late: {:.2f} s".format(a_start)
    assert boundary - window <= a_end <= boundary + window, (a_end, boundary)
    assert boundary <= b_start + 1e-6 and b_start - boundary <= window, (b_start, boundary)
