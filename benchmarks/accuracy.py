"""edge-bench's accuracy: one artifact on a folder of real videos, through the one evaluation path
(``edge.evaluation``: the bundle's sampling over the whole clip -> ``ClipClassifier`` ->
``edge.metrics``), the path ``edge-eval`` and edge-quantize's scoring use. No TensorFlow, no
scikit-learn (runs on the device).

``--data`` is a raw UCF-style folder (``<Class>/<video>``). Class folders are matched to the bundle's
labels by name; other folders are ignored and reported. ``--clips FILE`` limits the clips to a list:
a UCF split file (``Class/v_Class_g01_c01.avi [label]`` per line, CRLF ok) or a run's ``split.json``
(its ``test`` entries), so the held-out split of a training run can be scored on the device.
Clips are decoded once and reused for every artifact.
"""
from edge import evaluation as E
from edge.classifier import ClipClassifier
from edge.evaluation import DataError, EvalSet, find_videos, load_eval_set  # noqa: F401  (edge-bench's names)
from edge.preprocess import InputSpec

REPORTED = ("f1_macro", "accuracy", "n_clips", "precision_macro", "recall_macro", "confusion_matrix")


def evaluate(classifier: ClipClassifier, data: EvalSet, spec: InputSpec, progress=None) -> dict:
    """macro-F1, accuracy ... of ``classifier`` on ``data`` (the report's accuracy entry).
    Every clip is scored independently: the TFLite backend resets LSTM state before each call."""
    prog = (lambda it: progress(it, desc="predict", leave=False)) if progress else None
    m = E.evaluate(classifier, data.clips, data.y, data.labels, spec, progress=prog)
    m["n_clips"] = m["n_test"]
    return {k: m[k] for k in REPORTED}
