"""``subs-model`` and ``python -m subs_model``: the command line, in a process it owns.

The process is tuned (:func:`subs_model.tune_process`) before numpy and Arrow are imported,
then the argument parser of :mod:`subs_model.cli` runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``subs-model`` command; returns the exit code."""
    from ._tuning import tune_process

    tune_process()
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
