"""augment_clip: same transform for every frame of a clip, seeded, each switch really switches."""
import dataclasses

import numpy as np
import pytest

from train.data import AugmentConfig, augment_batch, augment_clip
from train.data.augment import drop_indices, speed_indices

T, H, W = 10, 24, 32


def _clip(seed=0):
    """Frame t: a smooth random image with a bright column at x = 2 + 2t (moves right), and a
    per-frame level so frame identity is readable."""
    rng = np.random.default_rng(seed)
    base = rng.random((H, W, 3)).astype(np.float32) * 0.5 + 0.25
    c = np.repeat(base[None], T, 0)
    for t in range(T):
        c[t, :, 2 + 2 * t] = 1.0
    return c


ALL_OFF = AugmentConfig.off()
SWITCHES = ("flip", "brightness", "contrast", "noise", "rotate", "crop", "speed", "drop")


def only(name, **kw):
    return dataclasses.replace(ALL_OFF, enabled=True, **{name: True}, **kw)


def test_shape_dtype_range_kept():
    clip = _clip()
    out = augment_clip(clip, AugmentConfig(), np.random.default_rng(0))
    assert out.shape == clip.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, clip)
    strong = AugmentConfig(brightness_delta=0.9, noise_std=0.5, contrast_range=(0.1, 3.0))
    out = augment_clip(clip, strong, np.random.default_rng(1))
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_all_off_is_identity_and_master_switch():
    clip = _clip()
    assert np.array_equal(augment_clip(clip, ALL_OFF, np.random.default_rng(0)), clip)
    off = dataclasses.replace(AugmentConfig(), enabled=False)
    assert not off.active
    assert np.array_equal(augment_clip(clip, off, np.random.default_rng(0)), clip)


@pytest.mark.parametrize("name", SWITCHES)
def test_each_switch_alone_changes_the_clip_and_off_removes_it(name):
    clip = _clip()
    extra = {"flip_p": 1.0} if name == "flip" else {"drop_p": 0.9} if name == "drop" else {}
    changed = [not np.array_equal(augment_clip(clip, only(name, **extra), np.random.default_rng(s)), clip)
               for s in range(5)]
    assert any(changed), f"{name} on never changed the clip"
    # the same config with this switch off is the identity again
    off = dataclasses.replace(only(name, **extra), **{name: False})
    for s in range(5):
        assert np.array_equal(augment_clip(clip, off, np.random.default_rng(s)), clip)


def test_seeded_determinism():
    clip = _clip()
    a = augment_clip(clip, AugmentConfig(), np.random.default_rng(42))
    b = augment_clip(clip, AugmentConfig(), np.random.default_rng(42))
    c = augment_clip(clip, AugmentConfig(), np.random.default_rng(43))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_flip_flips_every_frame():
    clip = _clip()
    out = augment_clip(clip, only("flip", flip_p=1.0), np.random.default_rng(0))
    assert np.array_equal(out, clip[:, :, ::-1])
    # the bright column now moves left in every frame
    cols = [int(np.argmax(f[:, :, 0].mean(0))) for f in out]
    assert cols == [W - 1 - (2 + 2 * t) for t in range(T)]


def test_spatial_transform_is_the_same_for_every_frame():
    # identical frames in -> identical frames out (noise off): one draw per clip, not per frame
    frame = _clip()[0]
    clip = np.repeat(frame[None], T, 0)
    cfg = dataclasses.replace(AugmentConfig(flip_p=0.5), noise=False, speed=False, drop=False)
    for s in range(4):
        out = augment_clip(clip, cfg, np.random.default_rng(s))
        assert not np.array_equal(out[0], frame)
        for t in range(1, T):
            assert np.array_equal(out[t], out[0])


