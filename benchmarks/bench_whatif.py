"""What-if speed: 3 scenarios × 200 runs × ~10 k licenses × 36 months, with 1 and 2 workers.

Every run simulates the customer base forward and replays it with the compiled engine,
then measures monthly bookings, recognised revenue, active licenses and outcomes.
Prints the wall time with one and with two local worker processes (target ≤ 60 s on a
2-core machine) and checks the two give identical results.

    python benchmarks/bench_whatif.py [--runs 200]

Not a test: run it by hand on an otherwise idle machine.
"""

from __future__ import annotations

import subs_model

subs_model.tune_process()  # a benchmark owns its process: tuned before numpy and Arrow load

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import subs_model as sm
from subs_model.whatif import Scenario, run_scenarios


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    led = sm.read_ledger("data/sample")
    scenarios = [Scenario("baseline"), Scenario("grace 30", catalog={"grace_days": 30}),
                 Scenario("renewal 3500", catalog={"prices": {"full": {"renewal": 3500}, "basic": {"renewal": 3500}}})]
    base = run_scenarios(led, scenarios[:1], "2026-10-31", horizon_months=1, runs=2)
    beh = base.behaviour  # calibrate once, outside the timings
    n_init = int(base.summary["active_mean"].iloc[0])
    timings = {}
    results = {}
    for workers in (1, 2):
        with ProcessPoolExecutor(max_workers=workers) as ex:
            run_scenarios(led, scenarios[:1], "2026-10-31", horizon_months=1, runs=2, executor=ex, behaviour=beh)  # warm workers
            t = time.perf_counter()
            results[workers] = run_scenarios(led, scenarios, "2026-10-31", horizon_months=36, runs=args.runs, executor=ex, behaviour=beh)
            timings[workers] = time.perf_counter() - t
    same = all(np.array_equal(results[1].runs[k], results[2].runs[k]) for k in results[1].runs)
    print(f"{len(scenarios)} scenarios × {args.runs} runs × 36 months, {len(led.licenses):,} licenses in the ledger "
          f"(~{n_init:,} active at the start, plus arrivals)")
    print(f"  1 worker : {timings[1]:6.1f} s")
    print(f"  2 workers: {timings[2]:6.1f} s   (speed-up {timings[1] / timings[2]:.2f}x; identical results: {same})")
    print(f"  per run  : {timings[2] / (len(scenarios) * args.runs) * 1000:.0f} ms with 2 workers (target: all ≤ 60 s)")


if __name__ == "__main__":
    main()
