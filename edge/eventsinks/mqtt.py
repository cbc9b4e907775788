"""MQTT events through paho-mqtt (``pip install 'edge-action[events]'``, or ``pip install paho-mqtt``;
on Python 3.6 boards ``paho-mqtt<2``, both APIs work).

URI: ``mqtt://[user:pass@]host[:1883]/topic[?qos=1&status=TOPIC&client_id=ID&keepalive=30&queue=256]``
and TLS with ``mqtts://host[:8883]/topic`` or ``?tls=1``, plus ``ca=FILE``, ``cert=FILE``,
``key=FILE``, ``insecure=1`` (skip host name check). Credentials may instead come from
``$EDGE_MQTT_USERNAME`` / ``$EDGE_MQTT_PASSWORD`` (keeps them out of the process list); they are never
logged: the sink's name and every message carry only host, port and topic.

- Events are published as JSON with QoS 1 (``qos=`` to change) to ``topic``.
- A retained status ``online`` is published to ``status`` (default ``<topic>/status``) on every
  connect; the broker's last will publishes a retained ``offline`` if this process dies, and
  ``close()`` publishes ``offline`` itself.
- Reconnects with backoff (1 s doubling to 30 s), also when the broker is down at start. While
  disconnected the worker holds events; the bounded queue keeps the newest ``queue`` events and
  counts what it drops. An event counts as delivered when the broker acknowledged it (PUBACK).
"""
import json
import os
import threading
import time
import uuid
from typing import Dict, Optional
from urllib.parse import parse_qsl, urlsplit

from .base import EventSink, SinkError, SinkUnavailable

INSTALL_HINT = ("MQTT events need paho-mqtt: pip install 'edge-action[events]' (or: pip install paho-mqtt; "
                "paho-mqtt<2 on Python 3.6)")


def _paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise SinkUnavailable(INSTALL_HINT)
    return mqtt


def _truthy(v):
    return str(v).lower() in ("1", "true", "yes", "on")


def parse_mqtt_uri(uri):
    # type: (str) -> Dict
    """Settings from an ``mqtt://`` / ``mqtts://`` URI (raises ValueError naming what is wrong)."""
    u = urlsplit(uri)
    if u.scheme not in ("mqtt", "mqtts"):
        raise ValueError("not an MQTT URI: use mqtt://host:1883/topic")
    q = dict(parse_qsl(u.query))
    topic = u.path.lstrip("/")
    if not u.hostname or not topic:
        raise ValueError("MQTT URI needs a host and a topic: mqtt://host:1883/edge/events")
    if "#" in topic or "+" in topic:
        raise ValueError("MQTT topic {!r}: wildcards (# +) are for subscribing, not publishing".format(topic))
    tls = u.scheme == "mqtts" or _truthy(q.get("tls", "0"))
    qos = int(q.get("qos", 1))
    if qos not in (0, 1, 2):
        raise ValueError("MQTT qos must be 0, 1 or 2, got {}".format(qos))
    user = u.username if u.username is not None else os.environ.get("EDGE_MQTT_USERNAME")
    password = u.password if u.password is not None else os.environ.get("EDGE_MQTT_PASSWORD")
    return {"host": u.hostname, "port": u.port or (8883 if tls else 1883), "topic": topic,
            "status": q.get("status", topic.rstrip("/") + "/status"), "qos": qos, "tls": tls,
            "ca": q.get("ca"), "cert": q.get("cert"), "key": q.get("key"),
            "insecure": _truthy(q.get("insecure", "0")), "user": user, "password": password,
            "client_id": q.get("client_id", "edge-action-" + uuid.uuid4().hex[:8]),
            "keepalive": int(q.get("keepalive", 30)), "queue": int(q.get("queue", 256)),
            "ack_timeout": float(q.get("ack_timeout", 10.0))}


