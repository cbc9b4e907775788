"""The on-device loop: source -> preprocess -> (streaming) inference -> smoothing/top-k, as a generator.

``Runner(options).frames()`` yields ``(frame, prediction)`` pairs: every frame the source delivered,
with its ``PredictionRecord`` when one was due (else None); the last pair of a file shorter than one
clip span is ``(None, partial_prediction)``. ``Runner.run()`` is edge-run's use of it (edge-bench's
end-to-end run starts that in a child process): the outputs (``edge.sinks.open_output``) get every
pair, then the ``RunSummary`` is built, given to them and returned. Tests, benchmarks and a
multi-camera scheduler can iterate ``frames()`` themselves (``setup()`` first, ``close()`` after).

Everything that can be wrong with the model, the device config or the input is checked in
``setup()`` *before* capture starts and before any output file is opened, and raised as
``RunError`` with one line and exit code 2.

Stopping (``StopControl``): ``--duration``, ``--max-frames``, end of a file, a source that failed
for good, SIGINT/SIGTERM. The loop checks them every ``READ_TIMEOUT_S`` even when the source
delivers nothing. Teardown (closing the source) has a deadline. In edge-run (``hard_stop=True``),
a second signal, or a run still going ``GRACE_S`` after a stop was asked (a source stuck inside
``read()``), closes the outputs (JSONL and summary flushed) and exits the process at once.

The runner is the one owner of timing: per frame it records the stages of ``edge.timing.STAGES``.
For a file, the summary also carries ``file_prediction``: the answer ``edge-eval`` gives for that
file (the training sampling over the whole clip, see ``predict_file``).
"""
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Tuple

from . import __version__, evaluation
from .backends import BackendOptions, BackendUnavailable
from .bundle import Bundle, BundleError, load as load_bundle
from .classifier import ClipClassifier
from .config import ConfigError, DeviceConfig, builtin, load_config
from .detect import config_for_device
from .records import FilePrediction, PredictionRecord, RunSummary
from .select import (ModelError, Selection, bundle_from_model_file, check_model, infer_spec,
                     load_classifier, select_artifacts)
from .sinks import HubSink, OutputError, Sink, check_output, events_summary, format_summary, open_output
from .sources import CameraNotFound, EndOfStream, Frame, Source, SourceConfig, SourceError, URIError, open_source
from .sources.base import now_ns
from .sources.uri import SourceURI, parse_uri, redact
from .stream import Prediction, StreamPredictor
from .timing import STAGES, StageTimer

log = logging.getLogger("edge.runner")
READ_TIMEOUT_S = 0.25   # how often the loop looks at the stop conditions when the source is silent
GRACE_S = 3.0           # a stop asked this long ago and the loop still runs: the source is stuck
CLOSE_DEADLINE_S = 2.0  # teardown of the source (and each output on a forced exit) waits at most this


