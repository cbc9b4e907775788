"""The MQTT sink against a real broker: Debian's mosquitto, started here on a free loopback port with
its own config (password file), and a real subscriber. Skips when mosquitto or paho-mqtt is absent."""
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from benchmarks.hook_server import free_port
from edge.events import make_event
from edge.eventsinks import open_event_sink

mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed: pip install 'edge-action[events]'")
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
pytestmark = pytest.mark.skipif(MOSQUITTO is None or not shutil.which("mosquitto_passwd"),
                                reason="Debian's mosquitto broker is not installed (apt-get install mosquitto "
                                       "mosquitto-clients; scripts/setup.sh does)")
USER, PASSWORD = "edge", "pa55-word"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user():
    """mosquitto run as root switches to user 'mosquitto', which cannot read pytest's 0700 tmp dirs."""
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


class Broker(object):
    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.port = free_port()
        self.proc = None
        pw = tmp_path / "passwd"
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), USER, PASSWORD], check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.chmod(str(pw), 0o600)
        self.conf = tmp_path / "mosquitto.conf"
        self.conf.write_text("listener {} 127.0.0.1\nallow_anonymous false\npassword_file {}\n"
                             "persistence false\nlog_dest stderr\nuser {}\n".format(self.port, pw, _user()))

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(str(self.dir / "broker.log"), "ab"))
        end = time.time() + 10
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                assert self.proc.poll() is None, (self.dir / "broker.log").read_text()
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    b.stop()


class Subscriber(object):
    """A real client subscribed to ``topic/#``: collects (topic, payload, retained)."""

    def __init__(self, port, topic):
        self.msgs = []
        self.cv = threading.Condition()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub")
        self.c.username_pw_set(USER, PASSWORD)
        self.c.on_message = self._on_message
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic + "/#", qos=1) or c.subscribe(topic, qos=1)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_message(self, c, u, m):
        with self.cv:
            self.msgs.append((m.topic, m.payload.decode(), bool(m.retain)))
            self.cv.notify_all()

    def wait(self, pred, timeout=15):
        with self.cv:
            ok = self.cv.wait_for(lambda: pred(self.msgs), timeout)
        assert ok, "timed out; got {}".format(self.msgs)

    def events(self, topic):
        return [json.loads(p) for t, p, r in self.msgs if t == topic]

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def wait_for(pred, timeout=10):
    end = time.time() + timeout
    while not pred() and time.time() < end:
        time.sleep(0.05)
    return pred()


def ev(i):
    return make_event("start", "cam1", "Archery", 0.9, 0.8, 1795591455.0 + i, float(i), [i, i + 1])


def uri(port, topic="edge/events"):
    return "mqtt://{}:{}@127.0.0.1:{}/{}".format(USER, PASSWORD, port, topic)


def test_events_qos1_and_retained_online_offline_status(broker, caplog):
    caplog.set_level(logging.DEBUG)
    broker.start()
    sink = open_event_sink(uri(broker.port))
    sub = Subscriber(broker.port, "edge/events")
    try:
        sub.wait(lambda m: ("edge/events/status", "online", True) in m or ("edge/events/status", "online", False) in m)
        for i in range(5):
            sink.publish(ev(i))
        sub.wait(lambda m: len([x for x in m if x[0] == "edge/events"]) == 5)
        assert sub.events("edge/events") == [ev(i) for i in range(5)]
        wait_for(lambda: sink.counters()["delivered"] == 5)      # PUBACKs may trail the subscriber
        c = sink.counters()
        assert c["delivered"] == 5 and c["dropped"] == 0 and c["connects"] == 1 and sink.connected
        sink.close()
        sub.wait(lambda m: m[-1][:2] == ("edge/events/status", "offline"))
    finally:
        sub.close()
    # retained: a new subscriber sees the last status at once
    late = Subscriber(broker.port, "edge/events")
    try:
        late.wait(lambda m: ("edge/events/status", "offline", True) in m)
    finally:
        late.close()
    assert PASSWORD not in caplog.text and PASSWORD not in sink.name


