"""Tiny training runs shared by test_train*.py, test_eval*.py and test_gradcam.py.

``tiny_run(base, model, cache)`` trains once per pytest session into ``base/<model>`` (2 epochs on
the session's synthetic cache: 4 classes, 8 frames of 32x32; lrcn-edge with the scratch encoder on
the built-in defaults) and returns the run directory; later calls reuse it. Runs go through the real CLI (``edge-train``'s ``main``).
"""
from __future__ import annotations

from pathlib import Path

FRAMES, SIZE = 8, 32


def train_args(model: str, data, out, epochs: int = 2, *extra) -> list:
    """lrcn-edge runs start from the built-in defaults (``--no-recipe``: edge-train's default recipe is the
    pretrained 224 px encoder) and ask for the small scratch encoder unless ``extra`` names one."""
    edge = []
    if model == "lrcn-edge":
        edge = ["--no-recipe"] + ([] if "--encoder" in extra else ["--encoder", "scratch"])
    return ["--model", model, "--data", str(data), "--out", str(out), "--epochs", str(epochs),
            "--frames", str(FRAMES), "--size", str(SIZE), "--batch-size", "4", "--seed", "0", "--quiet",
            *edge, *extra]


def tiny_run(base: Path, model: str, cache: Path) -> Path:
    from train.cli import main

    out = Path(base) / model
    if not (out / "metrics.json").is_file():
        rc = main(train_args(model, cache, out))
        assert rc == 0, f"edge-train {model} failed with {rc}"
    return out
