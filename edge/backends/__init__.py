"""Backends: one file per runtime behind one interface (``base.Backend``).

``load_backend(path, ...)`` picks the backend from the name or the file suffix. Runtime modules are
imported only when chosen, so a board without TensorRT or the Edge TPU runtime can still import
this package; a missing runtime raises ``BackendUnavailable`` with what to install on which device.
"""
from __future__ import annotations

import importlib
import os
from typing import Dict, Optional, Tuple

from .base import Backend, BackendOptions, BackendUnavailable, TensorInfo

# name -> (module, class, suffixes). Order matters for suffix lookup: first match wins.
REGISTRY: Dict[str, Tuple[str, str, Tuple[str, ...]]] = {
    "edgetpu": ("edge.backends.edgetpu", "EdgeTPUBackend", ("_edgetpu.tflite",)),
    "tflite": ("edge.backends.tflite", "TFLiteBackend", (".tflite",)),
    "onnxruntime": ("edge.backends.onnxruntime", "OnnxRuntimeBackend", (".onnx",)),
    "tensorrt": ("edge.backends.tensorrt", "TensorRTBackend", (".engine", ".plan", ".trt")),
}


def backend_for_path(path: str) -> str:
    """Backend name implied by a file name (``*_edgetpu.tflite`` -> edgetpu, ``.tflite`` -> tflite ...)."""
    low = os.path.basename(path).lower()
    for name, (_, _, suffixes) in REGISTRY.items():
        if any(low.endswith(s) for s in suffixes):
            return name
    known = sorted({s for _, _, sx in REGISTRY.values() for s in sx})
    raise ValueError(f"{path}: unknown model file type (known suffixes: {', '.join(known)})")


def backend_class(name: str):
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r} (known: {', '.join(REGISTRY)})")
    module, cls, _ = REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def load_backend(path: str, backend: Optional[str] = None, options: Optional[BackendOptions] = None,
                 **kw) -> Backend:
    """Open ``path`` with ``backend`` (default: chosen by suffix). ``kw`` fill ``BackendOptions``."""
    name = backend or backend_for_path(path)
    opts = options or BackendOptions(**kw)
    return backend_class(name)(path, opts)


__all__ = ["Backend", "BackendOptions", "BackendUnavailable", "TensorInfo", "REGISTRY",
           "backend_for_path", "backend_class", "load_backend"]
