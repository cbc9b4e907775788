"""Read a PyTorch ``.pth`` state dict into numpy arrays without PyTorch and without running arbitrary pickles.

    state = read_pth("efficientnet-lite0.pth")        # OrderedDict name -> np.ndarray

A ``.pth`` file is a pickle; a plain ``pickle.load`` would import and call whatever globals the file
names (``os.system`` included). ``RestrictedUnpickler.find_class`` accepts only what a state dict of
tensors needs and maps each to a harmless stand-in:

* ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor`` / ``_rebuild_parameter`` -> a record of
  (storage, offset, shape, stride), turned into a numpy array once the storage bytes are read;
* ``torch.FloatStorage`` and the other typed storages -> their numpy dtype;
* ``collections.OrderedDict`` -> ``collections.OrderedDict``.

Any other global is a ``PthError`` naming it. Both layouts PyTorch has written are understood:

* legacy (torch < 1.6 ``_use_new_zipfile_serialization=False``): consecutive pickles -- magic number,
  protocol 1001, sys info, the object (storages as persistent ids), the list of storage keys -- then
  each storage's raw bytes, preceded by its element count as a little-endian int64;
* zip (torch >= 1.6): ``<name>/data.pkl`` plus one ``<name>/data/<key>`` entry of raw bytes per storage.
"""
import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class PthError(ValueError):
    """The file is not a readable tensor state dict (or names a global that is not allowed)."""


class _Storage(NamedTuple):
    key: str
    dtype: Any
    numel: int


class _TensorRef(NamedTuple):
    storage: _Storage
    offset: int
    shape: Tuple[int, ...]
    stride: Tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_rest):
    return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, *_rest):
    return data


class _StorageType(NamedTuple):
    name: str
    dtype: Any


_REBUILDERS = {"_rebuild_tensor_v2": _rebuild_tensor, "_rebuild_tensor": _rebuild_tensor,
               "_rebuild_parameter": _rebuild_parameter}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the tensor-rebuild, storage and OrderedDict globals."""

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in _REBUILDERS:
            return _REBUILDERS[name]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        raise PthError(f"refusing to load global {module}.{name}: a .pth state dict only needs tensors "
                       f"(allowed: torch._utils rebuild functions, torch.*Storage, collections.OrderedDict)")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or _ascii(pid[0]) != "storage":
            raise PthError(f"unsupported persistent id {pid!r:.80} (only tensor storages are allowed)")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise PthError(f"unsupported storage type {storage_type!r:.80}")
        view = pid[5] if len(pid) > 5 else None
        if view is not None:
            raise PthError("storage views (legacy view_metadata) are not supported")
        return _Storage(_ascii(key), storage_type.dtype, int(numel))


def _ascii(v) -> str:
    return v.decode("ascii") if isinstance(v, bytes) else str(v)


def _load(f, what: str):
    try:
        return RestrictedUnpickler(f, encoding="latin1").load()
    except PthError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, struct.error) as e:
        raise PthError(f"{what}: not a PyTorch pickle ({e})") from None


def _array(ref: _TensorRef, flat: np.ndarray) -> np.ndarray:
    if not ref.shape:
        return np.array(flat[ref.offset])
    need = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride)) + 1
    if need > flat.size and all(n > 0 for n in ref.shape):
        raise PthError(f"tensor {ref.shape} at offset {ref.offset} runs past its storage ({flat.size} elements)")
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat[ref.offset:], ref.shape, tuple(s * item for s in ref.stride))
    return np.array(view, copy=True)


def _resolve(obj, storages: Dict[str, np.ndarray]):
    if isinstance(obj, _TensorRef):
        if obj.storage.key not in storages:
            raise PthError(f"storage {obj.storage.key} has no data in the file")
        return _array(obj, storages[obj.storage.key])
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _resolve(v, storages)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, storages) for v in obj)
    return obj


def _storages_in(obj, found: Dict[str, _Storage]) -> Dict[str, _Storage]:
    if isinstance(obj, _TensorRef):
        found[obj.storage.key] = obj.storage
    elif isinstance(obj, dict):
        for v in obj.values():
            _storages_in(v, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _storages_in(v, found)
    return found


def _read_legacy(f, path: str):
    magic = _load(f, path)
    if magic != LEGACY_MAGIC:
        raise PthError(f"{path}: not a PyTorch legacy file (bad magic number)")
    proto = _load(f, path)
    if proto != LEGACY_PROTOCOL:
        raise PthError(f"{path}: unsupported legacy protocol {proto!r} (expected {LEGACY_PROTOCOL})")
    sys_info = _load(f, path)
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise PthError(f"{path}: big-endian files are not supported")
    obj = _load(f, path)
    keys = [_ascii(k) for k in _load(f, path)]
    known = _storages_in(obj, {})
    storages = {}
    for key in keys:
        head = f.read(8)
        if len(head) != 8:
            raise PthError(f"{path}: truncated (storage {key} missing)")
        numel = struct.unpack("<q", head)[0]
        dtype = np.dtype(known[key].dtype) if key in known else np.dtype(np.uint8)
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise PthError(f"{path}: truncated in storage {key}")
        storages[key] = np.frombuffer(raw, dtype=dtype)
    return _resolve(obj, storages)


def _read_zip(zf: zipfile.ZipFile, path: str):
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pkl:
        raise PthError(f"{path}: zip file without data.pkl (not a PyTorch checkpoint)")
    prefix = pkl[0][: -len("data.pkl")]
    obj = _load(io.BytesIO(zf.read(pkl[0])), path)
    storages = {}
    for key, st in _storages_in(obj, {}).items():
        name = f"{prefix}data/{key}"
        if name not in names:
            raise PthError(f"{path}: storage {key} missing ({name})")
        storages[key] = np.frombuffer(zf.read(name), dtype=np.dtype(st.dtype))
    return _resolve(obj, storages)


def read_pth(path) -> "collections.OrderedDict[str, np.ndarray]":
    """The tensors of a ``.pth`` state dict as numpy arrays (names as saved). Raises ``PthError``."""
    p = Path(path)
    if not p.is_file():
        raise PthError(f"{p}: no such file")
    if zipfile.is_zipfile(str(p)):
        with zipfile.ZipFile(str(p)) as zf:
            obj = _read_zip(zf, str(p))
    else:
        with open(p, "rb") as f:
            obj = _read_legacy(f, str(p))
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise PthError(f"{p}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    return collections.OrderedDict((k, v) for k, v in obj.items() if isinstance(v, np.ndarray))


def summary(state: Dict[str, np.ndarray]) -> List[str]:
    """One line per tensor: name, shape, dtype (for ``--help`` style listings and debugging)."""
    return [f"{k} {tuple(v.shape)} {v.dtype}" for k, v in state.items()]
