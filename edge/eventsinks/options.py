"""Command-line options of events, sinks, clip recording and the live view, and the one function
that builds an ``EventHub`` from them: what ``edge-run`` adds to its parser and calls in setup.

    add_arguments(parser)                     # the "events and integrations" option group
    hub = open_hub(args, labels, top_k=3)     # None when no option asks for events; raises
                                              # OptionError (one line: what to fix) before capture
"""
import argparse
import os
from typing import Dict, List, Optional, Sequence, Tuple

from ..events import SMOOTHING, EventConfig
from .base import SinkUnavailable

EPILOG = """events and integrations:
  edge-run --model B cam1 --events mqtt://127.0.0.1:1883/edge/events --record clips --serve 127.0.0.1:8080
  edge-run --model B cam1 --events https://hooks.example/edge --events events.jsonl \\
           --event-enter 0.7 --event-exit 0.5 --event-class Archery=0.8:0.6 --event-min-duration 1
  mosquitto_sub -h 127.0.0.1 -t 'edge/events/#' -v     # watch them arrive"""


class OptionError(ValueError):
    """A bad events/record/serve option; the message says what to pass instead."""


def _class_threshold(text):
    # type: (str) -> Tuple[str, Tuple[float, float]]
    label, sep, rest = text.rpartition("=")
    if not sep or not label:
        raise argparse.ArgumentTypeError("expected LABEL=ENTER[:EXIT], e.g. Archery=0.8:0.6, got {!r}".format(text))
    enter, _, exit_ = rest.partition(":")
    try:
        e = float(enter)
        x = float(exit_) if exit_ else max(0.0, e - 0.2)
    except ValueError:
        raise argparse.ArgumentTypeError("thresholds must be numbers: {!r}".format(text))
    return label, (e, x)


def add_arguments(parser):
    # type: (argparse.ArgumentParser) -> argparse._ArgumentGroup
    g = parser.add_argument_group("events and integrations",
                                  "turn predictions into start/update/end events and deliver them")
    g.add_argument("--events", action="append", default=[], metavar="URI",
                   help="event sink (repeatable): mqtt://[user:pass@]host:1883/topic, mqtts://..., "
                        "http(s)://host/hook, or a .jsonl file")
    g.add_argument("--record", metavar="DIR", help="write an MP4 clip + JPEG snapshot per event into DIR")
    g.add_argument("--pre-roll", type=float, default=2.0, metavar="S", help="clip seconds before an event (2)")
    g.add_argument("--post-roll", type=float, default=2.0, metavar="S", help="clip seconds after its end (2)")
    g.add_argument("--record-fps", type=float, default=15.0, metavar="FPS", help="clip frame rate (15)")
    g.add_argument("--serve", metavar="HOST:PORT",
                   help="live web view + /metrics, e.g. 127.0.0.1:8080 (other hosts need --serve-token)")
    g.add_argument("--serve-token", default=os.environ.get("EDGE_SERVE_TOKEN"), metavar="TOKEN",
                   help="token the view requires (default $EDGE_SERVE_TOKEN)")
    g.add_argument("--event-enter", type=float, default=0.6, metavar="P", help="score that starts an event (0.6)")
    g.add_argument("--event-exit", type=float, default=0.4, metavar="P", help="score below which it ends (0.4)")
    g.add_argument("--event-class", action="append", default=[], type=_class_threshold, metavar="LABEL=ENTER[:EXIT]",
                   help="per-class thresholds (repeatable)")
    g.add_argument("--event-min-duration", type=float, default=0.5, metavar="S",
                   help="seconds above the threshold before start (0.5)")
    g.add_argument("--event-hold", type=float, default=0.5, metavar="S",
                   help="seconds below exit before end (0.5)")
    g.add_argument("--event-update-every", type=float, default=0.0, metavar="S",
                   help="emit update events every S seconds while active (0 = never)")
    g.add_argument("--event-smoothing", choices=SMOOTHING, default="ema", help="score smoothing (ema)")
    g.add_argument("--event-alpha", type=float, default=0.5, metavar="A", help="EMA weight of the newest (0.5)")
    g.add_argument("--event-window", type=int, default=3, metavar="N", help="window smoothing length (3)")
    return g


def wanted(args):
    # type: (argparse.Namespace) -> bool
    return bool(args.events or args.record or args.serve)


def event_config(args):
    # type: (argparse.Namespace) -> EventConfig
    try:
        return EventConfig(enter=args.event_enter, exit=args.event_exit, min_duration_s=args.event_min_duration,
                           hold_s=args.event_hold, update_every_s=args.event_update_every,
                           smoothing=args.event_smoothing, alpha=args.event_alpha, window=args.event_window,
                           per_class=dict(args.event_class))
    except ValueError as e:
        raise OptionError(str(e))


def open_hub(args, labels, top_k=3):
    """The EventHub for ``args`` (None when none of --events/--record/--serve is given). Checks the
    thresholds against ``labels``, opens every sink, the recorder and the web server; on any problem
    closes what it opened and raises ``OptionError``."""
    if not wanted(args):
        return None
    from . import open_event_sink, redact_uri
    from .hub import EventHub
    from .record import ClipRecorder
    cfg = event_config(args)
    unknown = sorted(set(cfg.per_class) - set(labels))
    if unknown:
        raise OptionError("--event-class {}: not a class of this model ({})".format(", ".join(unknown), ", ".join(labels)))
    opened = []  # type: List
    try:
        for uri in args.events:
            try:
                opened.append(open_event_sink(uri))
            except (ValueError, SinkUnavailable, OSError) as e:   # OSError: e.g. a missing TLS CA file
                raise OptionError("--events {}: {}".format(redact_uri(uri), e))
        rec = None
        if args.record:
            rec = ClipRecorder(args.record, pre_s=args.pre_roll, post_s=args.post_roll, fps=args.record_fps)
            opened.append(rec)
        web = _open_web(args) if args.serve else None
        if web is not None:
            opened.append(web)
        return EventHub(labels, cfg, sinks=[s for s in opened if s is not rec and s is not web],
                        recorder=rec, web=web, top_k=top_k)
    except Exception:
        for o in opened:
            try:
                o.close()
            except Exception:
                pass
        raise


def _open_web(args):
    from ..web import WebError, WebView, parse_bind
    try:
        host, port = parse_bind(args.serve)
        return WebView(host, port, token=args.serve_token).start()
    except WebError as e:
        raise OptionError(str(e))
    except OSError as e:
        raise OptionError("--serve {}: cannot listen there ({}); pick a free port".format(args.serve, e))
