"""On-the-fly augmentation of training clips (numpy + OpenCV, no TensorFlow).

One clip gets **one** draw of every random parameter: the same flip, colour change, rotation and
crop for all of its frames, because a transform that changed between frames would look like motion,
which is exactly what the models must learn from. Temporal transforms change *which* frames appear:

* frame-rate change: resample the clip's frames at ``speed`` in ``speed_range`` (1.25 = faster:
  frames skipped; 0.8 = slower: frames repeated), keeping T frames; clamped at the clip's end.
* frame dropping: each frame (after the first) is replaced by the previous output frame with
  probability ``drop_p``, as when a camera stutters.

Horizontal flip is only label-preserving when no class is defined by left/right direction. The
synthetic set has "MoveLeft"/"MoveRight" classes: its manifest carries ``flip_safe: false``, and
``AugmentConfig.for_manifest`` (which the trainer must call) turns flip off for it.

Applied to training clips only; validation and test clips are never augmented.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Switch + strength per transform. ``enabled=False`` turns everything off.

    YAML (e.g. the ``augment:`` section of a training config)::

        augment: {flip: false, noise_std: 0.02, speed: true, speed_range: [0.8, 1.25]}
    """

    enabled: bool = True
    flip: bool = True
    flip_p: float = 0.5
    brightness: bool = True
    brightness_delta: float = 0.15        # add U(-d, d)
    contrast: bool = True
    contrast_range: Tuple[float, float] = (0.8, 1.2)   # scale around the clip mean
    noise: bool = True
    noise_std: float = 0.02
    rotate: bool = True
    rotate_deg: float = 8.0               # U(-deg, deg)
    crop: bool = True
    crop_scale: Tuple[float, float] = (0.8, 1.0)       # side of the crop / side of the frame
    speed: bool = True
    speed_range: Tuple[float, float] = (0.8, 1.25)
    drop: bool = True
    drop_p: float = 0.1

    def __post_init__(self):
        for name in ("flip_p", "drop_p"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1], got {v}")
        for name in ("brightness_delta", "noise_std", "rotate_deg"):
            if getattr(self, name) < 0:
                raise ValueError(f"augment.{name} must be >= 0, got {getattr(self, name)}")
        for name, lo_min in (("contrast_range", 0.0), ("crop_scale", 0.0), ("speed_range", 0.0)):
            lo, hi = getattr(self, name)
            if not (lo_min < lo <= hi):
                raise ValueError(f"augment.{name} must be (low, high) with 0 < low <= high, got {(lo, hi)}")
        lo, hi = self.crop_scale
        if hi > 1.0:
            raise ValueError(f"augment.crop_scale high must be <= 1, got {hi}")

    @classmethod
    def off(cls) -> "AugmentConfig":
        """Identity: every transform disabled."""
        return cls(enabled=False, flip=False, brightness=False, contrast=False, noise=False,
                   rotate=False, crop=False, speed=False, drop=False)

    @classmethod
    def from_dict(cls, d: Optional[Mapping[str, Any]], where: str = "augment") -> "AugmentConfig":
        """Build from a YAML/JSON mapping; an unknown key or wrong type is an error naming it."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {type(d).__name__}")
        known = {f.name: f for f in fields(cls)}
        kw = {}
        for k, v in d.items():
            if k not in known:
                raise ValueError(f"{where}.{k}: unknown augmentation key (known: {', '.join(sorted(known))})")
            default = getattr(cls, k)
            if isinstance(default, bool):
                if not isinstance(v, bool):
                    raise ValueError(f"{where}.{k}: expected true/false, got {v!r}")
            elif isinstance(default, tuple):
                if not isinstance(v, (list, tuple)) or len(v) != 2 or not all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                    raise ValueError(f"{where}.{k}: expected [low, high], got {v!r}")
                v = (float(v[0]), float(v[1]))
            elif isinstance(default, float):
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise ValueError(f"{where}.{k}: expected a number, got {v!r}")
                v = float(v)
            kw[k] = v
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path, key: Optional[str] = "augment") -> "AugmentConfig":
        import yaml

        with open(path, "r", encoding="utf-8") as f:
            d = yaml.safe_load(f) or {}
        if key is not None and isinstance(d, Mapping) and key in d:
            d = d[key]
        return cls.from_dict(d, where=f"{path}:{key or ''}".rstrip(":"))

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def for_manifest(self, manifest) -> "AugmentConfig":
        """Flip off when the dataset says mirroring changes labels (``manifest.flip_safe`` false)."""
        if self.flip and not getattr(manifest, "flip_safe", True):
            return replace(self, flip=False)
        return self

    @property
    def active(self) -> bool:
        return self.enabled and any((self.flip, self.brightness, self.contrast, self.noise, self.rotate,
                                     self.crop, self.speed, self.drop))


def speed_indices(t: int, speed: float, offset: float = 0.0) -> np.ndarray:
    """T positions in a T-frame clip read at ``speed`` from ``offset``, clamped to the clip."""
    pos = offset + np.arange(t, dtype=np.float64) * speed
    return np.clip(np.round(pos), 0, t - 1).astype(np.int64)


def drop_indices(t: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Frame i shows frame i-1's content with probability p (chains: repeated drops hold a frame)."""
    idx = np.arange(t)
    drop = rng.random(t) < p
    drop[0] = False
    for i in range(1, t):
        if drop[i]:
            idx[i] = idx[i - 1]
    return idx


