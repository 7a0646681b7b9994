"""Customer behaviour of the cohort simulator: a frozen, documented, YAML-backed parameter set.

The customer decides *intent* (continue or not), *timing* (when to order, relative to
the end of the coverage), *forgetting* (a bought renewal never activated) and *lead
times* (how long each order stage takes). The catalog decides everything else: whether
an activation lands in the grace window, what it costs and what it adds. So nothing
here is a number of days of the rules or a price — only probabilities, distributions
and the reference prices of the price sensitivity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import SubsModelError, read_yaml

__all__ = ["STAGES", "Behaviour", "BehaviourError", "LeadTime"]

EDITIONS = ("full", "basic")
#: Order stages whose lead time (from the previous stage) the customer and back office take.
#: ``ticket`` (helpdesk ticket quoting the act) exists for upgrades only.
STAGES = ("invoice", "payment", "ticket", "code", "activation")


class BehaviourError(SubsModelError, ValueError):
    """A behaviour parameter is invalid."""


@dataclass(frozen=True, slots=True)
class LeadTime:
    """Lognormal lead time of one stage: median in hours and log-scale spread."""

    median_hours: float
    sigma: float = 0.8

    def sample(self, z: np.ndarray) -> np.ndarray:
        """Hours for standard-normal draws ``z``."""
        return self.median_hours * np.exp(self.sigma * z)


def _default_timing() -> dict[str, tuple[tuple[int, int, float], ...]]:
    # (first offset, last offset, weight): days of the request relative to the end.
    return {
        "full": ((-60, -31, 0.12), (-30, -8, 0.30), (-7, -1, 0.18), (0, 6, 0.16), (7, 14, 0.10), (15, 45, 0.09), (46, 120, 0.05)),
        "basic": ((-60, -31, 0.08), (-30, -8, 0.25), (-7, -1, 0.17), (0, 6, 0.18), (7, 14, 0.13), (15, 45, 0.12), (46, 120, 0.07)),
    }


def _bins_to_pmf(bins: Any, *, where: str) -> tuple[int, np.ndarray]:
    if not isinstance(bins, (list, tuple)) or not bins:
        msg = f"{where}: expected a list of [first_offset, last_offset, weight] bins"
        raise BehaviourError(msg)
    lo = min(int(b[0]) for b in bins)
    hi = max(int(b[1]) for b in bins)
    pmf = np.zeros(hi - lo + 1)
    for b in bins:
        if len(b) != 3 or int(b[1]) < int(b[0]) or float(b[2]) < 0:
            msg = f"{where}: bin {list(b)!r} must be [first, last >= first, weight >= 0]"
            raise BehaviourError(msg)
        first, last, w = int(b[0]), int(b[1]), float(b[2])
        pmf[first - lo : last - lo + 1] += w / (last - first + 1)
    return lo, pmf


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Behaviour parameters of the cohort simulator.

    Parameters
    ----------
    arrivals_per_month : float
        New licenses in the first simulated month.
    arrivals_growth : float
        Monthly growth rate of new licenses (0.01 = +1 % a month).
    seasonality : tuple of 12 floats
        Multiplier of arrivals by calendar month (January first); mean about 1.
    share_basic : float
        Share of new licenses of the basic edition.
    legacy_licenses : int
        Licenses carried over from the old rules, with a legacy period whose last day
        falls within ``legacy_end_spread_days`` of the start.
    p_continue : mapping edition -> probability
        At each coverage end, the chance the customer intends to continue (at the
        reference renewal price).
    timing : mapping edition -> (min_offset, weights)
        Day-level distribution of the day the customer orders, relative to the end
        (negative = before the end). In YAML: ``bins: [[first, last, weight], ...]`` or
        ``min_offset`` plus ``weights`` (one per day).
    p_subscription_instead : float
        Chance a customer ordering while a renewal is still allowed buys a full
        subscription anyway (the missed discount).
    p_late_renewal : float
        Chance a customer ordering after the window closed still buys a renewal (it will
        be rejected: ``renewal_after_deadline``); the others buy a subscription.
    p_forget : float
        Chance a bought renewal is never activated.
    p_upgrade, upgrade_delay_days : float
        After a renewal lapses: chance of buying the upgrade, and the mean delay in days
        from noticing the lapse to ordering it (geometric).
    p_subscription_after_lapse, lapse_subscription_delay_days : float
        Otherwise: chance of buying a full subscription instead, and its mean delay.
    p_return, return_delay_days : float
        A churned customer's chance of coming back later with a subscription, and the
        mean delay in days after the window closed (exponential).
    lead_times : mapping stage -> LeadTime
        Lognormal lead time of each stage: invoice, payment, ticket (upgrades), code,
        activation (hours, from the previous stage).
    elasticity, upgrade_elasticity : float
        Price sensitivity: the intent to continue scales by
        ``(renewal price / reference renewal price) ** -elasticity``; the chance of an
        upgrade likewise with the upgrade price.
    reference_prices : mapping sku -> rubles
        Prices at which the probabilities above hold.

    Examples
    --------
    >>> b = Behaviour()
    >>> round(float(b.timing_pmf("full").sum()), 6)
    1.0
    >>> Behaviour.from_dict({"p_forget": 0.1}).p_forget
    0.1
    """

    arrivals_per_month: float = 140.0
    arrivals_growth: float = 0.008
    seasonality: tuple[float, ...] = (1.2, 1.0, 1.1, 1.0, 0.95, 0.85, 0.8, 0.85, 1.0, 1.05, 1.1, 1.1)
    share_basic: float = 0.3
    legacy_licenses: int = 900
    legacy_end_spread_days: int = 365
    p_continue: Mapping[str, float] = field(default_factory=lambda: {"full": 0.8, "basic": 0.72})
    timing: Mapping[str, tuple[int, tuple[float, ...]]] = field(default_factory=dict)
    p_subscription_instead: float = 0.06
    p_late_renewal: float = 0.45
    p_forget: float = 0.05
    p_upgrade: float = 0.5
    upgrade_delay_days: float = 10.0
    p_subscription_after_lapse: float = 0.2
    lapse_subscription_delay_days: float = 20.0
    p_return: float = 0.12
    return_delay_days: float = 240.0
    lead_times: Mapping[str, LeadTime] = field(
        default_factory=lambda: {
            "invoice": LeadTime(4.0, 0.9),
            "payment": LeadTime(30.0, 1.0),
            "ticket": LeadTime(20.0, 0.8),
            "code": LeadTime(6.0, 0.9),
            "activation": LeadTime(20.0, 1.1),
        }
    )
    elasticity: float = 1.2
    upgrade_elasticity: float = 1.0
    reference_prices: Mapping[str, float] = field(default_factory=lambda: {"renewal": 3200.0, "upgrade": 800.0})

    def __post_init__(self) -> None:
        if not self.timing:
            timing = {ed: _bins_to_pmf(b, where=f"timing.{ed}") for ed, b in _default_timing().items()}
            object.__setattr__(self, "timing", {ed: (lo, tuple(p.tolist())) for ed, (lo, p) in timing.items()})
        self._validate()

    # -- validation -------------------------------------------------------------------------------
    def _validate(self) -> None:
        probs = ["share_basic", "p_subscription_instead", "p_late_renewal", "p_forget", "p_upgrade",
                 "p_subscription_after_lapse", "p_return"]
        for name in probs:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
                msg = f"behaviour.{name}: {v!r} is not a probability; give a number between 0 and 1"
                raise BehaviourError(msg)
        if self.p_upgrade + self.p_subscription_after_lapse > 1.0 + 1e-12:
            msg = (
                f"behaviour: p_upgrade ({self.p_upgrade}) + p_subscription_after_lapse "
                f"({self.p_subscription_after_lapse}) exceed 1; they are exclusive fates of a lapsed renewal"
            )
            raise BehaviourError(msg)
        for name in ("arrivals_per_month", "upgrade_delay_days", "lapse_subscription_delay_days", "return_delay_days"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or float(v) < 0:
                msg = f"behaviour.{name}: {v!r} must be a number >= 0"
                raise BehaviourError(msg)
        if not isinstance(self.legacy_licenses, int) or self.legacy_licenses < 0:
            msg = f"behaviour.legacy_licenses: {self.legacy_licenses!r} must be a whole number >= 0"
            raise BehaviourError(msg)
        if len(self.seasonality) != 12 or any(float(s) < 0 for s in self.seasonality):
            msg = f"behaviour.seasonality: give 12 non-negative monthly multipliers (January first), got {list(self.seasonality)}"
            raise BehaviourError(msg)
        for ed in EDITIONS:
            if ed not in self.p_continue or not 0 <= float(self.p_continue[ed]) <= 1:
                msg = f"behaviour.p_continue.{ed}: {self.p_continue.get(ed)!r} is not a probability"
                raise BehaviourError(msg)
            if ed not in self.timing:
                msg = f"behaviour.timing: missing the distribution for edition {ed!r}"
                raise BehaviourError(msg)
            lo, w = self.timing[ed]
            if not w or sum(w) <= 0 or min(w) < 0:
                msg = f"behaviour.timing.{ed}: weights must be >= 0 with a positive sum"
                raise BehaviourError(msg)
        for st in STAGES:
            lt = self.lead_times.get(st)
            if not isinstance(lt, LeadTime) or lt.median_hours <= 0 or lt.sigma < 0:
                msg = f"behaviour.lead_times.{st}: {lt!r} needs median_hours > 0 and sigma >= 0"
                raise BehaviourError(msg)
        for sku in ("renewal", "upgrade"):
            if float(self.reference_prices.get(sku, 0)) <= 0:
                msg = f"behaviour.reference_prices.{sku}: give the reference price in rubles (> 0)"
                raise BehaviourError(msg)

    # -- derived ------------------------------------------------------------------------------------
    def timing_pmf(self, edition: str) -> np.ndarray:
        """Normalised day-level distribution of the order day relative to the end."""
        w = np.asarray(self.timing[edition][1], dtype=float)
        return w / w.sum()

    def timing_offsets(self, edition: str) -> np.ndarray:
        """The offsets (days) the :meth:`timing_pmf` weights belong to."""
        lo, w = self.timing[edition]
        return np.arange(lo, lo + len(w))

    # -- YAML ---------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, where: str = "behaviour") -> Behaviour:
        """Build from a plain mapping (as read from YAML); missing fields keep their defaults."""
        if not isinstance(raw, Mapping):
            msg = f"{where}: expected a mapping of parameters"
            raise BehaviourError(msg)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            msg = f"{where}: unknown parameter(s) {unknown}; known: {sorted(names)}"
            raise BehaviourError(msg)
        kw: dict[str, Any] = dict(raw)
        if "seasonality" in kw:
            kw["seasonality"] = tuple(float(x) for x in kw["seasonality"])
        if "lead_times" in kw:
            lts = dict(cls().lead_times)
            for st, v in kw["lead_times"].items():
                if st not in STAGES:
                    msg = f"{where}.lead_times: unknown stage {st!r}; stages are {list(STAGES)}"
                    raise BehaviourError(msg)
                lts[st] = LeadTime(float(v["median_hours"]), float(v.get("sigma", 0.8)))
            kw["lead_times"] = lts
        if "timing" in kw:
            timing = {}
            for ed, spec in kw["timing"].items():
                if "bins" in spec:
                    lo, pmf = _bins_to_pmf(spec["bins"], where=f"{where}.timing.{ed}")
                    timing[ed] = (lo, tuple(pmf.tolist()))
                else:
                    timing[ed] = (int(spec["min_offset"]), tuple(float(x) for x in spec["weights"]))
            kw["timing"] = timing
        for key in ("p_continue", "reference_prices"):
            if key in kw:
                base = dict(getattr(cls(), key))
                base.update({k: float(v) for k, v in kw[key].items()})
                kw[key] = base
        try:
            return cls(**kw)
        except TypeError as exc:
            msg = f"{where}: {exc}"
            raise BehaviourError(msg) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> Behaviour:
        """Read a behaviour YAML file (see ``data/behaviour.yaml``)."""
        raw = read_yaml(path, BehaviourError, "the behaviour file") or {}
        return cls.from_dict(raw, where=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping that :meth:`from_dict` reads back exactly."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["seasonality"] = [float(x) for x in self.seasonality]
        out["p_continue"] = {k: float(v) for k, v in self.p_continue.items()}
        out["reference_prices"] = {k: float(v) for k, v in self.reference_prices.items()}
        out["lead_times"] = {k: asdict(v) for k, v in self.lead_times.items()}
        out["timing"] = {
            ed: {"min_offset": int(lo), "weights": [float(x) for x in w]} for ed, (lo, w) in self.timing.items()
        }
        for k, v in out.items():
            if isinstance(v, (np.floating, np.integer)):
                out[k] = v.item()
        return out

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text of the behaviour, also written to ``path`` if given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def with_changes(self, **changes: Any) -> Behaviour:
        """A copy with some parameters changed (validated)."""
        return replace(self, **changes)
