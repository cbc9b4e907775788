"""edge.video.read_clip on real containers (../shared/data) and on broken input."""
from pathlib import Path

import numpy as np
import pytest

from edge.preprocess import resize_rgb
from edge.sampling import paper_indices
from edge.video import VideoError, probe, read_clip

from conftest import SHARED_DATA

VIDEO_SUFFIXES = {".avi", ".mp4", ".mpg"}


def _files(sub):
    root = SHARED_DATA / sub
    if not root.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{root} absent (real clips live in ../shared/data)"))]
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    return [pytest.param(p, id=str(p.relative_to(root))[:60]) for p in files]


def _check_clip(path: Path):
    clip = read_clip(str(path), n_frames=20, size=(64, 64))
    assert clip.frames.shape == (20, 64, 64, 3)
    assert clip.frames.dtype == np.float32
    assert 0.0 <= float(clip.frames.min()) and float(clip.frames.max()) <= 1.0
    assert float(clip.frames.max()) > 0.05, "an all-black clip means nothing was decoded"
    assert not clip.padded
    assert clip.indices == paper_indices(clip.info.frame_count, 20)
    return clip


@pytest.mark.realdata
@pytest.mark.parametrize("path", _files("formats"))
def test_every_container_in_formats_decodes(path):
    _check_clip(path)


@pytest.mark.realdata
def test_formats_cover_the_expected_containers(shared_data):
    suffixes = {p.suffix.lower() for p in (shared_data / "formats").rglob("*") if p.is_file()}
    assert {".avi", ".mp4", ".mpg"} <= suffixes


@pytest.mark.realdata
def test_all_of_ucf101_mini_decodes(shared_data):
    files = sorted((shared_data / "ucf101-mini").glob("*/*.avi"))
    assert len(files) == 108
    for p in files:
        _check_clip(p)


def _seek_reference(path, indices, size=(64, 64)):
    """The paper's access pattern: set CAP_PROP_POS_FRAMES, then read (no /255 here: uint8)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    for i in indices:
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, frame = cap.read()
        assert ok, f"seek reference could not read frame {i}"
        out.append(resize_rgb(frame, size, bgr=True))
    cap.release()
    return np.stack(out)


def _sequential_reference(path, indices, size=(64, 64)):
    """Ground truth without seeking: decode every frame in order, keep the wanted ones."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack([resize_rgb(frames[i], size, bgr=True) for i in indices])


@pytest.mark.realdata
def test_grab_skip_returns_the_frames_the_paper_seek_loop_returns(shared_data):
    clips = [shared_data / "ucf101-mini/Archery/v_Archery_g08_c01.avi",
             shared_data / "ucf101-mini/Surfing/v_Surfing_g12_c01.avi",
             shared_data / "formats/ucf101-extra/BaseballPitch/v_BaseballPitch_g03_c01.avi"]
    for p in clips:
        clip = read_clip(str(p), as_uint8=True)
        ref = _seek_reference(p, clip.indices)
        diff = np.abs(clip.frames.astype(np.int16) - ref.astype(np.int16))
        assert diff.max() <= 2, f"{p.name}: sampled frames differ from the seek reference (max {diff.max()})"
        # and the frames are not all alike (a wrong-but-constant read would also match itself)
        assert np.abs(clip.frames[0].astype(int) - clip.frames[-1].astype(int)).mean() > 1


@pytest.mark.realdata
@pytest.mark.parametrize("sub", ["formats/ucf11/biking/v_biking_01_01.mpg",
                                 "formats/hmdb51/drink/50_FIRST_DATES_drink_u_nm_np1_fr_goo_29.mp4"])
def test_grab_skip_matches_a_full_sequential_decode(shared_data, sub):
    # MPEG-1 seeking in OpenCV lands on the wrong frame; a full in-order decode is the ground truth.
    p = shared_data / sub
    clip = read_clip(str(p), as_uint8=True)
    ref = _sequential_reference(p, clip.indices)
    assert np.array_equal(clip.frames, ref)


