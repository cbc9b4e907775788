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

Cameras: ``camera.format`` is a preference list (``raw,MJPG``); ``candidates()`` gives one pipeline
per entry and the GStreamer source keeps the first that negotiates (a UVC webcam that offers
1280x720@30 only as MJPG fails the raw caps and runs through ``camera.mjpeg_decoder``).

RTSP: only the session's video stream is linked: ``application/x-rtp,media=video`` after rtspsrc
(works on every GStreamer version; the source also answers rtspsrc's ``select-stream`` on 1.18+ so
audio is never even set up). The decoder is plugged from the stream's caps (H.264, H.265, MJPEG).

A device config may replace any source part with a template (``DeviceConfig.pipelines``), using
the placeholders listed in ``PLACEHOLDERS``; ``{scale}`` expands to the generic scale+convert chain.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..config import CameraConfig, CaptureConfig, DeviceConfig, ReconnectConfig, RtspConfig
from .uri import SourceURI, URIError

SINK_NAME = "edge_sink"
LIVE_SINK = "appsink max-buffers=1 drop=true sync=false name={}".format(SINK_NAME)
FILE_SINK = "appsink max-buffers=4 drop=false sync=false name={}".format(SINK_NAME)
RTSP_VIDEO_ONLY = "application/x-rtp,media=video"
MJPG_NAMES = ("MJPG", "MJPEG", "JPEG")
DEFAULT_CAMERA_FORMATS = ("raw", "MJPG")

# Source parts (everything before the appsink). ``{scale}`` = scale + RGB conversion chain.
DEFAULT_TEMPLATES = {
    "v4l2": "v4l2src device={device} do-timestamp=true ! {camera_caps} ! {decode}{scale}",
    "csi": ("nvarguscamerasrc sensor-id={sensor} ! "
            "video/x-raw(memory:NVMM),width={camera_width},height={camera_height},framerate={fps}/1,format=NV12 ! "
            "nvvidconv ! video/x-raw,width={width},height={height},format=BGRx ! "
            "videoconvert ! video/x-raw,format=RGB"),
    "rtsp": ("rtspsrc location={location} latency={latency} protocols={protocols}{auth} ! "
             + RTSP_VIDEO_ONLY + " ! decodebin ! {scale}"),
    "file": "filesrc location={location} ! decodebin ! {scale}",
    # YUY2 by default, like a USB camera, so the test source exercises the same scale-then-convert chain
    "test": ("videotestsrc is-live={is_live} pattern={pattern}{num_buffers} ! "
             "video/x-raw,format={format},width={camera_width},height={camera_height},framerate={fps}/1 ! {scale}"),
}  # type: Dict[str, str]
PLACEHOLDERS = ("device", "sensor", "location", "latency", "protocols", "auth", "camera_caps", "decode",
                "camera_width", "camera_height", "fps", "width", "height", "scale", "is_live", "pattern",
                "num_buffers", "format")
LIVE_ELEMENTS = ("v4l2src", "nvarguscamerasrc", "nvv4l2camerasrc", "rtspsrc", "udpsrc", "souphttpsrc",
                 "libcamerasrc", "ksvideosrc", "avfvideosrc", "rpicamsrc", "is-live=true", "is-live=1")
READERS = ("auto", "gstreamer", "opencv")


