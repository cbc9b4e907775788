"""edge-quantize's steps one at a time, on hand-made jobs (no training): which formats a request
expands to, what is exported from the float parts, what is scored together, the Edge TPU and
TensorRT steps where their tools are absent, scoring through edge.evaluation."""
import os
import shutil
import sys

import numpy as np
import pytest

from edge import catalog as C
from edge.bundle import load as load_bundle

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="module")
def tiny():
    from _tiny_models import cached_bundle
    return load_bundle(cached_bundle())


def _job(tmp_path, fmts=("tflite-int8",), **cfg):
    from quantize.bundle_writer import QuantizeConfig
    from quantize.parts import WholeClip
    from quantize.steps import Job
    logs = []
    job = Job(run=None, cfg=QuantizeConfig(progress=False, **cfg), out_dir=str(tmp_path), fmts=list(fmts),
              log=logs.append)
    job.parts = WholeClip("lrcn", model=None)
    job.logs = logs
    return job


def test_requested_formats_expand_to_what_they_are_made_from():
    from quantize.bundle_writer import QuantizeConfig, _formats
    logs = []
    got = _formats(QuantizeConfig(formats=("edgetpu", "tensorrt")), logs.append)
    assert got == ["edgetpu", "tensorrt", "tflite-int8", "onnx-fp16", "onnx-int8", "onnx"]
    assert any("edgetpu is made from tflite-int8" in m for m in logs)
    assert any("onnx-int8 is made from tflite-int8" in m for m in logs) is False   # added once, by edgetpu
    assert _formats(QuantizeConfig(formats=("onnx-int8",)), logs.append) == ["onnx-int8", "onnx", "tflite-int8"]


def test_float_step_exports_every_catalog_float_row():
    from quantize.steps import FLOAT_FORMATS, SCORED_HERE
    floats = {e.name for e in C.EXPORTS if not e.needs and e.precision != "int8"}
    assert set(FLOAT_FORMATS) == floats and "tflite-int8" not in FLOAT_FORMATS
    assert set(SCORED_HERE) == {"tflite", "onnx"}


def test_step_list_headers_match_the_old_numbering(tmp_path):
    from quantize.steps import STEPS
    for fmts, headers in ((["tflite-int8", "onnx"], 7), (["tflite-fp32"], 5)):
        job = _job(tmp_path, fmts)
        todo = [s for s in STEPS if s.applies(job)]
        assert sum(1 for s in todo if s.title) == headers     # + "writing bundle.json" = 8 / 6
    names = [s.name for s in STEPS]
    assert names.index("export") < names.index("verify") < names.index("qat") < names.index("int8") \
        < names.index("analyze") < names.index("compile") < names.index("score")


def test_job_add_takes_name_devices_and_sparsity_from_the_export_row(tmp_path):
    job = _job(tmp_path)
    p = tmp_path / "encoder_int8.tflite"
    p.write_bytes(b"abc")
    a = job.add("tflite-int8", "encoder", str(p), 0.123456)
    assert (a.name, a.format, a.precision, a.part) == ("encoder-int8-tflite", "tflite", "int8", "encoder")
    assert a.devices == list(C.EXPORT["tflite-int8"].devices) and a.sparsity == 0.1235 and a.size_bytes == 3
    assert job.produced == [(a, str(p))]


def test_scoring_units_pair_encoder_and_head_of_one_format_and_skip_device_formats(tiny):
    from quantize.steps import scoring_units
    produced = [(a, tiny.path(a)) for a in tiny.artifacts]
    units = scoring_units(produced)
    kinds = sorted((next(iter(u.values()))[0].format, next(iter(u.values()))[0].precision, "+".join(u))
                   for u in units)
    assert ("tflite", "int8", "encoder+head") in kinds and ("onnx", "float32", "full") in kinds
    assert all(len(u) in (1, 2) for u in units)
    edgetpu = [a for a in tiny.artifacts if a.part == "encoder"][0]
    edgetpu = type(edgetpu)(**dict(edgetpu.to_dict(), name="x", format="edgetpu"))
    assert len(scoring_units(produced + [(edgetpu, "x")])) == len(units)      # not scored on the host


