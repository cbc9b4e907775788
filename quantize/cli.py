"""``edge-quantize``: turn a training run into a model bundle for a Jetson, a Coral or a CPU.

Also ``edge-quantize analyze MODEL.tflite`` (Edge TPU op-by-op report) and
``edge-quantize parse-log COMPILER.log`` (what edgetpu_compiler mapped). TensorFlow is imported only
when work starts, so ``--help`` is instant.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional, Tuple

from .formats import DEFAULT_FORMATS, parse_formats, table_text

EPILOG = """\
examples:
  edge-quantize work/runs/lrcn-edge --out work/bundles/lrcn-edge
      prune to 50%, QAT, export every default format, score each on the run's test split
  edge-quantize RUN --out B --formats tflite-fp32,tflite-int8 --no-prune
      only float32 + int8 TFLite, no pruning (QAT still on)
  edge-quantize RUN --out B --sparsity 0.7 --prune-epochs 10
      more zeros: on ucf101-mini lrcn-edge int8+gzip is 9.3x smaller than model.keras, macro-F1 kept
  edge-quantize RUN --out B --layer-sparsity LSTM=0.3 --layer-sparsity Dense=0 --calib-clips 128
  edge-quantize analyze B/encoder_int8.tflite        Edge TPU op-by-op report (no TF needed)
  edge-quantize parse-log model_edgetpu.log          summarise an edgetpu_compiler log
  edge-quantize --list-formats

formats (--formats, comma separated, or "all"):
""" + "\n".join("  " + line for line in table_text().splitlines()) + """

The bundle directory gets every artifact, labels.txt and bundle.json (edge.bundle schema); what could
not be produced here (edgetpu without the compiler, tensorrt off the Jetson) is listed under
"skipped" with the reason and the command to run on the right machine.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-quantize",
        description="Shrink and compile a trained run (edge-train) into a device bundle: magnitude pruning, "
                    "quantization-aware training, TFLite float32/float16/dynamic/int8, Edge TPU analysis and "
                    "compilation, ONNX (verified against Keras) and TensorRT; every artifact is scored on the "
                    "run's test split and summarised in a table.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", nargs="?", help="training run directory (has model.keras, config.yaml, labels.txt)")
    p.add_argument("--out", help="bundle directory to write (created)")
    p.add_argument("--formats", default=",".join(DEFAULT_FORMATS),
                   help="formats to produce (default: %(default)s)")
    p.add_argument("--sparsity", type=float, default=0.5, help="target pruning sparsity (default 0.5)")
    p.add_argument("--layer-sparsity", action="append", default=[], metavar="TYPE=S",
                   help="per layer type override, e.g. LSTM=0.3 or Dense=0 (repeatable)")
    p.add_argument("--prune", action=argparse.BooleanOptionalAction, default=None,
                   help="magnitude pruning (default: what the model registry advises for the run: on, off "
                        "for a frozen pretrained encoder)")
    p.add_argument("--qat", action=argparse.BooleanOptionalAction, default=None,
                   help="quantization-aware training; --no-qat = post-training int8 (default: as --prune)")
    p.add_argument("--prune-epochs", type=int, default=8,
                   help="pruning fine-tune epochs (default 8; sparsity ramps up over all of them)")
    p.add_argument("--qat-epochs", type=int, default=3, help="QAT fine-tune epochs (default 3)")
    p.add_argument("--batch-size", type=int, default=4, help="fine-tuning batch size (default 4)")
    p.add_argument("--learning-rate", type=float, default=3e-4,
                   help="fine-tuning learning rate for pruning and QAT (default 3e-4)")
    p.add_argument("--calib-clips", type=int, default=64,
                   help="training clips for int8 calibration (default 64)")
    p.add_argument("--io", choices=("int8", "uint8", "float32"), default="int8",
                   help="input/output type of int8 models (default int8)")
    p.add_argument("--opset", type=int, default=13, help="ONNX opset (>= 13)")
    p.add_argument("--max-eval-clips", type=int, default=None, help="score at most N test clips (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", metavar="FILE", help="also write the summary (sizes, metrics) as JSON")
    p.add_argument("--list-formats", action="store_true", help="print the format table and exit")
    return p


def chain_choice(run, prune: Optional[bool], qat: Optional[bool]) -> Tuple[bool, bool]:
    """--prune/--qat as given, else what the model registry advises for this run (``chain_hints``:
    a frozen pretrained encoder keeps post-training int8, no pruning); the advice is printed."""
    from train.models import chain_hints

    hint = chain_hints(run.model_name, run.model_cfg)
    if prune is None or qat is None:
        print(f"edge-quantize: {hint['reason']}" + ("" if hint["prune"] and hint["qat"] else
              " (force with --prune / --qat)"))
    return (hint["prune"] if prune is None else prune), (hint["qat"] if qat is None else qat)


