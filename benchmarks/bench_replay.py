"""Replay speed: the engine against a plain Python loop and a DuckDB SQL formulation.

Generates ledgers of 100 k, 1 M and 10 M activations (subscriptions, early / in-grace /
late renewals, default catalog), runs in this one process the engine (cold: a new
Ledger, ids numbered and events sorted; warm: the same ledger replayed again from its
``sm.prepare``d arrays, as a what-if sweep does), a plain per-license Python loop and a DuckDB recursive CTE that
computes the same periods, checks that all agree, and prints events/s and ratios (best
of ``--repeat`` runs each: the machine is shared).

    python benchmarks/bench_replay.py [--sizes 100000 1000000 10000000] [--peers-max 1000000]
                                      [--ids category|str] [--orders time|license] [--repeat 3]
    python benchmarks/bench_replay.py --memory 10000000     # memory of holding + replaying N events

Orders come in the order their codes were issued (``--orders license`` groups them by
license, as figures before 2026-11-30 did: about a quarter faster). Id columns are
categoricals made by ``Ledger.categorical_ids()``; ``--ids str`` keeps plain string
columns (each replay of a new Ledger then hashes every id string). ``--memory`` writes
the ledger as Parquet in one process, reads it (and makes its ids categorical) in a
second, and replays it in a third, printing that process's resident memory before, at
the peak of and after the replay.

Not a test: run it by hand (``make bench``) on an otherwise idle machine.
"""

from __future__ import annotations

import subs_model

subs_model.tune_process()  # a benchmark owns its process: tuned before numpy and Arrow load

import argparse
import gc
import resource
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

import subs_model as sm

T0 = np.datetime64("2021-01-01", "D").astype(np.int64)
NS_DAY = 86_400 * 10**9
MSK = 3 * 3600 * 10**9


def _ids(prefix: str, ints: np.ndarray) -> pd.Series:
    arr = pc.binary_join_element_wise(prefix, pc.cast(pa.array(ints), pa.string()), "")
    return pd.Series(pd.array(arr, dtype="str"))


def _stamps(ns_utc: np.ndarray) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(ns_utc.view("datetime64[ns]"), tz="UTC").tz_convert("Europe/Moscow"))


