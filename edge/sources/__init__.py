"""Video sources chosen from a URI (jetson-inference style): cameras, RTSP, files, test patterns.

``open_source(uri, config)`` parses the URI (``uri.parse_uri``), checks what can be checked before
GStreamer starts (a missing camera is a ``CameraNotFound`` naming the device and how to list
cameras), builds the pipeline string (``pipelines.build_pipeline``) and returns an opened
``Source``. ``SourceConfig`` is made of the device config's own sections
(``SourceConfig.from_device(cfg, width, height)``). Without GStreamer/PyGObject, files fall back to OpenCV (said once, in the log and
stderr); live sources need GStreamer.
"""
import logging
import os
import sys
from typing import Optional

from .base import CameraNotFound, EndOfStream, Frame, Source, SourceError, SourceStats
from .pipelines import READERS, SourceConfig, build_pipeline, candidates
from .uri import URI_HELP, SourceURI, URIError, parse_uri, redact

log = logging.getLogger("edge.sources")

LIST_CAMERAS = "list cameras with `v4l2-ctl --list-devices` (package v4l-utils) or `ls /dev/video*`"
_FALLBACK_SAID = False


def check_uri(u: SourceURI) -> None:
    """Errors that need no GStreamer: missing camera device or file."""
    if u.kind == "v4l2" and not os.path.exists(u.location):
        raise CameraNotFound(f"camera {u.location} not found: {LIST_CAMERAS}")
    if u.kind == "file" and not os.path.isfile(u.location):
        raise SourceError(f"{u.location}: no such video file")


def _say_fallback(reason: str) -> None:
    global _FALLBACK_SAID
    if not _FALLBACK_SAID:
        _FALLBACK_SAID = True
        msg = f"GStreamer unavailable ({reason}); reading files with OpenCV instead"
        log.warning(msg)
        print(f"edge-run: {msg}", file=sys.stderr)


def open_source(uri: str, config: Optional[SourceConfig] = None, start: bool = True) -> Source:
    """Build (and with ``start``, open) the Source for ``uri``. Raises URIError / SourceError."""
    from . import gstreamer

    config = config or SourceConfig()
    if config.reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, got {config.reader!r}")
    u = parse_uri(uri)
    if u.kind == "display":
        raise URIError("display:// is an output, not an input")
    check_uri(u)
    size = config.size
    if u.kind == "file" and config.reader == "opencv":
        src = _opencv(u, size)  # type: Source
    elif config.reader != "opencv" and gstreamer.gst_available():
        if u.kind == "csi" and not gstreamer.has_element("nvarguscamerasrc"):
            raise SourceError(f"{u.redacted}: CSI cameras need nvarguscamerasrc (NVIDIA Jetson with JetPack); "
                              f"on other boards use a V4L2 camera (/dev/video0)")
        src = gstreamer.GstSource(u, config)
    elif u.kind == "file" and config.reader == "auto":
        _say_fallback("PyGObject/GStreamer not importable")
        src = _opencv(u, size)
    else:
        raise SourceError(f"{u.redacted}: {u.kind} sources need GStreamer. {gstreamer.GST_HINT}")
    return src.open() if start else src


def _opencv(u: SourceURI, size):
    from .opencv import OpenCVFileSource
    return OpenCVFileSource(u.location, size=size, uri=u.redacted)


__all__ = ["open_source", "SourceConfig", "Source", "Frame", "SourceStats", "SourceError", "CameraNotFound",
           "EndOfStream", "build_pipeline", "candidates", "parse_uri", "redact", "SourceURI", "URIError",
           "URI_HELP", "check_uri", "LIST_CAMERAS"]
