"""Outputs of a run behind one interface, chosen by URI: ``open_output(uri)`` mirrors ``open_source``.

Every output is a ``Sink``: ``write(frame, prediction)`` for each frame the runner yields
(``prediction`` is a ``PredictionRecord`` or None), ``close(summary)`` once at the end (the
``RunSummary``, or None when the run failed). URIs:

    preds.jsonl | jsonl:PATH     one JSON line per prediction, flushed line by line (edge.records)
    summary:PATH | PATH.json     the end-of-run summary as JSON (written at close, atomically)
    out.mp4 | .avi | .mkv | .mov the annotated video (label, score, FPS on every frame)
    display://0                  the annotated video in a window (needs a desktop session)
    stderr://status              a status line every few seconds (frames, fps, drops, label)
    stderr://progress            a progress bar over a file (tqdm; a status line without it)

``HubSink`` (not chosen by URI: edge-run adds it for --events/--record/--serve) feeds an
``edge.eventsinks.hub.EventHub``: frames (clip pre-roll, live view), predictions (events).

A sink that cannot be opened raises ``OutputError`` (one line saying what to do), before capture.
"""
import json
import os
import sys
import time
from collections import deque
from typing import Any, Optional, Tuple

import numpy as np

from .records import PredictionRecord, RunSummary
from .sources.uri import URIError, output_kind

OUTPUT_HELP = """\
more outputs (each one a Sink made by edge.sinks.open_output, like OUTPUT):
  --jsonl FILE     one JSON line per prediction, flushed line by line (edge.records.PredictionRecord)
  --summary FILE   end-of-run summary as JSON (edge.records.RunSummary; also printed unless -q)
  console          a status line every 5 s (live), a progress bar over a file on a terminal; -q: none"""


class OutputError(ValueError):
    """An output that cannot be opened; the message says which and what to do."""


class Sink:
    """One output of a run."""

    uri = ""

    def write(self, frame: Any, prediction: Optional[PredictionRecord]) -> None:
        """``frame``: the ``edge.sources.Frame`` just processed (None for the last, partial
        prediction of a short file); ``prediction``: its PredictionRecord or None."""

    def close(self, summary: Optional[RunSummary] = None) -> None:
        """End of the run; must not raise for a second call."""


def _check_dir(path: str, what: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d) or not os.access(d, os.W_OK):
        raise OutputError("{0} {1}: directory {2} does not exist or is not writable".format(what, path, d))


def _has_desktop() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


NO_DESKTOP = ("display://0 needs a desktop session (DISPLAY/WAYLAND_DISPLAY not set); use --headless, "
              "or write the overlay to a file (OUTPUT out.mp4)")


def output_type(uri: str) -> str:
    """jsonl | summary | video | display | status | progress for ``uri``; OutputError otherwise."""
    for prefix in ("jsonl", "summary", "video"):
        if uri.startswith(prefix + ":") and not uri.startswith(prefix + "://"):
            return prefix
    if uri in ("stderr://status", "stderr://progress"):
        return uri[len("stderr://"):]
    low = uri.lower()
    if low.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if low.endswith(".json"):
        return "summary"
    try:
        return "video" if output_kind(uri) == "file" else "display"
    except URIError as e:
        raise OutputError(str(e)) from None


def check_output(uri: str) -> Tuple[str, str]:
    """(type, path) of an output that can be opened here; OutputError (one line) otherwise.
    Creates nothing: edge-run checks its outputs before it loads anything."""
    kind = output_type(uri)
    path = uri.split(":", 1)[1] if uri.startswith(kind + ":") else uri
    if kind in _FLAG:
        _check_dir(path, _FLAG[kind])
    if kind == "display" and not _has_desktop():
        raise OutputError(NO_DESKTOP)
    return kind, path


_FLAG = {"jsonl": "--jsonl", "summary": "--summary", "video": "OUTPUT"}


def open_output(uri: str, fps: Optional[float] = None, total_frames: Optional[int] = None,
                source_stats: Any = None) -> Sink:
    """The Sink for ``uri`` (see the module docstring). ``fps``: the source's frame rate (video
    outputs); ``total_frames``: for the progress bar; ``source_stats``: ``SourceStats`` for status lines."""
    kind, path = check_output(uri)
    if kind == "jsonl":
        return JsonlSink(path)
    if kind == "summary":
        return SummarySink(path)
    if kind == "video":
        return OverlaySink(uri, lambda hw: VideoWriter(path, fps, hw))
    if kind == "display":
        return OverlaySink(uri, lambda hw: DisplayWindow(fps, hw))
    if kind == "progress":
        bar = ProgressSink.create(total_frames)
        if bar is not None:
            return bar
    return StatusSink(source_stats)


