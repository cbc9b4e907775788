"""`edge-run FILE` answers what `edge-eval` answers for that file (issue 9): on real UCF101 clips, the
summary's ``file_prediction`` (the training sampling over the whole clip) has the same top-1 as edge-eval
scoring the same bundle artifacts, clip by clip.

- default suite: the tiny seeded float32 bundle of tests/_tiny_models.py (3 UCF classes, not trained),
  2 clips per class: every class score equal to edge-eval's (1e-5), which a different sampling breaks;
  the scores must differ between clips, so equality is not trivial.
- slow: an lrcn-edge trained on ucf101-mini (15 epochs, 32 px, int8 post-training; trained in a child
  process and cached in $EDGE_TEST_CACHE): top-1 equal on EVERY clip, and edge-eval's confusion matrix
  is the one the runner's answers give. (An untrained model answers one class for every clip, so
  top-1 agreement would prove nothing with it.)

edge-eval runs in a child process: TensorFlow must not load into a process that has GStreamer."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ucf101-mini"
LABELS = ("Archery", "BasketballDunk", "HorseRace", "PlayingPiano", "PlayingViolin", "Surfing")
TRAIN = ["--model", "lrcn-edge", "--encoder", "scratch", "--no-recipe", "--frames", "20", "--size", "32", "--epochs", "15",
         "--batch-size", "8", "--seed", "0"]
QUANTIZE = ["--formats", "tflite-int8", "--no-prune", "--no-qat", "--no-progress"]
pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not DATA.is_dir(), reason="real clips not found at {0}".format(DATA))]

EDGE_EVAL_PER_CLIP = """
import json, sys
from train.data import load_manifest
from train.evaluate import load_eval_data, resolve
from edge.evaluation import classifier_for
from edge.select import plan_files
bundle, data, cache, artifact = sys.argv[1:5]
res = resolve(bundle, artifacts=[artifact])
x, y, info = load_eval_data(res, data, "all", cache=cache, progress=False, log=lambda s: None)
paths = [e.path for e in load_manifest(info["cache"]).ok_entries if e.label in res.labels]
t = res.targets[0]
with classifier_for(*plan_files(full=t.full, encoder=t.encoder, head=t.head)) as clf:
    scores = clf.predict_many(x)
assert len(paths) == len(scores)
key = lambda p: "/".join(p.replace(chr(92), "/").split("/")[-2:])   # Class/file.avi
print(json.dumps({"target": t.name, "labels": res.labels,
                  "scores": {key(p): [float(v) for v in s] for p, s in zip(paths, scores)}}))
