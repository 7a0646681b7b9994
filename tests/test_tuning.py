"""Process settings applied on import (subs_model._tuning): each keeps the user's own choice."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(code: str, **env: str) -> str:
    """``code`` in a fresh interpreter, with ``env`` on top of this one's environment minus
    the variables the settings read."""
    mine = {k: v for k, v in os.environ.items()
            if k not in {"ARROW_DEFAULT_MEMORY_POOL", "NUMPY_MADVISE_HUGEPAGE", "MALLOC_TRIM_THRESHOLD_",
                         "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"}}
    done = subprocess.run([sys.executable, "-c", code], env={**mine, **env}, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_arrow_memory_pool_is_jemalloc_unless_the_user_chose_one() -> None:
    """Importing subs_model picks a fast-first-read pool, but an explicit choice is kept."""
    code = "import subs_model, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    assert _run(code) in {"jemalloc", "system"}
    assert _run(code, ARROW_DEFAULT_MEMORY_POOL="system") == "system"


def test_numpy_hugepage_advice_is_off_unless_the_user_chose() -> None:
    """Importing subs_model stops numpy's huge-page advice, but NUMPY_MADVISE_HUGEPAGE is kept."""
    code = "import subs_model; from numpy._core.multiarray import _set_madvise_hugepage as s; print(int(s(False)))"
    assert _run(code) == "0"
    assert _run(code, NUMPY_MADVISE_HUGEPAGE="1") == "1"


# Allocate and drop 160 MB of 4 MB arrays, then allocate them again: the page faults of the
# second round show whether the freed memory was kept for it.
_REUSE = """
import resource, numpy as np, subs_model
from subs_model import _tuning
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
arrays = [np.ones(2**19) for _ in range(40)]
del arrays
before = faults()
arrays = [np.ones(2**19) for _ in range(40)]
print(_tuning._keep_freed_memory(), faults() - before)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc")
def test_freed_memory_is_kept_for_the_next_arrays_unless_the_user_tuned_malloc() -> None:
    """After import, memory a replay frees is reused without fresh pages; glibc's own settings win."""
    on, faults = _run(_REUSE).split()
    assert on == "True" and int(faults) < 2_000  # 40,960 pages if each array were fresh
    off, faults = _run(_REUSE, MALLOC_TRIM_THRESHOLD_="0", MALLOC_MMAP_THRESHOLD_="65536").split()
    assert off == "False" and int(faults) > 30_000
