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

Deadlines
---------
Nothing here blocks the caller for long (``gstpipeline`` has the why): ``open()`` waits at most
``reconnect.start_s`` per candidate pipeline, ``read(timeout)`` returns within about ``timeout``
(a reconnect starts in a worker thread and is polled; a failed pipeline is torn down in the
background), ``close()`` waits at most ``reconnect.teardown_s``.

Cameras try each ``camera.format`` in order (``pipelines.candidates``) and keep the first that
negotiates; reconnects reuse it.
"""
import logging
import time
from typing import List, Optional, Tuple

import numpy as np

from . import gstpipeline as gp
from .base import EndOfStream, Frame, Source, SourceError, now_ns
from .gstpipeline import GST_HINT  # noqa: F401  (re-exported: the install hint)
from .pipelines import SourceConfig, candidates, guess_live
from .uri import SourceURI, redact

log = logging.getLogger("edge.sources")

OFFSET_NONE = 0xFFFFFFFFFFFFFFFF
CLOCK_TIME_NONE = 0xFFFFFFFFFFFFFFFF
LIST_FORMATS = ("list the camera's formats with `v4l2-ctl -d {dev} --list-formats-ext` (package v4l-utils) "
                "and set camera.format/width/height/fps in the device config")


def _gst():
    return gp.gst()


def gst_available() -> bool:
    try:
        gp.gst()
        return True
    except SourceError:
        return False


def has_element(name: str) -> bool:
    return gst_available() and gp.gst().ElementFactory.find(name) is not None


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
    """Frames from a GStreamer pipeline; live sources reconnect with backoff after errors/EOS/stalls.

    ``pipeline`` (tests, benchmarks) replaces the built candidates with one fixed pipeline string."""

    kind = "gstreamer"

    def __init__(self, uri: SourceURI, config: Optional[SourceConfig] = None, pipeline: Optional[str] = None):
        super().__init__(uri.redacted)
        self.parsed = uri
        self.config = config or SourceConfig()
        self.policy = self.config.reconnect
        self.candidates = ([("pipeline", pipeline)] if pipeline
                           else candidates(uri, self.config))  # type: List[Tuple[str, str]]
        self.chosen, self.pipeline_str = self.candidates[0]
        self.live = guess_live(uri)
        self.pipeline = None
        self.sink = None
        self.drops = DropCounter()
        self._clock_offset_ns = 0
        self._pending = None          # a gp.Launch of a reconnect in progress
        self._stopping = None         # threading.Event of the last background teardown
        self._stopping_since = 0.0
        self._attempt = 0
        self._next_attempt = 0.0
        self._stopped = False
        self._read_start_ns = 0
        self._last_frame = 0.0        # time.monotonic() of the last frame (or of the (re)start)

    # lifecycle ----------------------------------------------------------------------------------
    def describe(self) -> dict:
        d = super().describe()
        d.update(kind="gstreamer/{}".format(self.parsed.kind), pipeline=redact(self.pipeline_str))
        if self.parsed.kind == "v4l2":
            d["camera_format"] = self.chosen
        return d

    def open(self) -> "GstSource":
        """Start the first candidate that negotiates (cameras: formats in preference order)."""
        tried = []  # type: List[Tuple[str, str]]
        for label, pipeline_str in self.candidates:
            launch = self._launch(pipeline_str)
            if not launch.done.wait(self.policy.start_s + launch.preroll_s + 1.0):
                launch.cancel()
                tried.append((label, "GStreamer did not start within {:g} s".format(self.policy.start_s)))
                continue
            if launch.error:
                tried.append((label, launch.error))
                if launch.stopped is not None:  # the next candidate opens the same device
                    launch.stopped.wait(self.policy.teardown_s)
                continue
            self._adopt(launch)
            self.chosen, self.pipeline_str = label, pipeline_str
            if tried:
                log.warning("source %s: %s; using %s", self.uri,
                            "; ".join("{} failed ({})".format(t, e) for t, e in tried), label)
            log.info("source %s: %s", self.uri, redact(pipeline_str))
            return self
        raise SourceError(self._open_error(tried))

    def _open_error(self, tried: List[Tuple[str, str]]) -> str:
        if len(tried) == 1:
            return "{}: {}".format(self.uri, tried[0][1])
        what = "; ".join("{}: {}".format(t, e) for t, e in tried)
        return "{}: the camera negotiated none of the formats tried ({}); {}".format(
            self.uri, what, LIST_FORMATS.format(dev=self.parsed.location))

    def _launch(self, pipeline_str: str) -> "gp.Launch":
        return gp.Launch(pipeline_str, self.uri, self.policy.start_s, wait_caps=self.live)

    def _adopt(self, launch: "gp.Launch") -> None:
        pipeline, sink = launch.adopt()
        live = launch.no_preroll or self.live
        if self.parsed.kind == "gst" and "appsink" not in self.parsed.location and live != self.live:
            # gst:// guessed wrong: fix the sink so live streams drop and files never do
            sink.set_property("drop", live)
            sink.set_property("max-buffers", 1 if live else 4)
        self.live = live
        clock = pipeline.get_clock()
        self._clock_offset_ns = (now_ns() - clock.get_time()) if clock is not None else 0
        self.pipeline, self.sink = pipeline, sink
        self.drops.reset()
        self._last_frame = time.monotonic()

    def _drop_pipeline(self, wait_s: float) -> None:
        """Forget the running pipeline and stop it (waiting at most ``wait_s``; 0 = background,
        and the next reconnect waits up to ``teardown_s`` for the device to be released)."""
        pipeline, self.pipeline, self.sink = self.pipeline, None, None
        if pipeline is None:
            return
        if wait_s > 0:
            gp.teardown(pipeline, wait_s, self.uri)
        else:
            self._stopping = gp.stop_async(pipeline, self.uri)
            self._stopping_since = time.monotonic()

    def close(self) -> None:
        """Stop now: waits at most ``reconnect.teardown_s`` for GStreamer (then abandons it)."""
        self._stopped = True
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
        self._drop_pipeline(self.policy.teardown_s)

    def __del__(self):  # a forgotten close() must not leave a PLAYING pipeline behind
        try:
            if self._pending is not None:
                self._pending.cancel()
            self._drop_pipeline(0)
        except Exception:
            pass

    # reading ------------------------------------------------------------------------------------
    def read(self, timeout: float = 1.0) -> Optional[Frame]:
        """A frame, None after about ``timeout`` s without one (or while reconnecting),
        EndOfStream when a file ends or after close(); SourceError when a file fails or a live
        source gave up (reconnect.max_attempts)."""
        if self._stopped:
            raise EndOfStream()
        if self.pipeline is None and not self._reconnect(timeout):
            return None
        self._read_start_ns = now_ns()
        sample = self.sink.try_pull_sample(int(timeout * gp.gst().SECOND))
        if sample is not None:
            return self._frame(sample)
        problem = gp.bus_error(self.pipeline)
        eos = self.sink.is_eos() if hasattr(self.sink, "is_eos") else self.sink.get_property("eos")
        stalled = (self.live and self.policy.stall_s > 0
                   and time.monotonic() - self._last_frame > self.policy.stall_s)
        if problem is None and not eos and not stalled:
            return None  # plain timeout
        if problem is None and not eos:
            problem = "no frames for {:g} s (stalled)".format(self.policy.stall_s)
        if not self.live:
            self._stopped = True
            self._drop_pipeline(self.policy.teardown_s)
            if problem:
                raise SourceError("{}: {}".format(self.uri, problem))
            raise EndOfStream()
        self._failed(problem or "end of stream")
        return None

    def _failed(self, problem: str) -> None:
        """A live pipeline failed: count it, stop it in the background, schedule a reconnect."""
        self.stats.errors += 1
        self.stats.last_error = problem
        log.warning("source %s: %s; reconnecting", self.uri, problem)
        self._attempt = 0
        self._next_attempt = time.monotonic() + self.policy.delay(0)
        self._drop_pipeline(0)

    def _frame(self, sample) -> Frame:
        Gst = gp.gst()
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
            raise SourceError("{}: cannot map a buffer".format(self.uri))
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
            capture = self._read_start_ns or now
            ts = buf.pts / 1e9 if buf.pts != CLOCK_TIME_NONE else self.stats.frames / (self.fps or 30.0)
        self.size = (h, w)
        self._last_frame = time.monotonic()
        frame = Frame(image, ts, self.stats.frames, capture, self.stats.reconnects)
        self.stats.frames += 1
        return frame

    def _old_pipeline_released(self, timeout: float) -> bool:
        """Wait (at most ``timeout``) for the failed pipeline's background teardown, so a camera
        device is free again; after ``teardown_s`` go on regardless (it is stuck)."""
        if self._stopping is None or self._stopping.is_set():
            return True
        remaining = self._stopping_since + self.policy.teardown_s - time.monotonic()
        return remaining <= 0 or self._stopping.wait(min(remaining, timeout))

    def _reconnect(self, timeout: float) -> bool:
        """Advance the reconnect by at most ``timeout`` s: wait for the backoff, start a pipeline in
        a worker thread, adopt it once it runs. True when running again."""
        t_end = time.monotonic() + timeout
        if self._pending is None:
            if self.policy.max_attempts >= 0 and self._attempt >= self.policy.max_attempts:
                raise SourceError("{}: gave up after {} reconnect attempts ({})".format(
                    self.uri, self._attempt, self.stats.last_error))
            if not self._old_pipeline_released(timeout):
                return False
            wait = self._next_attempt - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, timeout))
                if wait > timeout:
                    return False
            self._attempt += 1
            self._pending = self._launch(self.pipeline_str)
        if not self._pending.done.wait(max(0.0, t_end - time.monotonic())):
            return False
        launch, self._pending = self._pending, None
        if launch.error:
            self.stats.last_error = launch.error
            self._next_attempt = time.monotonic() + self.policy.delay(self._attempt)
            log.warning("source %s: reconnect attempt %d failed: %s", self.uri, self._attempt, launch.error)
            return False
        self._adopt(launch)
        self.stats.reconnects += 1
        log.warning("source %s: reconnected (%d)", self.uri, self.stats.reconnects)
        return True
