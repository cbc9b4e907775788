"""Grad-CAM for clip models: where in each frame the evidence for a class lies.

For a class c and the last conv feature map A_t of frame t (h x w x channels), Grad-CAM weighs each
channel by the spatial mean of d score_c / d A_t and keeps the positive part of the weighted sum.
Which map is "last conv" depends on the model:

* ``lrcn``: the per-frame Conv2D (``td_conv`` inside TimeDistributed, or ``conv`` in the flat variant);
* ``lrcn-edge``: the last 3x3 conv block inside the **encoder** (post-ReLU), computed frame by frame
  with the head on top, so the map explains the whole clip's decision;
* ``convlstm``: the last ConvLSTM2D output at each time step;
* ``baseline``: its last Conv2D.

Maps are normalised over the whole clip (not per frame), so a frame that matters little stays dark.
Output: ``gradcam_grid.png`` (all T frames with overlays), ``gradcam.gif`` (animated) and
``gradcam.json`` (class, scores, per-frame weight).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np


@dataclass
class GradCamResult:
    class_index: int
    class_name: str
    predicted_index: int
    scores: np.ndarray          # (K,)
    cams: np.ndarray            # (T, h, w) in [0, 1]
    layer: str


def _last_conv_name(model, model_name: str) -> str:
    names = [l.name for l in model.layers]
    if model_name == "convlstm":
        conv = [l.name for l in model.layers if type(l).__name__ == "ConvLSTM2D"]
        return conv[-1]
    if model_name == "lrcn":
        return "td_conv" if "td_conv" in names else "conv"
    convs = [l.name for l in model.layers if type(l).__name__ == "Conv2D"]
    if not convs:
        raise ValueError(f"{model_name}: no Conv2D layer found for Grad-CAM")
    return convs[-1]


def _as_frames(a) -> np.ndarray:
    """(1, T, h, w, c) or (T, h, w, c) -> (T, h, w, c)."""
    a = np.asarray(a)
    return a[0] if a.ndim == 5 else a


def _cam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    a, g = _as_frames(a), _as_frames(g)
    weights = g.mean(axis=(1, 2), keepdims=True)              # (T, 1, 1, c)
    cam = np.maximum((weights * a).sum(axis=-1), 0.0)         # (T, h, w)
    top = cam.max()
    return cam / top if top > 0 else cam


def grad_cam(model, clip: np.ndarray, model_name: str, class_index: Optional[int] = None,
             labels: Optional[List[str]] = None) -> GradCamResult:
    """Grad-CAM maps of ``clip`` (T, H, W, 3) float32 for ``class_index`` (default: the prediction)."""
    import tensorflow as tf
    import tf_keras as keras

    x = tf.convert_to_tensor(clip[None].astype(np.float32))
    if model_name == "lrcn-edge":
        encoder, head = model.get_layer("encoder"), model.get_layer("head")
        relus = [l.name for l in encoder.layers if l.name.startswith("enc_relu")]
        layer = relus[-1] if relus else _last_conv_name(encoder, model_name)
        enc2 = keras.Model(encoder.input, [encoder.get_layer(layer).output, encoder.output])
        frames = tf.convert_to_tensor(clip.astype(np.float32))
        with tf.GradientTape() as tape:
            a, feats = enc2(frames, training=False)
            tape.watch(a)
            scores = head(feats[None], training=False)[0]
            ci = int(tf.argmax(scores)) if class_index is None else int(class_index)
            target = scores[ci]
        g = tape.gradient(target, a)
    else:
        layer = _last_conv_name(model, model_name)
        sub = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
        with tf.GradientTape() as tape:
            a, out = sub(x, training=False)
            scores = out[0]
            ci = int(tf.argmax(scores)) if class_index is None else int(class_index)
            target = scores[ci]
        g = tape.gradient(target, a)
    scores = scores.numpy()
    cams = _cam(a.numpy(), g.numpy())
    name = labels[ci] if labels else str(ci)
    return GradCamResult(ci, name, int(scores.argmax()), scores, cams, layer)


def overlay(frames_u8: np.ndarray, cams: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a jet-coloured heat map over each RGB uint8 frame (maps resized to the frames)."""
    import cv2

    out = []
    for f, c in zip(frames_u8, cams):
        h, w = f.shape[:2]
        heat = cv2.resize(c.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        colour = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)[:, :, ::-1]
        out.append(np.uint8(np.clip((1 - alpha) * f + alpha * colour, 0, 255)))
    return np.stack(out)