@dataclass(frozen=True)
class SourceConfig:
    """What a source needs, as the device config's own sections (no hand-copied twins).

    camera:    caps and format preference for V4L2 cameras, size/fps for test and CSI sources
    capture:   the size delivered to Python (width/height must be resolved here: > 0)
    rtsp:      rtspsrc latency and transport
    reconnect: backoff, stall, start and teardown deadlines for live sources
    templates: per-kind overrides of DEFAULT_TEMPLATES (``DeviceConfig.pipelines``)
    reader:    auto (GStreamer, OpenCV for files when GStreamer is missing), gstreamer, or opencv
    """

    camera: CameraConfig = field(default_factory=CameraConfig)
    capture: CaptureConfig = field(default_factory=lambda: CaptureConfig(width=128, height=128))
    rtsp: RtspConfig = field(default_factory=RtspConfig)
    reconnect: ReconnectConfig = field(default_factory=ReconnectConfig)
    templates: Dict[str, str] = field(default_factory=dict)
    reader: str = "auto"

    @classmethod
    def from_device(cls, cfg: DeviceConfig, width: int, height: int, reader: str = "auto") -> "SourceConfig":
        """The sections of a loaded device config (CLI flags already merged into it by the runner),
        with the capture size resolved (the runner decides it from the model input)."""
        import dataclasses
        capture = dataclasses.replace(cfg.capture, width=width, height=height)
        return cls(cfg.camera, capture, cfg.rtsp, cfg.reconnect, dict(cfg.pipelines), reader)

    @classmethod
    def sized(cls, width: int, height: int, **sections) -> "SourceConfig":
        """Defaults delivering ``width`` x ``height`` frames (tests, benchmarks)."""
        return cls(capture=CaptureConfig(width=width, height=height), **sections)

    @property
    def size(self) -> Tuple[int, int]:
        """(height, width) delivered to Python."""
        return self.capture.height, self.capture.width


