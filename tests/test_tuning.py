"""A guest in its host: importing subs_model changes nothing; tune_process() is explicit and keeps the user's choices.

Each test runs a fresh interpreter, since these settings are per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
USER_VARS = {"ARROW_DEFAULT_MEMORY_POOL", "NUMPY_MADVISE_HUGEPAGE", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
             "GLIBC_TUNABLES", "NUMBA_DISABLE_JIT"}


def _run(code: str, **env: str) -> str:
    """``code`` in a fresh interpreter, with ``env`` on top of this one's environment minus
    the variables the settings read."""
    mine = {k: v for k, v in os.environ.items() if k not in USER_VARS}
    done = subprocess.run([sys.executable, "-c", code], env={**mine, **env}, capture_output=True, text=True, check=True,
                          cwd=ROOT)
    return done.stdout.strip()


# Allocate and drop 160 MB of 4 MB arrays, then allocate them again: the page faults of the
# second round show whether the freed memory was kept for it.
_REUSE = """
{setup}
import resource, numpy as np
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
arrays = [np.ones(2**19) for _ in range(40)]
del arrays
before = faults()
arrays = [np.ones(2**19) for _ in range(40)]
print(faults() - before)
"""


def test_import_changes_nothing_in_the_host_process() -> None:
    """`import subs_model` (and using it) leaves Arrow's pool, numpy's switch and glibc's malloc as they were."""
    probe = ("import os, pyarrow as pa; {imp}; import numpy; "
             "print(pa.default_memory_pool().backend_name, os.environ.get('NUMPY_MADVISE_HUGEPAGE'))")
    bare = _run(probe.format(imp="pass"))
    assert _run(probe.format(imp="import subs_model as sm; sm.Catalog.default(); sm.read_ledger('tests/data/handmade')")) == bare
    assert bare.endswith(" None")
    setup = "import os; os.environ['NUMPY_MADVISE_HUGEPAGE'] = '0'"  # small pages, so faults count pages
    faults = int(_run(_REUSE.format(setup=setup + "; import subs_model as sm; sm.Catalog.default()")))
    assert faults > 30_000  # 40,960 pages: every array on fresh pages, glibc's default


def test_import_is_light() -> None:
    """`import subs_model` loads none of the heavy libraries; they load on first use of a name."""
    out = _run("import sys, subs_model; heavy = ('numpy', 'pandas', 'pyarrow', 'numba', 'pandera', 'scipy', 'plotly', "
               "'papermill'); print(sorted(m for m in heavy if m in sys.modules)); subs_model.replay; "
               "print('numba' in sys.modules)")
    assert out.splitlines() == ["[]", "True"]


def test_tune_process_sets_each_setting_unless_the_user_chose() -> None:
    """tune_process(): jemalloc (or system) pool, numpy's huge pages off, freed memory kept — each unless set by the user."""
    code = ("import subs_model; r = subs_model.tune_process(); import numpy, pyarrow as pa; "
            "from numpy._core.multiarray import _set_madvise_hugepage as s; "  # the test may peek at numpy's state
            "print(pa.default_memory_pool().backend_name, int(s(False)), r['keep_freed_memory'])")
    pool, hugepages, kept = _run(code).split()
    assert pool in {"jemalloc", "system"} and hugepages == "0" and kept == "True"
    pool, hugepages, kept = _run(code, ARROW_DEFAULT_MEMORY_POOL="system", NUMPY_MADVISE_HUGEPAGE="1",
                                 MALLOC_TRIM_THRESHOLD_="0").split()
    assert (pool, hugepages, kept) == ("system", "1", "False")


def test_tune_process_after_numpy_says_this_process_keeps_numpys_advice() -> None:
    """Called after numpy is imported, tune_process() says the huge-page switch only reaches child processes."""
    out = _run("import numpy, subs_model; print(subs_model.tune_process()['numpy_hugepages'])")
    assert out == "off in child processes (numpy was imported before tune_process(): this process keeps its advice)"


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc")
def test_freed_memory_is_kept_after_tune_process_unless_the_user_tuned_malloc() -> None:
    """After tune_process(), memory a replay frees is reused without fresh pages; glibc's own settings win."""
    setup = "import subs_model; subs_model.tune_process()"
    assert int(_run(_REUSE.format(setup=setup))) < 2_000
    assert int(_run(_REUSE.format(setup=setup), MALLOC_TRIM_THRESHOLD_="0", MALLOC_MMAP_THRESHOLD_="65536")) > 30_000


def test_the_command_line_tunes_its_own_process() -> None:
    """The `subs-model` entry point owns its process: it tunes it before running the command."""
    code = ("import sys, pyarrow as pa; from subs_model.__main__ import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "import os; print(pa.default_memory_pool().backend_name, os.environ['NUMPY_MADVISE_HUGEPAGE'])")
    pool, hugepages = _run(code).splitlines()[-1].split()
    assert pool in {"jemalloc", "system"} and hugepages == "0"


def test_replay_runs_without_the_jit() -> None:
    """NUMBA_DISABLE_JIT=1 runs the compiled passes as plain Python (for a debugger or coverage), same result."""
    code = ("import subs_model as sm, hashlib\n"
            "rep = sm.replay(sm.read_ledger('tests/data/handmade'), sm.Catalog.default(), as_of='2026-10-31')\n"
            "print(hashlib.sha256(b''.join(df.to_csv(index=False).encode() for df in "
            "(rep.periods, rep.codes, rep.rejections))).hexdigest(), len(rep.periods))")
    compiled = _run(code)
    assert _run(code, NUMBA_DISABLE_JIT="1") == compiled
    assert int(compiled.split()[1]) > 0


def test_one_concurrency_setting_with_a_pool_that_can_be_shut_down() -> None:
    """workers() defaults to the CPUs (at most 8) or SUBS_MODEL_WORKERS; set_workers checks its value; the kept
    pool follows the setting and shutdown() stops its threads (the next replay starts new ones)."""
    code = ("import os, threading, subs_model as sm\n"
            "import importlib; w = importlib.import_module('subs_model.workers')\n"
            "cpus = min(len(os.sched_getaffinity(0)), 8)\n"
            "print(sm.workers() == cpus)\n"
            "sm.set_workers(3); p = w.pool(); print(p._max_workers)\n"
            "try:\n    sm.set_workers(0)\nexcept ValueError as e:\n    print(e)\n"
            "sm.shutdown(); print(w._pool is None)\n"
            "sm.set_workers(1); print(w.pool())\n")
    assert _run(code).splitlines() == [
        "True", "3", "set_workers: 0 is not a whole number ≥ 1; give the number of threads to use, e.g. 2", "True", "None"]
    assert _run("import subs_model as sm; print(sm.workers())", SUBS_MODEL_WORKERS="5") == "5"