def _error(msg: str) -> int:
    print(f"edge-quantize: error: {msg}", file=sys.stderr)
    return 2


def _analyze(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(prog="edge-quantize analyze",
                                 description="Op-by-op Edge TPU compatibility of .tflite files (reads the "
                                             "flatbuffer; no TensorFlow needed). A prediction: rules and their "
                                             "evidence in quantize/edgetpu_analyzer.py; only edgetpu_compiler "
                                             "and an Edge TPU confirm. Exit 0 = predicted fully mappable.")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--json", action="store_true", help="print JSON")
    a = ap.parse_args(argv)
    from .edgetpu_analyzer import analyze, format_report, to_json
    rc = 0
    for m in a.models:
        if not os.path.isfile(m):
            return _error(f"{m}: no such file")
        try:
            r = analyze(m)
        except ValueError as e:
            return _error(str(e))
        print(json.dumps(to_json(r), indent=2) if a.json else format_report(r))
        rc = rc or (0 if r.mappable else 1)
    return rc


def _parse_log(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(prog="edge-quantize parse-log",
                                 description="Summarise an edgetpu_compiler stdout or *_edgetpu.log file.")
    ap.add_argument("log")
    a = ap.parse_args(argv)
    if not os.path.isfile(a.log):
        return _error(f"{a.log}: no such file")
    from .edgetpu_compiler import parse_log
    with open(a.log, errors="replace") as f:
        print(json.dumps(parse_log(f.read()).to_dict(), indent=2))
    return 0


def _layer_sparsity(items: List[str]) -> dict:
    out = {}
    for it in items:
        if "=" not in it:
            raise ValueError(f"--layer-sparsity {it!r}: expected TYPE=SPARSITY, e.g. LSTM=0.3")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise ValueError(f"--layer-sparsity {it!r}: {v!r} is not a number") from None
    return out


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "analyze":
        return _analyze(argv[1:])
    if argv and argv[0] == "parse-log":
        return _parse_log(argv[1:])
    args = build_parser().parse_args(argv)
    if args.list_formats:
        print(table_text())
        return 0
    if not args.run_dir:
        return _error("RUN_DIR is required (a directory written by edge-train); see --help")
    if not args.out:
        return _error("--out BUNDLE_DIR is required")
    try:
        fmts = parse_formats(args.formats)
        layer_sp = _layer_sparsity(args.layer_sparsity)
    except ValueError as e:
        return _error(str(e))
    if not 0.0 <= args.sparsity < 1.0:
        return _error(f"--sparsity must be in [0, 1), got {args.sparsity}")
    if args.calib_clips < 1:
        return _error("--calib-clips must be >= 1")
    if args.opset < 13:
        return _error("--opset must be >= 13")
    if os.path.abspath(args.out) == os.path.abspath(args.run_dir):
        return _error("--out must not be the run directory")
    if os.path.isfile(args.out):
        return _error(f"--out {args.out} is a file")
    from train.run import RunError, load_run
    try:
        run = load_run(args.run_dir)
    except RunError as e:
        return _error(str(e))
    if not run.path("model.keras").is_file():
        return _error(f"{run.dir}: no model.keras (the run did not finish?)")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .bundle_writer import QuantizeConfig, quantize_run
    prune, qat = chain_choice(run, args.prune, args.qat)
    cfg = QuantizeConfig(formats=fmts, sparsity=args.sparsity, per_layer_sparsity=layer_sp,
                         prune=prune, qat=qat, prune_epochs=args.prune_epochs,
                         qat_epochs=args.qat_epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                         calib_clips=args.calib_clips, io_dtype=args.io, opset=args.opset,
                         max_eval_clips=args.max_eval_clips, seed=args.seed, progress=not args.no_progress)
    res = quantize_run(run, args.out, cfg)
    print()
    print(res.table)
    s = res.sizes
    if s.get("int8_bytes") and s.get("float_keras_bytes"):
        print(f"\nint8 artifacts: {s['int8_bytes']} bytes (model.keras {s['float_keras_bytes']} bytes is "
              f"{s['float_keras_over_int8']}x that), gzip {s['int8_gzip_bytes']} bytes "
              f"({s['float_keras_over_int8_gzip']}x)")
    for sk in res.bundle.skipped:
        print(f"skipped {sk.get('format')}/{sk.get('part')}: {sk['reason']}")
    print(f"\nbundle: {res.bundle_path}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"reference": res.reference, "sizes": res.sizes,
                       "artifacts": [a.to_dict() for a in res.bundle.artifacts],
                       "skipped": res.bundle.skipped}, f, indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
