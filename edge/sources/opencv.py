"""OpenCV file reader: the fallback where GStreamer / PyGObject is missing (files only).

Frames come out RGB, scaled to the requested size, with the container's timestamps; every frame
is decoded (a file never drops).
"""
import logging
import os
from typing import Optional, Tuple

from ..preprocess import resize_rgb
from .base import EndOfStream, Frame, Source, SourceError, now_ns

log = logging.getLogger("edge.sources")


class OpenCVFileSource(Source):
    kind = "opencv/file"
    live = False

    def __init__(self, path: str, size: Optional[Tuple[int, int]] = None, uri: str = ""):
        super().__init__(uri or path)
        self.path = path
        self.out_size = size          # (height, width) or None = keep
        self.cap = None

    def open(self) -> "OpenCVFileSource":
        import cv2
        if not os.path.isfile(self.path):
            raise SourceError(f"{self.path}: no such video file")
        self.cap = cv2.VideoCapture(self.path)
        if not self.cap.isOpened():
            self.cap.release()
            self.cap = None
            raise SourceError(f"{self.path}: not a video OpenCV can open")
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if fps > 0 else None
        return self

    def read(self, timeout: float = 1.0) -> Optional[Frame]:
        import cv2
        if self.cap is None:
            raise EndOfStream()
        t0 = now_ns()  # "capture" of a file frame = the time spent decoding it
        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            raise EndOfStream()
        pos_ms = float(self.cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
        n = self.stats.frames
        ts = n / self.fps if self.fps else pos_ms / 1000.0
        size = self.out_size or bgr.shape[:2]
        image = resize_rgb(bgr, size, bgr=True)
        self.size = image.shape[:2]
        self.stats.frames += 1
        return Frame(image, ts, n, t0, 0)

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
        self.cap = None
