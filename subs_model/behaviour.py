"""Customer behaviour of the cohort simulator: a frozen, documented, YAML-backed parameter set.

The customer decides *intent* (continue or not), *timing* (when to order, relative to
the end of the coverage), *forgetting* (a bought renewal never activated) and *lead
times* (how long each order stage takes). The catalog decides everything else: whether
an activation lands in the grace window, what it costs and what it adds. So nothing
here is a number of days of the rules or a price — only probabilities, distributions
and the reference prices of the price sensitivity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import SubsModelError, read_yaml
from .vocab import STAGES, Edition, categories

__all__ = ["STAGES", "Behaviour", "BehaviourError", "LeadTime"]

#: Editions by name (keys of the per-edition parameters), in engine-code order.
EDITIONS = tuple(categories(Edition))


class BehaviourError(SubsModelError, ValueError):
    """A behaviour parameter is invalid."""


#: Bounds of the numeric parameters, (low, high), both included; checked at load with a
#: one-line error. They keep a simulation finite: days stay in range, counts fit memory.
BOUNDS: dict[str, tuple[float, float]] = {
    "arrivals_per_month": (0, 1_000_000),
    "arrivals_growth": (-0.5, 0.5),
    "legacy_licenses": (0, 10_000_000),
    "legacy_end_spread_days": (0, 3_650),
    "upgrade_delay_days": (0, 3_650),
    "lapse_subscription_delay_days": (0, 3_650),
    "return_delay_days": (0, 3_650),
    "elasticity": (0, math.inf),
    "upgrade_elasticity": (0, math.inf),
}
PROBABILITIES = ("share_basic", "p_subscription_instead", "p_late_renewal", "p_forget", "p_upgrade",
                 "p_subscription_after_lapse", "p_return")
WHOLE = ("legacy_licenses", "legacy_end_spread_days")
SEASONALITY_MAX = 100.0
#: The elasticity range when a file gives none (0 = price does not matter; 2 = strongly elastic).
DEFAULT_ELASTICITY_RANGE = (0.0, 2.0)
ELASTICITY_MAX = 20.0
TIMING_OFFSET_MAX = 3_650  # an order day at most this many days before or after the end
LEAD_HOURS_MAX = 8_760.0  # a stage's median lead time: at most a year
SIGMA_MAX = 5.0
REFERENCE_PRICE_MAX = 100_000_000.0
SHIFT_MAX = 10.0  # log-odds: beyond ±10 a shifted mean is 0 or 1 to four decimals
COHORT_YEARS = (2000, 2100)
CONCENTRATION_MAX = 1_000_000.0  # beyond it customers are alike to many decimals: leave the edition out instead


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _number(value: Any, *, where: str, lo: float, hi: float, whole: bool = False, above: bool = False) -> Any:
    """``value`` if it is a finite number (an int if ``whole``) in ``lo..hi`` (``lo`` excluded if ``above``)."""
    kind = "a whole number" if whole else "a number"
    ok = isinstance(value, (int, np.integer)) if whole else _is_number(value)
    x = float(value) if ok else math.nan
    if ok and math.isfinite(x) and (lo < x if above else lo <= x) and x <= hi:
        return int(value) if whole else x
    if hi == math.inf:
        kind = "a finite number" if not whole else kind
        span = f"> {_fmt(lo)}" if above else f">= {_fmt(lo)}"
    else:
        span = f"above {_fmt(lo)} up to {_fmt(hi)}" if above else f"from {_fmt(lo)} to {_fmt(hi)}"
    msg = f"{where}: {value!r} is not {kind} {span}; give {kind} {span}"
    raise BehaviourError(msg)


def _fmt(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _probability(value: Any, *, where: str) -> float:
    if _is_number(value) and 0.0 <= float(value) <= 1.0:
        return float(value)
    msg = f"{where}: {value!r} is not a probability; give a number between 0 and 1"
    raise BehaviourError(msg)


def _mapping(value: Any, *, where: str, keys: tuple[str, ...], example: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        msg = f"{where}: {value!r} is not a mapping; write it as {example}"
        raise BehaviourError(msg)
    unknown = sorted(str(k) for k in set(value) - set(keys))
    if unknown:
        msg = f"{where}: unknown key(s) {unknown}; use {list(keys)}"
        raise BehaviourError(msg)
    return value


def _sequence(value: Any, *, where: str, example: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        msg = f"{where}: {value!r} is not a list; write it as {example}"
        raise BehaviourError(msg)
    return list(value)


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
    example = "[[first_offset, last_offset, weight], ...], e.g. [[-30, -1, 0.5], [0, 14, 0.5]]"
    bins = _sequence(bins, where=where, example=example)
    if not bins:
        msg = f"{where}: no bins; write them as {example}"
        raise BehaviourError(msg)
    parsed = []
    for i, b in enumerate(bins):
        if not isinstance(b, (list, tuple)) or len(b) != 3:
            msg = f"{where}[{i}]: bin {b!r} must be [first, last >= first, weight >= 0]"
            raise BehaviourError(msg)
        first = _number(b[0], where=f"{where}[{i}][0]", lo=-TIMING_OFFSET_MAX, hi=TIMING_OFFSET_MAX, whole=True)
        last = _number(b[1], where=f"{where}[{i}][1]", lo=first, hi=TIMING_OFFSET_MAX, whole=True)
        w = _number(b[2], where=f"{where}[{i}][2]", lo=0, hi=math.inf)
        parsed.append((first, last, w))
    lo = min(b[0] for b in parsed)
    hi = max(b[1] for b in parsed)
    pmf = np.zeros(hi - lo + 1)
    for first, last, w in parsed:
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
        reference renewal price). With ``continue_concentration`` it is the mean over
        new customers.
    continue_concentration : mapping edition -> number > 0, optional
        Heterogeneity: each license draws its own propensity to continue from
        ``Beta(k * p, k * (1 - p))`` (``k`` this concentration, ``p`` = ``p_continue``) and
        keeps it — the shifted-beta-geometric model, churn ``theta ~ Beta(alpha = k (1 - p),
        beta = k p)``. Small ``k``: very different customers (retention rises with tenure);
        large ``k``: alike. An edition not named (the default: none) is homogeneous.
    continue_shift : mapping, optional
        Covariates the data has, shifting a license's mean propensity on the log-odds
        scale: ``legacy`` (licenses carried over from the old rules) and ``cohort``
        (year of arrival -> shift), e.g. ``{legacy: 0.5, cohort: {2023: -0.3}}``. A license
        with shift ``s`` has mean ``expit(logit(p_continue) + s)`` (and, with a
        concentration, ``Beta(k m, k (1 - m))`` around it). Empty (the default): no shift,
        so ``p_continue`` is every license's mean and old files simulate as before.
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
        upgrade likewise with the upgrade price. ``elasticity`` is the central value.
    elasticity_range : (low, high)
        The range the renewal-price elasticity plausibly lies in (the prior's range, or the
        90 % interval of :func:`subs_model.estimate_elasticity`): a what-if reports every
        price scenario across it. In YAML ``elasticity_range: [0, 2]``; when absent (files
        written before it existed) it is ``[0, 2]`` widened to hold ``elasticity``.
    elasticity_source : str
        Where the elasticity comes from, in words (``prior`` or the estimate's description);
        shown beside every result that rests on it.
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
    continue_concentration: Mapping[str, float] = field(default_factory=dict)
    continue_shift: Mapping[str, Any] = field(default_factory=dict)
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
    elasticity_range: tuple[float, float] | None = None
    elasticity_source: str = "prior"
    reference_prices: Mapping[str, float] = field(default_factory=lambda: {"renewal": 3200.0, "upgrade": 800.0})

    def __post_init__(self) -> None:
        if not self.timing:
            timing = {ed: _bins_to_pmf(b, where=f"timing.{ed}") for ed, b in _default_timing().items()}
            object.__setattr__(self, "timing", {ed: (lo, tuple(p.tolist())) for ed, (lo, p) in timing.items()})
        if self.elasticity_range is None:
            object.__setattr__(self, "elasticity_range", _default_range(self.elasticity))
        else:
            object.__setattr__(self, "elasticity_range", tuple(float(x) for x in self.elasticity_range))
        self._validate("behaviour")

    # -- validation -------------------------------------------------------------------------------
    def _validate(self, where: str = "behaviour") -> None:
        for name in PROBABILITIES:
            _probability(getattr(self, name), where=f"{where}.{name}")
        for name, (lo, hi) in BOUNDS.items():
            _number(getattr(self, name), where=f"{where}.{name}", lo=lo, hi=hi, whole=name in WHOLE)
        if self.p_upgrade + self.p_subscription_after_lapse > 1.0 + 1e-12:
            msg = (
                f"{where}: p_upgrade ({self.p_upgrade}) + p_subscription_after_lapse "
                f"({self.p_subscription_after_lapse}) exceed 1; they are exclusive fates of a lapsed renewal"
            )
            raise BehaviourError(msg)
        if len(self.seasonality) != 12:
            msg = f"{where}.seasonality: give 12 non-negative monthly multipliers (January first), got {list(self.seasonality)}"
            raise BehaviourError(msg)
        for m, x in enumerate(self.seasonality):
            _number(x, where=f"{where}.seasonality[{m}]", lo=0, hi=SEASONALITY_MAX)
        for ed in EDITIONS:
            if ed not in self.p_continue:
                msg = f"{where}.p_continue.{ed}: missing; give a probability, e.g. {ed}: 0.8"
                raise BehaviourError(msg)
            _probability(self.p_continue[ed], where=f"{where}.p_continue.{ed}")
            if ed not in self.timing:
                msg = f"{where}.timing: missing the distribution for edition {ed!r}"
                raise BehaviourError(msg)
            lo, w = self.timing[ed]
            _number(lo, where=f"{where}.timing.{ed}.min_offset", lo=-TIMING_OFFSET_MAX, hi=TIMING_OFFSET_MAX, whole=True)
            if not 0 < len(w) <= 2 * TIMING_OFFSET_MAX + 1 or lo + len(w) - 1 > TIMING_OFFSET_MAX:
                msg = f"{where}.timing.{ed}: {len(w)} weights from offset {lo}; give offsets within ±{TIMING_OFFSET_MAX} days"
                raise BehaviourError(msg)
            for i, x in enumerate(w):
                _number(x, where=f"{where}.timing.{ed}.weights[{i}]", lo=0, hi=math.inf)
            if sum(w) <= 0:
                msg = f"{where}.timing.{ed}: weights must be >= 0 with a positive sum"
                raise BehaviourError(msg)
        _check_concentration(self.continue_concentration, self.p_continue, where)
        _check_shift(self.continue_shift, where)
        for st in STAGES:
            lt = self.lead_times.get(st)
            if not isinstance(lt, LeadTime):
                msg = f"{where}.lead_times.{st}: {lt!r} needs median_hours > 0 and sigma >= 0"
                raise BehaviourError(msg)
            _number(lt.median_hours, where=f"{where}.lead_times.{st}.median_hours", lo=0, hi=LEAD_HOURS_MAX, above=True)
            _number(lt.sigma, where=f"{where}.lead_times.{st}.sigma", lo=0, hi=SIGMA_MAX)
        _check_range(self.elasticity_range, self.elasticity, where=where)
        if not isinstance(self.elasticity_source, str) or not self.elasticity_source.strip():
            msg = f"{where}.elasticity_source: {self.elasticity_source!r}; give a non-empty text, e.g. 'prior'"
            raise BehaviourError(msg)
        for sku in ("renewal", "upgrade"):
            if sku not in self.reference_prices:
                msg = f"{where}.reference_prices.{sku}: missing; give the reference price in rubles (> 0)"
                raise BehaviourError(msg)
            _number(self.reference_prices[sku], where=f"{where}.reference_prices.{sku}", lo=0, hi=REFERENCE_PRICE_MAX, above=True)

    # -- derived ------------------------------------------------------------------------------------
    def churn_beta(self, edition: str) -> tuple[float, float] | None:
        """``(alpha, beta)`` of the churn probability's Beta mixing distribution (sBG) for
        ``edition``, or None where customers are alike (no ``continue_concentration``).

        >>> [round(x, 6) for x in Behaviour(continue_concentration={"full": 2.0}).churn_beta("full")]
        [0.4, 1.6]
        """
        k = self.continue_concentration.get(edition)
        if k is None:
            return None
        p = float(self.p_continue[edition])
        return float(k) * (1 - p), float(k) * p

    def shift_of(self, legacy: np.ndarray, cohort_year: np.ndarray) -> np.ndarray:
        """Each license's log-odds shift of its mean propensity (0 where none applies).

        >>> Behaviour(continue_shift={"legacy": 0.5, "cohort": {2023: -0.3}}).shift_of(
        ...     np.array([True, False, False]), np.array([2020, 2023, 2024])).tolist()
        [0.5, -0.3, 0.0]
        """
        out = np.zeros(len(legacy))
        out[np.asarray(legacy, dtype=bool)] += float(self.continue_shift.get("legacy", 0.0))
        for year, v in self.continue_shift.get("cohort", {}).items():
            out[np.asarray(cohort_year) == int(year)] += float(v)
        return out

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
        unknown = sorted(map(str, set(raw) - names))
        if unknown:
            msg = f"{where}: unknown parameter(s) {unknown}; known: {sorted(names)}"
            raise BehaviourError(msg)
        kw: dict[str, Any] = dict(raw)
        if kw.get("elasticity_range") is not None:
            rng = _sequence(kw["elasticity_range"], where=f"{where}.elasticity_range", example="[0, 2]")
            if len(rng) != 2:
                msg = f"{where}.elasticity_range: {rng!r} needs two numbers [low, high]; write it as [0, 2]"
                raise BehaviourError(msg)
            kw["elasticity_range"] = tuple(_number(x, where=f"{where}.elasticity_range[{i}]", lo=0, hi=ELASTICITY_MAX)
                                           for i, x in enumerate(rng))
        elif "elasticity" in kw:
            e = _number(kw["elasticity"], where=f"{where}.elasticity", lo=0, hi=math.inf)
            kw["elasticity_range"] = _default_range(e)
        if "seasonality" in kw:
            kw["seasonality"] = tuple(
                _number(x, where=f"{where}.seasonality[{m}]", lo=0, hi=SEASONALITY_MAX)
                for m, x in enumerate(_sequence(kw["seasonality"], where=f"{where}.seasonality", example="[1.2, 1.0, …] (12 numbers)"))
            )
        if "lead_times" in kw:
            lts = dict(cls().lead_times)
            example = "{invoice: {median_hours: 4, sigma: 0.9}, ...}"
            for st, v in _mapping(kw["lead_times"], where=f"{where}.lead_times", keys=STAGES, example=example).items():
                at = f"{where}.lead_times.{st}"
                v = _mapping(v, where=at, keys=("median_hours", "sigma"), example="{median_hours: 4, sigma: 0.9}")
                if "median_hours" not in v:
                    msg = f"{at}: missing median_hours; write it as {{median_hours: 4, sigma: 0.9}}"
                    raise BehaviourError(msg)
                lts[st] = LeadTime(
                    _number(v["median_hours"], where=f"{at}.median_hours", lo=0, hi=LEAD_HOURS_MAX, above=True),
                    _number(v.get("sigma", 0.8), where=f"{at}.sigma", lo=0, hi=SIGMA_MAX),
                )
            kw["lead_times"] = lts
        if "timing" in kw:
            timing = {}
            example = "{full: {bins: [[-30, -1, 0.5], [0, 14, 0.5]]}, basic: {...}}"
            for ed, spec in _mapping(kw["timing"], where=f"{where}.timing", keys=EDITIONS, example=example).items():
                at = f"{where}.timing.{ed}"
                spec = _mapping(spec, where=at, keys=("bins", "min_offset", "weights"), example="{bins: [[first, last, weight], ...]}")
                if "bins" in spec:
                    lo, pmf = _bins_to_pmf(spec["bins"], where=f"{at}.bins")
                    timing[ed] = (lo, tuple(pmf.tolist()))
                elif "min_offset" in spec and "weights" in spec:
                    lo = _number(spec["min_offset"], where=f"{at}.min_offset", lo=-TIMING_OFFSET_MAX, hi=TIMING_OFFSET_MAX, whole=True)
                    weights = _sequence(spec["weights"], where=f"{at}.weights", example="[0.1, 0.2, …] (one per day)")
                    timing[ed] = (lo, tuple(_number(x, where=f"{at}.weights[{i}]", lo=0, hi=math.inf) for i, x in enumerate(weights)))
                else:
                    msg = f"{at}: give 'bins' ([[first, last, weight], ...]) or 'min_offset' with 'weights'"
                    raise BehaviourError(msg)
            kw["timing"] = timing
        if "continue_concentration" in kw:
            raw_k = kw["continue_concentration"] or {}
            kw["continue_concentration"] = dict(_mapping(raw_k, where=f"{where}.continue_concentration", keys=EDITIONS,
                                                         example="{full: 2.5, basic: 2.0}"))
        if "continue_shift" in kw:
            kw["continue_shift"] = _shift_from(kw["continue_shift"] or {}, f"{where}.continue_shift")
        for key, keys, example in (("p_continue", EDITIONS, "{full: 0.8, basic: 0.72}"),
                                   ("reference_prices", ("renewal", "upgrade"), "{renewal: 3200, upgrade: 800}")):
            if key in kw:
                base = dict(getattr(cls(), key))
                base.update(_mapping(kw[key], where=f"{where}.{key}", keys=keys, example=example))
                kw[key] = base
        defaults = cls()
        probe = {f.name: kw.get(f.name, getattr(defaults, f.name)) for f in fields(cls)}
        cls._validate(_Probe(probe), where)  # type: ignore[arg-type]
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Behaviour:
        """Read a behaviour YAML file (see ``data/behaviour.yaml``)."""
        raw = read_yaml(path, BehaviourError, "the behaviour file") or {}
        return cls.from_dict(raw, where=f"{path}: behaviour")

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping that :meth:`from_dict` reads back exactly."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["seasonality"] = [float(x) for x in self.seasonality]
        out["p_continue"] = {k: float(v) for k, v in self.p_continue.items()}
        out["continue_concentration"] = {k: float(v) for k, v in self.continue_concentration.items()}
        out["continue_shift"] = _shift_from(self.continue_shift, "continue_shift")
        out["reference_prices"] = {k: float(v) for k, v in self.reference_prices.items()}
        out["lead_times"] = {k: asdict(v) for k, v in self.lead_times.items()}
        out["elasticity_range"] = [float(x) for x in self.elasticity_range]
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


def _default_range(elasticity: Any) -> tuple[float, float] | None:
    """``DEFAULT_ELASTICITY_RANGE`` widened to hold ``elasticity`` (None when it is not a number:
    the validation then names the bad elasticity)."""
    if not _is_number(elasticity) or not math.isfinite(float(elasticity)):
        return DEFAULT_ELASTICITY_RANGE
    lo, hi = DEFAULT_ELASTICITY_RANGE
    return (min(lo, float(elasticity)), max(hi, float(elasticity)))


def _check_range(rng: Any, elasticity: float, *, where: str) -> None:
    """The elasticity range: two finite numbers ``0 <= low <= central <= high``."""
    ok = isinstance(rng, tuple) and len(rng) == 2 and all(_is_number(x) and math.isfinite(float(x)) for x in rng)
    if not ok or not 0 <= rng[0] <= rng[1] <= ELASTICITY_MAX:
        msg = f"{where}.elasticity_range: {rng!r} is not [low, high] with 0 <= low <= high <= {ELASTICITY_MAX:g}; write it as [0, 2]"
        raise BehaviourError(msg)
    if not rng[0] <= elasticity <= rng[1]:
        msg = (f"{where}.elasticity_range: {list(rng)} does not hold the central elasticity {elasticity:g}; "
               f"widen the range or move the elasticity inside it")
        raise BehaviourError(msg)


def _shift_from(raw: Any, at: str) -> dict[str, Any]:
    """``continue_shift`` as plain ``{legacy: float, cohort: {year: float}}`` (only the keys given)."""
    raw = _mapping(raw, where=at, keys=("legacy", "cohort"), example="{legacy: 0.5, cohort: {2023: -0.3}}")
    out: dict[str, Any] = {}
    if "legacy" in raw:
        out["legacy"] = _number(raw["legacy"], where=f"{at}.legacy", lo=-SHIFT_MAX, hi=SHIFT_MAX)
    if "cohort" in raw:
        cohort = raw["cohort"]
        if not isinstance(cohort, Mapping):
            msg = (f"{at}.cohort: {cohort!r} is not a mapping; write it as {{2023: -0.3, 2024: 0.1}} "
                   "(year: log-odds shift)")
            raise BehaviourError(msg)
        out["cohort"] = {}
        for year, v in cohort.items():
            y = _number(int(year) if isinstance(year, str) and year.isdigit() else year,
                        where=f"{at}.cohort (year {year!r})", lo=COHORT_YEARS[0], hi=COHORT_YEARS[1], whole=True)
            out["cohort"][y] = _number(v, where=f"{at}.cohort.{y}", lo=-SHIFT_MAX, hi=SHIFT_MAX)
    return out


def _check_shift(shift: Any, where: str) -> None:
    """``continue_shift``: legacy and cohort-year log-odds shifts within ±SHIFT_MAX."""
    _shift_from(shift, f"{where}.continue_shift")


def _check_concentration(conc: Any, p_continue: Mapping[str, Any], where: str) -> None:
    """``continue_concentration``: a mapping edition -> number > 0, its edition's mean strictly inside (0, 1)."""
    at = f"{where}.continue_concentration"
    conc = _mapping(conc, where=at, keys=EDITIONS, example="{full: 2.5, basic: 2.0}")
    for ed, k in conc.items():
        _number(k, where=f"{at}.{ed}", lo=0, hi=CONCENTRATION_MAX, above=True)
        p = p_continue.get(ed) if isinstance(p_continue, Mapping) else None
        if _is_number(p) and not 0 < float(p) < 1:
            msg = (f"{at}.{ed}: a spread of propensities needs a mean strictly between 0 and 1, but "
                   f"p_continue.{ed} is {p!r}; remove the concentration or give p_continue.{ed} inside (0, 1)")
            raise BehaviourError(msg)


class _Probe:
    """Attribute view of a mapping, so that :meth:`Behaviour._validate` checks values before they are built."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)
