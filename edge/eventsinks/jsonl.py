"""Events appended to a JSON-lines file, one object per line, flushed per event."""
import errno
import json
import os

from .base import EventSink, SinkError


class JsonlEventSink(EventSink):
    kind = "file"

    def __init__(self, path, **kw):
        super(JsonlEventSink, self).__init__("events file " + path, **kw)
        self.path = path
        self._f = None

    def _open(self):
        d = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(d, exist_ok=True)
            self._f = open(self.path, "a", buffering=1)
        except OSError as e:
            raise SinkError("cannot open {}: {} (pick a writable path for --events)".format(self.path, e))

    def _deliver(self, event):
        if self._f is None:
            self._open()
        try:
            self._f.write(json.dumps(event, separators=(",", ":")) + "\n")
            self._f.flush()
        except OSError as e:
            if e.errno == errno.ENOSPC:
                self._count("disk_full")
            self._close_file()
            raise SinkError("cannot write {}: {}".format(self.path, e))

    def _close_file(self):
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass
            self._f = None

    def _shutdown(self):
        self._close_file()
