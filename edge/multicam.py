"""Several cameras in one process: ``edge-run --model B cam1 cam2 ...`` or ``--cameras cameras.yaml``.

One model is loaded once and shared; each camera has its own source, capture thread, feature ring
(``StreamPredictor``), event state (one ``EventHub``, one detector per camera), stage timer and outputs.

Threads. A capture thread per camera reads its source, resizes the frame to the model size and puts
it in that camera's bounded queue; when the queue is full the oldest frame is dropped and counted
(in the camera's ``dropped``). The capture thread never waits for the model, so a slow scheduler or
a slow camera never stalls another camera's capture. The scheduler (the calling thread) works in
rounds: one queued frame of every camera that has one; the frames' missing encoder features are
computed in ONE batched encoder call (CPU TFLite / ONNX Runtime when the model takes a batch, see
``ClipClassifier.encode_frames``; the Edge TPU runs them one at a time, interleaved camera by
camera), then each due camera's head runs and its outputs get the frame and prediction.

A camera whose file ends or whose source fails for good stops alone; the others go on. The run ends
at --duration, on SIGINT/SIGTERM, or when every camera has ended.

Camera list file (``--cameras cameras.yaml``)::

    cameras:
      - name: door                      # default cam1, cam2, ...
        uri: rtsp://user:pass@10.0.0.5/stream
        jsonl: preds-door.jsonl         # optional, else --jsonl with {camera} (see below)
        output: door.mp4                # optional annotated video (or display://0)
      - uri: /dev/video0

``--jsonl FILE`` with several cameras: ``{camera}`` in FILE is replaced by the camera name; without
it the name goes before the suffix (``preds.jsonl`` -> ``preds.door.jsonl``). ``--summary FILE`` is
one file: the totals at the top level and each camera's summary under ``cameras``.
"""
import collections
import logging
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np

from . import __version__
from . import runner as _runner
from .records import RunSummary
from .runner import (CLOSE_DEADLINE_S, READ_TIMEOUT_S, RunError, RunOptions, Runner, StopControl,
                     call_with_deadline, close_events, load_model, open_classifier, open_events,
                     resolve_config, resolve_model, source_config, stop_now)
from .sinks import HubSink, OutputError, Sink, check_output, format_summary
from .sources import CameraNotFound, EndOfStream, SourceError
from .sources.base import now_ns
from .sources.uri import URIError, parse_uri, redact
from .preprocess import resize_rgb
from .stream import StreamPredictor
from .timing import STAGES, StageTimer

log = logging.getLogger("edge.multicam")
QUEUE_FRAMES = 8   # per camera: frames waiting for the scheduler before the oldest is dropped


class CameraSpec(object):
    """One camera of a multi-camera run: name, input URI, its own JSONL / annotated video."""

    def __init__(self, name, uri, jsonl=None, output=None):
        # type: (str, str, Optional[str], Optional[str]) -> None
        self.name, self.uri, self.jsonl, self.output = str(name), str(uri), jsonl, output

    def __repr__(self):
        return "CameraSpec({0!r}, {1!r})".format(self.name, redact(self.uri))


def per_camera_path(template, camera):
    # type: (Optional[str], str) -> Optional[str]
    """``{camera}`` replaced, else the name inserted before the suffix: preds.jsonl -> preds.door.jsonl."""
    if not template:
        return None
    if "{camera}" in template:
        return template.replace("{camera}", camera)
    root, ext = os.path.splitext(template)
    return "{0}.{1}{2}".format(root, camera, ext)


def cameras_from_inputs(inputs, jsonl=None):
    # type: (List[str], Optional[str]) -> List[CameraSpec]
    return [CameraSpec("cam{0}".format(i + 1), u, per_camera_path(jsonl, "cam{0}".format(i + 1)))
            for i, u in enumerate(inputs)]


def load_cameras(path, jsonl=None):
    # type: (str, Optional[str]) -> List[CameraSpec]
    """The cameras of a ``--cameras`` YAML file (see the module docstring); RunError when malformed."""
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise RunError("--cameras {0}: {1}".format(path, str(e).splitlines()[0]))
    items = data.get("cameras") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise RunError("--cameras {0}: expected a list under 'cameras:', each with a 'uri' "
                       "(see edge-run --help)".format(path))
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"uri": item}
        if not isinstance(item, dict) or not item.get("uri"):
            raise RunError("--cameras {0}: camera {1} has no 'uri'".format(path, i + 1))
        unknown = sorted(set(item) - {"name", "uri", "jsonl", "output"})
        if unknown:
            raise RunError("--cameras {0}: camera {1}: unknown keys {2} (known: name, uri, jsonl, output)".format(
                path, i + 1, ", ".join(unknown)))
        name = str(item.get("name") or "cam{0}".format(i + 1))
        out.append(CameraSpec(name, item["uri"], item.get("jsonl") or per_camera_path(jsonl, name),
                              item.get("output")))
    check_names(out)
    return out


