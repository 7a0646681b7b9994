"""Tornado: one knob at a time over its range, at a scenario's prices, against that scenario."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import pandas as pd

from .behaviour import Behaviour
from .catalog import Catalog
from .ledger import Ledger
from .scenario import Scenario, ScenarioError
from .vocab import EDITIONS
from .breakeven import objective_of
from .whatif import prepare_start, simulate_grid
from .workers import workers

__all__ = ["KNOB_LABELS", "SENSITIVITY", "sensitivity"]


SENSITIVITY = {
    "grace_days": ("catalog", [7, 30]),
    "renewal_price": ("price", [2800, 3600]),
    "upgrade_price": ("upgrade_price", [500, 1200]),
    "elasticity": ("elasticity", [0.5, 2.0]),
}
#: Knob names as a report shows them.
KNOB_LABELS = {
    "ru": {"grace_days": "льготный период, дней", "renewal_price": "цена продления, ₽", "upgrade_price": "цена апгрейда, ₽",
           "elasticity": "эластичность по цене продления", "term_days": "срок подписки, дней"},
    "en": {"grace_days": "grace window, days", "renewal_price": "renewal price, ₽", "upgrade_price": "upgrade price, ₽",
           "elasticity": "renewal-price elasticity", "term_days": "term, days"},
}


def _variant(at: Scenario, name: str, kind: str, knob: str, value: Any) -> Scenario:
    """Scenario ``at`` with one more change: a catalog knob, a price or a behaviour parameter."""
    cat = copy.deepcopy(dict(at.catalog))
    beh = dict(at.behaviour)
    if kind == "catalog":
        cat[knob] = value
    elif kind in ("price", "upgrade_price"):
        sku = "renewal" if kind == "price" else "upgrade"
        prices = cat.setdefault("prices", {})
        for e in EDITIONS:
            prices.setdefault(e.value, {})[sku] = value
    else:
        beh[knob] = value
    return Scenario(name, at.effective_from, cat, beh)


def sensitivity(
    ledger: Ledger, as_of: Any, knobs: Mapping[str, tuple[str, Sequence[Any]]] | None = None, *, runs: int = 40,
    horizon_months: int = 36, seed: int = 1, executor: Executor | None = None, catalog: Catalog | None = None,
    behaviour: Behaviour | None = None, at: Scenario | None = None, lang: str = "ru", start: Any = None,
) -> pd.DataFrame:
    """One knob at a time over a range, at the prices of scenario ``at`` → effect on the
    bookings over the horizon and on active licenses at its end.

    Each bar of the tornado is the change when the knob moves to its low or high value,
    everything else as in ``at`` (default: today's rules — where the elasticity has no effect,
    since the calibrated behaviour holds at today's price; give the price scenario you decide
    on). Knob kinds: ``catalog`` (a catalog knob), ``price`` / ``upgrade_price`` (rubles, both
    editions), ``elasticity`` (the renewal-price elasticity), ``behaviour`` (another
    behaviour parameter). Returns a tidy table: ``knob`` (its name in ``lang``), ``knob_id``,
    ``value``, ``scenario`` (``at``'s name), ``elasticity`` (the one the row rests on),
    ``bookings_diff`` (kopecks), ``bookings_diff_pct``, ``active_diff``, ``active_diff_pct``
    — mean differences to ``at`` over common random numbers. ``start`` reuses a
    :func:`subs_model.whatif.prepare_start` of the same ledger, day and horizon.
    """
    knobs = knobs or SENSITIVITY
    if lang not in KNOB_LABELS:
        msg = f"sensitivity: lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ScenarioError(msg)
    at = at or Scenario("baseline")
    at = Scenario(at.name, at.effective_from, at.catalog, at.behaviour)
    variants: list[Scenario] = []
    labels: dict[str, tuple[str, Any]] = {}
    grid: list[float] = []
    for knob, (kind, values) in knobs.items():
        for v in values:
            labels[f"{knob}={v}"] = (knob, v)
            if kind == "elasticity":
                grid.append(v)
            else:
                variants.append(_variant(at, f"{knob}={v}", kind, knob, v))
    # One start (calibration, customer base) and one pool for both parts: the knobs at the
    # central elasticity, and scenario ``at`` alone across the elasticities asked for.
    st = start or prepare_start(ledger, as_of, horizon_months, catalog=catalog, behaviour=behaviour, elasticities=grid or None)
    central = float(st.behaviour.elasticity)
    own = executor is None
    ex = executor or ProcessPoolExecutor(max_workers=workers())
    try:
        arr, _ = simulate_grid(st, [at, *variants], [central], runs, seed, ex)
        if grid:
            arr.update(simulate_grid(st, [at], sorted({round(float(e), 6) for e in grid}), runs, seed, ex)[0])
    finally:
        if own:
            ex.shutdown()
    book = lambda a: float(objective_of(a, "bookings").mean())  # noqa: E731
    act = lambda a: float(objective_of(a, "active").mean())  # noqa: E731
    base = arr[at.name, central]
    pct = lambda diff, of: diff / of if of else float("nan")  # noqa: E731 - no share of an empty baseline
    rows = []
    for name, (knob, v) in labels.items():
        kind = knobs[knob][0]
        e = round(float(v), 6) if kind == "elasticity" else central
        x = arr[at.name, e] if kind == "elasticity" else arr[name, central]
        d_book, d_act = book(x) - book(base), act(x) - act(base)
        rows.append({
            "knob": KNOB_LABELS[lang].get(knob, knob), "knob_id": knob, "value": v, "scenario": at.name, "elasticity": e,
            "bookings_diff": d_book, "bookings_diff_pct": pct(d_book, book(base)),
            "active_diff": d_act, "active_diff_pct": pct(d_act, act(base)),
        })
    return pd.DataFrame(rows)
