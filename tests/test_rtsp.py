"""Real RTSP servers on loopback (gst-rtsp-server, ``tests/rtsp_server.py``): H.264, H.265 and MJPEG
cameras, an audio stream listed before the video, basic auth, the Jetson template (NVIDIA elements
swapped for stand-ins), and a camera that restarts while ``edge-run`` reads it: predictions resume,
the reconnect is counted and the password never appears in any output."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from gst_standins import swap_nvidia  # noqa: E402
from rtsp_server import ServerProcess, rtsp_test_marks  # noqa: E402

from edge.config import ReconnectConfig, load_config  # noqa: E402
from edge.sources import SourceConfig, SourceError, open_source  # noqa: E402
from edge.sources.gstreamer import has_element  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


pytestmark = rtsp_test_marks()
ENCODER = {"h264": "x264enc", "h265": "x265enc", "mjpeg": "jpegenc"}
CFG = SourceConfig.sized(32, 24, reconnect=ReconnectConfig(start_s=5.0))


def _need(codec):
    if not has_element(ENCODER[codec]):
        pytest.skip(f"{ENCODER[codec]} missing (H.265: apt-get install gstreamer1.0-plugins-bad)")


def _frames(src, n=5, within=10.0):
    got, t0 = [], time.monotonic()
    try:
        while len(got) < n and time.monotonic() - t0 < within:
            f = src.read(0.5)
            if f is not None:
                got.append(f)
    finally:
        src.close()
    return got


@pytest.mark.parametrize("codec,audio_first", [("h264", False), ("h265", False), ("mjpeg", False),
                                               ("h264", True), ("h265", True)])
def test_rtsp_codecs_video_stream_only(codec, audio_first):
    """The generic template decodes each codec; with audio listed first it still takes the video
    (before: decodebin got the audio pad and the pipeline failed with 'Internal data stream error')."""
    _need(codec)
    with ServerProcess(codec, audio_first=audio_first) as srv:
        frames = _frames(open_source(srv.url(), CFG))
    assert len(frames) == 5 and frames[0].image.shape == (24, 32, 3)
    assert frames[-1].image.std() > 5          # real pictures, not a blank buffer


def test_rtsp_basic_auth_and_redaction():
    _need("h264")
    with ServerProcess("h264", user="cam", password="s3cr3t-pw") as srv:
        assert len(_frames(open_source(srv.url("cam", "s3cr3t-pw"), CFG))) == 5
        with pytest.raises(SourceError) as e:
            open_source(srv.url("cam", "wrong-pw"), CFG)
    assert "Unauthorized" in str(e.value) and "wrong-pw" not in str(e.value) and "cam:***@" in str(e.value)


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_parsebin_cannot_feed_nvv4l2decoder(codec):
    """Why the Jetson template uses decodebin: parsebin fixes avc/hvc1 caps before its pad is
    linked, and nvv4l2decoder takes byte-stream only (the stand-in has its Tegra sink caps)."""
    _need(codec)
    bad = ("rtspsrc location={location} latency={latency} protocols={protocols}{auth} ! "
           "application/x-rtp,media=video ! parsebin ! nvv4l2decoder ! nvvidconv ! {scale}")
    with ServerProcess(codec) as srv:
        with pytest.raises(SourceError, match="not-linked"):
            open_source(srv.url(), SourceConfig.sized(32, 24, templates={"rtsp": swap_nvidia(bad)}))


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_jetson_rtsp_template_with_stand_ins(codec):
    """The Jetson template (decodebin, where JetPack's nvv4l2decoder outranks the software decoders)
    with nvvidconv swapped for videoconvert + videoscale, on a real server whose SDP lists audio
    first. (Which decoder decodebin picks on a Jetson is not shown here.)"""
    _need(codec)
    cfg = load_config("jetson-orin-nano")
    templates = {"rtsp": swap_nvidia(cfg.pipelines["rtsp"])}
    with ServerProcess(codec, audio_first=True) as srv:
        frames = _frames(open_source(srv.url(), SourceConfig.sized(32, 24, templates=templates)))
    assert len(frames) == 5 and frames[0].image.shape == (24, 32, 3)


@pytest.fixture(scope="module")
def bundle_dir():
    from _tiny_models import cached_bundle
    return cached_bundle()


def _wait_records(path, n, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return True
        time.sleep(0.1)
    return False


def test_edge_run_camera_restarts_mid_run(bundle_dir, tmp_path):
    _need("h264")
    jl, sm = tmp_path / "p.jsonl", tmp_path / "s.json"
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("device: cpu\nreconnect: {initial_s: 0.2, max_s: 0.5, stall_s: 2.0, start_s: 3.0}\n")
    srv = ServerProcess("h264", user="cam", password="s3cr3t-pw").start()
    try:
        p = subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(cfg), "--model", bundle_dir,
                              srv.url("cam", "s3cr3t-pw"), "--duration", "9", "--jsonl", str(jl), "--summary", str(sm)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert _wait_records(jl, 2, 30), "no predictions from the RTSP camera"
        srv.kill()
        time.sleep(1.0)
        srv.start()                                  # same port, new session
        out, err = p.communicate(timeout=40)
    finally:
        srv.kill()
    assert p.returncode == 0, err
    s = json.loads(sm.read_text())
    recs = [json.loads(line) for line in jl.read_text().splitlines()]
    assert s["reconnects"] >= 1 and s["source_errors"] >= 1, (s, err)
    assert len({r["epoch"] for r in recs}) >= 2      # predictions resumed after the restart
    assert max(r["epoch"] for r in recs) >= 1 and recs[-1]["epoch"] >= 1
    for text in (out, err, jl.read_text(), sm.read_text()):
        assert "s3cr3t-pw" not in text
    assert "reconnect" in err                        # the user sees the reconnect
