"""edge-quantize as a list of small steps over one ``Job`` (the state they share).

    load -> prune -> export float formats -> verify ONNX -> QAT -> int8 -> Edge TPU analysis
    -> Edge TPU compile -> TensorRT -> score -> write bundle

Each step is a function ``step(job)`` that reads and fills fields of the job, so it can be run and
tested alone on a hand-made job. Model specifics come from ``job.parts`` (``quantize/parts.py``,
chosen by the model registry), formats from ``quantize/formats.py`` (the catalog's export rows).
``STEPS`` lists them with when they apply and the progress line they print.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from edge import catalog as C
from edge.bundle import Artifact, file_digest
from edge.metrics import classification_metrics

from . import formats as F
from .formats import FORMATS

# exported straight from the float Keras parts: every export row that needs no other export first and
# is not the calibrated int8 (which has its own steps)
FLOAT_FORMATS = tuple(f.name for f in FORMATS.values() if not f.needs and f.precision != "int8")
# scored here: what this host's CPU runs (keras is host-only, edgetpu/tensorrt need their device)
SCORED_HERE = tuple(C.device_formats("cpu"))


@dataclass
class Job:
    """Everything the steps share: inputs, the data, and what has been produced so far."""

    run: object                        # train.run.Run
    cfg: object                        # bundle_writer.QuantizeConfig
    out_dir: str
    fmts: List[str]
    log: Callable[[str], None] = print
    parts: object = None               # quantize.parts.WholeClip | EncoderHead
    float_parts: Dict[str, object] = field(default_factory=dict)   # part -> the Keras model exported
    labels: List[str] = field(default_factory=list)
    data: Dict[str, np.ndarray] = field(default_factory=dict)   # x_train, y_train, x_val, x_test, y_test, calib
    reference: dict = field(default_factory=dict)
    ref_scores: Optional[np.ndarray] = None
    sparsity_rows: List[dict] = field(default_factory=list)
    overall: Optional[float] = None
    qat_rows: List[dict] = field(default_factory=list)
    q_model: object = None
    int8_choice: dict = field(default_factory=dict)
    produced: List[Tuple[Artifact, str]] = field(default_factory=list)    # (artifact, path)
    skipped: List[dict] = field(default_factory=list)

    def add(self, fmt_name: str, part: str, path: str, sparsity: Optional[float] = None, notes: str = "") -> Artifact:
        """Record a produced file as a bundle artifact (size, sha256, devices from the format row)."""
        fmt = FORMATS[fmt_name]
        d = file_digest(path)
        a = Artifact(name=f"{part}-{fmt.precision}-{fmt.bundle_format}", file=os.path.basename(path),
                     format=fmt.bundle_format, precision=fmt.precision, part=part, devices=list(fmt.devices),
                     size_bytes=d["size_bytes"], sha256=d["sha256"],
                     sparsity=None if sparsity is None else round(float(sparsity), 4), notes=notes or fmt.note)
        self.produced.append((a, path))
        return a

    def sparsity_of(self, part: str) -> Optional[float]:
        return self.parts.part_sparsity(self.sparsity_rows, part, self.overall)

    def skip(self, fmt: str, part: str, reason: str, **extra) -> None:
        """A ``skipped`` entry of the bundle (``extra``: precision, command, predicted ...)."""
        self.skipped.append(dict({"format": fmt, "part": part, "reason": reason}, **extra))


def _short(e: BaseException) -> str:
    from .tflite_export import short_error
    return short_error(e)


# -- 1. load ------------------------------------------------------------------------------------
def load(job: Job) -> None:
    """The run's model, split, float reference on the test split and calibration clips."""
    import tf_keras as keras

    from . import representative as R
    from .parts import model_parts
    run, cfg = job.run, job.cfg
    keras.utils.set_random_seed(int(cfg.seed))      # fine-tuning shuffles/dropout: reproducible bundles
    job.parts = model_parts(run.model_name, run.load_model())
    job.labels = list(run.labels)
    d = job.data
    d["x_train"], d["y_train"] = run.arrays("train")
    d["x_test"], d["y_test"] = run.arrays("test")
    d["x_val"], _ = run.arrays("val")
    if cfg.max_eval_clips is not None and len(d["x_test"]) > cfg.max_eval_clips:
        d["x_test"], d["y_test"] = d["x_test"][:cfg.max_eval_clips], d["y_test"][:cfg.max_eval_clips]
    keras_file = str(run.path("model.keras"))
    job.ref_scores = job.parts.model.predict(d["x_test"], batch_size=8, verbose=0)
    m = classification_metrics(d["y_test"], job.ref_scores.argmax(-1), labels=job.labels)
    job.reference = {"f1_macro": m["f1_macro"], "accuracy": m["accuracy"], "n_test": m["n_test"],
                     "size_bytes": os.path.getsize(keras_file) if os.path.exists(keras_file) else None,
                     "sparsity": 0.0}
    job.log(f"      float Keras: macro-F1 {m['f1_macro']:.3f}, accuracy {m['accuracy']:.3f} "
            f"on {len(d['x_test'])} test clips; model.keras {job.reference['size_bytes']} bytes")
    d["calib"] = R.pick_clips(d["x_train"], d["y_train"], cfg.calib_clips, cfg.seed)


