"""Minimal TensorRT engine build from ONNX on the device (fp32/fp16), with an engine cache.

``edge`` must not import ``quantize`` (the host-side builder with INT8 calibration lives there), so
the runner carries this small builder: OnnxParser -> builder config (fp16 when the GPU has fast
fp16) -> serialized engine, cached under a name that encodes what makes an engine valid: the ONNX
content (sha256 prefix), TensorRT version, GPU name and precision. An engine built for another
TensorRT/GPU is never reused. INT8 engines need calibration data: build them on the host with
``edge-quantize`` (or trtexec) and ship the ``.engine`` in the bundle.
"""
from __future__ import annotations

import hashlib
import os
import re
from typing import Optional

TRT_HINT = ("TensorRT is not importable: TensorRT comes with JetPack: `sudo apt-get install python3-libnvinfer` "
            "(or `sudo apt-get install nvidia-jetpack`); on a dGPU host `pip install tensorrt`")


def sha256_prefix(path: str, n: int = 12) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def slug(text: str) -> str:
    """Lower-case file-name-safe form of a version or device name (part of the engine cache key)."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(text)).strip("-").lower() or "unknown"


def engine_cache_name(onnx_path: str, trt_version: str, device_name: str, precision: str) -> str:
    """``<stem>-<sha12>-trt<ver>-<gpu>-<precision>.engine`` (pure; the cache key)."""
    stem = os.path.splitext(os.path.basename(onnx_path))[0]
    return f"{stem}-{sha256_prefix(onnx_path)}-trt{slug(trt_version)}-{slug(device_name)}-{precision}.engine"


def default_cache_dir(onnx_path: str) -> str:
    """Next to the bundle when writable, else ~/.cache/edge-action/engines."""
    d = os.path.join(os.path.dirname(os.path.abspath(onnx_path)), "engines")
    try:
        os.makedirs(d, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    d = os.path.join(os.path.expanduser("~"), ".cache", "edge-action", "engines")
    os.makedirs(d, exist_ok=True)
    return d


def parse_onnx(trt, onnx_path: str, workspace_mb: int, logger=None):
    """TensorRT builder, network parsed from ``onnx_path``, and a builder config with the workspace
    limit set, for TensorRT 8.2 (JetPack 4.6) to 10. Shared by the device-side build here and the
    host/Jetson builder in ``quantize/tensorrt.py`` (which adds INT8 calibration).
    Returns (builder, network, config, parser); the parser must outlive the network."""
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt, "NetworkDefinitionCreationFlag") and hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)  # TRT 8; a no-op flag in 10
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as f:
        if not parser.parse(f.read()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"{onnx_path}: TensorRT cannot parse this ONNX: {errors}")
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    else:  # TensorRT 8.2 (JetPack 4.6)
        config.max_workspace_size = int(workspace_mb) << 20
    return builder, network, config, parser


def build_engine(onnx_path: str, precision: str = "fp16", workspace_mb: int = 256, logger=None) -> bytes:
    """Serialized engine for ``onnx_path`` (needs tensorrt + a GPU)."""
    import tensorrt as trt

    if precision not in ("fp32", "fp16"):
        raise ValueError(f"edge builds fp32/fp16 engines only (got {precision}); build int8 on the host "
                         f"with edge-quantize --formats tensorrt")
    builder, network, config, _parser = parse_onnx(trt, onnx_path, workspace_mb, logger)
    if precision == "fp16" and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if hasattr(builder, "build_serialized_network"):
        data = builder.build_serialized_network(network, config)
    else:  # pragma: no cover - TensorRT 7
        data = builder.build_engine(network, config).serialize()
    if data is None:
        raise RuntimeError(f"{onnx_path}: TensorRT engine build failed (see the TensorRT log above)")
    return bytes(data)


def cached_engine(onnx_path: str, precision: str, device_name: str, cache_dir: Optional[str] = None) -> str:
    """Path of the cached engine for ``onnx_path``; built (and written atomically) on first use."""
    import tensorrt as trt

    cache_dir = cache_dir or default_cache_dir(onnx_path)
    path = os.path.join(cache_dir, engine_cache_name(onnx_path, trt.__version__, device_name, precision))
    if not os.path.exists(path):
        data = build_engine(onnx_path, precision)
        tmp = path + f".tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path
