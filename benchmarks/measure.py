"""Time (and score) one report row: a whole-clip artifact, or an encoder + head pair.

Every timing goes through ``edge.backends`` ``Backend.infer`` — the call ``edge-run`` makes — so
the quantize/dequantize at the int8 boundary is included. Streaming rows are timed four ways:
the whole clip (T encoder calls + 1 head call, what a clip costs without streaming), one encoder
call per frame, one head call, and one streaming step (1 encoder + 1 head: the cost of a new
prediction when the runner predicts every sampled frame).
"""
import os
from typing import Callable, Optional

import numpy as np

from edge.backends import BackendOptions, BackendUnavailable
from edge.bundle import Bundle
from edge.evaluation import classifier_for
from edge.select import Plan

from .accuracy import EvalSet, evaluate
from .latency import RunPolicy, random_input, time_calls
from .memory import RssProbe
from .targets import Target


def _input_range(bundle: Bundle):
    spec = bundle.input
    lo, hi = spec.offset, 255 * spec.scale + spec.offset
    return (min(lo, hi), max(lo, hi))


def _runtime(be) -> dict:
    d = {"backend": getattr(be, "name", None)}
    for attr in ("runtime", "providers", "device", "delegate_options"):
        v = getattr(be, attr, None)
        if isinstance(v, (str, int, float, list, tuple, dict)):
            d[attr] = list(v) if isinstance(v, tuple) else v
    try:
        desc = be.describe()
        for k in ("edgetpu_device", "engine", "precision"):
            if k in desc:
                d[k] = desc[k]
    except Exception:
        pass
    return d


def _skip_or_fail(t: Target, e: BaseException) -> None:
    if isinstance(e, BackendUnavailable):
        t.status, t.reason = "skipped", str(e)
    elif isinstance(e, ModuleNotFoundError) and (e.name or "").startswith("edge.backends"):
        t.status, t.reason = "skipped", f"backend module {e.name} is not part of this install"
    elif isinstance(e, ImportError):
        t.status, t.reason = "skipped", f"runtime not importable: {e}"
    else:
        t.status, t.reason = "failed", f"{type(e).__name__}: {e}"


def _time_streaming(clf, T: int, lo: float, hi: float, policy: RunPolicy, keep_samples: bool) -> dict:
    """A streaming pair timed four ways: whole clip, one encoder call, one head call, one step."""
    enc, head = clf.encoder, clf.head
    enc_ms, head_ms = clf.load_ms["main"], clf.load_ms["head"]
    frame = random_input(enc.input_shape, lo, hi)
    clip_x = random_input((T,) + tuple(enc.input_shape[1:]), lo, hi, seed=1)
    frame_t = time_calls(lambda: enc.infer(frame), policy, init_ms=enc_ms)   # first call timed first
    feats = np.stack([clf.encode_frame(f) for f in clip_x])[None].astype(np.float32)
    head_t = time_calls(lambda: head.infer(feats), policy, init_ms=head_ms)

    def step():
        enc.infer(frame)
        head.infer(feats)
    stream_t = time_calls(step, policy)
    clip = time_calls(lambda: clf.predict(clip_x), policy, init_ms=enc_ms + head_ms)
    return {"init_ms": enc_ms + head_ms, "clip": clip.to_dict(keep_samples),
            "frame": frame_t.to_dict(), "head": head_t.to_dict(), "streaming": stream_t.to_dict(),
            "streaming_speedup": clip.steady.p50_ms / stream_t.steady.p50_ms
            if stream_t.steady.p50_ms > 0 else None}


