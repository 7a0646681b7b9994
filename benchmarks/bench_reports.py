"""Report suite speed: every report notebook on the sample and on a 100 k-license simulated ledger.

    python benchmarks/bench_reports.py [--licenses 100000] [--skip-sample] [--jobs 2] [--ledger DIR] [--only NAME ...]

For each ledger, prints each notebook's wall time (papermill run + HTML conversion + atomic
publish), the runner's own work around them (parameter and domain checks, which read the
ledger, and the summary page's headline KPIs from one replay), and the whole suite. For
comparison it first times papermill on an empty notebook (kernel start and shutdown), so the
cost of the analysis itself is visible. Target: the whole suite on 100 k licenses ≤ 60 s.
Not a test: run it by hand on an otherwise idle machine.
"""

from __future__ import annotations

import subs_model

subs_model.tune_process()  # a benchmark owns its process: tuned before numpy and Arrow load

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import papermill as pm
from nbformat.v4 import new_code_cell, new_notebook

import subs_model as sm
from subs_model.reports import default_jobs, run_reports
from subs_model.resources import data_dir


def bare_kernel(tmp: Path) -> float:
    nb = new_notebook(cells=[new_code_cell("1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp / "bare.ipynb"
    nbformat.write(nb, src)
    t = time.perf_counter()
    pm.execute_notebook(str(src), str(tmp / "bare-out.ipynb"), kernel_name="python3", progress_bar=False)
    return time.perf_counter() - t


def simulated(tmp: Path, licenses: int) -> Path:
    """A ledger of about ``licenses`` licenses: the shipped behaviour with arrivals and legacy scaled up."""
    base = sm.Behaviour.from_yaml(data_dir() / "behaviour.yaml")
    scale = licenses / 10_190  # the sample: 10 190 licenses from this behaviour
    beh = base.with_changes(arrivals_per_month=base.arrivals_per_month * scale, legacy_licenses=round(base.legacy_licenses * scale))
    t = time.perf_counter()
    led = sm.simulate(beh, sm.Catalog.from_yaml(data_dir() / "catalog.yaml"), start="2021-01-01", end="2026-10-31", seed=1)
    out = led.write(tmp / f"ledger-{licenses}")
    shutil.copy(data_dir() / "sample" / "features.csv", out / "features.csv")
    print(f"simulated {len(led.licenses):,} licenses, {len(led.orders):,} orders, {len(led.activations):,} activations "
          f"in {time.perf_counter() - t:.1f} s")
    return out


def suite(label: str, data: Path, out: Path, bare: float, jobs: int | None, only: tuple[str, ...] = ()) -> None:
    jobs = default_jobs() if jobs is None else jobs
    t = time.perf_counter()
    results = run_reports(only, out=out, text_params={"data": str(data)}, log=lambda *a, **k: None, jobs=jobs)
    total = time.perf_counter() - t
    print(f"{label}:")
    for r in results:
        print(f"  {r.name:22} {r.status:6} {r.seconds:6.2f} s  ({r.seconds - bare:+.2f} s over a bare kernel)")
    nbs = sum(r.seconds for r in results)
    if jobs == 1:  # side by side, the notebooks' times overlap and do not add up
        print(f"  runner (checks, summary KPIs, index) {total - nbs:6.2f} s")
    print(f"  whole suite {total:.1f} s" + ("" if all(r.status == "ok" for r in results) else "  (SOME FAILED)"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--licenses", type=int, default=100_000)
    ap.add_argument("--skip-sample", action="store_true")
    ap.add_argument("--jobs", type=int, default=None, help="notebooks run side by side (default: run_reports' default)")
    ap.add_argument("--ledger", type=Path, help="a ledger folder to use instead of simulating one (e.g. kept from a previous run)")
    ap.add_argument("--only", nargs="*", default=(), help="run only these notebooks (names without .ipynb)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bare = min(bare_kernel(tmp) for _ in range(3))
        print(f"bare kernel start (papermill, empty notebook): {bare:.2f} s")
        if not args.skip_sample:
            suite(f"sample (10 190 licenses), jobs={args.jobs}", data_dir() / "sample", tmp / "reports-sample", bare, args.jobs,
                  tuple(args.only))
        data = args.ledger or simulated(tmp, args.licenses)
        suite(f"{data.name if args.ledger else f'simulated ({args.licenses:,} licenses)'}, jobs={args.jobs}, target ≤ 60 s",
              data, tmp / "reports-big", bare, args.jobs, tuple(args.only))


if __name__ == "__main__":
    main()
