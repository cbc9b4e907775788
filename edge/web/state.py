"""What the live web view shows, fed by the capture loop; all methods are cheap and thread-safe.

The loop only stores references (``set_frame`` keeps the array, it does not encode); a JPEG is
encoded at most once per new frame, in the thread of the first viewer that asks for it, so a run
without viewers pays nothing. History is bounded: the last ``history`` latency samples per camera
and the last ``max_events`` events.
"""
import collections
import threading
import time
from typing import Callable, Deque, Dict, List, Optional, Tuple

import numpy as np

# Per-camera stats the loop reports that only ever grow (Prometheus counters); others are gauges.
COUNTER_STATS = ("frames", "dropped", "predictions", "reconnects", "errors", "camera_lost")


class _Camera(object):
    def __init__(self, history):
        self.frame = None  # type: Optional[np.ndarray]
        self.bgr = False
        self.seq = 0
        self.jpeg = b""
        self.jpeg_seq = -1
        self.top = []  # type: List[Tuple[str, float]]
        self.active = []  # type: List[str]
        self.latency = collections.deque(maxlen=history)  # type: Deque[Dict[str, float]]
        self.stats = {}  # type: Dict[str, float]
        self.predictions = 0
        self.stream_time = None  # type: Optional[float]
        self.updated = 0.0


class LiveState(object):

    def __init__(self, history=120, max_events=200, jpeg_quality=80):
        self._lock = threading.Lock()
        self.frame_cv = threading.Condition(self._lock)
        self._cams = collections.OrderedDict()  # type: Dict[str, _Camera]
        self._events = collections.deque(maxlen=max_events)  # type: Deque[Dict]
        self._event_id = 0
        self.history = int(history)
        self.jpeg_quality = int(jpeg_quality)
        self.metrics_providers = []  # type: List[Callable[[], list]]
        self.started = time.time()

    def _cam(self, camera):
        cam = self._cams.get(camera)
        if cam is None:
            cam = self._cams[camera] = _Camera(self.history)
        return cam

    def cameras(self):
        # type: () -> List[str]
        with self._lock:
            return list(self._cams)

    # writers (capture loop) ---------------------------------------------------------------------
    def set_frame(self, camera, image, bgr=False):
        # type: (str, np.ndarray, bool) -> None
        with self._lock:
            cam = self._cam(str(camera))
            cam.frame, cam.bgr = image, bgr
            cam.seq += 1
            self.frame_cv.notify_all()

    def set_prediction(self, camera, top, latency_ms, stream_time=None, active=()):
        with self._lock:
            cam = self._cam(str(camera))
            cam.top = [(str(l), float(s)) for l, s in top]
            cam.latency.append({k: float(v) for k, v in latency_ms.items()})
            cam.active = list(active)
            cam.predictions += 1
            cam.stream_time = stream_time
            cam.updated = time.time()

    def set_stats(self, camera, stats):
        # type: (str, Dict[str, float]) -> None
        with self._lock:
            self._cam(str(camera)).stats.update({k: float(v) for k, v in stats.items() if v is not None})

    def add_event(self, event):
        # type: (Dict) -> None
        with self._lock:
            self._event_id += 1
            ev = dict(event)
            ev["id"] = self._event_id
            self._events.append(ev)

    # readers (HTTP threads) -----------------------------------------------------------------------
    def jpeg(self, camera):
        # type: (str) -> Tuple[int, bytes]
        """(frame sequence number, JPEG bytes) of the newest frame; (0, b"") before the first."""
        with self._lock:
            cam = self._cams.get(camera)
            if cam is None or cam.frame is None:
                return 0, b""
            if cam.jpeg_seq == cam.seq:
                return cam.seq, cam.jpeg
            frame, bgr, seq = cam.frame, cam.bgr, cam.seq
        import cv2
        img = frame if bgr else np.ascontiguousarray(frame[..., ::-1])
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        data = buf.tobytes() if ok else b""
        with self._lock:
            if seq >= cam.jpeg_seq:
                cam.jpeg, cam.jpeg_seq = data, seq
        return seq, data

    def wait_frame(self, camera, after_seq, timeout):
        # type: (str, int, float) -> int
        with self._lock:
            self.frame_cv.wait_for(lambda: self._cams.get(camera) is not None and
                                   self._cams[camera].seq > after_seq, timeout)
            cam = self._cams.get(camera)
            return cam.seq if cam is not None else 0

    def events_after(self, after_id, limit=100):
        # type: (int, int) -> List[Dict]
        with self._lock:
            return [e for e in self._events if e["id"] > after_id][-limit:]

    def snapshot(self):
        # type: () -> Dict
        with self._lock:
            cams = {}
            for name, c in self._cams.items():
                cams[name] = {"top": [{"label": l, "score": round(s, 4)} for l, s in c.top],
                              "active": c.active, "latency_ms": list(c.latency), "stats": dict(c.stats),
                              "predictions": c.predictions, "frame_seq": c.seq, "stream_time": c.stream_time}
            return {"cameras": cams, "last_event_id": self._event_id, "uptime_s": round(time.time() - self.started, 1)}

    def metric_samples(self):
        """(name, labels, value, type, help) of what this state knows; providers add theirs."""
        out = []
        with self._lock:
            for name, c in self._cams.items():
                lab = {"camera": name}
                out.append(("edge_predictions_total", lab, c.predictions, "counter", "Predictions made"))
                out.append(("edge_frames_shown_total", lab, c.seq, "counter", "Frames handed to the web view"))
                for k, v in sorted(c.stats.items()):
                    if k in COUNTER_STATS:
                        out.append(("edge_" + k + "_total", lab, v, "counter", "Capture loop: " + k))
                    else:
                        out.append(("edge_" + k, lab, v, "gauge", "Capture loop: " + k))
                if c.latency:
                    for stage, ms in sorted(c.latency[-1].items()):
                        out.append(("edge_latency_ms", {"camera": name, "stage": stage}, ms, "gauge",
                                    "Latest per-stage latency in milliseconds"))
        for provider in list(self.metrics_providers):
            out.extend(provider())
        return out