def check_names(cams):
    # type: (List[CameraSpec]) -> None
    names = [c.name for c in cams]
    dup = sorted(set(n for n in names if names.count(n) > 1))
    if dup:
        raise RunError("camera names must differ: {0} given twice".format(", ".join(dup)))
    bad = [n for n in names if not n or "/" in n or n.startswith(".")]
    if bad:
        raise RunError("camera name {0!r}: use letters, digits, - or _".format(bad[0]))


class _TeeTimer(StageTimer):
    """A camera's stage timer that also feeds the run's total timer."""

    def __init__(self, total):
        # type: (StageTimer) -> None
        super(_TeeTimer, self).__init__(STAGES)
        self.total = total

    def add(self, stage, ms):
        super(_TeeTimer, self).add(stage, ms)
        self.total.add(stage, ms)


class _Item(object):
    __slots__ = ("frame", "small", "pre_ms")

    def __init__(self, frame, small, pre_ms):
        self.frame, self.small, self.pre_ms = frame, small, pre_ms


class CameraFeed(Runner):
    """One camera: a ``Runner`` that shares the model and is driven by the scheduler (its
    ``_record``, ``_write``, ``open_outputs`` and ``summary`` are the single-camera ones)."""

    def __init__(self, spec, opts, total_timer, queue_frames=QUEUE_FRAMES):
        # type: (CameraSpec, RunOptions, StageTimer, int) -> None
        cam_opts = RunOptions(**dict(vars(opts), input=spec.uri, output=spec.output, jsonl=spec.jsonl,
                                     summary=None, quiet=True, hard_stop=False, camera=spec.name, events=None))
        super(CameraFeed, self).__init__(cam_opts)
        self.name = spec.name
        self.timer = _TeeTimer(total_timer)
        self.queue = collections.deque()  # type: collections.deque
        self.queue_frames = int(queue_frames)
        self.queue_dropped = 0
        self.captured = 0
        self.flushed = False
        self.done = threading.Event()
        self.halt = threading.Event()
        self.wake = None  # type: Optional[threading.Event]
        self.thread = None  # type: Optional[threading.Thread]
        self.lock = threading.Lock()

    # capture thread ---------------------------------------------------------------------------------
    def start_capture(self, wake):
        # type: (threading.Event) -> None
        self.wake = wake
        self._t_start = time.perf_counter()
        self.thread = threading.Thread(target=self._capture, name="capture-" + self.name, daemon=True)
        self.thread.start()

    def _capture(self):
        try:
            while not self.halt.is_set():
                if self.opts.max_frames is not None and self.captured >= self.opts.max_frames:
                    self.stop_reason = "max frames"
                    return
                try:
                    frame = self.source.read(READ_TIMEOUT_S)
                except EndOfStream:
                    self.stop_reason = "end of stream"
                    return
                except SourceError as e:
                    self.stop_reason, self.exit_code = "source error: " + redact(str(e)), 1
                    return
                if frame is not None:
                    self._enqueue(frame)
        except Exception as e:  # a bug or an odd source must not take the other cameras down
            log.exception("%s: capture stopped", self.name)
            self.stop_reason, self.exit_code = "capture error: {0}".format(e), 1
        finally:
            self.done.set()
            self.wake.set()

    def _enqueue(self, frame):
        t0 = time.perf_counter()
        small = resize_rgb(frame.image, self.bundle.input.size)   # the model size (StreamPredictor.preprocess)
        item = _Item(frame, small, (time.perf_counter() - t0) * 1e3)
        self.captured += 1
        with self.lock:
            if len(self.queue) >= self.queue_frames:
                self.queue.popleft()
                self.queue_dropped += 1
                self.source.stats.dropped += 1   # the caller never got it: a drop like any other
            self.queue.append(item)
        self.wake.set()

    def pop(self):
        # type: () -> Optional[_Item]
        with self.lock:
            return self.queue.popleft() if self.queue else None

    @property
    def finished(self):
        # type: () -> bool
        return self.done.is_set() and not self.queue

    # scheduler side ---------------------------------------------------------------------------------
    def add(self, item):
        """The frame into the ring; the ``Due`` when a prediction is due at it."""
        f = item.frame
        got_ns = now_ns()
        if self.predictor is None:   # at the first frame: a live source knows its frame rate by then
            self.predictor = StreamPredictor(self.classifier, self.bundle.labels, self.bundle.input,
                                             self.bundle.sampling, self.config.runner, fps=self.source.fps)
        due = self.predictor.add(f.image, f.timestamp_s, f.index, f.epoch, small=item.small)
        self.timer.add("capture", (got_ns - f.capture_ns) / 1e6)
        self.timer.add("preprocess", item.pre_ms)
        self.frames_seen += 1
        self._t_last = time.perf_counter()
        if self._t_first is None:
            self._t_first = self._t_last
        return due, got_ns

    def flush(self):
        """This camera ended while others go on: a file that ended before one clip span gets one
        partial prediction (as edge-run makes alone); its open events end now, /metrics says so."""
        self.flushed = True
        if self.stop_reason == "end of stream" and self.predictor is not None:
            pred = self.predictor.flush()
            if pred is not None:
                self._write(None, self._record(pred, None, None))
        if self.hub is not None:
            self.hub.flush(self.name)
            for s in self.sinks:
                if isinstance(s, HubSink):
                    s.report_stats()

    def summary(self):
        s = super(CameraFeed, self).summary()
        s.source = dict(s.source, name=self.name, queue_dropped=self.queue_dropped)
        return s


