"""Process settings that make a replay fast, applied when ``subs_model`` is imported.

Each one keeps the user's own choice when they made it through the library's own
environment variable. They are measured on the 2-core virtual machines this runs on;
the README's speed section gives the figures.
"""

from __future__ import annotations

import ctypes
import os
import platform

import pyarrow as pa

__all__ = ["apply"]


def _prefer_jemalloc() -> str:
    """Use Arrow's jemalloc pool (else the system allocator) unless the user chose a pool.

    Arrow's default mimalloc pool faults in fresh pages on a process's first large read:
    measured here, the first 2.5 M-row export read took 3.6–4.4 s with it and 2.3 s with
    jemalloc or the system allocator (later reads about 2.1–2.3 s with any). Setting
    ``ARROW_DEFAULT_MEMORY_POOL`` keeps the user's choice. Returns the pool in use.
    """
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except NotImplementedError:  # a pyarrow built without jemalloc
            pa.set_memory_pool(pa.system_memory_pool())
    return pa.default_memory_pool().backend_name


def _no_numpy_hugepages() -> bool:
    """Stop numpy asking the kernel for huge pages, unless the user set ``NUMPY_MADVISE_HUGEPAGE``.

    numpy advises huge pages for every array of 4 MB or more. Where the kernel's THP
    ``defrag`` setting is ``madvise`` and memory is fragmented, each such fault tries a
    direct compaction and falls back to small pages: measured here, writing fresh arrays
    cost 2.9 ms/MB with the advice and 0.4 ms/MB without (a cold 1 M-event replay took
    about twice as long with it). Returns whether numpy still advises huge pages.
    """
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # pragma: no cover - a numpy without the switch
        return False
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:  # numpy read the user's choice at import: keep it
        enabled = _set_madvise_hugepage(False)
        _set_madvise_hugepage(enabled)
        return bool(enabled)
    _set_madvise_hugepage(False)
    return False


#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap (glibc's own ceiling for the threshold it
#: adapts by itself); larger ones are mapped and unmapped as before.
MMAP_THRESHOLD = 32 * 2**20
#: Free memory kept at the top of the heap for the next arrays.
TRIM_THRESHOLD = 256 * 2**20


def _keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep up to ``TRIM_THRESHOLD`` of freed memory for reuse, unless
    the user set glibc's own ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_`` or
    ``GLIBC_TUNABLES``.

    By default glibc gives back to the kernel all but 64 MB of the memory freed at the top
    of the heap; a replay allocates and drops 100–200 MB of arrays, so the next one gets
    fresh pages and the kernel zeroes each on first touch. Measured here, a cold 1 M-event
    replay took about 9,000 page faults by default and about 1,100 with the memory kept
    (sys time 30–50 ms → about 0), and ran 10–15 % faster. The cost: a process keeps up to
    ``TRIM_THRESHOLD`` of free heap after a replay instead of returning it. Returns whether
    the setting is in effect (False where the C library is not glibc).
    """
    if any(k in os.environ for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - a glibc without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def apply() -> dict[str, object]:
    """Apply every setting (idempotent); returns what is in effect."""
    return {
        "arrow_pool": _prefer_jemalloc(),
        "numpy_hugepages": _no_numpy_hugepages(),
        "keep_freed_memory": _keep_freed_memory(),
    }
