"""``edge-quantize`` end to end: a training run in, a model bundle out, every step measured.

Steps: load the run -> float reference on the test split -> prune (tfmot) -> export float formats
-> QAT (prune-preserving) -> int8 converted twice, from the QAT model and post-training from the
(pruned) float model, keeping the one that agrees best with the float model on train/val clips
-> Edge TPU analysis / compile -> TensorRT (on a Jetson)
-> score every artifact on the run's test split through ``edge.classifier.ClipClassifier`` +
``edge.metrics`` (the path ``edge-eval`` and the device use) -> ``bundle.json`` via
``edge.bundle.Bundle.save`` -> summary table.

Parts: whole-clip models (lrcn, convlstm) give ``full`` artifacts. ``lrcn-edge`` gives a per-frame
``encoder`` (the Edge TPU / TensorRT part) and a temporal ``head`` for every format, plus a float
``full`` model for CPU use; the encoder and head of one format are scored together.
"""
from __future__ import annotations

import gzip
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge.bundle import Artifact, Bundle, file_digest
from edge.metrics import classification_metrics, top1_agreement

from . import formats as F
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


def _load_backend(path: str):
    """The device backend for a file, exactly as edge-eval / the runner open it."""
    from edge.backends import load_backend

    return load_backend(path)


def score_artifacts(paths: Dict[str, str], x: np.ndarray, y: np.ndarray, labels: List[str],
                    reference_scores: np.ndarray, progress: bool = False) -> dict:
    """Metrics of one full model or an encoder+head pair on (x, y), + top-1 agreement with the float model."""
    from edge.classifier import ClipClassifier

    if "full" in paths:
        clf = ClipClassifier(full=_load_backend(paths["full"]))
    else:
        clf = ClipClassifier(encoder=_load_backend(paths["encoder"]), head=_load_backend(paths["head"]))
    try:
        t = time.time()
        it = x
        if progress:
            from tqdm import tqdm
            it = tqdm(x, desc="  scoring", unit="clip", leave=False)
        scores = np.stack([clf.predict(c) for c in it]) if len(x) else np.zeros((0, len(labels)))
        secs = time.time() - t
    finally:
        clf.close()
    m = classification_metrics(y, scores.argmax(-1), labels=labels)
    out = {k: m[k] for k in ("f1_macro", "accuracy", "precision_macro", "recall_macro", "n_test")}
    out["top1_agreement"] = top1_agreement(scores, reference_scores)
    out["ms_per_clip_host"] = round(1000 * secs / max(len(x), 1), 2)
    return out


