"""The catalog: versioned prices and rule knobs (rules R10, R12; defaults of the rules' §4).

A :class:`Catalog` is an ordered tuple of :class:`CatalogVersion`, each in force from
its ``effective_from`` day until the next one. The version in force on a day governs
what happens on that day: the price of an order at its invoice date, and
``term_days``, ``grace_days``, the bases and ``legacy_counts_as_prior`` at an
activation date. The earliest version also governs days before its
``effective_from`` (a ledger older than the catalog is priced by its first version).

Money is held as integer kopecks.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import yaml

from .errors import CatalogError, read_yaml
from .vocab import EDITIONS, SKUS, Edition, RenewalBasis, Sku, SubscriptionBasis

__all__ = [
    "Catalog",
    "CatalogVersion",
    "Edition",
    "RenewalBasis",
    "Sku",
    "SubscriptionBasis",
    "rub_to_kopecks",
]

Kopecks = int

#: Bounds of the knobs. The engine counts days in int32 and the tables hold instants as
#: datetime64[ns] (years 1677–2262): a term of up to 10 years, a window of up to one year,
#: versions from 1900 to 2199 and prices up to 100 million rubles (so that sums of millions
#: of orders stay exact in int64 kopecks) keep every computed day and sum in range.
TERM_DAYS_MAX = 3_650
GRACE_DAYS_MAX = 365
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2199, 12, 31)
PRICE_RUB_MAX = 100_000_000
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


DEFAULT_TIMEZONE = "Europe/Moscow"
KNOBS = (
    "term_days",
    "grace_days",
    "subscription_basis",
    "renewal_basis",
    "legacy_counts_as_prior",
)


def rub_to_kopecks(value: Any, *, where: str) -> Kopecks:
    """Convert a ruble amount (``4000``, ``"3200.50"``, ``Decimal``) to integer kopecks.

    Floats are read through their shortest decimal representation, so ``3200.5`` is
    exact; more than two decimals is an error.

    >>> rub_to_kopecks("3200.50", where="x")
    320050
    """
    if isinstance(value, bool):
        msg = f"{where}: price {value!r} is a boolean; write the amount in rubles, e.g. 4000"
        raise CatalogError(msg)
    try:
        amount = Decimal(str(value).strip().replace(" ", ""))
    except InvalidOperation:
        msg = f"{where}: price {value!r} is not a number; write the amount in rubles, e.g. 4000"
        raise CatalogError(msg) from None
    if not amount.is_finite() or amount < 0:
        msg = f"{where}: price {value!r} must be a finite amount >= 0 rubles"
        raise CatalogError(msg)
    if amount > PRICE_RUB_MAX:
        msg = f"{where}: price {value!r} is above the limit of {PRICE_RUB_MAX:,} rubles; write the amount in rubles, not kopecks"
        raise CatalogError(msg)
    kopecks = amount * 100
    if kopecks != kopecks.to_integral_value():
        msg = f"{where}: price {value!r} has more than 2 decimals; round it to kopecks"
        raise CatalogError(msg)
    return int(kopecks)


def parse_day(value: Any, *, where: str) -> dt.date:
    """A day written ``YYYY-MM-DD`` (or a date object) within ``FIRST_DAY``..``LAST_DAY``; nothing is guessed."""
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    else:
        text = str(value).strip() if isinstance(value, str) else None
        try:
            if text is None or not _ISO_DAY.fullmatch(text):
                raise ValueError(text)
            day = dt.date.fromisoformat(text)
        except ValueError:
            msg = f"{where}: {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2020-01-01"
            raise CatalogError(msg) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        msg = f"{where}: {day.isoformat()} is out of range; give a day from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
        raise CatalogError(msg)
    return day


def parse_enum(enum_type: type[enum.StrEnum], value: Any, *, where: str) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type)
        msg = f"{where}: unknown value {value!r}; use one of: {allowed}"
        raise CatalogError(msg) from None


def _parse_int(value: Any, *, where: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value.strip()) <= 20:
            value = int(value)
        else:
            msg = f"{where}: {value!r} is not a whole number of days; give one >= {minimum} and <= {maximum:,}"
            raise CatalogError(msg)
    if not minimum <= value <= maximum:
        msg = f"{where}: {value!r} is out of range; give a whole number of days >= {minimum} and <= {maximum:,}"
        raise CatalogError(msg)
    return int(value)


def _parse_bool(value: Any, *, where: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    msg = f"{where}: {value!r} is not true/false"
    raise CatalogError(msg)


@dataclass(frozen=True, slots=True)
class CatalogVersion:
    """One version of the catalog, in force from ``effective_from``.

    ``prices`` maps edition → SKU → price in integer kopecks. The upgrade price, if
    not given, is ``subscription - renewal`` (R8).
    """

    effective_from: dt.date
    prices: Mapping[Edition, Mapping[Sku, Kopecks]]
    term_days: int = 365
    grace_days: int = 15
    subscription_basis: SubscriptionBasis = SubscriptionBasis.STACK
    renewal_basis: RenewalBasis = RenewalBasis.MAX_END_OR_ACTIVATION
    legacy_counts_as_prior: bool = True
    name: str = ""

    @property
    def label(self) -> str:
        """The name shown in replay results (``catalog_version``): ``name`` or the date."""
        return self.name or self.effective_from.isoformat()

    def price(self, sku: str, edition: str) -> Kopecks:
        """Price in kopecks of ``sku`` for ``edition`` under this version."""
        return self.prices[Edition(edition)][Sku(sku)]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, where: str = "catalog version") -> CatalogVersion:
        """Build and validate a version from a plain mapping (as read from YAML)."""
        if not isinstance(raw, Mapping):
            msg = f"{where}: expected a mapping of knobs, got {raw!r}"
            raise CatalogError(msg)
        allowed = {"effective_from", "prices", "name", *KNOBS}
        unknown = sorted(map(str, set(raw) - allowed))
        if unknown:
            msg = f"{where}: unknown field(s) {unknown}; allowed fields: {sorted(allowed)}"
            raise CatalogError(msg)
        if "effective_from" not in raw:
            msg = f"{where}: missing 'effective_from'; add the first day the version applies, e.g. 2020-01-01"
            raise CatalogError(msg)
        if "prices" not in raw:
            msg = f"{where}: missing 'prices'; give subscription and renewal prices for editions full and basic"
            raise CatalogError(msg)
        kwargs: dict[str, Any] = {
            "effective_from": parse_day(raw["effective_from"], where=f"{where}.effective_from"),
            "prices": _parse_prices(raw["prices"], where=f"{where}.prices"),
            "name": str(raw.get("name", "") or ""),
        }
        for knob in KNOBS:
            if knob in raw:
                kwargs[knob] = raw[knob]
        return cls.validated(**kwargs, where=where)

    @classmethod
    def validated(cls, *, where: str, **kw: Any) -> CatalogVersion:
        """A version from raw values, each checked (a one-line CatalogError naming ``where`` and the value)."""
        if "term_days" in kw:
            kw["term_days"] = _parse_int(kw["term_days"], where=f"{where}.term_days", minimum=1, maximum=TERM_DAYS_MAX)
        if "grace_days" in kw:
            kw["grace_days"] = _parse_int(kw["grace_days"], where=f"{where}.grace_days", minimum=0, maximum=GRACE_DAYS_MAX)
        if "subscription_basis" in kw:
            kw["subscription_basis"] = parse_enum(
                SubscriptionBasis, kw["subscription_basis"], where=f"{where}.subscription_basis"
            )
        if "renewal_basis" in kw:
            kw["renewal_basis"] = parse_enum(RenewalBasis, kw["renewal_basis"], where=f"{where}.renewal_basis")
        if "legacy_counts_as_prior" in kw:
            kw["legacy_counts_as_prior"] = _parse_bool(
                kw["legacy_counts_as_prior"], where=f"{where}.legacy_counts_as_prior"
            )
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (rubles as numbers) that :meth:`from_dict` reads back."""
        out: dict[str, Any] = {"effective_from": self.effective_from.isoformat()}
        if self.name:
            out["name"] = self.name
        out.update(
            term_days=self.term_days,
            grace_days=self.grace_days,
            subscription_basis=self.subscription_basis.value,
            renewal_basis=self.renewal_basis.value,
            legacy_counts_as_prior=self.legacy_counts_as_prior,
        )
        out["prices"] = {
            e.value: {s.value: _kopecks_to_yaml(p) for s, p in skus.items()} for e, skus in self.prices.items()
        }
        return out


