"""Host-side data pipeline: prepare a clip cache from a video folder, split it without group
leakage, augment training clips, and generate the motion-only synthetic dataset.

The training code uses exactly these names::

    from train.data import (prepare, load_manifest, load_clips, group_split, official_split,
                            folder_split, AugmentConfig, augment_clip, synthesize,
                            frame_interval_seconds)

Nothing here imports TensorFlow; sampling and normalisation come from ``edge`` (the code the
device runs).
"""
from .augment import AugmentConfig, augment_batch, augment_clip
from .builder import prepare
from .loader import CacheError, load_clip_uint8, load_clips
from .manifest import Entry, Manifest, ManifestError, frame_interval_seconds, load_manifest
from .splits import LeakageError, Split, folder_split, group_split, official_split
from .synth import FLIP_SAFE, SYNTH_CLASSES, synthesize

__all__ = [
    "prepare", "load_manifest", "load_clips", "load_clip_uint8", "group_split", "official_split",
    "folder_split", "AugmentConfig", "augment_clip", "augment_batch", "synthesize",
    "frame_interval_seconds", "Entry", "Manifest", "ManifestError", "CacheError", "Split",
    "LeakageError", "FLIP_SAFE", "SYNTH_CLASSES",
]
