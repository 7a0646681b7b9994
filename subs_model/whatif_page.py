"""The pricing-decision part of report 05: what the elasticity is, the fan, the break-even, the test.

:func:`pricing_decision_page` runs the scenarios over the elasticity range, finds each
price scenario's break-even elasticity, draws the tornado at the prices of the first price
scenario, and sizes the price test that would tell the break-even from the central
elasticity. It returns a :class:`subs_model.insights.Page` (figures, tables, Markdown notes).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["pricing_decision_page", "pricing_pages"]

TEXT = {
    "ru": {
        "title": "Ценовое решение",
        "measured": "Эластичность по цене продления **{e}** измерена по данным: {statement}. Диапазон {lo}–{hi}.",
        "prior": "Эластичность по цене продления **{e}** — априорное предположение, не измерение: {statement}. "
                 "Поэтому каждый ценовой сценарий показан во всём диапазоне {lo}–{hi}.",
        "test": "Чтобы отличить эластичность безубыточности {be} от центральной {e} для «{name}» (цена продления {price}) "
                "с мощностью 80 %, нужно **{n}** решений о продлении в A/B- или региональном тесте (по {per_arm} в группе), "
                "то есть около **{months}** мес. при наблюдаемых {rate} окончаниях подписки в месяц; если новая цена "
                "вводится для всех, а контролем служит история — {n1} решений.",
        "no_test": "Для «{name}» тест не нужен: безубыточность вне диапазона эластичности ({verdict}).",
        "always": "окупается при любой эластичности диапазона", "never": "не окупается ни при какой эластичности диапазона",
        "no_price": "Ни один сценарий не меняет цену продления: эластичность решения не меняет.",
    },
    "en": {
        "title": "Pricing decision",
        "measured": "The renewal-price elasticity **{e}** is measured from the data: {statement}. Range {lo}–{hi}.",
        "prior": "The renewal-price elasticity **{e}** is an assumption (prior), not a measurement: {statement}. "
                 "So every price scenario is shown over the whole range {lo}–{hi}.",
        "test": "To tell the break-even elasticity {be} from the central {e} for “{name}” (renewal at {price}) with 80 % "
                "power takes **{n}** renewal decisions in an A/B or regional test ({per_arm} per group): about **{months}** "
                "months at the observed {rate} term ends a month; with the new price for everyone and history as the "
                "control, {n1} decisions.",
        "no_test": "“{name}” needs no test: its break-even lies outside the elasticity range ({verdict}).",
        "always": "it pays off at every elasticity of the range", "never": "it pays off at no elasticity of the range",
        "no_price": "No scenario changes the renewal price: the elasticity does not change the decision.",
    },
}


def _num(x: float, lang: str, digits: int = 2) -> str:
    s = f"{x:,.{digits}f}"
    return s.replace(",", "\u202f").replace(".", ",") if lang == "ru" else s


def pricing_decision_page(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", scenarios: str = "data/scenarios.yaml",
    horizon_months: int = 36, runs: int = 20, break_even_runs: int = 10, objective: str = "bookings", seed: int = 1,
    lang: str = "ru", executor: Any = None, *, ledger: Any = None, start: Any = None, replayed: Any = None,
) -> Any:
    """Fan over the elasticity range, break-even per price scenario, tornado at its prices, test size.

    Figures ``fan``, ``tornado``; tables ``break_even``, ``by_elasticity``, ``test_design``;
    notes ``elasticity``, ``break_even``, ``test_design`` (Markdown, in ``lang``). All runs go
    to ``executor`` (default: one pool of local processes for the whole page). ``ledger`` (read
    from ``data``), ``replayed`` (its replay to ``as_of``) and ``start`` (its
    :func:`subs_model.whatif.prepare_start` on that day over ``horizon_months``) may be given
    to share them with the scenario part (:func:`pricing_pages`); the results are the same.
    """
    from concurrent.futures import ProcessPoolExecutor

    from .workers import workers

    if executor is None:
        with ProcessPoolExecutor(max_workers=workers()) as pool:
            return pricing_decision_page(data, catalog, as_of, scenarios, horizon_months, runs, break_even_runs, objective,
                                         seed, lang, pool, ledger=ledger, start=start, replayed=replayed)
    from . import plots
    from .breakeven import break_even, decisions_needed
    from .catalog import Catalog
    from .elasticity import estimate_elasticity
    from .insights import Page
    from .report_cache import read_ledger
    from .replay import replay
    from .tornado import sensitivity
    from .scenario import titles
    from .whatif import depends_on_elasticity, load_scenarios, prepare_start, run_scenarios
    from .whatif_plots import fig_elasticity_fan

    if lang not in TEXT:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    t = TEXT[lang]
    cat = Catalog.from_yaml(catalog) if catalog else Catalog.default()
    led = read_ledger(data) if ledger is None else ledger
    rep = replay(led, cat, as_of=as_of or None) if replayed is None else replayed
    day = as_of or rep.as_of.date().isoformat()
    scs = load_scenarios(scenarios)
    st = prepare_start(led, day, horizon_months, catalog=cat) if start is None else start
    res = run_scenarios(led, scs, day, horizon_months=horizon_months, runs=runs, seed=seed, catalog=cat, executor=executor, start=st)
    beh = res.behaviour
    start = pd.Timestamp(day) + pd.Timedelta(days=1)
    priced = [sc for sc in scs[1:] if depends_on_elasticity(sc.catalog_for(cat, start), cat, int(start.value // 86_400_000_000_000))]
    be = break_even(led, [scs[0], *priced], day, objective=objective, horizon_months=horizon_months, runs=break_even_runs,
                    seed=seed, catalog=cat, executor=executor, start=st) if priced else pd.DataFrame()
    est = estimate_elasticity(led, cat, day)
    lo, hi = beh.elasticity_range
    kind = "measured" if beh.elasticity_source != "prior" else "prior"
    notes = {"elasticity": t[kind].format(e=_num(beh.elasticity, lang), statement=plots.safe_text(est.statement_in(lang), markdown=True),
                                          lo=_num(lo, lang), hi=_num(hi, lang))}
    notes["break_even"] = "\n\n".join(plots.safe_text(n, markdown=True) for n in be[f"note_{lang}"]) if len(be) else t["no_price"]
    tornado = sensitivity(led, day, runs=break_even_runs, horizon_months=horizon_months, seed=seed, catalog=cat,
                          at=priced[0] if priced else None, lang=lang, executor=executor,
                          start=replace(st, grid=(0.5, st.behaviour.elasticity, 2.0)))
    design, lines = _test_design(rep, beh, cat, day, priced, be, lang, decisions_needed)
    notes["test_design"] = "\n\n".join(lines) if lines else t["no_price"]
    # What a person reads: each scenario's title in the report's language (the name stays the key of the results).
    names = titles(res.scenarios, lang)
    shown_be = be.assign(scenario=be["scenario"].map(names)) if len(be) else be
    by_e = res.by_elasticity.assign(scenario=res.by_elasticity["scenario"].map(names))
    return Page(
        lang=lang,
        title=t["title"],
        figures={"fan": fig_elasticity_fan(by_e, objective, lang, break_even=shown_be if len(be) else None,
                                           central=beh.elasticity),
                 "tornado": plots.fig_tornado(tornado, lang)},
        tables={"break_even": shown_be[["scenario", "pays_off_if", "break_even", "low", "high", f"note_{lang}"]] if len(be) else be,
                "by_elasticity": by_e[["scenario", "elasticity", f"{objective}_diff_mean", f"{objective}_diff_p05",
                                       f"{objective}_diff_p95"]],
                "test_design": design, "tornado": tornado},
        notes=notes,
        summary=notes["elasticity"],
    )


def pricing_pages(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", scenarios: str = "data/scenarios.yaml",
    grace_days: int = 0, renewal_price: int = 0, upgrade_price: int = 0, horizon_months: int = 36, runs: int = 40,
    elasticity_runs: int = 10, break_even_runs: int = 6, objective: str = "bookings", seed: int = 1, lang: str = "ru",
) -> tuple[Any, Any]:
    """Both parts of report 05 — the scenarios (:func:`subs_model.insights.pricing_whatif_page`,
    ``runs`` per scenario at the central elasticity) and the decision (:func:`pricing_decision_page`,
    ``elasticity_runs`` per scenario and elasticity, ``break_even_runs`` per break-even step) —
    from one read of the ledger, one replay, one calibrated start and one pool of processes.

    The same figures, tables and notes as the two functions called one after the other.

    Examples
    --------
    >>> page, decision = pricing_pages("data/sample", "data/catalog.yaml", runs=40)  # doctest: +SKIP
    >>> decision.note("break_even")  # doctest: +SKIP
    """
    from concurrent.futures import ProcessPoolExecutor

    from .catalog import Catalog
    from .insights import pricing_whatif_page
    from .report_cache import read_ledger
    from .replay import replay
    from .whatif import prepare_start
    from .workers import workers

    if lang not in TEXT:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    cat = Catalog.from_yaml(catalog) if catalog else Catalog.default()
    led = read_ledger(data)
    rep = replay(led, cat, as_of=as_of or None)
    day = as_of or rep.as_of.date().isoformat()
    st = prepare_start(led, day, horizon_months, catalog=cat)
    with ProcessPoolExecutor(max_workers=workers()) as pool:
        decision = pricing_decision_page(data, catalog, as_of, scenarios, horizon_months, elasticity_runs, break_even_runs,
                                         objective, seed, lang, pool, ledger=led, start=st, replayed=rep)
        # The scenario part describes the decision part's tornado (at the price scenario's prices),
        # not one of its own at today's prices, where the elasticity has no effect.
        page = pricing_whatif_page(data, catalog, day, scenarios, grace_days, renewal_price, upgrade_price, horizon_months,
                                   runs, seed=seed, lang=lang, ledger=led, start=st, executor=pool,
                                   tornado=decision.tables["tornado"])
    return page, decision


def _test_design(rep: Any, beh: Any, cat: Any, day: str, priced: list[Any], be: pd.DataFrame, lang: str,
                 decisions_needed: Any) -> tuple[pd.DataFrame, list[str]]:
    """Per price scenario with a break-even in the range: decisions and months of a price test."""
    t = TEXT[lang]
    as_of = pd.Timestamp(day)
    ends = rep.periods["end"]
    rate = float(((ends > as_of - pd.Timedelta(days=365)) & (ends <= as_of)).sum()) / 12.0  # term ends a month, last year
    today = cat.version_at(as_of.date())
    ref = beh.reference_prices["renewal"] * 100
    share_basic = beh.share_basic
    p0 = float(np.average([beh.p_continue[ed] * (today.price("renewal", ed) / ref) ** (-beh.elasticity) for ed in ("full", "basic")],
                          weights=[1 - share_basic, share_basic]))
    rows, lines = [], []
    for sc, row in zip(priced, be.itertuples(), strict=False):
        new = sc.catalog_for(cat, as_of + pd.Timedelta(days=1)).version_at((as_of + pd.Timedelta(days=2)).date()).price("renewal", "full")
        if not isinstance(row.break_even, float) or math.isnan(row.break_even):
            lines.append(t["no_test"].format(name=_safe(sc.title_in(lang)), verdict=t.get(row.pays_off_if, row.pays_off_if)))
            continue
        ratio = new / today.price("renewal", "full")
        two = decisions_needed(min(p0, 0.999), row.break_even, beh.elasticity, ratio, decisions_per_month=rate or None)
        one = decisions_needed(min(p0, 0.999), row.break_even, beh.elasticity, ratio, arms=1)
        rows.append({"scenario": sc.title_in(lang), "renewal_price_rub": new / 100, "break_even": row.break_even,
                     "central_elasticity": beh.elasticity, "decisions_ab": two["decisions"], "per_group": two["per_arm"],
                     "months_at_observed_rate": two["months"], "decisions_all_customers": one["decisions"],
                     "term_ends_per_month": rate})
        lines.append(t["test"].format(be=_num(row.break_even, lang), e=_num(beh.elasticity, lang), name=_safe(sc.title_in(lang)),
                                      price=_rub(new), n=_num(two["decisions"], lang, 0), per_arm=_num(two["per_arm"], lang, 0),
                                      months=_num(two["months"], lang, 1) if rate else "—", rate=_num(rate, lang, 0),
                                      n1=_num(one["decisions"], lang, 0)))
    return pd.DataFrame(rows), lines


def _safe(text: str) -> str:
    from .plots import safe_text

    return safe_text(text, markdown=True)


def _rub(kopecks: int) -> str:
    from .plots import rub

    return rub(kopecks)
