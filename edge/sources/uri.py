"""Parse an input/output URI the way jetson-inference does, and redact credentials for logs.

Kinds (``SourceURI.kind``):

=========  ============================================  =====================================
kind       accepted forms                                notes
=========  ============================================  =====================================
v4l2       ``/dev/video0``, ``v4l2:///dev/video0``       USB/V4L2 camera (v4l2src), live
csi        ``csi://0``                                   MIPI CSI camera on a Jetson, live
rtsp       ``rtsp://[user:pass@]host[:port]/path``       network camera (rtspsrc), live
file       ``clip.mp4``, ``file:///abs/clip.avi``        decoded with decodebin, not live
test       ``test://`` ``test://?pattern=ball&fps=30``   videotestsrc is-live=true (or is-live=0)
gst        ``gst://<launch pipeline>``                   anything else, ends in our appsink
display    ``display://0``                               output only: a window
=========  ============================================  =====================================
"""
import os
import re
from dataclasses import dataclass, field
from typing import Dict
from urllib.parse import parse_qsl, unquote, urlsplit

KINDS = ("v4l2", "csi", "rtsp", "file", "test", "gst", "display")
LIVE_KINDS = ("v4l2", "csi", "rtsp", "test")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".mpg", ".mpeg", ".webm", ".m4v", ".flv", ".ts", ".h264")

URI_HELP = """\
input URI kinds:
  /dev/video0, v4l2:///dev/video0   V4L2 / USB camera (caps from the device config)
  csi://0                           MIPI CSI camera on a Jetson (nvarguscamerasrc)
  rtsp://user:pass@host:554/stream  network camera (credentials are never logged)
  clip.mp4, file:///data/clip.avi   video file, every frame decoded (no drops)
  test://?pattern=ball&width=640&height=480&fps=30
                                    GStreamer test source, live, YUY2 like a USB camera
                                    (&format=I420, &num-buffers=N to stop, &is-live=false)
  gst://videotestsrc ! video/x-raw,width=320,height=240
                                    any GStreamer pipeline; edge-run appends scaling + appsink
output URI kinds:
  out.mp4, out.avi                  annotated video file
  display://0                       window with the overlay (not with --headless)"""


class URIError(ValueError):
    """An input/output URI that cannot be understood; message is one line."""


@dataclass(frozen=True)
class SourceURI:
    kind: str
    location: str                      # device path, file path, host/path, sensor id, or pipeline
    params: Dict[str, str] = field(default_factory=dict)
    user: str = ""
    password: str = ""
    raw: str = ""

    @property
    def live(self) -> bool:
        if self.kind == "test":
            return self.params.get("is-live", "true").lower() not in ("0", "false", "no")
        return self.kind in LIVE_KINDS

    @property
    def redacted(self) -> str:
        return redact(self.raw)


_CRED_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*)(?::(?P<pw>[^@/\s]*))?@")
_PROP_RE = re.compile(r"(?P<k>\b(?:user-pw|proxy-pw|password|passwd)\s*=\s*)(?P<v>\"[^\"]*\"|'[^']*'|[^\s!]+)")


def redact(text: str) -> str:
    """Mask credentials in URIs (``rtsp://user:***@host``) and pipeline properties (``user-pw=***``).

    Apply to anything that may reach a log, the console or a JSON file."""
    if not text:
        return text

    def cred(m):
        user = m.group("user")
        if m.group("pw") is not None:
            return f"{m.group('scheme')}{user}:***@"
        return f"{m.group('scheme')}***@" if user else m.group(0)

    text = _CRED_RE.sub(cred, text)

    return _PROP_RE.sub(lambda m: m.group("k") + "***", text)


def parse_uri(uri: str) -> SourceURI:
    """Classify ``uri`` (see the module table). Raises URIError for empty/unknown schemes."""
    if not uri or not uri.strip():
        raise URIError("empty input URI")
    uri = uri.strip()
    if uri.startswith("gst://"):
        pipeline = uri[len("gst://"):].strip()
        if not pipeline:
            raise URIError("gst:// needs a pipeline, e.g. gst://videotestsrc is-live=true")
        return SourceURI("gst", pipeline, raw=uri)
    if re.fullmatch(r"/dev/video\d+", uri):
        return SourceURI("v4l2", uri, raw=uri)
    if "://" not in uri:  # plain path
        return SourceURI("file", os.path.expanduser(uri), raw=uri)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if scheme == "v4l2":
        dev = unquote(parts.netloc + parts.path) or "/dev/video0"
        if not dev.startswith("/"):
            dev = "/dev/" + dev if dev.startswith("video") else f"/dev/video{dev}"
        return SourceURI("v4l2", dev, params, raw=uri)
    if scheme == "csi":
        sensor = (parts.netloc or parts.path.strip("/") or "0")
        if not sensor.isdigit():
            raise URIError(f"csi://{sensor}: sensor id must be a number, e.g. csi://0")
        return SourceURI("csi", sensor, params, raw=uri)
    if scheme in ("rtsp", "rtsps", "rtspt"):
        host = parts.hostname or ""
        if not host:
            raise URIError(f"{redact(uri)}: rtsp URI needs a host")
        netloc = host + (f":{parts.port}" if parts.port else "")
        clean = f"{scheme}://{netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        return SourceURI("rtsp", clean, params, user=unquote(parts.username or ""),
                         password=unquote(parts.password or ""), raw=uri)
    if scheme == "file":
        path = unquote(parts.netloc + parts.path) if parts.netloc not in ("", "localhost") else unquote(parts.path)
        return SourceURI("file", path, params, raw=uri)
    if scheme == "test":
        return SourceURI("test", parts.netloc or "", params, raw=uri)
    if scheme == "display":
        return SourceURI("display", parts.netloc or "0", params, raw=uri)
    raise URIError(f"{redact(uri)}: unknown URI scheme {scheme!r} (known: v4l2, csi, rtsp, file, test, gst, "
                   f"display; or a /dev/videoN or file path)")


def output_kind(uri: str) -> str:
    """'display' or 'file' for an OUTPUT argument; URIError otherwise."""
    u = parse_uri(uri)
    if u.kind == "display":
        return "display"
    if u.kind == "file":
        if not u.location.lower().endswith((".mp4", ".avi", ".mkv", ".mov")):
            raise URIError(f"{uri}: output video must end in .mp4, .avi, .mkv or .mov (or use display://0)")
        return "file"
    raise URIError(f"{redact(uri)}: output must be a video file path or display://0")
