"""Train / validation / test splits that never put one group on two sides.

Clips of one group (the same actors and scene in UCF101, the same source video in HMDB51) look
alike; if they straddle train and test, the test score measures memory of the scene, not
recognition of the action. Every split here is checked by ``Split.check()`` (raises
``LeakageError``), and every constructor calls it.

* ``group_split``: seeded, stratified by class, group-aware: 75% train / 25% test, then 10% of the
  train part as validation (the paper's text), again group-aware.
* ``official_split``: the dataset's own lists (UCF101 ``trainlist01.txt`` / ``testlist01.txt``,
  CRLF tolerant, ``Class/file.avi [label]``), matched case-insensitively (UCF101's lists spell
  ``HandStandPushups`` where the folder is ``HandstandPushups``); validation carved from train.
* ``folder_split``: an explicit test folder prepared separately (a second manifest).

Stratification is greedy: groups are visited in a seeded random order (largest first) and go to the
held-out side while that moves every class they contain closer to its target count. A class with a
single group cannot be on both sides; it stays in train (reported in ``Split.notes``).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .manifest import Entry, Manifest


class LeakageError(ValueError):
    """A group appears on two sides of a split."""


@dataclass
class Split:
    train: List[Entry]
    val: List[Entry]
    test: List[Entry]
    classes: List[str]
    method: str = "group"
    seed: Optional[int] = None
    notes: List[str] = field(default_factory=list)

    def sides(self) -> Dict[str, List[Entry]]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def groups(self, side: str) -> set:
        return {e.group for e in self.sides()[side]}

    def check(self) -> "Split":
        """Raise ``LeakageError`` if any group is on two sides or an entry is used twice."""
        names = ("train", "val", "test")
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                both = self.groups(a) & self.groups(b)
                if both:
                    raise LeakageError(f"groups on both {a} and {b}: {sorted(both)[:5]}"
                                       + (f" (+{len(both) - 5} more)" if len(both) > 5 else ""))
        keys = Counter((e.cache_root, e.path) for side in self.sides().values() for e in side)
        dup = [k[1] for k, n in keys.items() if n > 1]
        if dup:
            raise LeakageError(f"entries used twice: {dup[:5]}")
        return self

    def counts(self) -> Dict[str, Dict[str, int]]:
        return {side: dict(Counter(e.label for e in es)) for side, es in self.sides().items()}

    def to_dict(self) -> dict:
        return {"method": self.method, "seed": self.seed, "classes": self.classes, "notes": self.notes,
                **{side: [e.path for e in es] for side, es in self.sides().items()}}

    def summary(self) -> str:
        """A per-class table of clips (and groups) on each side, plus notes."""
        c = self.counts()
        width = max([len(x) for x in self.classes] + [5])
        lines = [f"split: {self.method}" + (f" (seed {self.seed})" if self.seed is not None else ""),
                 f"{'class':<{width}}  {'train':>6} {'val':>6} {'test':>6}"]
        for cls in self.classes:
            lines.append(f"{cls:<{width}}  " + " ".join(f"{c[s].get(cls, 0):>6}" for s in ("train", "val", "test")))
        lines.append(f"{'clips':<{width}}  " + " ".join(f"{len(self.sides()[s]):>6}" for s in ("train", "val", "test")))
        lines.append(f"{'groups':<{width}}  " + " ".join(f"{len(self.groups(s)):>6}" for s in ("train", "val", "test")))
        lines.append("no group on two sides: checked")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _hold_out(entries: Sequence[Entry], fraction: float, rng: np.random.Generator,
              notes: List[str], what: str) -> Tuple[List[Entry], List[Entry]]:
    """Split ``entries`` into (kept, held) with about ``fraction`` of each class held, whole groups."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"{what} fraction must be in [0, 1), got {fraction}")
    if fraction == 0 or not entries:
        return list(entries), []
    by_group: Dict[str, List[Entry]] = defaultdict(list)
    for e in entries:
        by_group[e.group].append(e)
    group_counts = {g: Counter(e.label for e in es) for g, es in by_group.items()}
    total = Counter(e.label for e in entries)
    target = {c: fraction * n for c, n in total.items()}
    held_n: Counter = Counter()
    names = sorted(by_group)
    order = [names[i] for i in rng.permutation(len(names))]
    order.sort(key=lambda g: -len(by_group[g]))  # stable: random among equal sizes
    held = set()

    def gain(g: str) -> float:
        cost = 0.0
        for c, n in group_counts[g].items():
            cost += (abs(held_n[c] + n - target[c]) - abs(held_n[c] - target[c])) / total[c]
        return cost

    for g in order:
        if gain(g) < -1e-12:
            held.add(g)
            held_n.update(group_counts[g])
    # Every class with at least two groups gets at least one held-out group, if fraction allows it.
    groups_of = defaultdict(list)
    for g in names:
        for c in group_counts[g]:
            groups_of[c].append(g)
    for c in sorted(total):
        if held_n[c] > 0 or target[c] <= 0:
            continue
        if len(groups_of[c]) < 2:
            notes.append(f"{c}: a single group, kept out of {what}")
            continue
        cands = sorted((g for g in groups_of[c] if g not in held), key=lambda g: (len(by_group[g]), g))
        g = cands[0]
        held.add(g)
        held_n.update(group_counts[g])
    for c in sorted(total):
        if held_n[c] >= total[c]:
            notes.append(f"{c}: every group went to {what}")
    kept = [e for e in entries if e.group not in held]
    out = [e for e in entries if e.group in held]
    return kept, out


