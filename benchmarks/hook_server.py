"""A real HTTP webhook endpoint on a free loopback port, for the event-sink tests and the fault soak.

``start_hook_server(behaviour, on_body)``: the n-th POST (1-based) is answered after ``behaviour(n)``
-> ``(status, delay_s)``; ``on_body(body_bytes, headers)`` sees the bodies answered 200. Returns the
server (``shutdown()`` it) and its ``http://127.0.0.1:PORT/hook`` URL.
"""
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Callable, Optional, Tuple


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers that cannot bind port 0 themselves)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True


def start_hook_server(behaviour: Callable[[int], Tuple[int, float]],
                      on_body: Optional[Callable[[bytes, dict], None]] = None):
    count = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                count[0] += 1
                n = count[0]
            code, delay = behaviour(n)
            time.sleep(delay)
            if code == 200 and on_body is not None:
                on_body(body, dict(self.headers))
            try:
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:  # the client gave up (timeout): nothing to answer
                pass

    srv = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:{}/hook".format(srv.server_address[1])
