"""Reference results per device and regression checks against them (pycoral's benchmark style).

pycoral keeps ``benchmarks/reference/inference_reference_<machine>.csv`` (model + latency) and
flags results beyond a variance threshold. Ours, ``benchmarks/reference/<device>.csv``, has one row
per (model, format) with the numbers a regression would show in::

    model,format,p50_ms,p99_ms,fps,f1
    lrcn-edge,tflite-int8:encoder+head,3.21,4.02,301.2,0.8512

A row regresses when a *checked* metric got worse beyond its tolerance: p50 or p99 latency grew, or
FPS fell, by more than ``tolerance`` (relative), or macro-F1 fell by more than ``f1_tolerance``
(absolute: F1 is already a fraction). Checked by default: p50 and F1. p99 and FPS (1000 / mean)
are dominated by preemption spikes when anything else runs on the machine, so they are compared and
shown ("worse") but only fail the run when asked for (``--check p50,p99,fps,f1``). Faster or more
accurate than the reference is reported as "improved" (update the reference then), not an error.
Reference rows for models/formats not in this run, and run rows without a reference, are listed.
References are measured on the named device and never made up: Jetson and Coral files appear when
someone runs ``edge-bench --write-reference`` there.
"""
import csv
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

COLUMNS = ("model", "format", "p50_ms", "p99_ms", "fps", "f1")
METRICS = {"p50": "p50_ms", "p99": "p99_ms", "fps": "fps", "f1": "f1"}
DEFAULT_CHECKED = ("p50_ms", "f1")


def parse_checked(text: str):
    """'p50,f1' -> ('p50_ms', 'f1'); ValueError naming an unknown metric."""
    out = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part not in METRICS:
            raise ValueError(f"unknown metric {part!r} (choose from {', '.join(METRICS)})")
        out.append(METRICS[part])
    if not out:
        raise ValueError("no metric to check")
    return tuple(out)
LOWER_IS_BETTER = ("p50_ms", "p99_ms")
HIGHER_IS_BETTER = ("fps",)


class ReferenceError(ValueError):
    """The reference CSV is missing or malformed (CLI: one line, exit 2)."""


def _num(v) -> Optional[float]:
    if v is None:
        return None
    v = str(v).strip()
    if v in ("", "-", "–", "nan", "None"):
        return None
    return float(v)


def read_reference(path: str) -> Dict[Tuple[str, str], dict]:
    if not os.path.isfile(path):
        raise ReferenceError(f"--compare {path}: no such file (make one with --write-reference)")
    out = {}
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    if not rows:
        raise ReferenceError(f"{path}: empty reference file")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ReferenceError(f"{path}: header must have columns {','.join(COLUMNS)} (missing {','.join(missing)})")
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise ReferenceError(f"{path}:{n}: {len(r)} fields, header has {len(header)}")
        d = dict(zip(header, (x.strip() for x in r)))
        try:
            row = {"model": d["model"], "format": d["format"], **{c: _num(d[c]) for c in COLUMNS[2:]}}
        except ValueError as e:
            raise ReferenceError(f"{path}:{n}: not a number ({e})") from e
        out[(row["model"], row["format"])] = row
    return out


def rows_from_report(report: dict) -> List[dict]:
    """One reference row per timed result of a report."""
    model = report["bundle"]["model"]
    out = []
    for r in report["results"]:
        if r["status"] != "ok" or not r.get("latency"):
            continue
        clip = r["latency"]["clip"]["steady"]
        f1 = (r.get("accuracy") or {}).get("f1_macro")
        out.append({"model": model, "format": r["key"], "p50_ms": clip["p50_ms"], "p99_ms": clip["p99_ms"],
                    "fps": r.get("fps"), "f1": f1})
    return out


def _comments(path: str) -> List[str]:
    with open(path, newline="") as f:
        return [ln.rstrip("\n") for ln in f if ln.startswith("#")]


