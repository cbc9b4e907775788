"""Where events go, chosen by URI like the inputs (``--events URI``, repeatable; ``--record DIR``).

==============================================  =============================================
URI                                             sink
==============================================  =============================================
``mqtt://[user:pass@]host:1883/topic``          MQTT, QoS 1, retained online/offline status
``mqtts://host:8883/topic?ca=FILE``             MQTT over TLS (or ``?tls=1``)
``http://host:port/hook``, ``https://...``      webhook: JSON POST with retries
``events.jsonl`` / ``file:///path/x.jsonl``     JSON lines appended to a file
``--record DIR``                                MP4 clip + JPEG per event (``ClipRecorder``)
==============================================  =============================================

Every sink has ``publish(event)`` (never blocks), ``close(timeout)`` and ``counters()``.
``EventHub`` (``edge.eventsinks.hub``) ties the detector, the sinks, the recorder and the web view
to a capture loop.
"""
from .base import Backoff, EventSink, SinkError, SinkUnavailable

URI_HELP = """event sinks (--events URI, repeatable):
  mqtt://[user:pass@]host:1883/topic    MQTT, QoS 1; ?qos=0|1|2 &status=TOPIC &client_id=ID &queue=N
  mqtts://host:8883/topic?ca=CA.pem     MQTT over TLS (&cert=FILE &key=FILE &insecure=1)
                                        credentials also from $EDGE_MQTT_USERNAME/$EDGE_MQTT_PASSWORD
  http(s)://host:port/hook              webhook, JSON POST; ?timeout=S &retries=N &queue=N
                                        bearer token from $EDGE_WEBHOOK_TOKEN
  events.jsonl | file:///abs/path.jsonl JSON lines file"""


def sink_kind(uri):
    # type: (str) -> str
    u = uri.strip()
    low = u.lower()
    if low.startswith(("mqtt://", "mqtts://")):
        return "mqtt"
    if low.startswith(("http://", "https://")):
        return "webhook"
    if low.startswith("file://") or low.endswith((".jsonl", ".ndjson", ".json")):
        return "file"
    raise ValueError("unknown event sink {!r}\n{}".format(redact_uri(uri), URI_HELP))


def redact_uri(uri):
    # type: (str) -> str
    """``scheme://user:***@host/...``: what may be logged of a sink URI."""
    if "://" not in uri or "@" not in uri.split("://", 1)[1].split("/", 1)[0]:
        return uri
    scheme, rest = uri.split("://", 1)
    cred, host = rest.split("@", 1)
    user = cred.split(":", 1)[0]
    return "{}://{}:***@{}".format(scheme, user, host) if ":" in cred else "{}://***@{}".format(scheme, host)


def open_event_sink(uri, start=True):
    """The sink for ``uri`` (started unless ``start=False``). Raises ValueError for a bad URI and
    ``SinkUnavailable`` (message says what to install) when its library is missing."""
    kind = sink_kind(uri)
    if kind == "mqtt":
        from .mqtt import MqttSink
        sink = MqttSink(uri)
    elif kind == "webhook":
        from .webhook import WebhookSink
        sink = WebhookSink(uri)
    else:
        from .jsonl import JsonlEventSink
        path = uri[len("file://"):] if uri.lower().startswith("file://") else uri
        sink = JsonlEventSink(path)
    return sink.start() if start else sink


__all__ = ["Backoff", "EventSink", "SinkError", "SinkUnavailable", "URI_HELP", "open_event_sink",
           "redact_uri", "sink_kind"]