class MultiRunner(object):
    """``MultiRunner(options, cameras).run()``: the multi-camera edge-run (see the module docstring)."""

    def __init__(self, options, cameras, classifier_hook=None, queue_frames=QUEUE_FRAMES):
        # type: (RunOptions, List[CameraSpec], Any, int) -> None
        if len(cameras) < 1:
            raise RunError("no cameras")
        check_names(cameras)
        self.opts, self.specs, self.hook = options, list(cameras), classifier_hook
        self.total_timer = StageTimer(STAGES)
        self.feeds = [CameraFeed(c, options, self.total_timer, queue_frames) for c in self.specs]
        self.stop = StopControl(options.duration, None, on_force=self._force_exit if options.hard_stop else None)
        self.hub = None
        self.events = {}  # type: dict
        self.config = self.bundle = self.selection = self.classifier = None
        self.rounds = self.batched_calls = self.batched_frames = self.max_batch = 0
        self.stop_reason = "stopped"
        self._wake = threading.Event()
        self._t_start = None  # type: Optional[float]
        self._status = None  # type: Optional[MultiStatus]

    # setup: everything that can fail, before capture ------------------------------------------------
    def setup(self):
        o = self.opts
        self._check_outputs()
        self.config = cfg = resolve_config(o)
        bundle = load_model(resolve_model(o), o.labels)
        self.bundle, self.selection, clf = open_classifier(bundle, cfg, o.backend)   # the one model
        self.classifier = self.hook(clf) if self.hook else clf
        try:
            self.hub = open_events(o.events, self.bundle.labels, cfg.runner.top_k)
            if self.hub is not None and self.hub.web is not None and not o.quiet:
                print("edge-run: live view on {0}".format(self.hub.web.url), file=sys.stderr, flush=True)
            for feed in self.feeds:
                self._open_feed(feed)
        except RunError:
            self.close()
            raise

    def _check_outputs(self):
        for feed in self.feeds:
            try:
                uri = parse_uri(feed.opts.input)
            except URIError as e:
                raise RunError("{0}: {1}".format(feed.name, e))
            if uri.kind == "display":
                raise RunError("{0}: display://0 is an output, not a camera".format(feed.name))
            try:
                for out in _runner.output_uris(feed.opts, live=True):
                    check_output(out)
                if self.opts.summary:
                    check_output("summary:" + self.opts.summary)
            except OutputError as e:
                raise RunError("{0}: {1}".format(feed.name, e))
            feed.uri = uri

    def _open_feed(self, feed):
        feed.config, feed.bundle, feed.selection, feed.classifier = (self.config, self.bundle, self.selection,
                                                                     self.classifier)
        try:
            feed.source = _runner.open_source(feed.opts.input, source_config(self.config, feed.opts, self.bundle.input))
        except CameraNotFound as e:
            raise RunError("{0}: {1}".format(feed.name, e))
        except (SourceError, URIError, ValueError) as e:
            raise RunError("{0}: {1}".format(feed.name, redact(str(e))))
        feed.hub = self.hub

    # the run ----------------------------------------------------------------------------------------
    def run(self):
        # type: () -> dict
        self.stop.install()
        try:
            if self.classifier is None:
                self.setup()
            for feed in self.feeds:
                try:
                    feed.sinks = feed.open_outputs()
                except RunError as e:
                    raise RunError("{0}: {1}".format(feed.name, e))
            if not self.opts.quiet:
                self._status = MultiStatus(self.feeds)
            self.stop.start()
            self._t_start = time.perf_counter()
            for feed in self.feeds:
                feed.start_capture(self._wake)
            self.loop()
            self.stop.loop_ended()
            self._halt_capture()
            self._finish_events()
            summary = self.summary()
            self._close_sinks(summary)
            self.stop.done = True
            return summary.to_dict()
        finally:
            self._close_sinks(None)
            self.close()
            self.stop.restore()

    def loop(self):
        """Rounds until a stop condition or until every camera has ended (see the module docstring)."""
        while True:
            reason = self.stop.reason(0)
            if reason:
                self.stop_reason = reason
                return
            batch = [(f, f.pop()) for f in self.feeds]
            batch = [(f, it) for f, it in batch if it is not None]
            busy = set(id(f) for f, _ in batch)
            for f in self.feeds:
                if not f.flushed and f.finished and id(f) not in busy:   # its last frame is done
                    f.flush()
            if batch:
                self.round(batch)
                continue
            if all(f.finished for f in self.feeds):
                self.stop_reason = "every camera ended"
                return
            self._wake.wait(READ_TIMEOUT_S)
            self._wake.clear()
            if self._status is not None:
                self._status.tick()

    def round(self, batch):
        """One frame of each camera in ``batch``: ring, one batched encoder call, heads, outputs."""
        self.rounds += 1
        due = []
        for feed, item in batch:
            d, got_ns = feed.add(item)
            if d is None:
                feed._write(item.frame, None)
            else:
                due.append((feed, item, d, got_ns))
        enc_ms = self.encode_missing(due)
        for feed, item, d, got_ns in due:
            pred = feed.predictor.predict_due(d, time.perf_counter() - enc_ms / 1e3)
            feed._write(item.frame, feed._record(pred, item.frame, got_ns))
        if self._status is not None:
            self._status.tick()

    def encode_missing(self, due):
        # type: (list) -> float
        """The missing features of every due clip in one ``encode_frames`` call; its ms."""
        parts = []
        for feed, _, d, _ in due:
            pos = feed.predictor.missing_features(d)
            if pos:
                parts.append((feed.predictor, pos))
        if not parts:
            return 0.0
        t0 = time.perf_counter()
        x = np.concatenate([p.encoder_input(pos) for p, pos in parts])
        feats = self.classifier.encode_frames(x)
        i = 0
        for p, pos in parts:
            p.set_features(pos, feats[i:i + len(pos)])
            i += len(pos)
        self.batched_calls += 1
        self.batched_frames += len(x)
        self.max_batch = max(self.max_batch, len(x))
        return (time.perf_counter() - t0) * 1e3

    def _halt_capture(self):
        for f in self.feeds:
            f.halt.set()
        for f in self.feeds:
            if f.thread is not None:
                f.thread.join(READ_TIMEOUT_S * 4)
            if not f.done.is_set() and f.stop_reason == "stopped":
                f.stop_reason = self.stop_reason

    def _finish_events(self):
        hub, self.hub = self.hub, None
        if hub is None:
            return
        for f in self.feeds:
            for s in f.sinks:
                if isinstance(s, HubSink):
                    s.report_stats()
        self.events = close_events(hub)

    # results ----------------------------------------------------------------------------------------
    def summary(self):
        # type: () -> RunSummary
        per = [f.summary() for f in self.feeds]
        for f, s in zip(self.feeds, per):
            if f.stop_reason == "stopped":
                s.stop_reason = self.stop_reason
        frames = sum(s.frames for s in per)
        dropped = sum(s.dropped for s in per)
        first, cfg, sel, b = per[0], self.config, self.selection, self.bundle
        return RunSummary(
            version=__version__, frames=frames, predictions=sum(s.predictions for s in per), dropped=dropped,
            dropped_pct=100.0 * dropped / (frames + dropped) if frames + dropped else 0.0,
            reconnects=sum(s.reconnects for s in per), source_errors=sum(s.source_errors for s in per),
            fps=sum(s.fps for s in per), source_fps=None,
            elapsed_s=time.perf_counter() - self._t_start if self._t_start is not None else 0.0,
            stop_reason=self.stop_reason, exit_code=max(s.exit_code for s in per),
            latency_ms=self.total_timer.summary(),
            source={"cameras": len(per), "uri": ", ".join(f.source.uri if f.source else f.name for f in self.feeds)},
            backend=first.backend, artifact=first.artifact, config=first.config, device=first.device,
            model=first.model, sampling=self._sampling(per),
            events=self.events, cameras={f.name: _camera_dict(s) for f, s in zip(self.feeds, per)})

    def _sampling(self, per):
        """The first camera's sampling, with the encoder calls of all and how they were batched."""
        note = getattr(self.classifier, "batch_note", "")
        return dict(per[0].sampling, encoder_calls=sum(s.sampling.get("encoder_calls", 0) for s in per),
                    encoder_batches=self.batched_calls, encoded_frames=self.batched_frames,
                    mean_batch=round(self.batched_frames / self.batched_calls, 3) if self.batched_calls else 0.0,
                    batching=note or ("on" if self.max_batch > 1 else "never needed (one frame per call)"),
                    rounds=self.rounds)

    def _close_sinks(self, summary):
        for f in self.feeds:
            f._close_sinks(summary if summary is None else _camera_summary(summary, f.name))
        if summary is not None and self.opts.summary:
            from .sinks import write_summary
            write_summary(self.opts.summary, summary.to_dict())

    def _force_exit(self, reason, code):
        """A second signal: outputs closed with a deadline each, the summary printed, exit at once."""
        summary = stop_now(self, reason)
        for f in self.feeds:
            for s in list(f.sinks):
                call_with_deadline(lambda s=s: s.close(None), CLOSE_DEADLINE_S, s.uri or "output")
        if self.opts.summary:
            from .sinks import write_summary
            write_summary(self.opts.summary, summary.to_dict())
        if not self.opts.quiet:
            print(format_multi_summary(summary.to_dict()), flush=True)
        sys.stderr.flush()
        os._exit(code)

    def close(self):
        for f in self.feeds:
            f.halt.set()
        if self.hub is not None:
            hub, self.hub = self.hub, None
            close_events(hub, CLOSE_DEADLINE_S)
        threads = []
        for f in self.feeds:
            if f.source is not None:
                t = threading.Thread(target=call_with_deadline, args=(f.source.close, CLOSE_DEADLINE_S,
                                                                      "the source of " + f.name), daemon=True)
                t.start()
                threads.append(t)
            f.source, f.classifier = None, None
        for t in threads:          # in parallel: one stuck camera does not delay the others' teardown
            t.join(CLOSE_DEADLINE_S + 1.0)
        if self.classifier is not None:
            self.classifier.close()
            self.classifier = None


