"""NVIDIA-only GStreamer elements swapped for stand-ins that exist on any Debian machine, so the
Jetson templates can be parsed and run here (what only a Jetson can show is still unverified:
that NVIDIA's elements accept exactly these caps).

Each stand-in keeps the caps contract of the element it replaces, as NVIDIA documents it:

* ``nvarguscamerasrc ...``        -> ``videotestsrc is-live=true`` (the NVMM caps after it become system memory)
* ``nvv4l2decoder mjpeg=1``       -> ``jpegdec`` (takes image/jpeg, after jpegparse)
* ``nvv4l2decoder``               -> a caps filter for what it accepts from a parser (H.264/H.265
  byte-stream, access units) then ``decodebin``
* ``nvjpegdec``                   -> ``jpegdec``
* ``nvvidconv``                   -> ``videoconvert ! videoscale`` (it converts and scales)
* ``video/x-raw(memory:NVMM)``    -> ``video/x-raw``

``camera_standin(kind)`` replaces ``v4l2src device=...`` with a live test source: ``mjpg`` gives
image/jpeg only, and (like v4l2src, whose formats are known only once the device is open) only at
run time: the JPEG frames pass a Matroska mux/demux pair, whose pad appears while playing, so a raw
candidate fails while running, not while parsing. ``yuy2`` gives raw YUY2 only.
"""
import re

NV_DECODER_INPUT = ('capsfilter caps="video/x-h264,stream-format=(string)byte-stream,alignment=(string)au; '
                    'video/x-h265,stream-format=(string)byte-stream,alignment=(string)au" ! decodebin')
STAND_INS = [
    (r"nvarguscamerasrc[^!]*", "videotestsrc is-live=true "),
    (r"video/x-raw\(memory:NVMM\)", "video/x-raw"),
    (r"nvv4l2decoder\s+mjpeg=1[^!]*", "jpegdec "),
    (r"nvv4l2decoder[^!]*", NV_DECODER_INPUT + " "),
    (r"nvjpegdec[^!]*", "jpegdec "),
    (r"nvvidconv[^!]*", "videoconvert ! videoscale "),
]
NVIDIA_ONLY = ("nvarguscamerasrc", "nvv4l2decoder", "nvjpegdec", "nvvidconv", "memory:NVMM")


def swap_nvidia(pipeline: str) -> str:
    """``pipeline`` (or a template) with every NVIDIA-only element replaced by its stand-in."""
    for pattern, repl in STAND_INS:
        pipeline = re.sub(pattern, repl, pipeline)
    left = [n for n in NVIDIA_ONLY if n in pipeline]
    assert not left, f"no stand-in for {left} in {pipeline}"
    return pipeline


def camera_standin(template: str, kind: str, width: int, height: int, fps: int) -> str:
    """A v4l2 template with ``v4l2src device=...`` replaced by a stand-in camera offering only
    ``kind`` (mjpg: image/jpeg from jpegenc; yuy2: raw YUY2), negotiated at run time like v4l2src."""
    raw = f"videotestsrc is-live=true pattern=ball ! video/x-raw,format=YUY2,width={width},height={height},framerate={fps}/1"
    cam = raw + (" ! jpegenc ! matroskamux streamable=true ! matroskademux" if kind == "mjpg" else " ! identity")
    assert "v4l2src device={device}" in template, template
    return re.sub(r"v4l2src device=\{device\}[^!]*", cam + " ", template)