class RunError(Exception):
    """A problem to report in one line; ``code`` is the process exit code (2 = bad input)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


@dataclass
class RunOptions:
    input: str
    output: Optional[str] = None
    model: Optional[str] = None
    device: str = "auto"
    config: Optional[str] = None
    backend: Optional[str] = None
    precision: Optional[str] = None
    labels: Optional[str] = None
    jsonl: Optional[str] = None
    summary: Optional[str] = None
    headless: bool = False
    stride: Optional[int] = None
    smooth: Optional[int] = None
    top_k: Optional[int] = None
    threshold: Optional[float] = None
    interval: Optional[float] = None
    duration: Optional[float] = None
    max_frames: Optional[int] = None
    threads: Optional[int] = None
    max_reconnects: Optional[int] = None
    reader: str = "auto"
    width: Optional[int] = None
    height: Optional[int] = None
    quiet: bool = False
    hard_stop: bool = False   # edge-run: a second signal / a stuck source exits the process
    events: Any = None        # the --events/--record/--serve options (argparse.Namespace), or None
    camera: str = "cam1"      # this camera's name in events, the live view and /metrics


# -- setup: one function per decision -----------------------------------------------------------------
def resolve_config(opts: RunOptions) -> DeviceConfig:
    """The one merge of flags over the device config: --config wins, else the config for --device
    (auto: detected); then every flag given replaces its key (top level and the runner section)."""
    try:
        cfg = load_config(opts.config) if opts.config else builtin(config_for_device(opts.device))
        top = dict(threads=opts.threads, backend=opts.backend, precision=opts.precision)
        if opts.backend in ("tflite", "onnxruntime") and cfg.device != "cpu":
            top["device"] = "cpu"
        run = {k: v for k, v in dict(stride=opts.stride, smooth=opts.smooth, top_k=opts.top_k,
                                     threshold=opts.threshold, interval_s=opts.interval).items() if v is not None}
        rec = {k: v for k, v in dict(max_attempts=opts.max_reconnects).items() if v is not None}
        return cfg.replace(runner=dataclasses.replace(cfg.runner, **run),
                           reconnect=dataclasses.replace(cfg.reconnect, **rec), **top)
    except (ConfigError, ValueError) as e:
        raise RunError(str(e)) from None


def resolve_model(opts: RunOptions) -> str:
    model = opts.model or os.environ.get("EDGE_MODEL")
    if not model:
        raise RunError("no model: pass --model BUNDLE_DIR (from edge-quantize) or a .tflite/.onnx file, "
                       "or set EDGE_MODEL")
    return model


def load_model(path: str, labels: Optional[str] = None) -> Bundle:
    try:
        if os.path.isdir(path) or os.path.basename(path) == "bundle.json":
            return load_bundle(path)
        return bundle_from_model_file(path, labels)
    except (BundleError, ModelError, ValueError) as e:  # ValueError: unknown suffix
        raise RunError(str(e)) from None


def choose_artifacts(bundle: Bundle, cfg: DeviceConfig, backend_flag: Optional[str]) -> Selection:
    """What to run on this device: the one place that asks the bundle for artifacts."""
    if bundle.model == "file":  # a bare model file: its suffix decides unless --backend says
        from .backends import backend_for_path
        return Selection(backend_flag or backend_for_path(bundle.path(bundle.artifacts[0])), bundle.artifacts[0])
    return select_artifacts(bundle, cfg.backend, cfg.precision, cfg.head_backend)


def open_classifier(bundle: Bundle, cfg: DeviceConfig, backend_flag: Optional[str]
                    ) -> Tuple[Bundle, Selection, ClipClassifier]:
    """Load the chosen artifacts and check them against the bundle (labels, frame size)."""
    try:
        sel = choose_artifacts(bundle, cfg, backend_flag)
        for n in sel.notes:
            log.warning("%s", n)
        bopts = BackendOptions(threads=cfg.threads or None, device=cfg.edgetpu_device or None,
                               precision=cfg.tensorrt_precision)
        clf = load_classifier(bundle, sel, bopts)
        bundle = infer_spec(bundle, clf)
        check_model(bundle, clf)
        return bundle, sel, clf
    except BackendUnavailable as e:
        raise RunError("{0}: {1}".format(cfg.name, e)) from None
    except (ModelError, BundleError, FileNotFoundError) as e:
        raise RunError(str(e)) from None
    except ValueError as e:
        raise RunError("{0}: {1}".format(bundle.root, e)) from None


def source_config(cfg: DeviceConfig, opts: RunOptions, spec) -> SourceConfig:
    """The source's settings from the config sections. GStreamer scales to 2x the model input by
    default; preprocessing then does an exact 2:1 area resize (measured on UCF101 clips: mean |diff|
    vs training's INTER_AREA resize 2.45, vs 5.43 when GStreamer scales straight to the model size)."""
    w = opts.width or cfg.capture.width or spec.width * 2
    h = opts.height or cfg.capture.height or spec.height * 2
    return SourceConfig.from_device(cfg, w, h, reader=opts.reader)


def output_uris(opts: RunOptions, live: bool) -> List[str]:
    """What the flags ask for, as output URIs (see edge.sinks)."""
    uris = ["jsonl:" + opts.jsonl] if opts.jsonl else []
    if opts.output:
        uris.append(opts.output)
    if not opts.quiet:
        uris.append("stderr://status" if live or not sys.stderr.isatty() else "stderr://progress")
    if opts.summary:
        uris.append("summary:" + opts.summary)
    return uris


def predict_file(classifier: ClipClassifier, bundle: Bundle, path: str) -> FilePrediction:
    """The answer edge-eval gives for one file (``edge.evaluation.predict_file``: the bundle's T frames
    evenly over the whole video, the training sampling and preprocessing), as the summary's record."""
    return FilePrediction.from_scores(evaluation.predict_file(classifier, bundle, path).scores, bundle.labels)


def open_events(args: Any, labels: List[str], top_k: int):
    """The ``EventHub`` for the --events/--record/--serve options (None when none is given); a bad
    option, a sink library that is missing or a port in use is a ``RunError`` before capture."""
    if args is None:
        return None
    from .eventsinks.options import OptionError, open_hub
    try:
        return open_hub(args, labels, top_k=top_k)
    except OptionError as e:
        raise RunError(str(e)) from None


def close_events(hub, deadline_s: float = 10.0) -> dict:
    """End the open events, close the sinks, the recorder and the live view (at most ``deadline_s``
    in all); the ``events`` section of the summary."""
    if hub is None:
        return {}
    out = {}

    def _close():
        out.update(hub.close())
    if not call_with_deadline(_close, deadline_s, "the event sinks"):
        out.update(hub.counters())
    return events_summary(out)


def stop_now(run, reason: str):
    """The first half of a forced exit, for the runner and the multi-camera runner alike: the run
    is marked stopped, its event hub closed with a deadline, and its summary as it stands returned."""
    run.stop_reason = reason
    run.stop.done = True
    hub, run.hub = run.hub, None
    if hub is not None:
        run.events = close_events(hub, CLOSE_DEADLINE_S)
    return run.summary()


def call_with_deadline(fn: Callable[[], None], seconds: float, what: str) -> bool:
    """Run ``fn`` in a daemon thread and wait at most ``seconds``; a call still running then is
    abandoned with a notice (it must never hold the process). True when it finished."""
    t = threading.Thread(target=fn, name="close-" + what, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        log.warning("%s did not close within %.0f s; abandoned", what, seconds)
        return False
    return True


# -- stopping -----------------------------------------------------------------------------------------
class StopControl:
    """The one owner of "stop now?": signals, the --duration deadline, --max-frames.

    ``on_force(reason, code)`` (edge-run only) is called by a second signal, and by a watchdog when
    the loop is still running ``grace_s`` after a stop was asked (the source is stuck in ``read()``)."""

    def __init__(self, duration: Optional[float] = None, max_frames: Optional[int] = None,
                 grace_s: float = GRACE_S, on_force: Optional[Callable[[str, int], None]] = None):
        self.duration, self.max_frames, self.grace_s = duration, max_frames, grace_s
        self.on_force = on_force
        self.requested = None  # type: Optional[str]
        self._deadline = None  # type: Optional[float]
        self._old = {}
        self._timers = []  # type: List[threading.Timer]
        self._duration_timer = None  # type: Optional[threading.Timer]
        self.done = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        self.done = True
        for t in self._timers:
            t.cancel()
        for sig, h in self._old.items():
            signal.signal(sig, h)
        self._old = {}

    def start(self) -> None:
        """The loop starts: the --duration clock runs from here."""
        if self.duration is not None:
            self._deadline = time.monotonic() + self.duration
            self._duration_timer = self._watch(self.duration + self.grace_s, "duration")

    def loop_ended(self) -> None:
        """The loop returned: the --duration watchdog has nothing left to watch."""
        if self._duration_timer is not None:
            self._duration_timer.cancel()

    def reason(self, frames: int) -> Optional[str]:
        if self.requested:
            return self.requested
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return "duration"
        if self.max_frames is not None and frames >= self.max_frames:
            return "max frames"
        return None

    def _on_signal(self, signum, _frame) -> None:
        name = signal.Signals(signum).name
        if self.requested is None:
            self.requested = name
            self._watch(self.grace_s, name)
            return
        if self.on_force is not None:
            self.on_force("{0} (second signal: exited at once)".format(name), 128 + signum)
        raise KeyboardInterrupt(name)

    def _watch(self, after_s: float, why: str) -> Optional[threading.Timer]:
        if self.on_force is None:
            return None
        t = threading.Timer(after_s, self._stuck, args=(why,))
        t.daemon = True
        t.start()
        self._timers.append(t)
        return t

    def _stuck(self, why: str) -> None:
        if not self.done:
            self.on_force("{0} (forced after {1:.0f} s: the source did not return)".format(why, self.grace_s), 0)


# -- the run ------------------------------------------------------------------------------------------
class Runner:
    """One run. ``classifier_hook`` (tests only) may wrap the loaded ClipClassifier."""

    def __init__(self, options: RunOptions,
                 classifier_hook: Optional[Callable[[ClipClassifier], ClipClassifier]] = None):
        self.opts = options
        self.hook = classifier_hook
        self.config = None  # type: Optional[DeviceConfig]
        self.bundle = None  # type: Optional[Bundle]
        self.selection = None  # type: Optional[Selection]
        self.classifier = None  # type: Optional[ClipClassifier]
        self.source = None  # type: Optional[Source]
        self.uri = None  # type: Optional[SourceURI]
        self.predictor = None  # type: Optional[StreamPredictor]
        self.sinks = []  # type: List[Sink]
        self.hub = None  # events, clips, live view (--events/--record/--serve)
        self.events = {}  # type: dict
        self.timer = StageTimer(STAGES)
        self.stop = StopControl(options.duration, options.max_frames,
                                on_force=self._force_exit if options.hard_stop else None)
        self.frames_seen = self.predictions = 0
        self.last = None  # type: Optional[PredictionRecord]
        self.file_prediction = None  # type: Optional[FilePrediction]
        self.stop_reason, self.exit_code = "stopped", 0
        self._t_start = self._t_first = self._t_last = None

    # setup: everything that can fail before capture -------------------------------------------------
    def setup(self) -> None:
        o = self.opts
        try:
            self.uri = parse_uri(o.input)
        except URIError as e:
            raise RunError(str(e)) from None
        if self.uri.kind == "display":
            raise RunError("display://0 is an output: give it as OUTPUT, e.g. edge-run test:// display://0")
        if o.output and o.headless and o.output.startswith("display:"):
            raise RunError("--headless with OUTPUT display://0: drop one of them")
        try:
            for uri in output_uris(o, live=True):
                check_output(uri)
        except OutputError as e:
            raise RunError(str(e)) from None
        self.config = cfg = resolve_config(o)
        bundle = load_model(resolve_model(o), o.labels)
        self.bundle, self.selection, clf = open_classifier(bundle, cfg, o.backend)
        self.classifier = self.hook(clf) if self.hook else clf
        try:
            self.hub = open_events(o.events, self.bundle.labels, cfg.runner.top_k)
            if self.hub is not None and self.hub.web is not None and not o.quiet:
                print("edge-run: live view on {0}".format(self.hub.web.url), file=sys.stderr, flush=True)
        except RunError:
            self.close()
            raise
        try:  # open the source now so a missing camera fails before any output exists
            self.source = open_source(o.input, source_config(cfg, o, self.bundle.input))
        except CameraNotFound as e:
            self.close()
            raise RunError(str(e)) from None
        except (SourceError, URIError, ValueError) as e:
            self.close()
            raise RunError(redact(str(e))) from None

    def open_outputs(self) -> List[Sink]:
        total = None
        if self.uri is not None and self.uri.kind == "file":
            from .video import probe
            try:
                total = probe(self.uri.location).frame_count or None
            except Exception:  # the count is only for the progress bar
                total = None
        sinks = []
        try:
            for uri in output_uris(self.opts, self.source.live):
                sinks.append(open_output(uri, fps=self.source.fps, total_frames=total, source_stats=self.source.stats))
        except OutputError as e:
            for s in sinks:
                s.close(None)
            raise RunError(str(e)) from None
        if self.hub is not None:
            sinks.append(HubSink(self.hub, self.opts.camera, self.source.stats))
        return sinks

    # the loop ---------------------------------------------------------------------------------------
    def frames(self) -> Iterator[Tuple[Optional[Frame], Optional[PredictionRecord]]]:
        """Yield (frame, prediction or None) until a stop condition; sets ``stop_reason``."""
        if self.source is None:
            self.setup()
        self.stop.start()
        self._t_start = time.perf_counter()
        while True:
            reason = self.stop.reason(self.frames_seen)
            if reason:
                self.stop_reason = reason
                return
            try:
                frame = self.source.read(READ_TIMEOUT_S)
            except EndOfStream:
                self.stop_reason = "end of stream"
                pred = self.predictor.flush() if self.predictor is not None else None
                if pred is not None:  # a file shorter than one clip: predict over what it had
                    yield None, self._record(pred, None, None)
                return
            except SourceError as e:
                self.stop_reason, self.exit_code = "source error: " + redact(str(e)), 1
                return
            if frame is not None:
                yield frame, self._push(frame)

    def _push(self, frame: Frame) -> Optional[PredictionRecord]:
        got_ns = now_ns()
        if self.predictor is None:
            self.predictor = StreamPredictor(self.classifier, self.bundle.labels, self.bundle.input,
                                             self.bundle.sampling, self.config.runner, fps=self.source.fps)
        times = {}
        pred = self.predictor.push(frame.image, frame.timestamp_s, frame.index, frame.epoch, times)
        self.timer.add("capture", (got_ns - frame.capture_ns) / 1e6)
        self.timer.add("preprocess", times["preprocess"])
        rec = self._record(pred, frame, got_ns) if pred is not None else None
        self.frames_seen += 1
        self._t_last = time.perf_counter()
        if self._t_first is None:
            self._t_first = self._t_last
        return rec

    def _record(self, pred: Prediction, frame: Optional[Frame], got_ns: Optional[int]) -> PredictionRecord:
        """The one place a prediction is timed and turned into a record."""
        lat = {k: pred.timings_ms[k] for k in ("inference", "postprocess")}
        self.timer.add_all(lat)
        wall = time.time()
        if frame is not None:
            c2p = (now_ns() - frame.capture_ns) / 1e6
            lat = dict({"capture": (got_ns - frame.capture_ns) / 1e6, "preprocess": pred.timings_ms["preprocess"]},
                       **lat)
            lat["capture_to_prediction"] = c2p
            self.timer.add("capture_to_prediction", c2p)
            wall -= c2p / 1e3
        self.predictions += 1
        self.last = PredictionRecord(
            timestamp=pred.timestamp_s, frame=pred.frame_index, label=pred.label, top=pred.top,
            clip=[pred.clip_indices[0], pred.clip_indices[-1]] if pred.clip_indices else [], latency_ms=lat,
            wall_time=wall, epoch=frame.epoch if frame is not None else 0, dropped=self.source.stats.dropped,
            partial=pred.partial, scores=pred.smoothed)
        return self.last

    def run(self) -> dict:
        """edge-run: set up, send every (frame, prediction) to the outputs, return the summary dict.
        Signal handling covers setup and teardown too (a second signal still exits at once)."""
        self.stop.install()
        try:
            if self.source is None:
                self.setup()
            self.sinks = self.open_outputs()
            for frame, pred in self.frames():
                self._write(frame, pred)
            self.stop.loop_ended()
            self._finish_file()
            self._finish_events()
            summary = self.summary()
            self._close_sinks(summary)
            self.stop.done = True   # results are out: a late watchdog has nothing to rescue
            return summary.to_dict()
        finally:
            self._close_sinks(None)  # a failure mid-run: close what is open, write no summary
            self.close()
            self.stop.restore()

    def _finish_events(self) -> None:
        """End of stream: final counters to /metrics, open events ended, sinks closed (their
        counters go into the summary)."""
        hub, self.hub = self.hub, None
        if hub is None:
            return
        for s in self.sinks:
            if isinstance(s, HubSink):
                s.report_stats()
        self.events = close_events(hub)

    def _close_sinks(self, summary: Optional[RunSummary]) -> None:
        sinks, self.sinks = self.sinks, []
        for s in sinks:
            s.close(summary)

    def _write(self, frame: Optional[Frame], pred: Optional[PredictionRecord]) -> None:
        t0 = time.perf_counter()
        try:
            for s in self.sinks:
                s.write(frame, pred)
        except OutputError as e:
            raise RunError(str(e)) from None
        if pred is not None or (frame is not None and self.opts.output):
            self.timer.add("output", (time.perf_counter() - t0) * 1e3)

    def _finish_file(self) -> None:
        """A file source: also answer for the whole file the way edge-eval does (not after a signal)."""
        if self.uri is None or self.uri.kind != "file" or self.stop_reason.startswith("SIG"):
            return
        try:
            self.file_prediction = predict_file(self.classifier, self.bundle, self.uri.location)
        except Exception as e:  # the windowed results stand; say why the file answer is missing
            log.warning("no file prediction for %s: %s", self.uri.location, e)

    # results and teardown ---------------------------------------------------------------------------
    def summary(self) -> RunSummary:
        src, p, cfg, sel, b = self.source, self.predictor, self.config, self.selection, self.bundle
        st = src.stats if src is not None else None
        dropped = st.dropped if st else 0
        total = self.frames_seen + dropped
        elapsed = (self._t_last - self._t_first) if self._t_first is not None else 0.0
        last = self.last
        return RunSummary(
            version=__version__, frames=self.frames_seen, predictions=self.predictions, dropped=dropped,
            dropped_pct=(100.0 * dropped / total) if total else 0.0, reconnects=st.reconnects if st else 0,
            source_errors=st.errors if st else 0,
            fps=(self.frames_seen - 1) / elapsed if elapsed > 0 and self.frames_seen > 1 else 0.0,
            source_fps=src.fps if src else None,
            elapsed_s=time.perf_counter() - self._t_start if self._t_start is not None else 0.0,
            stop_reason=self.stop_reason, exit_code=self.exit_code, latency_ms=self.timer.summary(),
            source=src.describe() if src else {}, backend=sel.backend if sel else None,
            artifact=sel.main.file if sel else None, config=cfg.name if cfg else None,
            device=cfg.device if cfg else None,
            model=dict({"bundle": b.root, "name": b.name, "labels": b.labels}, **(sel.describe() if sel else {}))
            if b else {},
            sampling=self._sampling(),
            last_label="{0} {1:.3f}".format(*last.top[0]) if last and last.top else None,
            file_prediction=self.file_prediction, events=self.events)

    def _sampling(self) -> dict:
        p, b, r = self.predictor, self.bundle, self.config.runner if self.config else None
        if b is None or r is None:
            return {}
        return {"frames": b.input.frames, "interval_s": p.interval_s if p else b.sampling.frame_interval_s,
                "step_frames": p.step if p else None, "stride": r.stride, "smooth": r.smooth,
                "streaming": bool(p and p.streaming), "encoder_calls": p.encoder_calls if p else 0}

    def _force_exit(self, reason: str, code: int) -> None:
        """The run cannot end normally (stuck source, second signal): outputs closed with a
        deadline each (JSONL flushed, summary written and printed), then the process ends."""
        summary = stop_now(self, reason)
        for s in list(self.sinks):
            call_with_deadline(lambda s=s: s.close(summary), CLOSE_DEADLINE_S, s.uri or "output")
        if not self.opts.quiet:
            print(format_summary(summary.to_dict()), flush=True)
        sys.stderr.flush()
        os._exit(code)

    def close(self) -> None:
        if self.hub is not None:   # a failure mid-run: the sinks still say goodbye
            hub, self.hub = self.hub, None
            close_events(hub, CLOSE_DEADLINE_S)
        if self.source is not None:
            call_with_deadline(self.source.close, CLOSE_DEADLINE_S, "the source")
        if self.classifier is not None:
            self.classifier.close()
            self.classifier = None
