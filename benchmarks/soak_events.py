"""Soak of the event path with faults injected: memory stays bounded and the capture loop never blocks.

A capture-loop stand-in feeds ``--cameras`` cameras of 640x480 frames at ``--fps`` into an
``EventHub`` (deterministic scores that switch class every few seconds, so events start and end all
the time) with every sink attached and every fault the issue lists:

- MQTT to a real mosquitto (if installed) that is *down at start*, comes up, and is killed and
  restarted every ``--broker-cycle`` seconds (mid-run losses); without mosquitto, a dead port;
- a webhook that times out on every other request and answers 500 otherwise;
- clip recording onto a 1 MB tmpfs (*disk full* after the first clips; falls back to an
  unwritable directory when mounting is not allowed);
- a JSONL file, and the live web view with one MJPEG viewer and a /metrics scrape every second.

RSS (``VmRSS`` of this process) is sampled every ``--sample-every`` s; growth = last sample minus the
first sample after the warm-up (10% of the run, at least 30 s). Also reported: p50/p99/max of the
``on_frame``/``on_prediction`` calls (a blocked sink would show here; on a shared 2-core machine the
max includes scheduler stalls), events, and every fault
counter. Target: RSS growth < 5 MB over 10 minutes.

    python -m benchmarks.soak_events                 # 10 minutes
    python -m benchmarks.soak_events --minutes 1 --json soak_events.json
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np

from benchmarks.hook_server import free_port, start_hook_server
from edge.events import EventConfig
from edge.eventsinks import open_event_sink
from edge.eventsinks.hub import EventHub
from edge.eventsinks.record import ClipRecorder
from edge.web import WebView

RSS_TARGET_MB = 5.0
LABELS = ["Archery", "Surfing", "HorseRace", "_background"]


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def start_bad_webhook():
    """Every other request sleeps 3 s (the sink times out at 1 s), the others get HTTP 500."""
    srv, url = start_hook_server(lambda n: (500, 3.0 if n % 2 else 0.0))
    return srv, url + "?timeout=1&retries=2&backoff=0.2&queue=64"


class FlakyBroker(object):
    """mosquitto down at start, up after ``first_up`` s, then killed/restarted every ``cycle`` s."""

    def __init__(self, workdir, first_up=20.0, cycle=60.0):
        self.exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
        self.port = free_port()
        self.conf = os.path.join(workdir, "mosquitto.conf")
        import pwd
        with open(self.conf, "w") as f:
            f.write("listener {} 127.0.0.1\nallow_anonymous true\npersistence false\nuser {}\n".format(
                self.port, pwd.getpwuid(os.getuid()).pw_name))
        self.first_up, self.cycle = first_up, cycle
        self.proc = None
        self.stop = threading.Event()
        self.kills = 0

    def run(self):
        if self.exe is None or self.stop.wait(self.first_up):
            return
        while not self.stop.is_set():
            self.proc = subprocess.Popen([self.exe, "-c", self.conf], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            if self.stop.wait(self.cycle * 0.8):
                break
            self.proc.kill()
            self.proc.wait()
            self.kills += 1
            if self.stop.wait(self.cycle * 0.2):
                break
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def mount_tiny_disk(path, size="1m"):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.returncode == 0


def viewer(url, stop):
    """One MJPEG client reading continuously and a /metrics scrape every second."""
    def mjpeg():
        while not stop.is_set():
            try:
                r = urllib.request.urlopen(url + "stream/cam0.mjpg", timeout=5)
                while not stop.is_set():
                    if not r.read1(65536):
                        break
                r.close()
            except OSError:
                time.sleep(0.5)

    def scrape():
        while not stop.wait(1.0):
            try:
                urllib.request.urlopen(url + "metrics", timeout=5).read()
            except OSError:
                pass
    for fn in (mjpeg, scrape):
        threading.Thread(target=fn, daemon=True).start()


def scores_at(t, cam):
    """Class k for 6 s, then 3 s of background; shifted per camera."""
    phase = (t + 2.5 * cam) % 9.0
    k = int((t + 2.5 * cam) // 9.0) % 3
    s = np.full(len(LABELS), 0.02)
    s[k if phase < 6.0 else 3] = 0.94
    return s


def build(work, tiny, mqtt_port):
    cfg = EventConfig(enter=0.6, exit=0.4, min_duration_s=0.5, hold_s=0.5, update_every_s=2.0)
    web = WebView(port=0).start()
    srv, hook = start_bad_webhook()
    sinks = [open_event_sink("mqtt://127.0.0.1:{}/soak/events?queue=64".format(mqtt_port)),
             open_event_sink(hook), open_event_sink(os.path.join(work, "events.jsonl"))]
    rec = ClipRecorder(tiny, pre_s=1.0, post_s=1.0, fps=10.0)
    return EventHub(LABELS, cfg, sinks=sinks, recorder=rec, web=web), web, srv


class Watchdog(object):
    """Prints every thread's stack once per stall when a loop call takes longer than ``limit_s``:
    tells a blocking sink (its frames show in the main thread) from the machine starving us."""

    def __init__(self, limit_s=0.15):
        self.limit_s = limit_s
        self.busy_since = None
        self.stalls = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        main = threading.main_thread().ident
        reported = None
        while True:
            time.sleep(0.05)
            since = self.busy_since
            if since is None or since == reported or time.monotonic() - since < self.limit_s:
                continue
            reported = since
            self.stalls += 1
            frames = sys._current_frames()
            import traceback
            lines = ["stall > {:.0f} ms; main thread at:".format(self.limit_s * 1e3)]
            lines += [l.rstrip() for l in traceback.format_stack(frames[main])[-3:]] if main in frames else []
            print("\n".join(lines), flush=True)


def loop(hub, cameras, fps, seconds, sample_every, on_sample, watchdog=None):
    frames = [np.random.default_rng(i).integers(0, 255, (480, 640, 3), dtype=np.uint8) for i in range(8)]
    n_max = int(seconds * fps * cameras) + 16        # preallocated: the harness must not grow either
    calls = {"on_frame_ms": np.zeros(n_max, np.float32), "on_prediction_ms": np.zeros(n_max, np.float32)}
    k = 0
    t_start = time.monotonic()
    next_sample, i = 0.0, 0
    while True:
        t = i / fps
        now = time.monotonic() - t_start
        if now >= seconds:
            break
        if t > now:
            time.sleep(t - now)
        for c in range(cameras):
            cam = "cam{}".format(c)
            if watchdog is not None:
                watchdog.busy_since = time.monotonic()
            a = time.perf_counter()
            hub.on_frame(cam, frames[(i + c) % len(frames)], t, time.time())
            b = time.perf_counter()
            hub.on_prediction(cam, scores_at(t, c), t, time.time(), i, {"capture": 1.0, "inference": 2.0})
            e = time.perf_counter()
            if watchdog is not None:
                watchdog.busy_since = None
            if k < n_max:
                calls["on_frame_ms"][k] = (b - a) * 1e3
                calls["on_prediction_ms"][k] = (e - b) * 1e3
                k += 1
            if i % int(fps) == 0:
                hub.set_stats(cam, frames=i + 1, dropped=0, predictions=i + 1)
        if now >= next_sample:
            on_sample(now)
            next_sample += sample_every
        i += 1
    stats = {key: {"max": round(float(v[:k].max()), 2), "p50": round(float(np.percentile(v[:k], 50)), 3),
                   "p99": round(float(np.percentile(v[:k], 99)), 3), "over_10ms": int((v[:k] > 10).sum())}
             for key, v in calls.items() if k}
    return stats, i


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="targets: RSS growth < {} MB; no call of the loop blocked".format(RSS_TARGET_MB))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--sample-every", type=float, default=10.0)
    ap.add_argument("--broker-cycle", type=float, default=60.0, help="seconds between broker kills")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--baseline", action="store_true",
                    help="detector only (no sinks, recorder, web, faults): the machine's own stalls, to compare")
    ap.add_argument("--watchdog", action="store_true",
                    help="print the main thread's stack whenever a loop call stalls > 150 ms")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="also print the Python allocations that grew most after the warm-up")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # run the clean-up (umount, broker) on kill
    seconds = a.minutes * 60.0
    work = tempfile.mkdtemp(prefix="soak-events-")
    tiny = os.path.join(work, "tiny")
    disk = "tmpfs 1 MB (disk full)" if mount_tiny_disk(tiny) else None
    if disk is None:
        open(tiny, "w").close()           # a file where the clip directory must go: unwritable
        tiny = os.path.join(tiny, "clips")
        disk = "unwritable directory (tmpfs mount not allowed)"
    broker = FlakyBroker(work, first_up=min(20.0, seconds / 10), cycle=a.broker_cycle)
    if not a.baseline:
        threading.Thread(target=broker.run, daemon=True).start()
    if a.baseline:
        hub, web, srv = EventHub(LABELS, EventConfig()), None, None
    else:
        hub, web, srv = build(work, tiny, broker.port)
    stop = threading.Event()
    if web is not None:
        viewer(web.url, stop)
    warmup = max(30.0, seconds / 10)
    samples = []

    traced = {}

    def on_sample(now):
        if a.tracemalloc and "base" not in traced and now >= warmup:
            import tracemalloc
            traced["base"] = tracemalloc.take_snapshot()
        samples.append((round(now, 1), round(rss_mb(), 2)))
        c = hub.counters()
        print("[{:6.0f} s] RSS {:.1f} MB  events {}  sinks {}".format(
            now, samples[-1][1], sum(d["start"] for d in c["by_camera"].values()),
            {k.split()[0]: (v["delivered"], v["dropped"]) for k, v in c["sinks"].items()}), flush=True)

    if a.tracemalloc:
        import tracemalloc
        tracemalloc.start(8)
    try:
        watchdog = Watchdog() if a.watchdog else None
        worst, n = loop(hub, a.cameras, a.fps, seconds, a.sample_every, on_sample, watchdog)
    finally:
        stop.set()
        broker.stop.set()
        t0 = time.monotonic()
        counters = hub.close(timeout=3.0)
        close_s = time.monotonic() - t0
        if web is not None:
            web.close()
            srv.shutdown()
        if disk.startswith("tmpfs"):
            subprocess.run(["umount", tiny])
        shutil.rmtree(work, ignore_errors=True)
    if "base" in traced:
        import tracemalloc
        for stat in tracemalloc.take_snapshot().compare_to(traced["base"], "traceback")[:8]:
            print("tracemalloc: {:+.1f} KB".format(stat.size_diff / 1024.0), "\n   ".join(stat.traceback.format()[-4:]))
    after = [s for s in samples if s[0] >= warmup] or samples[-1:]
    growth = samples[-1][1] - after[0][1]
    result = {"minutes": a.minutes, "cameras": a.cameras, "fps": a.fps, "loop_iterations": n,
              "rss_warmup_mb": after[0][1], "rss_last_mb": samples[-1][1], "rss_growth_mb": round(growth, 2),
              "rss_target_mb": RSS_TARGET_MB, "pass": growth < RSS_TARGET_MB,
              "loop_call_ms": worst, "close_s": round(close_s, 2),
              "broker": "mosquitto killed {} times".format(broker.kills) if broker.exe else "none (dead port)",
              "disk": disk, "web_requests": web.counts["requests"] if web is not None else 0, "counters": counters, "rss_samples": samples}
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
