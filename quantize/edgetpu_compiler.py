"""Run Coral's ``edgetpu_compiler`` when it is installed, keep its log, and parse what it mapped.

The compiler exists only for x86-64 Linux (Debian/Ubuntu packages from Coral's apt repository).
Where it is missing, ``compile_model`` says so and how to install it, and returns a result with
``produced=False`` so the bundle records that no ``*_edgetpu.tflite`` was made, and why.

The log parser reads the compiler's real output format (stdout summary and the ``*_edgetpu.log``
operator table), e.g.::

    Edge TPU Compiler version 15.0.340273435
    ...
    Number of Edge TPU subgraphs: 1
    Total number of operations: 36
    ...
    Number of operations that will run on Edge TPU: 2
    Number of operations that will run on CPU: 34

    Operator                       Count      Status

    MAX_POOL_2D                    6          More than one subgraph is not supported
    CONV_2D                        1          Mapped to Edge TPU

When every op maps, the summary lines about Edge TPU/CPU counts are absent; the operator table
(``Mapped to Edge TPU`` rows) then gives the count.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Dict, List, Optional

INSTALL_HINT = ("edgetpu_compiler is not on PATH. It runs on x86-64 Debian/Ubuntu only: add Coral's apt "
                "repository (echo 'deb https://packages.cloud.google.com/apt coral-edgetpu-stable main' | "
                "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list; curl "
                "https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -), then "
                "`sudo apt-get update && sudo apt-get install edgetpu-compiler`; or compile the int8 "
                ".tflite in Coral's Colab notebook")
MAPPED = "Mapped to Edge TPU"


@dataclass
class CompilerLog:
    version: Optional[str] = None
    ops_total: Optional[int] = None
    ops_on_tpu: Optional[int] = None
    ops_on_cpu: Optional[int] = None
    subgraphs: Optional[int] = None
    on_chip_bytes: Optional[int] = None
    off_chip_bytes: Optional[int] = None
    operators: List[Dict] = field(default_factory=list)   # {"op", "count", "status"}
    success: bool = False

    @property
    def mappable(self) -> bool:
        return bool(self.ops_total) and self.ops_on_tpu == self.ops_total

    def to_dict(self) -> dict:
        return {"mappable": self.mappable, "ops_total": self.ops_total, "ops_on_tpu": self.ops_on_tpu,
                "ops_on_cpu": self.ops_on_cpu, "subgraphs": self.subgraphs, "compiler_version": self.version,
                "on_chip_bytes": self.on_chip_bytes, "off_chip_bytes": self.off_chip_bytes,
                "operators": self.operators, "source": "edgetpu_compiler"}


_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
_ROW = re.compile(r"^\s*([A-Z][A-Z0-9_]*(?::\S+)?)\s+(\d+)\s+(\S.*?)\s*$")


def _size(text: str, label: str) -> Optional[int]:
    m = re.search(re.escape(label) + r":\s*([\d.]+)\s*(B|KiB|MiB|GiB)", text)
    return int(float(m.group(1)) * _UNITS[m.group(2)]) if m else None


def _int(text: str, label: str) -> Optional[int]:
    m = re.search(re.escape(label) + r":\s*(\d+)", text)
    return int(m.group(1)) if m else None


def parse_log(text: str) -> CompilerLog:
    """Parse compiler stdout and/or the ``*_edgetpu.log`` operator table (see module docstring)."""
    log = CompilerLog()
    m = re.search(r"Edge TPU Compiler version\s+(\S+)", text)
    log.version = m.group(1) if m else None
    log.ops_total = _int(text, "Total number of operations")
    log.ops_on_tpu = _int(text, "Number of operations that will run on Edge TPU")
    log.ops_on_cpu = _int(text, "Number of operations that will run on CPU")
    log.subgraphs = _int(text, "Number of Edge TPU subgraphs")
    log.on_chip_bytes = _size(text, "On-chip memory used for caching model parameters")
    log.off_chip_bytes = _size(text, "Off-chip memory used for streaming uncached model parameters")
    in_table = False
    for line in text.splitlines():
        if re.match(r"^\s*Operator\s+Count\s+Status\s*$", line):
            in_table = True
            continue
        if not in_table:
            continue
        r = _ROW.match(line)
        if r:
            log.operators.append({"op": r.group(1), "count": int(r.group(2)), "status": r.group(3)})
        elif line.strip() and not line.strip().startswith("..."):
            in_table = False if log.operators else in_table
    table_total = sum(o["count"] for o in log.operators)
    table_tpu = sum(o["count"] for o in log.operators if o["status"] == MAPPED)
    if log.ops_on_tpu is None and log.operators:
        all_rows = "All other operators were mapped successfully" not in text
        if all_rows:
            log.ops_on_tpu = table_tpu
            log.ops_on_cpu = table_total - table_tpu
    if log.ops_total is None:
        if log.ops_on_tpu is not None and log.ops_on_cpu is not None:
            log.ops_total = log.ops_on_tpu + log.ops_on_cpu
        elif log.operators:
            log.ops_total = table_total
    if log.ops_on_tpu is None and log.ops_total is not None and "not all operations are supported" not in text:
        log.ops_on_tpu, log.ops_on_cpu = log.ops_total, 0   # compiled, nothing left on the CPU
    log.success = bool(re.search(r"compiled successfully|Compilation succeeded", text)) or (
        log.version is not None and log.ops_on_tpu is not None)
    return log


def find_compiler() -> Optional[str]:
    return shutil.which("edgetpu_compiler")


def unavailable_reason() -> Optional[str]:
    """None when the compiler can run here; otherwise a one-line reason with how to get it."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return (f"edgetpu_compiler runs on x86-64 Linux only (this is {platform.system()} "
                f"{platform.machine()}); compile on an x86-64 Debian/Ubuntu host or in Coral's Colab")
    if find_compiler() is None:
        return INSTALL_HINT
    return None


