"""GStreamer pipeline strings, built by pure functions (tests check them without GStreamer).

Every pipeline ends the same way:

    ... ! videoscale ! video/x-raw,width=W,height=H ! videoconvert ! video/x-raw,format=RGB
        ! appsink max-buffers=1 drop=true sync=false name=edge_sink      (live sources)
        ! appsink max-buffers=4 drop=false sync=false name=edge_sink     (files)

*Scale before converting*: the camera frame is shrunk in its native format (YUY2/I420/NV12) and
only the small frame is converted to RGB, about 10x cheaper than converting 640x480 first.
Live sources keep at most one frame in the appsink and drop older ones, so latency never builds up
(drops are counted from buffer offsets/PTS, see ``gstreamer.DropCounter``). Files keep a small
bounded queue without dropping: the decoder waits for the consumer and no frame is lost.

A device config may replace any source part with a template (``DeviceConfig.pipelines``), using
the placeholders listed in ``PLACEHOLDERS``; ``{scale}`` expands to the generic scale+convert chain.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional

from .uri import SourceURI, URIError

SINK_NAME = "edge_sink"
LIVE_SINK = f"appsink max-buffers=1 drop=true sync=false name={SINK_NAME}"
FILE_SINK = f"appsink max-buffers=4 drop=false sync=false name={SINK_NAME}"

# Source parts (everything before the appsink). ``{scale}`` = scale + RGB conversion chain.
DEFAULT_TEMPLATES: Dict[str, str] = {
    "v4l2": "v4l2src device={device} do-timestamp=true ! {camera_caps} ! {decode}{scale}",
    "csi": ("nvarguscamerasrc sensor-id={sensor} ! "
            "video/x-raw(memory:NVMM),width={camera_width},height={camera_height},framerate={fps}/1,format=NV12 ! "
            "nvvidconv ! video/x-raw,width={width},height={height},format=BGRx ! "
            "videoconvert ! video/x-raw,format=RGB"),
    "rtsp": "rtspsrc location={location} latency={latency} protocols={protocols}{auth} ! decodebin ! {scale}",
    "file": "filesrc location={location} ! decodebin ! {scale}",
    # YUY2 by default, like a USB camera, so the test source exercises the same scale-then-convert chain
    "test": ("videotestsrc is-live={is_live} pattern={pattern}{num_buffers} ! "
             "video/x-raw,format={format},width={camera_width},height={camera_height},framerate={fps}/1 ! {scale}"),
}
PLACEHOLDERS = ("device", "sensor", "location", "latency", "protocols", "auth", "camera_caps", "decode",
                "camera_width", "camera_height", "fps", "width", "height", "scale", "is_live", "pattern",
                "num_buffers", "format")
LIVE_ELEMENTS = ("v4l2src", "nvarguscamerasrc", "nvv4l2camerasrc", "rtspsrc", "udpsrc", "souphttpsrc",
                 "libcamerasrc", "ksvideosrc", "avfvideosrc", "rpicamsrc", "is-live=true", "is-live=1")


@dataclass(frozen=True)
class PipelineSettings:
    """What the pipeline builders need (filled from the device config + CLI flags).

    width/height:         frame size delivered to Python (the pipeline scales to it)
    camera_*:             caps asked from the camera / test source (0 = let the device choose)
    camera_format:        "" (raw, any), "YUY2", "NV12", ... or "MJPG" (adds jpegdec)
    rtsp_latency_ms:      rtspsrc jitterbuffer latency
    rtsp_protocols:       "tcp" (robust through NAT/Wi-Fi) or "udp"
    scale_method:         videoscale method (nearest, bilinear, 4-tap, lanczos ...)
    templates:            per-kind overrides of DEFAULT_TEMPLATES
    """

    width: int = 128
    height: int = 128
    camera_width: int = 640
    camera_height: int = 480
    camera_fps: int = 30
    camera_format: str = ""
    rtsp_latency_ms: int = 200
    rtsp_protocols: str = "tcp"
    scale_method: str = "bilinear"
    templates: Mapping[str, str] = field(default_factory=dict)


def quote(value: str) -> str:
    """Quote a property value for gst_parse_launch (paths with spaces, quotes, backslashes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scale_chain(width: int, height: int, method: str = "bilinear") -> str:
    """Scale in the native format first, then convert only the small frame to RGB."""
    m = f" method={method}" if method and method != "bilinear" else ""
    return (f"videoscale{m} ! video/x-raw,width={width},height={height} ! "
            f"videoconvert ! video/x-raw,format=RGB")


def appsink(live: bool) -> str:
    return LIVE_SINK if live else FILE_SINK


def camera_caps(s: PipelineSettings) -> tuple:
    """(caps, decode) for a V4L2 camera: raw caps, or image/jpeg + jpegdec for MJPG cameras."""
    dims = []
    if s.camera_width and s.camera_height:
        dims += [f"width={s.camera_width}", f"height={s.camera_height}"]
    if s.camera_fps:
        dims.append(f"framerate={s.camera_fps}/1")
    fmt = (s.camera_format or "").upper()
    if fmt in ("MJPG", "MJPEG", "JPEG"):
        return ",".join(["image/jpeg"] + dims), "jpegdec ! "
    if fmt:
        dims.append(f"format={fmt}")
    return ",".join(["video/x-raw"] + dims), ""


def _fill(template: str, kind: str, values: Dict[str, object]) -> str:
    try:
        return template.format(**values)
    except KeyError as e:
        raise URIError(f"pipeline template for {kind!r} uses unknown placeholder {{{e.args[0]}}} "
                       f"(known: {', '.join(PLACEHOLDERS)})") from None


def source_part(uri: SourceURI, s: PipelineSettings) -> str:
    """The pipeline up to (not including) the appsink, for one parsed URI."""
    caps, decode = camera_caps(s)
    values: Dict[str, object] = dict(
        width=s.width, height=s.height, camera_width=s.camera_width, camera_height=s.camera_height,
        fps=s.camera_fps, scale=scale_chain(s.width, s.height, s.scale_method), camera_caps=caps,
        decode=decode, latency=s.rtsp_latency_ms, protocols=s.rtsp_protocols, auth="", device="",
        sensor="0", location="", is_live="true", pattern="ball", num_buffers="", format="YUY2")
    if uri.kind == "gst":
        if "appsink" in uri.location:
            return uri.location  # user supplied the sink: taken as is (must be named edge_sink or be the only one)
        return f"{uri.location} ! {values['scale']}"
    if uri.kind == "v4l2":
        values["device"] = quote(uri.location)
    elif uri.kind == "csi":
        values["sensor"] = uri.location
    elif uri.kind == "rtsp":
        values["location"] = quote(uri.location)
        values["latency"] = int(uri.params.get("latency", s.rtsp_latency_ms))
        values["protocols"] = uri.params.get("protocols", s.rtsp_protocols)
        if uri.user:
            values["auth"] = f" user-id={quote(uri.user)} user-pw={quote(uri.password)}"
    elif uri.kind == "file":
        values["location"] = quote(uri.location)
    elif uri.kind == "test":
        p = uri.params
        values["pattern"] = p.get("pattern", "ball")
        values["camera_width"] = int(p.get("width", s.camera_width or 640))
        values["camera_height"] = int(p.get("height", s.camera_height or 480))
        values["fps"] = int(float(p.get("fps", s.camera_fps or 30)))
        values["is_live"] = "true" if uri.live else "false"
        values["format"] = p.get("format", "YUY2")
        if p.get("num-buffers"):
            values["num_buffers"] = f" num-buffers={int(p['num-buffers'])}"
    else:
        raise URIError(f"{uri.redacted}: not an input source kind ({uri.kind})")
    template = dict(DEFAULT_TEMPLATES, **dict(s.templates)).get(uri.kind)
    return _fill(template, uri.kind, values)


def guess_live(uri: SourceURI) -> bool:
    """Live-ness before the pipeline runs (gst:// is guessed from its elements; the GStreamer
    source checks the real answer, NO_PREROLL, once playing and fixes the appsink)."""
    if uri.kind == "gst":
        return any(e in uri.location for e in LIVE_ELEMENTS)
    return uri.live


def build_pipeline(uri: SourceURI, s: Optional[PipelineSettings] = None) -> str:
    """Full gst-launch pipeline string for ``uri`` ending in the appsink named ``edge_sink``."""
    s = s or PipelineSettings()
    part = source_part(uri, s)
    if uri.kind == "gst" and "appsink" in uri.location:
        return part
    return f"{part} ! {appsink(guess_live(uri))}"
