"""Time (and score) one report row: a whole-clip artifact, or an encoder + head pair.

Every timing goes through ``edge.backends`` ``Backend.infer`` — the call ``edge-run`` makes — so
the quantize/dequantize at the int8 boundary is included. Streaming rows are timed four ways:
the whole clip (T encoder calls + 1 head call, what a clip costs without streaming), one encoder
call per frame, one head call, and one streaming step (1 encoder + 1 head: the cost of a new
prediction when the runner predicts every sampled frame).
"""
from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np

from edge.backends import BackendOptions, BackendUnavailable, load_backend
from edge.bundle import Bundle
from edge.classifier import ClipClassifier

from .accuracy import EvalSet, evaluate
from .latency import RunPolicy, random_input, time_calls, timed
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


def measure_target(bundle: Bundle, t: Target, policy: RunPolicy, threads: int,
                   eval_set: Optional[EvalSet] = None, device_option: Optional[str] = None,
                   progress: Optional[Callable] = None, keep_samples: bool = True) -> dict:
    """Measure ``t`` (status pending) and return its report entry; sets ``t.status``."""
    opts = BackendOptions(threads=threads, device=device_option, **t.options)
    head_opts = BackendOptions(threads=threads)
    lo, hi = _input_range(bundle)
    T = bundle.input.frames
    latency = accuracy = runtime = memory = None
    backends = []
    try:
        probe = RssProbe().start()
        if not t.streaming:
            art = t.artifacts["full"]
            be, init_ms = timed(lambda: load_backend(bundle.path(art), t.backend, opts))
            backends.append(be)
            probe.mark_init()
            clf = ClipClassifier(full=be)
            x = random_input(be.input_shape, lo, hi)
            clip = time_calls(lambda: be.infer(x), policy, init_ms=init_ms)
            latency = {"init_ms": init_ms, "clip": clip.to_dict(keep_samples)}
            runtime = _runtime(be)
        else:
            enc_art, head_art = t.artifacts["encoder"], t.artifacts["head"]
            enc, enc_ms = timed(lambda: load_backend(bundle.path(enc_art), t.backend, opts))
            backends.append(enc)
            head, head_ms = timed(lambda: load_backend(bundle.path(head_art), t.head_backend, head_opts))
            backends.append(head)
            probe.mark_init()
            clf = ClipClassifier(encoder=enc, head=head)
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
            latency = {"init_ms": enc_ms + head_ms, "clip": clip.to_dict(keep_samples),
                       "frame": frame_t.to_dict(), "head": head_t.to_dict(), "streaming": stream_t.to_dict(),
                       "streaming_speedup": clip.steady.p50_ms / stream_t.steady.p50_ms
                       if stream_t.steady.p50_ms > 0 else None}
            runtime = {"encoder": _runtime(enc), "head": _runtime(head)}
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
        for be in backends:
            try:
                be.close()
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
