"""Live web view of a run (``edge-run ... --serve 127.0.0.1:8080``): see ``edge.web.server``."""
from .server import LOOPBACK, WebError, WebView, parse_bind
from .state import LiveState

__all__ = ["LOOPBACK", "LiveState", "WebError", "WebView", "parse_bind"]