# -- files ------------------------------------------------------------------------------------------
class JsonlSink(Sink):
    def __init__(self, path: str):
        self.uri = self.path = path
        try:
            self._f = open(path, "w", buffering=1)  # line-buffered: a crash or a kill loses no line
        except OSError as e:
            raise OutputError("--jsonl {0}: {1}".format(path, e.strerror or e)) from None
        self.lines = 0

    def write(self, frame, prediction) -> None:
        if prediction is None or self._f is None:
            return
        self._f.write(json.dumps(prediction.to_dict(), separators=(",", ":")) + "\n")
        self.lines += 1

    def close(self, summary=None) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None


class SummarySink(Sink):
    def __init__(self, path: str):
        self.uri = self.path = path

    def close(self, summary=None) -> None:
        if summary is not None:
            write_summary(self.path, summary.to_dict())


def write_summary(path: str, summary: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


# -- annotated video ---------------------------------------------------------------------------------
def draw_overlay(image_rgb: np.ndarray, label: Optional[str], score: Optional[float], fps: float,
                 extra: str = "", min_width: int = 320) -> np.ndarray:
    """A BGR copy of the frame with label/score (top-left) and FPS (bottom-left).

    Frames narrower than ``min_width`` are enlarged by a whole factor (nearest neighbour, pixels
    stay honest) so the text stays readable on model-sized frames."""
    import cv2

    img = np.ascontiguousarray(image_rgb[:, :, ::-1])
    h, w = img.shape[:2]
    k = -(-min_width // w) if w < min_width else 1
    if k > 1:
        img = cv2.resize(img, (w * k, h * k), interpolation=cv2.INTER_NEAREST)
        h, w = img.shape[:2]
    scale = max(0.35, min(w, h) / 320.0)
    thick = 1 if scale < 0.8 else 2
    text = "{0} {1:.2f}".format(label, score) if label is not None and score is not None else "..."
    for t, y in ((text, int(18 * scale) + 4), ("{0:.1f} FPS {1}".format(fps, extra).strip(), h - 6)):
        (tw, th), base = cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        cv2.rectangle(img, (2, y - th - 3), (6 + tw, y + base - 1), (0, 0, 0), -1)
        cv2.putText(img, t, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return img


class OverlaySink(Sink):
    """Draws label, score and the processed FPS (over the last 30 frames) on every frame and hands
    the BGR picture to a writer opened at the first frame (its size is the frame's)."""

    def __init__(self, uri: str, open_writer):
        self.uri = uri
        self._open_writer = open_writer
        self._writer = None
        self._times = deque(maxlen=30)
        self._label = self._score = None

    def write(self, frame, prediction) -> None:
        if prediction is not None:
            self._label, self._score = (prediction.label, prediction.score) if prediction.label else (None, None)
        if frame is None:
            return
        self._times.append(time.perf_counter())
        t = self._times
        fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
        canvas = draw_overlay(frame.image, self._label, self._score, fps)
        if self._writer is None:
            try:
                self._writer = self._open_writer(canvas.shape[:2])
            except OSError as e:
                raise OutputError(str(e)) from None
        self._writer.write(canvas)

    def close(self, summary=None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class VideoWriter:
    """Annotated video file: mp4v for .mp4/.mov/.mkv, MJPG for .avi (both in stock OpenCV)."""

    def __init__(self, path: str, fps: Optional[float], size_hw):
        import cv2

        self.path = path
        fourcc = "MJPG" if path.lower().endswith(".avi") else "mp4v"
        h, w = size_hw
        self._w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), float(fps or 30.0), (int(w), int(h)))
        if not self._w.isOpened():
            raise OSError("{0}: OpenCV cannot write this video (codec {1})".format(path, fourcc))
        self.size = (h, w)
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        if bgr.shape[:2] != self.size:
            import cv2
            bgr = cv2.resize(bgr, (self.size[1], self.size[0]))
        self._w.write(bgr)
        self.frames += 1

    def close(self) -> None:
        if self._w is not None:
            self._w.release()
            self._w = None


class DisplayWindow:
    """A window (``display://0``) through GStreamer: appsrc ! videoconvert ! autovideosink."""

    def __init__(self, fps: Optional[float], size_hw):
        if not _has_desktop():
            raise OSError(NO_DESKTOP)
        from .sources.gstreamer import _gst

        Gst = _gst()
        h, w = size_hw
        n = max(1, int(round(fps or 30)))
        self.pipeline = Gst.parse_launch(
            "appsrc name=src is-live=true format=time do-timestamp=true "
            "caps=video/x-raw,format=BGR,width={0},height={1},framerate={2}/1 ! "
            "queue max-size-buffers=2 leaky=downstream ! videoconvert ! autovideosink sync=false".format(w, h, n))
        self.src = self.pipeline.get_by_name("src")
        self.pipeline.set_state(Gst.State.PLAYING)
        self.Gst = Gst

    def write(self, bgr: np.ndarray) -> None:
        self.src.emit("push-buffer", self.Gst.Buffer.new_wrapped(np.ascontiguousarray(bgr).tobytes()))

    def close(self) -> None:
        if self.pipeline is not None:
            self.src.emit("end-of-stream")
            self.pipeline.set_state(self.Gst.State.NULL)
            self.pipeline = None


# -- events (--events / --record / --serve) -----------------------------------------------------------
class HubSink(Sink):
    """The runner's adapter to an ``EventHub`` for one camera: ``on_frame`` per frame (with the
    overlay when the live view is on), ``on_prediction`` per prediction, ``set_stats`` every
    ``stats_every`` seconds (frames, drops, camera lost, ... for /metrics). The hub only keeps
    references and queues: nothing here waits on a sink."""

    def __init__(self, hub, camera: str = "cam1", source_stats: Any = None, stats_every: float = 1.0):
        self.hub, self.camera, self.stats = hub, camera, source_stats
        self.uri = "events:" + camera
        self.stats_every = stats_every
        self.annotate = getattr(hub, "web", None) is not None
        self.frames = self.predictions = 0
        self._label = self._score = None
        self._times = deque(maxlen=30)
        self._last_stats = None  # type: Optional[float]
        self.last_frame_time = None  # type: Optional[float]

    def write(self, frame, prediction) -> None:
        now = time.perf_counter()
        if prediction is not None:
            self.predictions += 1
            self._label, self._score = prediction.top[0] if prediction.top else (None, None)
            self.hub.on_prediction(self.camera, prediction.scores if prediction.scores is not None else
                                   dict(prediction.top), prediction.timestamp, prediction.wall_time,
                                   prediction.frame, prediction.latency_ms)
        if frame is not None:
            self.frames += 1
            self.last_frame_time = now
            self._times.append(now)
            self.hub.on_frame(self.camera, frame.image, frame.timestamp_s, _wall(frame),
                              annotated_bgr=self._overlay(frame) if self.annotate else None)
        if self._last_stats is None or now - self._last_stats >= self.stats_every:
            self._last_stats = now
            self.report_stats()

    def _overlay(self, frame) -> np.ndarray:
        t = self._times
        fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
        return draw_overlay(frame.image, self._label, self._score, fps)

    def report_stats(self, **extra) -> None:
        """Counters for /metrics: frames, predictions, dropped, reconnects, errors, camera_lost
        (the source's errors: each one a lost camera/stream it then tried to reconnect), fps."""
        st = self.stats
        t = self._times
        stats = dict(frames=self.frames, predictions=self.predictions,
                     fps=(len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0,
                     camera_up=1 if self.last_frame_time is not None and
                     time.perf_counter() - self.last_frame_time < 5.0 else 0)
        if st is not None:
            stats.update(dropped=st.dropped, reconnects=st.reconnects, errors=st.errors, camera_lost=st.errors)
        stats.update(extra)
        self.hub.set_stats(self.camera, **stats)


def _wall(frame) -> float:
    """UNIX time of a frame's capture (``capture_ns`` is on the monotonic clock)."""
    from .sources.base import now_ns

    if not frame.capture_ns:
        return time.time()
    return time.time() - (now_ns() - frame.capture_ns) / 1e9


def events_summary(counters: dict) -> dict:
    """The ``events`` section of a RunSummary from ``EventHub.counters()``: events per kind (and per
    camera), per sink counters, and the faults totalled: ``sink_faults`` events a sink dropped
    (queue full, retries used up, never acknowledged), ``sink_failures`` failed delivery attempts
    (each retry counts), ``record_faults`` clips that could not be written (disk full, ...)."""
    by_cam = counters.get("by_camera", {})
    kinds = {k: sum(int(c.get(k, 0)) for c in by_cam.values()) for k in ("start", "update", "end")}
    sinks = counters.get("sinks", {})
    rec = counters.get("record") or {}
    dropped = sum(int(c.get("dropped", 0)) for c in sinks.values())
    failures = sum(int(c.get("failures", 0)) for c in sinks.values())
    out = {"events": kinds, "by_camera": by_cam, "sinks": sinks, "dropped": dropped,
           "delivered": sum(int(c.get("delivered", 0)) for c in sinks.values()),
           "sink_faults": dropped, "sink_failures": failures, "record_faults": int(rec.get("clips_failed", 0))}
    if counters.get("record") is not None:
        out["record"] = rec
    return out


# -- console ------------------------------------------------------------------------------------------
class StatusSink(Sink):
    """``edge-run: N frames  F fps  dropped D  reconnects R  LABEL`` on stderr every ``every`` seconds."""

    uri = "stderr://status"

    def __init__(self, source_stats=None, every: float = 5.0, stream=None):
        self.stats, self.every = source_stats, every
        self.stream = stream or sys.stderr
        self.frames = 0
        self._t0 = self._last = None
        self._label = "(filling clip)"

    def write(self, frame, prediction) -> None:
        now = time.perf_counter()
        if prediction is not None and prediction.top:
            self._label = "{0} {1:.2f}".format(prediction.top[0][0], prediction.top[0][1])
        if frame is None:
            return
        self.frames += 1
        if self._t0 is None:
            self._t0 = self._last = now
        if now - self._last >= self.every:
            self._last = now
            st = self.stats
            print("edge-run: {0} frames  {1:.1f} fps  dropped {2}  reconnects {3}  {4}".format(
                self.frames, (self.frames - 1) / max(now - self._t0, 1e-9), st.dropped if st else 0,
                st.reconnects if st else 0, self._label), file=self.stream)


class ProgressSink(Sink):
    """A tqdm bar over the frames of a file (tqdm is optional on the device)."""

    uri = "stderr://progress"

    def __init__(self, bar):
        self.bar = bar

    @classmethod
    def create(cls, total: Optional[int]) -> Optional["ProgressSink"]:
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return cls(tqdm(desc="edge-run", unit="frame", total=total or None, file=sys.stderr))

    def write(self, frame, prediction) -> None:
        if frame is not None:
            self.bar.update(1)

    def close(self, summary=None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def format_summary(s: dict) -> str:
    """Human-readable end-of-run summary (the JSON summary has the same numbers)."""
    lines = ["edge-run summary: {0}".format(s.get("source", {}).get("uri", "")),
             "  frames {0}  predictions {1}  dropped {2} ({3:.2f}%)  reconnects {4}  fps {5:.2f}  "
             "elapsed {6:.1f}s  stopped: {7}".format(s["frames"], s["predictions"], s["dropped"], s["dropped_pct"],
                                                    s["reconnects"], s["fps"], s["elapsed_s"], s["stop_reason"])]
    lat = s.get("latency_ms", {})
    if lat:
        lines.append("  {0:<22}{1:>9}{2:>9}{3:>9}{4:>9}{5:>8}".format("stage", "p50 ms", "p95 ms", "p99 ms",
                                                                       "mean", "n"))
        for stage, st in lat.items():
            if st.get("count"):
                lines.append("  {0:<22}{1:>9.2f}{2:>9.2f}{3:>9.2f}{4:>9.2f}{5:>8}".format(
                    stage, st["p50_ms"], st["p95_ms"], st["p99_ms"], st["mean_ms"], st["count"]))
    if s.get("last_label"):
        lines.append("  last prediction: {0}".format(s["last_label"]))
    ev = s.get("events")
    if ev:
        k = ev.get("events", {})
        lines.append("  events: start {0}  update {1}  end {2}  delivered {3}  sink faults {4}  record faults {5}".format(
            k.get("start", 0), k.get("update", 0), k.get("end", 0), ev.get("delivered", 0), ev.get("sink_faults", 0),
            ev.get("record_faults", 0)))
    fp = s.get("file_prediction")
    if fp:
        lines.append("  file prediction: {0} {1:.3f} (the whole file sampled as in training, like edge-eval)"
                     .format(fp["label"], fp["score"]))
    return "\n".join(lines)
