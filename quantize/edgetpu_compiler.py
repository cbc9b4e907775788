"""Run Coral's ``edgetpu_compiler`` when it is installed, keep its output, and parse what it mapped.

The compiler exists only for x86-64 Linux (Debian/Ubuntu packages from Coral's apt repository).
Where it is missing, ``compile_models`` says so and how to install it, and returns results with
``produced=False`` so the bundle records that no ``*_edgetpu.tflite`` was made, and why.

What the compiler writes (real outputs quoted in ``tests/fixtures/edgetpu/``, each with its source):

* stdout: ``Edge TPU Compiler version V``, ``Model compiled successfully in N ms.`` (``Models ...``
  when several are co-compiled), then per model a block ``Input model:``, ``Output model:``, memory
  lines, ``Number of Edge TPU subgraphs``, ``Total number of operations``, ``Operation log: X.log``.
  ONLY when some operation stays on the CPU it adds ``Model successfully compiled but not all
  operations are supported ...`` and ``Number of operations that will run on Edge TPU: A`` /
  ``... on CPU: B``. A fully mapped model has neither line: its count is the total.
* with ``-s`` the operator table (``Operator  Count  Status``) follows on stdout; without it, ``See
  the operation log file for individual operation details.``
* ``<stem>_edgetpu.log`` per model: version, ``Input:``/``Output:`` and the SAME operator table.
* failures: ``Invalid model: X`` + ``Model not quantized``; ``ERROR: ...``; ``Compilation failed: ...``;
  ``Internal compiler error. Aborting!``; (v16) ``Compilation failed!`` at the end.

So stdout and the ``.log`` are two views of one model: the table is taken from ONE of them (the
larger, i.e. complete one: stdout tables may end with ``... All other operators were mapped
successfully``) and never added up. Counting both (the old code) doubled every op and called a
fully mapped model "not mappable".

Co-compilation (``compile_models([a, b], out)`` runs ``edgetpu_compiler -s -o out a b``): the
models share the Edge TPU's on-chip parameter cache; the order is the caching priority (the first
model's parameters are cached first). Each model still gets its own ``<stem>_edgetpu.tflite`` and
``<stem>_edgetpu.log`` (coral.ai/docs/edgetpu/compiler, "Co-compiling multiple models"). Models
co-compiled together must be used together: the cache identity is written into each output.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

INSTALL_HINT = ("edgetpu_compiler is not on PATH. It runs on x86-64 Debian/Ubuntu only: add Coral's apt "
                "repository (echo 'deb https://packages.cloud.google.com/apt coral-edgetpu-stable main' | "
                "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list; curl "
                "https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -), then "
                "`sudo apt-get update && sudo apt-get install edgetpu-compiler`; or compile the int8 "
                ".tflite in Coral's Colab notebook")
MAPPED = "Mapped to Edge TPU"
NOT_ALL = "not all operations are supported"
ALL_OTHERS = "All other operators were mapped successfully"

_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
_ROW = re.compile(r"^\s*([A-Z][A-Z0-9_]*(?::\S+)?)\s+(\d+)\s+(\S.*?)\s*$")
_HEADER = re.compile(r"^\s*Operator\s+Count\s+Status\s*$")
_ERRORS = re.compile(r"^\s*(ERROR:.*|Invalid model:.*|Model not quantized.*|Compilation failed.*|"
                     r"Internal compiler error.*|.*[Aa]borting!?\s*|.*Didn't find op for builtin opcode.*)$")


@dataclass
class CompilerLog:
    """What the compiler said about ONE model."""
    version: Optional[str] = None
    input_model: Optional[str] = None
    ops_total: Optional[int] = None
    ops_on_tpu: Optional[int] = None
    ops_on_cpu: Optional[int] = None
    subgraphs: Optional[int] = None
    on_chip_bytes: Optional[int] = None
    on_chip_remaining_bytes: Optional[int] = None
    off_chip_bytes: Optional[int] = None
    operators: List[Dict] = field(default_factory=list)   # {"op", "count", "status"}
    table_complete: bool = False        # the table lists every op (not "... All other operators")
    errors: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    success: bool = False

    @property
    def mappable(self) -> bool:
        """Compiled, and every operation runs on the Edge TPU (one subgraph, nothing on the CPU)."""
        return (self.success and bool(self.ops_total) and self.ops_on_tpu == self.ops_total
                and self.ops_on_cpu == 0)

    def cpu_operators(self) -> List[Dict]:
        return [o for o in self.operators if o["status"] != MAPPED]

    def to_dict(self) -> dict:
        return {"mappable": self.mappable, "success": self.success, "ops_total": self.ops_total,
                "ops_on_tpu": self.ops_on_tpu, "ops_on_cpu": self.ops_on_cpu, "subgraphs": self.subgraphs,
                "compiler_version": self.version, "on_chip_bytes": self.on_chip_bytes,
                "on_chip_remaining_bytes": self.on_chip_remaining_bytes,
                "off_chip_bytes": self.off_chip_bytes, "operators": self.operators,
                "errors": self.errors, "notes": self.notes, "source": "edgetpu_compiler"}


def _size(text: str, label: str) -> Optional[int]:
    m = re.search(re.escape(label) + r":\s*([\d.]+)\s*(B|KiB|MiB|GiB)", text)
    return int(float(m.group(1)) * _UNITS[m.group(2)]) if m else None


def _int(text: str, label: str) -> Optional[int]:
    m = re.search(re.escape(label) + r":\s*(\d+)", text)
    return int(m.group(1)) if m else None


def operator_tables(text: str) -> List[Tuple[List[Dict], bool]]:
    """Every ``Operator Count Status`` table in ``text``: (rows, complete) each."""
    tables: List[Tuple[List[Dict], bool]] = []
    rows: Optional[List[Dict]] = None
    complete = True
    for line in text.splitlines() + [""]:
        if _HEADER.match(line):
            if rows:
                tables.append((rows, complete))
            rows, complete = [], True
            continue
        if rows is None:
            continue
        r = _ROW.match(line)
        if r:
            rows.append({"op": r.group(1), "count": int(r.group(2)), "status": r.group(3)})
        elif ALL_OTHERS in line:
            complete = False
        elif line.strip() and rows:
            tables.append((rows, complete))
            rows = None
    if rows:
        tables.append((rows, complete))
    return tables


def _pick_table(tables: List[Tuple[List[Dict], bool]]) -> Tuple[List[Dict], bool]:
    """The same model's table may appear twice (stdout with -s, and the .log): take the fullest one."""
    if not tables:
        return [], False
    return max(tables, key=lambda t: (t[1], sum(o["count"] for o in t[0])))


