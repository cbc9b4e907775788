"""Walking a dataset folder: which files are videos of which class, and which group each belongs to.

The layout is UCF50-style: ``DATA_DIR/<Class>/<video>`` (sub-folders below a class folder are walked
too and keep the class of their top folder). Nothing here decodes video; it only decides what to try,
and reports what it will not try (hidden files, unreadable folders, files outside class folders,
non-video extensions) so that a build can say *why* a file is missing from the manifest.

Groups (the unit a split must never cut):

* UCF names ``v_<Class>_gNN_cNN`` -> ``<Class>/gNN`` (the class as spelled in the file name).
  UCF101 group ids are per class: ``g08`` of Archery and ``g08`` of Surfing are different actors
  and scenes, so the class is part of the id. UCF11 (YouTube) names ``v_<class>_NN_NN`` likewise.
* HMDB51 names ``<title>_<action>_<body>_<camera>_<people>_<view>_<quality>_<n>`` ->
  ``hmdb:<title>``. Every clip cut from the same source video shares the title; a film such as
  ``50_FIRST_DATES`` gives clips to several actions, so HMDB groups are **not** scoped by class
  (splits handle groups spanning classes).
* Anything else -> ``<Class>/<file stem>``: each video is its own group.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

VIDEO_EXTENSIONS = frozenset({
    ".avi", ".mp4", ".m4v", ".mpg", ".mpeg", ".mkv", ".mov", ".webm", ".wmv", ".flv", ".3gp", ".ogv",
})
# Files at the top of a dataset folder that describe the dataset rather than being stray input.
DATASET_FILES = frozenset({"dataset.json", "README.md", "README.txt", "LICENSE"})

_UCF = re.compile(r"^v_(?P<cls>.+?)_g?(?P<group>\d+)_c?(?P<clip>\d+)$", re.IGNORECASE)
_HMDB_FLAGS = re.compile(r"_(?:f|h|u|l)_(?:cm|nm)_np\d+_(?:fr|ba|le|ri)_(?:bad|med|goo)_\d+$")


@dataclass(frozen=True)
class VideoFile:
    """A file that will be tried as a video: ``path`` absolute, ``rel`` relative to the data dir
    with forward slashes (the manifest key and what official split lists name)."""

    path: str
    rel: str
    label: str
    group: str


@dataclass(frozen=True)
class Ignored:
    """Something the walk did not try, and why (``hidden``, ``unreadable-folder``,
    ``not-in-class-folder``, ``not-a-video-extension``)."""

    rel: str
    reason: str
    detail: str = ""


def group_of(rel: str, label: str) -> str:
    """Group id for a video at ``rel`` (relative path) of class ``label``; see the module doc."""
    stem = Path(rel).stem
    m = _UCF.match(stem)
    if m:
        return f"{m.group('cls')}/g{m.group('group')}"
    m = _HMDB_FLAGS.search(stem)
    if m:
        head = stem[: m.start()]
        # The action name precedes the flags; it is the class folder name (or the file's folder).
        parent = Path(rel).parent.name
        for action in (label, label.replace(" ", "_"), parent):
            if head.lower().endswith("_" + action.lower()):
                head = head[: -(len(action) + 1)]
                break
        else:
            head = head.rsplit("_", 1)[0] if "_" in head else head
        if head:
            return f"hmdb:{head}"
    return f"{label}/{stem}"


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("~$") or name == "Thumbs.db" or name == "__MACOSX"


def _scandir(path: str) -> List[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def walk_dataset(data_dir: os.PathLike, exclude: Sequence[os.PathLike] = ()
                 ) -> Tuple[List[str], List[VideoFile], List[Ignored]]:
    """Walk ``data_dir`` -> (class names sorted, video files sorted by rel path, ignored items).

    Raises ``FileNotFoundError`` / ``NotADirectoryError`` / ``PermissionError`` only for the data
    dir itself; everything below it is reported in the ignored list instead of stopping the walk.
    A class is any readable, non-hidden top-level folder holding at least one file with a video
    extension (even if those files all fail to decode later, so label indices do not shift when a
    file breaks). Folders in ``exclude`` (e.g. a cache written inside the data folder) are skipped.
    """
    root = os.path.abspath(os.fspath(data_dir))
    if not os.path.exists(root):
        raise FileNotFoundError(f"{root}: no such folder")
    if not os.path.isdir(root):
        raise NotADirectoryError(f"{root}: not a folder")
    videos: List[VideoFile] = []
    ignored: List[Ignored] = []
    classes: List[str] = []
    excluded = {os.path.realpath(os.fspath(x)) for x in exclude}
    for top in _scandir(root):
        if os.path.realpath(top.path) in excluded:
            ignored.append(Ignored(top.name, "cache-folder"))
            continue
        if _is_hidden(top.name):
            ignored.append(Ignored(top.name, "hidden"))
            continue
        if not top.is_dir():
            if top.name not in DATASET_FILES:
                ignored.append(Ignored(top.name, "not-in-class-folder"))
            continue
        label = top.name
        found = _walk_class(root, top.path, label, videos, ignored, excluded, set())
        if found is None:
            continue  # the class folder itself cannot be listed: reported, not a class
        if found == 0:
            ignored.append(Ignored(top.name, "no-videos"))
            continue
        classes.append(label)
    videos.sort(key=lambda v: v.rel)
    return sorted(classes), videos, ignored


def _walk_class(root: str, folder: str, label: str, videos: List[VideoFile],
                ignored: List[Ignored], excluded: set, seen: set) -> Optional[int]:
    rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
    real = os.path.realpath(folder)
    if real in seen:  # a symlink back up the tree: walk each folder once
        ignored.append(Ignored(rel_folder, "symlink-loop"))
        return 0
    seen.add(real)
    try:
        entries = _scandir(folder)
    except OSError as e:
        ignored.append(Ignored(rel_folder, "unreadable-folder", f"{type(e).__name__}: {e.strerror or e}"))
        return None
    n = 0
    for e in entries:
        rel = f"{rel_folder}/{e.name}"
        if _is_hidden(e.name):
            ignored.append(Ignored(rel, "hidden"))
            continue
        try:
            is_dir = e.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if os.path.realpath(e.path) in excluded:
                ignored.append(Ignored(rel, "cache-folder"))
                continue
            sub = _walk_class(root, e.path, label, videos, ignored, excluded, seen)
            n += sub or 0
            continue
        if Path(e.name).suffix.lower() not in VIDEO_EXTENSIONS:
            ignored.append(Ignored(rel, "not-a-video-extension"))
            continue
        videos.append(VideoFile(path=e.path, rel=rel, label=label, group=group_of(rel, label)))
        n += 1
    return n