"""


@pytest.fixture(scope="module")
def tiny_bundle():
    from _tiny_models import cached_bundle
    return cached_bundle()


@pytest.fixture(scope="module")
def trained_bundle():
    """lrcn-edge trained on ucf101-mini and quantized (int8 encoder + head), built once per cache."""
    root = os.environ.get("EDGE_TEST_CACHE", "/tmp/edge-test-cache")
    key = hashlib.sha256(json.dumps([TRAIN, QUANTIZE, str(DATA)]).encode()).hexdigest()[:16]
    d = os.path.join(root, "trained-ucf6-" + key)
    if os.path.exists(os.path.join(d, "bundle", "bundle.json")):
        return os.path.join(d, "bundle")
    tmp = d + ".tmp{0}".format(os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    for cmd in (["train.cli"] + TRAIN + ["--data", str(DATA), "--out", tmp + "/run", "--cache", tmp + "/cache"],
                ["quantize.cli", tmp + "/run", "--out", tmp + "/bundle"] + QUANTIZE):
        r = subprocess.run([sys.executable, "-m"] + cmd, cwd=str(ROOT), env=_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
        assert r.returncode == 0, r.stderr[-3000:]
    shutil.rmtree(tmp + "/cache", ignore_errors=True)
    try:
        os.replace(tmp, d)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(d, "bundle")


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _data_dir(tmp_path, per_class, labels=LABELS):
    """ucf101-mini, or a folder of links to the first ``per_class`` clips of each class in ``labels``."""
    if per_class is None:
        return DATA
    d = tmp_path / "data"
    for c in labels:
        (d / c).mkdir(parents=True)
        for f in sorted((DATA / c).glob("*.avi"))[:per_class]:
            os.symlink(str(f), str(d / c / f.name))
    return d


def _edge_eval(bundle, data, tmp_path, art):
    cache = str(tmp_path / "cache")
    per_clip = subprocess.run([sys.executable, "-c", EDGE_EVAL_PER_CLIP, bundle, str(data), cache, art],
                              cwd=str(ROOT), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
    assert per_clip.returncode == 0, per_clip.stderr[-2000:]
    out = tmp_path / "eval"
    cli = subprocess.run([sys.executable, "-m", "train.evaluate", bundle, "--data", str(data), "--split", "all",
                          "--artifact", art, "--cache", cache, "--out", str(out), "--quiet"],
                         cwd=str(ROOT), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert cli.returncode == 0, cli.stderr[-2000:]
    return json.loads(per_clip.stdout.strip().splitlines()[-1]), json.load(open(out / "metrics.json"))


def _edge_run(bundle, clip, tmp_path, *args):
    sm = tmp_path / "s.json"
    assert main(["--device", "cpu", "--model", bundle, str(clip), "--summary", str(sm), "--stride", "1000",
                 "-q"] + list(args)) == 0
    s = json.load(open(sm))
    assert s["stop_reason"] == "end of stream"
    return s, s["file_prediction"]


def _clips(data):
    return sorted(p.parent.name + "/" + p.name for p in Path(data).glob("*/*.avi"))


def test_file_prediction_scores_equal_edge_eval_on_a_few_clips(tiny_bundle, tmp_path):
    labels = json.load(open(os.path.join(tiny_bundle, "bundle.json")))["labels"]
    data = _data_dir(tmp_path, 2, labels)
    ev, metrics = _edge_eval(tiny_bundle, data, tmp_path, "encoder-float32-tflite")
    assert ev["target"] == "encoder-float32-tflite+head-float32-tflite"
    clips = _clips(data)
    assert sorted(ev["scores"]) == clips and ev["labels"] == labels
    seen = []
    for c in clips:
        s, fp = _edge_run(tiny_bundle, Path(data) / c, tmp_path, "--precision", "float32")
        assert s["model"]["artifact"] == "encoder_float32.tflite" and s["model"]["head"] == "head_float32.tflite"
        mine = {t["label"]: t["score"] for t in fp["top"]}
        assert set(mine) == set(labels)                              # 3 classes, top-3: every score
        assert mine == pytest.approx(dict(zip(labels, ev["scores"][c])), abs=1e-5), c
        assert fp["label"] == labels[max(range(len(labels)), key=lambda i: ev["scores"][c][i])]
        seen.append(tuple(round(mine[k], 4) for k in labels))
    assert len(set(seen)) > 1, "every clip scored the same: the comparison would prove nothing"


@pytest.mark.slow
def test_file_prediction_top1_equals_edge_eval_on_every_clip(trained_bundle, tmp_path):
    ev, metrics = _edge_eval(trained_bundle, DATA, tmp_path, "encoder-int8-tflite")
    assert ev["target"] == "encoder-int8-tflite+head-int8-tflite"   # the artifacts edge-run picks on x86-cpu
    labels = ev["labels"]
    clips = _clips(DATA)
    assert sorted(ev["scores"]) == clips and len(clips) == 108
    run = {}
    for c in clips:
        s, fp = _edge_run(trained_bundle, DATA / c, tmp_path)
        assert s["model"]["artifact"] == "encoder_int8.tflite" and fp["label"] in labels
        run[c] = fp["label"]
    wrong = {c: (run[c], labels[max(range(len(labels)), key=lambda i: ev["scores"][c][i])]) for c in clips}
    wrong = {c: v for c, v in wrong.items() if v[0] != v[1]}
    assert not wrong, wrong
    assert len(set(run.values())) > 1, "every clip got the same answer: agreement would prove nothing"
    cm = [[0] * len(labels) for _ in labels]
    for c in clips:
        cm[labels.index(c.split("/")[0])][labels.index(run[c])] += 1
    assert metrics["confusion_matrix"] == cm and metrics["n_test"] == len(clips)


def test_file_prediction_is_printed(tiny_bundle, tmp_path, capsys):
    clip = sorted((DATA / "Archery").glob("*.avi"))[0]
    sm = tmp_path / "s.json"
    assert main(["--device", "cpu", "--model", tiny_bundle, str(clip), "--summary", str(sm), "--stride", "50"]) == 0
    fp = json.load(open(sm))["file_prediction"]
    out = capsys.readouterr().out
    assert "file prediction: {0} {1:.3f}".format(fp["label"], fp["score"]) in out