def _counts(log: CompilerLog, text: str) -> None:
    """ops_on_tpu / ops_on_cpu: the summary lines, else the complete table, else 'all mapped'."""
    log.ops_on_tpu = _int(text, "Number of operations that will run on Edge TPU")
    log.ops_on_cpu = _int(text, "Number of operations that will run on CPU")
    table_total = sum(o["count"] for o in log.operators)
    table_cpu = sum(o["count"] for o in log.cpu_operators())
    if log.ops_on_tpu is None and log.operators and log.table_complete:
        log.ops_on_tpu, log.ops_on_cpu = table_total - table_cpu, table_cpu
    elif log.ops_on_tpu is None and log.ops_total is not None and log.success and NOT_ALL not in text:
        log.ops_on_tpu, log.ops_on_cpu = log.ops_total, 0    # the split is printed only when ops stay on the CPU
    elif log.ops_on_tpu is None and log.ops_total is not None and log.operators:   # "... All other operators"
        log.ops_on_tpu, log.ops_on_cpu = log.ops_total - table_cpu, table_cpu
    if log.ops_total is None:
        if log.ops_on_tpu is not None and log.ops_on_cpu is not None:
            log.ops_total = log.ops_on_tpu + log.ops_on_cpu
        elif log.table_complete:
            log.ops_total = table_total
    if log.table_complete and log.ops_total is not None and table_total != log.ops_total:
        log.notes.append(f"operator table lists {table_total} ops, the summary {log.ops_total}: "
                         "the summary counts are used")


def parse_log(text: str, op_log: Optional[str] = None) -> CompilerLog:
    """Parse the compiler's stdout for one model and/or its ``*_edgetpu.log`` (``op_log``).

    ``text`` may itself be a ``.log`` file or a stdout with ``-s``; ``op_log`` (the model's own
    ``.log``) supplies the complete operator table when given. Tables are never summed."""
    both = text + ("\n" + op_log if op_log else "")
    log = CompilerLog()
    m = re.search(r"Edge TPU Compiler version\s+(\S+)", both)
    log.version = m.group(1) if m else None
    m = re.search(r"^\s*Input(?: model)?:\s*(\S.*?)\s*$", both, re.M)
    log.input_model = m.group(1) if m else None
    log.ops_total = _int(text, "Total number of operations")
    log.subgraphs = _int(text, "Number of Edge TPU subgraphs")
    log.on_chip_bytes = _size(text, "On-chip memory used for caching model parameters")
    log.on_chip_remaining_bytes = _size(text, "On-chip memory remaining for caching model parameters")
    log.off_chip_bytes = _size(text, "Off-chip memory used for streaming uncached model parameters")
    log.operators, log.table_complete = _pick_table(operator_tables(both))
    log.errors = [ln.strip() for ln in both.splitlines() if _ERRORS.match(ln)]
    said_ok = bool(re.search(r"compiled successfully|successfully compiled|Compilation succeeded", both))
    failed = bool(re.search(r"Compilation failed|Invalid model|Model not quantized|Aborting", both))
    # a *_edgetpu.log alone (no stdout) exists only after a successful compile
    log.success = not failed and (said_ok or (not log.errors and log.version is not None and bool(log.operators)))
    _counts(log, both)
    return log