def test_last_will_marks_offline_when_the_process_dies(broker, tmp_path):
    broker.start()
    code = ("import sys, time; from edge.eventsinks import open_event_sink\n"
            "s = open_event_sink(sys.argv[1])\n"
            "while not s.connected: time.sleep(0.05)\n"
            "print('ready', flush=True); time.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.Popen([sys.executable, "-c", code, uri(broker.port, "dies")], stdout=subprocess.PIPE, env=env)
    sub = Subscriber(broker.port, "dies")
    try:
        assert p.stdout.readline().strip() == b"ready"
        sub.wait(lambda m: ("dies/status", "online") in [x[:2] for x in m])
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        sub.wait(lambda m: m[-1][:2] == ("dies/status", "offline"))
    finally:
        if p.poll() is None:
            p.kill()
        sub.close()


def test_broker_down_at_start_then_up_delivers_the_queued_events(broker):
    sink = open_event_sink(uri(broker.port) + "?queue=3")
    t0 = time.perf_counter()
    for i in range(5):
        sink.publish(ev(i))                 # broker down: queued (3 kept), never blocking
    assert time.perf_counter() - t0 < 0.05
    time.sleep(1.5)
    c = sink.counters()
    assert c["connect_failures"] >= 1 and c["delivered"] == 0 and c["dropped"] == 2
    broker.start()
    sub = Subscriber(broker.port, "edge/events")
    try:
        end = time.time() + 20
        while sink.counters()["delivered"] < 3 and time.time() < end:
            time.sleep(0.1)
        c = sink.counters()
        assert c["delivered"] == 3 and c["connects"] == 1, c
    finally:
        sink.close()
        sub.close()


def test_broker_lost_mid_run_reconnects_with_backoff_and_counts(broker):
    broker.start()
    sink = open_event_sink(uri(broker.port))
    try:
        sink.publish(ev(0))
        end = time.time() + 10
        while sink.counters()["delivered"] < 1 and time.time() < end:
            time.sleep(0.05)
        broker.stop()
        end = time.time() + 10
        while sink.connected and time.time() < end:
            time.sleep(0.05)
        assert not sink.connected
        t0 = time.perf_counter()
        for i in range(1, 4):
            sink.publish(ev(i))
        assert time.perf_counter() - t0 < 0.05
        time.sleep(0.5)
        broker.start()
        sub = Subscriber(broker.port, "edge/events")
        end = time.time() + 40
        while sink.counters()["delivered"] < 4 and time.time() < end:
            time.sleep(0.1)
        sub.close()
        c = sink.counters()
        assert c["delivered"] == 4 and c["disconnects"] == 1 and c["connects"] == 2, c
    finally:
        sink.close()


def test_wrong_password_is_counted_and_not_logged(broker, caplog):
    caplog.set_level(logging.DEBUG)
    broker.start()
    sink = open_event_sink("mqtt://{}:wrong-secret@127.0.0.1:{}/x".format(USER, broker.port))
    try:
        sink.publish(ev(0))
        end = time.time() + 10
        while not sink.counters().get("connect_failures") and time.time() < end:
            time.sleep(0.05)
        c = sink.counters()
        assert c["connect_failures"] >= 1 and c["delivered"] == 0 and not sink.connected
    finally:
        sink.close(timeout=1)
    assert sink.counters()["dropped"] == 1
    assert "wrong-secret" not in caplog.text and "refused" in caplog.text


def _make_certs(d):
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl CLI)."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=edge-test-ca",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
         "-CAcreateserial", "-days", "2", "-out", str(d / "server.pem"), "-extfile", str(d / "ext.cnf"))


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl CLI not installed (needed to make test certificates)")
def test_tls_with_ca_delivers_and_a_wrong_ca_is_counted(broker, tmp_path):
    _make_certs(tmp_path)
    with open(str(broker.conf), "a") as f:
        f.write("cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n".format(tmp_path))
    broker.start()
    base = "mqtts://{}:{}@127.0.0.1:{}/tls".format(USER, PASSWORD, broker.port)
    good = open_event_sink(base + "?ca={}".format(tmp_path / "ca.pem"))
    try:
        good.publish(ev(0))
        assert wait_for(lambda: good.counters()["delivered"] == 1), good.counters()
    finally:
        good.close()
    other = tmp_path / "other"
    other.mkdir()
    _make_certs(other)
    bad = open_event_sink(base + "?ca={}".format(other / "ca.pem"))     # the broker's cert is not signed by it
    try:
        bad.publish(ev(1))
        assert wait_for(lambda: bad.counters().get("connect_failures", 0) >= 1)
        assert bad.counters()["delivered"] == 0 and not bad.connected
    finally:
        bad.close(timeout=1)
    with pytest.raises((OSError, IOError)):
        open_event_sink(base + "?ca={}".format(tmp_path / "missing.pem"))
