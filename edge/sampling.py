"""Temporal sampling: which frames of a video (or a live stream) make one clip.

The paper samples ``N`` frames evenly over the whole video at indices ``i * max(frames // N, 1)``.
Training and the device use these same functions, so a model sees clips sampled the same way
everywhere.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

PAD = "pad"
SKIP = "skip"
SHORT_POLICIES = (PAD, SKIP)


def paper_indices(frame_count: int, n_frames: int) -> List[int]:
    """Frame indices the paper reads: ``i * max(frame_count // n_frames, 1)`` for ``i < n_frames``,
    keeping only indices that exist (a video shorter than ``n_frames`` gives fewer)."""
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    if frame_count <= 0:
        return []
    step = max(frame_count // n_frames, 1)
    return [i * step for i in range(n_frames) if i * step < frame_count]


def frame_step(frame_count: int, n_frames: int) -> int:
    """Distance in source frames between two sampled frames (the paper's ``skip_frames_window``)."""
    return max(frame_count // n_frames, 1)


def pad_indices(indices: Sequence[int], n_frames: int) -> List[int]:
    """Repeat the last index until there are ``n_frames`` (policy ``pad`` for short videos)."""
    if not indices:
        raise ValueError("cannot pad an empty index list")
    out = list(indices[:n_frames])
    out += [out[-1]] * (n_frames - len(out))
    return out


@dataclass(frozen=True)
class TemporalSampling:
    """How a clip is taken over time; stored in every bundle so the device samples like training.

    frames:           frames per clip (20 in the paper)
    method:           "even" = the paper's indices spread over the whole video
    frame_interval_s: typical time between two sampled frames in the training clips (median of
                      step / fps); a live runner keeps one frame every this many seconds
    short_policy:     what training did with videos shorter than ``frames``: "pad" or "skip"
    """

    frames: int = 20
    method: str = "even"
    frame_interval_s: Optional[float] = None
    short_policy: str = PAD

    @property
    def clip_seconds(self) -> Optional[float]:
        if self.frame_interval_s is None:
            return None
        return self.frames * self.frame_interval_s

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "method": self.method,
            "frame_interval_s": self.frame_interval_s,
            "clip_seconds": self.clip_seconds,
            "short_policy": self.short_policy,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "TemporalSampling":
        return cls(
            frames=int(d.get("frames", 20)),
            method=str(d.get("method", "even")),
            frame_interval_s=d.get("frame_interval_s"),
            short_policy=str(d.get("short_policy", PAD)),
        )
