"""The one interface every event sink has, and the bounded queue + worker thread they share.

``publish(event)`` never blocks the caller: it puts the event into a bounded queue (when the
queue is full the *oldest* waiting event is dropped and counted) and returns. One worker thread per
sink delivers (``_deliver(event)``), retrying with exponential backoff. ``close(timeout)`` lets
the worker drain for at most ``timeout`` seconds, then gives up (what is left is counted as
dropped). ``counters()`` returns plain integers for the run summary and ``/metrics``:

- ``published``: events handed to ``publish()``
- ``delivered``: events the other side accepted
- ``dropped``: events given up on (queue full, retries exhausted, left at close)
- ``failures``: failed delivery attempts (each retry counts)
- ``retries``: attempts after the first
- ``queued``: events waiting now
plus sink-specific ones (``disconnects``, ``disk_full``, ...). ``faults_by_camera()`` gives the
dropped events per camera.
"""
import collections
import logging
import threading
import time
from typing import Deque, Dict, Optional

log = logging.getLogger("edge.eventsinks")
LOG_EVERY_S = 30.0


class SinkError(Exception):
    """A delivery attempt failed; ``retry`` False = retrying cannot help (e.g. HTTP 400)."""

    def __init__(self, message, retry=True):
        super(SinkError, self).__init__(message)
        self.retry = retry


class SinkUnavailable(RuntimeError):
    """A sink's library is not installed; the message says what to install."""


class Backoff(object):
    """Exponential backoff: ``initial * 2**n`` capped at ``maximum`` (seconds)."""

    def __init__(self, initial=0.2, maximum=10.0):
        self.initial = float(initial)
        self.maximum = float(maximum)

    def delay(self, attempt):
        # type: (int) -> float
        return min(self.maximum, self.initial * (2.0 ** max(0, attempt)))


class EventSink(object):
    """Base class: bounded queue, one worker thread, counters. Subclasses implement ``_deliver``."""

    kind = "sink"

    def __init__(self, name, queue_size=256, retries=3, backoff=None):
        # type: (str, int, int, Optional[Backoff]) -> None
        self.name = name                     # safe to log: no credentials
        self.queue_size = max(1, int(queue_size))
        self.retries = max(0, int(retries))
        self.backoff = backoff or Backoff()
        self._q = collections.deque()  # type: Deque[Dict]
        self._cv = threading.Condition()
        self._closing = False
        self._abort = False
        self._counts = collections.Counter()  # type: collections.Counter
        self._inflight = None  # type: Optional[Dict]
        self._by_camera = collections.Counter()  # type: collections.Counter
        self.last_error = None  # type: Optional[str]
        self._logged = ["", 0.0, 0]   # last logged fault, when, faults not logged since
        self._thread = threading.Thread(target=self._run, name="eventsink-" + self.kind, daemon=True)
        self._started = False

    # caller side --------------------------------------------------------------------------------
    def start(self):
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def publish(self, event):
        # type: (Dict) -> None
        """Queue ``event`` for delivery; never blocks. After ``close()`` events are dropped."""
        with self._cv:
            self._counts["published"] += 1
            if self._closing:
                self._drop(event, "closed")
                return
            if len(self._q) >= self.queue_size:
                self._drop(self._q.popleft(), "queue full")
            self._q.append(event)
            self._cv.notify()

    def close(self, timeout=5.0):
        # type: (float) -> None
        """Deliver what is queued for at most ``timeout`` s, then stop; never raises."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        if self._started:
            self._thread.join(max(0.0, timeout))
        with self._cv:
            self._abort = True
            while self._q:
                self._drop(self._q.popleft(), "left at close")
            if self._inflight is not None:       # the worker is stuck in a delivery: give it up
                self._drop(self._inflight, "abandoned at close")
                self._inflight = None
            self._cv.notify_all()
        try:
            self._shutdown()
        except Exception as e:  # a sink's cleanup must not crash the run
            self._fault("close: {}".format(e))

    def counters(self):
        # type: () -> Dict[str, int]
        with self._cv:
            c = {k: int(self._counts.get(k, 0)) for k in
                 ("published", "delivered", "dropped", "failures", "retries")}
            c.update({k: int(v) for k, v in self._counts.items() if k not in c})
            c["queued"] = len(self._q)
        return c

    def faults_by_camera(self):
        # type: () -> Dict[str, int]
        with self._cv:
            return dict(self._by_camera)

    # worker side --------------------------------------------------------------------------------
    def _count(self, key, n=1):
        with self._cv:
            self._counts[key] += n

    def _drop(self, event, why):
        """Called with the lock held."""
        self._counts["dropped"] += 1
        self._by_camera[str(event.get("camera"))] += 1
        log.debug("%s: dropped an event (%s)", self.name, why)

    def _fault(self, message):
        """Remember and log a fault; a repeating fault is logged at most every ``LOG_EVERY_S``."""
        now = time.monotonic()
        with self._cv:
            self.last_error = message
            quiet = message == self._logged[0] and now - self._logged[1] < LOG_EVERY_S
            if quiet:
                self._logged[2] += 1
                return
            repeats, self._logged = self._logged[2], [message, now, 0]
        log.warning("%s: %s%s", self.name, message,
                    " (and {} more faults since the last message)".format(repeats) if repeats else "")

    def _next(self):
        with self._cv:
            while not self._q and not self._closing:
                self._cv.wait(0.5)
            if not self._q:
                return None
            self._inflight = self._q.popleft()
            return self._inflight

    def _done(self, event, delivered, why=""):
        """Count the outcome of ``event`` unless close() already gave it up."""
        with self._cv:
            if self._inflight is not event:
                return
            self._inflight = None
            if delivered:
                self._counts["delivered"] += 1
            else:
                self._drop(event, why)

    def _run(self):
        while True:
            ev = self._next()
            if ev is None:
                return
            self._deliver_with_retries(ev)

    def _sleep(self, seconds):
        """Interruptible by ``close()`` giving up (returns False then)."""
        with self._cv:
            end = time.monotonic() + seconds
            while not self._abort:
                left = end - time.monotonic()
                if left <= 0:
                    return True
                self._cv.wait(left)
        return False

    def _deliver_with_retries(self, ev):
        attempt = 0
        while True:
            try:
                self._deliver(ev)
                return self._done(ev, True)
            except SinkError as e:
                self._count("failures")
                self._fault(str(e))
                if not e.retry or attempt >= self.retries:
                    return self._done(ev, False, "delivery failed")
            except Exception as e:  # an unexpected bug in a sink is still only a counted fault
                self._count("failures")
                self._fault("{}: {}".format(type(e).__name__, e))
                return self._done(ev, False, "error")
            if not self._sleep(self.backoff.delay(attempt)):
                return self._done(ev, False, "closing")
            attempt += 1
            self._count("retries")

    def _deliver(self, event):
        # type: (Dict) -> None
        raise NotImplementedError

    def _shutdown(self):
        pass
