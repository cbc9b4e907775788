"""``edge-quantize`` end to end: a training run in, a model bundle out, every step measured.

The steps (``quantize/steps.py``: load -> prune -> float exports -> ONNX verify -> QAT -> int8 ->
Edge TPU analysis / compile -> TensorRT -> score) run in order over one ``Job``; this module runs
them with numbered progress lines, then writes ``bundle.json`` via ``edge.bundle.Bundle.save`` and
the summary table. Artifacts are scored through ``edge.evaluation`` (the path ``edge-eval``,
``edge-bench`` and the device use).

Parts: whole-clip models (lrcn, convlstm) give ``full`` artifacts. ``lrcn-edge`` gives a per-frame
``encoder`` (the Edge TPU / TensorRT part) and a temporal ``head`` for every format, plus a float
``full`` model for CPU use; the encoder and head of one format are scored together. Which applies
comes from the model registry (``quantize/parts.py``).
"""
from __future__ import annotations

import gzip
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from edge.bundle import Bundle

from .formats import DEFAULT_FORMATS, FORMATS


@dataclass
class QuantizeConfig:
    formats: Sequence[str] = DEFAULT_FORMATS
    sparsity: float = 0.5
    per_layer_sparsity: Dict[str, float] = field(default_factory=dict)
    prune: bool = True
    qat: bool = True
    prune_epochs: int = 8
    qat_epochs: int = 3
    batch_size: int = 4
    learning_rate: float = 3e-4
    calib_clips: int = 64
    io_dtype: str = "int8"
    opset: int = 13
    max_eval_clips: Optional[int] = None   # None: the whole test split
    verify_clips: int = 8                  # ONNX vs Keras check
    seed: int = 0
    progress: bool = True


@dataclass
class QuantizeResult:
    bundle: Bundle
    bundle_path: str
    reference: dict
    sparsity_rows: List[dict]
    table: str
    sizes: dict


class Steps:
    """Numbered progress lines with timings ("[3/9] pruning ... 12.3 s")."""

    def __init__(self, total: int, log: Callable[[str], None]):
        self.total, self.i, self.log, self.t = total, 0, log, None

    def __call__(self, what: str):
        now = time.time()
        if self.t is not None:
            self.log(f"      done in {now - self.t:.1f} s")
        self.i += 1
        self.t = now
        self.log(f"[{self.i}/{self.total}] {what}")

    def end(self):
        if self.t is not None:
            self.log(f"      done in {time.time() - self.t:.1f} s")