def test_read_clip_on_synthetic_mjpg(synth_data):
    p = next(iter(sorted(synth_data.glob("MoveLeft/*.avi"))))
    info = probe(str(p))
    assert (info.frame_count, info.width, info.height) == (24, 32, 32)
    clip = read_clip(str(p), n_frames=8, size=(32, 32), as_uint8=True)
    assert clip.frames.dtype == np.uint8 and clip.frames.shape == (8, 32, 32, 3)
    assert clip.indices == [0, 3, 6, 9, 12, 15, 18, 21]
    assert np.array_equal(clip.frames, _sequential_reference(p, clip.indices, (32, 32)))


def _write_video(path, n, size=32):
    import cv2

    vw = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (size, size))
    for i in range(n):
        vw.write(np.full((size, size, 3), 20 + 40 * i, np.uint8))
    vw.release()


def test_short_video_pad_and_skip(tmp_path):
    p = tmp_path / "five.avi"
    _write_video(p, 5)
    clip = read_clip(str(p), n_frames=8, size=(16, 16), short_policy="pad", as_uint8=True)
    assert clip.padded and clip.indices == [0, 1, 2, 3, 4, 4, 4, 4]
    assert np.array_equal(clip.frames[4], clip.frames[7])
    assert not np.array_equal(clip.frames[0], clip.frames[4])
    with pytest.raises(VideoError) as e:
        read_clip(str(p), n_frames=8, size=(16, 16), short_policy="skip")
    assert e.value.reason == "too-short"
    with pytest.raises(ValueError):
        read_clip(str(p), short_policy="loop")


def test_explicit_indices_override_the_sampling(tmp_path):
    p = tmp_path / "ten.avi"
    _write_video(p, 6)
    clip = read_clip(str(p), n_frames=3, size=(8, 8), indices=[1, 3, 5], as_uint8=True)
    assert clip.indices == [1, 3, 5]
    levels = clip.frames.reshape(3, -1).mean(1)
    assert levels[0] < levels[1] < levels[2]


@pytest.mark.parametrize("content,reason", [(b"", "empty-file"), (b"this is not a video\n" * 10, "unreadable")])
def test_bad_files_raise_with_a_reason(tmp_path, content, reason):
    p = tmp_path / "bad.avi"
    p.write_bytes(content)
    with pytest.raises(VideoError) as e:
        read_clip(str(p))
    assert e.value.reason == reason
    with pytest.raises(VideoError) as e:
        read_clip(str(tmp_path / "missing.avi"))
    assert e.value.reason == "missing"


def test_non_utf8_file_name_is_refused_not_a_crash(tmp_path, synth_data):
    # cv2.VideoCapture segfaults on str paths with lone surrogates (OpenCV 5.0); read_clip refuses them.
    import os
    import shutil

    name = os.fsdecode(b"clip \xff.avi")
    shutil.copy(next(iter(sorted(synth_data.glob("MoveLeft/*.avi")))), tmp_path / name)
    with pytest.raises(VideoError) as e:
        read_clip(str(tmp_path / name))
    assert e.value.reason == "bad-name"


@pytest.mark.realdata
def test_truncated_file_is_resampled_over_the_frames_that_decode(tmp_path, shared_data):
    # The container still announces 363 frames; only the first part decodes. read_clip learns the
    # real count and samples evenly over it instead of returning a short or padded clip.
    src = shared_data / "ucf101-mini/Archery/v_Archery_g08_c01.avi"
    data = src.read_bytes()
    p = tmp_path / "cut.avi"
    p.write_bytes(data[: len(data) // 4])
    assert probe(str(p)).frame_count == 363
    clip = read_clip(str(p), n_frames=20, size=(32, 32), as_uint8=True)
    real = clip.info.frame_count
    assert 20 <= real < 363 / 2
    assert clip.indices == paper_indices(real, 20) and not clip.padded
    assert np.array_equal(clip.frames, _sequential_reference(p, clip.indices, (32, 32)))
