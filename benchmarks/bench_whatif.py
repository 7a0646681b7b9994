"""What-if speed at decision size: 5 scenarios × 5 elasticities × 100 runs × 36 months on ~100 k licenses,
and the break-even elasticity of 2 price scenarios.

A ledger is simulated once (about 100 k licenses covered on ``as_of``), calibrated once
(outside the timings), then, with two local worker processes:

1. ``run_scenarios`` of the shipped scenarios (baseline, grace 30, renewal 3000, renewal
   3500, from expiry) over the elasticities 0, 0.5, 1, 1.5, 2 (central 1.0), 100 runs,
   36 months — target ≤ 60 s. Scenarios that keep today's renewal price are simulated once
   for the whole grid; the line says how many runs were simulated;
2. ``break_even`` of renewal 3000 and renewal 3500 (40 runs a step) — target ≤ 30 s;
3. the peer: the same two break-evens read off the fan's own five-point grid by linear
   interpolation (no extra runs) — what one would do without the root search.

Each figure is printed as soon as it is measured, with the CPU time the two worker processes
spent on it (read from ``/proc``; less sensitive than wall time to other programs sharing the
machine) and the load average.

    python benchmarks/bench_whatif.py [--runs 100] [--licenses 100000]

Not a test: run it by hand, and say whether the machine was shared.
"""

from __future__ import annotations

import subs_model

subs_model.tune_process()  # a benchmark owns its process: tuned before numpy and Arrow load

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import subs_model as sm
from subs_model.whatif import load_scenarios, prepare_start, run_scenarios

AS_OF = "2026-10-31"
GRID = [0.0, 0.5, 1.0, 1.5, 2.0]


def _ledger(n: int) -> sm.Ledger:
    """A simulated ledger with about ``n`` licenses covered on AS_OF."""
    beh = sm.Behaviour(arrivals_per_month=n / 60, legacy_licenses=int(n * 0.45), arrivals_growth=0.004)
    return sm.simulate(beh, sm.Catalog.default(), start="2021-01-01", end=AS_OF, seed=3)


def _workers_cpu() -> float:
    """CPU seconds (user + system) the live child processes have used so far; nan off Linux."""
    try:
        ticks = 0
        for child in multiprocessing.active_children():
            with open(f"/proc/{child.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _load() -> str:
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--licenses", type=int, default=100_000)
    ap.add_argument("--break-even-runs", dest="be_runs", type=int, default=40)
    args = ap.parse_args()
    t = time.perf_counter()
    led = _ledger(args.licenses)
    t_sim = time.perf_counter() - t
    scenarios = load_scenarios("data/scenarios.yaml")
    prior = sm.Behaviour(elasticity=1.0)  # central 1.0: the grid is exactly the five points
    t = time.perf_counter()
    st = prepare_start(led, AS_OF, 36, prior=prior, elasticities=GRID)
    t_start = time.perf_counter() - t
    priced = [sc for sc in scenarios if "prices" in sc.catalog]
    n_base = len(st.initial[0])
    print(f"ledger: {len(led.licenses):,} licenses, {n_base:,} covered on {AS_OF} (simulated in {t_sim:.1f} s; "
          f"calibration + base + deferred balance {t_start:.1f} s, outside the timings)", flush=True)
    with ProcessPoolExecutor(max_workers=2) as ex:
        run_scenarios(led, scenarios[:1], AS_OF, horizon_months=1, runs=2, executor=ex, behaviour=st.behaviour)  # warm workers
        t, cpu = time.perf_counter(), _workers_cpu()
        res = run_scenarios(led, scenarios, AS_OF, horizon_months=36, runs=args.runs, executor=ex, start=st, elasticities=GRID)
        t_fan, cpu_fan = time.perf_counter() - t, _workers_cpu() - cpu
        simulated = sum(args.runs * (len(GRID) if "prices" in sc.catalog else 1) for sc in scenarios)
        print(f"what-if: {len(scenarios)} scenarios × {len(GRID)} elasticities × {args.runs} runs × 36 months: {t_fan:6.1f} s "
              f"with 2 workers ({simulated:,} runs simulated, {t_fan / simulated * 1000:.0f} ms a run; target ≤ 60 s); "
              f"workers' CPU {cpu_fan:.1f} s ({cpu_fan / simulated * 1000:.0f} ms a run); {_load()}", flush=True)
        t, cpu = time.perf_counter(), _workers_cpu()
        be = sm.break_even(led, [scenarios[0], *priced], AS_OF, runs=args.be_runs, executor=ex, start=st)
        t_be, cpu_be = time.perf_counter() - t, _workers_cpu() - cpu
    print(f"break-even of {len(priced)} price scenarios ({args.be_runs} runs a step, "
          f"{int(be['evaluations'].sum())} steps): {t_be:6.1f} s (target ≤ 30 s); workers' CPU {cpu_be:.1f} s; {_load()}")
    by_e = res.by_elasticity
    for row in be.itertuples():
        d = by_e[by_e["scenario"] == row.scenario].sort_values("elasticity")
        x, y = d["elasticity"].to_numpy(), d["bookings_diff_mean"].to_numpy()
        k = np.flatnonzero(np.sign(y[1:]) != np.sign(y[:-1]))
        peer = x[k[0]] + (x[k[0] + 1] - x[k[0]]) * y[k[0]] / (y[k[0]] - y[k[0] + 1]) if len(k) else float("nan")
        print(f"  {row.scenario}: {row.break_even:.3f} (90 %: {row.low:.3f}–{row.high:.3f}); "
              f"peer, interpolated on the fan's grid: {peer:.3f}")
    print(f"fan result rests on elasticities {res.elasticities}")


if __name__ == "__main__":
    main()