def test_score_step_scores_through_edge_evaluation(tiny, tmp_path):
    from quantize.steps import score
    job = _job(tmp_path)
    for a in tiny.artifacts:
        a.metrics = {}
    job.produced = [(a, tiny.path(a)) for a in tiny.artifacts]
    job.labels = list(tiny.labels)
    x = np.random.default_rng(0).random((4,) + tiny.input.clip_shape, dtype=np.float32)
    job.data = {"x_test": x, "y_test": np.array([0, 1, 2, 0])}
    from edge.evaluation import classifier_for
    from edge.select import plan
    with classifier_for(tiny, plan(tiny, "cpu", precision="float32", prefer_streaming=False)) as clf:
        job.ref_scores = np.stack([clf.predict(c) for c in x])
    score(job)
    full = [a for a in tiny.artifacts if a.part == "full" and a.format == "tflite" and a.precision == "float32"][0]
    assert full.metrics["n_test"] == 4 and full.metrics["top1_agreement"] == 1.0
    enc = [a for a in tiny.artifacts if a.part == "encoder" and a.precision == "int8"][0]
    assert enc.metrics["scored_as"].startswith("encoder-int8") and "ms_per_clip_host" in enc.metrics


def test_edgetpu_and_tensorrt_steps_record_why_nothing_was_built(tiny, tmp_path):
    from quantize import edgetpu_compiler, tensorrt
    from quantize.steps import analyze_edgetpu, compile_edgetpu
    from quantize.steps import tensorrt as trt_step
    if edgetpu_compiler.unavailable_reason() is None or tensorrt.available() is None:
        pytest.skip("edgetpu_compiler / tensorrt present here: the skip path is not what runs")
    job = _job(tmp_path, ["edgetpu", "tensorrt"])
    for name in ("encoder_int8.tflite", "encoder.onnx"):
        shutil.copy(os.path.join(tiny.root, name), tmp_path / name)
    job.add("tflite-int8", "encoder", str(tmp_path / "encoder_int8.tflite"))
    job.add("onnx", "encoder", str(tmp_path / "encoder.onnx"))
    analyze_edgetpu(job)
    enc = job.produced[0][0]
    assert enc.edgetpu is not None and enc.devices == (["cpu", "coral"] if enc.edgetpu["mappable"] else ["cpu"])
    compile_edgetpu(job)
    trt_step(job)
    by_fmt = {s["format"]: s for s in job.skipped}
    assert "edgetpu_compiler" in by_fmt["edgetpu"]["reason"] and by_fmt["edgetpu"]["part"] == "encoder"
    assert "trtexec" in by_fmt["tensorrt"]["reason"] and "trtexec --onnx=encoder.onnx" in job.produced[1][0].notes
    assert len(job.produced) == 2                      # nothing pretended


def test_parts_decide_sparsity_and_sizes_without_model_names():
    from quantize.parts import PAIRING_CLASSES, EncoderHead, WholeClip
    from train.models import DEPLOY
    assert set(PAIRING_CLASSES) == set(C.PAIRINGS) >= set(DEPLOY.values())
    rows = [{"layer": "encoder/conv", "size": 10, "zeros": 5}, {"layer": "head/lstm", "size": 30, "zeros": 3}]
    eh = EncoderHead.__new__(EncoderHead)
    assert eh.part_sparsity(rows, "encoder", 0.2) == 0.5 and eh.part_sparsity(rows, "head", 0.2) == 0.1
    assert eh.part_sparsity(rows, "full", 0.2) == 0.2 and eh.part_sparsity([], "encoder", 0.2) is None
    wc = WholeClip("convlstm", None)
    assert wc.part_sparsity(rows, "full", 0.2) == 0.2 and wc.streaming() is None
    assert not eh.counts_in_fp32_size("full") and wc.counts_in_fp32_size("full")
    assert eh.exports_part("full", "onnx") and not eh.exports_part("full", "tflite-fp16")


def test_registry_says_how_each_model_deploys():
    from train.models import ALL_MODELS, deploy_pairing
    assert {m: deploy_pairing(m) for m in ALL_MODELS}["lrcn-edge"] == "encoder+head"
    assert all(deploy_pairing(m) in C.PAIRINGS for m in ALL_MODELS)
    with pytest.raises(ValueError):
        deploy_pairing("resnet")


