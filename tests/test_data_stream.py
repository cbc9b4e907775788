"""Streaming training data: the tf.data pipeline over the uint8 cache yields the in-memory batches."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")


def _entries(cache):
    from train.data import load_manifest

    m = load_manifest(cache)
    return m, [e for e in m.entries if e.ok]


def test_stream_yields_the_in_memory_batches(synth_cache):
    from train.data import AugmentConfig, load_clips
    from train.data.stream import ClipSource
    from train.trainer import TrainStream

    m, entries = _entries(synth_cache)
    x, y = load_clips(m, entries)
    eye = np.eye(int(y.max()) + 1, dtype=np.float32)
    aug = AugmentConfig(flip=False)
    assert aug.active
    mem = TrainStream(x, eye[y], 4, aug, seed=7)
    src = ClipSource(m, entries)
    streamed = TrainStream(src, eye[src.labels()], 4, aug, seed=7, parallel=3)
    ds = iter(streamed.dataset())
    for epoch in (0, 1):
        for xb, yb in mem.epoch_batches(epoch):
            sx, sy = next(ds)
            np.testing.assert_array_equal(sx.numpy(), xb)
            np.testing.assert_array_equal(sy.numpy(), yb)
    # a different seed gives other batches (the comparison above could fail)
    other = next(TrainStream(x, eye[y], 4, aug, seed=8).epoch_batches(0))[0]
    assert not np.array_equal(other, next(mem.epoch_batches(0))[0])


def test_shards_are_disjoint_and_cover_all(synth_cache, monkeypatch):
    import json

    from train.data.stream import shard_entries, worker_shard

    _, entries = _entries(synth_cache)
    parts = [shard_entries(entries, 3, i) for i in range(3)]
    paths = [e.path for p in parts for e in p]
    assert sorted(paths) == sorted(e.path for e in entries) and len(set(paths)) == len(paths)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                                                "task": {"type": "worker", "index": 1}}))
    assert worker_shard() == (2, 1)
    monkeypatch.delenv("TF_CONFIG")
    assert worker_shard() == (1, 0)


def test_stream_data_training_run(tmp_path, synth_cache):
    from train.cli import main
    from train_helpers import train_args

    assert main(train_args("lrcn-edge", synth_cache, tmp_path / "run", 1, "--stream-data")) == 0
    assert (tmp_path / "run" / "metrics.json").is_file()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_local_workers_train_on_their_shards(tmp_path, synth_cache):
    """--strategy multi-worker: two processes on loopback (TF_CONFIG), each reading its own clip files."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from train_helpers import train_args

    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    repo = Path(__file__).resolve().parents[1]
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                   PYTHONPATH=str(repo), CUDA_VISIBLE_DEVICES="")
        args = train_args("lrcn-edge", synth_cache, tmp_path / f"run{i}", 1, "--stream-data",
                          "--strategy", "multi-worker")
        procs.append(subprocess.Popen([sys.executable, "-m", "train.cli", *args], env=env, cwd=str(repo),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True))
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=600)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, out[-3000:]
        assert f"worker {i} of 2" in out, out[-2000:]
    assert (tmp_path / "run0" / "metrics.json").is_file()          # the chief wrote the run
    assert not (tmp_path / "run1" / "metrics.json").exists()       # the other worker did not
