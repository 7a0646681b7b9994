"""Forecast speed: 100 k licenses × 24 months × 100 runs (target ≤ 10 s), and the sBG fit on 100 k licenses (≤ 1 s).

The ledger is simulated (heterogeneous customers, about 100 k licenses covered or undecided
on the forecast day). Timed: the whole :func:`subs_model.forecast` (replay up to ``as_of``,
sBG fits, the Monte Carlo), and the Monte Carlo engine alone. The peer is a plain per-license
Python loop doing the same work per run (pick the run's structure, walk the term ends, book,
count the months): it runs on a subsample of licenses and runs, and its time is scaled up
linearly (licenses are independent) — the printed ratio says so.

    python benchmarks/bench_forecast.py [--runs 100] [--loop-licenses 2000] [--loop-runs 2]

Not a test: run it by hand on an otherwise idle machine.
"""

from __future__ import annotations

import subs_model

subs_model.tune_process()  # a benchmark owns its process

import argparse
import bisect
import time

import numpy as np

import subs_model as sm
from subs_model.forecast import _Grid
from subs_model.forecast_engine import run_blocks
from subs_model.forecast_state import observe
from subs_model.retention import fit_sbg_licenses

AS_OF = "2026-10-31"


def _loop(st, cat, grid, runs: int, n_lic: int, seed: int) -> float:
    """Per-license Python: the same model, one license and term end at a time (the peer)."""
    rng = np.random.default_rng(seed)
    prices = cat.price_table()
    t0 = time.perf_counter()
    n_m = len(grid.months)
    for _ in range(runs):
        active = np.zeros(n_m)
        booked = np.zeros(n_m)
        leaky = {e: rng.random() < w for e, w in st.leak_weight.items()}  # the run's structure per edition
        for i in range(n_lic):
            ed = int(st.edition[i])
            f = st.leaky.get(ed) if leaky.get(ed) else st.fits.get(ed)
            f = f or st.fits.get(ed)
            a, b = (f.alpha + st.n_churn[i], f.beta + st.n_cont[i]) if f else (1e12 * (1 - st.pooled[ed]), 1e12 * st.pooled[ed])
            keep = 1.0 - f.leak if f else 1.0
            h = st.history[ed]
            off = h.off.tolist()
            E, x = int(st.E[i]), st.as_of_day - int(st.E[i])
            while E <= grid.last + 60:
                lo = bisect.bisect_right(off, x)
                S = (len(off) - lo) / max(len(off), 1)
                q = keep * b / (a + b)
                if lo == len(off) or rng.random() >= q * S / max(1 - q + q * S, 1e-300):
                    break
                j = lo + int(rng.random() * (len(off) - lo))
                a_day = E + int(h.off[j])
                if a_day > grid.last:
                    break
                start = E + int(h.gap[j])
                new_end = start + int(h.length[j])
                if a_day >= grid.first:
                    booked[grid.month_of[a_day - grid.first]] += prices[0, ed, 1]
                for m, me in enumerate(grid.month_ends):
                    if start <= me < new_end:
                        active[m] += 1
                E, x, b = new_end, -10**9, b + 1
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--loop-licenses", type=int, default=2000)
    ap.add_argument("--loop-runs", type=int, default=2)
    args = ap.parse_args()
    cat = sm.Catalog.default()
    beh = sm.Behaviour(arrivals_per_month=1950, arrivals_growth=0.0, legacy_licenses=0,
                       continue_concentration={"full": 2.5, "basic": 2.0})
    led = sm.simulate(beh, cat, start="2021-01-01", end=AS_OF, seed=11)
    t0 = time.perf_counter()
    f = sm.forecast(led, cat, AS_OF, months=24, runs=args.runs, seed=0)
    t_all = time.perf_counter() - t0
    print(f.description)
    st = observe(led, cat, None, "trailing")
    grid = _Grid.make(st.as_of_day, 24)
    t0 = time.perf_counter()
    run_blocks(st, cat, grid, args.runs, 0, "sbg")
    t_engine = time.perf_counter() - t0
    n = len(st.E)
    print(f"licenses in the base: {n:,}; arrivals {st.arrivals:.0f} a month")
    print(f"forecast, 24 months × {args.runs} runs: {t_all:.2f} s in all (replay, fits, Monte Carlo); "
          f"the Monte Carlo engine alone {t_engine:.2f} s")
    from subs_model.metrics import expiry_outcomes
    from subs_model.retention import license_lifetimes

    rep = sm.replay(led, cat, AS_OF)
    lt = license_lifetimes(expiry_outcomes(rep), as_of=rep.as_of)
    for leak in (False, True):
        t0 = time.perf_counter()
        fit = fit_sbg_licenses(lt["entry"], lt["last"], lt["churned"], leak=leak)
        t_fit = time.perf_counter() - t0
        name = "sBG fit with a leak" if leak else "sBG fit"
        print(f"{name} on {len(lt):,} licenses: {t_fit:.3f} s (alpha {fit.alpha:.3f} ± {fit.alpha_se:.3f}, "
              f"beta {fit.beta:.3f} ± {fit.beta_se:.3f}, leak {fit.leak:.4f} ± {fit.leak_se:.4f})")
    k = min(args.loop_licenses, n)
    t_loop = _loop(st, cat, grid, args.loop_runs, k, 0)
    scaled = t_loop * (n / k) * (args.runs / args.loop_runs)
    print(f"per-license Python loop: {t_loop:.2f} s for {k:,} licenses × {args.loop_runs} runs (base only, no arrivals), "
          f"scaled to {n:,} × {args.runs}: {scaled:.0f} s — the engine is {scaled / t_engine:.0f}× faster")


if __name__ == "__main__":
    main()
