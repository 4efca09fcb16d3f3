"""Handing freed memory back to the system between a grading's steps (Gradescope's container has 768 MB).

A grading keeps three Python processes with torch alive (the grader and up to two workers). glibc keeps the memory
of freed small objects (an LSTM's autograd graph, step by step, is thousands of small tensors) in its heap, where
nobody else can use it: ``release_memory`` collects Python's cycles and asks glibc to return every free page
(``malloc_trim(0)``). The worker calls it after each probe, the grader's plugin after each test. It changes no
result, only how much memory a process holds while it waits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys

_TRIM: list = []  # [malloc_trim or None], looked up once


def _malloc_trim():
    if not _TRIM:
        fn = None
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
                fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
            except (OSError, AttributeError):  # not glibc (musl...): nothing to ask
                fn = None
        _TRIM.append(fn)
    return _TRIM[0]


LOW_MEMORY_ENV = "COURSEKIT_LOW_MEMORY"  # set by the Gradescope bundle's run_autograder (coursekit/export/scripts.py)


def low_memory() -> bool:
    """True where the grading must fit a small memory limit (``COURSEKIT_LOW_MEMORY=1``; Gradescope's 768 MB): graders
    then take big raw outputs a few rows at a time and end workers as soon as they are done with them. The figures are
    the same bit for bit either way; the small steps cost time (for the PixelRNN about 20 calls and a worker start more
    per grading, ~17 s on a loaded machine), so where memory is plenty graders take them whole."""
    return os.environ.get(LOW_MEMORY_ENV, "") not in ("", "0")


def release_memory(full: bool = True) -> bool:
    """Collect garbage and return the allocator's free pages to the system; True where glibc could be asked.
    ``full``: every generation of Python's collector (half a second with torch loaded, on a busy machine); otherwise
    only the young ones (milliseconds): what a call freed is mostly freed already, by reference counting."""
    gc.collect() if full else gc.collect(1)
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True


def resident_anon_mb() -> float:
    """This process's resident anonymous memory (MB; /proc/self/status RssAnon), NaN where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