def measure_target(bundle: Bundle, t: Target, policy: RunPolicy, threads: int,
                   eval_set: Optional[EvalSet] = None, device_option: Optional[str] = None,
                   progress: Optional[Callable] = None, keep_samples: bool = True) -> dict:
    """Measure ``t`` (status pending) and return its report entry; sets ``t.status``."""
    opts = BackendOptions(threads=threads, device=device_option, **t.options)
    lo, hi = _input_range(bundle)
    T = bundle.input.frames
    latency = accuracy = runtime = memory = None
    clf = None
    try:
        probe = RssProbe().start()
        main = t.artifacts.get("full") or t.artifacts["encoder"]
        plan = Plan(t.backend, main, t.artifacts.get("head"), t.head_backend)
        clf = classifier_for(bundle, plan, opts)     # the factory edge-run and edge-eval use
        probe.mark_init()
        if not t.streaming:
            be, init_ms = clf.full, clf.load_ms["main"]
            x = random_input(be.input_shape, lo, hi)
            clip = time_calls(lambda: be.infer(x), policy, init_ms=init_ms)
            latency = {"init_ms": init_ms, "clip": clip.to_dict(keep_samples)}
            runtime = _runtime(be)
        else:
            latency = _time_streaming(clf, T, lo, hi, policy, keep_samples)
            runtime = {"encoder": _runtime(clf.encoder), "head": _runtime(clf.head)}
        probe.mark_runs()
        memory = probe.to_dict()
        t.status, t.reason = "ok", ""
        if eval_set is not None and len(eval_set):
            try:  # latency is measured: a scoring problem is reported next to it, not instead of it
                accuracy = evaluate(clf, eval_set, bundle.input, progress=progress)
            except Exception as e:
                t.note = (t.note + "; " if t.note else "") + f"accuracy not measured: {type(e).__name__}: {e}"
    except Exception as e:  # one bad artifact must not stop the others: it is reported instead
        _skip_or_fail(t, e)
    finally:
        if clf is not None:
            try:
                clf.close()
            except Exception:
                pass
    main = t.artifacts.get("full") or t.artifacts.get("encoder") or t.artifacts.get("head")
    clip_steady = (latency or {}).get("clip", {}).get("steady") if latency else None
    entry = {
        "key": t.key, "format": t.format, "precision": t.precision, "parts": t.parts,
        "status": t.status, "reason": t.reason, "note": t.note,
        "artifacts": [{"name": a.name, "file": a.file, "part": a.part, "format": a.format,
                       "precision": a.precision, "size_bytes": _size(bundle, a)} for a in t.artifacts.values()],
        "size_mb": (sum(_size(bundle, a) for a in t.artifacts.values()) / float(1 << 20)) if t.artifacts else None,
        "backend": t.backend, "head_backend": t.head_backend, "runtime": runtime,
        "threads": threads if t.status == "ok" else None,
        "latency": latency if t.status == "ok" else None,
        "fps": clip_steady["fps"] if clip_steady and t.status == "ok" else None,
        "accuracy": accuracy if t.status == "ok" else None,
        "host_metrics": {k: v for k, v in (main.metrics if main else {}).items()
                         if isinstance(v, (int, float, str)) and not isinstance(v, bool)},
        "memory": memory if t.status == "ok" else None,
        "edgetpu": {"device": device_option or "default (first Edge TPU found)"} if t.format == "edgetpu" and t.status == "ok" else None,
    }
    return entry


def _size(bundle: Bundle, a) -> int:
    p = bundle.path(a)
    if a.size_bytes:
        return int(a.size_bytes)
    return os.path.getsize(p) if os.path.exists(p) else 0


def skipped_entry(bundle: Bundle, t: Target) -> dict:
    """Report entry of a row that is not timed here (status skipped, with its reason)."""
    main = t.artifacts.get("full") or t.artifacts.get("encoder") or t.artifacts.get("head")
    return {
        "key": t.key, "format": t.format, "precision": t.precision, "parts": t.parts,
        "status": t.status, "reason": t.reason, "note": t.note,
        "artifacts": [{"name": a.name, "file": a.file, "part": a.part, "format": a.format, "precision": a.precision,
                       "size_bytes": _size(bundle, a)} for a in t.artifacts.values()],
        "size_mb": (sum(_size(bundle, a) for a in t.artifacts.values()) / float(1 << 20)) if t.artifacts else None,
        "backend": None, "head_backend": None, "runtime": None, "threads": None, "latency": None, "fps": None,
        "accuracy": None,
        "host_metrics": {k: v for k, v in (main.metrics if main else {}).items()
                         if isinstance(v, (int, float, str)) and not isinstance(v, bool)},
        "memory": None, "edgetpu": None,
    }
