"""``manifest.json``: what a prepared cache holds, one entry per video (kept or skipped, and why).

Layout of ``CACHE_DIR/manifest.json``::

    {
      "manifest_version": 1,
      "data_dir": "/abs/path/DATA_DIR",
      "created": "2026-11-25T08:00:00Z",
      "settings": {"frames": 20, "size": [64, 64], "short_policy": "pad", "cache_version": "..."},
      "classes": ["Archery", ...],            # label_index = position
      "flip_safe": true,                       # false for the synthetic set (left/right classes)
      "dataset": {...},                        # DATA_DIR/dataset.json when present
      "entries": [{"path": "Archery/v_Archery_g08_c01.avi", "class": "Archery", "label": "Archery",
                   "label_index": 0,
                   "group": "Archery/g08", "frames": 363, "fps": 25.0, "width": 320, "height": 240,
                   "status": "ok", "reason": null, "cache": "clips/ab12....npz", "padded": false,
                   "key": "ab12...", "indices": [0, 18, ...], "message": null}],
      "ignored": [{"path": ".DS_Store", "reason": "hidden", "detail": ""}],
      "stats": {"ok": 107, "skipped": 1, "hits": 0, "misses": 108, "seconds": 12.3, "workers": 2}
    }

``frames`` is the video's frame count (as decoded when the container lied), ``indices`` the source
frames sampled into the clip. Paths are relative (to DATA_DIR for ``path``, to the cache dir for
``cache``) so a cache can move with its data.
"""
from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional

from edge.sampling import frame_step

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
OK = "ok"
SKIPPED = "skipped"


class ManifestError(ValueError):
    """manifest.json missing or malformed; the message names the file."""


@dataclass
class Entry:
    """One video of the dataset. ``cache`` is the clip's ``.npz`` relative to the cache dir (None
    when skipped). ``cache_root`` is not stored: it is the folder ``cache`` is relative to, set when
    a manifest is loaded so entries taken from two caches (folder split) still find their clips."""

    path: str
    label: str
    label_index: int
    group: str
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    status: str = OK
    reason: Optional[str] = None
    cache: Optional[str] = None
    padded: bool = False
    key: str = ""
    indices: List[int] = field(default_factory=list)
    message: Optional[str] = None
    cache_root: Optional[str] = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("cache_root")
        return {"path": d.pop("path"), "class": self.label, **d}   # "class": for humans and other tools

    @classmethod
    def from_dict(cls, d: dict, cache_root: Optional[str] = None) -> "Entry":
        known = {f.name for f in fields(cls)} - {"cache_root"}
        e = cls(**{k: v for k, v in d.items() if k in known})
        e.cache_root = cache_root
        return e