def _kopecks_to_yaml(kopecks: int) -> int | str:
    return kopecks // 100 if kopecks % 100 == 0 else f"{Decimal(kopecks) / 100:.2f}"


def _parse_prices(raw: Any, *, where: str) -> dict[Edition, dict[Sku, Kopecks]]:
    if not isinstance(raw, Mapping):
        msg = f"{where}: expected a mapping edition -> {{subscription, renewal[, upgrade]}}, got {raw!r}"
        raise CatalogError(msg)
    out: dict[Edition, dict[Sku, Kopecks]] = {}
    for ed_raw, skus in raw.items():
        ed = parse_enum(Edition, ed_raw, where=f"{where}")
        if not isinstance(skus, Mapping):
            msg = f"{where}.{ed}: expected a mapping sku -> price in rubles, got {skus!r}"
            raise CatalogError(msg)
        prices: dict[Sku, Kopecks] = {}
        for sku_raw, value in skus.items():
            sku = parse_enum(Sku, sku_raw, where=f"{where}.{ed}")
            prices[sku] = rub_to_kopecks(value, where=f"{where}.{ed}.{sku}")
        out[ed] = prices
    for ed in EDITIONS:
        if ed not in out:
            msg = f"{where}: missing prices for edition {ed.value!r}; add '{ed.value}: {{subscription: 4000, renewal: 3200}}'"
            raise CatalogError(msg)
        for sku in (Sku.SUBSCRIPTION, Sku.RENEWAL):
            if sku not in out[ed]:
                msg = f"{where}.{ed.value}: missing the {sku.value!r} price; add '{sku.value}: <rubles>'"
                raise CatalogError(msg)
        if Sku.UPGRADE not in out[ed]:
            diff = out[ed][Sku.SUBSCRIPTION] - out[ed][Sku.RENEWAL]
            if diff < 0:
                msg = (
                    f"{where}.{ed.value}: renewal is dearer than subscription, so the upgrade price "
                    "cannot be derived (R8); set 'upgrade' explicitly"
                )
                raise CatalogError(msg)
            out[ed][Sku.UPGRADE] = diff
    return out