def test_rotation_and_crop_keep_geometry_consistent_over_time():
    clip = np.full((T, H, W, 3), 0.2, np.float32)
    for t in range(T):
        clip[t, :, 6 + 2 * t: 10 + 2 * t] = 1.0     # a 4-pixel bar moving right
    cfg = dataclasses.replace(ALL_OFF, enabled=True, rotate=True, crop=True, rotate_deg=5.0)
    out = augment_clip(clip, cfg, np.random.default_rng(3))
    # the moving column still moves monotonically to the right after the shared warp
    # (frames whose column the crop cut away are left out)
    cols = [int(np.argmax(f[H // 2, :, 0])) for f in out if f[H // 2, :, 0].max() > 0.9]
    assert len(cols) >= 5 and all(b > a for a, b in zip(cols, cols[1:])), cols


def test_brightness_contrast_noise_are_photometric_only():
    clip = _clip()
    out = augment_clip(clip, only("brightness"), np.random.default_rng(0))
    d = out - clip
    inside = (clip > 0.05) & (clip < 0.95) & (out > 0.0) & (out < 1.0)
    assert np.allclose(d[inside], d[inside].flat[0], atol=1e-5)    # one offset for the whole clip
    noisy = augment_clip(clip, only("noise", noise_std=0.05), np.random.default_rng(0))
    assert 0.03 < float(np.std(noisy - clip)) < 0.07


def test_speed_change_resamples_frames_within_the_clip():
    assert list(speed_indices(10, 1.0)) == list(range(10))
    fast = speed_indices(10, 1.25)
    assert fast[0] == 0 and fast[-1] == 9 and len(set(fast.tolist())) < 10   # skips, then holds the end
    slow = speed_indices(10, 0.8)
    assert len(slow) == 10 and len(set(slow.tolist())) < 10                 # repeats frames
    assert all(b >= a for a, b in zip(slow, slow[1:]))
    clip = _clip()
    out = augment_clip(clip, only("speed", speed_range=(1.25, 1.25)), np.random.default_rng(0))
    for t, f in zip(fast, out):
        assert np.array_equal(f, clip[t])


def test_frame_dropping_repeats_the_previous_frame():
    idx = drop_indices(50, 0.3, np.random.default_rng(0))
    assert idx[0] == 0 and all(b in (a, i) for i, (a, b) in enumerate(zip(idx, idx[1:]), start=1))
    assert 5 < sum(idx != np.arange(50)) < 30
    clip = _clip()
    out = augment_clip(clip, only("drop", drop_p=0.5), np.random.default_rng(1))
    repeats = [t for t in range(1, T) if np.array_equal(out[t], out[t - 1])]
    assert repeats and all(np.array_equal(out[t], clip[t]) or t in repeats for t in range(T))


def test_batch_draws_per_clip():
    batch = np.repeat(_clip()[None], 4, 0)
    out = augment_batch(batch, AugmentConfig(), np.random.default_rng(0))
    assert out.shape == batch.shape
    assert not np.array_equal(out[0], out[1])


def test_config_from_dict_validates_and_for_manifest_turns_flip_off():
    cfg = AugmentConfig.from_dict({"flip": False, "noise_std": 0.03, "speed_range": [0.9, 1.1]})
    assert cfg.flip is False and cfg.noise_std == 0.03 and cfg.speed_range == (0.9, 1.1)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    for bad in ({"flipp": True}, {"flip": "yes"}, {"noise_std": "x"}, {"speed_range": [2.0]},
                {"drop_p": 1.5}, {"crop_scale": [0.5, 1.5]}):
        with pytest.raises(ValueError):
            AugmentConfig.from_dict(bad)

    class M:
        flip_safe = False
    assert AugmentConfig().for_manifest(M()).flip is False
    M.flip_safe = True
    assert AugmentConfig().for_manifest(M()).flip is True


def test_from_yaml(tmp_path):
    p = tmp_path / "train.yaml"
    p.write_text("model: lrcn\naugment:\n  rotate: false\n  drop_p: 0.2\n")
    cfg = AugmentConfig.from_yaml(p)
    assert cfg.rotate is False and cfg.drop_p == 0.2
    p.write_text("augment:\n  rotat: false\n")
    with pytest.raises(ValueError, match="rotat"):
        AugmentConfig.from_yaml(p)
