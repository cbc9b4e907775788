"""``edge-run``: live action recognition on a camera, stream or file, on a Jetson, a Coral or a CPU.

The help text is assembled from parts (usage, URI kinds, devices, examples), like jetson-inference.
Exit codes: 0 done (also after Ctrl-C/SIGTERM), 1 the source failed for good mid-run, 2 bad input
(missing camera, unknown model/config, bundle without an artifact for the device ...).
"""
import argparse
import logging
import sys
from typing import List, Optional

from . import catalog
from .sinks import OUTPUT_HELP
from .sources.uri import URI_HELP

from .eventsinks import URI_HELP as EVENTS_URI_HELP  # noqa: E402  (after the imports above: fewer merge conflicts)
from .eventsinks.options import EPILOG as EVENTS_EPILOG  # noqa: E402

DESCRIPTION = """\
Run an action-recognition bundle on a live camera, a network stream or a video file. Frames are
sampled over time the way the model was trained (the bundle's temporal sampling), a prediction is
made every --stride frames, and each prediction (top-k labels, per-stage latency) can go to a
JSON-lines file; OUTPUT gets the annotated video (file or display://0)."""

DEVICES_HELP = """\
devices (--device; a --config file overrides, flags override both):
  cpu     TFLite (ai-edge-litert / tflite_runtime) or --backend onnxruntime     configs x86-cpu, rpi4-cpu
  coral   Edge TPU: the bundle's *_edgetpu.tflite (encoder for streaming
          bundles; the temporal head runs on the CPU)                            configs coral-usb, coral-devboard
  jetson  TensorRT engine built from the bundle's ONNX on first run, cached      configs jetson-nano,
                                                                                  jetson-xavier-nx, jetson-orin-nano
  auto    detect: /proc/device-tree/model, /dev/apex_0 or a USB Edge TPU, tensorrt importable
  (edge-run --list-devices shows the configs and what was detected here)"""