def save_outputs(res: GradCamResult, frames_u8: np.ndarray, out_dir: Path, title: str = "",
                 frame_ms: int = 200, video: str = "") -> dict:
    """PNG grid + animated GIF + JSON; returns the JSON content."""
    from PIL import Image, ImageDraw

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    over = overlay(frames_u8, res.cams)
    t, h, w, _ = over.shape
    cols = min(t, 5)
    rows = (t + cols - 1) // cols
    pad, top = 4, 22
    grid = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad) + pad + top), "white")
    draw = ImageDraw.Draw(grid)
    draw.text((pad, 4), title or f"Grad-CAM: {res.class_name} ({res.layer})", fill="black")
    for i, f in enumerate(over):
        r, c = divmod(i, cols)
        grid.paste(Image.fromarray(f), (pad + c * (w + pad), top + pad + r * (h + pad)))
        draw.text((pad + c * (w + pad) + 2, top + pad + r * (h + pad) + 2), str(i), fill="white")
    grid.save(out_dir / "gradcam_grid.png")
    imgs = [Image.fromarray(f) for f in over]
    imgs[0].save(out_dir / "gradcam.gif", save_all=True, append_images=imgs[1:], duration=int(frame_ms), loop=0)
    info = {"video": video, "class": res.class_name, "class_index": res.class_index,
            "predicted_index": res.predicted_index, "scores": [float(s) for s in res.scores], "layer": res.layer,
            "frame_weight": [float(c.mean()) for c in res.cams],
            "files": ["gradcam_grid.png", "gradcam.gif"]}
    (out_dir / "gradcam.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def explain(run_dir, video: str, out_dir, class_name: Optional[str] = None, display: int = 160) -> dict:
    """Grad-CAM of a run's model on one video; frames sampled exactly as in training."""
    from edge.video import read_clip
    from train.run import load_run

    run = load_run(run_dir)
    spec, sampling = run.input_spec(), run.sampling()
    ci = None
    if class_name is not None:
        if class_name not in run.labels:
            raise ValueError(f"class {class_name!r} is not one of the run's classes: {', '.join(run.labels)}")
        ci = run.labels.index(class_name)
    clip = read_clip(video, n_frames=spec.frames, size=spec.size, short_policy=sampling.short_policy)
    scale = max(1, display // max(spec.size))
    try:  # the same source frames at display resolution
        big = read_clip(video, n_frames=spec.frames, size=(spec.height * scale, spec.width * scale),
                        short_policy=sampling.short_policy, as_uint8=True, indices=clip.indices).frames
        if len(big) != len(clip.frames):
            raise ValueError("frame count differs")
    except Exception:  # fall back to upscaling the model's own frames
        import cv2

        big = np.stack([cv2.resize(np.uint8(np.round(f * 255)), (spec.width * scale, spec.height * scale),
                                   interpolation=cv2.INTER_LINEAR) for f in clip.frames])
    model = run.load_model()
    res = grad_cam(model, clip.frames, run.model_name, ci, run.labels)
    verdict = "predicted" if ci is None else f"chosen (predicted {run.labels[res.predicted_index]})"
    title = f"{run.model_name}: {res.class_name} {verdict}, p={res.scores[res.class_index]:.2f}"
    ms = int(1000 * sampling.frame_interval_s) if sampling.frame_interval_s else 200
    return save_outputs(res, big, Path(out_dir), title, max(ms, 60), video=str(video))
