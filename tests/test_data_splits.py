"""Splits never put a group on two sides: group_split, official lists, separate test folder."""
import shutil
from collections import Counter

import pytest

from train.data import (Entry, LeakageError, Manifest, Split, folder_split, group_split, load_manifest,
                        official_split, prepare)
from train.data.layout import group_of, walk_dataset
from train.data.splits import read_split_list


def _assert_disjoint(split):
    sides = {s: {e.group for e in es} for s, es in split.sides().items()}
    assert not sides["train"] & sides["val"]
    assert not sides["train"] & sides["test"]
    assert not sides["val"] & sides["test"]


@pytest.mark.parametrize("rel,label,group", [
    ("Archery/v_Archery_g08_c01.avi", "Archery", "Archery/g08"),
    ("Surfing/v_Surfing_g08_c03.avi", "Surfing", "Surfing/g08"),
    ("HandstandPushups/v_HandStandPushups_g01_c01.avi", "HandstandPushups", "HandStandPushups/g01"),
    ("biking/v_biking_01_01.mpg", "biking", "biking/g01"),
    ("drink/50_FIRST_DATES_drink_u_nm_np1_fr_goo_29.mp4", "drink", "hmdb:50_FIRST_DATES"),
    ("talk/50_FIRST_DATES_talk_h_nm_np1_fr_goo_3.avi", "talk", "hmdb:50_FIRST_DATES"),
    ("climb_stairs/Bruno_Walks_up_Stairs_dog!!!!_climb_stairs_f_cm_np1_fr_med_0.mp4", "climb_stairs",
     "hmdb:Bruno_Walks_up_Stairs_dog!!!!"),
    ("jump/my clip (1).mp4", "jump", "jump/my clip (1)"),
])
def test_group_ids(rel, label, group):
    assert group_of(rel, label) == group


def _entries(spec):
    """spec: list of (label, group, n clips) -> ok entries (no files needed for splitting)."""
    classes = sorted({c for c, _, _ in spec})
    out = []
    for label, group, n in spec:
        for k in range(n):
            out.append(Entry(path=f"{label}/{group.replace('/', '_')}_{k}.avi", label=label,
                             label_index=classes.index(label), group=group))
    return out


def test_group_split_on_ucf_like_groups_is_stratified_and_seeded():
    spec = [(c, f"{c}/g{g:02d}", 3 + (g % 4)) for c in ("A", "B", "C", "D", "E") for g in range(1, 26)]
    entries = _entries(spec)
    s = group_split(entries, seed=1)
    _assert_disjoint(s)
    n = Counter(e.label for e in entries)
    for side, frac in (("test", 0.25), ("val", 0.75 * 0.10)):
        got = Counter(e.label for e in getattr(s, side))
        for c in n:
            assert abs(got[c] / n[c] - frac) < 0.06, (side, c, got[c], n[c])
    assert len(s.train) + len(s.val) + len(s.test) == len(entries)
    same = group_split(entries, seed=1)
    assert [e.path for e in same.test] == [e.path for e in s.test]
    other = group_split(entries, seed=2)
    assert [e.path for e in other.test] != [e.path for e in s.test]
    assert "no group on two sides" in s.summary()


def test_group_split_with_groups_spanning_classes_and_a_single_group_class():
    # HMDB: one film gives clips to several actions; class "solo" has a single group.
    spec = [(c, f"hmdb:film{f}", 2) for f in range(12) for c in ("drink", "talk", "eat") if (f + len(c)) % 3]
    spec += [("solo", "hmdb:only", 4)]
    s = group_split(_entries(spec), seed=0)
    _assert_disjoint(s)
    assert all(e.label != "solo" for e in s.test + s.val)
    assert any("solo" in n for n in s.notes)
    for c in ("drink", "talk", "eat"):
        assert any(e.label == c for e in s.test), c


def test_group_split_skips_failed_entries_and_check_catches_leaks():
    entries = _entries([("A", f"A/g{g}", 2) for g in range(8)] + [("B", f"B/g{g}", 2) for g in range(8)])
    entries[0].status, entries[0].reason = "skipped", "truncated"
    s = group_split(entries, seed=0)
    assert entries[0] not in s.train + s.val + s.test
    leaky = Split(train=[entries[2]], val=[], test=[entries[3]], classes=["A", "B"])
    assert entries[2].group == entries[3].group
    with pytest.raises(LeakageError):
        leaky.check()


