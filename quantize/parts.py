"""A trained model's deployable parts, as edge-quantize's steps need them.

The model registry (``train.models.deploy_pairing``) says how a model deploys: one whole-clip model
(``full``) or a per-frame encoder + temporal head (``encoder+head``, the pairings of
``edge.catalog.PAIRINGS``). Each pairing is one class here with the same small interface, so the
steps in ``quantize/steps.py`` never test a model name: pruning, QAT, the int8 candidates, the
selection reference, sparsity per part and the bundle's ``streaming`` entry all come from it.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np


class WholeClip:
    """One whole-clip model (lrcn, convlstm): every format exports ``full``."""

    pairing = "full"
    int8_parts: Tuple[str, ...] = ("full",)

    def __init__(self, name: str, model):
        self.name, self.model = name, model
        self.float_model = None

    def prune(self, x, y, pcfg, progress: bool) -> List[dict]:
        from . import prune as P
        self.model, rows = P.prune_model(self.model, x, y, pcfg, progress=progress)
        return rows

    def export_parts(self) -> Dict[str, object]:
        """part -> Keras model the float formats export (export-friendly rewrite applied)."""
        from .rewrite import export_friendly
        self.float_model = export_friendly(self.model)
        return {"full": self.float_model}

    def exports_part(self, part: str, fmt_name: str) -> bool:
        return True

    def qat(self, x, y, qcfg, progress: bool):
        from train.models import qat_view

        from . import qat as Q
        return Q.qat_model(qat_view(self.name, self.model, self.float_model), x, y, qcfg, progress)

    def remember_head(self, when: str) -> None:
        """Only an encoder+head model fine-tunes a shared head during QAT."""

    def int8_jobs(self, source: str, q_model, calib: np.ndarray, seed: int):
        """(part, keras model, representative dataset) for one int8 candidate (QAT or post-training)."""
        from . import representative as R
        return [("full", q_model if source == "QAT" else self.float_model, R.clip_dataset(calib))]

    def selection_reference(self, sel_x: np.ndarray, cache: dict) -> np.ndarray:
        """Float scores the int8 candidates are compared with (computed once for a whole-clip model)."""
        if "ref" not in cache:
            cache["ref"] = np.asarray(self.model.predict(sel_x, batch_size=8, verbose=0))
        return cache["ref"]

    def choose(self, source: str) -> None:
        """Keep what the chosen int8 candidate needs (nothing for a whole-clip model)."""

    def part_sparsity(self, rows: List[dict], part: str, overall: Optional[float]) -> Optional[float]:
        return overall if rows else None

    def verify_inputs(self, part: str, clips: np.ndarray) -> List[np.ndarray]:
        return list(clips)

    def counts_in_fp32_size(self, part: str) -> bool:
        return True

    def streaming(self) -> Optional[dict]:
        return None


class EncoderHead(WholeClip):
    """lrcn-edge: a per-frame ``encoder`` (the accelerator part) and a temporal ``head`` for every
    format, plus a float ``full`` model for CPU use; encoder and head share layers with ``full``."""

    pairing = "encoder+head"
    int8_parts = ("encoder", "head")
    FULL_EXPORTS = ("tflite-fp32", "onnx", "keras")   # float formats that also get the full model

    def __init__(self, name: str, model):
        super().__init__(name, model)
        from train.models import split_parts
        parts = split_parts(name, model)
        self.encoder, self.head = parts["encoder"], parts["head"]
        self._heads: Dict[str, list] = {}

    def prune(self, x, y, pcfg, progress: bool) -> List[dict]:
        from . import prune as P
        return P.prune_parts(self.encoder, self.head, x, y, pcfg, progress=progress)

    def export_parts(self) -> Dict[str, object]:
        from .rewrite import export_friendly
        self.float_model = export_friendly(self.model)
        return {"encoder": self.encoder, "head": self.head, "full": self.model}

    def exports_part(self, part: str, fmt_name: str) -> bool:
        return part != "full" or fmt_name in self.FULL_EXPORTS

    def qat(self, x, y, qcfg, progress: bool):
        from . import qat as Q
        return Q.qat_encoder(self.encoder, self.head, x, y, qcfg, progress)

    def remember_head(self, when: str) -> None:
        """QAT fine-tunes the head in place: keep its weights "before" and "QAT" to calibrate each
        int8 candidate with the head it was trained with."""
        self._heads[when] = [w.copy() for w in self.head.get_weights()]

    def _use_head(self, source: str) -> None:
        self.head.set_weights(self._heads["QAT" if source == "QAT" else "before"])

    def int8_jobs(self, source: str, q_model, calib: np.ndarray, seed: int):
        from . import representative as R
        enc_src = q_model if source == "QAT" else self.encoder
        self._use_head(source)
        feats = R.encode_clips(enc_src, calib)
        return [("encoder", enc_src, R.frame_dataset(calib, seed=seed)),
                ("head", self.head, R.feature_dataset(feats))]

    def selection_reference(self, sel_x: np.ndarray, cache: dict) -> np.ndarray:
        # float encoder + the head this candidate was calibrated with (set by int8_jobs)
        return np.asarray(self.model.predict(sel_x, batch_size=8, verbose=0))

    def choose(self, source: str) -> None:
        self._use_head(source)

    def part_sparsity(self, rows: List[dict], part: str, overall: Optional[float]) -> Optional[float]:
        if not rows:
            return None
        if part not in ("encoder", "head"):
            return overall
        sel = [r for r in rows if r["layer"].startswith(part + "/")]
        total = sum(r["size"] for r in sel)
        return sum(r["zeros"] for r in sel) / total if total else None

    def verify_inputs(self, part: str, clips: np.ndarray) -> List[np.ndarray]:
        if part == "encoder":
            return list(clips.reshape((-1,) + clips.shape[2:])[: max(len(clips), 1) * 2])
        if part == "head":
            from .representative import encode_clips
            return list(encode_clips(self.encoder, clips))
        return list(clips)

    def counts_in_fp32_size(self, part: str) -> bool:
        return part != "full"   # the deployed float pair is encoder + head

    def streaming(self) -> Optional[dict]:
        return {"feature_dim": int(self.encoder.output_shape[-1])}


PAIRING_CLASSES = {cls.pairing: cls for cls in (WholeClip, EncoderHead)}


def model_parts(name: str, model) -> WholeClip:
    """The parts object for a trained ``name`` model (the registry says which pairing)."""
    from train.models import deploy_pairing
    return PAIRING_CLASSES[deploy_pairing(name)](name, model)