def _affine(h: int, w: int, angle: float, scale: float, cx: float, cy: float) -> np.ndarray:
    """2x3 matrix: rotate by ``angle`` degrees about the crop centre (cx, cy) and zoom the
    ``scale``-sized crop to the full frame."""
    import cv2

    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0 / scale)
    m[0, 2] += (w - 1) / 2.0 - cx
    m[1, 2] += (h - 1) / 2.0 - cy
    return m


def augment_clip(clip: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Augment one clip ``(T, H, W, 3)`` float32 in [0, 1]; returns a new array, same shape, float32,
    in [0, 1]. Deterministic for a given ``rng`` state. Identity (a copy) when nothing is enabled."""
    x = np.asarray(clip, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected a clip (T, H, W, 3), got shape {x.shape}")
    if not cfg.active:
        return x.copy()
    t, h, w, _ = x.shape
    # Temporal: which source frame each output frame shows.
    idx = np.arange(t)
    if cfg.speed:
        s = float(rng.uniform(*cfg.speed_range))
        span = (t - 1) * s
        offset = float(rng.uniform(0.0, (t - 1) - span)) if span < t - 1 else 0.0
        idx = speed_indices(t, s, offset)
    if cfg.drop and cfg.drop_p > 0:
        idx = idx[drop_indices(t, cfg.drop_p, rng)]
    x = x[idx] if not np.array_equal(idx, np.arange(t)) else x.copy()

    # Spatial: one draw for the whole clip.
    if cfg.flip and rng.random() < cfg.flip_p:
        x = x[:, :, ::-1, :]
    angle = float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)) if cfg.rotate else 0.0
    if cfg.crop:
        scale = float(rng.uniform(*cfg.crop_scale))
        free_x, free_y = (w - 1) * (1 - scale) / 2.0, (h - 1) * (1 - scale) / 2.0
        cx = (w - 1) / 2.0 + float(rng.uniform(-free_x, free_x))
        cy = (h - 1) / 2.0 + float(rng.uniform(-free_y, free_y))
    else:
        scale, cx, cy = 1.0, (w - 1) / 2.0, (h - 1) / 2.0
    if angle != 0.0 or scale != 1.0:
        import cv2

        m = _affine(h, w, angle, scale, cx, cy)
        x = np.stack([cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
                      for f in np.ascontiguousarray(x)])
    if cfg.contrast:
        c = float(rng.uniform(*cfg.contrast_range))
        mean = float(x.mean())
        x = (x - mean) * c + mean
    if cfg.brightness:
        x = x + float(rng.uniform(-cfg.brightness_delta, cfg.brightness_delta))
    if cfg.noise and cfg.noise_std > 0:
        x = x + rng.normal(0.0, cfg.noise_std, size=x.shape).astype(np.float32)
    return np.clip(x, 0.0, 1.0).astype(np.float32, copy=False)


def augment_batch(batch: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """``augment_clip`` over a batch (N, T, H, W, 3), an independent draw per clip."""
    return np.stack([augment_clip(c, cfg, rng) for c in batch]) if len(batch) else np.asarray(batch, np.float32)
