"""The process around a fit: the allocator's fixed mmap threshold."""

import ctypes
import ctypes.util
import os
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, ctypes.util, json, sys
import numpy as np
from skavae._process import fix_mmap_threshold


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
fixed = fix_mmap_threshold()
a = np.ones(2**19)  # 4 MiB: above the 128 KiB threshold, so mmap-served
del a               # freeing it raises glibc's dynamic threshold to 4 MiB
before = libc.mallinfo2().hblkhd
b = np.ones(3 * 2**17)  # 3 MiB: mmap-served only if the threshold is fixed
print(json.dumps({"fixed": fixed, "mmapped": libc.mallinfo2().hblkhd - before}))
"""


def _glibc_mallinfo2():
    if not sys.platform.startswith("linux"):
        return False
    try:
        return hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not _glibc_mallinfo2(), reason="needs glibc >= 2.33")
@pytest.mark.parametrize("setting", ["skavae", "default"])
def test_mmap_threshold_stays_fixed_so_large_blocks_leave_the_heap(setting):
    import json

    env = dict(os.environ)
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    if setting == "default":
        env["SKAVAE_MALLOC"] = "default"
    else:
        env.pop("SKAVAE_MALLOC", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    if setting == "skavae":
        # the 3 MiB block is mmap-served, so freeing it returns it
        assert result["fixed"] is True
        assert result["mmapped"] >= 3 * 2**20
    else:
        # glibc's dynamic threshold moved the second block into the heap
        assert result["fixed"] is False
        assert result["mmapped"] < 3 * 2**20
