"""edge-bench: benchmark every artifact of a bundle this machine can run, and write a report.

Runs on the host and on the devices (Jetson, Coral): imports ``edge`` + numpy only; matplotlib
just for the plots (skipped with a note when absent), tqdm for progress when present.
"""

import argparse
import datetime as _dt
import os
import shlex
import sys
from typing import List, Optional

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Benchmark a model bundle (from edge-quantize) on this machine and write report.json, report.md
and PNG plots into --out.

For every artifact the chosen device can run (cpu: TFLite float32/float16/dynamic/int8 + ONNX;
coral: Edge TPU; jetson: TensorRT + ONNX on CUDA) it measures, the way TFLite's benchmark_model
does: load/init time, the first inference, warm-up runs, then at least --min-runs runs and
--min-seconds seconds; count, min, mean, std, p50/p90/p95/p99 ms per clip (streaming bundles:
also per frame, per head call and per streaming prediction). With --data it scores each artifact
(macro-F1, accuracy) through the same path as edge-eval. It then runs edge-run on a live source
(--source, default the synthetic test:// camera at 640x480, 30 fps) for processed FPS, dropped
frames, per-stage latency and capture-to-prediction p50/p99. Formats that cannot run here are
listed as skipped with the reason.
"""

EPILOG = """\
examples:
  edge-bench --model work/bundles/lrcn-edge --out work/reports/x86-cpu
  edge-bench --model work/bundles/lrcn-edge --data ../shared/data/ucf101-mini --max-clips 60 \\
      --out work/reports/x86-cpu --compare benchmarks/reference/x86-cpu.csv
  edge-bench --model bundle --formats tflite-int8 onnx --min-runs 20 --min-seconds 1 --no-e2e --out /tmp/r
  edge-bench --device coral --model bundle --edgetpu-device usb:0 --out report-coral \\
      --write-reference benchmarks/reference/coral-usb.csv         # on a machine with a Coral
  edge-bench --device jetson --model bundle --out report-orin       # on a Jetson (TensorRT, tegrastats)
  edge-bench --device jetson-orin-nano --model bundle --out report-orin \
      --compare benchmarks/reference/jetson-orin-nano.csv            # settings from device_configs/

--formats selectors: a format (tflite, onnx, edgetpu, tensorrt), a format-precision (tflite-int8:
its whole-clip and encoder+head rows) or one row (tflite-int8:full, tflite-int8:encoder+head).
exit codes: 0 done; 1 a regression vs --compare, or an artifact that should run here failed;
2 bad input (message on one line, nothing written).
"""


class UsageError(Exception):
    pass


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number")
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {s}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from .e2e import DEFAULT_SOURCE  # light module: no runtime imports
    p = argparse.ArgumentParser(prog="edge-bench", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="BUNDLE", help="bundle directory (bundle.json) from edge-quantize")
    p.add_argument("--out", required=True, metavar="DIR", help="where report.json, report.md and the PNGs go")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="cpu, coral, jetson, auto (default: jetson if this is a Jetson, coral if an Edge TPU "
                        "is visible, else cpu), or a device config name (x86-cpu, rpi4-cpu, coral-usb, "
                        "coral-devboard, jetson-nano, jetson-orin-nano, jetson-xavier-nx): its device, "
                        "threads, Edge TPU and TensorRT settings, also passed to edge-run")
    p.add_argument("--formats", nargs="+", metavar="SEL", help="only these formats (see below); others are listed as skipped")
    p.add_argument("--threads", type=_positive_int, metavar="N", default=None,
                   help="CPU threads for TFLite/ONNX Runtime (default: all cores, %d here)" % (os.cpu_count() or 1))
    g = p.add_argument_group("timing (benchmark_model style)")
    g.add_argument("--min-runs", type=_positive_int, metavar="N", default=50, help="at least this many timed runs (default 50)")
    g.add_argument("--min-seconds", type=_nonneg_float, metavar="S", default=5.0, help="and at least this long (default 5 s)")
    g.add_argument("--max-seconds", type=_nonneg_float, metavar="S", default=150.0,
                   help="stop a slow model after this long even if --min-runs is not reached (default 150 s)")
    g.add_argument("--warmup", type=int, default=10, metavar="N", help="warm-up runs after the first inference (default 10)")
    g.add_argument("--warmup-seconds", type=_nonneg_float, metavar="S", default=0.5, help="and warm up at least this long (default 0.5 s)")
    g = p.add_argument_group("accuracy")
    g.add_argument("--data", metavar="DIR", help="raw UCF-style folder <Class>/<video> to score each artifact on")
    g.add_argument("--clips", metavar="FILE",
                   help="only these clips of --data: a UCF list (testlist01.txt) or a run's split.json (test entries)")
    g.add_argument("--max-clips", type=_positive_int, metavar="N", help="at most N clips, taken class by class")
    g = p.add_argument_group("end-to-end")
    g.add_argument("--source", default=DEFAULT_SOURCE, metavar="URI", help=f"live source for edge-run (default {DEFAULT_SOURCE})")
    g.add_argument("--e2e-seconds", type=_nonneg_float, metavar="S", default=10.0, help="how long edge-run runs (default 10 s)")
    g.add_argument("--no-e2e", action="store_true", help="skip the end-to-end pipeline run")
    g = p.add_argument_group("devices")
    g.add_argument("--edgetpu-device", metavar="DEV", help="Edge TPU to use: usb, usb:0, pci:0 (default: the first found)")
    g = p.add_argument_group("reference results")
    g.add_argument("--compare", metavar="CSV", help="flag regressions against a reference CSV (benchmarks/reference/<device>.csv)")
    g.add_argument("--tolerance", type=_nonneg_float, metavar="FRAC", default=0.15,
                   help="relative change of p50/p99/FPS counted as a regression (default 0.15)")
    g.add_argument("--f1-tolerance", type=_nonneg_float, metavar="F1", default=0.02, help="macro-F1 drop counted as a regression (default 0.02)")
    g.add_argument("--check", default="p50,f1", metavar="METRICS",
                   help="metrics whose regression fails the run (exit 1): any of p50,p99,fps,f1 (default p50,f1; "
                        "p99 and fps, mean-based, swing with other load and are shown as 'worse' unless listed)")
    g.add_argument("--write-reference", metavar="CSV", help="write/update a reference CSV from this run")
    p.add_argument("--overhead-check", action="store_true",
                   help="also time the float32 TFLite model against a bare Interpreter.invoke() loop, interleaved "
                        "(benchmarks/bench_overhead.py), and put the harness overhead in the report")
    p.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return p


def _check_inputs(args) -> None:
    """Every input problem is found before any work starts (and before anything is written)."""
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out}: exists and is not a directory")
    if args.data and not os.path.isdir(args.data):
        raise UsageError(f"--data {args.data}: not a directory")
    if args.clips and not args.data:
        raise UsageError("--clips needs --data (the folder the listed clips are in)")
    if args.clips and not os.path.isfile(args.clips):
        raise UsageError(f"--clips {args.clips}: no such file")
    if args.max_clips and not args.data:
        raise UsageError("--max-clips needs --data")
    if args.warmup < 0:
        raise UsageError(f"--warmup must be >= 0, got {args.warmup}")
    if args.max_seconds <= 0:
        raise UsageError("--max-seconds must be > 0")
    if not args.no_e2e and args.e2e_seconds <= 0:
        raise UsageError("--e2e-seconds must be > 0 (or pass --no-e2e)")
    from .compare import parse_checked
    try:
        args.checked = parse_checked(args.check)
    except ValueError as e:
        raise UsageError(f"--check {args.check}: {e}")
    if args.write_reference and os.path.isdir(args.write_reference):
        raise UsageError(f"--write-reference {args.write_reference}: is a directory, give a .csv file")


from edge.catalog import DEVICE_NAMES  # noqa: E402

DEVICES = DEVICE_NAMES + ("auto",)


def _config_name(device: str):
    """The device config this machine maps to (x86-cpu, coral-usb, jetson-orin-nano ...): the name
    reference CSVs are filed under. None when the runner's edge.detect is not installed."""
    try:
        from edge.detect import config_for_device
        return config_for_device(device)
    except Exception:
        return None


def _device_config(name: str):
    """--device given as a device config name -> the runner's DeviceConfig (UsageError if unknown)."""
    try:
        from edge.config import ConfigError, available_configs, load_config
    except ImportError:
        raise UsageError(f"--device {name}: must be one of {', '.join(DEVICES)} (device configs need edge.config)")
    try:
        return load_config(name)
    except ConfigError as e:
        raise UsageError(f"--device {name}: not one of {', '.join(DEVICES)} and not a device config "
                         f"({str(e).splitlines()[0]}; known: {', '.join(sorted(available_configs()))})")


def _overhead(bundle, threads: int) -> dict:
    """The honesty check on the bundle's float32 TFLite model (full, else encoder)."""
    from .bench_overhead import measure
    arts = bundle.find(format="tflite", precision="float32", part="full") or \
        bundle.find(format="tflite", precision="float32", part="encoder")
    if not arts:
        return {"status": "skipped", "reason": "no float32 TFLite artifact in the bundle"}
    try:
        r = measure(bundle.path(arts[0]), threads=threads)
    except Exception as e:  # the check is extra information: never lose the report over it
        return {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
    r["model"] = arts[0].file
    return dict(r, status="ok", reason="")


def _log(args, msg: str) -> None:
    if not args.quiet:
        print(msg, file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args, argv)
    except UsageError as e:
        print(f"edge-bench: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("edge-bench: interrupted, no report written", file=sys.stderr)
        return 130


def _load_inputs(args):
    """The bundle and the reference CSV (if any); UsageError for anything unreadable."""
    from edge.bundle import BundleError, load

    from . import compare as C
    _check_inputs(args)
    try:
        bundle = load(args.model)
    except (BundleError, OSError) as e:
        raise UsageError(str(e).splitlines()[0])
    reference = None
    if args.compare:
        try:
            reference = C.read_reference(args.compare)
        except C.ReferenceError as e:
            raise UsageError(str(e))
    if args.write_reference and os.path.exists(args.write_reference):
        try:
            C.read_reference(args.write_reference)
        except C.ReferenceError as e:
            raise UsageError(f"--write-reference would merge into an unreadable file: {e}")
    return bundle, reference


def _resolve_device(args) -> dict:
    """--device (a device kind, auto, or a device config) -> device, config and runtime settings."""
    from .machine import detect_device
    cfg = None if args.device in DEVICES else _device_config(args.device)
    if cfg is not None:
        device, config_name = cfg.device, cfg.name
    else:
        device = detect_device() if args.device == "auto" else args.device
        config_name = _config_name(device)
    return {
        "cfg": cfg, "device": device, "config_name": config_name,
        "threads": args.threads or (cfg.threads if cfg is not None and cfg.threads > 0 else None) or os.cpu_count() or 1,
        "edgetpu_device": args.edgetpu_device or (cfg.edgetpu_device if cfg is not None and cfg.edgetpu_device else None),
        "trt_precision": cfg.tensorrt_precision if cfg is not None else "fp16",
        "head_backend": cfg.head_backend if cfg is not None else None,
    }


def _targets(args, bundle, dev: dict):
    """The report rows (edge.select's pairing, the catalog's devices); a --formats typo is an error."""
    from .targets import plan_targets, selected
    targets = plan_targets(bundle, dev["device"], args.formats, head_backend=dev["head_backend"])
    for t in targets:
        if t.options.get("precision"):
            t.options["precision"] = dev["trt_precision"]
    for sel in args.formats or []:  # a typo must not silently skip everything
        if not any(selected(t.key, t.format, t.precision, [sel], t.parts) for t in targets):
            raise UsageError(f"--formats {sel}: matches no artifact of {bundle.root} "
                             f"(rows: {', '.join(sorted({t.key for t in targets}))})")
    return targets


def _machine_notes(args, machine: dict):
    """(warnings, notes) about the machine the numbers come from."""
    warnings, notes = [], []
    if machine.get("governor_warning"):
        warnings.append(machine["governor_warning"])
    elif not machine.get("governors"):
        notes.append("CPU frequency governor not readable here (VM/container): cannot tell whether scaling is on")
    load_avg = machine.get("load_avg")
    if load_avg and machine.get("cores") and load_avg[0] > 0.5 * machine["cores"]:
        warnings.append(f"machine busy when the benchmark started (load average {load_avg[0]:.2f} on "
                        f"{machine['cores']} cores): latencies include contention from other processes")
    for w in warnings:
        _log(args, f"WARNING: {w}")
    return warnings, notes


def _eval_set(args, bundle, pbar, notes: list):
    """--data decoded once with the bundle's sampling (edge.evaluation), or None."""
    from .accuracy import DataError, load_eval_set
    if not args.data:
        return None
    _log(args, f"edge-bench: decoding clips from {args.data} ({bundle.input.frames} frames at "
               f"{bundle.input.height}x{bundle.input.width}, the bundle's sampling)")
    try:
        eval_set = load_eval_set(args.data, bundle.labels, bundle.input, bundle.sampling, args.clips,
                                 args.max_clips, progress=pbar)
    except DataError as e:
        raise UsageError(str(e))
    if eval_set.unreadable:
        notes.append(f"{len(eval_set.unreadable)} videos in --data could not be decoded and were left out")
    return eval_set


def _time_all(args, bundle, targets, dev: dict, policy, eval_set, pbar, notes: list):
    """Every pending row timed (and scored); (report entries in row order, power summary)."""
    from .machine import TegrastatsMonitor
    from .measure import measure_target, skipped_entry
    device = dev["device"]
    todo = [t for t in targets if t.status == "pending"]
    _log(args, f"edge-bench: {bundle.name} ({bundle.model}) on {device}: {len(todo)} to time, "
               f"{len(targets) - len(todo)} skipped; {dev['threads']} threads")
    if not todo:
        notes.append(f"nothing in this bundle runs on --device {device}")
    results = {}
    with TegrastatsMonitor() as tegra:
        for t in pbar(todo, desc="benchmark", total=len(todo)):
            _log(args, f"  {t.key}: timing ...")
            entry = measure_target(bundle, t, policy, dev["threads"], eval_set,
                                   device_option=dev["edgetpu_device"] if device == "coral" else
                                   ("cuda:0" if device == "jetson" and t.format == "onnx" else None),
                                   progress=pbar)
            results[id(t)] = entry
            _log_entry(args, t, entry)
        power = tegra.summary() if tegra.available else None
    if device == "jetson" and not tegra.available:
        notes.append("tegrastats not on PATH: no power/temperature numbers")
    return [results.get(id(t)) or skipped_entry(bundle, t) for t in targets], power, todo


def _log_entry(args, t, entry: dict) -> None:
    clip = (entry.get("latency") or {}).get("clip")
    if entry["status"] == "ok":
        acc = entry.get("accuracy")
        _log(args, f"  {t.key}: p50 {clip['steady']['p50_ms']:.3f} ms/clip, p99 {clip['steady']['p99_ms']:.3f}"
                   + (f", macro-F1 {acc['f1_macro']:.4f}" if acc else ""))
    else:
        _log(args, f"  {t.key}: {entry['status']}: {entry['reason']}")


def _end_to_end(args, bundle, dev: dict) -> dict:
    from .e2e import E2EConfig, run_e2e
    if args.no_e2e:
        return {"status": "skipped", "reason": "--no-e2e", "source": args.source}
    _log(args, f"edge-bench: end-to-end: edge-run on {args.source} for {args.e2e_seconds:g} s ...")
    cfg = dev["cfg"]
    e2e = run_e2e(E2EConfig(bundle=bundle.root, device=dev["device"], source=args.source, seconds=args.e2e_seconds,
                            threads=args.threads,
                            extra_args=("--config", cfg.name) if cfg is not None else ()), workdir=args.out)
    _log(args, f"  end-to-end: {e2e['status']}" + (f": {e2e['reason']}" if e2e.get("reason") else
                                                   f", {e2e.get('fps')} fps, dropped {e2e.get('dropped')}"))
    return e2e


def _report(args, argv, bundle, dev, policy, machine, parts: dict) -> dict:
    """report.json's content (schema: benchmarks/schema/report.schema.json)."""
    from edge import __version__

    from .machine import edgetpu_devices
    from .memory import peak_rss_mb, peak_rss_source
    device = dev["device"]
    edgetpus = edgetpu_devices() if device == "coral" else None
    eval_set = parts["eval_set"]
    return {
        "schema_version": 1,
        "tool": {"name": "edge-bench", "version": __version__, "command": "edge-bench " + " ".join(shlex.quote(a) for a in argv)},
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bundle": {"path": os.path.abspath(bundle.root), "name": bundle.name, "model": bundle.model,
                   "labels": list(bundle.labels), "streaming": bundle.streaming, "input": bundle.input.to_dict(),
                   "sampling": bundle.sampling.to_dict(), "producer": bundle.producer},
        "device": {"requested": args.device, "resolved": device, "config": dev["config_name"],
                   "edgetpu_devices": edgetpus,
                   "edgetpu_used": (dev["edgetpu_device"] or ("first found" if edgetpus else None))
                   if device == "coral" else None},
        "settings": {"policy": policy.to_dict(), "threads": dev["threads"], "formats": args.formats,
                     "data": os.path.abspath(args.data) if args.data else None, "clips": args.clips,
                     "max_clips": args.max_clips, "source": None if args.no_e2e else args.source,
                     "e2e_seconds": None if args.no_e2e else args.e2e_seconds},
        "machine": machine,
        "results": parts["results"],
        "end_to_end": parts["e2e"],
        "memory": {"peak_rss_mb": peak_rss_mb(), "source": peak_rss_source()},
        "power": parts["power"],
        "overhead": parts["overhead"],
        "data": eval_set.summary() if eval_set is not None else None,
        "notes": parts["notes"],
        "warnings": parts["warnings"],
        "compare": None,
    }


def _finish(args, report: dict, reference) -> int:
    """Compare, write the report (+ reference), print the table; the exit code."""
    from . import compare as C
    from .report import results_table, write_report
    regressions = 0
    if reference is not None:
        verdicts = C.compare(report, reference, args.tolerance, args.f1_tolerance, args.checked)
        report["compare"] = C.compare_summary(verdicts, args.compare, args.tolerance, args.f1_tolerance, args.checked)
        regressions = report["compare"]["regressions"]
    files = write_report(report, args.out, plots=not args.no_plots)
    if args.write_reference:
        C.write_reference(report, args.write_reference)
        _log(args, f"edge-bench: reference written to {args.write_reference}")
    print("\n".join(results_table(report["results"])))
    if report["compare"]:
        for v in report["compare"]["rows"]:
            if v["verdict"] in ("regression", "worse", "improved"):
                print(f"{v['verdict'].upper()}: {v['format']} {v['metric']}: reference {v['reference']:.4g} -> "
                      f"{v['current']:.4g} ({v['change']})")
    print(f"edge-bench: report in {files['md']} (json: {files['json']})")
    failed = [r for r in report["results"] if r["status"] == "failed"]
    if failed:
        print(f"edge-bench: {len(failed)} artifact(s) failed: " + "; ".join(f"{r['key']}: {r['reason']}" for r in failed),
              file=sys.stderr)
    return EXIT_REGRESSION if regressions or failed else EXIT_OK


def _run(args, argv: List[str]) -> int:
    from ._progress import progress as _progress
    from .latency import RunPolicy
    from .machine import machine_info

    bundle, reference = _load_inputs(args)
    policy = RunPolicy(min_runs=args.min_runs, min_seconds=args.min_seconds, max_seconds=args.max_seconds,
                       warmup_runs=args.warmup, warmup_min_seconds=args.warmup_seconds)
    dev = _resolve_device(args)
    pbar = (lambda it, **kw: _progress(it, disable=args.quiet, **kw))
    targets = _targets(args, bundle, dev)
    machine = machine_info()
    warnings, notes = _machine_notes(args, machine)
    eval_set = _eval_set(args, bundle, pbar, notes)
    results, power, todo = _time_all(args, bundle, targets, dev, policy, eval_set, pbar, notes)
    if hasattr(os, "getloadavg") and todo:
        end = os.getloadavg()[0]
        if end > 0.5 * (machine.get("cores") or 1):
            notes.append(f"load average {end:.2f} on {machine.get('cores')} cores when the model timings ended: "
                         f"other processes competed for the CPU (compare p50 rather than mean/p99)")
    overhead = None
    if args.overhead_check:
        overhead = _overhead(bundle, dev["threads"])
        _log(args, "edge-bench: harness overhead vs bare invoke(): " + (
            f"{overhead['overhead']:+.2%} ({overhead['verdict']})" if "overhead" in overhead else overhead["reason"]))
    e2e = _end_to_end(args, bundle, dev)
    report = _report(args, argv, bundle, dev, policy, machine,
                     {"results": results, "e2e": e2e, "power": power, "overhead": overhead,
                      "eval_set": eval_set, "notes": notes, "warnings": warnings})
    return _finish(args, report, reference)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
