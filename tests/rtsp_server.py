"""A real RTSP server on loopback for tests (gst-rtsp-server from Debian: gir1.2-gst-rtsp-server-1.0).

Run it as a child process so a test can freeze it (SIGSTOP), kill it (a server that vanishes) or
start it again on the same port (a camera that restarts)::

    python tests/rtsp_server.py --codec h265 --audio-first --user u --password p [--port 0]

It prints ``READY <port>`` on stdout once it listens (port 0 = a free port picked by the kernel), then
serves ``rtsp://127.0.0.1:<port>/stream`` until killed. Codecs: h264 (x264enc), h265 (x265enc,
gstreamer1.0-plugins-bad), mjpeg (jpegenc). ``--audio-first`` lists an A-law audio stream before the
video in the SDP (what trips a generic ``rtspsrc ! decodebin``). ``python tests/rtsp_server.py
--check`` prints the codecs this machine can serve.

``never_answering_server()`` is the other kind of stall: a TCP listener that accepts connections and
never sends a byte (a camera whose RTSP service hangs).
"""
import argparse
import socket
import sys
import threading

ENCODERS = {
    "h264": ("x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bitrate=500 ! "
             "rtph264pay name=pay{n} pt=96 config-interval=1"),
    "h265": ("x265enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bitrate=500 ! "
             "rtph265pay name=pay{n} pt=96 config-interval=1"),
    "mjpeg": "jpegenc quality=70 ! rtpjpegpay name=pay{n} pt=26",
}
NEEDS = {"h264": ("x264enc", "rtph264pay"), "h265": ("x265enc", "rtph265pay"), "mjpeg": ("jpegenc", "rtpjpegpay")}


def has_rtsp_server() -> bool:
    """gst-rtsp-server's GObject bindings are importable (Debian: gir1.2-gst-rtsp-server-1.0)."""
    try:
        import gi
        gi.require_version("GstRtspServer", "1.0")
        return True
    except (ImportError, ValueError):
        return False


def rtsp_test_marks():
    """pytest marks for a test module that needs GStreamer and gst-rtsp-server (skips say why)."""
    import pytest
    from edge.sources.gstreamer import gst_available

    return [pytest.mark.gst,
            pytest.mark.skipif(not gst_available(), reason="GStreamer/PyGObject not importable"),
            pytest.mark.skipif(not has_rtsp_server(),
                               reason="gst-rtsp-server missing: apt-get install gir1.2-gst-rtsp-server-1.0")]


AUDIO = "audiotestsrc is-live=true wave=sine samplesperbuffer=80 ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay{n} pt=8"


def launch_string(codec: str, audio_first: bool = False, width: int = 160, height: int = 120, fps: int = 15) -> str:
    n_video = 1 if audio_first else 0
    video = (f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
             f"framerate={fps}/1,format=I420 ! " + ENCODERS[codec].format(n=n_video))
    parts = [AUDIO.format(n=0), video] if audio_first else [video]
    return "( " + " ".join(parts) + " )"


def available_codecs():
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
    Gst.init(None)
    return [c for c, els in NEEDS.items() if all(Gst.ElementFactory.find(e) for e in els)]


def serve(codec: str, port: int, audio_first: bool, user: str, password: str) -> None:
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
    Gst.init(None)
    server = GstRtspServer.RTSPServer.new()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory.new()
    factory.set_launch(launch_string(codec, audio_first))
    factory.set_shared(True)
    if user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role("user", "media.factory.access", True)
        perms.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(perms)
    server.get_mount_points().add_factory("/stream", factory)
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on 127.0.0.1:{port}", flush=True)
        sys.exit(1)
    print(f"READY {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


def never_answering_server():
    """(port, close) of a loopback TCP server that accepts every connection and never answers."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
                held.append(conn)
            except socket.timeout:
                continue
            except OSError:
                return

    t = threading.Thread(target=accept, daemon=True)
    t.start()

    def close():
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        lsock.close()

    return lsock.getsockname()[1], close


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codec", choices=sorted(ENCODERS), default="h264")
    ap.add_argument("--port", type=int, default=0, help="0 = a free port (printed as READY <port>)")
    ap.add_argument("--audio-first", action="store_true", help="an audio stream listed before the video")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--check", action="store_true", help="print the codecs this machine can serve and exit")
    a = ap.parse_args(argv)
    if a.check:
        print(" ".join(available_codecs()))
        return 0
    serve(a.codec, a.port, a.audio_first, a.user, a.password)
    return 0


if __name__ == "__main__":
    sys.exit(main())


class ServerProcess:
    """``rtsp_server.py`` in a child process: ``start()`` (again on the same port after ``kill()``
    = a camera that restarts), ``freeze()``/``thaw()`` (SIGSTOP/SIGCONT), ``kill()`` (vanishes)."""

    def __init__(self, codec: str = "h264", audio_first: bool = False, user: str = "", password: str = ""):
        self.args = ["--codec", codec] + (["--audio-first"] if audio_first else []) + (
            ["--user", user, "--password", password] if user else [])
        self.port = 0
        self.proc = None

    def url(self, user: str = "", password: str = "") -> str:
        cred = f"{user}:{password}@" if user else ""
        return f"rtsp://{cred}127.0.0.1:{self.port}/stream"

    def start(self, timeout: float = 15.0) -> "ServerProcess":
        import os
        import subprocess
        import time
        deadline = time.monotonic() + timeout
        while True:  # the same port again after a restart may need a moment
            self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--port", str(self.port)] + self.args,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            line = self.proc.stdout.readline().split()
            if line[:1] == ["READY"]:
                self.port = int(line[1])
                return self
            self.proc.wait()
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP test server did not start: {line}")
            time.sleep(0.3)

    def freeze(self) -> None:
        import signal
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        import signal
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        import signal
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
