"""GStreamer source: a pipeline string (``pipelines.build_pipeline``) ending in an appsink.

``gi`` is imported only when a GStreamer source is opened, so ``edge`` imports on machines without
PyGObject (``gst_available()`` tells; ``open_source`` then falls back to OpenCV for files).

Dropped frames
--------------
A live appsink (``max-buffers=1 drop=true``) silently replaces the frame it holds when a new one
arrives before we pull it; it exposes no counter. We count drops from the frames we *do* get:

* ``GstBuffer.offset`` is the frame's sequence number for v4l2src (the driver's sequence, so even
  drops inside the kernel are seen) and videotestsrc; GStreamer's transforms (videoscale,
  videoconvert) copy it. A jump from n to n+k means k-1 frames were dropped.
* Where the offset is unset (``GST_BUFFER_OFFSET_NONE``, e.g. decoders, rtsp), the PTS gap is used:
  ``round((pts - last_pts) / frame_duration) - 1`` with the frame duration from the buffer or from
  the negotiated caps' framerate.

``DropCounter`` is that logic as a pure class; ``tests/test_sources*.py`` checks it directly and
with a deliberately slow consumer on a live test source.
"""
from __future__ import annotations

import logging
import time
from typing import Optional

import numpy as np

from .base import EndOfStream, Frame, ReconnectPolicy, Source, SourceError, now_ns
from .pipelines import SINK_NAME, PipelineSettings, build_pipeline
from .uri import SourceURI, redact

log = logging.getLogger("edge.sources")

GST_HINT = ("GStreamer Python bindings are missing: on Debian/Ubuntu/Jetson `sudo apt-get install python3-gi "
            "gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gstreamer1.0-plugins-good`, in a venv also "
            "`pip install PyGObject`")
OFFSET_NONE = 0xFFFFFFFFFFFFFFFF
CLOCK_TIME_NONE = 0xFFFFFFFFFFFFFFFF

_GST = None


def _gst():
    """Import and initialise GStreamer once; SourceError with the install hint if absent."""
    global _GST
    if _GST is None:
        try:
            import gi
            gi.require_version("Gst", "1.0")
            gi.require_version("GstApp", "1.0")
            from gi.repository import Gst, GstApp  # noqa: F401  (GstApp adds try_pull_sample)
        except (ImportError, ValueError) as e:
            raise SourceError(GST_HINT) from e
        Gst.init(None)
        _GST = Gst
    return _GST


def gst_available() -> bool:
    try:
        _gst()
        return True
    except SourceError:
        return False


def has_element(name: str) -> bool:
    return gst_available() and _gst().ElementFactory.find(name) is not None


class DropCounter:
    """Frames lost between two delivered buffers, from offsets (preferred) or PTS gaps."""

    def __init__(self, frame_ns: Optional[int] = None):
        self.frame_ns = frame_ns
        self.last_offset: Optional[int] = None
        self.last_pts: Optional[int] = None
        self.dropped = 0

    def reset(self) -> None:
        self.last_offset = self.last_pts = None

    def update(self, offset: Optional[int], pts: Optional[int], duration: Optional[int] = None) -> int:
        """Register one delivered buffer; return how many frames were lost just before it."""
        offset = None if offset is None or offset == OFFSET_NONE else int(offset)
        pts = None if pts is None or pts == CLOCK_TIME_NONE else int(pts)
        if duration and duration != CLOCK_TIME_NONE and duration > 0:
            self.frame_ns = int(duration)
        gap = 0
        if offset is not None and self.last_offset is not None and offset > self.last_offset:
            gap = offset - self.last_offset - 1
        elif offset is None and pts is not None and self.last_pts is not None and self.frame_ns:
            gap = max(0, int(round((pts - self.last_pts) / self.frame_ns)) - 1)
        if offset is not None:
            self.last_offset = offset
        if pts is not None:
            self.last_pts = pts
        self.dropped += gap
        return gap


