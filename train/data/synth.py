"""A synthetic action dataset whose classes differ **only by motion**.

Every class shows the same kind of thing: a randomly textured object on a randomly textured
background, with lighting changes and sensor noise. What differs is how the object moves:

============== ============================================================
MoveLeft       translates right-to-left        MoveRight      left-to-right
RotateCW       spins clockwise                 RotateCCW      counter-clockwise
Grow           scales up                       Shrink         scales down
BounceUpDown   oscillates vertically           SwayLeftRight  oscillates horizontally
============== ============================================================

Why a single frame says nothing: the trajectories are centred on the middle of the clip (position,
angle and log-scale are ``centre + direction * speed * (t - T/2)``), so over a random frame the
position/angle/size distributions of two opposite classes are identical; appearance is drawn
independently of the class. A model has to compare frames, which is what the temporal models are
for (and what the tests check with a single-frame vs a motion-feature baseline).

Groups imitate UCF101's: the clips of one group (``gNN``) share a scene (background and object
texture) but not the motion parameters, so a split that ignores groups leaks scene memory.

Horizontal flip turns MoveLeft into MoveRight and RotateCW into RotateCCW: this dataset is **not
flip safe**. ``dataset.json`` says ``"flip_safe": false``; ``prepare`` copies that into the
manifest and ``AugmentConfig.for_manifest`` turns flip off.

Files are real videos (MJPG in AVI, OpenCV's built-in writer) in UCF50 layout
``<Class>/v_<Class>_gNN_cNN.avi``. Output is deterministic for a seed (same bytes): every clip
draws from its own ``numpy`` generator seeded by (seed, class, group/clip).
"""
from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np

# Ordered easiest first: `--classes K` takes the first K. The rotation pair comes last because a
# per-frame encoder + LSTM did not learn the rotation direction within the demo budget (measured:
# RotateCW vs RotateCCW at chance for every LRCN variant tried, while optical-flow curl separates them
# perfectly), so the default 4-class demo is translation and scale only.
SYNTH_CLASSES: Tuple[str, ...] = ("MoveLeft", "MoveRight", "Grow", "Shrink", "BounceUpDown",
                                  "SwayLeftRight", "RotateCW", "RotateCCW")
FLIP_SAFE = False
GENERATOR_VERSION = 2
FPS = 25.0
DATASET_FILE = "dataset.json"