@dataclass
class CompileResult:
    produced: bool
    output: Optional[str] = None          # path of the *_edgetpu.tflite
    log_path: Optional[str] = None        # our copy of stdout+stderr (+ the compiler's own .log)
    log: Optional[CompilerLog] = None
    reason: str = ""                      # why nothing was produced


def edgetpu_name(tflite_path: str) -> str:
    stem, _ = os.path.splitext(os.path.basename(tflite_path))
    return stem + "_edgetpu.tflite"


def compile_model(tflite_path: str, out_dir: str, timeout: float = 600.0,
                  extra_args: Optional[List[str]] = None) -> CompileResult:
    """``edgetpu_compiler -s -o OUT_DIR MODEL``; the log is kept as ``<stem>_edgetpu_compiler.log``."""
    reason = unavailable_reason()
    if reason:
        return CompileResult(produced=False, reason=reason)
    os.makedirs(out_dir, exist_ok=True)
    cmd = [find_compiler(), "-s", "-o", out_dir] + list(extra_args or []) + [tflite_path]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return CompileResult(produced=False, reason=f"edgetpu_compiler timed out after {timeout:.0f}s")
    text = (p.stdout or "") + ("\n" + p.stderr if p.stderr else "")
    stem = os.path.splitext(os.path.basename(tflite_path))[0]
    own_log = os.path.join(out_dir, stem + "_edgetpu.log")
    if os.path.exists(own_log):
        with open(own_log, errors="replace") as f:
            text += "\n" + f.read()
    log_path = os.path.join(out_dir, stem + "_edgetpu_compiler.log")
    with open(log_path, "w") as f:
        f.write(" ".join(cmd) + "\n" + text)
    out = os.path.join(out_dir, edgetpu_name(tflite_path))
    parsed = parse_log(text)
    if p.returncode != 0 or not os.path.exists(out):
        first = next((ln for ln in text.splitlines() if ln.strip()), f"exit code {p.returncode}")
        return CompileResult(produced=False, log_path=log_path, log=parsed,
                             reason=f"edgetpu_compiler failed: {first.strip()[:200]}")
    return CompileResult(produced=True, output=out, log_path=log_path, log=parsed)