class GstSource(Source):
    """Frames from a GStreamer pipeline; live sources reconnect with backoff after errors/EOS."""

    kind = "gstreamer"

    def __init__(self, uri: SourceURI, settings: Optional[PipelineSettings] = None,
                 reconnect: Optional[ReconnectPolicy] = None, pipeline: Optional[str] = None):
        super().__init__(uri.redacted)
        self.parsed = uri
        self.settings = settings or PipelineSettings()
        self.policy = reconnect or ReconnectPolicy()
        self.pipeline_str = pipeline or build_pipeline(uri, self.settings)
        self.live = uri.live if uri.kind != "gst" else ("drop=true" in self.pipeline_str)
        self.pipeline = None
        self.sink = None
        self.drops = DropCounter()
        self._clock_offset_ns = 0
        self._dead = False            # pipeline failed / ended; reconnect pending (live)
        self._attempt = 0
        self._next_attempt = 0.0
        self._stopped = False
        self._last_frame = 0.0        # time.monotonic() of the last frame (or of the (re)start)

    # lifecycle ----------------------------------------------------------------------------------
    def describe(self) -> dict:
        d = super().describe()
        d.update(kind=f"gstreamer/{self.parsed.kind}", pipeline=redact(self.pipeline_str))
        return d

    def open(self) -> "GstSource":
        self._start()
        log.info("source %s: %s", self.uri, redact(self.pipeline_str))
        return self

    def _start(self) -> None:
        Gst = _gst()
        try:
            pipeline = Gst.parse_launch(self.pipeline_str)
        except Exception as e:  # GLib.Error: no such element / bad syntax
            raise SourceError(f"{self.uri}: cannot build the GStreamer pipeline: {redact(str(e))}") from None
        sink = pipeline.get_by_name(SINK_NAME)
        if sink is None:
            sinks = [e for e in _iterate(pipeline) if e.get_factory() and e.get_factory().get_name() == "appsink"]
            sink = sinks[0] if len(sinks) == 1 else None
        if sink is None:
            pipeline.set_state(Gst.State.NULL)
            raise SourceError(f"{self.uri}: the pipeline needs one appsink (name it {SINK_NAME})")
        ret = pipeline.set_state(Gst.State.PLAYING)
        if ret == Gst.StateChangeReturn.FAILURE:
            msg = _bus_error(pipeline) or "state change to PLAYING failed"
            pipeline.set_state(Gst.State.NULL)
            raise SourceError(f"{self.uri}: {msg}")
        if ret == Gst.StateChangeReturn.ASYNC:  # wait for preroll (files) or the first error
            ret, _, _ = pipeline.get_state(10 * Gst.SECOND)
            if ret == Gst.StateChangeReturn.FAILURE:
                msg = _bus_error(pipeline) or "could not start"
                pipeline.set_state(Gst.State.NULL)
                raise SourceError(f"{self.uri}: {msg}")
        live = ret == Gst.StateChangeReturn.NO_PREROLL or self.live
        if self.parsed.kind == "gst" and "appsink" not in self.parsed.location and live != self.live:
            # gst:// guessed wrong: fix the sink so live streams drop and files never do
            sink.set_property("drop", live)
            sink.set_property("max-buffers", 1 if live else 4)
        self.live = live
        clock = pipeline.get_clock()
        self._clock_offset_ns = (now_ns() - clock.get_time()) if clock is not None else 0
        self.pipeline, self.sink = pipeline, sink
        self.drops.reset()
        self._dead = False
        self._last_frame = time.monotonic()

    def _stop_pipeline(self) -> None:
        if self.pipeline is not None:
            Gst = _gst()
            self.pipeline.set_state(Gst.State.NULL)
            self.pipeline.get_state(2 * Gst.SECOND)
        self.pipeline = self.sink = None

    def close(self) -> None:
        self._stopped = True
        self._stop_pipeline()

    def __del__(self):  # a forgotten close() must not leave a PLAYING pipeline behind
        try:
            if self.pipeline is not None:
                self._stop_pipeline()
        except Exception:
            pass

    # reading ------------------------------------------------------------------------------------
    def read(self, timeout: float = 1.0) -> Optional[Frame]:
        if self._stopped:
            raise EndOfStream()
        if self._dead or self.pipeline is None:
            if not self._reconnect(timeout):
                return None
        self._read_start_ns = now_ns()
        Gst = _gst()
        sample = self.sink.try_pull_sample(int(timeout * Gst.SECOND))
        if sample is None:
            problem = _bus_error(self.pipeline)
            eos = self.sink.is_eos() if hasattr(self.sink, "is_eos") else self.sink.get_property("eos")
            stalled = (self.live and self.policy.stall_s > 0
                       and time.monotonic() - self._last_frame > self.policy.stall_s)
            if problem is None and not eos and not stalled:
                return None  # plain timeout
            if stalled and problem is None and not eos:
                problem = f"no frames for {self.policy.stall_s:g} s (stalled)"
            if not self.live:
                self._stop_pipeline()
                self._stopped = True
                if problem:
                    raise SourceError(f"{self.uri}: {problem}")
                raise EndOfStream()
            self.stats.errors += 1
            self.stats.last_error = problem or "end of stream"
            log.warning("source %s: %s; reconnecting", self.uri, self.stats.last_error)
            self._dead = True
            self._attempt = 0
            self._next_attempt = time.monotonic() + self.policy.delay(0)
            self._stop_pipeline()
            return None
        return self._frame(sample)

    def _frame(self, sample) -> Frame:
        Gst = _gst()
        buf = sample.get_buffer()
        caps = sample.get_caps().get_structure(0)
        w, h = caps.get_value("width"), caps.get_value("height")
        if self.drops.frame_ns is None:
            ok, num, den = caps.get_fraction("framerate")
            if ok and num > 0:
                self.drops.frame_ns = int(1e9 * den / num)
                self.fps = num / den
        if self.live:
            self.stats.dropped += self.drops.update(buf.offset, buf.pts, buf.duration)
        ok, info = buf.map(Gst.MapFlags.READ)
        if not ok:
            raise SourceError(f"{self.uri}: cannot map a buffer")
        try:
            stride = info.size // h
            arr = np.frombuffer(info.data, dtype=np.uint8, count=stride * h).reshape(h, stride)
            image = arr[:, : w * 3].reshape(h, w, 3).copy()
        finally:
            buf.unmap(info)
        now = now_ns()
        if self.live and buf.pts != CLOCK_TIME_NONE:
            capture = self.pipeline.get_base_time() + buf.pts + self._clock_offset_ns
            capture = min(capture, now)
            ts = self._clock_s(capture)
        else:  # files: "capture" is the time spent getting the decoded frame
            capture = getattr(self, "_read_start_ns", now)
            ts = buf.pts / 1e9 if buf.pts != CLOCK_TIME_NONE else self.stats.frames / (self.fps or 30.0)
        self.size = (h, w)
        self._last_frame = time.monotonic()
        frame = Frame(image, ts, self.stats.frames, capture, self.stats.reconnects)
        self.stats.frames += 1
        return frame

    def _reconnect(self, timeout: float) -> bool:
        """One reconnect attempt when due; sleeps at most ``timeout``. True when running again."""
        if self.policy.max_attempts >= 0 and self._attempt >= self.policy.max_attempts:
            raise SourceError(f"{self.uri}: gave up after {self._attempt} reconnect attempts "
                              f"({self.stats.last_error})")
        wait = self._next_attempt - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, timeout))
            if wait > timeout:
                return False
        self._attempt += 1
        try:
            self._start()
        except SourceError as e:
            self.stats.last_error = str(e)
            self._next_attempt = time.monotonic() + self.policy.delay(self._attempt)
            log.warning("source %s: reconnect attempt %d failed: %s", self.uri, self._attempt, e)
            return False
        self.stats.reconnects += 1
        log.warning("source %s: reconnected (%d)", self.uri, self.stats.reconnects)
        return True


def _iterate(bin_):
    Gst = _gst()
    it = bin_.iterate_recurse()
    out = []
    while True:
        ok, el = it.next()
        if ok != Gst.IteratorResult.OK:
            break
        out.append(el)
    return out


def _bus_error(pipeline) -> Optional[str]:
    """The first pending ERROR on the bus (redacted, one line), else None."""
    if pipeline is None:
        return None
    Gst = _gst()
    bus = pipeline.get_bus()
    while True:
        msg = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if msg is None:
            return None
        if msg.type == Gst.MessageType.ERROR:
            err, _dbg = msg.parse_error()
            src = msg.src.get_name() if msg.src else "pipeline"
            return redact(f"{src}: {err.message}").replace("\n", " ")
        # EOS: reported through the appsink's eos flag
