"""One concurrency setting for the package, and the one thread pool it keeps.

Licenses are independent, so the replay runs its compiled passes over ranges of licenses
side by side, and reading, the simulator and the what-if spread their work the same way.
How many threads (or, for the what-if, processes) they use is one setting:
:func:`workers`, by default the CPUs this process may run on (at most 8), or the
``SUBS_MODEL_WORKERS`` environment variable; :func:`set_workers` changes it. Results never
depend on it.

Work that already runs side by side in worker processes (the what-if's tasks) should not
also start threads in each process: :func:`threads_per_process` is the rule (the CPUs
divided among the processes, at least 1) and :func:`limited` applies it to one thread's
work without touching the process-wide setting.

The replay keeps its threads between replays (starting them for every replay costs more
than some replays take): :func:`pool` is that one pool, and :func:`shutdown` stops its
threads (the next replay starts them again).

>>> import subs_model as sm
>>> sm.set_workers(1); sm.workers()
1
>>> sm.set_workers(None)  # back to the default
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["MAX_DEFAULT_WORKERS", "cpus", "limited", "pool", "run", "set_workers", "shutdown", "submit",
           "threads_per_process", "workers"]

#: The default never exceeds this many workers, however many CPUs there are.
MAX_DEFAULT_WORKERS = 8

_setting: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()
_inside = threading.local()
_cap = threading.local()  # this thread's limit from limited(), if any


def _default() -> int:
    env = os.environ.get("SUBS_MODEL_WORKERS", "").strip()
    if env:
        try:
            return _checked(int(env), where="SUBS_MODEL_WORKERS")
        except ValueError:
            msg = f"SUBS_MODEL_WORKERS={env!r} is not a whole number ≥ 1; set it to e.g. 2, or unset it"
            raise ValueError(msg) from None
    return max(1, min(cpus(), MAX_DEFAULT_WORKERS))


def cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _checked(n: Any, *, where: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        msg = f"{where}: {n!r} is not a whole number ≥ 1; give the number of threads to use, e.g. 2"
        raise ValueError(msg)
    return n


def workers() -> int:
    """How many threads (what-if: processes) the package uses side by side (in this thread:
    at most its :func:`limited` cap)."""
    n = _setting if _setting is not None else _default()
    cap = getattr(_cap, "n", None)
    return n if cap is None else min(n, cap)


def threads_per_process(processes: int) -> int:
    """Threads each of ``processes`` processes working side by side may use without
    oversubscribing this machine: its CPUs shared out, at least 1 (2 processes on 2 CPUs: 1).

    >>> threads_per_process(10_000)
    1
    """
    return max(1, cpus() // max(int(processes), 1))


@contextmanager
def limited(n: int | None) -> Iterator[None]:
    """Within the block, :func:`workers` in this thread is at most ``n`` (None: no limit); the
    process-wide setting and other threads are untouched. A task running in a worker process
    of a pool that already fills the CPUs runs with ``limited(1)``: its simulation and replay
    then start no threads.

    >>> with limited(1):
    ...     workers()
    1
    """
    if n is not None:
        _checked(n, where="limited")
    before = getattr(_cap, "n", None)
    _cap.n = before if n is None else n if before is None else min(before, n)
    try:
        yield
    finally:
        _cap.n = before


def set_workers(n: int | None) -> None:
    """Use ``n`` workers from now on (None: the default); the kept pool is resized on next use."""
    global _setting
    _setting = None if n is None else _checked(n, where="set_workers")


def pool() -> ThreadPoolExecutor | None:
    """The kept pool of :func:`workers` threads; None with one worker, and inside a worker
    (its tasks then run there and then, never waiting on the pool that runs them)."""
    global _pool, _pool_size
    n = workers()
    if n < 2 or getattr(_inside, "yes", False):
        return None
    with _lock:
        if _pool is None or _pool_size != n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="subs_model",
                                       initializer=setattr, initargs=(_inside, "yes", True))
            _pool_size = n
        return _pool


def shutdown() -> None:
    """Stop the kept pool's threads (waiting for running tasks); the next replay starts new ones."""
    global _pool, _pool_size
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool, _pool_size = None, 0


def run(fn: Callable[[int, int], Any], ranges: list[tuple[int, int]]) -> list[Any]:
    """``fn(lo, hi)`` for each range, side by side on the kept pool when there are several
    (threads take the ranges as they come free)."""
    ex = pool() if len(ranges) > 1 else None
    if ex is None:
        return [fn(*r) for r in ranges]
    return [f.result() for f in [ex.submit(fn, *r) for r in ranges]]


def submit(pool: ThreadPoolExecutor | None, fn: Callable[..., Any], *args: Any) -> Future:
    """``fn(*args)`` on ``pool``, or here and now without one; either way an error it raises
    comes out of the future's ``result()``, so checks raise in one order on both paths."""
    if pool is not None:
        return pool.submit(fn, *args)
    done: Future = Future()
    try:
        done.set_result(fn(*args))
    except BaseException as exc:  # noqa: BLE001 - raised again by result()
        done.set_exception(exc)
    return done


def _forget() -> None:
    """In a forked child the pool's threads do not exist: start anew."""
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()


os.register_at_fork(after_in_child=_forget)
