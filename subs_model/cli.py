"""The ``subs-model`` command line: it parses arguments and calls the package, nothing more."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .catalog import Catalog
from .errors import SubsModelError
from .ledger import read_ledger
from .replay import replay

DEFAULT_CATALOG = Path("data/catalog.yaml")


def _catalog(path: str | None) -> Catalog:
    if path:
        return Catalog.from_yaml(path)
    return Catalog.from_yaml(DEFAULT_CATALOG) if DEFAULT_CATALOG.exists() else Catalog.default()


def _cmd_replay(args: argparse.Namespace) -> int:
    led = read_ledger(args.data)
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
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("periods", "codes", "rejections"):
            getattr(rep, name).to_csv(folder / f"{name}.csv", index=False)
        print(f"\nWrote periods.csv, codes.csv, rejections.csv to {folder.resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``subs-model``."""
    parser = argparse.ArgumentParser(
        prog="subs-model",
        description="Analytics and pricing toolkit for the Кассир 5 subscriptions.",
    )
    parser.add_argument("--version", action="version", version=f"subs-model {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("replay", help="replay a ledger into periods, code fates and rejections; print a summary")
    p.add_argument("data", help="folder with licenses, orders, activations[, legacy_periods] (.csv or .parquet)")
    p.add_argument("--as-of", dest="as_of", default=None, help="day YYYY-MM-DD (default: the ledger's last event day)")
    p.add_argument("--catalog", default=None, help="catalog YAML (default: data/catalog.yaml, else the built-in one)")
    p.add_argument("--out", default=None, help="also write periods.csv, codes.csv, rejections.csv to this folder")
    p.set_defaults(func=_cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``subs-model``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SubsModelError as exc:
        print(f"subs-model: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
