"""Backends: one file per runtime behind one interface (``base.Backend``).

``load_backend(path, ...)`` picks the backend from the name or the file suffix; both come from the
catalog (``edge.catalog.BACKENDS`` and the formats' suffixes). Runtime modules are imported only
when chosen, so a board without TensorRT or the Edge TPU runtime can still import this package; a
missing runtime raises ``BackendUnavailable`` with what to install on which device.
"""
import importlib
from typing import Dict, Optional, Tuple

from .. import catalog
from .base import Backend, BackendOptions, BackendUnavailable, TensorInfo

# name -> (module, class, suffixes), derived from the catalog (kept for callers that list backends).
REGISTRY = {b.name: (b.module, b.cls, tuple(s for s, n in catalog.suffix_table() if n == b.name))
            for b in catalog.BACKENDS}  # type: Dict[str, Tuple[str, str, Tuple[str, ...]]]


def backend_for_path(path: str) -> str:
    """Backend name implied by a file name (``*_edgetpu.tflite`` -> edgetpu, ``.tflite`` -> tflite ...)."""
    return catalog.backend_for_file(path)


def backend_class(name: str):
    if name not in catalog.BACKEND:
        raise ValueError("unknown backend {!r} (known: {})".format(name, ", ".join(catalog.BACKEND_NAMES)))
    b = catalog.BACKEND[name]
    return getattr(importlib.import_module(b.module), b.cls)


def load_backend(path: str, backend: Optional[str] = None, options: Optional[BackendOptions] = None,
                 **kw) -> Backend:
    """Open ``path`` with ``backend`` (default: chosen by suffix). ``kw`` fill ``BackendOptions``."""
    name = backend or backend_for_path(path)
    opts = options or BackendOptions(**kw)
    return backend_class(name)(path, opts)


__all__ = ["Backend", "BackendOptions", "BackendUnavailable", "TensorInfo", "REGISTRY",
           "backend_for_path", "backend_class", "load_backend"]
