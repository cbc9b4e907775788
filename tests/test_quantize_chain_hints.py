"""edge-quantize asks the model registry whether pruning/QAT pay for a run (one place decides)."""
from types import SimpleNamespace

from quantize.cli import chain_choice


def _run(model, model_cfg):
    return SimpleNamespace(model_name=model, config={"model_cfg": model_cfg})


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