def provenance(report: dict) -> str:
    """One comment line saying where and how the rows were measured (kept in the CSV)."""
    m = report.get("machine", {})
    la = m.get("load_avg") or [None]
    load = f", load average {la[0]:.2f} at start" if la and la[0] is not None else ""
    return (f"# {report['bundle']['model']}: {report.get('created', '')} on {m.get('cpu', '?')}, "
            f"{m.get('cores', '?')} cores, {m.get('os', '?')}{load}; threads "
            f"{report.get('settings', {}).get('threads', '?')}; {report.get('tool', {}).get('command', '')}")


def write_reference(report: dict, path: str, merge: bool = True) -> str:
    """Write (or update: rows of other models/formats are kept) a reference CSV from a report.
    ``#`` lines record where each model's rows were measured; the one of this model is replaced."""
    rows, comments = {}, []
    if merge and os.path.exists(path):
        rows = read_reference(path)
        model = report["bundle"]["model"]
        comments = [c for c in _comments(path) if not c.startswith(f"# {model}: ")]
    if "machine" in report:
        comments.append(provenance(report))
    for r in rows_from_report(report):
        rows[(r["model"], r["format"])] = r
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        for c in comments:
            f.write(c + "\n")
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for key in sorted(rows):
            r = rows[key]
            w.writerow([r["model"], r["format"]] + [
                "" if r.get(c) is None else (f"{r[c]:.4f}" if c == "f1" else f"{r[c]:.3f}") for c in COLUMNS[2:]])
    os.replace(tmp, path)
    return path


@dataclass
class Verdict:
    format: str
    metric: str
    reference: Optional[float]
    current: Optional[float]
    verdict: str           # ok | regression | improved | missing | new
    change: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _rel(cur: float, ref: float) -> float:
    return (cur - ref) / ref if ref else math.inf


def compare(report: dict, reference: Dict[Tuple[str, str], dict], tolerance: float = 0.15,
            f1_tolerance: float = 0.02, checked=DEFAULT_CHECKED) -> List[Verdict]:
    if tolerance < 0 or f1_tolerance < 0:
        raise ValueError("tolerances must be >= 0")
    model = report["bundle"]["model"]
    out: List[Verdict] = []
    current = {(r["model"], r["format"]): r for r in rows_from_report(report)}
    for key, cur in current.items():
        ref = reference.get(key)
        if ref is None:
            out.append(Verdict(key[1], "*", None, None, "new", "no reference row"))
            continue
        for m in COLUMNS[2:]:
            rv, cv = ref.get(m), cur.get(m)
            if rv is None or cv is None:
                continue
            bad = "regression" if m in checked else "worse"
            if m == "f1":
                d = cv - rv
                verdict = bad if d < -f1_tolerance else ("improved" if d > f1_tolerance else "ok")
                out.append(Verdict(key[1], m, rv, cv, verdict, f"{d:+.4f}"))
                continue
            r = _rel(cv, rv)
            if m in LOWER_IS_BETTER:
                verdict = bad if r > tolerance else ("improved" if r < -tolerance else "ok")
            else:
                verdict = bad if r < -tolerance else ("improved" if r > tolerance else "ok")
            out.append(Verdict(key[1], m, rv, cv, verdict, f"{r:+.1%}"))
    for key, ref in reference.items():
        if key[0] == model and key not in current:
            out.append(Verdict(key[1], "*", None, None, "missing", "in the reference, not timed in this run"))
    return out


def compare_summary(verdicts: List[Verdict], reference_path: str, tolerance: float, f1_tolerance: float,
                    checked=DEFAULT_CHECKED) -> dict:
    return {"reference": reference_path, "tolerance": tolerance, "f1_tolerance": f1_tolerance,
            "checked": list(checked),
            "regressions": sum(v.verdict == "regression" for v in verdicts),
            "rows": [v.to_dict() for v in verdicts]}