def split_models(stdout: str) -> Tuple[str, List[str]]:
    """(shared header, [block per model]) of a (co-)compilation's stdout; blocks start at 'Input model:'."""
    starts = [m.start() for m in re.finditer(r"^Input model:", stdout, re.M)]
    if not starts:
        return stdout, []
    blocks = [stdout[a:b] for a, b in zip(starts, starts[1:] + [len(stdout)])]
    return stdout[:starts[0]], blocks


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
    log_path: Optional[str] = None        # our copy: command line, compiler stdout/stderr, the model's .log
    log: Optional[CompilerLog] = None
    reason: str = ""                      # why nothing was produced
    command: List[str] = field(default_factory=list)
    co_compiled_with: List[str] = field(default_factory=list)   # the other outputs' file names
    cache_priority: int = 0               # 0 = its parameters were cached first

    def record(self) -> dict:
        """What a bundle artifact records about this compile (``edgetpu`` field)."""
        d = self.log.to_dict() if self.log else {"source": "edgetpu_compiler"}
        d["command"] = " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(self.command))
        if self.co_compiled_with:
            d["co_compiled_with"] = list(self.co_compiled_with)
            d["cache_priority"] = self.cache_priority
        return d


def edgetpu_name(tflite_path: str) -> str:
    stem, _ = os.path.splitext(os.path.basename(tflite_path))
    return stem + "_edgetpu.tflite"


def compile_command(tflite_paths: List[str], out_dir: str, extra_args: Optional[List[str]] = None,
                    compiler: str = "edgetpu_compiler") -> List[str]:
    """``edgetpu_compiler -s -o OUT_DIR [extra] MODEL...`` (several models = co-compiled, in cache order)."""
    return [compiler, "-s", "-o", out_dir] + list(extra_args or []) + list(tflite_paths)


def _read(path: str) -> Optional[str]:
    if not os.path.exists(path):
        return None
    with open(path, errors="replace") as f:
        return f.read()


def _block_for(path: str, blocks: List[str], index: int) -> str:
    name = os.path.basename(path)
    for b in blocks:
        m = re.match(r"Input model:\s*(.+)", b)
        if m and os.path.basename(m.group(1).strip()) == name:
            return b
    return blocks[index] if index < len(blocks) else ""


def _result_for(path: str, i: int, paths: List[str], out_dir: str, cmd: List[str], proc_out: str,
                rc: int) -> CompileResult:
    header, blocks = split_models(proc_out)
    trailer = "" if blocks else proc_out
    text = header + _block_for(path, blocks, i) + trailer
    if blocks and "Compilation failed" in proc_out and "Compilation failed" not in text:
        text += "\nCompilation failed!"
    stem = os.path.splitext(os.path.basename(path))[0]
    op_log = _read(os.path.join(out_dir, stem + "_edgetpu.log"))
    log_path = os.path.join(out_dir, stem + "_edgetpu_compiler.log")
    with open(log_path, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n" + proc_out + ("\n--- " + stem + "_edgetpu.log\n" + op_log
                                                         if op_log else ""))
    parsed = parse_log(text, op_log)
    out = os.path.join(out_dir, edgetpu_name(path))
    res = CompileResult(produced=False, log_path=log_path, log=parsed, command=list(cmd),
                        co_compiled_with=[edgetpu_name(p) for p in paths if p != path], cache_priority=i)
    if rc != 0 or not os.path.exists(out) or not parsed.success:
        first = (parsed.errors[-1] if parsed.errors else
                 next((ln for ln in proc_out.splitlines() if ln.strip()), f"exit code {rc}"))
        res.reason = f"edgetpu_compiler failed (exit code {rc}): {first.strip()[:200]}"
        return res
    res.produced, res.output = True, out
    return res


def compile_models(tflite_paths: List[str], out_dir: str, timeout: float = 600.0,
                   extra_args: Optional[List[str]] = None) -> List[CompileResult]:
    """Compile (and co-compile, when several) int8 .tflite files; one result per model, same order.

    Runs ``compile_command(...)``; the first model gets the on-chip parameter cache first. Each
    result keeps the command line and a copy of the output as ``<stem>_edgetpu_compiler.log``."""
    paths = list(tflite_paths)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(stems)) != len(stems):
        raise ValueError(f"co-compiled models need distinct file names (outputs would collide): {stems}")
    reason = unavailable_reason()
    if reason:
        return [CompileResult(produced=False, reason=reason) for _ in paths]
    os.makedirs(out_dir, exist_ok=True)
    cmd = compile_command(paths, out_dir, extra_args, compiler=find_compiler())
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [CompileResult(produced=False, command=cmd, reason=f"edgetpu_compiler timed out after "
                              f"{timeout:.0f}s") for _ in paths]
    out = (p.stdout or "") + ("\n" + p.stderr if p.stderr else "")
    return [_result_for(path, i, paths, out_dir, cmd, out, p.returncode) for i, path in enumerate(paths)]


def compile_model(tflite_path: str, out_dir: str, timeout: float = 600.0,
                  extra_args: Optional[List[str]] = None) -> CompileResult:
    """``edgetpu_compiler -s -o OUT_DIR MODEL``; the output is kept as ``<stem>_edgetpu_compiler.log``."""
    return compile_models([tflite_path], out_dir, timeout, extra_args)[0]
