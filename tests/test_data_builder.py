"""prepare(): bad input never stops a build, every skipped file has a reason, the cache is reused."""
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from edge.video import read_clip
from train.data import load_clips, load_manifest, prepare, frame_interval_seconds
from train.data.loader import CacheError

from conftest import SHARED_DATA, SYNTH_CACHE_KW


def _write_video(path, n, size=32):
    import cv2

    vw = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (size, size))
    rng = np.random.default_rng(n)
    for _ in range(n):
        vw.write(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    vw.release()


def _messy_folder(root: Path, synth_data: Path) -> dict:
    """Two classes of good clips plus every kind of bad input; returns {rel path: expectation}."""
    good = sorted(synth_data.glob("MoveLeft/*.avi"))[:3] + sorted(synth_data.glob("MoveRight/*.avi"))[:3]
    expect = {}
    for src in good:
        dst = root / src.parent.name / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        expect[f"{src.parent.name}/{src.name}"] = "ok"
    odd = root / "MoveLeft" / "v_MoveLeft !odd name ü_g07_c01.avi"
    shutil.copy(good[0], odd)
    expect["MoveLeft/" + odd.name] = "ok"
    raw = os.fsdecode(b"v_MoveLeft_g08_c01 \xff latin1.avi")   # not UTF-8: OpenCV cannot take the name
    shutil.copy(good[1], root / "MoveLeft" / raw)
    expect["MoveLeft/" + raw] = "ok"
    (root / "MoveLeft" / "v_MoveLeft_g09_c01.avi").write_bytes(b"")
    expect["MoveLeft/v_MoveLeft_g09_c01.avi"] = "empty-file"
    (root / "MoveRight" / "notes_g10.avi").write_text("just text, renamed to .avi\n" * 20)
    expect["MoveRight/notes_g10.avi"] = "unreadable"
    real = SHARED_DATA / "ucf101-mini/Archery/v_Archery_g08_c01.avi"
    data = real.read_bytes() if real.exists() else (synth_data / "MoveLeft/v_MoveLeft_g01_c01.avi").read_bytes()
    (root / "MoveRight" / "v_MoveRight_g11_c01.avi").write_bytes(data[: len(data) // 4])
    expect["MoveRight/v_MoveRight_g11_c01.avi"] = "truncated"
    _write_video(root / "MoveRight" / "v_MoveRight_g12_c01.avi", 5)
    expect["MoveRight/v_MoveRight_g12_c01.avi"] = "short"
    (root / "MoveLeft" / ".hidden.avi").write_bytes(good[0].read_bytes())
    (root / ".DS_Store").write_bytes(b"\0\0")
    (root / "MoveLeft" / "README.txt").write_text("not a video")
    (root / "stray.avi").write_bytes(good[0].read_bytes())
    return expect


def test_messy_folder_builds_and_reports_every_bad_file(tmp_path, synth_data):
    data = tmp_path / "data"
    expect = _messy_folder(data, synth_data)
    m = prepare(data, tmp_path / "cache", frames=8, size=32, short_policy="pad", workers=2, progress=False)
    by = {e.path: e for e in m.entries}
    assert set(by) == set(expect), "one manifest entry per video file"
    for rel, want in expect.items():
        e = by[rel]
        if want == "ok":
            assert e.status == "ok" and e.reason is None and not e.padded, rel
        elif want == "short":  # pad policy keeps it, padded by repeating the last frame
            assert e.status == "ok" and e.padded and e.frames == 5
            assert e.indices == [0, 1, 2, 3, 4, 4, 4, 4]
        else:
            assert e.status == "skipped" and e.reason == want, (rel, e.reason, e.message)
            assert e.cache is None and e.message
    assert m.classes == ["MoveLeft", "MoveRight"]
    ignored = {(i["path"], i["reason"]) for i in m.ignored}
    assert ("MoveLeft/.hidden.avi", "hidden") in ignored
    assert (".DS_Store", "hidden") in ignored
    assert ("MoveLeft/README.txt", "not-a-video-extension") in ignored
    assert ("stray.avi", "not-in-class-folder") in ignored
    # every good clip is loadable, shapes and labels right
    ok = m.ok_entries
    x, y = load_clips(m, ok)
    assert x.shape == (9, 8, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int64
    assert list(y) == [m.classes.index(e.label) for e in ok]
    padded = [i for i, e in enumerate(ok) if e.padded][0]
    assert np.array_equal(x[padded, 4], x[padded, 7])
    # the manifest on disk says the same
    on_disk = json.loads((tmp_path / "cache" / "manifest.json").read_text(encoding="utf-8"))
    assert {e["path"]: e["status"] for e in on_disk["entries"]} == {k: e.status for k, e in by.items()}
    assert on_disk["stats"]["skipped_by_reason"] == {"empty-file": 1, "unreadable": 1, "truncated": 1}
    with pytest.raises(CacheError):
        load_clips(m, [by["MoveLeft/v_MoveLeft_g09_c01.avi"]])


def test_skip_policy_drops_the_short_video(tmp_path, synth_data):
    data = tmp_path / "data"
    _messy_folder(data, synth_data)
    m = prepare(data, tmp_path / "cache", frames=8, size=32, short_policy="skip", workers=1, progress=False)
    e = {e.path: e for e in m.entries}["MoveRight/v_MoveRight_g12_c01.avi"]
    assert e.status == "skipped" and e.reason == "too-short" and e.frames == 5
    assert sum(x.ok for x in m.entries) == 8


def test_unreadable_folder_is_reported(tmp_path, synth_data, monkeypatch):
    data = tmp_path / "data"
    for cls in ("MoveLeft", "MoveRight", "Locked"):
        (data / cls).mkdir(parents=True)
    src = sorted(synth_data.glob("MoveLeft/*.avi"))[0]
    shutil.copy(src, data / "MoveLeft" / src.name)
    shutil.copy(src, data / "MoveRight" / src.name.replace("MoveLeft", "MoveRight"))
    shutil.copy(src, data / "Locked" / "v_Locked_g01_c01.avi")
    (data / "MoveRight" / "sub").mkdir()
    if os.geteuid() != 0:  # a real permission problem (root reads everything anyway)
        os.chmod(data / "Locked", 0)
    else:
        import train.data.layout as layout

        real = layout._scandir

        def scandir(path):
            if os.path.basename(path) == "Locked":
                raise PermissionError(13, "Permission denied", path)
            return real(path)

        monkeypatch.setattr(layout, "_scandir", scandir)
    try:
        m = prepare(data, tmp_path / "cache", frames=8, size=32, workers=1, progress=False)
    finally:
        os.chmod(data / "Locked", 0o755)
    assert m.classes == ["MoveLeft", "MoveRight"]
    assert [e.status for e in m.entries] == ["ok", "ok"]
    assert [(i["path"], i["reason"]) for i in m.ignored] == [("Locked", "unreadable-folder")]


def test_second_run_hits_the_cache_and_changes_miss(tmp_path, synth_data):
    data = tmp_path / "data"
    shutil.copytree(synth_data, data)
    cache = tmp_path / "cache"
    t = time.perf_counter()
    cold = prepare(data, cache, frames=8, size=32, workers=1, progress=False)
    t_cold = time.perf_counter() - t
    n = len(cold.entries)
    assert n == 32 and cold.stats["misses"] == n and cold.stats["hits"] == 0
    t = time.perf_counter()
    warm = prepare(data, cache, frames=8, size=32, workers=1, progress=False)
    t_warm = time.perf_counter() - t
    assert warm.stats["hits"] == n and warm.stats["misses"] == 0
    assert t_warm < t_cold
    assert [e.to_dict() for e in warm.entries] == [e.to_dict() for e in cold.entries]
    # touching one file (new mtime) misses for that file only
    f = data / cold.entries[3].path
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    again = prepare(data, cache, frames=8, size=32, workers=1, progress=False)
    assert again.stats["misses"] == 1 and again.stats["hits"] == n - 1
    assert again.entries[3].key != cold.entries[3].key
    # changing a sampling setting misses everything
    other = prepare(data, cache, frames=6, size=32, workers=1, progress=False)
    assert other.stats["misses"] == n and other.stats["hits"] == 0
    # a removed cached clip is rebuilt, not trusted
    (cache / other.entries[0].cache).unlink()
    fixed = prepare(data, cache, frames=6, size=32, workers=1, progress=False)
    assert fixed.stats["misses"] == 1
    # --prune removes clips no entry uses (the frames=8 ones)
    pruned = prepare(data, cache, frames=6, size=32, workers=1, progress=False, prune=True)
    assert pruned.stats["pruned"] == n + 1
    assert len(list((cache / "clips").rglob("*.npz"))) == n


def test_cached_clip_equals_a_direct_read(synth_cache, synth_data):
    m = load_manifest(synth_cache)
    e = m.entries[5]
    x, y = load_clips(m, [e])
    direct = read_clip(str(synth_data / e.path), n_frames=8, size=(32, 32))
    assert np.array_equal(x[0], direct.frames)
    assert y[0] == m.classes.index(e.label)
    with np.load(synth_cache / e.cache, allow_pickle=False) as z:
        assert z["frames"].dtype == np.uint8 and list(z["indices"]) == e.indices


def test_synth_manifest_fields(synth_cache):
    m = load_manifest(synth_cache)
    assert m.flip_safe is False, "the synthetic dataset.json must make the manifest not flip safe"
    assert m.settings["frames"] == SYNTH_CACHE_KW["frames"] and m.settings["size"] == [32, 32]
    assert m.classes == ["Grow", "MoveLeft", "MoveRight", "Shrink"]
    e = m.entries[0]
    assert (e.frames, e.fps, e.width, e.height, e.status) == (24, 25.0, 32, 32, "ok")
    assert e.group == "Grow/g01" and e.label_index == 0
    # 24 frames, 8 sampled: step 3 at 25 fps
    assert frame_interval_seconds(m) == pytest.approx(3 / 25.0)
    assert "ok: 32" in m.summary()


@pytest.mark.realdata
def test_real_formats_prepare_with_hmdb_groups(tmp_path, shared_data):
    m = prepare(shared_data / "formats", tmp_path / "cache", frames=20, size=64, workers=2, progress=False)
    assert len(m.entries) == 16 and all(e.ok for e in m.entries), [e.message for e in m.skipped_entries]
    groups = {e.path.split("/")[-1]: e.group for e in m.entries}
    assert groups["50_FIRST_DATES_drink_u_nm_np1_fr_goo_29.mp4"] == "hmdb:50_FIRST_DATES"
    assert groups["Bruno_Walks_up_Stairs_-_Chicago_Dog_Training_-_We_can_teach_ANYTHING_to_a_dog!!!!"
                  "_climb_stairs_f_cm_np1_fr_med_0.mp4"] == \
        "hmdb:Bruno_Walks_up_Stairs_-_Chicago_Dog_Training_-_We_can_teach_ANYTHING_to_a_dog!!!!"
    # UCF groups come from the file name's class, not the folder: g01 of two classes differ
    assert groups["v_Basketball_g01_c01.avi"] == groups["v_Basketball_g01_c04.avi"] == "Basketball/g01"
    assert groups["v_ApplyEyeMakeup_g01_c01.avi"] == "ApplyEyeMakeup/g01"
    assert groups["v_biking_01_01.mpg"] == "biking/g01"
    assert m.classes == ["hmdb51", "kinetics400", "ucf101-extra", "ucf11"]
    x, y = load_clips(m, m.entries)
    assert x.shape == (16, 20, 64, 64, 3) and 0 <= x.min() and x.max() <= 1


def test_load_manifest_errors(tmp_path):
    from train.data import ManifestError

    with pytest.raises(ManifestError, match="no manifest"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="unreadable"):
        load_manifest(tmp_path)


def test_prepare_rejects_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        prepare(tmp_path / "nope", tmp_path / "cache", progress=False)
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError):
        prepare(tmp_path / "d", tmp_path / "cache", short_policy="loop", progress=False)


def test_pool_that_cannot_start_falls_back_to_this_process(tmp_path, synth_data):
    # A script read from stdin cannot be re-imported by forkserver/spawn workers: the pool dies at
    # start. prepare() must warn and decode in-process instead of reporting every clip as failed.
    import subprocess
    import sys

    script = (f"from train.data import prepare\n"
              f"m = prepare({str(synth_data)!r}, {str(tmp_path / 'c')!r}, frames=4, size=16, workers=2, progress=False)\n"
              f"print('OK', m.stats['ok'], m.stats['skipped'])\n")
    r = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=180,
                       cwd=Path(__file__).resolve().parents[1])
    assert "OK 32 0" in r.stdout, r.stderr[-2000:]
    assert "decoding in this process" in r.stderr


def test_cache_inside_the_data_folder_and_empty_class_folders(tmp_path, synth_data):
    data = tmp_path / "data"
    for p in sorted(synth_data.glob("Move*/*_g01_*.avi")):
        (data / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, data / p.parent.name / p.name)
    (data / "Empty").mkdir()
    (data / "Docs").mkdir()
    (data / "Docs" / "notes.txt").write_text("x")
    for run in range(2):   # the second walk sees the cache folder the first one created
        m = prepare(data, data / "cache", frames=4, size=16, workers=1, progress=False)
        assert m.classes == ["MoveLeft", "MoveRight"]
        assert len(m.entries) == 4 and all(e.ok for e in m.entries)
        reasons = {(i["path"], i["reason"]) for i in m.ignored}
        assert {("Empty", "no-videos"), ("Docs", "no-videos")} <= reasons
        assert (("cache", "cache-folder") in reasons) == (run == 1)
    assert m.stats["hits"] == 4


def test_symlink_loop_is_walked_once(tmp_path, synth_data):
    from train.data.layout import walk_dataset

    (tmp_path / "A" / "sub").mkdir(parents=True)
    shutil.copy(next(iter(sorted(synth_data.glob("MoveLeft/*.avi")))), tmp_path / "A" / "v_A_g01_c01.avi")
    os.symlink("..", tmp_path / "A" / "sub" / "up")          # A/sub/up -> A
    classes, videos, ignored = walk_dataset(tmp_path)
    assert classes == ["A"] and [v.rel for v in videos] == ["A/v_A_g01_c01.avi"]
    assert ("A/sub/up", "symlink-loop") in {(i.rel, i.reason) for i in ignored}
