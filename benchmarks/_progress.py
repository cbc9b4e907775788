"""Progress bars: tqdm when installed (host), a plain line per step otherwise (devices)."""
import sys


def progress(iterable, desc: str = "", total=None, leave: bool = True, disable: bool = False):
    try:
        from tqdm import tqdm
    except ImportError:
        return _Plain(iterable, desc, total, disable)
    return tqdm(iterable, desc=desc, total=total, leave=leave, disable=disable, file=sys.stderr,
                dynamic_ncols=True)


class _Plain:
    def __init__(self, iterable, desc, total, disable):
        self.it, self.desc, self.disable = iterable, desc, disable
        try:
            self.total = total if total is not None else len(iterable)
        except TypeError:
            self.total = None

    def __iter__(self):
        n = 0
        for x in self.it:
            yield x
            n += 1
            if not self.disable and (self.total is None or n == self.total or n % max(1, (self.total or 10) // 10) == 0):
                print(f"{self.desc}: {n}/{self.total if self.total is not None else '?'}", file=sys.stderr, flush=True)
