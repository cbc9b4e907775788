"""edge-quantize asks the model registry whether pruning/QAT pay for a run (one place decides)."""
from pathlib import Path

from quantize.cli import chain_choice
from train.run import Run


def _run(model, model_cfg):
    """A Run shaped as edge-train writes config.yaml: the resolved model settings under model.cfg (a
    train.model_cfg section holds only what the user asked for: reading that one missed the encoder)."""
    cfg = {"model": {"name": model, "cfg": {"encoder": "scratch", "train_mode": "frozen", **model_cfg}},
           "data": {}, "train": {"model_cfg": {}}}
    return Run(dir=Path("."), config=cfg, labels=["a", "b"], model_name=model)


def test_frozen_pretrained_encoder_defaults_to_post_training_int8(capsys):
    run = _run("lrcn-edge", {"encoder": "efficientnet-lite0", "train_mode": "frozen"})
    assert chain_choice(run, None, None) == (False, False)
    assert "frozen pretrained encoder" in capsys.readouterr().out


def test_trained_models_keep_pruning_and_qat():
    for run in (_run("lrcn-edge", {}), _run("lrcn", {}), _run("convlstm", {}),
                _run("lrcn-edge", {"encoder": "efficientnet-lite0", "train_mode": "full"})):
        assert chain_choice(run, None, None) == (True, True)


def test_explicit_flags_win_over_the_advice():
    run = _run("lrcn-edge", {"encoder": "efficientnet-lite0", "train_mode": "frozen"})
    assert chain_choice(run, True, None) == (True, False)
    assert chain_choice(_run("lrcn", {}), False, False) == (False, False)
