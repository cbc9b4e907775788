"""report.json (schema-versioned, validated before it is written), report.md (the table a person
reads) and PNG plots (latency distribution per format, size vs F1).

Validation uses ``jsonschema`` when installed (host) and a small built-in validator for the
subset of JSON Schema the report schema uses otherwise (devices: no extra dependency), so a report
that does not match ``benchmarks/schema/report.schema.json`` is never written anywhere.
matplotlib is imported only to draw plots; without it plots are skipped with a note.
"""

import json
import math
import os
import shlex
from typing import Any, Dict, List, Optional

SCHEMA_VERSION = 1
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema", "report.schema.json")
REPORT_JSON, REPORT_MD = "report.json", "report.md"
PLOT_LATENCY, PLOT_SIZE_F1 = "latency_distribution.png", "size_vs_f1.png"


class ReportInvalid(ValueError):
    """The report does not match its schema (a bug in edge-bench, never the user's input)."""


def load_schema(path: str = SCHEMA_PATH) -> dict:
    with open(path) as f:
        return json.load(f)


# -- validation ------------------------------------------------------------------------------
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def _errors(inst: Any, schema: dict, root: dict, path: str) -> List[str]:
    """Errors of ``inst`` against ``schema`` (subset: $ref, type, const, enum, anyOf, required,
    properties, additionalProperties, items, minimum, maximum)."""
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return [f"{path}: unsupported $ref {ref}"]
        node = root
        for part in ref[2:].split("/"):
            node = node[part]
        return _errors(inst, node, root, path)
    errs: List[str] = []
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_TYPES[x](inst) for x in types):
            return [f"{path}: {type(inst).__name__} is not of type {t}"]
    if "const" in schema and inst != schema["const"]:
        errs.append(f"{path}: {inst!r} != const {schema['const']!r}")
    if "enum" in schema and inst not in schema["enum"]:
        errs.append(f"{path}: {inst!r} not one of {schema['enum']}")
    if "anyOf" in schema and not any(not _errors(inst, s, root, path) for s in schema["anyOf"]):
        errs.append(f"{path}: matches none of anyOf")
    if _TYPES["number"](inst):
        if "minimum" in schema and inst < schema["minimum"]:
            errs.append(f"{path}: {inst} < minimum {schema['minimum']}")
        if "maximum" in schema and inst > schema["maximum"]:
            errs.append(f"{path}: {inst} > maximum {schema['maximum']}")
        if isinstance(inst, float) and not math.isfinite(inst):
            errs.append(f"{path}: {inst} is not finite (not valid JSON)")
    if isinstance(inst, dict):
        for k in schema.get("required", []):
            if k not in inst:
                errs.append(f"{path}: missing required {k!r}")
        props = schema.get("properties", {})
        addl = schema.get("additionalProperties", True)
        for k, v in inst.items():
            if k in props:
                errs += _errors(v, props[k], root, f"{path}.{k}")
            elif addl is False:
                errs.append(f"{path}: unexpected key {k!r}")
            elif isinstance(addl, dict):
                errs += _errors(v, addl, root, f"{path}.{k}")
    if isinstance(inst, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(inst):
            errs += _errors(v, schema["items"], root, f"{path}[{i}]")
    return errs


def validation_errors(report: dict, schema: Optional[dict] = None, use_jsonschema: bool = True) -> List[str]:
    schema = schema or load_schema()
    if use_jsonschema:
        try:
            import jsonschema
        except ImportError:
            use_jsonschema = False
    if use_jsonschema:
        v = jsonschema.Draft7Validator(schema)
        return [f"$.{'.'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in v.iter_errors(report)]
    return _errors(report, schema, schema, "$")


def validate_report(report: dict, schema: Optional[dict] = None) -> None:
    errs = validation_errors(report, schema)
    if errs:
        raise ReportInvalid("report.json does not match its schema:\n  " + "\n  ".join(errs[:20]))


# -- writing ---------------------------------------------------------------------------------
def _clean(o):
    """JSON-safe: NaN/inf -> None, numpy scalars -> python, tuples -> lists."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if hasattr(o, "item") and not isinstance(o, (str, bytes)):
        try:
            o = o.item()
        except Exception:
            pass
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def _atomic_write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_report(report: dict, out_dir: str, plots: bool = True) -> Dict[str, str]:
    """Validate, then write report.json, report.md and the plots into ``out_dir``."""
    report = _clean(report)
    validate_report(report)
    os.makedirs(out_dir, exist_ok=True)
    files = {}
    if plots:
        made, note = make_plots(report, out_dir)
        files.update(made)
        if note:
            report["notes"].append(note)
    _atomic_write(os.path.join(out_dir, REPORT_JSON), json.dumps(report, indent=1) + "\n")
    files["json"] = os.path.join(out_dir, REPORT_JSON)
    _atomic_write(os.path.join(out_dir, REPORT_MD), render_markdown(report, plots=files))
    files["md"] = os.path.join(out_dir, REPORT_MD)
    return files


# -- markdown --------------------------------------------------------------------------------
STATUS_MARK = {"ok": "✅ ok", "skipped": "⏭ skipped", "failed": "❌ failed"}


def _f(v, nd=2, dash="–"):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return dash
    return f"{v:.{nd}f}"


def _ms(v, dash="–"):
    """Milliseconds with precision that suits the magnitude (0.0123, 1.23, 123.4)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return dash
    return f"{v:.4f}" if v < 0.1 else f"{v:.3f}" if v < 10 else f"{v:.2f}" if v < 1000 else f"{v:.0f}"


def _fmt_label(r: dict) -> str:
    return f"`{r['format']}-{r['precision']}`" if r.get("precision") not in (None, "", "-") else f"`{r['format']}`"


def _steady(lat: Optional[dict], part: str) -> Optional[dict]:
    t = (lat or {}).get(part)
    return t["steady"] if t else None


def results_table(results: List[dict]) -> List[str]:
    lines = ["| Format | Parts | Status | Size (MB) | macro-F1 | Accuracy | ms/clip p50 | ms/clip p99 | FPS (clips/s) "
             "| ms/frame p50 | stream ms/pred p50 |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        clip = _steady(r.get("latency"), "clip")
        frame = _steady(r.get("latency"), "frame")
        stream = _steady(r.get("latency"), "streaming")
        acc = r.get("accuracy") or {}
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            _fmt_label(r), r["parts"], STATUS_MARK.get(r["status"], r["status"]),
            _f(r.get("size_mb"), 3), _f(acc.get("f1_macro"), 4), _f(acc.get("accuracy"), 4),
            _ms(clip and clip["p50_ms"]), _ms(clip and clip["p99_ms"]), _f(r.get("fps"), 1),
            _ms(frame and frame["p50_ms"]), _ms(stream and stream["p50_ms"])))
    return lines


def e2e_lines(e: dict) -> List[str]:
    if e.get("status") != "ok":
        return [f"End-to-end: **{e.get('status', 'skipped')}** — {e.get('reason', '')}"]
    c2p = e.get("capture_to_prediction") or {}
    model = e.get("artifact") or "?"
    if e.get("head"):
        model += f" + {e['head']}"
    out = [f"edge-run used `{model}` ({e.get('backend')}, {e.get('precision') or '?'}"
           f"{', streaming' if e.get('streaming') else ''}; config {e.get('config')}) for {_f(e.get('duration_s'), 1)} s.", "",
           "| Source | Device | Processed FPS | Frames | Predictions | Dropped | Drop rate | capture→prediction p50 (ms) "
           "| p99 (ms) | edge-run peak RSS (MB) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
           "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
               e.get("source"), e.get("device"), _f(e.get("fps"), 1), _f(e.get("frames"), 0),
               _f(e.get("predictions"), 0), _f(e.get("dropped"), 0),
               (f"{100 * e['drop_rate']:.2f}%" if e.get("drop_rate") is not None else "–"),
               _f(c2p.get("p50_ms")), _f(c2p.get("p99_ms")), _f(e.get("peak_rss_mb"), 1)),
           "", "| Stage | count | mean (ms) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    out[-2] = f"| Stage ({e.get('stages_source', '')}) | count | mean (ms) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |"
    for name, s in (e.get("stages") or {}).items():
        out.append(f"| {name} | {_f(s.get('count'), 0)} | {_f(s.get('mean_ms'), 3)} | {_f(s.get('p50_ms'), 3)} | "
                   f"{_f(s.get('p95_ms'), 3)} | {_f(s.get('p99_ms'), 3)} | {_f(s.get('max_ms'), 3)} |")
    if e.get("command"):
        out += ["", "Command: `" + " ".join(shlex.quote(c) for c in e["command"]) + "`"]
    return out


def _md_header(report: dict) -> List[str]:
    """Title, bundle, machine, runtimes, timing policy, warnings."""
    b, m, s, d = report["bundle"], report["machine"], report["settings"], report["device"]
    pol = s["policy"]
    L = [f"# edge-bench: {b['name']} ({b['model']}) on {d['resolved']}"
         + (f" ({d['config']})" if d.get("config") else ""), "",
         f"- bundle: `{b['path']}`{' — streaming (encoder per frame + head per prediction)' if b.get('streaming') else ''}",
         f"- machine: {m['cpu']}, {m.get('cores')} cores ({m.get('arch', '')}), {m['os']}, Python {m['python']}",
         "- runtimes: " + ", ".join(f"{k} {v}" for k, v in sorted(m["runtimes"].items()) if v) ,
         f"- timing: {pol['warmup_runs']} warm-up runs, then >= {pol['min_runs']} runs and >= {pol['min_seconds']} s "
         f"(max {pol['max_seconds']} s) per measurement, {s['threads']} thread{'s' if s['threads'] != 1 else ''}, batch 1",
         f"- created {report['created']} by `{report['tool']['command']}`", ""]
    if d.get("edgetpu_devices") is not None and d["resolved"] == "coral":
        L.insert(5, f"- Edge TPU: {d.get('edgetpu_used') or 'none found'} (visible: {d.get('edgetpu_devices')})")
    for w in report["warnings"]:
        L.append(f"> ⚠ {w}")
    if report["warnings"]:
        L.append("")
    return L


def _md_models(report: dict) -> List[str]:
    """The models table, streaming speedups, data, notes and skipped rows."""
    L: List[str] = []
    L += ["## Models", ""] + results_table(report["results"]) + [""]
    L += ["ms/clip: one whole clip (T frames) through the artifact(s), batch 1. For encoder+head rows that is "
          "T encoder calls + 1 head call; ms/frame is one encoder call and *stream ms/pred* the streaming cost of "
          "one new prediction (1 encoder call + 1 head call).", ""]
    stream_rows = [r for r in report["results"] if (r.get("latency") or {}).get("streaming_speedup")]
    if stream_rows:
        L += ["Streaming vs full clip (per prediction): " + ", ".join(
            f"`{r['key']}` {r['latency']['streaming_speedup']:.1f}x cheaper" for r in stream_rows), ""]
    data = report.get("data")
    if data:
        L += [f"Accuracy on {data.get('n_clips')} clips from `{data.get('source')}`"
              + (f"; ignored class folders: {', '.join(data['ignored_class_folders'])}" if data.get("ignored_class_folders") else "")
              + (f"; {len(data['unreadable'])} unreadable videos" if data.get("unreadable") else "") + ".", ""]
    else:
        L += ["No `--data`: accuracy not measured here (the bundle's host-measured F1 is in report.json, "
              "`host_metrics`).", ""]
    noted = [r for r in report["results"] if r["status"] == "ok" and r.get("note")]
    if noted:
        L += [f"- `{r['key']}`: {r['note']}" for r in noted] + [""]
    skipped = [r for r in report["results"] if r["status"] != "ok"]
    if skipped:
        L += ["### Skipped / failed", ""]
        L += [f"- `{r['key']}`" + ("" if r["parts"] != "full" or ":" in r["key"] else " (full)")
              + f" **{r['status']}**: {r['reason']}" for r in skipped]
        L.append("")
    return L


def _md_latency(report: dict) -> List[str]:
    """Per-part latency detail of every timed row."""
    L: List[str] = []
    L += ["## Latency detail", ""]
    if any(r.get("latency") for r in report["results"]):
        L += ["| Format | Part | init (ms) | first (ms) | count | min | mean | std | p50 | p90 | p95 | p99 |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    else:
        L.append("Nothing was timed on this device.")
    for r in report["results"]:
        lat = r.get("latency")
        if not lat:
            continue
        for part in ("clip", "frame", "head", "streaming"):
            t = lat.get(part)
            if not t:
                continue
            st = t["steady"]
            L.append(f"| `{r['key']}` | {part} | {_f(t.get('init_ms'), 1)} | {_ms(t['first_ms'])} | {st['count']} | "
                     f"{_ms(st['min_ms'])} | {_ms(st['mean_ms'])} | {_ms(st['std_ms'])} | {_ms(st['p50_ms'])} | "
                     f"{_ms(st['p90_ms'])} | {_ms(st['p95_ms'])} | {_ms(st['p99_ms'])} |")
    L.append("")
    return L


def _md_overhead(report: dict) -> List[str]:
    """The harness-overhead honesty check, when it ran."""
    L: List[str] = []
    o = report.get("overhead")
    if o:
        L += ["## Harness overhead (honesty check)", ""]
        if o["status"] != "ok":
            L += [f"{o['status']}: {o['reason']}", ""]
        else:
            e, b, r = o["edge_bench_ms"], o["bare_invoke_ms"], o["overhead_by_quantile"]
            L += [f"`{o['model']}`, {o['threads']} thread{'s' if o['threads'] != 1 else ''}, {o['rounds']} interleaved rounds x {o['runs_per_round']} "
                  f"calls per side (benchmarks/bench_overhead.py):", "",
                  "| | p10 (ms) | p25 (ms) | p50 (ms) | mean (ms) |", "|---|---:|---:|---:|---:|",
                  f"| edge-bench `Backend.infer` | {_ms(e['p10'])} | {_ms(e['p25'])} | {_ms(e['p50'])} | {_ms(o['edge_bench_mean_ms'])} |",
                  f"| bare `Interpreter.invoke()` loop | {_ms(b['p10'])} | {_ms(b['p25'])} | {_ms(b['p50'])} | {_ms(o['bare_invoke_mean_ms'])} |",
                  f"| overhead | {r['p10']:+.2%} | {r['p25']:+.2%} | {r['p50']:+.2%} | {o['overhead_of_means']:+.2%} |", "",
                  f"Verdict on {o['statistic']} (calls no other process interrupted): **{o['overhead']:+.2%}**, limit "
                  f"{o['limit']:.0%}: **{o['verdict']}**.", ""]
    return L


def _md_memory(report: dict) -> List[str]:
    """Peak RSS, per-row memory deltas, tegrastats power."""
    L: List[str] = []
    d = report["device"]
    mem = report["memory"]
    L += ["## Memory and power", "", f"- peak RSS of edge-bench: {_f(mem.get('peak_rss_mb'), 1)} MB ({mem['source']})"]
    for r in report["results"]:
        mm = r.get("memory") or {}
        if mm.get("init_delta_mb") is not None:
            L.append(f"- `{r['key']}`: RSS +{_f(mm['init_delta_mb'], 1)} MB at load, +{_f(mm.get('overall_delta_mb'), 1)} MB after runs")
    p = report.get("power")
    if p:
        L.append(f"- tegrastats during the model timings ({p['samples']} samples): board power mean {_f(p.get('power_mw_mean'), 0)} mW, "
                 f"max {_f(p.get('power_mw_max'), 0)} mW; max temps " +
                 ", ".join(f"{k} {v:.1f}°C" for k, v in sorted((p.get('temps_c_max') or {}).items())))
    elif d["resolved"] == "jetson":
        L.append("- tegrastats not found: no power/temperature numbers")
    L.append("")
    return L


def _md_compare(report: dict) -> List[str]:
    """Verdicts against a reference CSV."""
    L: List[str] = []
    if report.get("compare"):
        c = report["compare"]
        L += [f"## Compared with `{c['reference']}` (tolerance {c['tolerance']:.0%}, F1 {c['f1_tolerance']:.3f}; "
              f"failing on: {', '.join(c.get('checked', []))})", "",
              "| Format | metric | reference | now | change | verdict |", "|---|---|---:|---:|---:|---|"]
        for row in c["rows"]:
            L.append(f"| `{row['format']}` | {row['metric']} | {_f(row.get('reference'), 3)} | {_f(row.get('current'), 3)} | "
                     f"{row.get('change', '')} | {row['verdict']} |")
        L += ["", f"**{c['regressions']} regression(s)**" if c["regressions"] else "No regressions.", ""]
    return L


def render_markdown(report: dict, plots: Optional[Dict[str, str]] = None) -> str:
    L = _md_header(report) + _md_models(report) + _md_latency(report)
    L += ["## End-to-end (live source)", ""] + e2e_lines(report["end_to_end"]) + [""]
    L += _md_overhead(report) + _md_memory(report) + _md_compare(report)
    if plots and (plots.get("latency") or plots.get("size_f1")):
        L += ["## Plots", ""]
        if plots.get("latency"):
            L.append(f"![latency distribution]({PLOT_LATENCY})")
        if plots.get("size_f1"):
            L.append(f"![size vs F1]({PLOT_SIZE_F1})")
        L.append("")
    if report["notes"]:
        L += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    return "\n".join(L)


# -- plots -----------------------------------------------------------------------------------
def make_plots(report: dict, out_dir: str):
    """(files, note). Latency distribution per timed row and size vs F1."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}, "matplotlib not installed: plots skipped (pip install matplotlib)"
    files = {}
    rows = [r for r in report["results"] if r["status"] == "ok" and (r.get("latency") or {}).get("clip")]
    series = [(r["key"], r["latency"]["clip"].get("samples_ms") or []) for r in rows]
    series = [(k, v) for k, v in series if v]
    if series:
        fig, ax = plt.subplots(figsize=(8, 0.6 * len(series) + 1.6))
        ax.boxplot([v for _, v in series], vert=False, showfliers=True, whis=(1, 99),
                   flierprops={"markersize": 2, "alpha": 0.4})
        ax.set_yticks(range(1, len(series) + 1))
        ax.set_yticklabels([k for k, _ in series])
        lo = min(min(v) for _, v in series)
        hi = max(max(v) for _, v in series)
        if lo > 0 and hi / lo > 30:
            ax.set_xscale("log")
        ax.invert_yaxis()                          # first row of the table on top
        ax.set_xlabel("ms per clip (box: p25-p75, line: p50, whiskers: p1-p99)")
        ax.set_title(f"{report['bundle']['name']} on {report['device']['resolved']}: latency per clip")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, PLOT_LATENCY), dpi=110)
        plt.close(fig)
        files["latency"] = os.path.join(out_dir, PLOT_LATENCY)
    pts = []
    for r in report["results"]:
        if r.get("size_mb") is None or r["status"] == "skipped" and not r.get("host_metrics"):
            continue
        f1 = (r.get("accuracy") or {}).get("f1_macro")
        src = "measured"
        if f1 is None:
            f1 = (r.get("host_metrics") or {}).get("f1_macro")
            src = "host (bundle.json)"
        if f1 is not None:
            pts.append((r["key"], r["size_mb"], f1, src))
    if pts:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for src, marker in (("measured", "o"), ("host (bundle.json)", "^")):
            sel = [p for p in pts if p[3] == src]
            if sel:
                ax.scatter([p[1] for p in sel], [p[2] for p in sel], marker=marker, label=f"F1 {src}")
        xspan = (max(p[1] for p in pts) - min(p[1] for p in pts)) or 1.0
        yspan = (max(p[2] for p in pts) - min(p[2] for p in pts)) or 1.0
        done: List[tuple] = []
        for k, x, y, _ in pts:                     # stagger labels of points close to earlier ones
            n = sum(abs(x - px) < 0.1 * xspan and abs(y - py) < 0.04 * yspan for px, py in done)
            done.append((x, y))
            ax.annotate(k, (x, y), textcoords="offset points", xytext=(5, 4 - 10 * n), fontsize=7)
        lo, hi = min(p[2] for p in pts), max(p[2] for p in pts)
        pad = max(0.05, (hi - lo) * 0.15)
        ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad) if hi + pad > lo - pad + 0.1 else lo - pad + 0.1)
        ax.margins(x=0.3)
        ax.set_xlabel("size (MB)")
        ax.set_ylabel("macro-F1")
        ax.set_title(f"{report['bundle']['name']}: size vs macro-F1")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, PLOT_SIZE_F1), dpi=110)
        plt.close(fig)
        files["size_f1"] = os.path.join(out_dir, PLOT_SIZE_F1)
        return files, None
    return files, (f"{PLOT_SIZE_F1} not drawn: no macro-F1 for any artifact (pass --data, or a bundle whose "
                   "artifacts carry host-measured metrics)")
