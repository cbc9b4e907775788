"""Classification metrics in plain numpy (the device has no scikit-learn).

Same definitions as scikit-learn's ``precision_recall_fscore_support`` with ``zero_division=0``;
``tests/test_metrics.py`` checks them against scikit-learn on the host.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """cm[i, j] = clips of true class i predicted as j."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           labels: Optional[List[str]] = None, num_classes: Optional[int] = None) -> Dict:
    """accuracy, macro and weighted precision/recall/F1, per-class table, confusion matrix, n."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = num_classes or (len(labels) if labels else int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1)
    labels = list(labels) if labels else [str(i) for i in range(k)]
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    n = int(len(y_true))
    w = support / support.sum() if support.sum() > 0 else np.zeros_like(support)
    return {
        "n_test": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "precision_macro": float(precision.mean()), "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "precision_weighted": float((precision * w).sum()), "recall_weighted": float((recall * w).sum()),
        "f1_weighted": float((f1 * w).sum()),
        "per_class": {labels[i]: {"precision": float(precision[i]), "recall": float(recall[i]),
                                  "f1": float(f1[i]), "support": int(support[i])} for i in range(k)},
        "labels": labels,
        "confusion_matrix": cm.tolist(),
    }


def top1_agreement(scores_a: np.ndarray, scores_b: np.ndarray) -> float:
    """Fraction of clips where two models pick the same class."""
    a = np.asarray(scores_a).argmax(axis=-1)
    b = np.asarray(scores_b).argmax(axis=-1)
    return float((a == b).mean()) if a.size else 0.0
