"""Metrics speed: every metric on a replay of about 1 M activations, time per function.

The ledger is simulated (default behaviour, more arrivals); the replay is done once
outside the timings; ``expiry_outcomes`` is computed once and shared, as the notebooks do.
Shared intermediate tables (the outcomes, the lapsed renewals) are computed once and passed
on, as the report pages do.

    python benchmarks/bench_metrics.py [--arrivals 5200]

Not a test: run it by hand on an otherwise idle machine.
"""

from __future__ import annotations

import subs_model

subs_model.tune_process()  # a benchmark owns its process: tuned before numpy and Arrow load

import argparse
import time

import subs_model as sm
from subs_model import metrics as M


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arrivals", type=float, default=5200, help="new licenses per month (5200 ≈ 1 M activations)")
    args = ap.parse_args()
    beh = sm.Behaviour.from_yaml("data/behaviour.yaml").with_changes(arrivals_per_month=args.arrivals, legacy_licenses=40_000)
    cat = sm.Catalog.default()
    led = sm.simulate(beh, cat, start="2021-01-01", end="2026-10-31", seed=1)
    rep = sm.replay(led, cat, as_of="2026-10-31")
    import lifelines  # noqa: F401 - import cost (≈1 s) is paid once per process, not per metric

    print(f"ledger: {len(led.licenses):,} licenses, {len(led.orders):,} orders, {len(led.activations):,} activations, "
          f"{len(rep.periods):,} periods")
    t0 = time.perf_counter()
    times = {}

    def run(name, fn, *a, **k):
        t = time.perf_counter()
        out = fn(*a, **k)
        times[name] = time.perf_counter() - t
        return out

    out = run("expiry_outcomes", M.expiry_outcomes, rep)
    run("renewal_timing", M.renewal_timing, rep, outcomes=out)
    run("renewal_rates", M.renewal_rates, rep, by="month", outcomes=out)
    run("period_over_period", M.period_over_period, rep, outcomes=out)
    run("grace_usage", M.grace_usage, rep, outcomes=out)
    fr = run("forgotten_renewals", M.forgotten_codes, rep, None, 365)
    run("upgrade_revenue", M.upgrade_revenue, rep, forgotten=fr)
    run("upgrade_conversion", M.upgrade_conversion, rep, by="month", forgotten=fr)
    run("revenue", M.revenue, rep)
    run("cohort_retention", M.cohort_retention, rep, outcomes=out)
    run("pooled_retention", M.pooled_retention, rep, outcomes=out)
    run("expiry_competing_risks", M.expiry_competing_risks, rep, outcomes=out)
    run("active_licenses", M.active_licenses, rep)
    run("lead_times", M.lead_times, rep)
    run("expiry_calendar", M.expiry_calendar, rep, outcomes=out)
    total = time.perf_counter() - t0
    for name, t in times.items():
        print(f"  {name:24} {t:7.3f} s")
    print(f"all metrics: {total:.2f} s on {len(led.activations):,} activations (target ≤ 3 s)")


if __name__ == "__main__":
    main()
