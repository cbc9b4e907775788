"""``edge-eval``: score any model file on a folder dataset with the device's own preprocessing.

MODEL may be

* a run directory (or its ``model.keras``): scored with Keras;
* a ``.tflite`` / ``.onnx`` file: scored through ``edge.classifier.ClipClassifier`` and
  ``edge.backends`` -- the code path the device runs, so quantized accuracy is measured honestly;
* a bundle directory (``bundle.json``): every artifact that runs on this CPU (or ``--artifact NAME``),
  full-clip artifacts alone, encoder artifacts paired with the bundle's CPU head.

``--data`` is a raw video folder (prepared with the model's sampling settings into a cache) or a
prepared cache. When the model belongs to a run and ``--data`` is that run's data, ``--split test``
scores exactly the run's test clips, so ``edge-eval RUN --data SAME_DATA`` reproduces its
``metrics.json``; on any other folder every clip is scored. Classes are matched by name; clips of
classes the model does not know are left out (and reported).

Writes ``metrics.json`` (``edge.metrics.classification_metrics`` + what was scored) and the confusion
matrix (CSV + PNG) into ``--out``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

EXAMPLES = """examples:
  edge-eval work/runs/lrcn-edge --data work/data/synth            # reproduces the run's metrics.json
  edge-eval work/runs/lrcn-edge --data ../shared/data/ucf101-mini --split all --out work/eval/all
  edge-eval work/bundles/lrcn-edge/model_int8.tflite --run work/runs/lrcn-edge --data work/data/synth
  edge-eval work/bundles/lrcn-edge --data work/data/synth                  # every CPU artifact
  edge-eval work/bundles/lrcn-edge --artifact encoder-int8 --data work/data/synth