def test_group_split_on_the_synthetic_cache(synth_cache):
    m = load_manifest(synth_cache)
    s = group_split(m.entries, seed=0, classes=m.classes)
    _assert_disjoint(s)
    for side in ("train", "val", "test"):
        assert {e.label for e in getattr(s, side)} == set(m.classes), side  # every class on every side


@pytest.mark.realdata
def test_official_lists_parse_crlf(shared_data):
    train = read_split_list(shared_data / "ucf101-splits/trainlist01.txt")
    test = read_split_list(shared_data / "ucf101-splits/testlist01.txt")
    assert len(train) == 9537 and len(test) == 3783
    assert train[0] == "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"
    assert test[0] == "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
    assert not any(p.endswith("\r") or " " in p for p in train + test)


@pytest.mark.realdata
def test_official_split_follows_the_lists(shared_data):
    lists = shared_data / "ucf101-splits"
    train = read_split_list(lists / "trainlist01.txt")
    test = read_split_list(lists / "testlist01.txt")
    keep = ("Archery", "Surfing", "HandstandPushups")
    classes = sorted(keep)
    # a manifest holding every listed clip of three classes (no decoding needed to split)
    entries = [Entry(path=p.replace("HandStandPushups", "HandstandPushups", 1), label=p.split("/")[0],
                     label_index=0, group=group_of(p, p.split("/")[0]))
               for p in train + test if p.split("/")[0].lower() in {k.lower() for k in keep}]
    for e in entries:
        e.label = next(k for k in keep if k.lower() == e.label.lower())
        e.label_index = classes.index(e.label)
    m = Manifest(entries=entries, classes=classes, settings={"frames": 20, "size": [64, 64]})
    s = official_split(m, lists / "trainlist01.txt", lists / "testlist01.txt", seed=0)
    _assert_disjoint(s)
    test_names = {p.lower() for p in test}
    assert all(e.path.lower() in test_names for e in s.test)
    assert all(e.path.lower() not in test_names for e in s.train + s.val)
    assert len(s.test) == sum(1 for p in test if p.split("/")[0].lower() in {k.lower() for k in keep})
    assert {e.label for e in s.test} == set(keep)        # HandStand/Handstand spelling matched
    assert 0.05 < len(s.val) / (len(s.train) + len(s.val)) < 0.16


@pytest.mark.realdata
def test_official_split_on_ucf101_mini_restricted_to_what_exists(shared_data):
    classes, videos, _ = walk_dataset(shared_data / "ucf101-mini")
    entries = [Entry(path=v.rel, label=v.label, label_index=classes.index(v.label), group=v.group) for v in videos]
    m = Manifest(entries=entries, classes=classes, settings={"frames": 20, "size": [64, 64]})
    lists = shared_data / "ucf101-splits"
    s = official_split(m, lists / "trainlist01.txt", lists / "testlist01.txt", seed=0)
    _assert_disjoint(s)
    # ucf101-mini holds only split-1 train clips: all train/val, no test, and it says so
    assert len(s.train) + len(s.val) == 108 and not s.test
    assert any("no test clips" in n for n in s.notes)
    assert {e.label for e in s.val} == set(classes)


def test_folder_split(tmp_path, synth_data):
    train_dir, test_dir = tmp_path / "train", tmp_path / "test"
    for p in sorted(synth_data.glob("*/*.avi")):
        side = test_dir if "_g04_" in p.name else train_dir
        (side / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, side / p.parent.name / p.name)
    kw = dict(frames=4, size=16, workers=1, progress=False)
    mtrain = prepare(train_dir, tmp_path / "c-train", **kw)
    mtest = prepare(test_dir, tmp_path / "c-test", **kw)
    s = folder_split(mtrain, mtest, seed=0)
    _assert_disjoint(s)
    assert len(s.test) == 8 and len(s.train) + len(s.val) == 24
    assert all(e.cache_root == str((tmp_path / "c-test").resolve()) for e in s.test)
    from train.data import load_clips

    x, y = load_clips(mtrain, s.test)       # test clips found in their own cache
    assert x.shape == (8, 4, 16, 16, 3)
    assert sorted(set(y.tolist())) == [0, 1, 2, 3]
    # a test folder sharing a group with the training folder is refused
    shutil.copy(next(iter(sorted(train_dir.glob("MoveLeft/*_g01_*.avi")))), test_dir / "MoveLeft")
    leaky = prepare(test_dir, tmp_path / "c-test", **kw)
    with pytest.raises(LeakageError):
        folder_split(mtrain, leaky, seed=0)