def _camera_dict(s):
    # type: (RunSummary) -> dict
    d = s.to_dict()
    for k in ("version", "model", "backend", "artifact", "config", "device"):
        d.pop(k, None)
    return d


def _camera_summary(total, name):
    # type: (RunSummary, str) -> RunSummary
    return RunSummary.from_dict(dict(total.cameras.get(name, {}), version=total.version))


class MultiStatus(Sink):
    """One status line for all cameras every ``every`` seconds on stderr."""

    def __init__(self, feeds, every=5.0, stream=None):
        self.feeds, self.every = feeds, every
        self.stream = stream or sys.stderr
        self._last = time.perf_counter()
        self._frames = {f.name: 0 for f in feeds}

    def tick(self):
        now = time.perf_counter()
        dt = now - self._last
        if dt < self.every:
            return
        self._last = now
        parts = []
        for f in self.feeds:
            n = f.frames_seen - self._frames[f.name]
            self._frames[f.name] = f.frames_seen
            st = f.source.stats if f.source is not None else None
            state = "" if not f.done.is_set() else " ({0})".format(f.stop_reason)
            parts.append("{0} {1:.1f} fps drop {2}{3}".format(f.name, n / dt, st.dropped if st else 0, state))
        print("edge-run: " + " | ".join(parts), file=self.stream)


def format_multi_summary(s):
    # type: (dict) -> str
    """The totals (``format_summary``) and one line per camera."""
    lines = [format_summary(s).replace("edge-run summary:", "edge-run summary ({0} cameras):".format(
        len(s.get("cameras", {}))), 1)]
    lines.append("  {0:<12}{1:>8}{2:>8}{3:>9}{4:>8}{5:>11}  {6}".format("camera", "frames", "preds", "dropped", "fps",
                                                                    "c2p p99 ms", "stopped"))
    for name, c in s.get("cameras", {}).items():
        c2p = (c.get("latency_ms", {}).get("capture_to_prediction") or {}).get("p99_ms", 0.0) or 0.0
        lines.append("  {0:<12}{1:>8}{2:>8}{3:>9}{4:>8.2f}{5:>11.2f}  {6}".format(
            name, c["frames"], c["predictions"], c["dropped"], c["fps"], c2p, c["stop_reason"]))
    return "\n".join(lines)
