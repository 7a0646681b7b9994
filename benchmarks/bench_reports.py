"""Report suite speed: the four report notebooks on the sample data, next to a bare kernel start.

    python benchmarks/bench_reports.py

Prints each notebook's wall time (papermill run + HTML conversion + atomic publish) and,
for comparison, the time papermill takes to run an empty notebook (kernel start and
shutdown), so the cost of the analysis itself is visible. Target: the four report notebooks
≤ 30 s (the pricing what-if notebook, issue 7, is timed beside them).
Not a test: run it by hand on an otherwise idle machine.
"""

from __future__ import annotations

import subs_model

subs_model.tune_process()  # a benchmark owns its process: tuned before numpy and Arrow load

import tempfile
import time
from pathlib import Path

import nbformat
import papermill as pm
from nbformat.v4 import new_code_cell, new_notebook

from subs_model.reports import run_reports


def bare_kernel(tmp: Path) -> float:
    nb = new_notebook(cells=[new_code_cell("1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp / "bare.ipynb"
    nbformat.write(nb, src)
    t = time.perf_counter()
    pm.execute_notebook(str(src), str(tmp / "bare-out.ipynb"), kernel_name="python3", progress_bar=False)
    return time.perf_counter() - t


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bare = min(bare_kernel(tmp) for _ in range(3))
        t = time.perf_counter()
        results = run_reports(notebooks="notebooks", out=tmp / "reports", log=lambda *a, **k: None)
        total = time.perf_counter() - t
    print(f"bare kernel start (papermill, empty notebook): {bare:.2f} s")
    for r in results:
        print(f"  {r.name:22} {r.status:6} {r.seconds:6.2f} s  ({r.seconds - bare:+.2f} s over a bare kernel)")
    four = sum(r.seconds for r in results if not r.name.startswith("05"))
    print(f"the four report notebooks: {four:.1f} s (target ≤ 30 s); all {len(results)} notebooks: {total:.1f} s")


if __name__ == "__main__":
    main()
