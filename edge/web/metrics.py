"""Prometheus text exposition format (version 0.0.4), no client library needed."""
import math
from typing import Dict, Iterable, List, Tuple

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(v):
    # type: (str) -> str
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(v):
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)


def render(samples):
    # type: (Iterable[Tuple[str, Dict[str, str], float, str, str]]) -> str
    """Samples ``(name, labels, value, type, help)`` -> text; one HELP/TYPE per metric name."""
    groups = {}  # type: Dict[str, list]
    meta = {}  # type: Dict[str, Tuple[str, str]]
    for name, labels, value, typ, help_ in samples:
        groups.setdefault(name, []).append((labels, value))
        meta.setdefault(name, (typ, help_))
    lines = []  # type: List[str]
    for name in groups:
        typ, help_ = meta[name]
        lines.append("# HELP {} {}".format(name, help_))
        lines.append("# TYPE {} {}".format(name, typ))
        for labels, value in groups[name]:
            lab = ",".join('{}="{}"'.format(k, _escape(v)) for k, v in sorted(labels.items()))
            lines.append("{}{} {}".format(name, "{" + lab + "}" if lab else "", _value(value)))
    return "\n".join(lines) + "\n"