EXAMPLES = """\
examples:
  edge-run --device coral --model bundles/lrcn-edge /dev/video0
  edge-run --device jetson --model bundles/lrcn-edge csi://0 display://0
  edge-run --device cpu --model bundles/lrcn-edge "test://?pattern=ball&width=640&height=480&fps=30" \\
           --headless --jsonl preds.jsonl --duration 10 --summary summary.json
  edge-run --model bundles/lrcn-edge rtsp://user:pass@192.168.1.10:554/stream --stride 5 --smooth 3
  edge-run --model bundles/lrcn-edge clip.avi annotated.mp4 --top-k 3 --threshold 0.5
  EDGE_MODEL=bundles/lrcn-edge edge-run --config device_configs/rpi4-cpu.yaml /dev/video0 --threads 4

several cameras (one process, one model loaded once, a capture thread per camera, encoder calls batched):
  edge-run --model bundles/lrcn-edge /dev/video0 /dev/video1 rtsp://10.0.0.5/s --jsonl preds-{camera}.jsonl
  edge-run --model bundles/lrcn-edge --cameras cameras.yaml --serve 127.0.0.1:8080 --summary all.json
  INPUT [OUTPUT] stays as it was: a second positional that is a file path or display://0 is OUTPUT. Several
  positionals are cameras when all but the first are live URIs; files as cameras, names and per-camera
  annotated videos come from --cameras (cameras: [{name: door, uri: ..., jsonl: ..., output: door.mp4}]).
  Cameras are named cam1, cam2, ... (events, /metrics, {camera} in --jsonl; without {camera} the name goes
  before the suffix: preds.cam1.jsonl). --summary: totals + one summary per camera under "cameras".

clips: T frames spaced by the bundle's sampling.frame_interval_s, ending at the newest frame; streaming
bundles (lrcn-edge) encode each frame once and run only the temporal head per prediction.
files: the windowed predictions along the file, plus file_prediction in the summary: the answer edge-eval
gives for the file (T frames evenly over the whole clip, as in training).
stopping: --duration, --max-frames, Ctrl-C or SIGTERM end the run within a few seconds whatever the source
does (a source stuck in a read is abandoned after 3 s); a second Ctrl-C/SIGTERM exits at once (code 128+N).
exit codes: 0 done (also after Ctrl-C / SIGTERM: JSONL flushed, summary printed), 1 a live source was
lost for good (--max-reconnects), 2 bad input (missing camera, model/config/bundle problem, bad flag)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-run", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join([URI_HELP, OUTPUT_HELP, EVENTS_URI_HELP, EVENTS_EPILOG, DEVICES_HELP, EXAMPLES]))
    p.add_argument("input", nargs="?", help="input URI: camera, rtsp://, file, test://, gst:// (see below)")
    p.add_argument("output", nargs="?", help="annotated output: video file (.mp4/.avi) or display://0; "
                                             "or a second camera (a live URI: /dev/videoN, csi://, rtsp://, test://)")
    p.add_argument("more", nargs="*", metavar="INPUT", help="more cameras: several cameras in one process")
    g = p.add_argument_group("model and device")
    g.add_argument("--model", "-m", help="bundle directory (edge-quantize) or a .tflite/.onnx/.engine file "
                                          "(default: $EDGE_MODEL)")
    g.add_argument("--labels", help="class names file for a bare model file (default: labels.txt next to it)")
    g.add_argument("--device", default="auto", choices=("auto",) + catalog.DEVICE_NAMES,
                   help="target device (default: auto-detect)")
    g.add_argument("--config", help="device config name (x86-cpu, coral-usb, ...) or path to a .yaml")
    g.add_argument("--backend", choices=catalog.BACKEND_NAMES,
                   help="override the config's backend")
    g.add_argument("--precision", choices=catalog.precision_preference(),
                   help="preferred artifact precision (default from the config)")
    g.add_argument("--threads", type=int, help="CPU threads for tflite/onnxruntime (default from the config)")
    g.add_argument("--list-devices", action="store_true", help="show device configs and detection, then exit")
    g = p.add_argument_group("prediction")
    g.add_argument("--stride", type=int, help="predict every N-th frame once a clip is full (default 1)")
    g.add_argument("--smooth", type=int, help="average the last K predictions (default 1 = off)")
    g.add_argument("--top-k", type=int, help="labels reported per prediction (default 3)")
    g.add_argument("--threshold", type=float, help="min top-1 score to show a label (default 0)")
    g.add_argument("--interval", type=float,
                   help="seconds between sampled frames (default: the bundle's sampling.frame_interval_s)")
    g = p.add_argument_group("output and run control")
    g.add_argument("--jsonl", help="write one JSON line per prediction to this file")
    g.add_argument("--summary", help="write the end-of-run summary as JSON to this file")
    g.add_argument("--headless", action="store_true", help="no window (default when OUTPUT is not display://)")
    g.add_argument("--duration", type=float, help="stop after S seconds")
    g.add_argument("--max-frames", type=int, help="stop after N frames")
    g.add_argument("--max-reconnects", type=int, help="give up on a live source after N failed reconnects "
                                                       "(default: keep trying)")
    g.add_argument("--cameras", metavar="FILE.yaml", help="several cameras from a file (name, uri, jsonl, output "
                                                           "per camera; see 'several cameras' below)")
    g.add_argument("--size", help="frame size delivered by the pipeline, WxH (default: 2x the model input, "
                                   "which also sizes the overlay)")
    g.add_argument("--reader", default="auto", choices=("auto", "gstreamer", "opencv"),
                   help="file decoding: GStreamer, or OpenCV (auto: OpenCV only when GStreamer is missing)")
    g.add_argument("--quiet", "-q", action="store_true", help="no status lines or summary on the console")
    g.add_argument("--verbose", "-v", action="store_true", help="log pipeline strings and backend details")
    from .eventsinks.options import add_arguments as add_event_arguments
    add_event_arguments(p)
    return p


def list_devices() -> str:
    from .detect import describe  # configs, detection, cameras: edge/detect.py owns the listing

    return describe()


def _size(text: Optional[str]):
    if not text:
        return None, None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
        return w, h
    except ValueError:
        raise SystemExit(_fail(f"--size must be WxH, e.g. 128x128, got {text!r}"))


def _fail(msg: str, code: int = 2) -> int:
    print(f"edge-run: error: {msg}", file=sys.stderr)
    return code


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="edge-run: %(message)s", stream=sys.stderr)
    if args.list_devices:
        try:
            print(list_devices())
        except BrokenPipeError:  # `edge-run --list-devices | head`: the reader left, nothing to report
            sys.stderr.close()
        return 0
    if not args.input and not args.cameras:
        parser.print_usage(sys.stderr)
        return _fail("missing INPUT (a camera, rtsp://, file, test:// or gst:// URI); see edge-run --help")
    for name in ("stride", "smooth", "top_k", "max_frames", "threads"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "threads" else 1):
            return _fail(f"--{name.replace('_', '-')} must be >= {0 if name == 'threads' else 1}, got {v}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        return _fail(f"--threshold must be in [0, 1], got {args.threshold}")
    if args.duration is not None and args.duration <= 0:
        return _fail(f"--duration must be > 0, got {args.duration}")
    if args.interval is not None and args.interval <= 0:
        return _fail(f"--interval must be > 0, got {args.interval}")
    try:
        w, h = _size(args.size)
    except SystemExit as e:
        return int(e.code)

    from .eventsinks.options import wanted as event_options_given
    from .runner import RunError, RunOptions, Runner
    from .sinks import format_summary

    try:
        cameras = camera_list(args)
    except ValueError as e:
        return _fail(str(e))
    kw = dict(
        input=args.input, output=args.output, model=args.model, device=args.device, config=args.config,
        backend=args.backend, precision=args.precision, labels=args.labels, jsonl=args.jsonl,
        summary=args.summary, headless=args.headless, stride=args.stride, smooth=args.smooth,
        top_k=args.top_k, threshold=args.threshold, interval=args.interval, duration=args.duration,
        max_frames=args.max_frames, threads=args.threads, max_reconnects=args.max_reconnects,
        reader=args.reader, width=w, height=h, quiet=args.quiet, hard_stop=True,
        events=args if event_options_given(args) else None)
    try:
        if cameras is None:
            summary = Runner(RunOptions(**kw)).run()
        else:
            from .multicam import MultiRunner, format_multi_summary, load_cameras
            if args.cameras:
                cameras = load_cameras(args.cameras, args.jsonl)
            summary = MultiRunner(RunOptions(**dict(kw, input=cameras[0].uri, output=None, jsonl=None)),
                                  cameras).run()
    except RunError as e:
        return _fail(str(e), e.code)
    if not args.quiet:
        print(format_summary(summary) if cameras is None else format_multi_summary(summary))
    return int(summary.get("exit_code", 0))


def _is_output(text: str) -> bool:
    from .sources.uri import URIError, parse_uri
    try:
        return parse_uri(text).kind in ("file", "display")
    except URIError:
        return False


def camera_list(args):
    """None for the single-camera run (INPUT [OUTPUT], exactly as before); else the cameras: from
    --cameras (read later), or the positionals when all but the first are live URIs."""
    inputs = [x for x in (args.input, args.output) if x] + list(args.more or [])
    if args.cameras:
        if inputs:
            raise ValueError("give the cameras either as INPUTs or in --cameras {0}, not both".format(args.cameras))
        return []
    if len(inputs) <= 1 or (len(inputs) == 2 and _is_output(inputs[1])):
        return None
    odd = [x for x in inputs[1:] if _is_output(x)]
    if odd:
        raise ValueError("{0}: with several cameras OUTPUT is not positional and files are not cameras on the "
                         "command line; put per-camera outputs and file inputs in --cameras FILE.yaml "
                         "(see edge-run --help, 'several cameras')".format(odd[0]))
    from .multicam import cameras_from_inputs
    return cameras_from_inputs(inputs, args.jsonl)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
