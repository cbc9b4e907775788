"""edge-data CLI: teaching --help, the synth -> prepare -> split/info flow, one-line errors (exit 2)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from train.data.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [["--help"], ["prepare", "--help"], ["synth", "--help"],
                                  ["split", "--help"], ["info", "--help"]])
def test_help_teaches(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "edge-data prepare" in out


def test_console_script_help_is_fast_and_tf_free():
    exe = Path(sys.executable).with_name("edge-data")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "train.data.cli"]
    code = ("import sys, train.data.cli as c; c.build_parser(); "
            "print('tensorflow' in sys.modules, 'sklearn' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stderr
    r = subprocess.run(cmd + ["prepare", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--short" in r.stdout


def test_synth_prepare_split_info_flow(tmp_path, capsys):
    data, cache = tmp_path / "synth", tmp_path / "cache"
    assert main(["synth", str(data), "--classes", "2", "--clips-per-class", "4", "--frames", "12",
                 "--size", "16", "--groups", "2", "--quiet"]) == 0
    assert "not flip safe" in capsys.readouterr().out
    assert main(["prepare", str(data), "--out", str(cache), "--frames", "6", "--size", "16",
                 "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "ok 8, skipped 0" in out and "misses 8" in out
    assert main(["prepare", str(data), "--out", str(cache), "--frames", "6", "--size", "16x16", "-q"]) == 0
    assert "hits 8, misses 0" in capsys.readouterr().out
    assert main(["split", str(cache), "--seed", "1", "--json", str(tmp_path / "split.json")]) == 0
    out = capsys.readouterr().out
    assert "no group on two sides: checked" in out and "MoveRight" in out
    split = json.loads((tmp_path / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 8
    assert main(["info", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "flip_safe=False" in out and "ok: 8" in out and "frame interval: 0.080s" in out


def test_prepare_reports_bad_files_in_its_summary(tmp_path, synth_data, capsys):
    data = tmp_path / "d"
    (data / "MoveLeft").mkdir(parents=True)
    shutil.copy(next(iter(sorted(synth_data.glob("MoveLeft/*.avi")))), data / "MoveLeft")
    (data / "MoveLeft" / "broken.avi").write_bytes(b"")
    assert main(["prepare", str(data), "--out", str(tmp_path / "c"), "--frames", "4", "--size", "8",
                 "--workers", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "skipped [empty-file] MoveLeft/broken.avi" in out


@pytest.mark.parametrize("argv,msg", [
    (["prepare", "/nonexistent/data", "--out", "/tmp/x"], "not a folder"),
    (["info", "/nonexistent/cache"], "no manifest"),
    (["split", "/nonexistent/cache"], "no manifest"),
])
def test_bad_input_is_one_line_exit_2(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edge-data: error:") and msg in err and "\n" not in err


@pytest.mark.parametrize("argv", [
    ["prepare", "d", "--out", "c", "--size", "0"],
    ["prepare", "d", "--out", "c", "--frames", "-3"],
    ["prepare", "d", "--out", "c", "--short", "loop"],
    ["split", "c", "--test-fraction", "1.5"],
    ["synth", "o", "--classes", "abc"],
    [],
])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_synth_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["synth", str(tmp_path), "--classes", "1", "--clips-per-class", "1", "-q"]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.realdata
def test_split_official_and_test_cache(tmp_path, shared_data, synth_cache, capsys):
    from train.data import Entry, Manifest
    from train.data.layout import walk_dataset

    classes, videos, _ = walk_dataset(shared_data / "ucf101-mini")
    m = Manifest(entries=[Entry(path=v.rel, label=v.label, label_index=classes.index(v.label), group=v.group)
                          for v in videos], classes=classes, settings={"frames": 20, "size": [64, 64]})
    m.save(tmp_path / "ucf")
    lists = shared_data / "ucf101-splits"
    assert main(["split", str(tmp_path / "ucf"), "--official", str(lists / "trainlist01.txt"),
                 str(lists / "testlist01.txt")]) == 0
    out = capsys.readouterr().out
    assert "split: official" in out and "no test clips" in out
    assert main(["split", str(tmp_path / "ucf"), "--official", str(lists / "nope.txt"),
                 str(lists / "testlist01.txt")]) == 2
    # the same cache as its own test folder shares every group: refused
    assert main(["split", str(synth_cache), "--test-cache", str(synth_cache)]) == 2
    assert "groups on both" in capsys.readouterr().err