def group_split(entries: Iterable[Entry], *, test_fraction: float = 0.25, val_fraction: float = 0.10,
                seed: int = 0, classes: Optional[Sequence[str]] = None) -> Split:
    """Seeded, class-stratified, group-aware train/val/test split of the ok entries."""
    ok = [e for e in entries if e.ok]
    if classes is None:
        by_index = {e.label_index: e.label for e in ok}
        classes = [by_index[i] for i in sorted(by_index)]
    rng = np.random.default_rng(seed)
    notes: List[str] = []
    rest, test = _hold_out(ok, test_fraction, rng, notes, "test")
    train, val = _hold_out(rest, val_fraction, rng, notes, "val")
    return Split(train, val, test, list(classes), "group", seed, notes).check()


_LINE = re.compile(r"^(?P<path>.*?\S)(?:\s+(?P<label>\d+))?$")


def read_split_list(path) -> List[str]:
    """Relative video paths in a UCF-style list (CRLF or LF, optional trailing class number)."""
    out = []
    for raw in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        rel = (m.group("path") if m else line).replace("\\", "/")
        while rel.startswith("./"):
            rel = rel[2:]
        out.append(rel)
    return out


def official_split(manifest: Manifest, trainlist, testlist, *, val_fraction: float = 0.10,
                   seed: int = 0) -> Split:
    """Use the dataset's own train/test lists; validation is carved from train, group-aware.

    Entries in neither list are left out; listed files absent from the manifest are counted in
    ``notes`` (a mini dataset holds a fraction of the lists).
    """
    train_names = {p.lower() for p in read_split_list(trainlist)}
    test_names = {p.lower() for p in read_split_list(testlist)}
    both = train_names & test_names
    if both:
        raise LeakageError(f"{len(both)} files are in both lists, e.g. {sorted(both)[:3]}")
    ok = manifest.ok_entries
    train_all = [e for e in ok if e.path.lower() in train_names]
    test = [e for e in ok if e.path.lower() in test_names]
    have = {e.path.lower() for e in manifest.entries}
    notes = []
    unlisted = len(ok) - len(train_all) - len(test)
    if unlisted:
        notes.append(f"{unlisted} prepared clips are in neither list (left out)")
    missing_train = len(train_names - have)
    missing_test = len(test_names - have)
    if missing_train or missing_test:
        notes.append(f"listed but not prepared: {missing_train} train, {missing_test} test")
    if not test:
        notes.append("no test clips: none of the test list was prepared")
    rng = np.random.default_rng(seed)
    train, val = _hold_out(train_all, val_fraction, rng, notes, "val")
    return Split(train, val, test, list(manifest.classes), "official", seed, notes).check()


def folder_split(train_manifest: Manifest, test_manifest: Manifest, *, val_fraction: float = 0.10,
                 seed: int = 0) -> Split:
    """Train/val from one prepared folder, test from another. Test labels are re-indexed to the
    training classes; test classes unknown to training are dropped (noted). Raises
    ``LeakageError`` if the folders share a group."""
    index = {c: i for i, c in enumerate(train_manifest.classes)}
    notes: List[str] = []
    test: List[Entry] = []
    unknown = Counter()
    for e in test_manifest.ok_entries:
        if e.label not in index:
            unknown[e.label] += 1
            continue
        test.append(replace(e, label_index=index[e.label]))
    if unknown:
        notes.append(f"test classes unknown to training dropped: "
                     + ", ".join(f"{c} ({n})" for c, n in sorted(unknown.items())))
    ts, tt = train_manifest.settings, test_manifest.settings
    for k in ("frames", "size"):
        if ts.get(k) != tt.get(k):
            raise ValueError(f"train and test caches differ in {k}: {ts.get(k)} vs {tt.get(k)}; "
                             "prepare both with the same --frames/--size")
    rng = np.random.default_rng(seed)
    train, val = _hold_out(train_manifest.ok_entries, val_fraction, rng, notes, "val")
    return Split(train, val, test, list(train_manifest.classes), "folder", seed, notes).check()
