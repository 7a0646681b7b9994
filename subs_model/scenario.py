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

__all__ = ["CATALOG_KNOBS", "LANGUAGES", "Scenario", "ScenarioError", "inline_scenario", "load_scenarios", "titles"]

CATALOG_KNOBS = KNOBS  # the catalog knobs a scenario may change
LANGUAGES = ("ru", "en")  # the languages a scenario's title and description may be given in


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
    description : str or mapping, optional
        What the scenario is, as one text or per language (``{"ru": …, "en": …}``; then
        :attr:`description` keeps the English one, or the first given, for the API).
    title : mapping, optional
        What a person reads instead of ``name`` in a report of each language, e.g.
        ``{"ru": "Продление 3 000 ₽", "en": "Renewal at 3,000 ₽"}``. ``name`` stays the key of
        every result table; a language without a title shows the name.
    descriptions : mapping, optional
        The description per language (filled from a mapping ``description``).

    Examples
    --------
    >>> s = Scenario("grace 30", catalog={"grace_days": 30}, title={"ru": "Льготный период 30 дней", "en": "30-day window"})
    >>> s.catalog_for(Catalog.default(), "2026-11-01").version_at("2026-12-01").grace_days
    30
    >>> s.title_in("ru"), Scenario("grace 30").title_in("ru")
    ('Льготный период 30 дней', 'grace 30')
    """

    name: str
    effective_from: str | None = None
    catalog: Mapping[str, Any] = field(default_factory=dict)
    behaviour: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    title: Mapping[str, str] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"scenario {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            msg = f"{where}: the name must be a non-empty text; give each scenario a name"
            raise ScenarioError(msg)
        self._check_texts(where)
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

    def _check_texts(self, where: str) -> None:
        """Title and descriptions: mappings of a known language to a non-empty text; a mapping description moves to ``descriptions``."""
        if isinstance(self.description, Mapping):
            object.__setattr__(self, "descriptions", {**self.description, **dict(self.descriptions or {})})
            object.__setattr__(self, "description", "")
        elif self.description is None:
            object.__setattr__(self, "description", "")
        elif not isinstance(self.description, str):
            msg = f"{where}.description: {self.description!r} is not a text; write it as text or as {{ru: …, en: …}}"
            raise ScenarioError(msg)
        for part in ("title", "descriptions"):
            raw = getattr(self, part)
            if raw is None:
                raw = {}
            if isinstance(raw, str):  # one title for every language
                raw = dict.fromkeys(LANGUAGES, raw)
            if not isinstance(raw, Mapping):
                msg = f"{where}.{part}: {raw!r} is not a mapping language -> text; write it as {{ru: …, en: …}}"
                raise ScenarioError(msg)
            bad = sorted(map(str, set(raw) - set(LANGUAGES)))
            if bad:
                msg = f"{where}.{part}: unknown language(s) {bad}; use {list(LANGUAGES)}"
                raise ScenarioError(msg)
            for lang, text in raw.items():
                if not isinstance(text, str) or not text.strip():
                    msg = f"{where}.{part}.{lang}: {text!r} is not a non-empty text; write the {lang} text or leave the language out"
                    raise ScenarioError(msg)
            object.__setattr__(self, part, {k: raw[k].strip() for k in LANGUAGES if k in raw})
        if not self.description and self.descriptions:
            object.__setattr__(self, "description", self.descriptions.get("en") or next(iter(self.descriptions.values())))

    def title_in(self, lang: str) -> str:
        """What a person reads for this scenario in a report in ``lang``: its title there, else its name."""
        return self.title.get(lang) or self.name

    def description_in(self, lang: str) -> str:
        """The description in ``lang``: its text there, else :attr:`description` (may be empty)."""
        return self.descriptions.get(lang) or self.description

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
        extra = sorted(set(item) - {"name", "effective_from", "catalog", "behaviour", "description", "title"})
        if extra:
            msg = f"{p}: scenarios[{i}] ({item['name']}): unknown field(s) {extra}"
            raise ScenarioError(msg)
        eff = item.get("effective_from")
        try:
            desc = item.get("description") or ""
            out.append(Scenario(str(item["name"]), eff if eff is None or isinstance(eff, dt.date) else str(eff),
                                item.get("catalog") or {}, item.get("behaviour") or {},
                                desc if isinstance(desc, Mapping) else str(desc), title=item.get("title") or {}))
        except ScenarioError as exc:
            msg = f"{p}: scenarios[{i}]: {exc}"
            raise ScenarioError(msg) from None
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        msg = f"{p}: scenario names must be unique, got {names}"
        raise ScenarioError(msg)
    return out


def titles(scenarios: Any, lang: str) -> dict[str, str]:
    """Scenario name → what a person reads in ``lang`` (:meth:`Scenario.title_in`), in the scenarios' order.

    Two scenarios whose titles coincide in ``lang`` keep their names in brackets, so that no two
    rows or legend entries read the same.

    Examples
    --------
    >>> titles([Scenario("baseline", title={"ru": "Сейчас"}), Scenario("grace 30")], "ru")
    {'baseline': 'Сейчас', 'grace 30': 'grace 30'}
    """
    shown = {sc.name: sc.title_in(lang) for sc in scenarios}
    seen: dict[str, int] = {}
    for t in shown.values():
        seen[t] = seen.get(t, 0) + 1
    return {n: (f"{t} ({n})" if seen[t] > 1 and t != n else t) for n, t in shown.items()}


_INLINE = {
    "ru": {"head": "Параметры блокнота", "grace": "льготный период {days}", "renewal": "продление {price}",
           "upgrade": "апгрейд {price}", "desc": "Сценарий из параметров блокнота (grace_days, renewal_price, upgrade_price)"},
    "en": {"head": "Notebook parameters", "grace": "{days} grace window", "renewal": "renewal at {price}",
           "upgrade": "upgrade at {price}", "desc": "The scenario of the notebook's parameters (grace_days, renewal_price, upgrade_price)"},
}


def inline_scenario(grace_days: int = 0, renewal_price: int = 0, upgrade_price: int = 0, editions: Any = ("full", "basic"),
                    name: str = "inline") -> Scenario | None:
    """The scenario of a notebook's knobs (0 means not used; prices in rubles) with titles in every language, or None.

    Examples
    --------
    >>> sc = inline_scenario(grace_days=30, renewal_price=3000)
    >>> [sc.title_in(lang).replace(chr(160), " ") for lang in ("ru", "en")]  # no-break spaces inside numbers
    ['Параметры блокнота: льготный период 30 дней, продление 3 000 ₽', 'Notebook parameters: 30-day grace window, renewal at 3,000 ₽']
    """
    from . import notes as N

    change: dict[str, Any] = {}
    if grace_days:
        change["grace_days"] = grace_days
    prices = {k: v for k, v in (("renewal", renewal_price), ("upgrade", upgrade_price)) if v}
    if prices:
        change["prices"] = {str(ed): prices for ed in editions}
    if not change:
        return None
    title, desc = {}, {}
    for lang, t in _INLINE.items():
        days = N.count(grace_days, "day", lang) if lang == "ru" else f"{grace_days}-day"
        parts = [t["grace"].format(days=days)] if grace_days else []
        parts += [t[k].format(price=N.rub(rub_to_kopecks(v, where=f"inline.{k}"), lang)) for k, v in prices.items()]
        title[lang] = f"{t['head']}: {', '.join(parts)}"
        desc[lang] = t["desc"]
    return Scenario(name, catalog=change, description=desc, title=title)
