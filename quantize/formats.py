"""The export functions of ``edge-quantize``, attached to the catalog's export rows.

What each export is (bundle format, precision, file ending, devices, what it needs first) is decided
once in ``edge.catalog.EXPORTS``; this module only attaches one ``export_<fmt>`` function to each
row (``EXPORTERS``) and builds ``FORMATS`` from both. ``edge-quantize --formats`` takes their names.
Devices say where an artifact is meant to run: ``cpu`` (any host/board with a TFLite or ONNX
runtime), ``coral`` (Edge TPU: int8 and mappable, best compiled), ``jetson`` (ONNX Runtime CUDA /
TensorRT).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from edge import catalog as C

from . import tflite_export


@dataclass(frozen=True)
class ExportFormat:
    name: str                 # CLI name
    suffix: str               # file name ending (after "<part>")
    precision: str            # bundle precision: float32 | float16 | dynamic | int8
    bundle_format: str        # bundle format: keras | tflite | edgetpu | onnx | tensorrt
    requires: str             # what the host needs to produce it
    devices: Tuple[str, ...]  # where the artifact runs
    export: Callable          # export_<fmt>(...) (see each function for its inputs)
    note: str = ""
    needs: Tuple[str, ...] = ()   # the exports whose outputs it starts from (edgetpu <- tflite-int8)


def export_keras(model, path: str, **_) -> str:
    model.save(path)
    return path


def export_tflite_fp32(model, path: str, **_) -> str:
    return tflite_export.export(model, path, tflite_export.TFLiteOptions("float32"))


def export_tflite_fp16(model, path: str, **_) -> str:
    return tflite_export.export(model, path, tflite_export.TFLiteOptions("float16"))


def export_tflite_dynamic(model, path: str, **_) -> str:
    return tflite_export.export(model, path, tflite_export.TFLiteOptions("dynamic"))


def export_tflite_int8(model, path: str, representative=None, io_dtype: str = "int8", **_) -> str:
    return tflite_export.export(model, path, tflite_export.TFLiteOptions(
        "int8", io_dtype=io_dtype, representative=representative))


def export_edgetpu(int8_tflite: str, out_dir: str, **_):
    """Compile an int8 .tflite with edgetpu_compiler -> CompileResult (produced=False + reason if absent)."""
    from .edgetpu_compiler import compile_model
    return compile_model(int8_tflite, out_dir)


def export_onnx(model, path: str, opset: int = 13, **_) -> str:
    from .onnx_export import export
    return export(model, path, opset=opset)


def export_onnx_fp16(float_onnx: str, path: str, **_) -> str:
    """``<part>_fp16.onnx`` from ``<part>.onnx`` (the steps call ``onnx_export.tensorrt_variants``,
    which makes both TensorRT variants with this and ``export_onnx_int8`` and verifies them)."""
    from .onnx_export import export_fp16
    return export_fp16(float_onnx, path)


def export_onnx_int8(int8_tflite: str, path: str, opset: int = 13, **_) -> str:
    """``<part>_int8.onnx`` (QuantizeLinear/DequantizeLinear) from the part's int8 TFLite."""
    from .onnx_export import export_qdq
    return export_qdq(int8_tflite, path, opset=opset)


def export_tensorrt(onnx_path: str, cache_dir: str, precision: str = "fp16", calibration=None, **_):
    """Build on the Jetson (needs tensorrt); raises TensorRTUnavailable elsewhere."""
    from .tensorrt import build_engine
    return build_engine(onnx_path, cache_dir, precision, calibration)


EXPORTERS: Dict[str, Callable] = {
    "keras": export_keras,
    "tflite-fp32": export_tflite_fp32,
    "tflite-fp16": export_tflite_fp16,
    "tflite-dynamic": export_tflite_dynamic,
    "tflite-int8": export_tflite_int8,
    "edgetpu": export_edgetpu,
    "onnx": export_onnx,
    "onnx-fp16": export_onnx_fp16,
    "onnx-int8": export_onnx_int8,
    "tensorrt": export_tensorrt,
}
FORMATS: Dict[str, ExportFormat] = {
    e.name: ExportFormat(e.name, e.suffix, e.precision, e.format, C.FORMAT[e.format].host_requires, e.devices,
                         EXPORTERS[e.name], e.note, e.needs)
    for e in C.EXPORTS}
DEFAULT_FORMATS = tuple(n for n in FORMATS if n != "keras")


def parse_formats(text: str) -> List[str]:
    """"a,b c" -> validated list (``all`` = every format). ValueError names the unknown ones."""
    names = [t for t in text.replace(",", " ").split() if t]
    if names == ["all"]:
        return list(FORMATS)
    bad = [n for n in names if n not in FORMATS]
    if bad:
        raise ValueError(f"unknown format(s) {', '.join(bad)} (known: {', '.join(FORMATS)}, all)")
    return names


def artifact_file(part: str, fmt: ExportFormat) -> str:
    return f"{part}{fmt.suffix}"


def table_text() -> str:
    """The format table as text (``edge-quantize --list-formats``)."""
    rows = [("format", "suffix", "precision", "needs on host", "devices")]
    for f in FORMATS.values():
        rows.append((f.name, f.suffix, f.precision, f.requires, ",".join(f.devices)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def tool_available(fmt: str) -> Optional[str]:
    """None if the host can produce ``fmt``; else why not (one line)."""
    if fmt == "edgetpu":
        from .edgetpu_compiler import unavailable_reason
        return unavailable_reason()
    if fmt == "tensorrt":
        from .tensorrt import available
        return available()
    if fmt == "onnx":
        try:
            import tf2onnx  # noqa: F401
        except ImportError:
            return "tf2onnx is not installed: pip install tf2onnx onnx onnxruntime"
    if fmt in ("onnx-fp16", "onnx-int8"):
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnx / onnxruntime are not installed (they make and verify the TensorRT ONNX variants): " \
                   "pip install onnx onnxruntime"
    return None
