"""``EventHub``: the thin adapter between a capture loop and events, sinks, clips and the web view.

Per camera and frame the loop calls ``on_frame(...)`` (feeds the clip recorder's pre-roll and the
web view's image: both only keep a reference, no encoding on the caller's thread), per prediction
``on_prediction(...)`` (smoothing + hysteresis -> events -> recorder fills ``clip`` -> every sink's
queue -> web view), now and then ``set_stats(...)`` (frames, drops, ... for ``/metrics``), and at the
end ``close()``. ``counters()`` is the ``events`` part of the run summary. Nothing here blocks
on a sink: each sink delivers from its own thread.
"""
import logging
import threading
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..events import EventConfig, EventDetector

log = logging.getLogger("edge.eventsinks.hub")


class EventHub(object):

    def __init__(self, labels, config=None, sinks=(), recorder=None, web=None, top_k=3):
        # type: (Sequence[str], Optional[EventConfig], Sequence, object, object, int) -> None
        self.labels = [str(x) for x in labels]
        self.config = config or EventConfig()
        self.sinks = list(sinks)
        self.recorder = recorder
        self.web = web
        self.top_k = int(top_k)
        self._detectors = {}  # type: Dict[str, EventDetector]
        self._lock = threading.Lock()
        if web is not None:
            web.state.metrics_providers.append(self.metric_samples)

    def detector(self, camera):
        # type: (str) -> EventDetector
        det = self._detectors.get(camera)
        if det is None:
            with self._lock:
                det = self._detectors.setdefault(camera, EventDetector(camera, self.labels, self.config))
        return det

    # per frame / prediction ------------------------------------------------------------------------
    def on_frame(self, camera, image_rgb, stream_time, wall_time=None, annotated_bgr=None):
        # type: (str, np.ndarray, float, Optional[float], Optional[np.ndarray]) -> None
        if self.recorder is not None:
            self.recorder.push_frame(camera, image_rgb, stream_time, wall_time)
        if self.web is not None:
            if annotated_bgr is not None:
                self.web.state.set_frame(camera, annotated_bgr, bgr=True)
            else:
                self.web.state.set_frame(camera, image_rgb, bgr=False)

    def on_prediction(self, camera, scores, stream_time, wall_time=None, frame_index=0, latency_ms=None):
        # type: (str, object, float, Optional[float], int, Optional[Dict[str, float]]) -> List[Dict]
        """Returns the events this prediction caused (already handed to every sink)."""
        det = self.detector(camera)
        events = det.update(scores, stream_time, wall_time, frame_index)
        self._dispatch(events)
        if self.web is not None:
            arr = det.score_vector(scores)
            order = np.argsort(-arr)[:self.top_k]
            top = [(self.labels[i], float(arr[i])) for i in order]
            self.web.state.set_prediction(camera, top, latency_ms or {}, stream_time, det.active())
        return events

    def _dispatch(self, events):
        for ev in events:
            if self.recorder is not None:
                self.recorder.publish(ev)      # first: sets ev["clip"]
            for s in self.sinks:
                s.publish(ev)
            if self.web is not None:
                self.web.state.add_event(ev)

    def set_stats(self, camera, **stats):
        """Per-camera counters for ``/metrics``: frames, dropped, predictions, reconnects, ..."""
        if self.web is not None:
            self.web.state.set_stats(camera, stats)

    def flush(self, camera=None):
        # type: (Optional[str]) -> List[Dict]
        """End the active events of one camera (or all): end of stream."""
        cams = [camera] if camera is not None else list(self._detectors)
        out = []  # type: List[Dict]
        for c in cams:
            if c in self._detectors:
                evs = self._detectors[c].flush()
                self._dispatch(evs)
                out.extend(evs)
        return out

    def close(self, timeout=5.0, close_web=True):
        # type: (float, bool) -> Dict
        """Flush events, close the recorder, every sink (in parallel, each at most ``timeout`` s) and
        the web view; returns ``counters()``. Never raises."""
        self.flush()
        if self.recorder is not None:
            self.recorder.close(timeout=max(timeout, 10.0))
        threads = [threading.Thread(target=_close_quietly, args=(s, timeout), daemon=True) for s in self.sinks]
        for t in threads:                 # in parallel: a stuck webhook does not delay the MQTT goodbye
            t.start()
        for t in threads:
            t.join(timeout + 1.0)
        if self.web is not None and close_web:
            self.web.close()
        return self.counters()

    # reporting -----------------------------------------------------------------------------------
    def counters(self):
        # type: () -> Dict
        out = {"by_camera": {c: dict(d.counts) for c, d in sorted(self._detectors.items())},
               "sinks": {s.name: s.counters() for s in self.sinks}}
        if self.recorder is not None:
            out["record"] = self.recorder.counters()
        return out

    def metric_samples(self):
        """(name, labels, value, type, help) for the web view's ``/metrics``."""
        out = []
        for cam, det in sorted(self._detectors.items()):
            for kind in ("start", "update", "end"):
                out.append(("edge_events_total", {"camera": cam, "event": kind}, det.counts[kind], "counter",
                            "Events emitted"))
        all_sinks = list(self.sinks) + ([self.recorder] if self.recorder is not None else [])
        for s in all_sinks:
            for key, val in sorted(s.counters().items()):
                typ = "gauge" if key in ("queued", "recording") else "counter"
                name = "edge_event_sink_" + key + ("" if typ == "gauge" else "_total")
                out.append((name, {"sink": s.kind, "target": s.name}, val, typ, "Event sink " + key))
            for cam, n in sorted(s.faults_by_camera().items()):
                out.append(("edge_event_sink_camera_faults_total", {"sink": s.kind, "camera": cam}, n,
                            "counter", "Events a sink dropped or clips it failed to write, per camera"))
        return out


def _close_quietly(sink, timeout):
    try:
        sink.close(timeout=timeout)
    except Exception as e:
        log.warning("closing %s: %s", getattr(sink, "name", sink), e)
