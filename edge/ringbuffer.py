"""A fixed-capacity ring buffer over preallocated numpy arrays (no growth, no per-item allocation).

Each entry has an integer ``key`` (the runner uses the frame's time slot), a timestamp, and one
value per named field (e.g. ``frame`` uint8 HxWx3 and ``feature`` float32 F). A field can be filled
later (``set``), which is how streaming caches encoder features: a frame is encoded at most once.
Keys must not decrease; ``find(key)`` returns the newest entry with a key <= ``key`` (a dropped
frame's slot is served by the frame before it).
"""

import bisect
from typing import Dict, List, Optional, Tuple

import numpy as np


class RingBuffer:
    def __init__(self, capacity: int, **fields: Tuple[tuple, object]):
        """``fields``: name=(shape, dtype) for each stored value."""
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.keys = np.zeros(self.capacity, dtype=np.int64)
        self.times = np.zeros(self.capacity, dtype=np.float64)
        self.data: Dict[str, np.ndarray] = {n: np.zeros((self.capacity,) + tuple(s), dtype=d)
                                            for n, (s, d) in fields.items()}
        self.valid: Dict[str, np.ndarray] = {n: np.zeros(self.capacity, dtype=bool) for n in fields}
        self._start = 0   # physical index of the oldest entry
        self._len = 0

    def __len__(self) -> int:
        return self._len

    @property
    def full(self) -> bool:
        return self._len == self.capacity

    def clear(self) -> None:
        self._start = self._len = 0
        for v in self.valid.values():
            v[:] = False

    def _phys(self, i: int) -> int:
        """Physical index of logical position ``i`` (0 = oldest, -1 = newest)."""
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(i)
        return (self._start + i) % self.capacity

    def position(self, i: int) -> int:
        """Physical index of logical entry ``i`` (0 = oldest, -1 = newest)."""
        return self._phys(i)

    def append(self, key: int, time: float = 0.0, **values) -> int:
        """Add an entry (overwriting the oldest when full); returns its physical index."""
        if self._len and key < self.keys[self._phys(-1)]:
            raise ValueError(f"keys must not decrease ({key} after {self.keys[self._phys(-1)]})")
        if self._len < self.capacity:
            p = (self._start + self._len) % self.capacity
            self._len += 1
        else:
            p = self._start
            self._start = (self._start + 1) % self.capacity
        self.keys[p] = key
        self.times[p] = time
        for name in self.data:
            self.valid[name][p] = False
        for name, v in values.items():
            self.set(p, name, v)
        return p

    def set(self, phys: int, name: str, value) -> None:
        self.data[name][phys] = value
        self.valid[name][phys] = True

    def ordered_keys(self) -> List[int]:
        return [int(self.keys[self._phys(i)]) for i in range(self._len)]

    def find(self, key: int) -> Optional[int]:
        """Physical index of the newest entry with key <= ``key``; None if all are newer."""
        if not self._len:
            return None
        keys = self.ordered_keys() if self._len < 64 else None
        if keys is None:  # avoid building a list for big buffers: binary search on logical positions
            lo, hi = 0, self._len
            while lo < hi:
                mid = (lo + hi) // 2
                if self.keys[self._phys(mid)] <= key:
                    lo = mid + 1
                else:
                    hi = mid
            i = lo - 1
        else:
            i = bisect.bisect_right(keys, key) - 1
        return None if i < 0 else self._phys(i)
