"""Outputs of a run: JSON lines, an annotated video file or window, and the end-of-run summary.

JSONL: one object per prediction, flushed line by line (a crash or Ctrl-C loses nothing):

    {"timestamp": 3.2, "wall_time": 1795591455.87, "frame": 96, "label": "Archery", "score": 0.91,
     "top": [{"label": "Archery", "score": 0.91}, ...], "clip": [0, 96], "epoch": 0,
     "latency_ms": {"capture": 0.4, "preprocess": 0.1, "inference": 1.9, "postprocess": 0.05,
                    "capture_to_prediction": 2.6}, "dropped": 0, "partial": false}

``partial`` marks the one prediction made at the end of a file shorter than one clip span.

The overlay (video file via cv2.VideoWriter, or ``display://0`` via a GStreamer window) shows the
label, score and processed FPS on every frame.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, TextIO

import numpy as np

from .stream import Prediction


def prediction_record(pred: Prediction, latency_ms: Dict[str, float], dropped: int, epoch: int,
                      wall_time: Optional[float] = None) -> dict:
    """One JSONL line. ``timestamp``: stream time (live: capture clock since the first frame, files:
    PTS); ``wall_time``: UNIX time of the capture, for correlating with other logs."""
    return {
        "timestamp": round(float(pred.timestamp_s), 6),
        "wall_time": round(float(wall_time), 6) if wall_time is not None else None,
        "frame": int(pred.frame_index),
        "label": pred.label,
        "score": round(float(pred.top[0][1]), 6) if pred.top else None,
        "top": [{"label": lab, "score": round(float(s), 6)} for lab, s in pred.top],
        "clip": [int(pred.clip_indices[0]), int(pred.clip_indices[-1])] if pred.clip_indices else [],
        "epoch": int(epoch),
        "latency_ms": {k: round(float(v), 3) for k, v in latency_ms.items()},
        "dropped": int(dropped),
        "partial": bool(pred.partial),
    }


class JsonlSink:
    def __init__(self, path: str):
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        self.path = path
        self._f: Optional[TextIO] = open(path, "w", buffering=1)  # line-buffered
        self.lines = 0

    def write(self, record: dict) -> None:
        if self._f is None:
            return
        self._f.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.lines += 1

    def close(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None


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
    text = f"{label} {score:.2f}" if label is not None and score is not None else "..."
    for t, y in ((text, int(18 * scale) + 4), (f"{fps:.1f} FPS {extra}".strip(), h - 6)):
        (tw, th), base = cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        cv2.rectangle(img, (2, y - th - 3), (6 + tw, y + base - 1), (0, 0, 0), -1)
        cv2.putText(img, t, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return img


class VideoSink:
    """Annotated video file: mp4v for .mp4/.mov/.mkv, MJPG for .avi (both in stock OpenCV)."""

    def __init__(self, path: str, fps: float, size_hw):
        import cv2

        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fourcc = "MJPG" if path.lower().endswith(".avi") else "mp4v"
        h, w = size_hw
        self._w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), float(fps or 30.0), (int(w), int(h)))
        if not self._w.isOpened():
            raise OSError(f"{path}: OpenCV cannot write this video (codec {fourcc})")
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


class DisplaySink:
    """A window (``display://0``) through GStreamer: appsrc ! videoconvert ! autovideosink."""

    def __init__(self, fps: float, size_hw):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise OSError("display://0 needs a desktop session (DISPLAY/WAYLAND_DISPLAY not set); "
                          "use --headless, or write the overlay to a file (OUTPUT out.mp4)")
        from .sources.gstreamer import _gst

        Gst = _gst()
        h, w = size_hw
        n = max(1, int(round(fps or 30)))
        self.pipeline = Gst.parse_launch(
            f"appsrc name=src is-live=true format=time do-timestamp=true "
            f"caps=video/x-raw,format=BGR,width={w},height={h},framerate={n}/1 ! "
            f"queue max-size-buffers=2 leaky=downstream ! videoconvert ! autovideosink sync=false")
        self.src = self.pipeline.get_by_name("src")
        self.pipeline.set_state(Gst.State.PLAYING)
        self.Gst = Gst
        self.size = (h, w)

    def write(self, bgr: np.ndarray) -> None:
        buf = self.Gst.Buffer.new_wrapped(np.ascontiguousarray(bgr).tobytes())
        self.src.emit("push-buffer", buf)

    def close(self) -> None:
        if self.pipeline is not None:
            self.src.emit("end-of-stream")
            self.pipeline.set_state(self.Gst.State.NULL)
            self.pipeline = None


def format_summary(s: dict) -> str:
    """Human-readable end-of-run summary (the JSON summary has the same numbers)."""
    lines = [f"edge-run summary: {s.get('source', {}).get('uri', '')}",
             f"  frames {s['frames']}  predictions {s['predictions']}  dropped {s['dropped']} "
             f"({s['dropped_pct']:.2f}%)  reconnects {s['reconnects']}  fps {s['fps']:.2f}  "
             f"elapsed {s['elapsed_s']:.1f}s  stopped: {s['stop_reason']}"]
    lat = s.get("latency_ms", {})
    if lat:
        lines.append(f"  {'stage':<22}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean':>9}{'n':>8}")
        for stage, st in lat.items():
            if st.get("count"):
                lines.append(f"  {stage:<22}{st['p50_ms']:>9.2f}{st['p95_ms']:>9.2f}{st['p99_ms']:>9.2f}"
                             f"{st['mean_ms']:>9.2f}{st['count']:>8}")
    if s.get("last_label"):
        lines.append(f"  last prediction: {s['last_label']}")
    return "\n".join(lines)


def write_summary(path: str, summary: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
