"""One GStreamer pipeline's life, with deadlines: start it off the caller's thread, stop it off
the caller's thread, and never let a stuck pipeline hold the caller.

Why: ``set_state(NULL)`` waits for every streaming thread to stop. A frozen camera or RTSP server
(the process stopped, the network gone) can leave a thread (rtspsrc's, rtpjitterbuffer's) blocked
for minutes, and a main thread waiting in that C call runs no Python signal handler, so
``edge-run`` could neither stop at ``--duration`` nor on SIGTERM. Here:

* ``Launch`` parses and starts a pipeline in a worker thread and waits (there) for the appsink's
  caps to be negotiated or for an error, up to ``reconnect.start_s``; the caller polls ``done``.
* ``teardown(pipeline, wait_s)`` runs ``set_state(NULL)`` in a daemon thread and waits at most
  ``wait_s``; a pipeline still stuck then is *abandoned* (kept referenced so nothing frees it
  mid-transition) with a one-line notice. ``wait_s=0`` = don't wait (reconnects).
* rtspsrc elements get ``tcp-timeout`` = 0.8 ``start_s`` (a server that accepts and never answers fails
  instead of holding the session for rtspsrc's default 20 s) and, on GStreamer 1.18+, a
  ``select-stream`` handler that sets up the video stream only.

``gi`` is imported only here and only when a GStreamer source is opened.
"""
import logging
import sys
import threading
import time
from typing import List, Optional

from .base import SourceError
from .pipelines import SINK_NAME
from .uri import redact

log = logging.getLogger("edge.sources")

GST_HINT = ("GStreamer Python bindings are missing: on Debian/Ubuntu/Jetson `sudo apt-get install python3-gi "
            "gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gstreamer1.0-plugins-good`, in a venv also "
            "`pip install PyGObject`")

_GST = None
_ABANDONED = []  # type: List[object]   pipelines stuck in teardown: referenced forever, never freed
_LOCK = threading.Lock()


def gst():
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


def abandoned() -> int:
    """How many pipelines this process gave up waiting for (stuck in teardown)."""
    return len(_ABANDONED)


def notice(text: str) -> None:
    """A warning the user must see even without logging configured (stderr, one line)."""
    log.warning("%s", text)
    print("edge-run: {}".format(text), file=sys.stderr, flush=True)


def stop_async(pipeline, what: str = "source") -> threading.Event:
    """Start ``set_state(NULL)`` in a daemon thread; the returned event is set once it returned."""
    Gst = gst()
    done = threading.Event()

    def work():
        try:
            pipeline.set_state(Gst.State.NULL)
        except Exception as e:  # pragma: no cover  (nothing the caller could do about it)
            log.debug("teardown of %s: %s", what, e)
        finally:
            done.set()

    threading.Thread(target=work, name="edge-gst-teardown", daemon=True).start()
    return done


def teardown(pipeline, wait_s: float, what: str = "source") -> bool:
    """Stop ``pipeline`` off the caller's thread and wait at most ``wait_s``. True when it stopped
    in time; after ``wait_s > 0`` without a stop the pipeline is abandoned with a notice."""
    done = stop_async(pipeline, what)
    if wait_s <= 0:
        return False
    if done.wait(wait_s):
        return True
    with _LOCK:
        _ABANDONED.append(pipeline)
    notice("{}: GStreamer did not stop within {:g} s (camera or server frozen?); "
           "abandoned the pipeline and went on".format(what, wait_s))
    return False


def find_sink(pipeline):
    """The appsink named edge_sink, else the only appsink, else None."""
    sink = pipeline.get_by_name(SINK_NAME)
    if sink is not None:
        return sink
    sinks = [e for e in iterate(pipeline) if e.get_factory() and e.get_factory().get_name() == "appsink"]
    return sinks[0] if len(sinks) == 1 else None


def iterate(bin_) -> list:
    Gst = gst()
    it = bin_.iterate_recurse()
    out = []
    while True:
        ok, el = it.next()
        if ok != Gst.IteratorResult.OK:
            break
        out.append(el)
    return out


def error_text(msg) -> str:
    """One redacted line for an ERROR message (``src: text (not-negotiated)``)."""
    err, debug = msg.parse_error()
    src = msg.src.get_name() if msg.src else "pipeline"
    text = "{}: {}".format(src, err.message)
    if debug and "not-negotiated" in debug:
        text += " (not-negotiated: the caps asked for are not offered)"
    elif debug and "not-linked" in debug:
        text += " (not-linked: the stream's format fits no element downstream)"
    return redact(text).replace("\n", " ")