# -- 2. prune -----------------------------------------------------------------------------------
def prune(job: Job) -> None:
    """Magnitude pruning to the target sparsity (the parts decide what is pruned together)."""
    from . import prune as P
    cfg = job.cfg
    if cfg.prune:
        pcfg = P.PruneConfig(target_sparsity=cfg.sparsity, per_layer_type=dict(cfg.per_layer_sparsity),
                             epochs=cfg.prune_epochs, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate)
        job.sparsity_rows = job.parts.prune(job.data["x_train"], job.data["y_train"], pcfg, cfg.progress)
        job.overall = P.overall_sparsity(None, job.sparsity_rows)
        for r in job.sparsity_rows:
            job.log(f"      {r['layer']:<32s} {r['weight']:<18s} {r['sparsity']:.3f} of {r['size']}")
        job.log(f"      overall kernel sparsity {job.overall:.3f}")
    else:                       # the model is the one ``load`` scored: its F1 again, no second pass
        job.reference["pruned_f1_macro"] = job.reference["f1_macro"]
        return
    scores = job.parts.model.predict(job.data["x_test"], batch_size=8, verbose=0)
    m = classification_metrics(job.data["y_test"], scores.argmax(-1), labels=job.labels)
    job.reference["pruned_f1_macro"] = m["f1_macro"]


# -- 3. float exports ---------------------------------------------------------------------------
def export_float(job: Job) -> None:
    """Every float format for every part (before QAT: QAT fine-tunes an encoder+head's head in place)."""
    parts = job.float_parts = job.parts.export_parts()
    for fmt_name in [f for f in job.fmts if f in FLOAT_FORMATS]:
        fmt = FORMATS[fmt_name]
        why = F.tool_available(fmt_name)
        if why:
            job.skip(fmt.bundle_format, "all", why)
            continue
        for part, model in parts.items():
            if not job.parts.exports_part(part, fmt_name):
                continue
            path = os.path.join(job.out_dir, F.artifact_file(part, fmt))
            try:
                fmt.export(model, path, opset=job.cfg.opset)
            except Exception as e:
                job.skip(fmt.bundle_format, part, f"{fmt_name} export failed: {_short(e)}")
                job.log(f"      {part} {fmt_name}: FAILED {_short(e)}")
                continue
            a = job.add(fmt_name, part, path, job.sparsity_of(part))
            job.log(f"      {a.file}: {a.size_bytes} bytes")


def verify_onnx(job: Job) -> None:
    """Every ONNX artifact against its Keras part on a few test clips (onnxruntime, no TF graph)."""
    from .onnx_export import verify
    clips = job.data["x_test"][:job.cfg.verify_clips]
    for a, path in job.produced:
        if a.format != "onnx":
            continue
        chk = verify(path, job.float_parts[a.part], job.parts.verify_inputs(a.part, clips))
        a.metrics.update(chk.to_dict())
        if not chk.ok():
            a.notes = (a.notes + f" ONNX differs from Keras: max abs diff {chk.max_abs_diff:.2e}").strip()
            job.log(f"      {a.file}: ONNX differs from Keras (max abs diff {chk.max_abs_diff:.2e})")


