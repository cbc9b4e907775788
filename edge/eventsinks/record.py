"""Clip recording: on an event's ``start``, an MP4 from a pre-roll ring until ``post_s`` after its
``end``, plus a JPEG snapshot; the event messages carry the MP4's path in ``"clip"``.

Files: ``DIR/<camera>/<camera>_<label>_<YYYYmmdd-HHMMSS>_<ms>.mp4`` (and ``.jpg``), the time being the
event's start (wall clock, UTC; stream time when there is no wall clock).

The caller's thread only keeps references in a ring (frames at most ``fps`` per second, the last
``pre_s + lookback_s`` seconds, at most ``max_ring_frames``) and hands frames to one worker thread
through a bounded queue (full: the frame is dropped and counted). The worker encodes (OpenCV
``VideoWriter``, mp4v) and writes. An unwritable directory, a full disk or a writer that fails is
counted (``unwritable``, ``disk_full``, ``write_errors``, ``clips_failed``), logged once per clip,
and never raised. ``lookback_s`` covers the detector's delay: a ``start`` message goes out
``min_duration_s`` after the moment it reports, and the clip begins ``pre_s`` before that moment.
"""
import collections
import errno
import logging
import os
import re
import threading
import time
from typing import Deque, Dict, List, Optional, Tuple

import numpy as np

log = logging.getLogger("edge.eventsinks.record")


def _safe(name):
    # type: (str) -> str
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip("-") or "x"


def clip_basename(camera, label, wall_time, stream_time):
    # type: (str, str, Optional[float], float) -> str
    """``<camera>_<label>_<YYYYmmdd-HHMMSS>_<ms>`` (UTC wall time, else ``t<stream seconds>``)."""
    if wall_time is not None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(wall_time))
        stamp += "_{:03d}".format(int(round((wall_time % 1.0) * 1000)) % 1000)
    else:
        stamp = "t{:010.3f}".format(float(stream_time))
    return "{}_{}_{}".format(_safe(camera), _safe(label), stamp)


class _Recording(object):
    __slots__ = ("key", "path", "snapshot", "stop_at", "failed", "writer", "frames", "size")

    def __init__(self, key, path, snapshot):
        self.key, self.path, self.snapshot = key, path, snapshot
        self.stop_at = None  # type: Optional[float]
        self.failed = False
        self.writer = None
        self.frames = 0
        self.size = None  # type: Optional[Tuple[int, int]]


