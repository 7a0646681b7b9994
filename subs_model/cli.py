"""The ``subs-model`` command line: it parses arguments and calls the package, nothing more."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from .behaviour import Behaviour
from .calibrate import calibrate
from .catalog import Catalog
from .errors import OutputError, SubsModelError
from .io import read_ledger
from .ledger import Ledger
from .replay import replay
from .simulate import simulate

DEFAULT_CATALOG = Path("data/catalog.yaml")  # in the current folder, if there; else the shipped one (resources.py)
LANGS = ("en", "ru")
LANG_ENV = "SUBS_MODEL_LANG"
EXIT_BUSY = 75  # sysexits' EX_TEMPFAIL: another ingest holds the store; try again later


def _catalog(path: str | None) -> Catalog:
    if path:
        return Catalog.from_yaml(path)
    if DEFAULT_CATALOG.exists():
        return Catalog.from_yaml(DEFAULT_CATALOG)
    from .resources import default_catalog

    shipped = default_catalog()
    return Catalog.from_yaml(shipped) if shipped.exists() else Catalog.default()


@contextmanager
def _writing(what: str, path: Path) -> Iterator[None]:
    """Turn an OSError while writing ``what`` to ``path`` into a one-line :class:`OutputError`."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, SubsModelError):
            raise
        msg = f"cannot write {what} to {path} ({exc.strerror or exc}); choose a folder you can write to"
        raise OutputError(msg) from None


def _read(data: str | None) -> Ledger:
    """The ledger at ``data`` (None: the embedded sample, found from any folder); rows it
    quarantined are left out, and one line on stderr says so."""
    if data is None:
        from .resources import data_dir

        data = str(data_dir() / "sample")
    led = read_ledger(data)
    s = led.load_summary
    n_bad = int(s.loc[s["reason"] == "", "quarantined"].sum()) if s is not None else 0
    if n_bad:
        print(f"subs-model: warning: {n_bad:,} rows of {data} were quarantined and are left out; "
              f"see them with: subs-model validate {data}", file=sys.stderr)
    return led