@dataclass(frozen=True)
class SynthSpec:
    classes: int = 4
    clips_per_class: int = 12
    seed: int = 0
    frames: int = 40
    size: int = 64
    groups: int = 4

    def __post_init__(self):
        if not 1 <= self.classes <= len(SYNTH_CLASSES):
            raise ValueError(f"classes must be 1..{len(SYNTH_CLASSES)}, got {self.classes}")
        if self.clips_per_class < 1:
            raise ValueError(f"clips_per_class must be >= 1, got {self.clips_per_class}")
        if self.frames < 2:
            raise ValueError(f"frames must be >= 2, got {self.frames}")
        if self.size < 16:
            raise ValueError(f"size must be >= 16 pixels, got {self.size}")
        if not 1 <= self.groups <= 99:
            raise ValueError(f"groups must be 1..99, got {self.groups}")

    @property
    def class_names(self) -> List[str]:
        return list(SYNTH_CLASSES[: self.classes])

    def file_names(self) -> List[Tuple[int, int, int, str]]:
        """(class index, group 1.., clip-in-group 1.., relative path) for every clip; clips are
        dealt round-robin to groups so groups are balanced."""
        out = []
        for ci, name in enumerate(self.class_names):
            for k in range(self.clips_per_class):
                g, c = k % self.groups + 1, k // self.groups + 1
                out.append((ci, g, c, f"{name}/v_{name}_g{g:02d}_c{c:02d}.avi"))
        return out


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int = 3) -> np.ndarray:
    import cv2

    low = rng.random((cells, cells, channels)).astype(np.float32)
    return cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _scene(rng: np.random.Generator, s: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background (s, s, 3), object texture (p, p, 3) and its soft mask (p, p), floats in [0, 1]."""
    bg = 0.6 * _smooth_noise(rng, s, int(rng.integers(3, 8))) + 0.4 * _smooth_noise(rng, s, int(rng.integers(8, 16)))
    bg = 0.15 + 0.7 * bg * rng.uniform(0.6, 1.0, size=3).astype(np.float32)
    p = s  # sprite drawn at frame resolution, scaled down by the transform
    tex = _smooth_noise(rng, p, int(rng.integers(3, 6)))
    # High-contrast, asymmetric pattern so rotation and scale are visible: random stripes + a spot.
    yy, xx = np.mgrid[0:p, 0:p].astype(np.float32) / p - 0.5
    ang = rng.uniform(0, math.pi)
    stripes = 0.5 + 0.5 * np.sign(np.sin((xx * math.cos(ang) + yy * math.sin(ang)) * rng.uniform(8, 16)))
    tex = 0.55 * tex + 0.45 * stripes[..., None] * rng.uniform(0.3, 1.0, size=3)
    sx, sy = rng.uniform(-0.3, 0.3, size=2)
    spot = ((xx - sx) ** 2 + (yy - sy) ** 2) < 0.012
    tex[spot] = rng.uniform(0, 1, size=3)
    # Shape: an ellipse or a rectangle-ish superellipse, never a circle (rotation must show).
    ax, ay = 0.48, rng.uniform(0.25, 0.38)
    e = float(rng.choice([2.0, 4.0]))
    mask = ((np.abs(xx / ax) ** e + np.abs(yy / ay) ** e) <= 1.0).astype(np.float32)
    import cv2

    mask = cv2.GaussianBlur(mask, (3, 3), 0)
    return bg.astype(np.float32), tex.astype(np.float32), mask


def _trajectory(name: str, rng: np.random.Generator, t: int, s: int):
    """Per-frame (x, y, angle_deg, scale) arrays for a class; scale = object width / frame width."""
    u = (np.arange(t, dtype=np.float64) - (t - 1) / 2.0) / max(t - 1, 1)  # in [-0.5, 0.5]
    cx, cy = rng.uniform(0.35, 0.65, size=2) * s
    ang0 = rng.uniform(0, 360)
    sc0 = rng.uniform(0.32, 0.45)
    x, y = np.full(t, cx), np.full(t, cy)
    ang, sc = np.full(t, ang0), np.full(t, sc0)
    if name in ("MoveLeft", "MoveRight"):
        d = 1.0 if name == "MoveRight" else -1.0
        x = cx + d * rng.uniform(0.35, 0.6) * s * u
    elif name in ("RotateCW", "RotateCCW"):
        d = 1.0 if name == "RotateCCW" else -1.0   # OpenCV: positive angle = counter-clockwise on screen
        ang = ang0 + d * rng.uniform(180.0, 330.0) * u
    elif name in ("Grow", "Shrink"):
        d = 1.0 if name == "Grow" else -1.0
        sc = sc0 * np.exp(d * rng.uniform(0.8, 1.3) * u)
    elif name in ("BounceUpDown", "SwayLeftRight"):
        amp = rng.uniform(0.12, 0.2) * s
        cyc = rng.uniform(1.5, 2.5)
        ph = rng.uniform(0, 2 * math.pi)
        off = amp * np.sin(2 * math.pi * cyc * (u + 0.5) + ph)
        if name == "BounceUpDown":
            y = cy + off
        else:
            x = cx + off
    else:  # pragma: no cover
        raise ValueError(name)
    return x, y, ang, sc


def render_clip(name: str, scene_rng: np.random.Generator, motion_rng: np.random.Generator,
                frames: int = 40, size: int = 64) -> np.ndarray:
    """Render one clip of class ``name`` -> uint8 RGB (frames, size, size, 3)."""
    import cv2

    s = size
    bg, tex, mask = _scene(scene_rng, s)
    x, y, ang, sc = _trajectory(name, motion_rng, frames, s)
    gain = motion_rng.uniform(0.75, 1.25) * (1 + motion_rng.uniform(0, 0.08)
                                            * np.sin(2 * math.pi * motion_rng.uniform(0.5, 2) * np.arange(frames) / frames
                                                     + motion_rng.uniform(0, 2 * math.pi)))
    noise_std = motion_rng.uniform(0.01, 0.035)
    p = tex.shape[0]
    out = np.empty((frames, s, s, 3), dtype=np.uint8)
    for i in range(frames):
        m = cv2.getRotationMatrix2D(((p - 1) / 2.0, (p - 1) / 2.0), float(ang[i]), float(sc[i]) * s / p)
        m[0, 2] += x[i] - (p - 1) / 2.0
        m[1, 2] += y[i] - (p - 1) / 2.0
        obj = cv2.warpAffine(tex, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        a = cv2.warpAffine(mask, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
        f = (bg * (1 - a) + obj * a) * gain[i]
        f += motion_rng.normal(0, noise_std, size=f.shape).astype(np.float32)
        out[i] = np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def write_avi(path: Path, frames_rgb: np.ndarray, fps: float = FPS) -> None:
    """MJPG/AVI through OpenCV's built-in writer (no FFmpeg encoder needed, deterministic bytes)."""
    import cv2

    t, h, w, _ = frames_rgb.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.avi")
    vw = cv2.VideoWriter(str(tmp), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not vw.isOpened():
        raise RuntimeError(f"OpenCV cannot write MJPG/AVI to {tmp}")
    try:
        vw.set(cv2.VIDEOWRITER_PROP_QUALITY, 92)
        for f in frames_rgb:
            vw.write(np.ascontiguousarray(f[:, :, ::-1]))
    finally:
        vw.release()
    os.replace(tmp, path)


def synthesize(out_dir, *, classes: int = 4, clips_per_class: int = 12, seed: int = 0, frames: int = 40,
               size: int = 64, groups: int = 4, progress: bool = False, verify: bool = True) -> Path:
    """Write the dataset to ``out_dir`` (UCF50 layout + ``dataset.json``) and return ``out_dir``.

    Re-running with the same parameters on a complete folder returns at once. A folder holding a
    different synthetic set is replaced; a non-empty folder that is not a synthetic set is refused
    (ValueError) rather than overwritten. ``verify`` decodes one clip per class with
    ``edge.video.read_clip`` and checks its frame count.
    """
    spec = SynthSpec(classes, clips_per_class, seed, frames, size, groups)
    out = Path(out_dir)
    info = {"name": "synthetic-motion", "generator_version": GENERATOR_VERSION, "flip_safe": FLIP_SAFE,
            "fps": FPS, "class_names": spec.class_names, **asdict(spec)}
    files = spec.file_names()
    meta_path = out / DATASET_FILE
    if out.exists() and any(out.iterdir()):
        old = None
        if meta_path.exists():
            try:
                old = json.loads(meta_path.read_text(encoding="utf-8"))
            except ValueError:
                old = None
        if not isinstance(old, dict) or old.get("name") != "synthetic-motion":
            raise ValueError(f"{out}: folder is not empty and holds no synthetic dataset; "
                             "choose an empty or new folder")
        if old == info and all((out / rel).is_file() for *_, rel in files):
            return out
        for name in old.get("class_names", []):
            if name in SYNTH_CLASSES:
                shutil.rmtree(out / name, ignore_errors=True)
        meta_path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(files), desc="synthesizing", unit="clip")
    for ci, g, c, rel in files:
        name = spec.class_names[ci]
        scene_rng = np.random.default_rng([seed, ci, g, 0])
        motion_rng = np.random.default_rng([seed, ci, g, c, 1])
        write_avi(out / rel, render_clip(name, scene_rng, motion_rng, frames, size))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if verify:
        from edge.video import read_clip

        seen = set()
        for ci, _, _, rel in files:
            if ci in seen:
                continue
            seen.add(ci)
            clip = read_clip(str(out / rel), n_frames=frames, size=(size, size), as_uint8=True)
            if clip.info.frame_count != frames:
                raise RuntimeError(f"{out / rel}: wrote {frames} frames, decoder sees {clip.info.frame_count}")
    meta_path.write_text(json.dumps(info, indent=1), encoding="utf-8")
    return out