class MqttSink(EventSink):
    kind = "mqtt"

    def __init__(self, uri, queue_size=None):
        s = parse_mqtt_uri(uri)
        mqtt = _paho()
        super(MqttSink, self).__init__("mqtt {}:{}/{}".format(s["host"], s["port"], s["topic"]),
                                       queue_size=queue_size or s["queue"], retries=0)
        self.s = s
        self._mqtt = mqtt
        self._connected = threading.Event()
        self._acked = set()
        self._ack_cv = threading.Condition()
        self._client = self._make_client(mqtt, s)

    def _make_client(self, mqtt, s):
        if hasattr(mqtt, "CallbackAPIVersion"):   # paho-mqtt >= 2
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=s["client_id"], clean_session=True)
        else:
            c = mqtt.Client(client_id=s["client_id"], clean_session=True)
        if s["user"] is not None:
            c.username_pw_set(s["user"], s["password"])
        if s["tls"]:
            c.tls_set(ca_certs=s["ca"], certfile=s["cert"], keyfile=s["key"])
            if s["insecure"]:
                c.tls_insecure_set(True)
        c.will_set(s["status"], "offline", qos=1, retain=True)
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.max_queued_messages_set(max(16, self.queue_size))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        if hasattr(c, "on_connect_fail"):
            c.on_connect_fail = self._on_connect_fail
        return c

    def start(self):
        if not self._started:
            self._client.connect_async(self.s["host"], self.s["port"], keepalive=self.s["keepalive"])
            self._client.loop_start()          # its thread retries the first connection too
        return super(MqttSink, self).start()

    @property
    def connected(self):
        # type: () -> bool
        return self._connected.is_set()

    # paho callbacks (its network thread); both callback API versions --------------------------
    def _on_connect(self, client, userdata, flags, rc, *props):
        code = getattr(rc, "value", rc)
        if code != 0:
            self._count("connect_failures")
            self._fault("broker refused the connection: {}".format(rc))
            return
        self._count("connects")
        client.publish(self.s["status"], "online", qos=1, retain=True)
        self._connected.set()

    def _on_connect_fail(self, client, userdata):
        self._count("connect_failures")
        self._fault("cannot reach the broker (retrying with backoff)")

    def _on_disconnect(self, client, userdata, *args):
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._closing:
            self._count("disconnects")
            self._fault("lost the broker connection (reconnecting with backoff)")

    def _on_publish(self, client, userdata, mid, *args):
        with self._ack_cv:
            if len(self._acked) > 4096:   # acks nobody waits for any more (status, late): stay bounded
                self._acked.clear()
            self._acked.add(mid)
            self._ack_cv.notify_all()

    # worker ------------------------------------------------------------------------------------
    def _wait(self, predicate, timeout):
        end = time.monotonic() + timeout
        while not predicate():
            if self._abort or time.monotonic() > end:
                return False
            with self._ack_cv:
                self._ack_cv.wait(0.1)
        return True

    def _deliver(self, event):
        # type: (Dict) -> None
        if not self._wait(self._connected.is_set, 1e9):
            raise SinkError("not connected at close", retry=False)
        payload = json.dumps(event, separators=(",", ":"))
        info = self._client.publish(self.s["topic"], payload, qos=self.s["qos"])
        if info.rc == getattr(self._mqtt, "MQTT_ERR_QUEUE_SIZE", -1):
            raise SinkError("paho's outgoing queue is full", retry=False)
        if self.s["qos"] == 0:
            return
        mid = info.mid
        if not self._wait(lambda: mid in self._acked, self.s["ack_timeout"]):
            self._count("unacked")
            raise SinkError("no PUBACK within {:.0f}s".format(self.s["ack_timeout"]), retry=False)
        with self._ack_cv:
            self._acked.discard(mid)

    def _shutdown(self):
        c = self._client
        try:
            if self._connected.is_set():
                info = c.publish(self.s["status"], "offline", qos=1, retain=True)
                info.wait_for_publish(2.0)
        except Exception as e:  # already gone: the broker publishes the will instead
            self._fault("offline status not sent: {}".format(e))
        c.disconnect()
        c.loop_stop()
        self._connected.clear()