def _cmd_replay(args: argparse.Namespace) -> int:
    led = _read(args.data)
    cat = _catalog(args.catalog)
    rep = replay(led, cat, as_of=args.as_of)
    day = rep.as_of.date().isoformat()
    active = rep.active_on(day)
    summary = rep.summary()
    out = [
        f"Ledger {args.data}: {len(led.licenses):,} licenses, {len(led.orders):,} orders, "
        f"{len(led.activations):,} activations"
        + (f", {len(led.legacy_periods):,} legacy periods" if led.legacy_periods is not None else ""),
        f"Replayed as of {day} under catalog versions {', '.join(v.label for v in cat.versions)} ({cat.timezone})",
        "",
        f"Licenses active on {day}: {int(active.sum()):,} of {len(active):,}",
    ]
    titles = {
        "periods_by_source": "Periods by source",
        "codes_by_status": "Codes by status",
        "rejections_by_reason": "Rejected activations by reason",
    }
    for key, title in titles.items():
        counts = summary[key]
        out += ["", f"{title} (total {int(counts.sum()):,}):"]
        out += [f"  {name:<24} {int(n):>9,}" for name, n in counts.items()]
    print("\n".join(out))
    if args.out:
        from .export import write_table

        folder = Path(args.out)
        for name in ("periods", "codes", "rejections"):
            # For people (a spreadsheet opens them): formula-safe, CSV only — a replay can outgrow a worksheet.
            write_table(getattr(rep, name), folder / name, xlsx=False)
        print(f"\nWrote periods.csv, codes.csv, rejections.csv (formula-safe) to {folder.resolve()}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    beh = Behaviour.from_yaml(args.behaviour) if args.behaviour else Behaviour()
    cat = _catalog(args.catalog)
    out = Path(args.out)
    with _writing("the simulated ledger", out):  # refuse a bad folder before simulating, not after
        if out.exists() and not out.is_dir():
            print(f"subs-model: error: {out} is a file, not a folder; give a folder for the simulated ledger", file=sys.stderr)
            return 2
        if out.exists() and any(out.iterdir()) and not args.force:
            print(f"subs-model: error: {out} is not empty; choose a new folder or pass --force to overwrite", file=sys.stderr)
            return 2
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
    try:
        led = simulate(beh, cat, start=args.start, end=args.end, seed=args.seed, progress=True)
    except BaseException:
        if created:
            out.rmdir()  # leave no empty folder behind a refused simulation
        raise
    with _writing("the simulated ledger", out):
        led.write(out, format=args.format)
    print(
        f"Simulated {len(led.licenses):,} licenses, {len(led.orders):,} orders, {len(led.activations):,} activations "
        f"({args.start} … {args.end}, seed {args.seed}) → {out.resolve()}"
    )
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"subs-model: error: {out} exists; choose another file or pass --force to overwrite", file=sys.stderr)
        return 2
    led = _read(args.data)
    prior = Behaviour.from_yaml(args.prior) if args.prior else None
    beh = calibrate(led, _catalog(args.catalog), as_of=args.as_of, prior=prior)
    with _writing("the behaviour", out):
        beh.to_yaml(out)
    print(
        f"Calibrated from {args.data}: p_continue full {beh.p_continue['full']:.3f} / basic {beh.p_continue['basic']:.3f}, "
        f"p_forget {beh.p_forget:.3f}, p_upgrade {beh.p_upgrade:.3f}, arrivals {beh.arrivals_per_month:.1f}/month "
        f"→ {out.resolve()}"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .reports import load_params_file, run_reports, run_schedule

    lang = getattr(args, "lang", "en")
    if args.schedule:
        results = run_schedule(args.schedule, notebooks=args.notebooks, out=args.out, lang=lang)
    else:
        typed = load_params_file(args.params_file) if args.params_file else {}
        text = dict(args.param or [])
        results = run_reports(args.names, notebooks=args.notebooks, out=args.out or "reports", text_params=text,
                              typed_params=typed, cell_timeout=args.cell_timeout, lang=lang, jobs=args.jobs)
    out = Path(args.out or "reports")
    failed = [r for r in results if r.status != "ok"]
    print("\n" + _msg(lang, "published", ok=len(results) - len(failed), n=len(results), index=(out / "index.html").resolve()))
    return 1 if failed else 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .export import write_xlsx, xlsx_note
    from .pricing import order_prices

    out = Path(args.out) / "quarantine"
    try:  # the quarantine CSV is written while reading; memory keeps the rows the XLSX can hold
        led = read_ledger(args.data, profile=args.profile, quarantine_to=out)
    except SubsModelError as exc:
        print(f"subs-model: file error: {exc}", file=sys.stderr)
        return 2
    s = led.load_summary
    totals = s[s["reason"] == ""]
    print(f"Validated {args.data}:")
    for r in totals.itertuples():
        print(f"  {r.table:<15} read {r.read:>9,}  accepted {r.accepted:>9,}  quarantined {r.quarantined:>7,}"
              + (f"  (merged {r.merged:,} identical duplicates)" if r.merged else "")
              + (f"  (trimmed white space around {r.trimmed:,} values)" if r.trimmed else ""))
    reasons = s[s["reason"] != ""]
    if len(reasons):
        print("\nQuarantined rows by reason:")
        for r in reasons.itertuples():
            print(f"  {r.table:<15} {r.reason:<28} {r.quarantined:>7,}")
        print("\nFirst examples:")
        for _, g in led.quarantine.groupby("reason", sort=False):
            for r in g.head(2).itertuples():
                print(f"  {r.file}:{r.line} [{r.column or '-'}] {r.reason}: {r.message}\n      {r.raw[:160]}")
        n_bad = int(totals["quarantined"].sum())
        csv = out.with_suffix(".csv")
        files = [csv, write_xlsx(led.quarantine, out, sheet="quarantine", rows=n_bad, csv_name=csv.name)]
        print(f"\nQuarantine written to {', '.join(str(f) for f in files)}")
        if note := xlsx_note(n_bad, csv.name):
            print(f"  ({note})")
    var = order_prices(led, _catalog(args.catalog))
    var = var[var["variance_kopecks"].fillna(0) != 0]
    if len(var):
        print(f"\nPrice variances (kept, not rejected): {len(var):,} paid orders differ from the catalog price")
    return 1 if int(totals["quarantined"].sum()) else 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from .export import write_table
    from .store import StoreBusyError, ingest

    try:
        res = ingest(args.raw, args.into, profile=args.profile, wait=None if args.wait < 0 else args.wait,
                     log=lambda m: print(f"subs-model: {m}", file=sys.stderr, flush=True))
    except StoreBusyError as exc:
        print(f"subs-model: busy: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except SubsModelError as exc:
        print(f"subs-model: file error: {exc}", file=sys.stderr)
        return 2
    print(f"Ingested {args.raw} into {args.into}: " + ("new version " + res.hash[:16] if res.changed else "no change (same content hash)"))
    for t in res.added:
        print(f"  {t:<15} added {res.added[t]:>8,}  updated {res.updated.get(t, 0):>6,}")
    if res.quarantined:
        print(f"  {res.quarantined:,} rows quarantined (see {args.into}/log/)")
    if len(res.conflicts):
        files = write_table(res.conflicts, Path(args.into) / "log" / "last-conflicts", sheet="conflicts")
        print(f"  {len(res.conflicts):,} conflicts NOT applied (same key, different content): {files[0]}")
    return 1 if len(res.conflicts) or res.quarantined else 0


def _cmd_whatif(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from .breakeven import break_even
    from .whatif import load_scenarios, prepare_start, run_scenarios
    from .whatif_export import export_whatif
    from .workers import workers

    scenarios = load_scenarios(args.scenarios)
    led = _read(args.data)
    cat = _catalog(args.catalog)
    as_of = args.as_of or replay(led, cat).as_of.date().isoformat()
    grid = _elasticities(args.elasticities)
    print(f"Running {len(scenarios)} scenarios × {args.runs} runs, {args.horizon} months from {as_of} …", flush=True)
    st = prepare_start(led, as_of, args.horizon, catalog=cat, elasticities=grid)  # calibrated once for both steps
    be = None
    with ProcessPoolExecutor(max_workers=workers()) as pool:
        res = run_scenarios(led, scenarios, as_of, horizon_months=args.horizon, runs=args.runs, seed=args.seed, catalog=cat,
                            start=st, executor=pool)
        if args.break_even and len(scenarios) > 1:
            print(f"Break-even elasticity on {args.objective} ({args.break_even_runs} runs a step) …", flush=True)
            be = break_even(led, scenarios, as_of, objective=args.objective, horizon_months=args.horizon,
                            runs=args.break_even_runs, seed=args.seed, catalog=cat, start=st, executor=pool)
    lo, hi = res.behaviour.elasticity_range
    print(f"Every number rests on the renewal-price elasticity: {res.elasticity:g} ({res.behaviour.elasticity_source}); "
          f"range {lo:g}–{hi:g}; reported at {', '.join(f'{e:g}' for e in res.elasticities)}")
    s = res.summary
    table = s[["scenario", "elasticity"]].copy()
    for c in ("bookings_mean", "bookings_diff_mean", "bookings_diff_p05", "bookings_diff_p95", "bookings_diff_band_low",
              "bookings_diff_band_high"):
        table[c.replace("bookings", "bookings_rub")] = (s[c] / 100).round(0)
    table["active_at_end"] = s["active_mean"].round(0)
    print(table.to_string(index=False))
    fan = res.by_elasticity.pivot(index="scenario", columns="elasticity", values="bookings_diff_mean") / 100
    print("\nBookings vs baseline, ₽, by elasticity:")
    print(fan.reindex([sc.name for sc in scenarios]).round(0).to_string())
    if be is not None:
        print()
        for note in be[f"note_{getattr(args, 'lang', 'en')}"]:  # the global --lang
            print(note)
    print(f"\nobserved renewal rate (last decided year): {res.observed_renewal_rate:.3f}")
    for note in res.notes:
        print(f"note: {note}")
    out = Path(args.out)
    with _writing("the scenario tables", out):
        files = export_whatif(res, out, break_even=be, lang=getattr(args, "lang", "en"))
    print(f"\nWritten: {', '.join(str(f) for f in files)}")
    return 0


def _elasticities(text: str | None) -> list[float] | None:
    """``--elasticities 0,0.5,1`` as numbers (None: the behaviour's range)."""
    if not text:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        msg = f"--elasticities {text!r}: give numbers separated by commas, e.g. 0,0.5,1,1.5,2"
        raise SubsModelError(msg) from None


def _arrivals_arg(text: str) -> str | float:
    """``--arrivals``: 'trailing', 'none' or new licenses a month (the forecast checks the number)."""
    if text in ("trailing", "none"):
        return text
    try:
        return float(text)
    except ValueError:
        msg = f"--arrivals {text!r}: give 'trailing', 'none' or new licenses a month, e.g. 150"
        raise argparse.ArgumentTypeError(msg) from None


def _cmd_forecast(args: argparse.Namespace) -> int:
    from .export import write_table
    from .forecast import forecast

    led = _read(args.data)
    cat = _catalog(args.catalog)
    res = forecast(led, cat, args.as_of, months=args.months, runs=args.runs, seed=args.seed, arrivals=args.arrivals,
                   model=args.model)
    print(res.description)
    wide = res.table.pivot(index="month", columns="metric", values="mean")
    print(wide[["active", "term_ends", "continued", "new_licenses", "bookings_rub", "recognised_rub"]].round(1).to_string())
    out = Path(args.out)
    with _writing("the forecast", out):
        files = write_table(res.table, out / "forecast", sheet="forecast")
        write_table(res.retention, out / "retention", sheet="retention")
    print(f"\nForecast written to {', '.join(str(f) for f in files)} (and retention.csv/.xlsx)")
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from .backtest import backtest
    from .export import write_table

    led = _read(args.data)
    cat = _catalog(args.catalog)
    res = backtest(led, cat, args.cutoffs, months=args.months, as_of=args.as_of, runs=args.runs, seed=args.seed,
                   arrivals=args.arrivals)
    print(res.description)
    out = Path(args.out)
    with _writing("the backtest", out):
        files = write_table(res.table, out / "backtest", sheet="backtest")
        write_table(res.summary, out / "backtest_summary", sheet="summary")
    print(f"\nBacktest written to {', '.join(str(f) for f in files)} (and backtest_summary.csv/.xlsx)")
    return 0


def _add_forecast_parsers(sub: Any) -> None:
    """The ``forecast`` and ``backtest`` subcommands."""
    p = sub.add_parser("forecast", help="monthly outlook of the base plus new arrivals, each license from its history")
    p.add_argument("--data", default=None, help="ledger folder (default: the embedded sample ledger)")
    p.add_argument("--as-of", dest="as_of", default=None, help="the forecast starts the day after (default: the last event day)")
    p.add_argument("--months", type=int, default=24, help="months ahead (default 24)")
    p.add_argument("--runs", type=int, default=100, help="Monte Carlo runs (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arrivals", type=_arrivals_arg, default="trailing",
                   help="new licenses a month: 'trailing' (last 12 months' rate, 0 if none), 'none', or a number")
    p.add_argument("--model", choices=["sbg", "pooled"], default="sbg",
                   help="sbg: each license from its own history (default); pooled: one rate per edition")
    p.add_argument("--catalog", default=None, help="catalog YAML (default: data/catalog.yaml, else the built-in one)")
    p.add_argument("--out", default="reports/forecast", help="folder for forecast.csv/.xlsx and retention.csv/.xlsx")
    p.set_defaults(func=_cmd_forecast)

    p = sub.add_parser("backtest", help="forecasts from past cutoffs against what happened, beside the pooled baseline")
    p.add_argument("cutoffs", nargs="+", help="days the forecasts start after, e.g. 2025-04-30 2025-10-31")
    p.add_argument("--data", default=None, help="ledger folder (default: the embedded sample ledger)")
    p.add_argument("--as-of", dest="as_of", default=None, help="actuals known to this day (default: the last event day)")
    p.add_argument("--months", type=int, default=12, help="months forecast from each cutoff (default 12)")
    p.add_argument("--runs", type=int, default=100, help="Monte Carlo runs (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arrivals", type=_arrivals_arg, default="trailing",
                   help="new licenses a month: 'trailing' (default), 'none', or a number")
    p.add_argument("--catalog", default=None, help="catalog YAML (default: data/catalog.yaml, else the built-in one)")
    p.add_argument("--out", default="reports/backtest", help="folder for backtest.csv/.xlsx and backtest_summary.csv/.xlsx")
    p.set_defaults(func=_cmd_backtest)


def build_parser(lang: str = "en") -> argparse.ArgumentParser:
    """The argument parser of ``subs-model``; help in ``lang`` (ru or en) where translated."""
    parser = argparse.ArgumentParser(prog="subs-model", description=_msg(lang, "description"))
    parser.add_argument("--version", action="version", version=f"subs-model {__version__}")
    parser.add_argument("--lang", choices=LANGS, default=lang, help=_msg(lang, "lang_help"))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("replay", help="replay a ledger into periods, code fates and rejections; print a summary")
    p.add_argument("data", help="folder with licenses, orders, activations[, legacy_periods] (.csv or .parquet)")
    p.add_argument("--as-of", dest="as_of", default=None, help="day YYYY-MM-DD (default: the ledger's last event day)")
    p.add_argument("--catalog", default=None, help="catalog YAML (default: data/catalog.yaml, else the built-in one)")
    p.add_argument("--out", default=None, help="also write periods.csv, codes.csv, rejections.csv to this folder")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("simulate", help="simulate customer cohorts under the catalog and write their ledger")
    p.add_argument("--behaviour", default="data/behaviour.yaml", help="behaviour YAML (default: data/behaviour.yaml)")
    p.add_argument("--catalog", default=None, help="catalog YAML (default: data/catalog.yaml, else the built-in one)")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same ledger)")
    p.add_argument("--start", default="2021-01-01", help="first simulated day (default 2021-01-01)")
    p.add_argument("--end", default="2026-10-31", help="last simulated day (default 2026-10-31)")
    p.add_argument("--out", required=True, help="folder to write licenses, orders, activations, legacy_periods")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("calibrate", help="estimate customer behaviour from a ledger and write it as YAML")
    p.add_argument("data", help="ledger folder")
    p.add_argument("--out", required=True, help="behaviour YAML to write")
    p.add_argument("--as-of", dest="as_of", default=None, help="observation day (default: the last event day)")
    p.add_argument("--catalog", default=None, help="catalog YAML (default: data/catalog.yaml, else the built-in one)")
    p.add_argument("--prior", default=None, help="behaviour YAML for what the data cannot identify (elasticities)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("validate", help="validate an export; print the summary, write the quarantine (CSV, XLSX)")
    p.add_argument("data", help="folder with the exported tables (.csv or .parquet)")
    p.add_argument("--out", default="quarantine", help="folder for quarantine.csv / quarantine.xlsx (default: ./quarantine)")
    p.add_argument("--catalog", default=None, help="catalog YAML for price variances (default: data/catalog.yaml)")
    p.add_argument("--profile", default=None, help="source profile YAML of a real export (e.g. data/profiles/1c.yaml)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("ingest", help="merge an export into the canonical Parquet ledger store")
    p.add_argument("raw", help="folder with the exported tables")
    p.add_argument("--into", required=True, help="ledger store folder, e.g. data/ledger")
    p.add_argument("--wait", type=float, default=600.0,
                   help="seconds to wait while another ingest writes the same store (default 600; -1: no limit)")
    p.add_argument("--profile", default=None, help="source profile YAML of a real export (e.g. data/profiles/1c.yaml)")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("whatif", help="pricing what-if: simulate scenarios from the real customer base, with bands")
    p.add_argument("scenarios", help="scenario YAML (see data/scenarios.yaml); the first is the baseline")
    p.add_argument("--data", default=None, help="ledger folder (default: the embedded sample ledger)")
    p.add_argument("--as-of", dest="as_of", default=None, help="start of the forecast (default: the last event day)")
    p.add_argument("--runs", type=int, default=200, help="Monte Carlo runs per scenario (default 200)")
    p.add_argument("--horizon", type=int, default=36, help="months ahead (default 36)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--catalog", default=None, help="today's catalog YAML (default: data/catalog.yaml)")
    p.add_argument("--elasticities", default=None,
                   help="renewal-price elasticities to report, e.g. 0,0.5,1,1.5,2 (default: 5 across the behaviour's range)")
    p.add_argument("--break-even", dest="break_even", action=argparse.BooleanOptionalAction, default=True,
                   help="find each scenario's break-even elasticity (default on)")
    p.add_argument("--objective", choices=["bookings", "recognised", "active"], default="bookings",
                   help="what the break-even compares (default bookings over the horizon)")
    p.add_argument("--break-even-runs", dest="break_even_runs", type=int, default=40, help="runs per break-even step (default 40)")
    p.add_argument("--out", default="reports/whatif", help="folder for scenarios.csv / scenarios.xlsx (several sheets)")
    p.set_defaults(func=_cmd_whatif)

    _add_forecast_parsers(sub)
    _report_parser(sub, lang)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``subs-model``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    lang = _lang(argv)
    args = build_parser(lang).parse_args(argv)
    args.lang = lang
    try:
        return int(args.func(args))
    except SubsModelError as exc:  # bad input or configuration: one line, exit 2 (1 is "rows quarantined")
        print(f"subs-model: {_msg(lang, 'error')}: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the environment: a path that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"subs-model: {_msg(lang, 'error')}: {where}{exc.strerror or _one_line(exc)}; {_msg(lang, 'check_path')}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"subs-model: {_msg(lang, 'interrupted')}", file=sys.stderr)
        return 130


_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "description": "Analytics and pricing toolkit for the Кассир 5 subscriptions.",
        "lang_help": f"language of messages and help: ru or en (default: ${LANG_ENV}, else en)",
        "error": "error", "check_path": "check the path and its permissions", "interrupted": "interrupted",
        "published": "{ok} of {n} reports published; open {index}",
        "report": "run report notebooks with papermill and publish offline HTML reports and the summary page",
        "report_desc": "Run the report notebooks (papermill) and publish offline HTML reports and reports/index.html "
                       "(headline KPIs first). Every parameter is checked before any notebook runs.",
        "names": "notebooks to run, e.g. 02-renewal-timing (default: all)",
        "param": "set a notebook parameter (repeatable); it applies to every chosen notebook that declares it",
        "params_file": "YAML mapping of parameters (typed values)",
        "out": "where the HTML reports go (default: reports/)",
        "notebooks": "folder of the report notebooks (default: the shipped ones, from any folder)",
        "timeout": "seconds a single cell may run (default 600)",
        "schedule": "run the jobs of a schedule file (see reports/schedule.yaml)",
        "jobs": "notebooks run side by side, each in its own kernel (default 2 with two CPUs or more, else 1)",
    },
    "ru": {
        "description": "Аналитика и цены подписок «Кассир 5».",
        "lang_help": f"язык сообщений и справки: ru или en (по умолчанию ${LANG_ENV}, иначе en)",
        "error": "ошибка", "check_path": "проверьте путь и права доступа", "interrupted": "прервано",
        "published": "опубликовано отчётов: {ok} из {n}; откройте {index}",
        "report": "выполнить блокноты отчётов (papermill) и опубликовать HTML-отчёты и сводную страницу",
        "report_desc": "Выполняет блокноты отчётов (papermill) и публикует HTML-отчёты для работы без сети и "
                       "reports/index.html (сначала главные показатели). Все параметры проверяются до запуска блокнотов.",
        "names": "какие блокноты выполнить, например 02-renewal-timing (по умолчанию все)",
        "param": "параметр блокнота (можно повторять); действует во всех выбранных блокнотах, где он объявлен",
        "params_file": "YAML-файл с параметрами (значения с типами)",
        "out": "куда класть HTML-отчёты (по умолчанию reports/)",
        "notebooks": "папка блокнотов отчётов (по умолчанию — поставляемые с пакетом, из любой папки)",
        "timeout": "сколько секунд может выполняться одна ячейка (по умолчанию 600)",
        "schedule": "выполнить задания файла расписания (см. reports/schedule.yaml)",
        "jobs": "сколько блокнотов выполнять одновременно, каждый в своём ядре (по умолчанию 2, если процессоров два и больше, иначе 1)",
    },
}


def _msg(lang: str, key: str, **values: object) -> str:
    text = _MESSAGES.get(lang, _MESSAGES["en"]).get(key) or _MESSAGES["en"][key]
    return text.format(**values) if values else text


def _lang(argv: Sequence[str]) -> str:
    """The language asked for: ``--lang X`` / ``--lang=X`` anywhere on the line, else $SUBS_MODEL_LANG, else en."""
    import os

    for i, a in enumerate(argv):
        if a == "--lang" and i + 1 < len(argv) and argv[i + 1] in LANGS:
            return argv[i + 1]
        if a.startswith("--lang=") and a.split("=", 1)[1] in LANGS:
            return a.split("=", 1)[1]
    env = os.environ.get(LANG_ENV, "")
    return env if env in LANGS else "en"


class _ReportParser(argparse.ArgumentParser):
    """The ``report`` subcommand's parser: its help ends with the notebooks' parameters, read when help is asked for."""

    lang = "en"
    notebooks: Path | None = None

    def format_help(self) -> str:
        from .report_params import parameter_help
        from .resources import notebooks_dir

        return super().format_help() + "\n" + parameter_help(self.notebooks or notebooks_dir(), self.lang) + "\n"


def _report_parser(sub: argparse._SubParsersAction, lang: str) -> None:
    p = sub.add_parser("report", help=_msg(lang, "report"), description=_msg(lang, "report_desc"))
    p.__class__ = _ReportParser
    p.lang = lang
    p.add_argument("names", nargs="*", help=_msg(lang, "names"))
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), help=_msg(lang, "param"))
    p.add_argument("-f", "--params-file", default=None, help=_msg(lang, "params_file"))
    p.add_argument("--out", default=None, help=_msg(lang, "out"))
    p.add_argument("--notebooks", default=None, help=_msg(lang, "notebooks"))
    p.add_argument("--cell-timeout", type=int, default=600, help=_msg(lang, "timeout"))
    p.add_argument("--schedule", default=None, help=_msg(lang, "schedule"))
    p.add_argument("-j", "--jobs", type=int, default=None, help=_msg(lang, "jobs"))
    p.add_argument("--lang", choices=LANGS, default=lang, help=_msg(lang, "lang_help"))
    p.set_defaults(func=_cmd_report)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