def bus_error(pipeline, wait_s: float = 0.0) -> Optional[str]:
    """The first ERROR on the bus (redacted, one line), waiting up to ``wait_s`` for one, else
    None (EOS is discarded: the appsink's eos flag reports it)."""
    if pipeline is None:
        return None
    Gst = gst()
    bus = pipeline.get_bus()
    while True:
        msg = bus.timed_pop_filtered(int(wait_s * Gst.SECOND), Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if msg is None:
            return None
        if msg.type == Gst.MessageType.ERROR:
            return error_text(msg)


def _video_only(_rtspsrc, _num, caps) -> bool:
    """rtspsrc ``select-stream``: set up video streams only (audio/metadata never negotiated)."""
    s = caps.get_structure(0) if caps is not None and caps.get_size() else None
    media = s.get_string("media") if s is not None else None
    return media is None or media == "video"


def configure_rtspsrc(pipeline, pipeline_str: str, start_s: float) -> None:
    """Video-only stream selection (GStreamer 1.18+) and a TCP timeout of ``start_s``."""
    for el in iterate(pipeline):
        f = el.get_factory()
        if f is None or f.get_name() != "rtspsrc":
            continue
        try:
            el.connect("select-stream", _video_only)
        except TypeError:  # GStreamer < 1.18 (JetPack 4): the caps filter after rtspsrc does it
            pass
        if "tcp-timeout" not in pipeline_str and start_s > 0:  # fails before the start deadline
            el.set_property("tcp-timeout", int(start_s * 0.8 * 1e6))


class Launch:
    """Parse and start one pipeline in a worker thread (see module doc). After ``done`` is set:
    ``error`` (one line) or ``pipeline``/``sink``/``no_preroll``. ``cancel()`` makes the worker
    (or the canceller) tear down whatever it started (``stopped`` is set when that is done: the
    next candidate may need the same camera device); ``adopt()`` hands the pipeline over."""

    def __init__(self, pipeline_str: str, what: str, start_s: float, wait_caps: bool, preroll_s: float = 10.0):
        self.pipeline_str = pipeline_str
        self.what = what
        self.start_s = start_s
        self.preroll_s = max(preroll_s, start_s)
        self.wait_caps = wait_caps
        self.done = threading.Event()
        self.pipeline = self.sink = None
        self.error = None  # type: Optional[str]
        self.no_preroll = False
        self.stopped = None  # type: Optional[threading.Event]   set once a failed start was torn down
        self._cancelled = self._adopted = False
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="edge-gst-start", daemon=True).start()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            drop = self.done.is_set() and not self._adopted and self.error is None and self.pipeline is not None
        if drop:
            self.stopped = stop_async(self.pipeline, self.what)

    def adopt(self):
        with self._lock:
            self._adopted = True
        return self.pipeline, self.sink

    def _run(self) -> None:
        try:
            self.error = self._start()
        except Exception as e:  # a surprise from GStreamer must not kill the thread silently
            self.error = redact(str(e)).replace("\n", " ")
        if self.error is not None and self.pipeline is not None:  # before done: callers may wait on it
            self.stopped = stop_async(self.pipeline, self.what)
        with self._lock:
            self.done.set()
            drop = self._cancelled and self.error is None and self.pipeline is not None
        if drop:
            self.stopped = stop_async(self.pipeline, self.what)

    def _start(self) -> Optional[str]:
        Gst = gst()
        t0 = time.monotonic()
        try:
            pipeline = Gst.parse_launch(self.pipeline_str)
        except Exception as e:  # GLib.Error: no such element / bad syntax / cannot link
            return "cannot build the GStreamer pipeline: {}".format(redact(str(e)).replace("\n", " "))
        sink = find_sink(pipeline)
        if sink is None:
            return "the pipeline needs one appsink (name it {})".format(SINK_NAME)
        configure_rtspsrc(pipeline, self.pipeline_str, self.start_s)
        self.pipeline, self.sink = pipeline, sink
        ret = pipeline.set_state(Gst.State.PLAYING)
        if ret == Gst.StateChangeReturn.FAILURE:
            return bus_error(pipeline, 1.0) or "state change to PLAYING failed"
        if ret == Gst.StateChangeReturn.ASYNC:  # wait for preroll (files) or the first error
            # live: at most until start_s (then the stall timeout judges it); files: preroll_s
            wait_s = self.start_s - (time.monotonic() - t0) if self.wait_caps else self.preroll_s
            ret, _, _ = pipeline.get_state(int(max(0.05, wait_s) * Gst.SECOND))
            if ret == Gst.StateChangeReturn.FAILURE:
                return bus_error(pipeline, 1.0) or "could not start"
        self.no_preroll = ret == Gst.StateChangeReturn.NO_PREROLL
        if self.wait_caps:
            return self._wait_negotiated(t0 + self.start_s)
        return None

    def _wait_negotiated(self, deadline: float) -> Optional[str]:
        """Until the appsink has caps (None), an error (its text) or the deadline (None: judged
        later by the stall timeout)."""
        Gst = gst()
        pad = self.sink.get_static_pad("sink")
        bus = self.pipeline.get_bus()
        while time.monotonic() < deadline and not self._cancelled:
            if pad.get_current_caps() is not None:
                return None
            msg = bus.timed_pop_filtered(50 * Gst.MSECOND, Gst.MessageType.ERROR)
            if msg is not None:
                return error_text(msg)
        return None
