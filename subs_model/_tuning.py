"""Process settings that make large reads and replays faster: :func:`tune_process`.

A library is a guest in its host process, so importing ``subs_model`` changes none of
these. Programs that own their process — the ``subs-model`` CLI, the report runner, the
benchmarks — call :func:`tune_process` first. Each setting keeps the user's own choice
made through the library's own environment variable. What they buy is measured in
``docs/performance.md``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

__all__ = ["tune_process"]


def _prefer_jemalloc() -> str:
    """Use Arrow's jemalloc pool (else the system allocator) unless the user chose a pool.

    Arrow's default mimalloc pool faults in fresh pages on a process's first large read,
    which made it markedly slower here (docs/performance.md). Setting
    ``ARROW_DEFAULT_MEMORY_POOL`` keeps the user's choice. Returns the pool in use.
    """
    import pyarrow as pa

    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except NotImplementedError:  # a pyarrow built without jemalloc
            pa.set_memory_pool(pa.system_memory_pool())
    return pa.default_memory_pool().backend_name


def _no_numpy_hugepages() -> str:
    """Stop numpy asking the kernel for huge pages, unless the user set ``NUMPY_MADVISE_HUGEPAGE``.

    numpy advises huge pages for every array of 4 MB or more. Where the kernel's THP
    ``defrag`` setting is ``madvise`` and memory is fragmented, each such fault tries a
    direct compaction and falls back to small pages (see ``docs/performance.md``). numpy
    reads its public switch, the environment variable ``NUMPY_MADVISE_HUGEPAGE``, when it
    is imported: it is set here for this process (when numpy is not imported yet) and for
    the processes it starts. Returns what is in effect.
    """
    if "numpy" not in _NUMPY_SET and "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return f"the user's choice (NUMPY_MADVISE_HUGEPAGE={os.environ['NUMPY_MADVISE_HUGEPAGE']})"
    if "numpy" not in _NUMPY_SET:
        os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"
        _NUMPY_SET["numpy"] = "numpy" in sys.modules  # imported already: too late for this process
    if _NUMPY_SET["numpy"]:
        return "off in child processes (numpy was imported before tune_process(): this process keeps its advice)"
    return "off"


#: Whether tune_process() set numpy's switch, and whether numpy had been imported by then.
_NUMPY_SET: dict[str, bool] = {}


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
    of the heap, so each replay's arrays come on fresh pages the kernel zeroes on first
    touch (docs/performance.md has the page faults and times). The cost: a process keeps up
    to ``TRIM_THRESHOLD`` of free heap after a replay instead of returning it. Returns
    whether the setting is in effect (False where the C library is not glibc).
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


def tune_process() -> dict[str, object]:
    """Tune this process for large reads and replays; returns what is in effect (idempotent).

    - Arrow's memory pool: jemalloc (else the system allocator) instead of mimalloc, unless
      ``ARROW_DEFAULT_MEMORY_POOL`` is set;
    - numpy's huge-page advice off (``NUMPY_MADVISE_HUGEPAGE=0``, for this process if numpy
      is not imported yet, and for the processes it starts), unless the user set it;
    - glibc's malloc keeps up to 256 MB of freed memory for the next arrays, unless
      ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_`` or ``GLIBC_TUNABLES`` is set.

    Call it first thing in a program that owns its process (the CLI does); importing
    ``subs_model`` never does it.

    >>> import subs_model
    >>> subs_model.tune_process()  # doctest: +SKIP
    {'numpy_hugepages': 'off', 'arrow_pool': 'jemalloc', 'keep_freed_memory': True}
    """
    return {
        "numpy_hugepages": _no_numpy_hugepages(),
        "arrow_pool": _prefer_jemalloc(),
        "keep_freed_memory": _keep_freed_memory(),
    }
