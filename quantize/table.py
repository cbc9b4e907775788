"""The summary table printed at the end of ``edge-quantize``: one row per artifact."""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence

from train.report import human_bytes


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _f(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.3f}"


HEADER = ("artifact", "format", "part", "size", "sparsity", "macro-F1", "top-1 agr.", "Edge TPU ops", "status")


def artifact_row(a) -> List[str]:
    """``a``: an edge.bundle.Artifact (or a dict with the same keys)."""
    get = (lambda k: a.get(k)) if isinstance(a, dict) else (lambda k: getattr(a, k))
    m = get("metrics") or {}
    tpu = get("edgetpu")
    if tpu and tpu.get("ops_total"):
        ops = f"{tpu.get('ops_on_tpu', 0)}/{tpu['ops_total']}" + (" ok" if tpu.get("mappable") else "")
    else:
        ops = "-"
    fmt = f"{get('format')}/{get('precision')}"
    return [get("name"), fmt, get("part"), human_bytes(get("size_bytes")), _pct(get("sparsity")),
            _f(m.get("f1_macro")), _pct(m.get("top1_agreement")), ops, get("status")]


def render(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> str:
    rows = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def bundle_table(artifacts: Iterable, reference: Optional[dict] = None, skipped: Iterable = ()) -> str:
    """Table of a bundle's artifacts (+ the float Keras reference row and skipped formats)."""
    rows = []
    if reference:
        rows.append(["float keras (reference)", "keras/float32", "full", human_bytes(reference.get("size_bytes")),
                     _pct(reference.get("sparsity", 0.0)), _f(reference.get("f1_macro")), "100.0%", "-", "ok"])
    rows += [artifact_row(a) for a in artifacts]
    for s in skipped:
        name = "-".join(str(s[k]) for k in ("part", "precision", "format") if s.get(k))
        rows.append([name, s.get("format", "-"), s.get("part", "-"),
                     "-", "-", "-", "-", "-", "skipped"])
    return render(rows)
