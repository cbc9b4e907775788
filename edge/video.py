"""Reading clips from video files (AVI/MP4/MPEG-1 ...) with OpenCV, shared by training and device.

Decoding strategy: **sequential grab/skip**, not a seek per sampled frame. The paper seeks
(``CAP_PROP_POS_FRAMES``) before each of its 20 reads; with inter-frame codecs (MPEG-4 part 2,
H.264) every seek decodes again from the previous keyframe, so a clip costs up to 20 x GOP decodes
and some backends land on the wrong frame. Reading forward once with ``grab()`` (decode, no colour
conversion) and ``retrieve()`` only for the wanted frames decodes each frame at most once, returns
exactly the requested indices, and measures 3x+ faster on UCF101 clips (``benchmarks/bench_data.py``).
Reading stops after the last wanted frame.

When the container's frame count is wrong (common in AVI/MPEG-1), the true count is learned while
reading: if the stream ends early, indices are recomputed for the real count and the clip is read
again (rare).
"""
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from .preprocess import InputSpec, normalize, resize_rgb
from .sampling import PAD, SHORT_POLICIES, SKIP, paper_indices, pad_indices


class VideoError(Exception):
    """A file that cannot be used as a clip; ``reason`` is a short machine-friendly tag."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    path: str
    frame_count: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclass
class Clip:
    """A sampled clip: ``frames`` (N, H, W, 3) float32 in [0, 1] (or uint8 if asked), the source
    frame ``indices`` used, the video's ``info``, and whether it was ``padded``."""

    frames: np.ndarray
    indices: List[int]
    info: VideoInfo
    padded: bool = False


def _cv2():
    try:
        import cv2
    except ImportError as e:  # pragma: no cover
        raise RuntimeError("opencv-python-headless is required to read video files: "
                           "pip install opencv-python-headless") from e
    return cv2


def _open(path: str):
    cv2 = _cv2()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoError("missing", f"{path}: no such file")
    if os.path.isdir(path):
        raise VideoError("not-a-file", f"{path}: is a directory")
    if os.path.getsize(path) == 0:
        raise VideoError("empty-file", f"{path}: zero-byte file")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        # A file name that is not valid UTF-8 (lone surrogates from os.fsdecode) crashes
        # cv2.VideoCapture with a segmentation fault (OpenCV 5.0): refuse it cleanly instead.
        raise VideoError("bad-name", f"{path.encode('utf-8', 'backslashreplace').decode()}: "
                                     "file name is not valid UTF-8; OpenCV cannot open it") from None
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        cap.release()
        raise VideoError("unreadable", f"{path}: not a video OpenCV can open")
    return cap


def probe(path: str) -> VideoInfo:
    """Frame count, fps and size as the container reports them."""
    cv2 = _cv2()
    cap = _open(path)
    try:
        return _info(cap, path)
    finally:
        cap.release()


def _info(cap, path: str) -> VideoInfo:
    cv2 = _cv2()
    return VideoInfo(
        path=path,
        frame_count=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
        fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )


def _read_indices(cap, wanted: List[int], size: Tuple[int, int]) -> Tuple[List[np.ndarray], int]:
    """Read forward once; return resized RGB uint8 frames for ``wanted`` (sorted, may repeat)
    and how many frames were decoded before stopping."""
    out: List[np.ndarray] = []
    pos = 0
    last = None
    for idx in wanted:
        if idx == pos - 1 and last is not None:  # repeated index (padding / frame-rate change)
            out.append(last)
            continue
        while pos < idx:
            if not cap.grab():
                return out, pos
            pos += 1
        ok = cap.grab()
        if not ok:
            return out, pos
        pos += 1
        ok, frame = cap.retrieve()
        if not ok or frame is None:
            return out, pos
        last = resize_rgb(frame, size, bgr=True)
        out.append(last)
    return out, pos


def _count_frames(cap) -> int:
    n = 0
    while cap.grab():
        n += 1
    return n


def read_clip(path: str, n_frames: int = 20, size: Tuple[int, int] = (64, 64),
              short_policy: str = PAD, as_uint8: bool = False,
              indices: Optional[List[int]] = None, min_frames: int = 1) -> Clip:
    """Sample ``n_frames`` evenly over the whole video (the paper's indices), resized to
    ``size`` = (height, width), RGB, float32 in [0, 1] (uint8 with ``as_uint8``).

    ``short_policy``: a video with fewer than ``n_frames`` frames is padded by repeating its last
    frame (``"pad"``) or rejected with ``VideoError("too-short")`` (``"skip"``). ``indices``
    overrides the sampling (e.g. augmentation's frame-rate change). Raises ``VideoError`` with a
    reason tag for files that cannot give a clip.
    """
    if short_policy not in SHORT_POLICIES:
        raise ValueError(f"short_policy must be one of {SHORT_POLICIES}, got {short_policy!r}")
    cap = _open(path)
    try:
        info = _info(cap, path)
        count = info.frame_count
        if count <= 0:  # container without a count: learn it by decoding once
            count = _count_frames(cap)
            cap.release()
            cap = _open(path)
            info = VideoInfo(path, count, info.fps, info.width, info.height)
        want = list(indices) if indices is not None else paper_indices(count, n_frames)
        frames, decoded = _read_indices(cap, sorted(want), size)
        if len(frames) < len(want):
            # The container over-reported its frame count: resample for the real one.
            real = decoded
            cap.release()
            if real <= 0:
                raise VideoError("no-frames", f"{path}: no decodable frames (corrupt or truncated)")
            info = VideoInfo(path, real, info.fps, info.width, info.height)
            want = paper_indices(real, n_frames) if indices is None else [min(i, real - 1) for i in want]
            cap = _open(path)
            frames, _ = _read_indices(cap, sorted(want), size)
            if not frames:
                raise VideoError("no-frames", f"{path}: no decodable frames (corrupt or truncated)")
            want = sorted(want)[: len(frames)]
        if len(frames) < min_frames:
            raise VideoError("no-frames", f"{path}: only {len(frames)} decodable frames")
        padded = False
        if len(frames) < n_frames:
            if short_policy == SKIP:
                raise VideoError("too-short", f"{path}: {len(frames)} frames < {n_frames} needed")
            want = pad_indices(want, n_frames)
            frames = frames + [frames[-1]] * (n_frames - len(frames))
            padded = True
        arr = np.stack(frames[:n_frames])
        if not as_uint8:
            arr = normalize(arr, InputSpec(frames=n_frames, height=size[0], width=size[1]))
        return Clip(frames=arr, indices=sorted(want)[:n_frames], info=info, padded=padded)
    finally:
        cap.release()