class ClipRecorder(object):
    """``push_frame()`` per captured frame, ``publish(event)`` per event (fills ``event["clip"]``)."""

    kind = "record"

    def __init__(self, directory, pre_s=2.0, post_s=2.0, fps=15.0, lookback_s=2.0, max_ring_frames=150,
                 queue_frames=120, snapshot=True):
        self.directory = directory
        self.name = "record " + directory
        self.pre_s, self.post_s, self.lookback_s = float(pre_s), float(post_s), float(lookback_s)
        self.fps = float(fps)
        self.max_ring_frames = int(max_ring_frames)
        self.queue_frames = int(queue_frames)
        self.snapshot = snapshot
        self._rings = {}  # type: Dict[str, Deque[Tuple[float, np.ndarray]]]
        self._last_kept = {}  # type: Dict[str, float]
        self._active = {}  # type: Dict[Tuple[str, str], _Recording]
        self._q = collections.deque()  # type: Deque[tuple]
        self._cv = threading.Condition()
        self._counts = collections.Counter()  # type: collections.Counter
        self._by_camera = collections.Counter()  # type: collections.Counter
        self._closing = False
        self.last_error = None  # type: Optional[str]
        self.recent = collections.deque(maxlen=20)  # type: Deque[Dict]
        self._thread = threading.Thread(target=self._run, name="clip-recorder", daemon=True)
        self._thread.start()

    def start(self):
        return self

    # caller thread --------------------------------------------------------------------------------
    def push_frame(self, camera, image_rgb, stream_time, wall_time=None):
        # type: (str, np.ndarray, float, Optional[float]) -> None
        t = float(stream_time)
        last = self._last_kept.get(camera)
        if last is not None and t - last < 1.0 / self.fps - 1e-6 and t >= last:
            return
        self._last_kept[camera] = t
        frame = np.array(image_rgb, dtype=np.uint8, copy=True)
        ring = self._rings.setdefault(camera, collections.deque(maxlen=self.max_ring_frames))
        ring.append((t, frame))
        horizon = t - self.pre_s - self.lookback_s
        while ring and ring[0][0] < horizon:
            ring.popleft()
        for key, rec in list(self._active.items()):
            if key[0] != camera:
                continue
            if rec.stop_at is not None and t > rec.stop_at:
                del self._active[key]
                self._put(("close", rec), force=True)
            else:
                self._put(("frame", rec, frame))

    def publish(self, event):
        # type: (Dict) -> None
        """Start/stop recordings; sets ``event["clip"]`` (for start, update and end) in place."""
        cam, label = str(event.get("camera")), str(event.get("label"))
        key = (cam, label)
        kind = event.get("event")
        with self._cv:
            self._counts["events"] += 1
        if kind == "start":
            old = self._active.pop(key, None)
            if old is not None:
                self._put(("close", old), force=True)
            rec = self._begin(cam, label, event)
            event["clip"] = rec.path
        elif key in self._active:
            rec = self._active[key]
            event["clip"] = rec.path
            if kind == "end":
                rec.stop_at = float(event.get("stream_time") or 0.0) + self.post_s

    def _begin(self, cam, label, event):
        t0 = float(event.get("stream_time") or 0.0)
        base = os.path.join(self.directory, _safe(cam),
                            clip_basename(cam, label, event.get("wall_time"), t0))
        rec = _Recording((cam, label), base + ".mp4", base + ".jpg" if self.snapshot else None)
        ring = self._rings.get(cam, ())
        pre = [f for (t, f) in ring if t >= t0 - self.pre_s]
        self._active[(cam, label)] = rec
        self._put(("open", rec, pre), force=True)
        with self._cv:
            self._counts["clips_started"] += 1
        return rec

    def _put(self, item, force=False):
        with self._cv:
            if not force and len(self._q) >= self.queue_frames:
                self._counts["frames_dropped"] += 1
                return
            self._q.append(item)
            self._cv.notify()

    def close(self, timeout=10.0):
        # type: (float) -> None
        """Finish every open clip (no more post-roll) and stop the worker within ``timeout`` s."""
        for key, rec in list(self._active.items()):
            self._put(("close", rec), force=True)
        self._active.clear()
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join(max(0.0, timeout))
        self._rings.clear()

    def counters(self):
        # type: () -> Dict[str, int]
        with self._cv:
            c = {k: int(self._counts.get(k, 0)) for k in
                 ("clips_started", "clips_written", "clips_failed", "frames_written", "frames_dropped",
                  "unwritable", "disk_full", "write_errors")}
            c["queued"] = len(self._q)
            c["recording"] = len(self._active)
        return c

    def faults_by_camera(self):
        # type: () -> Dict[str, int]
        with self._cv:
            return dict(self._by_camera)

    # worker thread ---------------------------------------------------------------------------------
    def _run(self):
        while True:
            with self._cv:
                while not self._q and not self._closing:
                    self._cv.wait(0.5)
                if not self._q:
                    return
                item = self._q.popleft()
            try:
                getattr(self, "_do_" + item[0])(*item[1:])
            except Exception as e:  # never let the worker die: count and go on
                self._fail(item[1], "write_errors", "{}: {}".format(type(e).__name__, e))

    def _fail(self, rec, counter, message):
        if rec.failed:
            return
        rec.failed = True
        with self._cv:
            self._counts[counter] += 1
            self._counts["clips_failed"] += 1
            self._by_camera[rec.key[0]] += 1
        self.last_error = "{}: {}".format(rec.path, message)
        log.warning("clip not recorded: %s", self.last_error)
        if rec.writer is not None:
            try:
                rec.writer.release()
            except Exception:
                pass
            rec.writer = None

    @staticmethod
    def _counter_for(err):
        # type: (OSError) -> str
        if err.errno == errno.ENOSPC:
            return "disk_full"
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST):
            return "unwritable"
        return "write_errors"

    def _do_open(self, rec, pre):
        # type: (_Recording, List[np.ndarray]) -> None
        try:
            os.makedirs(os.path.dirname(rec.path), exist_ok=True)
        except OSError as e:
            return self._fail(rec, self._counter_for(e), "cannot create the directory: {}".format(e))
        if rec.snapshot and pre:
            self._write_snapshot(rec, pre[-1])
        for f in pre:
            self._do_frame(rec, f)

    def _write_snapshot(self, rec, frame):
        import cv2
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return self._fail(rec, "write_errors", "JPEG encoding failed")
        try:
            write_file(rec.snapshot, buf.tobytes())
        except OSError as e:
            self._fail(rec, self._counter_for(e), "snapshot: {}".format(e))

    def _do_frame(self, rec, frame):
        if rec.failed:
            return
        import cv2
        if rec.writer is None:
            h, w = frame.shape[:2]
            rec.size = (h, w)
            rec.writer = cv2.VideoWriter(rec.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not rec.writer.isOpened():
                rec.writer = None
                return self._fail(rec, self._probe_dir(rec.path), "OpenCV cannot open an mp4v writer")
        if frame.shape[:2] != rec.size:
            frame = cv2.resize(frame, (rec.size[1], rec.size[0]))
        rec.writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
        rec.frames += 1
        with self._cv:
            self._counts["frames_written"] += 1

    def _probe_dir(self, path):
        """Why a writer could not open: try a plain write next to it."""
        probe = path + ".probe"
        try:
            write_file(probe, b"x" * 4096)
            os.remove(probe)
        except OSError as e:
            return self._counter_for(e)
        return "write_errors"

    def _do_close(self, rec):
        # type: (_Recording) -> None
        if rec.failed:
            return
        if rec.writer is None:
            return self._fail(rec, "write_errors", "no frames reached the recorder")
        rec.writer.release()
        rec.writer = None
        ok, why = verify_clip(rec.path, rec.frames)
        if not ok:
            return self._fail(rec, self._probe_dir(rec.path), why)
        with self._cv:
            self._counts["clips_written"] += 1
        self.recent.append({"camera": rec.key[0], "label": rec.key[1], "clip": rec.path,
                            "snapshot": rec.snapshot, "frames": rec.frames})


def write_file(path, data):
    # type: (str, bytes) -> None
    """The file-write boundary of the recorder (ENOSPC and friends surface here as OSError)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def verify_clip(path, frames):
    # type: (str, int) -> Tuple[bool, str]
    """OpenCV's writer does not report a full disk: check the file decodes with all its frames."""
    import cv2
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return False, "the MP4 is missing or empty after writing (disk full?)"
    cap = cv2.VideoCapture(path)
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    if n < frames:
        return False, "the MP4 has {} of {} frames (disk full or write error)".format(n, frames)
    return True, ""
