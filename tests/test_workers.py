"""The concurrency setting: the per-thread cap that what-if tasks run under."""

from __future__ import annotations

import importlib
import threading

import pytest

W = importlib.import_module("subs_model.workers")  # the package's name `workers` is the function


def test_limited_caps_this_thread_only_and_restores() -> None:
    W.set_workers(4)
    try:
        seen: list[int] = []
        with W.limited(1):
            assert W.workers() == 1
            assert W.pool() is None  # one worker: the replay runs its ranges here, no threads
            other = threading.Thread(target=lambda: seen.append(W.workers()))
            other.start()
            other.join()
            with W.limited(3):  # a cap never raises an outer one
                assert W.workers() == 1
            with W.limited(None):
                assert W.workers() == 1
        assert seen == [4]  # another thread keeps the process-wide setting
        assert W.workers() == 4
        with W.limited(8):  # a cap above the setting changes nothing
            assert W.workers() == 4
    finally:
        W.set_workers(None)


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_limited_refuses_a_non_count(n) -> None:
    with pytest.raises(ValueError, match="whole number"), W.limited(n):
        pass


def test_threads_per_process_shares_the_cpus_out() -> None:
    cpus = W.cpus()
    assert W.threads_per_process(1) == cpus
    assert W.threads_per_process(cpus) == 1
    assert W.threads_per_process(10 * cpus) == 1
    assert W.threads_per_process(0) == cpus