# -- 4. QAT + int8 ------------------------------------------------------------------------------
def qat(job: Job) -> None:
    """Quantization-aware training (sparsity-preserving after pruning); on failure, int8 falls back
    to post-training quantization (recorded under ``skipped``)."""
    from . import qat as Q
    cfg = job.cfg
    job.parts.remember_head("before")
    if cfg.qat:
        qcfg = Q.QATConfig(epochs=cfg.qat_epochs, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                           preserve_sparsity=cfg.prune)
        try:
            job.q_model = job.parts.qat(job.data["x_train"], job.data["y_train"], qcfg, cfg.progress)
            job.qat_rows = [{"layer": n, "sparsity": round(v, 4)} for n, v in Q.kernel_sparsity(job.q_model)]
            if cfg.prune:
                job.log("      sparsity after QAT: " + ", ".join(f"{r['layer']} {r['sparsity']:.3f}" for r in job.qat_rows))
        except Exception as e:
            job.log(f"      QAT failed ({_short(e)}); falling back to post-training int8")
            job.skip("tflite", job.parts.int8_parts[0], f"QAT failed, int8 is post-training: {_short(e)}")
            job.q_model = None
    job.parts.remember_head("QAT")


def _int8_candidate(job: Job, source: str, sel_x: np.ndarray, ref_cache: dict) -> dict:
    """Convert one int8 candidate into a temp dir; its top-1 agreement with the float model on sel_x."""
    from .bundle_writer import score_artifacts
    from .tflite_export import ExportError
    tmpdir = os.path.join(job.out_dir, f".int8-{source.lower()}")
    os.makedirs(tmpdir, exist_ok=True)
    paths = {}
    for part, model, rep in job.parts.int8_jobs(source, job.q_model, job.data["calib"], job.cfg.seed):
        path = os.path.join(tmpdir, F.artifact_file(part, FORMATS["tflite-int8"]))
        try:
            F.export_tflite_int8(model, path, representative=rep, io_dtype=job.cfg.io_dtype)
        except ExportError as e:
            job.log(f"      int8 from the {source} model: FAILED {e}")
            return {"error": str(e)}
        paths[part] = path
    ref = job.parts.selection_reference(sel_x, ref_cache)
    agree = score_artifacts(paths, sel_x, np.zeros(len(sel_x), np.int64), job.labels, ref)["top1_agreement"]
    job.log(f"      int8 from the {source} model: top-1 agreement {agree:.3f} with the float model "
            f"on {len(sel_x)} train/val clips")
    return {"paths": paths, "agreement": agree}


def int8(job: Job) -> None:
    """Full-integer int8 converted twice, from the QAT model and post-training from the (pruned)
    float model; the one that agrees best with the float model on *training and validation* clips
    wins (never the test split). A QAT model converts with the ranges its fake-quant nodes learned;
    with few QAT steps (or an LSTM that QAT leaves float) those can be worse than calibrating from
    data (measured on ucf101-mini lrcn: QAT int8 agreement 0.71 vs post-training 1.0), while for the
    lrcn-edge encoder QAT usually wins."""
    from .tflite_export import io_quantization
    calib, x_val = job.data["calib"], job.data["x_val"]
    sources = (["QAT"] if job.q_model is not None else []) + ["post-training"]
    sel_x = np.concatenate([calib, x_val]) if len(x_val) else calib
    ref_cache: dict = {}
    results = {s: _int8_candidate(job, s, sel_x, ref_cache) for s in sources}
    ok = [s for s in sources if "paths" in results[s]]
    if not ok:
        for part in job.parts.int8_parts:
            job.skip("tflite", part, "; ".join(f"{k}: {v['error']}" for k, v in results.items()))
    else:
        best = max(ok, key=lambda s: (results[s]["agreement"], s == "QAT"))
        job.parts.choose(best)
        others = ", ".join(f"{k} {v['agreement']:.3f}" for k, v in results.items() if "agreement" in v)
        job.int8_choice = {"source": best, "agreement_on_train_val": {k: v.get("agreement") for k, v in results.items()},
                           "n_clips": int(len(sel_x))}
        for part, tmp in results[best]["paths"].items():
            path = os.path.join(job.out_dir, F.artifact_file(part, FORMATS["tflite-int8"]))
            os.replace(tmp, path)
            a = job.add("tflite-int8", part, path, job.sparsity_of(part),
                        notes=f"full integer from the {best} model (chosen by top-1 agreement with the float "
                              f"model on {len(sel_x)} train/val clips: {others})")
            a.quantization = io_quantization(path)
            job.log(f"      {a.file}: {a.size_bytes} bytes (from the {best} model)")
    for s in sources:
        shutil.rmtree(os.path.join(job.out_dir, f".int8-{s.lower()}"), ignore_errors=True)


# -- 5. Edge TPU --------------------------------------------------------------------------------
def analyze_edgetpu(job: Job) -> None:
    """Op-by-op Edge TPU analysis of every .tflite; an int8 full/encoder keeps ``coral`` in its
    devices only when it maps."""
    from .edgetpu_analyzer import analyze
    for a, path in job.produced:
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
        job.log(f"      {a.file}: {rep.summary()}")


