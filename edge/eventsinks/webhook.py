"""HTTP(S) webhook: each event is POSTed as JSON (``Content-Type: application/json``).

A 2xx answer is delivered; 5xx, 429, timeouts and connection errors are retried with exponential
backoff (``retries`` times); other 4xx are not retried (the endpoint refuses the event). The
worker thread does the waiting: a slow or failing endpoint fills the bounded queue, and the oldest
events are dropped and counted, never the caller blocked.

URI: ``http(s)://[user:pass@]host[:port]/path[?timeout=2&retries=3&queue=256&insecure=1]``.
``user:pass`` becomes HTTP basic auth; a bearer token can come from ``$EDGE_WEBHOOK_TOKEN``.
The options shown are consumed, any other query parameter is kept in the POSTed URL.
"""
import base64
import json
import os
import socket
import ssl
from typing import Dict, Optional
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from urllib.request import Request, urlopen

from .base import Backoff, EventSink, SinkError

OPTIONS = ("timeout", "retries", "queue", "insecure", "backoff")


def split_url(uri):
    # type: (str) -> tuple
    """(clean URL without credentials/options, safe name, options dict, (user, password) or None)."""
    u = urlsplit(uri)
    query = parse_qsl(u.query, keep_blank_values=True)
    opts = {k: v for k, v in query if k in OPTIONS}
    rest = [(k, v) for k, v in query if k not in OPTIONS]
    host = u.netloc.rsplit("@", 1)[-1]     # credentials never part of the URL we log or send
    clean = urlunsplit((u.scheme, host, u.path or "/", urlencode(rest), ""))
    creds = (u.username or "", u.password or "") if u.username is not None else None
    name = "webhook " + urlunsplit((u.scheme, host, u.path or "/", "", ""))
    return clean, name, opts, creds


class WebhookSink(EventSink):
    kind = "webhook"

    def __init__(self, uri, timeout=None, retries=None, queue_size=None):
        url, name, opts, creds = split_url(uri)
        super(WebhookSink, self).__init__(
            name, queue_size=int(queue_size or opts.get("queue", 256)),
            retries=int(retries if retries is not None else opts.get("retries", 3)),
            backoff=Backoff(float(opts.get("backoff", 0.5)), 10.0))
        self.url = url
        self.timeout = float(timeout if timeout is not None else opts.get("timeout", 2.0))
        self._headers = {"Content-Type": "application/json", "User-Agent": "edge-action"}
        if creds:
            tok = base64.b64encode("{}:{}".format(*creds).encode()).decode()
            self._headers["Authorization"] = "Basic " + tok
        elif os.environ.get("EDGE_WEBHOOK_TOKEN"):
            self._headers["Authorization"] = "Bearer " + os.environ["EDGE_WEBHOOK_TOKEN"]
        self._ctx = None  # type: Optional[ssl.SSLContext]
        if url.startswith("https") and opts.get("insecure") in ("1", "true", "yes"):
            self._ctx = ssl._create_unverified_context()

    def _deliver(self, event):
        # type: (Dict) -> None
        body = json.dumps(event, separators=(",", ":")).encode("utf-8")
        req = Request(self.url, data=body, headers=self._headers, method="POST")
        try:
            resp = urlopen(req, timeout=self.timeout, context=self._ctx)
            try:
                resp.read(65536)
            finally:
                resp.close()
        except HTTPError as e:
            e.close()
            self._count("http_{}xx".format(e.code // 100))
            retry = e.code >= 500 or e.code in (408, 429)
            raise SinkError("answered HTTP {}".format(e.code), retry=retry)
        except (socket.timeout, TimeoutError) as e:
            self._count("timeouts")
            raise SinkError("no answer within {:.1f}s".format(self.timeout))
        except (URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, socket.timeout):
                self._count("timeouts")
            else:
                self._count("connect_errors")
            raise SinkError(str(reason))