def quantize_run(run, out_dir: str, cfg: QuantizeConfig = QuantizeConfig(),
                 log: Callable[[str], None] = print) -> QuantizeResult:
    """Turn a ``train.run.Run`` into a bundle in ``out_dir`` (see module docstring)."""
    from . import prune as P
    from . import qat as Q
    from . import representative as R
    from .edgetpu_analyzer import analyze
    from .rewrite import export_friendly
    from .tflite_export import ExportError, io_quantization, short_error

    fmts = [f for f in cfg.formats if f in FORMATS]
    # a compiled format needs its source format
    if "edgetpu" in fmts and "tflite-int8" not in fmts:
        fmts.append("tflite-int8")
        log("note: edgetpu compiles the int8 TFLite model: adding tflite-int8")
    if "tensorrt" in fmts and "onnx" not in fmts:
        fmts.append("onnx")
        log("note: TensorRT engines are built from ONNX: adding onnx")
    is_edge = run.model_name == "lrcn-edge"
    steps = Steps(6 + (2 if "tflite-int8" in fmts else 0), log)
    os.makedirs(out_dir, exist_ok=True)
    skipped: List[dict] = []

    # 1. run + float reference --------------------------------------------------------------------
    steps(f"loading run {run.dir} ({run.model_name}) and its train/test split")
    import tf_keras as keras
    keras.utils.set_random_seed(int(cfg.seed))      # fine-tuning shuffles/dropout: reproducible bundles
    model = run.load_model()
    labels = list(run.labels)
    x_train, y_train = run.arrays("train")
    x_test, y_test = run.arrays("test")
    x_val, _ = run.arrays("val")
    if cfg.max_eval_clips is not None and len(x_test) > cfg.max_eval_clips:
        x_test, y_test = x_test[:cfg.max_eval_clips], y_test[:cfg.max_eval_clips]
    keras_file = str(run.path("model.keras"))
    ref_scores = model.predict(x_test, batch_size=8, verbose=0)
    ref_m = classification_metrics(y_test, ref_scores.argmax(-1), labels=labels)
    reference = {"f1_macro": ref_m["f1_macro"], "accuracy": ref_m["accuracy"], "n_test": ref_m["n_test"],
                 "size_bytes": os.path.getsize(keras_file) if os.path.exists(keras_file) else None,
                 "sparsity": 0.0}
    log(f"      float Keras: macro-F1 {ref_m['f1_macro']:.3f}, accuracy {ref_m['accuracy']:.3f} "
        f"on {len(x_test)} test clips; model.keras {reference['size_bytes']} bytes")
    calib = R.pick_clips(x_train, y_train, cfg.calib_clips, cfg.seed)

    if is_edge:
        from train.models import parts_of
        encoder, head, _ = parts_of(model)

    # 2. pruning ----------------------------------------------------------------------------------
    sparsity_rows: List[dict] = []
    overall = None
    if cfg.prune:
        steps(f"pruning to {cfg.sparsity:.0%} sparsity (PolynomialDecay, {cfg.prune_epochs} fine-tune epochs)")
        pcfg = P.PruneConfig(target_sparsity=cfg.sparsity, per_layer_type=dict(cfg.per_layer_sparsity),
                             epochs=cfg.prune_epochs, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate)
        if is_edge:
            sparsity_rows = P.prune_parts(encoder, head, x_train, y_train, pcfg, progress=cfg.progress)
        else:
            model, sparsity_rows = P.prune_model(model, x_train, y_train, pcfg, progress=cfg.progress)
        overall = P.overall_sparsity(None, sparsity_rows)
        for r in sparsity_rows:
            log(f"      {r['layer']:<32s} {r['weight']:<18s} {r['sparsity']:.3f} of {r['size']}")
        log(f"      overall kernel sparsity {overall:.3f}")
    else:
        steps("pruning skipped (--no-prune)")
    pruned_scores = model.predict(x_test, batch_size=8, verbose=0)
    pm = classification_metrics(y_test, pruned_scores.argmax(-1), labels=labels)
    reference["pruned_f1_macro"] = pm["f1_macro"]

    # 3. float exports (before QAT: QAT fine-tunes the lrcn-edge head in place) ---------------------
    steps("exporting float formats")
    float_model = export_friendly(model)
    if is_edge:
        parts = {"encoder": encoder, "head": head, "full": model}
    else:
        parts = {"full": float_model}
    produced: List[Tuple[Artifact, str]] = []     # (artifact, path)

    def add(fmt_name: str, part: str, path: str, sparsity: Optional[float], notes: str = ""):
        fmt = FORMATS[fmt_name]
        d = file_digest(path)
        a = Artifact(name=f"{part}-{fmt.precision}-{fmt.bundle_format}", file=os.path.basename(path), format=fmt.bundle_format,
                     precision=fmt.precision, part=part, devices=list(fmt.devices), size_bytes=d["size_bytes"],
                     sha256=d["sha256"], sparsity=None if sparsity is None else round(float(sparsity), 4),
                     notes=notes or fmt.note)
        produced.append((a, path))
        return a

    for fmt_name in [f for f in fmts if f in ("keras", "tflite-fp32", "tflite-fp16", "tflite-dynamic", "onnx")]:
        fmt = FORMATS[fmt_name]
        why = F.tool_available(fmt_name)
        if why:
            skipped.append({"format": fmt.bundle_format, "part": "all", "reason": why})
            continue
        for part, m in parts.items():
            if is_edge and part == "full" and fmt_name not in ("tflite-fp32", "onnx", "keras"):
                continue
            path = os.path.join(out_dir, F.artifact_file(part, fmt))
            try:
                fmt.export(m, path, opset=cfg.opset)
            except Exception as e:
                skipped.append({"format": fmt.bundle_format, "part": part,
                                "reason": f"{fmt_name} export failed: {short_error(e)}"})
                log(f"      {part} {fmt_name}: FAILED {short_error(e)}")
                continue
            part_sparsity = _part_sparsity(sparsity_rows, part, is_edge, overall)
            a = add(fmt_name, part, path, part_sparsity)
            if fmt_name == "onnx":
                from .onnx_export import verify
                sample = _part_inputs(part, x_test[:cfg.verify_clips], encoder if is_edge else None)
                chk = verify(path, m, sample)
                a.metrics.update(chk.to_dict())
                if not chk.ok():
                    a.notes = (a.notes + f" ONNX differs from Keras: max abs diff {chk.max_abs_diff:.2e}").strip()
            log(f"      {a.file}: {a.size_bytes} bytes")

    # 4. QAT + int8 -------------------------------------------------------------------------------
    q_model = None
    qat_rows: List[dict] = []
    int8_choice: dict = {}
    if "tflite-int8" in fmts:
        head_before_qat = [w.copy() for w in head.get_weights()] if is_edge else None
        if cfg.qat:
            steps(f"quantization-aware training ({cfg.qat_epochs} epochs"
                  f"{', sparsity-preserving' if cfg.prune else ''})")
            qcfg = Q.QATConfig(epochs=cfg.qat_epochs, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                               preserve_sparsity=cfg.prune)
            try:
                if is_edge:
                    q_model = Q.qat_encoder(encoder, head, x_train, y_train, qcfg, cfg.progress)
                elif run.model_name == "lrcn":
                    from train.models import to_flat
                    q_model = Q.qat_model(to_flat(model), x_train, y_train, qcfg, cfg.progress)
                else:
                    q_model = Q.qat_model(float_model, x_train, y_train, qcfg, cfg.progress)
                qat_rows = [{"layer": n, "sparsity": round(v, 4)} for n, v in Q.kernel_sparsity(q_model)]
                if cfg.prune:
                    log("      sparsity after QAT: " + ", ".join(f"{r['layer']} {r['sparsity']:.3f}" for r in qat_rows))
            except Exception as e:
                log(f"      QAT failed ({short_error(e)}); falling back to post-training int8")
                skipped.append({"format": "tflite", "part": "encoder" if is_edge else "full",
                                "reason": f"QAT failed, int8 is post-training: {short_error(e)}"})
                q_model = None
        else:
            steps("QAT skipped (--no-qat): post-training int8")
        steps(f"full-integer int8 ({cfg.io_dtype} I/O, {len(calib)} calibration clips from the training split)")
        fmt = FORMATS["tflite-int8"]
        qat_head = [w.copy() for w in head.get_weights()] if is_edge else None

        def jobs(source: str):
            """(part, keras model, representative) for one int8 candidate; sets the head it needs."""
            if is_edge:
                enc_src = q_model if source == "QAT" else encoder
                head.set_weights(qat_head if source == "QAT" else head_before_qat)
                feats = R.encode_clips(enc_src, calib)
                return [("encoder", enc_src, R.frame_dataset(calib, seed=cfg.seed)),
                        ("head", head, R.feature_dataset(feats))]
            return [("full", q_model if source == "QAT" else float_model, R.clip_dataset(calib))]

        # Both candidates are converted and the one that agrees best with the float model on *training
        # and validation* clips wins (never the test split). Why: a QAT model converts with the ranges
        # its fake-quant nodes learned; with few QAT steps (or an LSTM that QAT leaves float) those can be
        # worse than calibrating from data (measured on ucf101-mini lrcn: QAT int8 agreement 0.71 vs
        # post-training 1.0 with the pruned float model), while for the lrcn-edge encoder QAT usually wins.
        sources = (["QAT"] if q_model is not None else []) + ["post-training"]
        sel_x = np.concatenate([calib, x_val]) if len(x_val) else calib
        sel_ref = (np.asarray(model.predict(sel_x, batch_size=8, verbose=0))
                   if not is_edge else None)
        results = {}
        for source in sources:
            tmpdir = os.path.join(out_dir, f".int8-{source.lower()}")
            os.makedirs(tmpdir, exist_ok=True)
            paths, err = {}, None
            for part, m, rep in jobs(source):
                path = os.path.join(tmpdir, F.artifact_file(part, fmt))
                try:
                    F.export_tflite_int8(m, path, representative=rep, io_dtype=cfg.io_dtype)
                    paths[part] = path
                except ExportError as e:
                    err = str(e)
                    break
            if err:
                results[source] = {"error": err}
                log(f"      int8 from the {source} model: FAILED {err}")
                continue
            if is_edge:   # reference: float encoder + the head this candidate was calibrated with
                ref = np.asarray(model.predict(sel_x, batch_size=8, verbose=0))
            else:
                ref = sel_ref
            agree = score_artifacts(paths, sel_x, np.zeros(len(sel_x), np.int64), labels, ref)["top1_agreement"]
            results[source] = {"paths": paths, "agreement": agree}
            log(f"      int8 from the {source} model: top-1 agreement {agree:.3f} with the float model "
                f"on {len(sel_x)} train/val clips")
        ok = [s_ for s_ in sources if "paths" in results[s_]]
        if not ok:
            for part in ("encoder", "head") if is_edge else ("full",):
                skipped.append({"format": "tflite", "part": part,
                                "reason": "; ".join(f"{k}: {v['error']}" for k, v in results.items())})
        else:
            best = max(ok, key=lambda s_: (results[s_]["agreement"], s_ == "QAT"))
            if is_edge:
                head.set_weights(qat_head if best == "QAT" else head_before_qat)
            others = ", ".join(f"{k} {v['agreement']:.3f}" for k, v in results.items() if "agreement" in v)
            int8_choice = {"source": best, "agreement_on_train_val": {k: v.get("agreement") for k, v in results.items()},
                           "n_clips": int(len(sel_x))}
            for part, tmp in results[best]["paths"].items():
                path = os.path.join(out_dir, F.artifact_file(part, fmt))
                os.replace(tmp, path)
                a = add("tflite-int8", part, path, _part_sparsity(sparsity_rows, part, is_edge, overall),
                        notes=f"full integer from the {best} model (chosen by top-1 agreement with the float "
                              f"model on {len(sel_x)} train/val clips: {others})")
                a.quantization = io_quantization(path)
                log(f"      {a.file}: {a.size_bytes} bytes (from the {best} model)")
        for source in sources:
            shutil.rmtree(os.path.join(out_dir, f".int8-{source.lower()}"), ignore_errors=True)

    # 5. Edge TPU analysis + compiler -------------------------------------------------------------
    steps("Edge TPU: analysing every .tflite" + (", compiling int8" if "edgetpu" in fmts else ""))
    for a, path in list(produced):
        if a.format != "tflite":
            continue
        rep = analyze(path)
        a.edgetpu = rep.to_dict()
        if a.precision == "int8":
            if rep.mappable and a.part in ("encoder", "full"):
                a.devices = ["cpu", "coral"]
            else:
                a.devices = ["cpu"]
                if a.part != "head":
                    a.notes = (a.notes + "; NOT Edge TPU compatible: " + rep.summary()).strip("; ")
        log(f"      {a.file}: {rep.summary()}")
        if "edgetpu" in fmts and a.precision == "int8" and a.part in ("encoder", "full"):
            res = F.export_edgetpu(path, out_dir)
            if not res.produced:
                skipped.append({"format": "edgetpu", "part": a.part,
                                "reason": f"{os.path.basename(path)[:-7]}_edgetpu.tflite not produced: {res.reason}"})
                log(f"      edgetpu_compiler: {res.reason}")
            else:
                e = add("edgetpu", a.part, res.output, a.sparsity)
                e.edgetpu = res.log.to_dict() if res.log else None
                e.quantization = dict(a.quantization)
                e.notes = (f"compiled by edgetpu_compiler; log: {os.path.basename(res.log_path)}; "
                           "not scored here (needs an Edge TPU): same int8 math as "
                           f"{a.name}, whose metrics apply")
                e.metrics = {}

    # 6. TensorRT -----------------------------------------------------------------------------------
    if "tensorrt" in fmts:
        from .tensorrt import available, trtexec_command
        why = available()
        onnx_arts = [(a, p) for a, p in produced if a.format == "onnx" and a.part in ("encoder", "full")]
        for a, p in onnx_arts:
            cmd = trtexec_command(a.file, a.file[:-5] + "_fp16.engine", "fp16")
            a.notes = (a.notes + f" TensorRT on the Jetson: {cmd}").strip()
            if why:
                skipped.append({"format": "tensorrt", "part": a.part,
                                "reason": f"engine not built here ({why.split(':')[0]}); engines are per device: "
                                          f"build on the Jetson with `{cmd}` or `edge-quantize` there"})
        if not why:
            from .tensorrt import build_engine
            for a, p in onnx_arts:
                try:
                    b = build_engine(p, out_dir, "fp16")
                    t = add("tensorrt", a.part, b.path, a.sparsity)
                    t.notes = f"built on {b.device} with TensorRT {b.trt_version}; valid only there"
                except Exception as e:  # pragma: no cover - needs a GPU
                    skipped.append({"format": "tensorrt", "part": a.part, "reason": short_error(e)})

    # 7. scoring ----------------------------------------------------------------------------------
    steps(f"scoring every artifact on the test split ({len(x_test)} clips, edge backends)")
    groups: Dict[Tuple[str, str], Dict[str, Tuple[Artifact, str]]] = {}
    for a, path in produced:
        if a.status != "ok" or a.format in ("keras", "tensorrt", "edgetpu"):
            continue
        key = (a.format, a.precision)
        groups.setdefault(key, {})[a.part] = (a, path)
    for (fmt_, prec), by_part in groups.items():
        units = []
        if "full" in by_part:
            units.append({"full": by_part["full"]})
        if "encoder" in by_part and "head" in by_part:
            units.append({"encoder": by_part["encoder"], "head": by_part["head"]})
        elif is_edge and ("encoder" in by_part or "head" in by_part):
            # int8 encoder scored with the float head (and vice versa) when only one part is int8
            pass
        for unit in units:
            try:
                m = score_artifacts({k: v[1] for k, v in unit.items()}, x_test, y_test, labels, ref_scores,
                                    cfg.progress)
            except Exception as e:
                for a, _ in unit.values():
                    a.status = "failed"
                    a.notes = (a.notes + f" scoring failed: {short_error(e)}").strip()
                log(f"      {fmt_}/{prec} {'+'.join(unit)}: scoring FAILED {short_error(e)}")
                continue
            for a, _ in unit.values():
                a.metrics.update(m)
                if len(unit) > 1:
                    a.metrics["scored_as"] = "+".join(u.name for u, _ in unit.values())
            log(f"      {fmt_}/{prec} {'+'.join(unit)}: macro-F1 {m['f1_macro']:.3f}, "
                f"top-1 agreement {m['top1_agreement']:.3f}")

    # 8. bundle -----------------------------------------------------------------------------------
    steps("writing bundle.json + labels.txt")
    sizes = _size_report(produced, reference, is_edge)
    if is_edge:
        feat_dim = int(encoder.output_shape[-1])
        streaming = {"feature_dim": feat_dim}
    else:
        streaming = None
    bundle = Bundle(
        name=run.model_name, model=run.model_name, labels=labels, input=run.input_spec(),
        sampling=run.sampling(), artifacts=[a for a, _ in produced], streaming=streaming, skipped=skipped,
        producer={"tool": "edge-quantize", "versions": _versions(), "run_dir": str(run.dir),
                  "created_with": {k: (list(v) if isinstance(v, (list, tuple)) else v)
                                   for k, v in asdict(cfg).items()},
                  "reference": reference, "sizes": sizes, "sparsity": sparsity_rows,
                  "overall_sparsity": overall, "qat_sparsity": qat_rows, "int8_choice": int8_choice},
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    bundle_path = bundle.save(out_dir)
    steps.end()
    from .table import bundle_table
    table = bundle_table(bundle.artifacts, reference, skipped)
    return QuantizeResult(bundle, bundle_path, reference, sparsity_rows, table, sizes)


def _part_inputs(part: str, clips: np.ndarray, encoder=None) -> List[np.ndarray]:
    if part == "encoder":
        return list(clips.reshape((-1,) + clips.shape[2:])[: max(len(clips), 1) * 2])
    if part == "head":
        from .representative import encode_clips
        return list(encode_clips(encoder, clips))
    return list(clips)


def _part_sparsity(rows: List[dict], part: str, is_edge: bool, overall: Optional[float]) -> Optional[float]:
    if not rows:
        return None
    if is_edge and part in ("encoder", "head"):
        sel = [r for r in rows if r["layer"].startswith(part + "/")]
        total = sum(r["size"] for r in sel)
        return sum(r["zeros"] for r in sel) / total if total else None
    return overall


def _size_report(produced, reference: dict, is_edge: bool) -> dict:
    """int8 bytes (encoder+head for lrcn-edge, else full) vs the float model.keras, raw and gzip."""
    int8 = [p for a, p in produced if a.format == "tflite" and a.precision == "int8"]
    fp32 = [p for a, p in produced if a.format == "tflite" and a.precision == "float32" and
            (a.part != "full" or not is_edge)]
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