def make_ledger(
    n_act: int, seed: int = 1, ids: str = "category", orders: str = "time"
) -> tuple[sm.Ledger, pd.DataFrame]:
    """A ledger of ``n_act`` activations; also the plain event table the peers replay.

    Orders come in the order their codes were issued, as exports (and the simulator) write
    them; ``orders="license"`` groups them by license instead, which spares the engine its
    random accesses to orders and flattered earlier figures by about a quarter.
    """
    rng = np.random.default_rng(seed)
    per = 5
    n_lic = max(n_act // per, 1)
    lic = np.repeat(np.arange(n_lic), per)[:n_act]
    k = np.tile(np.arange(per), n_lic)[:n_act]
    first = T0 + rng.integers(0, 365, n_lic)
    # offset of each activation from the previous term end: early (-60…-1), grace (0…14), late (15…60)
    offset = rng.choice(np.array([-30, -5, 0, 3, 9, 14, 15, 40]), size=n_act)
    day = first[lic] + k * 365 + np.where(k == 0, 0, offset)
    sku = np.where(k == 0, 0, rng.choice(np.array([0, 1, 1, 1]), size=n_act))  # 0 subscription, 1 renewal
    seconds = rng.integers(0, 86_400, n_act) * 10**9
    act_ns = day.astype(np.int64) * NS_DAY - MSK + seconds
    issue_ns = act_ns - rng.integers(60, 3600, n_act) * 10**9
    order = np.argsort(act_ns, kind="stable")  # exports come in time order
    o_rows = np.argsort(issue_ns, kind="stable") if orders == "time" else np.arange(n_act)
    num = np.empty(n_act, np.int64)
    num[o_rows] = np.arange(n_act)  # order ids and codes are numbered in the orders' table order
    lic_ids = _ids("L", lic)
    codes, order_ids = _ids("KS5-", num), _ids("O", num)
    led = sm.Ledger(
        licenses=pd.DataFrame({"license_id": _ids("L", np.arange(n_lic)), "customer_id": _ids("K", np.arange(n_lic)),
                               "edition": pd.Series("full", index=range(n_lic), dtype="str")}),
        orders=pd.DataFrame(
            {"order_id": order_ids, "license_id": lic_ids,
             "sku": pd.Series(np.array(["subscription", "renewal"], dtype=object)[sku], dtype="str"),
             "code_issued_at": _stamps(issue_ns), "code": codes}
        ).iloc[o_rows].reset_index(drop=True),
        activations=pd.DataFrame(
            {"code": codes.iloc[order].reset_index(drop=True), "license_id": lic_ids.iloc[order].reset_index(drop=True),
             "activated_at": _stamps(act_ns[order])}
        ),
    )
    if ids == "category":
        led = led.categorical_ids()
    events = pd.DataFrame({"lic": lic, "day": (act_ns + MSK) // NS_DAY, "ns": act_ns, "sku": sku, "code": num})
    return led, events


def python_replay(events: pd.DataFrame, term: int = 365, grace: int = 15) -> set[tuple[int, int, int]]:
    """Plain per-license Python loop over the same rules (subscriptions and renewals)."""
    out = set()
    rows = events.sort_values(["lic", "ns", "code"]).itertuples(index=False)
    cur, end = -1, None
    for lic, day, _ns, sku, _code in rows:
        if lic != cur:
            cur, end = lic, None
        if sku == 1 and (end is None or day >= end + grace):
            continue  # no prior / after the deadline
        start = day if end is None else max(end, day)
        end = start + term
        out.add((lic, start, end))
    return out


def duckdb_replay(events: pd.DataFrame, term: int = 365, grace: int = 15) -> dict[str, np.ndarray]:
    """The same replay as a DuckDB recursive CTE, one step per event position: the periods'
    columns as numpy arrays (what the engine's figure ends with too; :func:`as_set` makes
    the set the check compares, outside the timing)."""
    import duckdb

    con = duckdb.connect()
    con.register("ev", events)
    sql = f"""
    WITH RECURSIVE e AS (
        SELECT lic, day, sku, row_number() OVER (PARTITION BY lic ORDER BY ns, code) AS rn FROM ev
    ), r AS (
        SELECT lic, rn,
               CASE WHEN sku = 0 THEN day END AS pstart,
               CASE WHEN sku = 0 THEN day + {term} END AS pend,
               CASE WHEN sku = 0 THEN day + {term} END AS cur_end
        FROM e WHERE rn = 1
        UNION ALL
        SELECT e.lic, e.rn,
               CASE WHEN e.sku = 1 AND (r.cur_end IS NULL OR e.day >= r.cur_end + {grace}) THEN NULL
                    ELSE greatest(coalesce(r.cur_end, e.day), e.day) END,
               CASE WHEN e.sku = 1 AND (r.cur_end IS NULL OR e.day >= r.cur_end + {grace}) THEN NULL
                    ELSE greatest(coalesce(r.cur_end, e.day), e.day) + {term} END,
               CASE WHEN e.sku = 1 AND (r.cur_end IS NULL OR e.day >= r.cur_end + {grace}) THEN r.cur_end
                    ELSE greatest(coalesce(r.cur_end, e.day), e.day) + {term} END
        FROM r JOIN e ON e.lic = r.lic AND e.rn = r.rn + 1
    )
    SELECT lic, pstart, pend FROM r WHERE pstart IS NOT NULL
    """
    return con.execute(sql).fetchnumpy()


def as_set(res: dict[str, np.ndarray]) -> set[tuple[int, int, int]]:
    return set(zip(res["lic"].tolist(), res["pstart"].tolist(), res["pend"].tolist(), strict=True))


def engine_set(rep: sm.Replay) -> set[tuple[int, int, int]]:
    p = rep.periods
    lic = p["license_id"].astype("str").str.slice(1).astype("int64").to_numpy()
    start = p["start"].to_numpy().astype("datetime64[D]").astype(np.int64)
    end = p["end"].to_numpy().astype("datetime64[D]").astype(np.int64)
    return set(zip(lic.tolist(), start.tolist(), end.tolist(), strict=True))


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def _fresh(led: sm.Ledger) -> sm.Ledger:
    """The same tables in a new Ledger: nothing prepared yet (a cold replay)."""
    return sm.Ledger(**led.tables())


def cold_replay(led: sm.Ledger, cat: sm.Catalog) -> sm.Replay:
    """A replay of tables no replay has prepared yet."""
    return sm.replay(_fresh(led), cat, "2031-12-31")


def best_of(k: int, fn, *args):
    """Best time of ``k`` calls (the machine is shared: the minimum is the engine's speed)."""
    out, best = None, float("inf")
    for _ in range(k):
        out, t = timed(fn, *args)
        best = min(best, t)
    return out, best


def _write_child(folder: str, n: int) -> None:
    led, _ = make_ledger(n, ids="str")  # Parquet holds ids as text either way
    led.write(folder)


def _rss_peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_child(folder: str, ids: str) -> None:
    """Read the Parquet tables :func:`_write_child` wrote (ids as text), make the ids
    categorical (``--ids category``) and keep the tables as a pickle for the replay child."""
    import pickle

    t0 = time.perf_counter()
    led = sm.Ledger(**{n: pd.read_parquet(f"{folder}/{n}.parquet") for n in ("licenses", "orders", "activations")})
    t_read = time.perf_counter() - t0
    line = f"read Parquet {t_read:.1f}s"
    if ids == "category":
        led, t_cat = timed(lambda: led.categorical_ids())
        line += f", categorical_ids() {t_cat:.1f}s"
    with open(f"{folder}/ledger.pkl", "wb") as fh:
        pickle.dump(led.tables(), fh, protocol=5)
    print(f"{line} (peak RSS {_rss_peak():,.0f} MB)")


def _replay_child(folder: str) -> None:
    """Load the ledger the load child kept and replay it: the process's memory before, at its
    peak (``ru_maxrss``: the replay's peak is above loading's) and after."""
    import pickle

    warm, _ = make_ledger(1000, ids="category")
    sm.replay(warm, sm.Catalog.default())  # load the compiled kernels before measuring
    del warm
    gc.collect()
    base = rss_mb()
    with open(f"{folder}/ledger.pkl", "rb") as fh:
        led = sm.Ledger(**pickle.load(fh))
    gc.collect()
    before = rss_mb()
    _rep, t = timed(sm.replay, led, sm.Catalog.default(), "2031-12-31")  # kept: "after" counts the results
    peak, after = _rss_peak(), rss_mb()
    p = _rep.prepared
    cached = sum(getattr(p, f).nbytes for f in p.__dataclass_fields__ if isinstance(getattr(p, f), np.ndarray)) / 2**20
    n = len(led.activations)
    print(f"{n:,} events, {args_ids(led)} ids, replay {t:.2f}s ({n / t / 1e6:.1f} M events/s, first in this process)\n"
          f"  RSS: interpreter + libraries + kernels {base:,.0f} MB; + ledger {before - base:,.0f} MB; "
          f"replay peak +{peak - before:,.0f} MB; process peak {peak:,.0f} MB\n"
          f"  after the replay: +{after - before:,.0f} MB held (the result tables and {cached:,.0f} MB of prepared "
          f"arrays the Replay holds)")


def args_ids(led: sm.Ledger) -> str:
    return "categorical" if isinstance(led.orders["code"].dtype, pd.CategoricalDtype) else "string"


def peak_memory(n: int, ids: str) -> None:
    """Memory of a process that holds an ``n``-event ledger and replays it.

    Three processes: one generates the ledger and writes it as Parquet; one reads it (and
    makes its ids categorical); one loads those tables and replays them, so that its peak
    is the replay's.
    """
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        me = [sys.executable, __file__]
        subprocess.run([*me, "--write-child", tmp, str(n)], check=True)
        subprocess.run([*me, "--load-child", tmp, "--ids", ids], check=True)
        subprocess.run([*me, "--replay-child", tmp], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    ap.add_argument("--peers-max", type=int, default=1_000_000, help="largest size the slow peers run at")
    ap.add_argument("--ids", choices=["category", "str"], default="category", help="dtype of the id columns")
    ap.add_argument("--orders", choices=["time", "license"], default="time", help="row order of the orders table")
    ap.add_argument("--repeat", type=int, default=3, help="replays timed per figure (best is printed)")
    ap.add_argument("--memory", type=int, nargs="*", default=None, metavar="N",
                    help="instead: memory of a process that holds an N-event ledger and replays it")
    ap.add_argument("--write-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--load-child", help=argparse.SUPPRESS)
    ap.add_argument("--replay-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write_child:
        return _write_child(args.write_child[0], int(args.write_child[1]))
    if args.load_child:
        return _load_child(args.load_child, args.ids)
    if args.replay_child:
        return _replay_child(args.replay_child)
    if args.memory is not None:
        for n in args.memory or [10_000_000]:
            peak_memory(n, args.ids)
        return None
    cat = sm.Catalog.default()
    # Compile (or load the cached kernels) once, outside the timings, on both paths.
    for n in (1000, 100_000):
        warm_led, _ = make_ledger(n, ids=args.ids, orders=args.orders)
        sm.replay(warm_led, cat)
    print(f"ids: {args.ids}; orders in {args.orders} order; best of {args.repeat} replays each")
    print(f"{'events':>11} {'engine cold':>12} {'engine warm':>12} {'python':>10} {'duckdb':>10}   ratios (cold engine vs peer)")
    for n in args.sizes:
        led, events = make_ledger(n, ids=args.ids, orders=args.orders)
        gc.collect()
        base_rss = rss_mb()
        rep, t_cold = best_of(args.repeat, cold_replay, led, cat)
        peak_delta = rss_mb() - base_rss
        prepared = sm.prepare(led)
        _, t_warm = best_of(args.repeat, sm.replay, prepared, sm.Catalog.default(grace_days=30), "2031-12-31")
        n_rej = len(rep.rejections)
        line = f"{n:>11,} {n / t_cold / 1e6:>9.1f} M/s {n / t_warm / 1e6:>9.1f} M/s"
        ratios = []
        n_periods = len(rep.periods)
        if n <= args.peers_max:
            eng = engine_set(rep)
            py, t_py = timed(python_replay, events)
            db, t_db = best_of(args.repeat, duckdb_replay, events)
            db = as_set(db)
            assert py == eng, f"python and engine disagree at {n}"
            assert db == eng, f"duckdb and engine disagree at {n}"
            line += f" {n / t_py / 1e6:>6.2f} M/s {n / t_db / 1e6:>6.2f} M/s"
            ratios = [f"{t_py / t_cold:.0f}x python", f"{t_db / t_cold:.1f}x duckdb"]
            del eng
        else:
            line += f" {'-':>10} {'-':>10}"
        print(f"{line}   {', '.join(ratios)}  [{n_periods:,} periods, {n_rej:,} rejections, "
              f"cold {t_cold:.3f}s, warm {t_warm:.3f}s, RSS now {rss_mb():,.0f} MB, +{peak_delta:,.0f} MB after replays]")
        del led, events, rep
        gc.collect()
    peak = _rss_peak()
    print(f"peak RSS of the whole run (ledger generation included): {peak:,.0f} MB")
    return None


if __name__ == "__main__":
    main()
