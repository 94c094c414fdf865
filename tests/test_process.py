"""The process around a fit: the C heap's free pages go back to the system."""

import ctypes
import ctypes.util
import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import json, sys
import numpy as np
from skavae._process import trim_heap


def anon():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("RssAnon")) * 1024


np.ones(2**21)  # a 16 MiB block, freed: glibc's mmap threshold rises to 16 MiB
blocks = [np.ones(3 * 2**17) for _ in range(64)]  # 64 x 3 MiB, now from the heap
keep = blocks[1::2]  # every other block stays: the free ones are fragments
del blocks
before = anon()
if sys.argv[1] == "trim":
    trim_heap()
print(json.dumps({"released": before - anon()}))
"""


def _glibc():
    if not sys.platform.startswith("linux"):
        return False
    try:
        return hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_trim")
    except OSError:
        return False


@pytest.mark.skipif(not _glibc(), reason="glibc's malloc_trim")
def test_trim_heap_returns_the_free_fragments():
    env = dict(os.environ)
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        env.pop(name, None)
    released = {}
    for mode in ("trim", "none"):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        released[mode] = json.loads(done.stdout)["released"]
    # 32 free fragments of 3 MiB between live blocks: about 96 MiB
    assert released["trim"] > 64 * 2**20
    assert abs(released["none"]) < 16 * 2**20  # nothing goes back by itself
