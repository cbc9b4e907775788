"""A stalled stream never hangs ``edge-run`` (issue 10, finding 8): three servers that stall, a
server that accepts and never answers, one frozen mid-stream (SIGSTOP) and one that vanishes
(killed); each run ends within 5 s of its ``--duration`` deadline and within 5 s of SIGTERM.

Before the fix a frozen H.265 server kept ``edge-run --duration 10`` running 20 s (the main thread
waited in GStreamer: set_state/get_state), a never-answering one kept ``--duration 4`` running
15 s. Runs use the default x86-cpu device config (stall 5 s, start 5 s, teardown 2 s)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from rtsp_server import ServerProcess, rtsp_test_marks, never_answering_server  # noqa: E402

from edge.sources.gstreamer import has_element  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GRACE = 5.0


pytestmark = rtsp_test_marks()


@pytest.fixture(scope="module")
def bundle_dir():
    from _tiny_models import cached_bundle
    return cached_bundle()


def _codec():
    return "h265" if has_element("x265enc") else "h264"


class Run:
    """``edge-run URL --duration D`` in a child process, timed from its launch."""

    def __init__(self, bundle_dir, url, duration, tmp_path):
        self.jl, self.sm = tmp_path / "p.jsonl", tmp_path / "s.json"
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([sys.executable, "-m", "edge.cli", "--device", "cpu", "--model", bundle_dir, url,
                                   "--duration", str(duration), "--jsonl", str(self.jl), "--summary", str(self.sm)],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def first_prediction(self, timeout=30.0) -> float:
        while time.monotonic() - self.t0 < timeout:
            if self.jl.exists() and self.jl.stat().st_size > 0:
                return time.monotonic()
            time.sleep(0.05)
        self.p.kill()
        raise AssertionError(f"no prediction: {self.p.communicate()[1][-2000:]}")

    def wait(self, limit: float):
        """(seconds from launch to exit, stdout, stderr); fails (and kills) when it outlives ``limit``."""
        try:
            out, err = self.p.communicate(timeout=max(0.1, limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
            raise AssertionError(f"edge-run still running {limit - self.t0:.1f} s after launch\n{err[-2000:]}")
        return time.monotonic() - self.t0, out, err

    def summary(self):
        return json.loads(self.sm.read_text())


def _stall(kind, srv):
    (srv.freeze if kind == "frozen" else srv.kill)()


@pytest.mark.parametrize("kind", ["frozen", "vanished"])
def test_duration_ends_on_time_when_the_server_stalls(bundle_dir, tmp_path, kind):
    duration = 7.0
    with ServerProcess(_codec()) as srv:
        run = Run(bundle_dir, srv.url(), duration, tmp_path)
        t_first = run.first_prediction()
        _stall(kind, srv)
        # the run loop started before the first prediction, so its deadline is before t_first + duration
        elapsed, out, err = run.wait(t_first + duration + GRACE)
    assert run.p.returncode == 0, err
    s = run.summary()
    assert s["stop_reason"] == "duration" and s["source_errors"] >= 1, (s, err)


@pytest.mark.parametrize("kind", ["frozen", "vanished"])
def test_sigterm_ends_the_run_while_the_server_stalls(bundle_dir, tmp_path, kind):
    with ServerProcess(_codec()) as srv:
        run = Run(bundle_dir, srv.url(), 60, tmp_path)
        run.first_prediction()
        _stall(kind, srv)
        time.sleep(6.0)   # past stall_s (5 s): a reconnect is under way, the worst moment before the fix
        run.p.send_signal(signal.SIGTERM)
        t_sig = time.monotonic()
        elapsed, out, err = run.wait(t_sig + GRACE)
    assert run.p.returncode == 0, err
    s = run.summary()
    recs = [json.loads(line) for line in run.jl.read_text().splitlines()]   # every line complete
    assert s["stop_reason"] == "SIGTERM" and len(recs) == s["predictions"] > 0


def test_server_that_never_answers(bundle_dir, tmp_path):
    """Accepts the TCP connection, never sends a byte: edge-run stops within start_s with one
    line naming the stream (exit 2), well inside its --duration deadline + 5 s."""
    duration = 3.0
    port, close = never_answering_server()
    try:
        run = Run(bundle_dir, f"rtsp://viewer:hunter2@127.0.0.1:{port}/stream", duration, tmp_path)
        startup = 4.0   # interpreter + model load before the run's clock starts (generous on 2 busy cores)
        elapsed, out, err = run.wait(run.t0 + startup + duration + GRACE)
    finally:
        close()
    assert run.p.returncode == 2, err
    assert "127.0.0.1" in err and "hunter2" not in err + out and "Traceback" not in err


def test_sigterm_while_connecting_to_a_server_that_never_answers(bundle_dir, tmp_path):
    port, close = never_answering_server()
    try:
        run = Run(bundle_dir, f"rtsp://127.0.0.1:{port}/stream", 60, tmp_path)
        time.sleep(3.5)
        run.p.send_signal(signal.SIGTERM)
        t_sig = time.monotonic()
        elapsed, out, err = run.wait(t_sig + GRACE)
    finally:
        close()
    assert "Traceback" not in err