# -- TensorRT's ONNX variants and the trtexec notes ----------------------------------------------
def _eh_job(tmp_path, fmts):
    from quantize.parts import EncoderHead
    job = _job(tmp_path, fmts)
    job.parts = EncoderHead.__new__(EncoderHead)     # verify inputs per part; no Keras model needed
    return job


def _copy_add(job, tiny, tmp_path, fmt, part, name):
    shutil.copy(os.path.join(tiny.root, name), str(tmp_path / name))
    return job.add(fmt, part, str(tmp_path / name))


def test_onnx_variants_and_tensorrt_steps_record_what_the_jetson_builds_from(tiny, tmp_path):
    from quantize import tensorrt
    from quantize.steps import onnx_variants
    from quantize.steps import tensorrt as trt_step
    job = _eh_job(tmp_path, ["onnx", "tflite-int8", "onnx-fp16", "onnx-int8", "tensorrt"])
    _copy_add(job, tiny, tmp_path, "onnx", "encoder", "encoder.onnx")
    _copy_add(job, tiny, tmp_path, "tflite-int8", "encoder", "encoder_int8.tflite")
    _copy_add(job, tiny, tmp_path, "onnx", "head", "head.onnx")
    _copy_add(job, tiny, tmp_path, "onnx", "full", "full.onnx")       # no int8 full here: no QDQ full
    job.data = {"x_test": np.random.default_rng(1).random((2,) + tiny.input.clip_shape, dtype=np.float32)}
    onnx_variants(job)
    by = {(a.part, a.precision): a for a, _ in job.produced if a.format == "onnx"}
    fp16, int8 = by[("encoder", "float16")], by[("encoder", "int8")]
    assert (fp16.file, fp16.devices, fp16.name) == ("encoder_fp16.onnx", ["jetson"], "encoder-float16-onnx")
    assert (int8.file, int8.devices) == ("encoder_int8.onnx", ["cpu", "jetson"])
    assert fp16.metrics["reference"] == "encoder.onnx" and fp16.metrics["verified"] is True
    assert int8.metrics["reference"] == "encoder_int8.tflite" and int8.metrics["n_verify"] == 4
    assert int8.metrics["verified"] is True and int8.metrics["max_abs_diff"] <= int8.metrics["tolerance"]
    assert int8.metrics["criterion"] == "replica" and int8.metrics["float_reference"] == "encoder.onnx"
    assert int8.metrics["int8_tflite_max_abs_diff_vs_float"] > 0     # distances from the float ONNX recorded
    assert ("full", "float16") in by and ("full", "int8") not in by and ("head", "float16") not in by
    miss = [s for s in job.skipped if s["format"] == "onnx"]
    assert [(s["part"], s["precision"]) for s in miss] == [("full", "int8")] and "no int8 TFLite" in miss[0]["reason"]
    from edge.trt_build import is_qdq_onnx, variant_path
    paths = {a.name: p for a, p in job.produced}
    assert variant_path(paths["encoder-float32-onnx"], "int8") == paths["encoder-int8-onnx"]   # found by name
    assert is_qdq_onnx(paths["encoder-int8-onnx"]) and not is_qdq_onnx(paths["encoder-float16-onnx"])
    if tensorrt.available() is None:
        pytest.skip("tensorrt present here: the engine is built, not described")
    trt_step(job)
    assert "TensorRT 11: `trtexec --onnx=encoder_fp16.onnx --saveEngine=encoder_fp16.engine" in fp16.notes
    assert "TensorRT 8.2: `trtexec --onnx=encoder.onnx --saveEngine=encoder_fp16.engine --workspace=1024 --fp16`" \
        in fp16.notes
    assert "--onnx=encoder_int8.onnx" in int8.notes and "--int8" in int8.notes
    trt = sorted((s["part"], s["precision"]) for s in job.skipped if s["format"] == "tensorrt")
    assert trt == [("encoder", "fp16"), ("encoder", "int8"), ("full", "fp16")]
    assert len([a for a, _ in job.produced if a.format == "tensorrt"]) == 0    # nothing pretended


