"""Simulation speed: the compiled simulator against a plain per-customer Python loop.

Runs, in one process and with the same behaviour and catalog:

- the simulation core (behaviour draws and the rules applied, before string-keyed
  tables are built), in customer-years per second, at about 1.1 M and 110 k licenses
  over 5 years (best and median of 5 runs);
- the full ``sm.simulate`` → ``Ledger`` for about 100 k licenses over 5 years;
- a plain per-customer Python loop over the same behaviour (its own random numbers; it
  skips the horizon truncation of orders in progress, so its rates are close, not equal);
- the calibration round trip on that 100 k-license ledger (true vs estimated).

    python benchmarks/bench_simulate.py

Not a test: run it by hand on an otherwise idle machine.
"""

from __future__ import annotations

import subs_model

subs_model.tune_process()  # a benchmark owns its process: tuned before numpy and Arrow load

import math
import random
import time

import numpy as np

import subs_model as sm
from subs_model.simulate import simulate_core


def python_loop(beh: sm.Behaviour, cat: sm.Catalog, n_lic: int, years: int, seed: int = 1) -> dict[str, float]:
    """Per customer, per coverage end: the same decisions as the simulator, in plain Python."""
    rnd = random.Random(seed)
    v = cat.versions[0]
    term, grace = v.term_days, v.grace_days
    pmf = {ed: (beh.timing[ed][0], list(np.cumsum(beh.timing_pmf(ed)))) for ed in ("full", "basic")}
    lt = beh.lead_times
    horizon = years * 365
    cy = renewals = upgrades = 0
    for _ in range(n_lic):
        ed = "basic" if rnd.random() < beh.share_basic else "full"
        lead = lambda stages: sum(lt[s].median_hours * math.exp(lt[s].sigma * rnd.gauss(0, 1)) for s in stages) / 24  # noqa: E731
        start = rnd.randrange(0, horizon)
        end = int(start + lead(("invoice", "payment", "code", "activation"))) + term
        while end - 60 <= horizon:
            cy += 1
            if rnd.random() >= beh.p_continue[ed]:
                if rnd.random() < beh.p_return:
                    end = end + grace + int(rnd.expovariate(1 / beh.return_delay_days)) + term
                    continue
                break
            lo, cdf = pmf[ed]
            u = rnd.random()
            off = lo + next(i for i, c in enumerate(cdf) if c >= u)
            req = end + off
            on_time = req < end + grace
            buy_ren = rnd.random() >= beh.p_subscription_instead if on_time else rnd.random() < beh.p_late_renewal
            act = req + lead(("invoice", "payment", "code", "activation"))
            if not buy_ren:
                end = max(end, int(act)) + term
                continue
            if rnd.random() >= beh.p_forget and act < end + grace:
                renewals += 1
                end = max(end, int(act)) + term
                continue
            f = rnd.random()
            if f < beh.p_upgrade:
                upgrades += 1
                end = int(act) + int(rnd.expovariate(1 / beh.upgrade_delay_days)) + term
            elif f < beh.p_upgrade + beh.p_subscription_after_lapse:
                end = int(act) + int(rnd.expovariate(1 / beh.lapse_subscription_delay_days)) + term
            else:
                break
    return {"customer_years": cy, "renewals": renewals, "upgrades": upgrades}


def main() -> None:
    beh = sm.Behaviour.from_yaml("data/behaviour.yaml").with_changes(arrivals_per_month=1_300, legacy_licenses=10_000)
    cat = sm.Catalog.default()
    simulate_core(beh.with_changes(arrivals_per_month=5, legacy_licenses=5), cat, "2021-01-01", "2021-12-31", 1)  # compile
    for scale in (10, 1):  # the core at 10x and at the 100 k-license base (the last one is compared below)
        b = beh.with_changes(arrivals_per_month=1_300 * scale, legacy_licenses=10_000 * scale)
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            core = simulate_core(b, cat, "2021-01-01", "2025-12-31", 1, progress=False)
            runs.append(time.perf_counter() - t)
        best, med = min(runs), float(np.median(runs))
        cy = core.customer_years
        print(f"simulation core: {core.n_licenses:,} licenses, {cy:,} customer-years, {len(core.o_lic):,} orders "
              f"in {best:.3f} s (median of 5: {med:.3f} s) = {cy / best / 1e6:.2f} M customer-years/s "
              f"(median {cy / med / 1e6:.2f})")
    t = time.perf_counter()
    led = sm.simulate(beh, cat, start="2021-01-01", end="2025-12-31", seed=1)
    t_full = time.perf_counter() - t
    print(f"full Ledger (sm.simulate): {len(led.licenses):,} licenses, {len(led.orders):,} orders, "
          f"{len(led.activations):,} activations in {t_full:.2f} s")
    n_py = 20_000
    t = time.perf_counter()
    py = python_loop(beh, cat, n_py, 5)
    t_py = time.perf_counter() - t
    py_rate = py["customer_years"] / t_py
    print(f"plain Python loop: {n_py:,} customers, {py['customer_years']:,} customer-years in {t_py:.2f} s "
          f"= {py_rate / 1e6:.3f} M customer-years/s  → core is {cy / best / py_rate:.0f}x faster")
    rep = sm.replay(led, cat, as_of="2025-12-31")
    ren_rate = (rep.periods["source"] == "renewal").sum() / cy
    up_rate = (rep.periods["source"] == "upgrade").sum() / cy
    print(f"  same behaviour: renewals per customer-year {ren_rate:.3f} (vectorised) vs "
          f"{py['renewals'] / py['customer_years']:.3f} (loop); upgrades {up_rate:.4f} vs "
          f"{py['upgrades'] / py['customer_years']:.4f}")
    t = time.perf_counter()
    est = sm.calibrate(led, cat, as_of="2025-12-31", prior=sm.Behaviour())
    t_cal = time.perf_counter() - t
    print(f"\ncalibration round trip on {len(led.licenses):,} licenses ({t_cal:.2f} s): true → estimated")

    def med(b: sm.Behaviour, ed: str) -> int:
        return int(b.timing_offsets(ed)[np.searchsorted(np.cumsum(b.timing_pmf(ed)), 0.5)])

    rows = [(f"p_continue[{ed}]", beh.p_continue[ed], est.p_continue[ed]) for ed in ("full", "basic")]
    rows += [(k, getattr(beh, k), getattr(est, k)) for k in (
        "p_forget", "p_upgrade", "p_subscription_instead", "p_late_renewal", "p_subscription_after_lapse",
        "p_return", "share_basic")]
    for name, a, b in rows:
        print(f"  {name:28} {a:8.3f} → {b:8.3f}   ({(b - a) * 100:+.2f} pp)")
    for ed in ("full", "basic"):
        print(f"  median order day [{ed}]       {med(beh, ed):8d} → {med(est, ed):8d}   (days from the end)")
    for k in ("upgrade_delay_days", "lapse_subscription_delay_days", "return_delay_days", "arrivals_per_month"):
        print(f"  {k:28} {getattr(beh, k):8.1f} → {getattr(est, k):8.1f}")
    for stage, lt in beh.lead_times.items():
        e = est.lead_times[stage]
        print(f"  lead time {stage:18} {lt.median_hours:6.1f} h → {e.median_hours:6.1f} h (median)")


if __name__ == "__main__":
    main()