_DEFAULT_PRICES_RUB = {
    "full": {"subscription": 4000, "renewal": 3200, "upgrade": 800},
    "basic": {"subscription": 4000, "renewal": 3200, "upgrade": 800},
}


@dataclass(frozen=True, slots=True)
class Catalog:
    """Versioned prices and rule knobs.

    Examples
    --------
    >>> cat = Catalog.default()
    >>> cat.version_at("2026-03-01").grace_days
    15
    >>> Catalog.default(grace_days=30).versions[0].grace_days
    30
    """

    versions: tuple[CatalogVersion, ...]
    timezone: str = DEFAULT_TIMEZONE
    _from_days: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.versions:
            msg = "catalog: 'versions' is empty; give at least one version with effective_from and prices"
            raise CatalogError(msg)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"catalog.timezone: unknown time zone {self.timezone!r}; use an IANA name such as 'Europe/Moscow'"
            raise CatalogError(msg) from None
        days = [v.effective_from for v in self.versions]
        ordered = tuple(sorted(self.versions, key=lambda v: v.effective_from))
        for a, b in zip(ordered, ordered[1:], strict=False):
            if a.effective_from == b.effective_from:
                msg = (
                    f"catalog.versions: two versions share effective_from {a.effective_from.isoformat()}; "
                    "give each version its own first day"
                )
                raise CatalogError(msg)
        labels = [v.label for v in ordered]
        if len(set(labels)) != len(labels):
            msg = f"catalog.versions: version names {labels} are not unique; give each version its own name"
            raise CatalogError(msg)
        object.__setattr__(self, "versions", ordered)
        epoch = dt.date(1970, 1, 1)
        object.__setattr__(
            self, "_from_days", np.array([(d - epoch).days for d in sorted(days)], dtype=np.int64)
        )

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def default(cls, *, timezone: str = DEFAULT_TIMEZONE, prices: Mapping[str, Any] | None = None, **knobs: Any) -> Catalog:
        """The catalog of the rules' §4, one version from 2020-01-01, with knobs overridden.

        >>> Catalog.default(renewal_basis="from_expiry").versions[0].renewal_basis.value
        'from_expiry'
        """
        unknown = sorted(set(knobs) - set(KNOBS) - {"effective_from", "name"})
        if unknown:
            msg = f"Catalog.default: unknown knob(s) {unknown}; knobs are {list(KNOBS)}"
            raise CatalogError(msg)
        raw: dict[str, Any] = {"effective_from": "2020-01-01", "prices": prices or _DEFAULT_PRICES_RUB, **knobs}
        return cls((CatalogVersion.from_dict(raw, where="Catalog.default"),), timezone=timezone)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, where: str = "catalog") -> Catalog:
        """Build from a mapping ``{timezone, versions: [...]}`` (the YAML layout)."""
        if not isinstance(raw, Mapping):
            msg = f"{where}: expected a mapping with 'versions', got {type(raw).__name__}"
            raise CatalogError(msg)
        unknown = sorted(map(str, set(raw) - {"timezone", "versions"}))
        if unknown:
            msg = f"{where}: unknown top-level field(s) {unknown}; allowed: timezone, versions"
            raise CatalogError(msg)
        versions = raw.get("versions")
        if not isinstance(versions, list) or not versions:
            msg = f"{where}: 'versions' must be a non-empty list of versions"
            raise CatalogError(msg)
        parsed = tuple(
            CatalogVersion.from_dict(v, where=f"{where}.versions[{i}]") for i, v in enumerate(versions)
        )
        return cls(parsed, timezone=str(raw.get("timezone", DEFAULT_TIMEZONE)))

    @classmethod
    def from_yaml(cls, path: str | Path) -> Catalog:
        """Read a catalog YAML file (see ``data/catalog.yaml``)."""
        return cls.from_dict(read_yaml(path, CatalogError, "the catalog"), where=f"{path}: catalog")

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping that :meth:`from_dict` reads back."""
        return {"timezone": self.timezone, "versions": [v.to_dict() for v in self.versions]}

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text of the catalog, also written to ``path`` if given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def with_version(self, version: CatalogVersion) -> Catalog:
        """A new catalog with ``version`` added (nothing retroactive: R2, R10)."""
        return replace(self, versions=(*self.versions, version))

    # -- lookup ---------------------------------------------------------------------------------
    def version_index(self, days: np.ndarray) -> np.ndarray:
        """Index of the version in force on each day (int days since 1970-01-01)."""
        idx = np.searchsorted(self._from_days, days, side="right") - 1
        return np.maximum(idx, 0)

    def version_at(self, day: Any) -> CatalogVersion:
        """The version in force on ``day`` (a date or ``YYYY-MM-DD``)."""
        d = parse_day(day, where="day")
        return self.versions[int(self.version_index(np.array([(d - dt.date(1970, 1, 1)).days]))[0])]

    def price_table(self) -> np.ndarray:
        """Prices in kopecks as an array ``[version, edition, sku]`` (engine order of the enums)."""
        return np.array(
            [[[v.prices[e][s] for s in SKUS] for e in EDITIONS] for v in self.versions], dtype=np.int64
        )

    def knob_arrays(self) -> dict[str, np.ndarray]:
        """Per-version knob arrays for the replay kernel (enums as their engine codes)."""
        vs = self.versions
        return {
            "from_day": self._from_days,
            "term": np.array([v.term_days for v in vs], dtype=np.int64),
            "grace": np.array([v.grace_days for v in vs], dtype=np.int64),
            "sub_basis": np.array([SubscriptionBasis(v.subscription_basis).code for v in vs], dtype=np.int64),
            "ren_basis": np.array([RenewalBasis(v.renewal_basis).code for v in vs], dtype=np.int64),
            "legacy_prior": np.array([v.legacy_counts_as_prior for v in vs], dtype=np.bool_),
        }
