"""What each report notebook shows: tables, figures and computed notes, one function per page.

Notebooks stay thin — a parameters cell, one call here, then one cell per chart or table
— so that a product manager in JupyterLab and the scheduled report run the same logic.
Notes that quote numbers are computed here, in Russian or English. A note is Markdown that
a browser will render: every value in it that comes from data or configuration (a feature
name, a scenario name) goes through :func:`subs_model.plots.safe_text` first, so it shows
as text and never as markup. Tables stay raw values (pandas escapes them when it renders
HTML); figure labels are escaped in :mod:`subs_model.plots`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import metrics as M
from . import notes as N
from . import plots as P
from .catalog import Catalog
from .report_cache import read_ledger  # the run's kept ledger in a report kernel, else io.read_ledger
from .replay import Replay, replay
from .money import rub_table
from .vocab import Edition, ForgottenFate, Outcome, categories

__all__ = ["Page", "cohort_overview", "forgotten_by_month", "grace_usage_page", "load", "pricing_whatif_page", "renewal_timing_page", "upgrade_revenue_page"]


@dataclass(frozen=True)
class Page:
    """Figures, tables and notes of one report page."""

    title: str
    figures: dict[str, go.Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    lang: str = "ru"

    def figure(self, name: str) -> go.Figure:
        """The figure ``name`` (displayed when it is a cell's last expression), with the page language's
        number and date formats (:func:`subs_model.chart_formats.localise`)."""
        from .chart_formats import localise

        return localise(self.figures[name], self.lang)

    def table(self, name: str) -> pd.DataFrame:
        """The table ``name``."""
        return self.tables[name]

    def show(self, name: str, max_rows: int = 40) -> Any:
        """The table ``name`` for people: labels in the page's language, ₽ and % formats, no index,
        downloadable as formula-safe XLSX/CSV beside the report (:func:`subs_model.tables.people_table`)."""
        from .tables import auto_cols, people_table

        df = self.tables[name]
        df = df.drop(columns=[c for c in df.columns if str(c).startswith("note_")])  # the notes are shown as text
        for when in ("month", "week"):  # a time series: the latest first, so the rows shown are the recent ones
            if when in df.columns:
                df = df.sort_values(when, ascending=False, kind="stable")
                break
        return people_table(df, auto_cols(df), self.lang, name=name.replace("_", "-"), max_rows=max_rows)

    def headline(self) -> Any:
        """The page's one-paragraph summary as Markdown for a notebook cell."""
        from IPython.display import Markdown

        return Markdown(self.summary)

    def note(self, name: str) -> Any:
        """The note ``name`` as Markdown for a notebook cell."""
        from IPython.display import Markdown

        return Markdown(self.notes[name])


def load(data: str | Path, catalog: str | Path | None = None, as_of: str | None = None) -> Replay:
    """Read the ledger at ``data`` and replay it under ``catalog`` (YAML path; default rules)."""
    cat = Catalog.from_yaml(catalog) if catalog else Catalog.default()
    return replay(read_ledger(data), cat, as_of=as_of or None)


def _window(df: pd.DataFrame, col: str, start: str, end: str, as_of: pd.Timestamp) -> pd.DataFrame:
    lo = pd.Timestamp(start) if start else pd.Timestamp.min
    hi = pd.Timestamp(end) if end else as_of
    return df[(df[col] >= lo) & (df[col] <= hi)]


def _edition(df: pd.DataFrame, edition: str) -> pd.DataFrame:
    if edition in ("", "all"):
        return df
    if edition not in categories(Edition):
        msg = f"edition {edition!r} is not one of 'all', 'full', 'basic'"
        raise ValueError(msg)
    return df[df["edition"].astype("str") == edition]


def _pct(x: float, lang: str = "ru") -> str:
    if x is None or not np.isfinite(x):
        return "—"
    text = f"{x:.1%}"
    return text.replace(".", ",") if lang == "ru" else text


def _pc(x: Any, lang: str) -> str:
    """A share as «58,3 %» / "58.3%"; "—" when there is no denominator."""
    return N.pct(float(x) if x is not None and pd.notna(x) else None, lang)


def _n(x: Any, lang: str) -> str:
    """A count with thousands separators: «4 103» / "4,103"."""
    return N.integer(int(x), lang)


def _signed(text: str) -> str:
    """A formatted change with its sign: «+3 200 ₽», «−12»; zero and "—" as they are."""
    return text if text.startswith(("−", "—", "0")) else f"+{text}"


def _amount(x: float, noun: str, lang: str, digits: int = 1) -> str:
    """A fractional amount and its noun: «3,2 дня», "3.2 days"."""
    return f"{N.number(x, lang, digits)}{N.NBSP}{N.plural(round(x, digits), noun, lang)}"


def _horizon(days: int, lang: str) -> dict[str, str]:
    """The churn horizon for «через 365 дней» / «в течение 365 дней» (genitive) and "after/within 365 days"."""
    return {"horizon": N.count(days, "day", lang), "horizon_g": N.count(days, "day", lang, genitive=True)}


def _day(x: Any, lang: str) -> str:
    """A day as people read it in ``lang`` (:func:`subs_model.notes.date`)."""
    return N.date(x, lang)


TEXT = {
    "ru": {
        "overview": "Обзор когорт",
        "kpi": "На {as_of}: активных лицензий {active} из {licenses}. Продлили к дедлайну {on_time} окончаний "
               "({on_n} из {on_d}, окончания с {on_from} по {on_to}); продолжили в течение {horizon_g} — {cont} "
               "({c_n} из {c_d}, окончания с {c_from} по {c_to}); поступления за 12 месяцев — {bookings}.",
        "active_note": "Активных лицензий на {as_of}: **{active}** ({basic} — Базовая версия). Смотрите на наклон: "
                       "рост означает, что новые лицензии и продления перекрывают уход.",
        "outcomes_note": "Из окончаний с {on_from} по {on_to}, у которых дедлайн уже прошёл (**{on_d}**), продлили к "
                         "дедлайну **{on_time}**, из них в льготный период — **{grace}** всех окончаний. Уход известен "
                         "только через {horizon}: из окончаний с {c_from} по {c_to} (**{c_d}**) ушли **{churn}**. "
                         "Светло-красное — не продлили в срок, дальнейшее ещё неизвестно; серое — дедлайн ещё впереди.",
        "retention_note": "По всем **{licenses}** лицензиям (один Каплан–Мейер, не среднее когорт): через 12 месяцев после "
                          "первой подписки не ушли **{r12}** (наблюдались не меньше 12 мес.: {n12}), через 24 — **{r24}** "
                          "({n24}). Кривая когорты обрывается там, где кончается её наблюдение. Вернувшихся после ухода: "
                          "**{react}** (они остаются в своей когорте).",
        "revenue_note": "За 12 месяцев до {as_of}: поступило **{bookings}** (по дате акта), признано **{recognised}**, "
                        "сгорело оплат забытых продлений **{breakage}** (на следующий день после дедлайна; при апгрейде "
                        "сторнируется и признаётся вместе с ним). Отложенная выручка на {as_of} — **{deferred}**. "
                        "Поступления = признанная + сгоревшая + отложенная, до копейки.",
        "of": "из", "kpi_licenses": "Лицензий всего", "kpi_active": "Активных лицензий на {as_of}",
        "kpi_on_time": "Продлили к дедлайну (окончания с {on_from} по {on_to})",
        "kpi_continued": "Продолжили любым способом в течение {horizon_g} (окончания с {c_from} по {c_to})",
        "kpi_bookings": "Поступления за 12 месяцев до {as_of}",
        "timing": "Когда продлевают",
        "timing_note": "Продолжения окончаний с {frm} по {to}, исход которых известен (**{n}**): медиана **{median}** "
                       "от окончания; из этих продолжений заранее — **{early}**, в льготный период — **{grace}**, позже "
                       "срока — **{late}** (они платят полную цену).",
        "rates_note": "Продлили к дедлайну **{on_time}** окончаний ({on_n} из {on_d}, окончания с {on_from} по {on_to}); "
                      "в льготный период — **{grace}** окончаний; продолжили любым способом в течение {horizon_g} **{cont}** "
                      "({c_n} из {c_d}, окончания с {c_from} по {c_to}). {pop} Пустые точки — месяц, в котором исход "
                      "известен ещё не для всех окончаний.",
        "pop": "Квартал до {to}: к дедлайну **{value}** ({count} из {known}) против **{prior}** ({p_count} из {p_known}) "
               "за те же дни годом раньше.",
        "risks_note": "Кривые показывают, какая доля окончаний к данному дню продолжена продлением, подпиской или "
                      "апгрейдом (Аален–Йохансен, неизвестные исходы цензурированы); синяя полоса — льготный период.",
        "grace": "Льготный период",
        "grace_day_note": "В льготный период продлили **{n}**; в среднем лицензия была без подписки **{mean}**, "
                          "всего дней без подписки в сумме: **{total}**.",
        "features_note": "Новый функционал, вышедший, пока лицензии были без подписки: {features}.",
        "forgotten_note": "Забытых или поздно активированных продлений: **{n}**. Из сгоревших с {frm} по {to} "
                          "(**{decided}**, их исход за {horizon} известен) **{up}** закончились апгрейдом, **{sub}** — "
                          "покупкой подписки, **{churn}** — уходом.",
        "lead_note": "Из сгоревших кодов продления у **{slow}** заявка была подана в срок, но код выдан после дедлайна — "
                     "это потери из-за скорости оформления.",
        "upgrade": "Выручка от апгрейдов",
        "upgrade_note": "За 12 месяцев до {as_of} оплачено **{n}** на **{rev}** (по дате оплаты) — это деньги "
                        "сверх оплаты продления, полученной до сгорания. Из кодов продления, сгоревших с {frm} по {to} "
                        "(окно в {window} закрылось: **{known}**), апгрейдом в течение {window_g} закончились "
                        "**{conv}** ({converted}).",
        "none": "нет",
    },
    "en": {
        "overview": "Cohort overview",
        "kpi": "On {as_of}: {active} of {licenses} licenses active. Renewed by the deadline: {on_time} of expiries "
               "({on_n} of {on_d}, ends from {on_from} to {on_to}); continued within {horizon_g}: {cont} "
               "({c_n} of {c_d}, ends from {c_from} to {c_to}); bookings in the last 12 months: {bookings}.",
        "active_note": "Active licenses on {as_of}: **{active}** ({basic} basic). Watch the slope: growth means new "
                       "licenses and renewals outweigh churn.",
        "outcomes_note": "Of the ends from {on_from} to {on_to} whose deadline has passed (**{on_d}**), **{on_time}** were "
                         "renewed by the deadline, **{grace}** of all of them in the grace window. Churn is known only "
                         "after {horizon}: of the ends from {c_from} to {c_to} (**{c_d}**) **{churn}** churned. "
                         "Light red: not renewed on time, the rest not known yet; grey: the deadline is still ahead.",
        "retention_note": "Over all **{licenses}** licenses (one Kaplan–Meier, not an average of cohorts): 12 months after "
                          "the first subscription **{r12}** had not churned (followed for 12 months or more: {n12}); after "
                          "24 months **{r24}** ({n24}). A cohort's curve stops where its follow-up ends. Customers who "
                          "came back after churning: **{react}** (they stay in their cohort).",
        "revenue_note": "In the 12 months to {as_of}: bookings **{bookings}** (by act date), recognised **{recognised}**, "
                        "breakage of forgotten renewals **{breakage}** (the day after the deadline; reversed and "
                        "recognised with an upgrade if one converts the code). Deferred revenue on {as_of}: "
                        "**{deferred}**. Bookings = recognised + breakage + deferred, to the kopeck.",
        "of": "of", "kpi_licenses": "Licenses in all", "kpi_active": "Active licenses on {as_of}",
        "kpi_on_time": "Renewed by the deadline (ends from {on_from} to {on_to})",
        "kpi_continued": "Continued any way within {horizon_g} (ends from {c_from} to {c_to})",
        "kpi_bookings": "Bookings in the 12 months to {as_of}",
        "timing": "Renewal timing",
        "timing_note": "Continuations of the ends from {frm} to {to} whose fate is known (**{n}**): median **{median}** "
                       "from the end; of these continuations **{early}** came before the end, **{grace}** in the "
                       "grace window, **{late}** after it (paying full price).",
        "rates_note": "Renewed by the deadline: **{on_time}** of expiries ({on_n} of {on_d}, ends from {on_from} to "
                      "{on_to}); in grace: **{grace}** of expiries; continued any way within {horizon_g}: **{cont}** ({c_n} of "
                      "{c_d}, ends from {c_from} to {c_to}). {pop} Hollow points: months not yet decided for every end.",
        "pop": "Quarter to {to}: **{value}** by the deadline ({count} of {known}) against **{prior}** ({p_count} of "
               "{p_known}) over the same days a year before.",
        "risks_note": "The curves show which share of expiries has been followed up by a renewal, a subscription or an "
                      "upgrade by each day (Aalen–Johansen, undecided ends censored); the blue band is the grace window.",
        "grace": "Grace window",
        "grace_day_note": "**{n}** came in the grace window; a license went without coverage for **{mean}** "
                          "on average, **{total}** days without coverage in all.",
        "features_note": "Subscription-only features released while licenses sat uncovered: {features}.",
        "forgotten_note": "Forgotten or late renewals: **{n}**. Of those lapsed from {frm} to {to} (**{decided}**, fate "
                          "over {horizon} known) **{up}** ended in an upgrade, **{sub}** in a subscription, **{churn}** "
                          "in churn.",
        "lead_note": "Of the lapsed renewal codes, **{slow}** had the request placed in time but the code issued after "
                     "the deadline — renewals lost to order handling speed.",
        "upgrade": "Upgrade revenue",
        "upgrade_note": "In the 12 months to {as_of}: **{n}** paid for **{rev}** (by paid date) — money on top "
                        "of the renewal payment received before the lapse. Of the renewal codes lapsed from {frm} to {to} "
                        "(window of {window} closed: **{known}**), **{conv}** were upgraded within {window_g} "
                        "({converted}).",
        "none": "none",
    },
}


def _common(data, catalog, as_of, lang):
    if lang not in TEXT:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    rep = load(data, catalog, as_of)
    return rep, TEXT[lang], rep.as_of, rep.as_of - pd.DateOffset(months=12)


def headline_rates(rep: Replay, outcomes: pd.DataFrame, edition: str, horizon: int) -> dict[str, pd.Series]:
    """The two headline rates of the pages: on time over the last 12 months of ends (those past their
    deadline), continued over the latest 12 months of ends whose horizon has passed."""
    day = rep.as_of
    mature = day - pd.Timedelta(days=horizon)
    return {
        "recent": M.renewal_rates(rep, churn_horizon_days=horizon, edition=edition, outcomes=outcomes,
                                  start=day - pd.DateOffset(months=12) + pd.Timedelta(days=1)).iloc[0],
        "mature": M.renewal_rates(rep, churn_horizon_days=horizon, edition=edition, outcomes=outcomes,
                                  start=mature - pd.DateOffset(months=12) + pd.Timedelta(days=1), end=mature).iloc[0],
    }


def _rate_fields(h: dict[str, pd.Series], lang: str) -> dict[str, Any]:
    r, m = h["recent"], h["mature"]
    return {"on_time": _pc(r["on_time_rate"], lang), "on_n": _n(r["renewed_by_deadline"], lang), "on_d": _n(r["known_at_deadline"], lang),
            "on_from": _day(r["ends_from"], lang), "on_to": _day(r["deadline_known_to"], lang), "grace": _pc(r["grace_share"], lang),
            "cont": _pc(m["continued_rate"], lang), "c_n": _n(m["continued"], lang), "c_d": _n(m["known_at_horizon"], lang),
            "c_from": _day(m["ends_from"], lang), "c_to": _day(m["horizon_known_to"], lang),
            "churn": _pc(1 - m["continued_rate"], lang)}


def forgotten_by_month(rep: Replay, forgotten: pd.DataFrame) -> pd.DataFrame:
    """Lapsed renewal codes by month of the lapse and fate, with the renewal payments they carried.

    ``forgotten``: rows of :func:`subs_model.metrics.forgotten_renewals`. Returns ``month, fate,
    count, at_stake_kop`` — the payment (kopecks, the order's amount) that lapsed with each code,
    whatever became of it later (an upgrade reverses the breakage and recognises it).

    >>> rep = load("data/sample")  # doctest: +SKIP
    >>> forgotten_by_month(rep, M.forgotten_renewals(rep)).columns.tolist()  # doctest: +SKIP
    ['month', 'fate', 'count', 'at_stake_kop']
    """
    from .pricing import parse_kopecks

    o = rep.ledger.orders
    at = pd.Index(o["order_id"]).get_indexer(forgotten["order_id"])
    amount = parse_kopecks(o["amount_rub"]) if "amount_rub" in o.columns else np.full(len(o), -1)
    frame = pd.DataFrame({"month": forgotten["lapsed_on"].dt.to_period("M").dt.to_timestamp(),
                          "fate": forgotten["fate"],
                          "at_stake_kop": np.where(at >= 0, np.maximum(amount[np.maximum(at, 0)], 0), 0)})
    out = frame.groupby(["month", "fate"], observed=True).agg(count=("fate", "size"), at_stake_kop=("at_stake_kop", "sum"))
    return out.reset_index().astype({"count": "int64", "at_stake_kop": "int64"})


def _kpis(t: dict[str, str], day: pd.Timestamp, licenses: int, active: int, rates: dict[str, Any], bookings: str,
          horizon: int, lang: str) -> pd.DataFrame:
    """The overview's headline numbers as a table for people: each metric named with its window in the page's
    language, each value already formatted (counts, shares with their counts, rubles) since the column mixes kinds."""
    of = t["of"]
    metric = [t["kpi_licenses"], t["kpi_active"].format(as_of=N.date(day, lang)),
              t["kpi_on_time"].format(**rates), t["kpi_continued"].format(**rates, **_horizon(horizon, lang)),
              t["kpi_bookings"].format(as_of=N.date(day, lang))]
    value = [_n(licenses, lang), _n(active, lang), f"{rates['on_time']} ({rates['on_n']} {of} {rates['on_d']})",
             f"{rates['cont']} ({rates['c_n']} {of} {rates['c_d']})", bookings]
    return pd.DataFrame({"metric": metric, "value": value})


def cohort_overview(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", start: str = "", end: str = "",
    edition: str = "all", lang: str = "ru", churn_horizon_days: int = 365,
) -> Page:
    """The cohort overview page: active licenses, outcomes, retention, revenue."""
    rep, t, day, year_ago = _common(data, catalog, as_of, lang)
    h = churn_horizon_days
    out_all = M.expiry_outcomes(rep, churn_horizon_days=h)
    out = _edition(out_all, edition)
    active = _edition(M.active_licenses(rep), edition)
    ret = M.cohort_retention(rep, churn_horizon_days=h, outcomes=out_all, edition=edition, period="year",
                             months=tuple(range(61)))
    pooled = M.pooled_retention(rep, churn_horizon_days=h, edition=edition, outcomes=out_all)
    rev = M.revenue(rep, edition=edition)
    now = rep.active_on(day.date().isoformat())
    eds = rep.ledger.licenses.set_index("license_id")["edition"].astype("str")
    now = now[eds.reindex(now.index).isin(categories(Edition) if edition in ("", "all") else [edition]).to_numpy()]
    rates = _rate_fields(headline_rates(rep, out_all, edition, h), lang)
    r12 = rev[rev["month"] > year_ago]
    p = pooled.set_index("months")
    at = {k: (_pc(p.loc[k, "retention"], lang), _n(p.loc[k, "followed"], lang)) if k in p.index else ("—", _n(0, lang)) for k in (12, 24)}
    money = {"bookings": N.rub(r12["bookings_kop"].sum(), lang), "recognised": N.rub(r12["recognised_kop"].sum(), lang),
             "breakage": N.rub(r12["breakage_kop"].sum(), lang),
             "deferred": N.rub(rev.loc[rev["month"] == rev["month"].max(), "deferred_kop"].sum(), lang) if len(rev) else N.rub(0, lang)}
    kpis = _kpis(t, day, len(now), int(now.sum()), rates, money["bookings"], h, lang)
    basic_now = int(now[eds.reindex(now.index).eq("basic").to_numpy()].sum())
    notes = {
        "active": t["active_note"].format(as_of=N.date(day, lang), active=_n(now.sum(), lang), basic=_n(basic_now, lang)),
        "outcomes": t["outcomes_note"].format(**rates, **_horizon(h, lang)),
        "retention": t["retention_note"].format(licenses=_n(pooled["licenses"].iloc[0] if len(pooled) else 0, lang),
                                                r12=at[12][0], n12=at[12][1], r24=at[24][0], n24=at[24][1],
                                                react=_n(ret.drop_duplicates("cohort")["reactivations"].sum() if len(ret) else 0, lang)),
        "revenue": t["revenue_note"].format(as_of=N.date(day, lang), **money),
    }
    summary = t["kpi"].format(as_of=N.date(day, lang), active=_n(now.sum(), lang), licenses=_n(len(now), lang), **_horizon(h, lang),
                              bookings=money["bookings"], **rates)
    return Page(
        lang=lang,
        title=t["overview"],
        figures={
            "active": P.fig_active_licenses(_window(active, "day", start, end, day), lang),
            "outcomes": P.fig_outcomes(M.outcome_counts(_window(out, "end", start, end, day + pd.DateOffset(months=13)), day), lang),
            "retention": P.fig_retention(ret, lang, pooled=pooled),
            "revenue": P.fig_revenue(_window(rev, "month", start, end, day), lang),
        },
        tables={"kpis": kpis, "retention": pooled, "revenue": rub_table(_window(rev, "month", start, end, day))},
        notes=notes,
        summary=summary,
    )


def _pop_text(rep: Replay, outcomes: pd.DataFrame, edition: str, horizon: int, t: dict[str, str], lang: str) -> tuple[str, pd.DataFrame]:
    pop = M.period_over_period(rep, churn_horizon_days=horizon, edition=edition, outcomes=outcomes)
    r = pop.set_index("rate").loc["on_time_rate"]
    text = t["pop"].format(to=_day(r["to"], lang), value=_pc(r["value"], lang), count=_n(r["count"], lang), known=_n(r["known"], lang),
                           prior=_pc(r["prior_value"], lang), p_count=_n(r["prior_count"], lang), p_known=_n(r["prior_known"], lang))
    return text, pop


def renewal_timing_page(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", start: str = "", end: str = "",
    edition: str = "all", lang: str = "ru", churn_horizon_days: int = 365,
) -> Page:
    """When customers renew relative to the end, renewal rates by month, competing follow-ups."""
    rep, t, day, _ = _common(data, catalog, as_of, lang)
    h = churn_horizon_days
    out_all = M.expiry_outcomes(rep, churn_horizon_days=h)
    out = _edition(out_all, edition)
    monthly = M.renewal_rates(rep, by="month", churn_horizon_days=h, edition=edition, start=start, end=end, outcomes=out_all)
    by_ed = M.renewal_rates(rep, by="edition", churn_horizon_days=h, start=start, end=end, outcomes=out_all)
    grace = rep.catalog.version_at(day.date()).grace_days
    # Timing shares over ends whose fate is fully known: late subscriptions arrive up to the horizon.
    mature = day - pd.Timedelta(days=h)
    known = out[(out["end"] <= mature) & (out["end"] > mature - pd.DateOffset(months=12))]
    # The offsets chart reads the same ends as its note: late subscriptions of recent ends have not happened yet.
    timing = M.renewal_timing(rep, outcomes=known, by=("expiry_month",), churn_horizon_days=h)
    cont = known[known["outcome"].isin(M.RENEWED)]
    off = cont["offset_days"].astype("float")
    pop_text, pop = _pop_text(rep, out_all, edition, h, t, lang)
    rates = _rate_fields(headline_rates(rep, out_all, edition, h), lang)
    notes = {
        "timing": t["timing_note"].format(
            frm=_day(known["end"].min(), lang) if len(known) else "—", to=_day(known["end"].max(), lang) if len(known) else "—", n=_n(len(cont), lang),
            median=N.count(int(off.median()), "day", lang) if len(off) else "—", early=_pc((off < 0).mean(), lang) if len(off) else "—",
            grace=_pc(cont["outcome"].isin(M.IN_GRACE).mean(), lang) if len(off) else "—",
            late=_pc(cont["outcome"].eq(Outcome.LATE_SUBSCRIPTION).mean(), lang) if len(off) else "—"),
        "rates": t["rates_note"].format(pop=pop_text, **rates, **_horizon(h, lang)),
        "risks": t["risks_note"],
    }
    return Page(
        lang=lang,
        title=t["timing"],
        figures={
            "timing": P.fig_renewal_timing(timing.offsets, grace, lang),
            "rates": P.fig_renewal_rates(monthly, lang),
            "risks": P.fig_competing_risks(M.expiry_competing_risks(rep, outcomes=out if edition in ("", "all") else None,
                                                                    churn_horizon_days=h), grace, lang),
        },
        tables={"by_edition": by_ed, "by_month": monthly, "period_over_period": pop},
        notes=notes,
        summary=notes["rates"].replace("**", ""),
    )


def grace_usage_page(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", start: str = "", end: str = "",
    edition: str = "all", lang: str = "ru", churn_horizon_days: int = 365,
) -> Page:
    """How the grace window is used, what customers went without, forgotten renewals, slow orders."""
    rep, t, day, _ = _common(data, catalog, as_of, lang)
    h = churn_horizon_days
    out = _window(_edition(M.expiry_outcomes(rep, churn_horizon_days=h), edition), "end", start, end, day)
    g = M.grace_usage(rep, outcomes=out)
    fr = _window(_edition(M.forgotten_renewals(rep, churn_horizon_days=h), edition), "lapsed_on", start, end, day)
    stages, misses = M.lead_times(rep)
    n = int(g.summary["in_grace"].sum())
    total = int(g.summary["uncovered_days"].sum())
    decided = fr[fr["lapsed_on"] + pd.Timedelta(days=h) <= day]  # every fate known: the horizon has passed
    feats = ", ".join(f"{P.safe_text(r.name, markdown=True)} ({r.licenses_uncovered})" for r in g.features.itertuples() if r.licenses_uncovered) or t["none"]
    share = {f: _pc(decided["fate"].eq(f).mean(), lang) if len(decided) else "—" for f in ForgottenFate}
    notes = {
        "grace": t["grace_day_note"].format(n=N.count(n, "time" if lang == "ru" else "renewal", lang),
                                            mean=_amount(total / n, "day", lang) if n else "—", total=_n(total, lang)),
        "features": t["features_note"].format(features=feats),
        "forgotten": t["forgotten_note"].format(
            n=_n(len(fr), lang), decided=_n(len(decided), lang), horizon=N.count(h, "day", lang), frm=_day(decided["lapsed_on"].min(), lang) if len(decided) else "—",
            to=_day(decided["lapsed_on"].max(), lang) if len(decided) else "—", up=share[ForgottenFate.UPGRADED],
            sub=share[ForgottenFate.REPLACED_BY_SUBSCRIPTION], churn=share[ForgottenFate.CHURNED]),
        "lead": t["lead_note"].format(slow=_n((misses["request_in_window"] & misses["code_after_deadline"]).sum(), lang)),
    }
    return Page(
        lang=lang,
        title=t["grace"],
        figures={
            "grace": P.fig_grace_usage(g.by_day, lang),
            "forgotten": P.fig_forgotten_renewals(forgotten_by_month(rep, fr), lang),
            "lead": P.fig_lead_times(stages, lang),
        },
        tables={"summary": g.summary, "features": g.features, "lead_times": stages},
        notes=notes,
        summary=notes["grace"].replace("**", ""),
    )


def upgrade_revenue_page(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", start: str = "", end: str = "",
    edition: str = "all", lang: str = "ru", churn_horizon_days: int = 365, upgrade_window_days: int = 90,
) -> Page:
    """Upgrade payments by paid month, conversions of lapsed renewals by lapse month, and the cash outlook."""
    rep, t, day, year_ago = _common(data, catalog, as_of, lang)
    h, w = churn_horizon_days, upgrade_window_days
    lapsed = M.forgotten_codes(rep, None, h)
    up = M.upgrade_revenue(rep, churn_horizon_days=h, forgotten=lapsed, upgrade_window_days=w, edition=edition,
                           start=start, end=end)
    fr = _edition(lapsed[1], edition)
    last = up[up["month"] > year_ago]
    known_to = M.upgrade_conversion(rep, forgotten=lapsed, upgrade_window_days=w, edition=edition)["known_to"].max()
    frm = known_to - pd.DateOffset(months=12) + pd.Timedelta(days=1) if pd.notna(known_to) else None
    conv = M.upgrade_conversion(rep, forgotten=lapsed, upgrade_window_days=w, edition=edition, start=frm, end=known_to)
    c = conv.iloc[0] if len(conv) else pd.Series({"known": 0, "converted": 0, "conversion_rate": np.nan})
    cal = _edition(M.expiry_calendar(rep, churn_horizon_days=h), edition)
    notes = {
        "upgrade": t["upgrade_note"].format(as_of=N.date(day, lang), n=N.count(int(last["upgrades"].sum()), "upgrade", lang), rev=N.rub(last["upgrade_payments_kop"].sum(), lang),
                                            frm=_day(frm, lang), to=_day(known_to, lang), window=N.count(w, "day", lang),
                                            window_g=N.count(w, "day", lang, genitive=True), known=_n(c["known"], lang),
                                            conv=_pc(c["conversion_rate"], lang), converted=_n(c["converted"], lang)),
    }
    return Page(
        lang=lang,
        title=t["upgrade"],
        figures={
            "upgrades": P.fig_upgrade_revenue(up, lang),
            "fates": P.fig_forgotten_renewals(forgotten_by_month(rep, fr), lang),
            "calendar": P.fig_expiry_calendar(cal, lang),
        },
        tables={"monthly": rub_table(up), "calendar": rub_table(cal), "conversion": conv},
        notes=notes,
        summary=notes["upgrade"].replace("**", ""),
    )


WHATIF_TEXT = {
    "ru": {
        "title": "Ценовой сценарий",
        "summary": "Горизонт {months} мес. с {start}, {runs} прогонов на сценарий. Базовый сценарий: поступления {base} "
                   "(5–95 %: {lo} … {hi}), активных лицензий в конце {active}. Доля продлений в базовом сценарии {rate} "
                   "против наблюдаемой {observed}.",
        "line": "«{name}»: поступления {diff} к базовому ({dlo} … {dhi}), активных лицензий в конце {adiff}, "
                "продлений в льготный период {grace}, апгрейдов {up}.",
        "tornado": "При ценах сценария «{at}» сильнее всего на поступления за горизонт влияет **{knob}**: "
                   "от {low} до {high} к этому сценарию.",
    },
    "en": {
        "title": "Pricing what-if",
        "summary": "Horizon {months} months from {start}, {runs} runs per scenario. Baseline: bookings {base} "
                   "(5–95 %: {lo} … {hi}), {active} active licenses at the end. Baseline renewal rate {rate} vs "
                   "{observed} observed.",
        "line": "“{name}”: bookings {diff} vs baseline ({dlo} … {dhi}), active licenses at the end {adiff}, "
                "grace renewals {grace}, upgrades {up}.",
        "tornado": "At the prices of “{at}”, the knob that moves bookings most is **{knob}**: from {low} to {high} "
                   "vs that scenario.",
    },
}


def pricing_whatif_page(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", scenarios: str = "data/scenarios.yaml",
    grace_days: int = 0, renewal_price: int = 0, upgrade_price: int = 0, horizon_months: int = 36, runs: int = 40,
    sensitivity_runs: int = 20, seed: int = 1, lang: str = "ru", *, ledger: Any = None, start: Any = None,
    executor: Any = None, tornado: pd.DataFrame | None = None,
) -> Page:
    """Scenarios from a file (and one inline scenario from the knobs, if set), bands, tornado, summary.

    The bands are at the central elasticity (the elasticity range is the decision part's,
    :func:`subs_model.whatif_page.pricing_decision_page`). ``ledger`` (read from ``data``),
    ``start`` (a :func:`subs_model.whatif.prepare_start` of it on ``as_of`` over ``horizon_months``)
    and ``executor`` (a process pool) may be given to share them with the decision part:
    :func:`subs_model.whatif_page.pricing_pages` does, the results are the same. ``tornado`` (a
    :func:`subs_model.tornado.sensitivity` table, e.g. the decision part's at a price scenario's
    prices) is described instead of one computed here at today's prices with ``sensitivity_runs``.
    """
    from dataclasses import replace

    from .scenario import inline_scenario, titles
    from .whatif_plots import fig_scenario_diff
    from .whatif import Scenario, load_scenarios, prepare_start, run_scenarios, sensitivity

    if lang not in WHATIF_TEXT:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    t = WHATIF_TEXT[lang]
    cat = Catalog.from_yaml(catalog) if catalog else Catalog.default()
    led = read_ledger(data) if ledger is None else ledger
    day = as_of or (start.as_of if start is not None else replay(led, cat).as_of).date().isoformat()
    scs = load_scenarios(scenarios) if scenarios else [Scenario("baseline")]
    inline = inline_scenario(grace_days, renewal_price, upgrade_price, categories(Edition))
    if inline is not None:
        scs.append(inline)
    st = start if start is not None else prepare_start(led, day, horizon_months, catalog=cat)
    # Only the central elasticity: the table, bands and notes of this part read nothing else.
    res = run_scenarios(led, scs, day, horizon_months=horizon_months, runs=runs, seed=seed, catalog=cat, executor=executor,
                        start=replace(st, grid=(float(st.behaviour.elasticity),)))
    sens = tornado if tornado is not None else sensitivity(led, day, runs=sensitivity_runs, horizon_months=horizon_months,
                                                           seed=seed, catalog=cat, executor=executor, start=st, lang=lang)
    s = res.summary
    names = titles(res.scenarios, lang)  # what a person reads: the title in the report's language, never the key
    b = s.iloc[0]
    lines = [t["summary"].format(months=horizon_months, start=N.date(res.as_of + pd.Timedelta(days=1), lang), runs=_n(runs, lang),
                                 base=N.rub(b["bookings_mean"], lang), lo=N.rub(b["bookings_p05"], lang),
                                 hi=N.rub(b["bookings_p95"], lang), active=N.integer(round(b["active_mean"]), lang),
                                 rate=_pc(b["renewal_rate_mean"], lang), observed=_pc(res.observed_renewal_rate, lang))]
    for _, r in s.iloc[1:].iterrows():
        lines.append(t["line"].format(name=P.safe_text(names[r["scenario"]], markdown=True), diff=_signed(N.rub(r["bookings_diff_mean"], lang)),
                                      dlo=_signed(N.rub(r["bookings_diff_p05"], lang)), dhi=_signed(N.rub(r["bookings_diff_p95"], lang)),
                                      adiff=_signed(N.number(r["active_diff_mean"], lang)),
                                      grace=_signed(N.number(r["grace_renewal_diff_mean"], lang)),
                                      up=_signed(N.number(r["upgrade_diff_mean"], lang))))
    from .tornado import KNOB_LABELS

    if len(sens):  # the knobs by their names in the report's language
        sens = sens.assign(knob=sens["knob_id"].map(KNOB_LABELS[lang]).fillna(sens["knob"]))
    top = sens.assign(a=sens["bookings_diff_pct"].abs()).sort_values("a").iloc[-1]["knob"] if len(sens) else None
    if top is not None:
        ks = sens[sens["knob"] == top]
        lines.append(t["tornado"].format(at=P.safe_text(names.get(ks["scenario"].iloc[0], str(ks["scenario"].iloc[0])), markdown=True),
                                         knob=P.safe_text(top, markdown=True), low=N.signed_pct(ks["bookings_diff_pct"].min(), lang), high=N.signed_pct(ks["bookings_diff_pct"].max(), lang)))
    table = s[["scenario", "description", "bookings_mean", "bookings_diff_mean", "active_mean", "renewal_rate_mean",
               "grace_renewal_mean", "upgrade_mean", "lapsed_mean"]].copy()
    for c in ("bookings", "bookings_diff"):  # each band in one cell «from … to», so the table fits the page
        table[f"{c}_mean"] = [N.rub(v, lang) for v in s[f"{c}_mean"]]
        table.insert(table.columns.get_loc(f"{c}_mean") + 1, f"{c}_band",
                     [f"{N.rub(lo, lang)} … {N.rub(hi, lang)}" for lo, hi in zip(s[f"{c}_p05"], s[f"{c}_p95"], strict=True)])
    described = {sc.name: sc.description_in(lang) for sc in res.scenarios}
    table["description"] = table["scenario"].map(described)
    table["scenario"] = table["scenario"].map(names)
    return Page(
        lang=lang,
        title=t["title"],
        figures={"bookings": fig_scenario_diff(res.table, "bookings", lang, names),
                 "active": fig_scenario_diff(res.table, "active", lang, names),
                 "tornado": P.fig_tornado(sens, lang)},
        tables={"scenarios": table, "sensitivity": sens},
        notes={"summary": "\n\n".join(lines)},
        summary=lines[0],
    )
