"""What-if scenarios: a named change of the rules (a catalog version from a day) and/or of behaviour.

:func:`load_scenarios` reads them from YAML (see ``data/scenarios.yaml``); every change is
validated when the scenario is made, with the catalog's and the behaviour's checks.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .behaviour import Behaviour, BehaviourError
from .catalog import KNOBS, Catalog, CatalogError, CatalogVersion, Edition, Sku, parse_day, parse_enum, rub_to_kopecks
from .errors import SubsModelError, read_yaml

__all__ = ["CATALOG_KNOBS", "Scenario", "ScenarioError", "load_scenarios"]

CATALOG_KNOBS = KNOBS  # the catalog knobs a scenario may change


class ScenarioError(SubsModelError, ValueError):
    """A scenario definition is invalid."""


@dataclass(frozen=True)
class Scenario:
    """A named change of the rules (a new catalog version from a day) and/or of behaviour.

    Parameters
    ----------
    name : str
    effective_from : str, optional
        First day of the new catalog version (default: the day after ``as_of``). Nothing
        retroactive: periods accepted before stay as they are (R2, R10).
    catalog : mapping
        Knob changes (``grace_days``, ``term_days``, ``subscription_basis``,
        ``renewal_basis``, ``legacy_counts_as_prior``) and ``prices`` as
        ``{edition: {sku: rubles}}`` (editions not named keep their prices).
    behaviour : mapping
        Behaviour parameter changes (e.g. ``elasticity``, ``p_forget``).

    Examples
    --------
    >>> s = Scenario("grace 30", catalog={"grace_days": 30})
    >>> s.catalog_for(Catalog.default(), "2026-11-01").version_at("2026-12-01").grace_days
    30
    """

    name: str
    effective_from: str | None = None
    catalog: Mapping[str, Any] = field(default_factory=dict)
    behaviour: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        where = f"scenario {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            msg = f"{where}: the name must be a non-empty text; give each scenario a name"
            raise ScenarioError(msg)
        for part in ("catalog", "behaviour"):
            if not isinstance(getattr(self, part), Mapping):
                msg = f"{where}.{part}: {getattr(self, part)!r} is not a mapping of changes; write it as '{part}: {{name: value}}'"
                raise ScenarioError(msg)
        unknown = sorted(map(str, set(self.catalog) - set(CATALOG_KNOBS) - {"prices"}))
        if unknown:
            msg = f"{where}: unknown catalog change(s) {unknown}; use {list(CATALOG_KNOBS) + ['prices']}"
            raise ScenarioError(msg)
        try:
            if self.effective_from is not None:
                day = parse_day(self.effective_from, where=f"{where}.effective_from")
                object.__setattr__(self, "effective_from", day.isoformat())
            # Every change is checked now, with the validation of the catalog and the behaviour,
            # not when a run reaches it.
            CatalogVersion.validated(where=f"{where}.catalog", effective_from=dt.date(2020, 1, 1), prices={},
                                      **{k: self.catalog[k] for k in CATALOG_KNOBS if k in self.catalog})
            if "prices" in self.catalog:
                _check_price_changes(self.catalog["prices"], where=f"{where}.catalog.prices")
            if self.behaviour:
                Behaviour.from_dict(self.behaviour, where=f"{where}.behaviour")
        except (CatalogError, BehaviourError) as exc:
            raise ScenarioError(str(exc)) from None

    @property
    def is_baseline(self) -> bool:
        return not self.catalog and not self.behaviour

    def catalog_for(self, base: Catalog, default_from: Any) -> Catalog:
        """``base`` plus this scenario's version (from ``effective_from``), or ``base`` itself."""
        if not self.catalog:
            return base
        start = parse_day(self.effective_from, where=f"scenario {self.name!r}.effective_from") if self.effective_from \
            else pd.Timestamp(default_from).date()
        prev = base.version_at(start)
        raw = prev.to_dict()
        raw["effective_from"] = start.isoformat()
        raw["name"] = f"{self.name} ({start.isoformat()})"
        for k in CATALOG_KNOBS:
            if k in self.catalog:
                raw[k] = self.catalog[k]
        if "prices" in self.catalog:
            prices = copy.deepcopy(raw["prices"])
            for ed, skus in self.catalog["prices"].items():
                prices.setdefault(ed, {}).update(skus)
                if "upgrade" not in skus and ("subscription" in skus or "renewal" in skus):
                    prices[ed].pop("upgrade", None)  # derived again: subscription - renewal (R8)
            raw["prices"] = prices
        version = CatalogVersion.from_dict(raw, where=f"scenario {self.name!r}")
        kept = tuple(v for v in base.versions if v.effective_from != version.effective_from)
        return Catalog((*kept, version), timezone=base.timezone)

    def behaviour_for(self, base: Behaviour) -> Behaviour:
        """``base`` with this scenario's behaviour changes."""
        if not self.behaviour:
            return base
        raw = {**base.to_dict(), **self.behaviour}
        if "elasticity" in self.behaviour and "elasticity_range" not in self.behaviour:
            lo, hi = base.elasticity_range
            e = self.behaviour["elasticity"]
            raw["elasticity_range"] = [min(lo, e), max(hi, e)] if isinstance(e, (int, float)) else None
        return Behaviour.from_dict(raw, where=f"scenario {self.name!r}")


def _check_price_changes(raw: Any, *, where: str) -> None:
    """Price changes ``{edition: {sku: rubles}}``: known editions and SKUs, valid amounts."""
    if not isinstance(raw, Mapping):
        msg = f"{where}: {raw!r} is not a mapping; write it as {{full: {{renewal: 3000}}, basic: {{renewal: 3000}}}}"
        raise ScenarioError(msg)
    for ed, skus in raw.items():
        parse_enum(Edition, ed, where=where)
        if not isinstance(skus, Mapping):
            msg = f"{where}.{ed}: {skus!r} is not a mapping sku -> rubles; write it as {{renewal: 3000}}"
            raise ScenarioError(msg)
        for sku, value in skus.items():
            parse_enum(Sku, sku, where=f"{where}.{ed}")
            rub_to_kopecks(value, where=f"{where}.{ed}.{sku}")


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Scenarios from YAML (see ``data/scenarios.yaml``); the first one is the baseline."""
    p = Path(path)
    raw = read_yaml(p, ScenarioError, "the scenarios file") or {}
    items = raw.get("scenarios") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        msg = f"{p}: expected 'scenarios:' with a list of {{name, catalog, behaviour}}"
        raise ScenarioError(msg)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "name" not in item:
            msg = f"{p}: scenarios[{i}] needs a 'name'"
            raise ScenarioError(msg)
        extra = sorted(set(item) - {"name", "effective_from", "catalog", "behaviour", "description"})
        if extra:
            msg = f"{p}: scenarios[{i}] ({item['name']}): unknown field(s) {extra}"
            raise ScenarioError(msg)
        eff = item.get("effective_from")
        try:
            out.append(Scenario(str(item["name"]), eff if eff is None or isinstance(eff, dt.date) else str(eff),
                                item.get("catalog") or {}, item.get("behaviour") or {}, str(item.get("description", "") or "")))
        except ScenarioError as exc:
            msg = f"{p}: scenarios[{i}]: {exc}"
            raise ScenarioError(msg) from None
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        msg = f"{p}: scenario names must be unique, got {names}"
        raise ScenarioError(msg)
    return out
