"""The event/sink/web modules must stay importable on the boards' Python 3.6: compile them with a real
3.6 interpreter (pyenv's, when present) - catches f"{x=}", walrus, ``list[int]`` annotations, ..."""
import glob
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY36 = os.path.expanduser("~/.pyenv/versions/3.6.15/bin/python")
FILES = sorted([os.path.join(ROOT, "edge", "events.py")] + glob.glob(os.path.join(ROOT, "edge", "eventsinks", "*.py"))
               + glob.glob(os.path.join(ROOT, "edge", "web", "*.py")))


# names that compile on 3.6 but fail there at import or run time
NOT_ON_36 = ("dataclasses", "nullcontext", "perf_counter_ns", "cached_property", "capture_output", "removeprefix",
             "removesuffix", "math.prod", "ThreadingHTTPServer", "Literal[", "Protocol)", "TypedDict", "Final[",
             "asyncio.run(", "text=True")


def test_event_modules_use_nothing_newer_than_36():
    bad = ["{}: {}".format(os.path.relpath(f, ROOT), n) for f in FILES for n in NOT_ON_36 if n in open(f).read()]
    assert not bad, bad


@pytest.mark.skipif(not os.path.exists(PY36), reason="no Python 3.6 interpreter at " + PY36)
def test_event_modules_compile_on_python36():
    code = ("import sys, ast\nbad = []\nfor f in sys.argv[1:]:\n"
            "    src = open(f).read()\n"
            "    try:\n        compile(src, f, 'exec')\n    except SyntaxError as e:\n        bad.append('%s: %s' % (f, e))\n"
            "    if 'from __future__ import annotations' in src:\n        bad.append(f + ': future annotations')\n"
            "print('\\n'.join(bad))\n")
    out = subprocess.run([PY36, "-c", code] + FILES, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout.decode()
    assert len(FILES) >= 12
