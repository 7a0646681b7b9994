"""``subs-model`` and ``python -m subs_model``: the command line, in a process it owns.

The process is tuned (:func:`subs_model.tune_process`) before numpy and Arrow are imported,
then the argument parser of :mod:`subs_model.cli` runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any


class _ClosedPipeSafe:
    """Standard output that stops writing, silently, once its reader has gone (``| head``):
    the command still finishes its work (an ingest, files written) and exits with its own code."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self.gone = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``subs-model`` command; returns the exit code."""
    from ._tuning import tune_process

    tune_process()
    from .cli import main as cli_main

    out = sys.stdout = _ClosedPipeSafe(sys.stdout)
    try:
        return cli_main(argv)
    finally:
        out.flush()
        if out.gone:  # nothing more may reach the closed pipe, not even the flush at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())


if __name__ == "__main__":
    sys.exit(main())