def _int8_tflite(job: Job, part: str) -> Optional[Tuple[Artifact, str]]:
    """The ok int8 TFLite of ``part`` produced so far (None: there is none)."""
    return next(((a, p) for a, p in job.produced if a.format == "tflite" and a.precision == "int8"
                 and a.part == part and a.status == "ok"), None)


def edgetpu_groups(job: Job) -> List[List[Tuple[Artifact, str]]]:
    """What edgetpu_compiler compiles in one run: the encoder together with the head when the
    analyzer predicts the head maps (co-compiled, encoder first: it gets the parameter cache
    first), else the encoder (or the full model) alone."""
    groups = []
    for part in ("full", "encoder"):
        main = _int8_tflite(job, part)
        if main is None:
            continue
        head = _int8_tflite(job, C.PAIRED[part]) if part in C.PAIRED else None
        if head is not None and (head[0].edgetpu or {}).get("mappable"):
            groups.append([main, head])
        else:
            groups.append([main])
    return groups


def _edgetpu_not_built(job: Job, group: List[Tuple[Artifact, str]], reason: str) -> None:
    """Skipped entries for a group the compiler did not compile, with the command to run elsewhere
    and the analyzer's verdict (predicted, not compiled)."""
    from .edgetpu_compiler import compile_command, edgetpu_name
    cmd = " ".join(compile_command([os.path.basename(p) for _, p in group], "."))
    for a, p in group:
        job.skip("edgetpu", a.part, f"{edgetpu_name(p)} not produced: {reason}; on an x86-64 host, in the bundle "
                                    f"directory: `{cmd}`" + (" (co-compiled)" if len(group) > 1 else ""),
                 command=cmd, predicted={"mappable": (a.edgetpu or {}).get("mappable"),
                                         "by": "edgetpu_analyzer (predicted, not compiled)"})
    job.log(f"      edgetpu_compiler: {reason}")
    job.log(f"      to compile elsewhere: {cmd}")


def compile_edgetpu(job: Job) -> None:
    """edgetpu_compiler on every int8 full/encoder, co-compiled with the head when the head maps
    (skipped with the reason and the command to run when the compiler is absent)."""
    from .edgetpu_compiler import compile_models
    for group in edgetpu_groups(job):
        results = compile_models([p for _, p in group], job.out_dir)
        if not all(r.produced for r in results):
            _edgetpu_not_built(job, group, next(r.reason for r in results if not r.produced))
            continue
        for (a, _), res in zip(group, results):
            e = job.add("edgetpu", a.part, res.output, a.sparsity)
            e.edgetpu = res.record()
            e.quantization = dict(a.quantization)
            e.notes = (f"compiled by edgetpu_compiler; log: {os.path.basename(res.log_path)}; "
                       f"not scored here (needs an Edge TPU): same int8 math as {a.name}, whose metrics apply")
            e.metrics = {}
            job.log(f"      {e.file}: {res.log.ops_on_tpu if res.log else '?'} of "
                    f"{res.log.ops_total if res.log else '?'} ops on the Edge TPU"
                    + (f" (co-compiled with {', '.join(res.co_compiled_with)})" if res.co_compiled_with else ""))


# -- 6. TensorRT --------------------------------------------------------------------------------
VARIANT_EXPORT = {"float16": "onnx-fp16", "int8": "onnx-int8"}   # tensorrt_variants precision -> row


def _float_onnx_parts(job: Job) -> List[Tuple[Artifact, str]]:
    return [(a, p) for a, p in job.produced if a.format == "onnx" and a.precision == "float32"
            and a.part in C.RUN_PARTS and a.status == "ok"]


