"""Every device config's GStreamer pipelines, as the sources build them, parse with Gst.parse_launch
(NVIDIA-only elements swapped for stand-ins, ``tests/gst_standins.py``), and a stand-in camera that
offers 1280x720@30 only as MJPG negotiates through the raw -> MJPG fallback of each v4l2 template."""
import dataclasses
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from gst_standins import camera_standin, swap_nvidia  # noqa: E402

from edge.config import CameraConfig, ReconnectConfig, available_configs, load_config  # noqa: E402
from edge.sources import SourceConfig, SourceError, candidates, open_source, parse_uri  # noqa: E402
from edge.sources.gstreamer import gst_available  # noqa: E402
from edge.sources.pipelines import DEFAULT_TEMPLATES  # noqa: E402

needs_gst = pytest.mark.skipif(not gst_available(), reason="GStreamer/PyGObject not importable")
CONFIGS = sorted(available_configs())
URIS = ["/dev/video0", "csi://0", "rtsp://user:pw@127.0.0.1:8554/stream", "/tmp/clip.mp4", "test://"]


def _pipelines(name):
    cfg = SourceConfig.from_device(load_config(name), 64, 64)
    for uri in URIS:
        for label, pipeline in candidates(parse_uri(uri), cfg):
            yield uri, label, pipeline


def test_jetson_templates_take_any_codec_and_fall_back_to_mjpg():
    """No hard-coded H.264 depayloader; a MJPG candidate through the hardware decoder."""
    for name in CONFIGS:
        if not name.startswith("jetson"):
            continue
        cfg = load_config(name)
        assert "rtph264depay" not in cfg.pipelines["rtsp"] and "application/x-rtp,media=video" in cfg.pipelines["rtsp"]
        assert "media=video ! decodebin ! nvvidconv" in cfg.pipelines["rtsp"]
        labels = [label for _, label, _ in _pipelines(name) if "MJPG" in label]
        assert labels == ["MJPG 1280x720@30"], labels
        mjpg = [p for _, label, p in _pipelines(name) if "MJPG" in label][0]
        assert "image/jpeg,width=1280,height=720,framerate=30/1 ! jpegparse ! nvv4l2decoder mjpeg=1 ! nvvidconv" in mjpg


@pytest.mark.gst
@needs_gst
@pytest.mark.parametrize("name", CONFIGS)
def test_every_template_parses_with_stand_ins(name):
    from edge.sources.gstpipeline import gst
    Gst = gst()
    for uri, label, pipeline in _pipelines(name):
        p = Gst.parse_launch(swap_nvidia(pipeline))
        assert p.get_by_name("edge_sink") is not None, (name, uri, label)
        p.set_state(Gst.State.NULL)


def _fake_device(tmp_path):
    dev = tmp_path / "video0"   # check_uri only asks that the device node exists
    dev.write_text("")
    return f"v4l2://{dev}"


def _v4l2_templates():
    out = {"default": DEFAULT_TEMPLATES["v4l2"]}
    for name in CONFIGS:
        t = load_config(name).pipelines.get("v4l2")
        if t and t not in out.values():
            out[name] = t
    return out


def _standin_config(template, kind, camera, start_s=3.0):
    return SourceConfig.sized(32, 24, camera=camera, reconnect=ReconnectConfig(start_s=start_s),
                              templates={"v4l2": swap_nvidia(camera_standin(template, kind, 1280, 720, 30))})


@pytest.mark.gst
@needs_gst
@pytest.mark.parametrize("template", sorted(_v4l2_templates()))
@pytest.mark.parametrize("kind,want", [("mjpg", "MJPG 1280x720@30"), ("yuy2", "raw 1280x720@30")])
def test_camera_negotiates_raw_or_falls_back_to_mjpg(tmp_path, template, kind, want):
    cam = CameraConfig(width=1280, height=720, fps=30, format="raw,MJPG")
    if template.startswith("jetson"):
        cam = dataclasses.replace(cam, mjpeg_decoder=swap_nvidia(load_config(template).camera.mjpeg_decoder))
    cfg = _standin_config(_v4l2_templates()[template], kind, cam)
    src = open_source(_fake_device(tmp_path), cfg)
    try:
        frames = [f for f in (src.read(2.0) for _ in range(5)) if f is not None]
    finally:
        src.close()
    assert src.chosen == want and src.describe()["camera_format"] == want
    assert len(frames) >= 4 and frames[0].image.shape == (24, 32, 3)


@pytest.mark.gst
@needs_gst
def test_camera_offering_none_of_the_formats_is_one_clear_error(tmp_path):
    """A MJPG-only camera with MJPG not allowed by the config: the error names what was tried
    and how to list the camera's formats; it comes fast (negotiation fails, no timeout)."""
    cam = CameraConfig(width=1280, height=720, fps=30, format="YUY2,NV12")
    cfg = _standin_config(DEFAULT_TEMPLATES["v4l2"], "mjpg", cam, start_s=10.0)
    t0 = time.monotonic()
    with pytest.raises(SourceError) as e:
        open_source(_fake_device(tmp_path), cfg)
    msg = str(e.value)
    assert time.monotonic() - t0 < 5
    assert "YUY2 1280x720@30" in msg and "NV12 1280x720@30" in msg and "not-linked" in msg, msg
    assert "--list-formats-ext" in msg and "\n" not in msg


@pytest.mark.gst
@needs_gst
def test_rtspsrc_select_stream_takes_video_only():
    """GStreamer 1.18+: rtspsrc asks which streams to set up; only video is answered yes (and on
    older GStreamer, the template's application/x-rtp,media=video filter links only video)."""
    from edge.sources.gstpipeline import _video_only, configure_rtspsrc, gst
    Gst = gst()
    assert _video_only(None, 0, Gst.Caps.from_string("application/x-rtp,media=video,encoding-name=H265"))
    assert not _video_only(None, 0, Gst.Caps.from_string("application/x-rtp,media=audio,encoding-name=PCMA"))
    assert not _video_only(None, 1, Gst.Caps.from_string("application/x-rtp,media=application"))
    p = Gst.parse_launch("rtspsrc name=r location=rtsp://127.0.0.1:9/x ! fakesink")
    configure_rtspsrc(p, "", 5.0)
    r = p.get_by_name("r")
    assert r.get_property("tcp-timeout") == 4_000_000          # 0.8 * start_s, in microseconds
    assert r.emit("select-stream", 0, Gst.Caps.from_string("application/x-rtp,media=audio")) is False
    assert r.emit("select-stream", 1, Gst.Caps.from_string("application/x-rtp,media=video")) is True
