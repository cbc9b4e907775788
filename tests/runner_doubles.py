"""Source test doubles for the runner's orchestration (stopping, the generator); never offered to users.

``FrameSource(n, then=...)`` delivers ``n`` synthetic 30 fps frames (moving noise) as fast as asked,
then either ends like a file (``then="end"``), returns nothing on every read (``"silent"``, a live
source that stalled but honours the read timeout), or blocks forever inside ``read()`` (``"block"``,
a source stuck in a call that never returns).

``python tests/runner_doubles.py MODE N -- EDGE_RUN_ARGS...`` runs ``edge.cli.main`` with
``open_source`` replaced by ``FrameSource(N, then=MODE)``: the real CLI, signals and outputs.
"""
import sys
import threading
import time

import numpy as np

from edge.sources import EndOfStream, Frame, Source
from edge.sources.base import now_ns


class FrameSource(Source):
    kind = "double"

    def __init__(self, n: int, then: str = "end", size=(32, 32), fps: float = 30.0, live: bool = False):
        super().__init__(uri="double://{0}?then={1}".format(n, then))
        self.n, self.then, self.live = n, then, live
        self.fps, self.size = fps, size
        rng = np.random.default_rng(0)
        self._base = rng.integers(0, 255, size + (3,), dtype=np.uint8)
        self.reads = 0
        self.blocked = threading.Event()

    def read(self, timeout: float = 1.0):
        self.reads += 1
        i = self.stats.frames
        if i < self.n:
            self.stats.frames += 1
            img = np.roll(self._base, 2 * i, axis=1)
            return Frame(img, i / self.fps, i, capture_ns=now_ns())
        if self.then == "end":
            raise EndOfStream()
        if self.then == "silent":
            time.sleep(timeout)
            return None
        self.blocked.set()
        threading.Event().wait()   # "block": never returns
        return None


if __name__ == "__main__":
    import edge.runner

    mode, n = sys.argv[1], int(sys.argv[2])
    edge.runner.open_source = lambda uri, cfg: FrameSource(n, then=mode, live=True)
    from edge.cli import main
    sys.exit(main(sys.argv[sys.argv.index("--") + 1:]))