def _versions() -> dict:
    out = {}
    for mod in ("tensorflow", "tf_keras", "tensorflow_model_optimization", "tf2onnx", "onnxruntime", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            pass
    return out


def _gzip_size(paths: Sequence[str]) -> int:
    total = 0
    for p in paths:
        with open(p, "rb") as f:
            total += len(gzip.compress(f.read(), 9))
    return total


def score_artifacts(paths: Dict[str, str], x: np.ndarray, y: np.ndarray, labels: List[str],
                    reference_scores: np.ndarray, progress: bool = False) -> dict:
    """Metrics of one full model or an encoder+head pair on (x, y), + top-1 agreement with the float
    model, through ``edge.evaluation`` (the factory and scoring edge-eval and edge-bench use)."""
    from edge.evaluation import classifier_for, evaluate
    from edge.preprocess import InputSpec
    from edge.select import plan_files

    bundle, plan = plan_files(full=paths.get("full"), encoder=paths.get("encoder"), head=paths.get("head"))
    prog = None
    if progress:
        from tqdm import tqdm
        prog = (lambda it: tqdm(it, desc="  scoring", unit="clip", leave=False))
    with classifier_for(bundle, plan) as clf:
        spec = InputSpec(*x.shape[1:4]) if len(x) else InputSpec()
        m = evaluate(clf, x, y, labels, spec, progress=prog, reference_scores=reference_scores)
    out = {k: m[k] for k in ("f1_macro", "accuracy", "precision_macro", "recall_macro", "n_test")}
    out["top1_agreement"] = m["top1_agreement"]
    out["ms_per_clip_host"] = round(1000 * m["seconds"] / max(len(x), 1), 2)
    return out


def _formats(cfg: QuantizeConfig, log: Callable[[str], None]) -> List[str]:
    """The asked formats plus, recursively, the ones they are made from (catalog ``needs``:
    edgetpu <- tflite-int8, tensorrt <- onnx-fp16 + onnx-int8 <- onnx + tflite-int8)."""
    fmts = [f for f in cfg.formats if f in FORMATS]
    i = 0
    while i < len(fmts):
        for need in FORMATS[fmts[i]].needs:
            if need not in fmts:
                fmts.append(need)
                log(f"note: {fmts[i]} is made from {need}: adding {need}")
        i += 1
    return fmts


def quantize_run(run, out_dir: str, cfg: QuantizeConfig = QuantizeConfig(),
                 log: Callable[[str], None] = print) -> QuantizeResult:
    """Turn a ``train.run.Run`` into a bundle in ``out_dir`` (see module docstring)."""
    from .steps import STEPS, Job

    os.makedirs(out_dir, exist_ok=True)
    job = Job(run=run, cfg=cfg, out_dir=out_dir, fmts=_formats(cfg, log), log=log)
    todo = [st for st in STEPS if st.applies(job)]
    steps = Steps(sum(1 for st in todo if st.title) + 1, log)
    for st in todo:
        if st.title:
            steps(st.title(job))
        st.run(job)
    steps("writing bundle.json + labels.txt")
    bundle = write_bundle(job)
    steps.end()
    from .table import bundle_table
    table = bundle_table(bundle.artifacts, job.reference, job.skipped)
    return QuantizeResult(bundle, os.path.join(out_dir, "bundle.json"), job.reference, job.sparsity_rows, table,
                          bundle.producer["sizes"])


def write_bundle(job) -> Bundle:
    """bundle.json + labels.txt from what the steps produced (validated by ``Bundle.save``)."""
    run, cfg = job.run, job.cfg
    sizes = _size_report(job.produced, job.reference, job.parts)
    bundle = Bundle(
        name=run.model_name, model=run.model_name, labels=job.labels, input=run.input_spec(),
        sampling=run.sampling(), artifacts=[a for a, _ in job.produced], streaming=job.parts.streaming(),
        skipped=job.skipped,
        producer={"tool": "edge-quantize", "versions": _versions(), "run_dir": str(run.dir),
                  "created_with": {k: (list(v) if isinstance(v, (list, tuple)) else v)
                                   for k, v in asdict(cfg).items()},
                  "reference": job.reference, "sizes": sizes, "sparsity": job.sparsity_rows,
                  "overall_sparsity": job.overall, "qat_sparsity": job.qat_rows, "int8_choice": job.int8_choice},
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    bundle.save(job.out_dir)
    return bundle


def _size_report(produced, reference: dict, parts) -> dict:
    """int8 bytes (encoder+head for lrcn-edge, else full) vs the float model.keras, raw and gzip."""
    int8 = [p for a, p in produced if a.format == "tflite" and a.precision == "int8"]
    fp32 = [p for a, p in produced if a.format == "tflite" and a.precision == "float32" and
            parts.counts_in_fp32_size(a.part)]
    base = reference.get("size_bytes")
    out = {"float_keras_bytes": base}
    if int8:
        n = sum(os.path.getsize(p) for p in int8)
        gz = _gzip_size(int8)
        out.update({"int8_bytes": n, "int8_gzip_bytes": gz})
        if base:
            out.update({"float_keras_over_int8": round(base / n, 2), "float_keras_over_int8_gzip": round(base / gz, 2)})
    if fp32:
        out["fp32_tflite_bytes"] = sum(os.path.getsize(p) for p in fp32)
        out["fp32_tflite_gzip_bytes"] = _gzip_size(fp32)
    return out
