"""Test helper: the URL an ``edge-run --serve HOST:0`` subprocess prints once its live view listens."""
import re


def wait_for_live_view(proc) -> str:
    """Read the process's stderr until "live view on URL"; fails if it ends before serving."""
    while True:
        line = proc.stderr.readline().decode()
        assert line or proc.poll() is None, "edge-run ended before serving"
        m = re.search(r"live view on (http://\S+)", line)
        if m:
            return m.group(1)