def _record_variant(job: Job, base: Artifact, row: dict) -> None:
    name = VARIANT_EXPORT[row["precision"]]
    if name not in job.fmts:       # made with its twin, but not asked for
        if row["file"]:
            os.remove(row["file"])
        return
    if row["file"] and not row["ok"]:   # made but disagrees with its reference: a device must never run it
        os.remove(row["file"])
        job.skip("onnx", base.part, "failed verification: " + row["reason"], precision=row["precision"],
                 metrics=row["metrics"])
        job.log(f"      {base.part} {name}: dropped, failed verification: {row['reason']}")
        return
    if not row["file"]:
        job.skip("onnx", base.part, row["reason"], precision=row["precision"])
        job.log(f"      {base.part} {name}: not made: {row['reason']}")
        return
    v = job.add(name, base.part, row["file"], base.sparsity)
    v.metrics = dict(row["metrics"], verified=True)
    m = row["metrics"]
    job.log(f"      {v.file}: {v.size_bytes} bytes, " + (
        f"max abs diff {m['max_abs_diff']:.2e} vs {m['reference']}" if m else "") + (
        f"; verified as {m['criterion']}" if m.get("criterion") else "") + (
        f" (vs the float model {m['max_abs_diff_vs_float']:.2e}, int8 TFLite "
        f"{m['int8_tflite_max_abs_diff_vs_float']:.2e})" if "max_abs_diff_vs_float" in m else ""))


def onnx_variants(job: Job) -> None:
    """TensorRT's ONNX inputs per part with a float ONNX (``onnx_export.tensorrt_variants``): the FP16
    ONNX and the QDQ int8 ONNX (from the part's int8 TFLite), each verified; missing ones skipped."""
    from .onnx_export import tensorrt_variants
    why = next((F.tool_available(n) for n in VARIANT_EXPORT.values() if n in job.fmts), None)
    clips = job.data["x_test"][:job.cfg.verify_clips]
    for a, path in _float_onnx_parts(job):
        if why:
            for prec, name in VARIANT_EXPORT.items():
                if name in job.fmts:
                    job.skip("onnx", a.part, why, precision=prec)
            continue
        int8 = _int8_tflite(job, a.part)
        rows = tensorrt_variants(path, int8[1] if int8 else None, job.parts.verify_inputs(a.part, clips))
        for row in rows:
            _record_variant(job, a, row)


def _trtexec_notes(path: str, precision: str) -> Tuple[str, str]:
    """(engine file name, "family: command" lines) for building ``precision`` from ``path``'s part."""
    from edge.trt_build import base_onnx
    from .tensorrt import trtexec_commands
    base = base_onnx(path)
    engine = os.path.basename(base)[:-5] + f"_{precision}.engine"
    cmds = trtexec_commands(os.path.basename(base), engine, precision)
    return engine, "; ".join(f"TensorRT {fam}: `{cmd}`" for fam, cmd in cmds.items())


def tensorrt(job: Job) -> None:
    """Engines from every ONNX full/encoder through ``export_tensorrt`` when this host can build
    them (a Jetson); elsewhere the trtexec commands (one per TensorRT family) to run on the device
    go into the notes of the ONNX each one reads and into ``skipped``."""
    from .tensorrt import available
    why = available()
    variants = {(a.part, a.precision): a for a, _ in job.produced if a.format == "onnx"}
    for a, p in _float_onnx_parts(job):
        todo = [("fp16", variants.get((a.part, "float16"), a))]
        if (a.part, "int8") in variants:
            todo.append(("int8", variants[(a.part, "int8")]))
        for prec, src in todo:
            engine, cmds = _trtexec_notes(p, prec)
            src.notes = (src.notes + f"; TensorRT {prec} on the Jetson: {cmds}").strip("; ")
            if why:
                job.skip("tensorrt", a.part, f"{engine} not built here ({why.split(':')[0]}); engines are per "
                                             f"device: `edge-run` builds it from the ONNX on the Jetson, or {cmds}",
                         precision=prec)
                continue
            _build_engine(job, a, p, prec)


def _build_engine(job: Job, a: Artifact, path: str, precision: str) -> None:  # pragma: no cover - needs a GPU
    try:
        b = FORMATS["tensorrt"].export(path, job.out_dir, precision)
        t = job.add("tensorrt", a.part, b.path, a.sparsity)
        t.precision = {"fp16": "float16", "fp32": "float32"}.get(b.precision, b.precision)
        t.name = f"{a.part}-{t.precision}-tensorrt"
        t.notes = f"built on {b.device} with TensorRT {b.trt_version} from {os.path.basename(b.onnx)}; valid only there"
    except Exception as e:
        job.skip("tensorrt", a.part, _short(e), precision=precision)