@dataclass
class Manifest:
    entries: List[Entry]
    classes: List[str]
    settings: Dict[str, Any]
    flip_safe: bool = True
    path: Optional[Path] = None
    data_dir: Optional[str] = None
    ignored: List[dict] = field(default_factory=list)
    stats: Dict[str, Any] = field(default_factory=dict)
    dataset: Dict[str, Any] = field(default_factory=dict)
    created: Optional[str] = None

    @property
    def cache_dir(self) -> Path:
        if self.path is None:
            raise ManifestError("manifest has no path: it was never saved or loaded")
        return Path(self.path).parent

    @property
    def ok_entries(self) -> List[Entry]:
        return [e for e in self.entries if e.ok]

    @property
    def skipped_entries(self) -> List[Entry]:
        return [e for e in self.entries if not e.ok]

    def to_dict(self) -> dict:
        return {
            "manifest_version": MANIFEST_VERSION,
            "data_dir": self.data_dir,
            "created": self.created,
            "settings": self.settings,
            "classes": list(self.classes),
            "flip_safe": bool(self.flip_safe),
            "dataset": self.dataset,
            "entries": [e.to_dict() for e in self.entries],
            "ignored": list(self.ignored),
            "stats": self.stats,
        }

    def save(self, cache_dir: Optional[os.PathLike] = None) -> Path:
        """Write ``manifest.json`` atomically (a crash never leaves half a manifest)."""
        target = Path(cache_dir) / MANIFEST_FILE if cache_dir is not None else Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        d = self.to_dict()
        try:
            text = json.dumps(d, indent=1, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a file name that is not UTF-8: keep it as a \udcXX escape
            text = json.dumps(d, indent=1, ensure_ascii=True).encode("ascii")
        tmp.write_bytes(text)
        os.replace(tmp, target)
        self.path = target
        for e in self.entries:
            e.cache_root = str(target.parent)
        return target

    def summary(self) -> str:
        """Human summary: kept/skipped (by reason), per-class counts, ignored, cache stats."""
        ok = self.ok_entries
        lines = [f"manifest: {self.path}",
                 f"data: {self.data_dir}",
                 f"settings: frames={self.settings.get('frames')} size={self.settings.get('size')} "
                 f"short={self.settings.get('short_policy')} flip_safe={self.flip_safe}",
                 f"videos: {len(self.entries)}  ok: {len(ok)}  skipped: {len(self.entries) - len(ok)}"
                 f"  padded: {sum(e.padded for e in ok)}  groups: {len({e.group for e in ok})}"]
        reasons = Counter(e.reason for e in self.skipped_entries)
        for r, n in sorted(reasons.items(), key=lambda x: (-x[1], str(x[0]))):
            lines.append(f"  skipped {r}: {n}")
        if self.ignored:
            ign = Counter(i.get("reason") for i in self.ignored)
            lines.append("ignored: " + ", ".join(f"{r} {n}" for r, n in sorted(ign.items())))
        per_class = Counter(e.label for e in ok)
        width = max((len(c) for c in self.classes), default=5)
        lines.append(f"classes: {len(self.classes)}")
        for c in self.classes:
            lines.append(f"  {c:<{width}}  {per_class.get(c, 0)}")
        if self.stats:
            s = self.stats
            lines.append(f"last build: cache hits {s.get('hits', 0)}, misses {s.get('misses', 0)}"
                         + (f", {s['seconds']:.1f}s" if "seconds" in s else "")
                         + (f" with {s['workers']} workers" if s.get("workers") else ""))
        fi = frame_interval_seconds(self) if ok else None
        if fi:
            lines.append(f"frame interval: {fi:.3f}s median (clip spans {fi * self.settings.get('frames', 0):.1f}s)")
        return "\n".join(lines)


def load_manifest(cache_dir: os.PathLike) -> Manifest:
    """Read ``cache_dir/manifest.json`` (or a path to the file itself)."""
    p = Path(cache_dir)
    if p.is_dir() or not p.suffix:
        p = p / MANIFEST_FILE
    if not p.exists():
        raise ManifestError(f"{p}: no manifest (run `edge-data prepare DATA_DIR --out {p.parent}` first)")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ManifestError(f"{p}: unreadable manifest ({e})") from e
    if not isinstance(d, dict) or "entries" not in d or "classes" not in d:
        raise ManifestError(f"{p}: not an edge-data manifest (missing 'entries'/'classes')")
    root = str(p.parent.resolve())
    try:
        entries = [Entry.from_dict(e, root) for e in d["entries"]]
    except TypeError as e:
        raise ManifestError(f"{p}: malformed entry ({e})") from e
    return Manifest(
        entries=entries, classes=list(d["classes"]), settings=dict(d.get("settings", {})),
        flip_safe=bool(d.get("flip_safe", True)), path=p, data_dir=d.get("data_dir"),
        ignored=list(d.get("ignored", [])), stats=dict(d.get("stats", {})),
        dataset=dict(d.get("dataset", {}) or {}), created=d.get("created"),
    )


def frame_interval_seconds(manifest: Manifest) -> float:
    """Median seconds between two sampled frames over the ok entries (paper step / fps).

    Bundles store it so a live runner keeps one camera frame every this many seconds and a clip on
    the device spans as much time as a training clip did. Entries without a known fps are ignored;
    raises ValueError when none has one.
    """
    n = int(manifest.settings.get("frames", 20))
    vals = [frame_step(e.frames, n) / e.fps for e in manifest.entries if e.ok and e.fps > 0 and e.frames > 0]
    if not vals:
        raise ValueError("no ok entry with a known fps: cannot derive the frame interval")
    return float(statistics.median(vals))