def test_scoring_the_qdq_onnx_keeps_its_verification_metrics(tiny, tmp_path):
    """The score step adds the classification ``top1_agreement`` (vs Keras, on the test split) to the
    QDQ artifact; the verification's agreement with its int8 TFLite has its own key and survives."""
    from quantize.steps import onnx_variants, score
    job = _eh_job(tmp_path, ["onnx", "tflite-int8", "onnx-int8"])
    _copy_add(job, tiny, tmp_path, "onnx", "encoder", "encoder.onnx")
    _copy_add(job, tiny, tmp_path, "tflite-int8", "encoder", "encoder_int8.tflite")
    _copy_add(job, tiny, tmp_path, "onnx", "head", "head.onnx")
    x = np.random.default_rng(1).random((2,) + tiny.input.clip_shape, dtype=np.float32)
    job.data, job.labels = {"x_test": x, "y_test": np.array([0, 1])}, list(tiny.labels)
    onnx_variants(job)
    (int8,) = [a for a, _ in job.produced if a.format == "onnx" and a.precision == "int8"]
    verified = dict(int8.metrics)
    job.ref_scores = np.zeros((2, len(tiny.labels)), np.float32)
    score(job)
    assert int8.metrics["n_test"] == 2 and "top1_agreement" in int8.metrics, int8.metrics     # scored
    assert all(int8.metrics[k] == v for k, v in verified.items()), (verified, int8.metrics)


def test_onnx_variant_that_fails_verification_is_dropped_not_recorded(tmp_path):
    """A QDQ/FP16 ONNX that disagrees with its reference is never offered to a device: the file goes,
    a skipped entry says why (with the numbers)."""
    from quantize.steps import _record_variant
    job = _eh_job(tmp_path, ["onnx", "tflite-int8", "onnx-int8"])
    (tmp_path / "encoder.onnx").write_bytes(b"onnx")
    base = job.add("onnx", "encoder", str(tmp_path / "encoder.onnx"))
    bad = tmp_path / "encoder_int8.onnx"
    bad.write_bytes(b"qdq")
    metrics = {"reference": "encoder_int8.tflite", "max_abs_diff": 1.9, "tolerance": 0.11,
               "top1_agreement_vs_reference": 0.25, "criterion": "none"}
    _record_variant(job, base, {"precision": "int8", "file": str(bad), "metrics": metrics, "ok": False,
                                "reason": "QDQ ONNX differs from the int8 TFLite"})
    assert not bad.exists()
    assert not [a for a, _ in job.produced if a.precision == "int8"]
    (s,) = [s for s in job.skipped if s["format"] == "onnx"]
    assert s["precision"] == "int8" and s["reason"].startswith("failed verification") and s["metrics"] == metrics


def test_onnx_variant_not_asked_for_is_not_kept(tiny, tmp_path):
    from quantize.steps import onnx_variants
    job = _eh_job(tmp_path, ["onnx", "onnx-int8", "tflite-int8"])
    _copy_add(job, tiny, tmp_path, "onnx", "encoder", "encoder.onnx")
    _copy_add(job, tiny, tmp_path, "tflite-int8", "encoder", "encoder_int8.tflite")
    job.data = {"x_test": np.random.default_rng(1).random((1,) + tiny.input.clip_shape, dtype=np.float32)}
    onnx_variants(job)
    assert [a.file for a, _ in job.produced if a.format == "onnx"] == ["encoder.onnx", "encoder_int8.onnx"]
    assert not (tmp_path / "encoder_fp16.onnx").exists()


# -- Edge TPU: co-compile encoder + head through the steps (stand-in compiler) --------------------
from test_edgetpu_compiler import fake_compiler  # noqa: E402,F401  (the stand-in edgetpu_compiler fixture)


def _int8_pair(job, tmp_path, head_maps):
    for part in ("encoder", "head"):
        p = tmp_path / f"{part}_int8.tflite"
        p.write_bytes(b"int8 model bytes")
        a = job.add("tflite-int8", part, str(p))
        a.edgetpu = {"mappable": True if part == "encoder" else head_maps, "source": "edgetpu_analyzer"}
    return [str(tmp_path / "encoder_int8.tflite"), str(tmp_path / "head_int8.tflite")]


