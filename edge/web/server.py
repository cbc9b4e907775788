"""The live web view: one page (``/``) with every camera's annotated stream (MJPEG), current top-k
bars, a per-stage latency plot and the recent events, plus ``/metrics`` (Prometheus text).

Routes: ``/`` page, ``/stream/<camera>.mjpg`` MJPEG, ``/frame/<camera>.jpg`` newest frame,
``/api/state`` JSON (cameras, top-k, latency history, stats), ``/api/events?after=ID`` JSON (recent
events, polled by the page), ``/metrics``, ``/healthz``.

Bound to 127.0.0.1 by default. Any other address needs a token (``--serve-token`` or
``$EDGE_SERVE_TOKEN``); a token, when set, is required on every route, also on localhost: as
``?token=``, ``Authorization: Bearer ...`` or the cookie the page sets. Stdlib only (http.server).
"""
import hmac
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Optional, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from . import metrics
from .page import PAGE
from .state import LiveState

log = logging.getLogger("edge.web")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class WebError(ValueError):
    """A bad --serve setting; the message says what to pass."""


def parse_bind(spec):
    # type: (str) -> Tuple[str, int]
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> (host, port); the host defaults to 127.0.0.1."""
    spec = str(spec).strip()
    host, _, port = spec.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        p = int(port)
    except ValueError:
        raise WebError("--serve {!r}: expected HOST:PORT, e.g. 127.0.0.1:8080".format(spec))
    if not 0 <= p <= 65535:
        raise WebError("--serve {!r}: port must be 0..65535".format(spec))
    return host, p


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class WebView(object):
    """``WebView(host, port, token).start()``; ``state`` is what the loop feeds; ``close()``."""

    def __init__(self, host="127.0.0.1", port=8080, token=None, state=None, mjpeg_fps=10.0):
        # type: (str, int, Optional[str], Optional[LiveState], float) -> None
        if host not in LOOPBACK and not token:
            raise WebError("--serve on {} makes the view reachable from other machines: set a token "
                           "(--serve-token TOKEN or $EDGE_SERVE_TOKEN), or bind to 127.0.0.1".format(host))
        self.host, self.token = host, token
        self.state = state or LiveState()
        self.mjpeg_fps = float(mjpeg_fps)
        self.closing = threading.Event()
        self.counts = {"requests": 0, "refused": 0, "streams": 0}
        server_cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
        self._httpd = server_cls((host, int(port)), _handler_for(self))
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="edge-web", daemon=True)

    @property
    def url(self):
        # type: () -> str
        host = "[{}]".format(self.host) if ":" in self.host else self.host
        return "http://{}:{}/".format(host, self.port)

    def start(self):
        self._thread.start()
        log.info("live view on %s%s", self.url, " (token required)" if self.token else "")
        return self

    def close(self):
        if self.closing.is_set():
            return
        self.closing.set()
        with self.state.frame_cv:
            self.state.frame_cv.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(2.0)

    def authorized(self, handler, query):
        if not self.token:
            return True
        given = (query.get("token") or [""])[0]
        auth = handler.headers.get("Authorization", "")
        if not given and auth.startswith("Bearer "):
            given = auth[7:].strip()
        if not given:
            for part in handler.headers.get("Cookie", "").split(";"):
                k, _, v = part.strip().partition("=")
                if k == "edge_token":
                    given = unquote(v)
        return hmac.compare_digest(given.encode(), self.token.encode())


def _handler_for(view):
    class Handler(_Handler):
        pass
    Handler.view = view
    return Handler


class _Handler(BaseHTTPRequestHandler):
    view = None  # type: WebView
    protocol_version = "HTTP/1.1"
    server_version = "edge-action"

    def log_message(self, fmt, *args):   # never log query strings (tokens)
        log.debug("%s %s", self.command, urlsplit(self.path).path)

    def _send(self, code, body, ctype="text/plain; charset=utf-8", extra=None):
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        u = urlsplit(self.path)
        query = parse_qs(u.query)
        view = self.view
        view.counts["requests"] += 1
        if not view.authorized(self, query):
            view.counts["refused"] += 1
            return self._send(401, "401: wrong or missing token (add ?token=... to the URL)\n",
                              extra={"WWW-Authenticate": 'Bearer realm="edge-action"'})
        path = u.path
        try:
            if path in ("/", "/index.html"):
                return self._page(query)
            if path == "/api/state":
                return self._json(view.state.snapshot())
            if path == "/api/events":
                after = int((query.get("after") or ["0"])[0])
                return self._json({"events": view.state.events_after(after)})
            if path == "/metrics":
                return self._send(200, metrics.render(view.state.metric_samples()), metrics.CONTENT_TYPE)
            if path == "/healthz":
                return self._send(200, "ok\n")
            if path.startswith("/frame/") and path.endswith(".jpg"):
                return self._frame(unquote(path[len("/frame/"):-4]))
            if path.startswith("/stream/") and path.endswith(".mjpg"):
                return self._mjpeg(unquote(path[len("/stream/"):-5]))
        except (BrokenPipeError, ConnectionResetError):
            return
        return self._send(404, "404: no such page; try / or /metrics\n")

    def _json(self, obj):
        self._send(200, json.dumps(obj), "application/json")

    def _page(self, query):
        token = (query.get("token") or [""])[0]
        extra = {}
        if token:
            extra["Set-Cookie"] = "edge_token={}; Path=/; HttpOnly; SameSite=Strict".format(quote(token))
        self._send(200, PAGE, "text/html; charset=utf-8", extra)

    def _frame(self, camera):
        seq, jpg = self.view.state.jpeg(camera)
        if not jpg:
            return self._send(404, "no frame yet from camera {!r}\n".format(camera))
        self._send(200, jpg, "image/jpeg")

    def _mjpeg(self, camera):
        view = self.view
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        view.counts["streams"] += 1
        seq, min_gap = 0, 1.0 / max(view.mjpeg_fps, 0.1)
        try:
            while not view.closing.is_set():
                if view.state.wait_frame(camera, seq, 1.0) <= seq:
                    continue
                seq, jpg = view.state.jpeg(camera)
                if not jpg:
                    continue
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                                 str(len(jpg)).encode() + b"\r\n\r\n" + jpg + b"\r\n")
                self.wfile.flush()
                if view.closing.wait(min_gap):
                    break
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            pass
        finally:
            view.counts["streams"] -= 1
