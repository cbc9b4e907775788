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