def quote(value: str) -> str:
    """Quote a property value for gst_parse_launch (paths with spaces, quotes, backslashes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scale_chain(width: int, height: int, method: str = "bilinear") -> str:
    """Scale in the native format first, then convert only the small frame to RGB."""
    m = " method={}".format(method) if method and method != "bilinear" else ""
    return ("videoscale{} ! video/x-raw,width={},height={} ! "
            "videoconvert ! video/x-raw,format=RGB".format(m, width, height))


def appsink(live: bool) -> str:
    return LIVE_SINK if live else FILE_SINK


def camera_formats(camera: CameraConfig) -> List[str]:
    """The formats to try, in order: ``raw``, raw fourccs (``YUY2`` ...) or ``MJPG``."""
    out = []  # type: List[str]
    for item in (camera.format or ",".join(DEFAULT_CAMERA_FORMATS)).split(","):
        f = item.strip()
        f = "MJPG" if f.upper() in MJPG_NAMES else ("raw" if f.lower() in ("raw", "any") else f.upper())
        if f and f not in out:
            out.append(f)
    return out or list(DEFAULT_CAMERA_FORMATS)


def camera_caps(camera: CameraConfig, fmt: str) -> Tuple[str, str]:
    """(caps, decode) for one camera format: raw caps, or image/jpeg + the MJPG decoder chain."""
    dims = []
    if camera.width and camera.height:
        dims += ["width={}".format(camera.width), "height={}".format(camera.height)]
    if camera.fps:
        dims.append("framerate={}/1".format(camera.fps))
    if fmt.upper() in MJPG_NAMES:
        return ",".join(["image/jpeg"] + dims), (camera.mjpeg_decoder or "jpegdec").strip() + " ! "
    if fmt and fmt.lower() != "raw":
        dims.append("format={}".format(fmt))
    return ",".join(["video/x-raw"] + dims), ""


def describe_format(camera: CameraConfig, fmt: str) -> str:
    """``MJPG 1280x720@30`` (for logs and errors)."""
    size = "{}x{}".format(camera.width, camera.height) if camera.width and camera.height else "any size"
    return "{} {}{}".format(fmt, size, "@{}".format(camera.fps) if camera.fps else "")


def _fill(template: str, kind: str, values: Dict[str, object]) -> str:
    try:
        return template.format(**values)
    except KeyError as e:
        raise URIError("pipeline template for {!r} uses unknown placeholder {{{}}} (known: {})".format(
            kind, e.args[0], ", ".join(PLACEHOLDERS))) from None


def _base_values(s: SourceConfig, fmt: str) -> Dict[str, object]:
    cam, cap = s.camera, s.capture
    caps, decode = camera_caps(cam, fmt)
    return dict(
        width=cap.width, height=cap.height, camera_width=cam.width, camera_height=cam.height,
        fps=cam.fps, scale=scale_chain(cap.width, cap.height, cap.scale_method), camera_caps=caps,
        decode=decode, latency=s.rtsp.latency_ms, protocols=s.rtsp.protocols, auth="", device="",
        sensor="0", location="", is_live="true", pattern="ball", num_buffers="", format="YUY2")


def _uri_values(uri: SourceURI, s: SourceConfig, values: Dict[str, object]) -> None:
    """Fill the placeholders that come from the URI (in place)."""
    if uri.kind == "v4l2":
        values["device"] = quote(uri.location)
    elif uri.kind == "csi":
        values["sensor"] = uri.location
    elif uri.kind == "rtsp":
        values["location"] = quote(uri.location)
        values["latency"] = int(uri.params.get("latency", s.rtsp.latency_ms))
        values["protocols"] = uri.params.get("protocols", s.rtsp.protocols)
        if uri.user:
            values["auth"] = " user-id={} user-pw={}".format(quote(uri.user), quote(uri.password))
    elif uri.kind == "file":
        values["location"] = quote(uri.location)
    elif uri.kind == "test":
        p = uri.params
        values["pattern"] = p.get("pattern", "ball")
        values["camera_width"] = int(p.get("width", s.camera.width or 640))
        values["camera_height"] = int(p.get("height", s.camera.height or 480))
        values["fps"] = int(float(p.get("fps", s.camera.fps or 30)))
        values["is_live"] = "true" if uri.live else "false"
        values["format"] = p.get("format", "YUY2")
        if p.get("num-buffers"):
            values["num_buffers"] = " num-buffers={}".format(int(p["num-buffers"]))
    else:
        raise URIError("{}: not an input source kind ({})".format(uri.redacted, uri.kind))


def source_part(uri: SourceURI, s: SourceConfig, fmt: Optional[str] = None) -> str:
    """The pipeline up to (not including) the appsink, for one parsed URI and camera format
    (default: the first of ``camera.format``)."""
    values = _base_values(s, fmt or camera_formats(s.camera)[0])
    if uri.kind == "gst":
        if "appsink" in uri.location:
            return uri.location  # user supplied the sink: taken as is (must be named edge_sink or be the only one)
        return "{} ! {}".format(uri.location, values["scale"])
    _uri_values(uri, s, values)
    template = dict(DEFAULT_TEMPLATES, **dict(s.templates)).get(uri.kind)
    return _fill(template, uri.kind, values)


def guess_live(uri: SourceURI) -> bool:
    """Live-ness before the pipeline runs (gst:// is guessed from its elements; the GStreamer
    source checks the real answer, NO_PREROLL, once playing and fixes the appsink)."""
    if uri.kind == "gst":
        return any(e in uri.location for e in LIVE_ELEMENTS)
    return uri.live


def build_pipeline(uri: SourceURI, s: Optional[SourceConfig] = None, fmt: Optional[str] = None) -> str:
    """Full gst-launch pipeline string for ``uri`` ending in the appsink named ``edge_sink``."""
    s = s or SourceConfig()
    part = source_part(uri, s, fmt)
    if uri.kind == "gst" and "appsink" in uri.location:
        return part
    return "{} ! {}".format(part, appsink(guess_live(uri)))


def candidates(uri: SourceURI, s: Optional[SourceConfig] = None) -> List[Tuple[str, str]]:
    """[(label, pipeline)] to try in order: one per camera format for V4L2 cameras (duplicates
    dropped, e.g. a template without {camera_caps}), a single pipeline for everything else."""
    s = s or SourceConfig()
    if uri.kind != "v4l2":
        return [(uri.kind, build_pipeline(uri, s))]
    out = []  # type: List[Tuple[str, str]]
    for fmt in camera_formats(s.camera):
        p = build_pipeline(uri, s, fmt)
        if all(p != q for _, q in out):
            out.append((describe_format(s.camera, fmt), p))
    return out