"""


class EvalError(ValueError):
    """Bad input to edge-eval (one line, exit code 2)."""


# ----------------------------------------------------------------------------- library API
def evaluate_keras(model, X: np.ndarray, y: np.ndarray, labels: Sequence[str], batch_size: int = 8) -> Dict:
    """Metrics of a Keras clip model on (X, y); ``scores`` are the softmax outputs."""
    from edge.evaluation import metrics_of
    t = time.time()
    scores = model.predict(X, batch_size=batch_size, verbose=0) if len(X) else np.zeros((0, len(labels)))
    return metrics_of(y, scores, labels, time.time() - t)


def evaluate_classifier(classifier, X: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> Dict:
    """Metrics of an ``edge.classifier.ClipClassifier`` (TFLite / ONNX / Edge TPU / TensorRT) on
    normalised clips, through ``edge.evaluation`` (the path edge-bench and edge-quantize score with)."""
    from edge.evaluation import evaluate
    from edge.preprocess import InputSpec
    spec = InputSpec(*X.shape[1:4]) if len(X) else InputSpec()
    return evaluate(classifier, X, y, labels, spec)


# ------------------------------------------------------------------------------- resolution
@dataclass
class Target:
    """One thing to score: a Keras file, or backend file(s) for a ClipClassifier."""

    name: str
    keras: Optional[str] = None
    full: Optional[str] = None
    encoder: Optional[str] = None
    head: Optional[str] = None


@dataclass
class Resolved:
    targets: List[Target]
    run: Optional[object]                 # train.run.Run
    labels: List[str]
    frames: int
    size: Tuple[int, int]
    short_policy: str
    origin: str                          # run | bundle | file


def _labels_near(path: Path) -> Optional[List[str]]:
    for cand in (path.parent / "labels.txt", path.parent.parent / "labels.txt"):
        if cand.is_file():
            from train.run import read_labels

            return read_labels(cand)
    return None


def _cpu_bundle_targets(bundle, only: Optional[Sequence[str]]) -> List[Target]:
    """Every artifact this CPU runs (the catalog's cpu formats, + Keras), or the ``--artifact`` ones;
    an encoder is scored with the head edge-run pairs with it on the CPU (``edge.select.pair_head``)."""
    from edge import catalog as C
    from edge.select import pair_head

    cpu_formats = set(C.device_formats("cpu")) | {"keras"}
    arts = [a for a in bundle.artifacts if a.status == "ok"]
    if only:
        names = {a.name for a in arts}
        missing = [n for n in only if n not in names]
        if missing:
            raise EvalError(f"{bundle.root}: no artifact {missing} (have: {', '.join(sorted(names))})")
        chosen = [a for a in arts if a.name in only]
    else:
        chosen = [a for a in arts if a.format in cpu_formats and C.runs_on(a.devices, "cpu")]
    targets = []
    for a in chosen:
        path = bundle.path(a)
        if a.format == "keras":
            if a.part == "full":
                targets.append(Target(a.name, keras=path))
            continue
        if a.part == "full":
            targets.append(Target(a.name, full=path))
        elif a.part == "encoder":
            backend = C.backend_on("cpu", a.format)
            head, _, _ = pair_head(bundle, a, C.head_backend_for(backend, C.DEVICE["cpu"].head_backend), "cpu")
            if head is None:
                raise EvalError(f"{bundle.root}: encoder artifact {a.name} has no CPU head artifact to pair with")
            targets.append(Target(f"{a.name}+{head.name}", encoder=path, head=bundle.path(head)))
    if not targets:
        raise EvalError(f"{bundle.root}: no artifact this CPU can run (use --artifact NAME)")
    return targets


def resolve(model: str, run_dir: Optional[str] = None, artifacts: Optional[Sequence[str]] = None) -> Resolved:
    from train.run import MODEL_FILE, RunError, is_run_dir, load_run

    p = Path(model)
    if not p.exists():
        raise EvalError(f"{model}: no such file or directory")
    run = None
    if run_dir:
        run = load_run(run_dir)
    elif p.is_dir() and is_run_dir(p):
        run = load_run(p)
    elif p.is_file() and p.suffix == ".keras" and is_run_dir(p.parent):
        run = load_run(p.parent)
    if p.is_dir() and (p / "bundle.json").is_file():
        from edge import bundle as bundle_mod

        b = bundle_mod.load(str(p))
        targets = _cpu_bundle_targets(b, artifacts)
        return Resolved(targets, run, list(b.labels), b.input.frames, (b.input.height, b.input.width),
                        b.sampling.short_policy, "bundle")
    if p.is_dir():
        if run is None:
            raise EvalError(f"{model}: neither a run directory (config.yaml) nor a bundle (bundle.json)")
        p = p / MODEL_FILE
        if not p.is_file():
            raise EvalError(f"{p}: missing (the run did not finish?)")
    from edge import catalog as C
    try:
        fmt = C.format_for_file(p.name)
    except ValueError:
        fmt = None
    if fmt == "keras":
        target = Target(p.name, keras=str(p))
    elif fmt in C.device_formats("cpu"):
        target = Target(p.name, full=str(p))
    else:
        raise EvalError(f"{model}: unsupported model file (use a run dir, .keras, .tflite, .onnx or a bundle dir)")
    if run is not None:
        spec = run.input_spec()
        return Resolved([target], run, run.labels, spec.frames, spec.size, run.sampling().short_policy, "run")
    labels = _labels_near(p)
    frames, size = _shape_of(target)
    if labels is None:
        raise EvalError(f"{model}: no labels.txt next to the model; pass --run RUN_DIR")
    return Resolved([target], None, labels, frames, size, "pad", "file")


def _shape_of(target: Target) -> Tuple[int, Tuple[int, int]]:
    if target.keras:
        from train.models import load_model

        shape = load_model(target.keras, compile=False).input_shape
    else:
        from edge.backends import load_backend

        b = load_backend(target.full)
        shape = b.input_shape
        b.close()
    if len(shape) != 5:
        raise EvalError(f"{target.name}: expected a clip input (N, T, H, W, 3), got {shape}")
    return int(shape[1]), (int(shape[2]), int(shape[3]))


# ------------------------------------------------------------------------------------- data
def default_cache(data_dir: Path, frames: int, size, short_policy: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edge-action" / "clips"
    key = json.dumps([str(data_dir.resolve()), frames, list(size), short_policy])
    return base / f"{data_dir.name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def load_eval_data(res: Resolved, data: str, split: str, cache: Optional[str] = None,
                   progress: bool = True, log=print) -> Tuple[np.ndarray, np.ndarray, Dict]:
    """(X, y, info): the clips to score, labels indexed like the model's output."""
    from train.data import load_clips, load_manifest, prepare

    p = Path(data)
    if not p.exists():
        raise EvalError(f"{data}: no such data folder")
    run = res.run
    if (p / "manifest.json").is_file():
        manifest = load_manifest(p)
        s = manifest.settings
        if int(s.get("frames", -1)) != res.frames or list(s.get("size", [])) != list(res.size):
            raise EvalError(f"{data}: prepared with frames={s.get('frames')} size={s.get('size')}, the model "
                            f"wants frames={res.frames} size={list(res.size)}")
    else:
        cache_dir = Path(cache) if cache else None
        if cache_dir is None and run is not None:
            d = run.config["data"]
            for dd, cd in ((d.get("data_dir"), d.get("cache_dir")), (d.get("test_data_dir"), d.get("test_cache_dir"))):
                if dd and cd and Path(dd).resolve() == p.resolve():
                    cache_dir = Path(cd)
        if cache_dir is None:
            cache_dir = default_cache(p, res.frames, res.size, res.short_policy)
        manifest = prepare(str(p), str(cache_dir), frames=res.frames, size=tuple(res.size),
                           short_policy=res.short_policy, progress=progress)
    info = {"data": str(p.resolve()), "cache": str(manifest.cache_dir), "split": split}
    own = _run_source(run, manifest) if run is not None else None
    index = {name: i for i, name in enumerate(res.labels)}
    if split == "test" and own is not None:
        wanted = [it for it in run.split["test"] if it.get("source", "main") == own]
        by_path = {e.path: e for e in manifest.entries}
        missing = [it["path"] for it in wanted if it["path"] not in by_path or not by_path[it["path"]].ok]
        if missing:
            raise EvalError(f"{data}: {len(missing)} of the run's test clips are not usable here, e.g. {missing[0]}")
        entries = [replace(by_path[it["path"]], label_index=int(it["label_index"])) for it in wanted]
        info["scored"] = "the run's test split"
    else:
        if split == "test" and run is not None:
            log(f"note: {data} is not the run's data; scoring every clip of it")
        entries, dropped = [], {}
        for e in manifest.ok_entries:
            if e.label in index:
                entries.append(replace(e, label_index=index[e.label]))
            else:
                dropped[e.label] = dropped.get(e.label, 0) + 1
        if dropped:
            log("note: classes unknown to the model left out: " + ", ".join(f"{c} ({n})" for c, n in sorted(dropped.items())))
        info["dropped_classes"] = dropped
        info["scored"] = "every clip"
    if not entries:
        raise EvalError(f"{data}: no clip of a class the model knows ({', '.join(res.labels)})")
    x, y = load_clips(manifest, entries)
    return x, y, info


def _run_source(run, manifest) -> Optional[str]:
    """'main' / 'test' when ``manifest`` is the run's training or test cache, else None."""
    d = run.config["data"]
    here = Path(manifest.cache_dir).resolve()
    if d.get("cache_dir") and Path(d["cache_dir"]).resolve() == here:
        return "main"
    if d.get("test_cache_dir") and Path(d["test_cache_dir"]).resolve() == here:
        return "test"
    return None


# -------------------------------------------------------------------------------------- run
def score_target(target: Target, x: np.ndarray, y: np.ndarray, labels: Sequence[str], threads: Optional[int] = None,
                 batch_size: int = 8) -> Dict:
    if target.keras:
        from train.models import load_model

        m = evaluate_keras(load_model(target.keras, compile=False), x, y, labels, batch_size)
        m["backend"] = "keras"
        return m
    from edge.backends import BackendOptions
    from edge.evaluation import classifier_for
    from edge.select import plan_files

    bundle, plan = plan_files(full=target.full, encoder=target.encoder, head=target.head)
    with classifier_for(bundle, plan, BackendOptions(threads=threads)) as clf:
        m = evaluate_classifier(clf, x, y, labels)
        m["backend"] = (clf.full or clf.encoder).name
    return m


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="edge-eval", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Score a model (run dir, .keras, .tflite, .onnx or bundle) on a video folder with the "
                    "device's preprocessing; writes metrics.json and the confusion matrix.")
    ap.add_argument("model", help="run directory, .keras, .tflite, .onnx, or bundle directory")
    ap.add_argument("--data", required=True, help="raw video folder (<Class>/<video>) or prepared cache")
    ap.add_argument("--out", help="output directory (default: eval/<model>-<data> next to the model)")
    ap.add_argument("--split", choices=("test", "all"), default="test",
                    help="test: the run's test clips when --data is the run's data (else every clip); all: every clip")
    ap.add_argument("--run", help="run directory the model came from (labels, sampling, split)")
    ap.add_argument("--artifact", action="append", help="bundle artifact name (repeatable; default: all CPU ones)")
    ap.add_argument("--cache", help="clip cache for a raw --data folder")
    ap.add_argument("--threads", type=int, help="CPU threads for TFLite / ONNX Runtime")
    ap.add_argument("--batch-size", type=int, default=8, help="Keras prediction batch (default 8)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edge.backends import BackendUnavailable
    from edge.bundle import BundleError
    from train.data import CacheError, ManifestError
    from train.report import write_eval_outputs
    from train.run import RunError

    try:
        res = resolve(args.model, args.run, args.artifact)
        x, y, info = load_eval_data(res, args.data, args.split, args.cache, progress=not args.quiet,
                                    log=lambda s: print(s, file=sys.stderr))
        base = Path(args.out) if args.out else (Path(args.model) if Path(args.model).is_dir() else Path(args.model).parent) \
            / "eval" / f"{Path(args.model).name}-{Path(args.data).name}"
        results = {}
        for t in res.targets:
            m = score_target(t, x, y, res.labels, args.threads, args.batch_size)
            m.update({"model": str(args.model), "artifact": t.name, **info})
            out = base if len(res.targets) == 1 else base / t.name
            write_eval_outputs(out, m, title=f"{t.name}: F1 {m['f1_macro']:.3f}")
            results[t.name] = m
            print(f"{t.name}: macro-F1 {m['f1_macro']:.4f}  accuracy {m['accuracy']:.4f}  "
                  f"n={m['n_test']}  ({m['backend']}, {m['clips_per_s']} clips/s) -> {out}")
        if len(results) > 1:
            from train.run import write_json

            write_json(base / "summary.json", {k: {kk: v[kk] for kk in ("f1_macro", "accuracy", "n_test", "backend")}
                                              for k, v in results.items()})
    except (EvalError, RunError, BundleError, ManifestError, CacheError, BackendUnavailable) as e:
        print(f"edge-eval: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
