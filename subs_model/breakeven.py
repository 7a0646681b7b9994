"""Break-even elasticity of a price scenario, and the size of a test that could tell it apart.

A price change pays off or not depending on how customers answer the price: the
renewal-price elasticity. The **break-even elasticity** of a scenario is the elasticity at
which it equals the baseline on an objective (bookings or recognised revenue over the
first ``months`` of the horizon, or active licenses at its end). It is found by a root
search (:func:`scipy.optimize.brentq`) on the mean difference over runs ``0 … runs-1``,
which use the same random numbers at every elasticity (common random numbers): the
difference is then a smooth function of the elasticity, not noise.

:func:`find_break_even` is the search alone: it takes any function "per-run differences at
elasticity ``e``", so it does not depend on how the runs are simulated. :func:`break_even`
wires it to the what-if simulation. :func:`decisions_needed` sizes a price test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .behaviour import Behaviour
from .catalog import Catalog
from .errors import SubsModelError
from .ledger import Ledger

__all__ = ["BreakEven", "BreakEvenError", "OBJECTIVES", "break_even", "decisions_needed", "find_break_even"]

#: What a break-even compares: bookings or recognised revenue summed over the months, active licenses at the last one.
OBJECTIVES = ("bookings", "recognised", "active")
#: z of a two-sided 90 % interval.
Z90 = 1.6448536269514722


class BreakEvenError(SubsModelError, ValueError):
    """A break-even search or test design was asked something it cannot answer."""


@dataclass(frozen=True, slots=True)
class BreakEven:
    """The elasticity at which a scenario's mean difference to the baseline is zero.

    ``elasticity`` is NaN when the difference keeps one sign over the whole bracket
    (``sign`` then says which: +1 the scenario is ahead everywhere, -1 behind); ``low`` and
    ``high`` are its 90 % Monte Carlo interval (delta method: the spread of the per-run
    differences at the root over the slope of the mean difference). ``pays_above`` is True
    when the scenario is ahead for elasticities above the root (a price cut), False when
    below (a price rise).
    """

    elasticity: float
    low: float
    high: float
    bracket: tuple[float, float]
    sign: int
    pays_above: bool | None
    slope: float
    evaluations: int
    runs: int


def find_break_even(diff_at: Callable[[float], np.ndarray], bracket: tuple[float, float], *, xtol: float = 0.01,
                    slope_step: float = 0.1) -> BreakEven:
    """Root of ``e -> mean(diff_at(e))`` in ``bracket``, with a 90 % Monte Carlo interval.

    ``diff_at(e)`` returns the per-run differences (scenario − baseline) at elasticity ``e``,
    the same runs (random numbers) at every ``e``.

    Examples
    --------
    >>> noise = np.linspace(-0.1, 0.1, 20)
    >>> be = find_break_even(lambda e: (e - 0.6) * 10 + noise, (0.0, 2.0))
    >>> round(be.elasticity, 2), be.pays_above
    (0.6, True)
    """
    from scipy.optimize import brentq

    lo, hi = float(bracket[0]), float(bracket[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        msg = f"break-even: bracket {bracket!r} must be two finite elasticities 0 <= low < high, e.g. (0, 2)"
        raise BreakEvenError(msg)
    cache: dict[float, np.ndarray] = {}

    def runs_at(e: float) -> np.ndarray:
        key = round(float(e), 9)
        if key not in cache:
            cache[key] = np.asarray(diff_at(key), dtype=float)
        return cache[key]

    f = lambda e: float(runs_at(e).mean())  # noqa: E731
    f_lo, f_hi = f(lo), f(hi)
    n = len(runs_at(lo))
    if f_lo == 0 or f_hi == 0 or (f_lo > 0) != (f_hi > 0):
        root = lo if f_lo == 0 else hi if f_hi == 0 else float(brentq(f, lo, hi, xtol=xtol))
        slope = _slope(cache, root, slope_step)
        se = float(runs_at(root).std(ddof=1) / math.sqrt(n)) / abs(slope) if slope and n > 1 else math.inf
        return BreakEven(root, root - Z90 * se, root + Z90 * se, (lo, hi), 0, slope > 0, slope, len(cache), n)
    slope = (f_hi - f_lo) / (hi - lo)
    return BreakEven(math.nan, math.nan, math.nan, (lo, hi), 1 if f_lo > 0 else -1, None, slope, len(cache), n)


def _slope(cache: dict[float, np.ndarray], root: float, step: float) -> float:
    """Slope of the mean difference at ``root``: a least-squares line through the points the
    search evaluated within ``step`` of it (at least the two nearest), so no extra runs."""
    x = np.array(sorted(cache))
    near = np.abs(x - root) <= step
    if near.sum() < 2:
        near = np.zeros(len(x), bool)
        near[np.argsort(np.abs(x - root))[:2]] = True
    xs = x[near]
    ys = np.array([cache[k].mean() for k in xs])
    return float(np.polyfit(xs, ys, 1)[0]) if len(xs) >= 2 and np.ptp(xs) > 0 else 0.0


def objective_of(runs: np.ndarray, objective: str, months: int | None = None) -> np.ndarray:
    """Per-run objective from a ``[run, metric, month]`` what-if array: the money metrics summed
    over the first ``months`` (default: all), active licenses at the end of month ``months``."""
    from .whatif import Metric

    if objective not in OBJECTIVES:
        msg = f"break-even: objective {objective!r} is not one of {list(OBJECTIVES)}"
        raise BreakEvenError(msg)
    m = runs.shape[2] if months is None else int(months)
    if not 1 <= m <= runs.shape[2]:
        msg = f"break-even: months={months!r}; give 1 to {runs.shape[2]} (the horizon)"
        raise BreakEvenError(msg)
    k = Metric(objective).code
    return runs[:, k, m - 1].astype(float) if objective == "active" else runs[:, k, :m].sum(axis=1).astype(float)


def break_even(
    ledger: Ledger, scenarios: Sequence[Any], as_of: Any, *, objective: str = "bookings", months: int | None = None,
    horizon_months: int = 36, runs: int = 40, seed: int = 1, executor: Executor | None = None,
    catalog: Catalog | None = None, prior: Behaviour | None = None, behaviour: Behaviour | None = None,
    bracket: tuple[float, float] | None = None, xtol: float = 0.01, start: Any = None,
) -> pd.DataFrame:
    """Break-even elasticity of each price scenario against the first (the baseline).

    Returns a row per scenario after the first: ``scenario, objective, months, break_even,
    low, high`` (90 % Monte Carlo interval), ``pays_off_if`` (``above`` / ``below`` /
    ``always`` / ``never`` within the bracket), ``bracket_low, bracket_high`` (default: the
    behaviour's elasticity range), ``central_elasticity``, ``diff_at_central`` (the
    objective's mean difference at the central elasticity; kopecks for money), ``runs``,
    ``evaluations`` and ``note_ru`` / ``note_en`` — the answer in words. ``start`` reuses a
    :func:`subs_model.whatif.prepare_start` of the same ledger, day and horizon.

    Examples
    --------
    >>> be = break_even(led, [Scenario("baseline"), Scenario("renewal 3000", catalog={"prices": {
    ...     "full": {"renewal": 3000}, "basic": {"renewal": 3000}}})], "2026-10-31")  # doctest: +SKIP
    >>> be.loc[0, "note_ru"]  # doctest: +SKIP
    '«renewal 3000»: снижение до 3 000 ₽ окупается по поступлениям за 36 мес., если эластичность выше 0,61 (90 %: 0,61–0,62)'
    """
    from .whatif import Scenario, prepare_start, simulate_grid

    if len(scenarios) < 2:
        msg = "break-even: give the baseline and at least one price scenario"
        raise BreakEvenError(msg)
    objective_of(np.zeros((1, 8, horizon_months)), objective, months)  # validate before simulating
    st = start or prepare_start(ledger, as_of, horizon_months, catalog=catalog, prior=prior, behaviour=behaviour)
    lo, hi = bracket or st.behaviour.elasticity_range
    base_sc, rows = scenarios[0], []
    own = executor is None
    ex = executor or ProcessPoolExecutor(max_workers=_workers())
    try:
        base_runs: dict[float, np.ndarray] = {}

        def base_at(e: float) -> np.ndarray:
            if not base_runs or not _independent(st, base_sc):
                base_runs[e] = objective_of(simulate_grid(st, [base_sc], [e], runs, seed, ex)[0][base_sc.name, e], objective, months)
                return base_runs[e]
            return next(iter(base_runs.values()))

        for sc in scenarios[1:]:
            sc = sc if isinstance(sc, Scenario) else Scenario(**sc)
            memo: dict[float, np.ndarray] = {}

            def diff(e: float, sc: Any = sc, memo: dict[float, np.ndarray] = memo) -> np.ndarray:
                key = round(float(e), 6)
                if key not in memo:
                    memo[key] = objective_of(simulate_grid(st, [sc], [key], runs, seed, ex)[0][sc.name, key], objective,
                                             months) - base_at(key)
                return memo[key]

            central = float(diff(float(st.behaviour.elasticity)).mean())
            if _independent(st, sc):  # today's renewal prices: the elasticity does not decide it
                be = BreakEven(math.nan, math.nan, math.nan, (float(lo), float(hi)), 1 if central > 0 else -1, None, 0.0, 1, runs)
            else:
                be = find_break_even(diff, (float(lo), float(hi)), xtol=xtol)
            rows.append(_row(sc, be, objective, months or horizon_months, st, central))
    finally:
        if own:
            ex.shutdown()
    return pd.DataFrame(rows)


def _workers() -> int:
    from .workers import workers

    return workers()


def _independent(st: Any, sc: Any) -> bool:
    """Whether scenario ``sc`` prices renewals as today (its runs do not depend on the elasticity)."""
    from .whatif import depends_on_elasticity

    return not depends_on_elasticity(sc.catalog_for(st.catalog, pd.Timestamp(st.start_day, unit="D")), st.catalog,
                                      st.decision_day)


OBJECTIVE_WORDS = {
    "ru": {"bookings": "поступлениям", "recognised": "признанной выручке", "active": "числу активных лицензий"},
    "en": {"bookings": "bookings", "recognised": "recognised revenue", "active": "active licenses"},
}


def _num(x: float, lang: str, digits: int = 1) -> str:
    text = f"{x:,.{digits}f}"
    return text.replace(",", "\u00a0").replace(".", ",") if lang == "ru" else text


def _rub(kopecks: float, lang: str) -> str:
    return _num(kopecks / 100, lang, 0) + " ₽" if lang == "ru" else "₽" + _num(kopecks / 100, lang, 0)


def _change(sc: Any, st: Any, lang: str) -> str:
    """"снижение до 3 000 ₽" / "a cut to ₽3,000" from the scenario's full-edition renewal price."""
    cat = sc.catalog_for(st.catalog, pd.Timestamp(st.start_day, unit="D"))
    new = cat.version_at(pd.Timestamp(st.start_day + 1, unit="D").date()).price("renewal", "full")
    old = st.catalog.version_at(st.as_of.date()).price("renewal", "full")
    if new == old:
        return f"«{sc.title_in(lang)}»" if lang == "ru" else f"“{sc.title_in(lang)}”"
    if lang == "ru":
        return ("снижение" if new < old else "повышение") + f" цены продления до {_rub(new, lang)}"
    return ("a renewal price cut" if new < old else "a renewal price rise") + f" to {_rub(new, lang)}"


def _row(sc: Any, be: BreakEven, objective: str, months: int, st: Any, central: float) -> dict[str, Any]:
    """One break-even row with its notes in Russian and English."""
    if math.isnan(be.elasticity):
        verdict = "always" if be.sign > 0 else "never"
    else:
        verdict = "above" if be.pays_above else "below"
    notes = {}
    for lang in ("ru", "en"):
        what, obj = _change(sc, st, lang), OBJECTIVE_WORDS[lang][objective]
        if be.slope == 0 and be.evaluations == 1:
            word = ("выигрывает" if be.sign > 0 else "проигрывает") if lang == "ru" else ("gains" if be.sign > 0 else "loses")
            notes[lang] = (f"{what}: цена продления не меняется, эластичность его не решает; по {obj} сценарий {word}"
                           if lang == "ru" else
                           f"{what}: the renewal price does not change, the elasticity does not decide it; it {word} in {obj}")
            continue
        lo_s, hi_s = _num(be.bracket[0], lang), _num(be.bracket[1], lang)
        if lang == "ru":
            head = f"«{sc.title_in(lang)}»: {what}" if not what.startswith("«") else what
            notes[lang] = {
                "always": f"{head} окупается по {obj} при любой эластичности от {lo_s} до {hi_s}",
                "never": f"{head} не окупается по {obj} ни при какой эластичности от {lo_s} до {hi_s}",
            }.get(verdict) or (f"{head} окупается по {obj} за {months} мес., если эластичность "
                               f"{'выше' if verdict == 'above' else 'ниже'} {_num(be.elasticity, lang, 2)} "
                               f"(90 %: {_num(be.low, lang, 2)}–{_num(be.high, lang, 2)})")
        else:
            head = f"“{sc.title_in(lang)}”: {what}" if not what.startswith("“") else what
            notes[lang] = {
                "always": f"{head} pays off in {obj} at every elasticity from {lo_s} to {hi_s}",
                "never": f"{head} does not pay off in {obj} at any elasticity from {lo_s} to {hi_s}",
            }.get(verdict) or (f"{head} pays off in {obj} over {months} months if the elasticity is "
                               f"{verdict} {_num(be.elasticity, lang, 2)} (90 %: {_num(be.low, lang, 2)}–{_num(be.high, lang, 2)})")
    return {
        "scenario": sc.name, "objective": objective, "months": months, "break_even": be.elasticity, "low": be.low,
        "high": be.high, "pays_off_if": verdict, "bracket_low": be.bracket[0], "bracket_high": be.bracket[1],
        "central_elasticity": float(st.behaviour.elasticity), "diff_at_central": central, "runs": be.runs,
        "evaluations": be.evaluations, "note_ru": notes["ru"], "note_en": notes["en"],
    }


def decisions_needed(p0: float, break_even_elasticity: float, central_elasticity: float, price_ratio: float, *,
                     power: float = 0.8, alpha: float = 0.05, arms: int = 2,
                     decisions_per_month: float | None = None) -> dict[str, float]:
    """Renewal decisions a price test needs to tell the break-even elasticity from the central one.

    The test measures the elasticity as ``-(log c1 − log c0) / log r``: ``c1`` the share of
    renewal decisions (decided term ends) that continue at the candidate price, ``c0`` at
    today's, ``r`` = candidate / today's renewal price. Its variance is
    ``((1 − c1)/(n c1) + (1 − c0)/(n c0)) / log(r)²`` (delta method) with ``n`` decisions per
    arm; ``n`` is the smallest giving a two-sided test at ``alpha`` the ``power`` to tell
    the two elasticities apart. ``arms=2``: an A/B or regional test (a control group at
    today's price, ``2 n`` decisions in all); ``arms=1``: today's share ``p0`` is known from
    history (every customer gets the new price), ``n`` decisions. ``p0`` is the continuation
    share at today's price; the shares follow the simulator's ``p0 · r^-e``. With
    ``decisions_per_month`` (decided term ends per month the test can use: the observed
    rate, or a region's share of it) the test's length in months is given too.

    Returns ``decisions`` (in all), ``per_arm``, ``months`` (NaN without a decision rate),
    ``p_central``, ``p_break_even``.

    Examples
    --------
    >>> d = decisions_needed(0.8, 0.6, 1.2, 3000 / 3200)
    >>> round(d["p_central"], 3), round(d["p_break_even"], 3), int(d["per_arm"]), int(d["decisions"])
    (0.864, 0.832, 2130, 4260)
    """
    from scipy.stats import norm

    if not 0 < p0 < 1 or not price_ratio > 0 or price_ratio == 1:
        msg = (f"decisions_needed: p0={p0!r} must be a share in (0, 1) and price_ratio={price_ratio!r} a positive ratio "
               "other than 1 (the candidate price over today's)")
        raise BreakEvenError(msg)
    ok_e = all(isinstance(x, (int, float)) and math.isfinite(x) and x >= 0 for x in (break_even_elasticity, central_elasticity))
    if not (0 < power < 1 and 0 < alpha < 1) or not ok_e or arms not in (1, 2):
        msg = (f"decisions_needed: power={power!r}, alpha={alpha!r} must be in (0, 1), arms={arms!r} 1 or 2, and the "
               f"elasticities ({break_even_elasticity!r}, {central_elasticity!r}) finite numbers >= 0")
        raise BreakEvenError(msg)
    p1 = p0 * price_ratio ** (-central_elasticity)
    p2 = p0 * price_ratio ** (-break_even_elasticity)
    if max(p1, p2) >= 1:
        msg = (f"decisions_needed: at the candidate price every customer would continue (share {max(p1, p2):.3f} >= 1): "
               "the test cannot measure the elasticity there; test a price nearer today's")
        raise BreakEvenError(msg)
    delta = abs(central_elasticity - break_even_elasticity) * abs(math.log(price_ratio))
    var1 = (1 - p1) / p1 + ((1 - p0) / p0 if arms == 2 else 0.0)
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    per_arm = math.ceil(z**2 * var1 / delta**2) if delta > 0 else math.inf
    total = per_arm * arms
    months = total / decisions_per_month if decisions_per_month else math.nan
    return {"decisions": float(total), "per_arm": float(per_arm), "months": float(months), "p_central": p1, "p_break_even": p2}