def _bundle_of(job, tmp_path):
    from edge.bundle import Bundle
    from edge.preprocess import InputSpec
    from edge.sampling import TemporalSampling
    return Bundle(name="t", model="lrcn-edge", labels=["a", "b"], input=InputSpec(), sampling=TemporalSampling(),
                  artifacts=[a for a, _ in job.produced], streaming={"feature_dim": 4}, root=str(tmp_path))


def test_compile_step_co_compiles_encoder_and_head_when_the_head_maps(fake_compiler, tmp_path):
    from edge.select import plan
    from quantize.steps import compile_edgetpu
    argv = fake_compiler({"encoder_int8": "full_mnist7_v15.log", "head_int8": "full_tinyyolo_v2.0.log"})
    job = _eh_job(tmp_path, ["edgetpu"])
    enc, head = _int8_pair(job, tmp_path, head_maps=True)
    compile_edgetpu(job)
    assert argv()[-2:] == [enc, head]                       # one run, the encoder cached first
    tpu = {a.part: a for a, _ in job.produced if a.format == "edgetpu"}
    assert sorted(tpu) == ["encoder", "head"] and not job.skipped
    for part, a in tpu.items():
        assert (a.file, a.precision, a.devices) == (f"{part}_int8_edgetpu.tflite", "int8", ["coral"])
    assert tpu["encoder"].edgetpu["co_compiled_with"] == ["head_int8_edgetpu.tflite"]
    assert tpu["head"].edgetpu["co_compiled_with"] == ["encoder_int8_edgetpu.tflite"]
    assert (tpu["encoder"].edgetpu["cache_priority"], tpu["head"].edgetpu["cache_priority"]) == (0, 1)
    assert tpu["encoder"].edgetpu["ops_total"] == 8 and tpu["head"].edgetpu["ops_total"] == 25
    assert tpu["head"].edgetpu["mappable"] and tpu["head"].edgetpu["command"].startswith("edgetpu_compiler -s -o ")
    p = plan(_bundle_of(job, tmp_path), "coral")            # the device runs the pair on the Edge TPU
    assert (p.main.file, p.head.file, p.backend, p.head_backend) == (
        "encoder_int8_edgetpu.tflite", "head_int8_edgetpu.tflite", "edgetpu", "edgetpu")


def test_compile_step_compiles_the_encoder_alone_when_the_head_does_not_map(fake_compiler, tmp_path):
    from edge.select import plan
    from quantize.steps import compile_edgetpu
    argv = fake_compiler({"encoder_int8": "full_mnist7_v15.log"})
    job = _eh_job(tmp_path, ["edgetpu"])
    enc, _ = _int8_pair(job, tmp_path, head_maps=False)
    compile_edgetpu(job)
    assert argv()[-1] == enc and not any(a.endswith("head_int8.tflite") for a in argv())
    tpu = [a for a, _ in job.produced if a.format == "edgetpu"]
    assert [a.part for a in tpu] == ["encoder"] and "co_compiled_with" not in tpu[0].edgetpu
    p = plan(_bundle_of(job, tmp_path), "coral")
    assert (p.head.file, p.head_backend) == ("head_int8.tflite", "tflite")


def test_compile_step_without_the_compiler_says_what_to_run_and_what_is_predicted(tmp_path, monkeypatch):
    from quantize.edgetpu_compiler import unavailable_reason
    from quantize.steps import compile_edgetpu
    monkeypatch.setenv("PATH", str(tmp_path))              # no edgetpu_compiler anywhere
    job = _eh_job(tmp_path, ["edgetpu"])
    _int8_pair(job, tmp_path, head_maps=True)
    compile_edgetpu(job)
    assert [a.format for a, _ in job.produced] == ["tflite", "tflite"]      # nothing pretended
    sk = {s["part"]: s for s in job.skipped}
    assert sorted(sk) == ["encoder", "head"] and all(s["format"] == "edgetpu" for s in sk.values())
    cmd = "edgetpu_compiler -s -o . encoder_int8.tflite head_int8.tflite"
    for s in sk.values():
        assert s["command"] == cmd and f"`{cmd}`" in s["reason"] and unavailable_reason()[:30] in s["reason"]
        assert s["predicted"]["mappable"] is True and "predicted" in s["predicted"]["by"]
