"""Source interface: a stream of RGB frames with capture timestamps, dropped-frame and reconnect counts.

``read(timeout)`` returns a ``Frame`` or ``None`` on timeout, and raises ``EndOfStream`` when a
finite source (a file) is done. Live sources never end by themselves: when the pipeline errors or
reaches EOS they reconnect with backoff (counted in ``stats.reconnects``) until ``max_reconnects``.
"""
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np


class SourceError(RuntimeError):
    """The source cannot be opened or failed for good; the message is one line for the user."""


class CameraNotFound(SourceError):
    """A camera device that does not exist (e.g. /dev/video9)."""


class EndOfStream(Exception):
    """A finite source (file) has no more frames."""


@dataclass
class Frame:
    """One captured frame.

    image:       HxWx3 uint8 RGB (already scaled by the pipeline)
    timestamp_s: live sources: seconds on the capture clock since the source opened (monotonic across
                 reconnects); files: the frame's presentation time in the video
    index:       running count of frames delivered by this source (0, 1, 2, ...)
    capture_ns:  now_ns() (time.monotonic in ns) at capture (live GStreamer: pipeline clock at the buffer's PTS,
                 i.e. when the camera produced it; files: when the read started, so "capture" is
                 the decode time); capture-to-prediction latency is measured from it
    epoch:       reconnect count when this frame was captured: a change means a gap in the stream
    """

    image: np.ndarray
    timestamp_s: float
    index: int
    capture_ns: int = 0
    epoch: int = 0

    def __iter__(self):  # allow ``image, ts, idx = frame``
        return iter((self.image, self.timestamp_s, self.index))


@dataclass
class SourceStats:
    frames: int = 0          # frames delivered to the caller
    dropped: int = 0         # frames the source produced that the caller never got (live only)
    reconnects: int = 0      # successful reopen after an error / EOS on a live source
    errors: int = 0          # pipeline errors seen (each followed by a reconnect attempt)
    last_error: str = ""

    def to_dict(self) -> dict:
        return {"frames": self.frames, "dropped": self.dropped, "reconnects": self.reconnects,
                "errors": self.errors, "last_error": self.last_error}


class Source:
    """Base class. ``uri`` is the redacted URI (safe to log). Subclasses implement open/read/close."""

    kind = "base"
    live = False

    def __init__(self, uri: str = ""):
        self.uri = uri
        self.stats = SourceStats()
        self.fps: Optional[float] = None          # nominal frame rate when known
        self.size: Optional[tuple] = None         # (height, width) delivered
        self._t0_ns: Optional[int] = None

    def open(self) -> "Source":
        return self

    def read(self, timeout: float = 1.0) -> Optional[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        return {"kind": self.kind, "uri": self.uri, "live": self.live, "fps": self.fps,
                "size": list(self.size) if self.size else None}

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        while True:
            try:
                f = self.read()
            except EndOfStream:
                return
            if f is not None:
                yield f

    # helpers ------------------------------------------------------------------------------------
    def _clock_s(self, capture_ns: int) -> float:
        """Seconds since the first frame's capture (live timestamps, monotonic across reconnects)."""
        if self._t0_ns is None:
            self._t0_ns = capture_ns
        return (capture_ns - self._t0_ns) / 1e9


def now_ns() -> int:
    """time.monotonic() in integer nanoseconds (time.monotonic_ns is Python 3.7+; same clock)."""
    if _MONOTONIC_NS is not None:
        return _MONOTONIC_NS()
    return int(time.monotonic() * 1e9)


_MONOTONIC_NS = getattr(time, "monotonic_ns", None)