# -- 7. score -----------------------------------------------------------------------------------
def scoring_units(produced: List[Tuple[Artifact, str]]) -> List[Dict[str, Tuple[Artifact, str]]]:
    """What is scored together: each full artifact alone, each encoder with the head edge-run pairs
    with it on this CPU (``edge.select.pair_head``: its own runtime's head, same precision first).
    Only what a CPU runs (the FP16 ONNX for TensorRT is a Jetson's: its check is in its metrics)."""
    from edge.bundle import Bundle
    from edge.preprocess import InputSpec
    from edge.sampling import TemporalSampling
    from edge.select import pair_head
    ok = [(a, p) for a, p in produced if a.status == "ok" and a.format in SCORED_HERE and C.runs_on(a.devices, "cpu")]
    path_of = {a.name: p for a, p in ok}
    bundle = Bundle(name="produced", model="produced", labels=["-"], input=InputSpec(),
                    sampling=TemporalSampling(), artifacts=[a for a, _ in ok])
    units = []
    for a, p in ok:
        if a.part == "full":
            units.append({"full": (a, p)})
        elif a.part == "encoder":
            backend = C.backend_on("cpu", a.format)
            head, _, _ = pair_head(bundle, a, C.head_backend_for(backend, C.DEVICE["cpu"].head_backend), "cpu")
            if head is not None:
                units.append({"encoder": (a, p), "head": (head, path_of[head.name])})
    return units


def score(job: Job) -> None:
    """Every unit on the test split through ``edge.evaluation`` (the device path), + top-1 agreement."""
    from .bundle_writer import score_artifacts
    d = job.data
    for unit in scoring_units(job.produced):
        a0 = next(iter(unit.values()))[0]
        what = f"{a0.format}/{a0.precision} {'+'.join(unit)}"
        try:
            m = score_artifacts({k: v[1] for k, v in unit.items()}, d["x_test"], d["y_test"], job.labels,
                                job.ref_scores, job.cfg.progress)
        except Exception as e:
            for a, _ in unit.values():
                a.status = "failed"
                a.notes = (a.notes + f" scoring failed: {_short(e)}").strip()
            job.log(f"      {what}: scoring FAILED {_short(e)}")
            continue
        for a, _ in unit.values():
            a.metrics.update(m)
            if len(unit) > 1:
                a.metrics["scored_as"] = "+".join(u.name for u, _ in unit.values())
        job.log(f"      {what}: macro-F1 {m['f1_macro']:.3f}, top-1 agreement {m['top1_agreement']:.3f}")


# -- the list -----------------------------------------------------------------------------------
class Step(NamedTuple):
    name: str
    applies: Callable[[Job], bool]
    title: Optional[Callable[[Job], str]]     # progress line ("[3/9] ..."); None: runs without one
    run: Callable[[Job], None]


def _has(fmt: str) -> Callable[[Job], bool]:
    return lambda job: fmt in job.fmts


def _has_any(*fmts: str) -> Callable[[Job], bool]:
    return lambda job: any(f in job.fmts for f in fmts)


def _always(job: Job) -> bool:
    return True


def _prune_title(j: Job) -> str:
    if not j.cfg.prune:
        return "pruning skipped (--no-prune)"
    return f"pruning to {j.cfg.sparsity:.0%} sparsity (PolynomialDecay, {j.cfg.prune_epochs} fine-tune epochs)"


def _qat_title(j: Job) -> str:
    if not j.cfg.qat:
        return "QAT skipped (--no-qat): post-training int8"
    return f"quantization-aware training ({j.cfg.qat_epochs} epochs{', sparsity-preserving' if j.cfg.prune else ''})"


STEPS = [
    Step("load", _always, lambda j: f"loading run {j.run.dir} ({j.run.model_name}) and its train/test split", load),
    Step("prune", _always, _prune_title, prune),
    Step("export", _always, lambda j: "exporting float formats", export_float),
    Step("verify", _has("onnx"), None, verify_onnx),
    Step("qat", _has("tflite-int8"), _qat_title, qat),
    Step("int8", _has("tflite-int8"), lambda j: f"full-integer int8 ({j.cfg.io_dtype} I/O, {len(j.data['calib'])} "
                                                f"calibration clips from the training split)", int8),
    Step("onnx-variants", _has_any(*VARIANT_EXPORT.values()), lambda j: "TensorRT ONNX variants: FP16 + QDQ int8 "
         "per part, each verified", onnx_variants),
    Step("analyze", _always, lambda j: "Edge TPU: analysing every .tflite"
         + (", compiling int8" if "edgetpu" in j.fmts else ""), analyze_edgetpu),
    Step("compile", _has("edgetpu"), None, compile_edgetpu),
    Step("tensorrt", _has("tensorrt"), None, tensorrt),
    Step("score", _always, lambda j: f"scoring every artifact on the test split ({len(j.data['x_test'])} clips, "
                                     f"edge backends)", score),
]
