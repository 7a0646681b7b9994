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
from . import plots as P
from .catalog import Catalog
from .io import read_ledger
from .replay import Replay, replay
from .vocab import Edition, categories

__all__ = ["Page", "cohort_overview", "grace_usage_page", "load", "pricing_whatif_page", "renewal_timing_page", "upgrade_revenue_page"]


@dataclass(frozen=True)
class Page:
    """Figures, tables and notes of one report page."""

    title: str
    figures: dict[str, go.Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    summary: str = ""

    def figure(self, name: str) -> go.Figure:
        """The figure ``name`` (displayed when it is a cell's last expression)."""
        return self.figures[name]

    def table(self, name: str) -> pd.DataFrame:
        """The table ``name``."""
        return self.tables[name]

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


TEXT = {
    "ru": {
        "overview": "Обзор когорт",
        "kpi": "На {as_of}: активных лицензий {active} из {licenses}; из окончаний подписки с {frm} по {to} (их исход "
               "уже известен) продлено {rate}; поступления за 12 месяцев — {bookings}.",
        "active_note": "Активных лицензий на {as_of}: **{active}** ({basic} — Базовая версия). Смотрите на наклон: "
                       "рост означает, что новые лицензии и продления перекрывают уход.",
        "outcomes_note": "Из окончаний с {frm} по {to} **{churn}** закончились уходом, **{grace}** — продлением в "
                         "льготный период. Серые столбцы — окончания, исход которых ещё неизвестен.",
        "retention_note": "Через 12 месяцев после первой подписки не ушли **{r12}** лицензий (Каплан–Мейер, все когорты), "
                          "через 24 — **{r24}**. Вернувшиеся после ухода остаются в своей когорте: таких **{react}**.",
        "revenue_note": "За 12 месяцев до {as_of} поступило **{bookings}**, признано **{recognised}**; отложенная выручка "
                        "на конец периода — **{deferred}**.",
        "timing": "Когда продлевают",
        "timing_note": "Медиана: **{median}** дн. от окончания. Заранее продлевают **{early}** продолжающих, в льготный "
                       "период — **{grace}**, позже срока — **{late}** (они платят полную цену).",
        "rates_note": "Доля продлений за последние 12 завершённых месяцев — **{rate}**, в льготный период — **{grace}**. "
                      "Показаны только месяцы, в которых исход всех окончаний уже известен (уход признаётся через "
                      "{horizon} дн.).",
        "risks_note": "Кривые показывают, какая доля окончаний к данному дню продолжена продлением, подпиской или "
                      "апгрейдом; синяя полоса — льготный период.",
        "grace": "Льготный период",
        "grace_day_note": "В льготный период продлили **{n}** раз; в среднем лицензия была без подписки **{mean}** дн., "
                          "всего **{total}** лицензие-дней.",
        "features_note": "Новый функционал, вышедший, пока лицензии были без подписки: {features}.",
        "forgotten_note": "Забытых или поздно активированных продлений: **{n}**; из решённых **{up}** закончились "
                          "апгрейдом, **{sub}** — покупкой подписки, **{churn}** — уходом.",
        "lead_note": "Из сгоревших кодов продления у **{slow}** заявка была подана в срок, но код выдан после дедлайна — "
                     "это потери из-за скорости оформления.",
        "upgrade": "Выручка от апгрейдов",
        "upgrade_note": "За 12 месяцев до {as_of}: **{n}** апгрейдов на **{rev}**; конверсия сгоревших продлений — "
                        "**{conv}**. Сохранено **{kept}** (продление + апгрейд) по клиентам, которые иначе ушли бы.",
        "none": "нет",
    },
    "en": {
        "overview": "Cohort overview",
        "kpi": "On {as_of}: {active} of {licenses} licenses active; of the expiries from {frm} to {to} (all decided) "
               "{rate} were renewed; bookings in the last 12 months: {bookings}.",
        "active_note": "Active licenses on {as_of}: **{active}** ({basic} basic). Watch the slope: growth means new "
                       "licenses and renewals outweigh churn.",
        "outcomes_note": "Of the expiries from {frm} to {to}, **{churn}** churned and **{grace}** renewed in the grace "
                         "window. Grey bars are expiries whose fate is not known yet.",
        "retention_note": "12 months after the first subscription **{r12}** of licenses had not churned (Kaplan–Meier, "
                          "all cohorts); after 24 months **{r24}**. Customers who came back stay in their cohort: **{react}**.",
        "revenue_note": "In the 12 months to {as_of}: bookings **{bookings}**, recognised **{recognised}**; deferred "
                        "revenue at the end: **{deferred}**.",
        "timing": "Renewal timing",
        "timing_note": "Median: **{median}** days from the end. **{early}** of continuing customers act before the end, "
                       "**{grace}** in the grace window, **{late}** after it (paying full price).",
        "rates_note": "Renewal rate over the last 12 complete months: **{rate}**, in grace: **{grace}**. Only months "
                      "whose expiries are all decided are shown (churn is counted after {horizon} days).",
        "risks_note": "The curves show which share of expiries has been followed up by a renewal, a subscription or an "
                      "upgrade by each day; the blue band is the grace window.",
        "grace": "Grace window",
        "grace_day_note": "**{n}** renewals came in the grace window; a license went without coverage for **{mean}** "
                          "days on average, **{total}** license-days in all.",
        "features_note": "Subscription-only features released while licenses sat uncovered: {features}.",
        "forgotten_note": "Forgotten or late renewals: **{n}**; of the decided ones **{up}** ended in an upgrade, **{sub}** "
                          "in a subscription, **{churn}** in churn.",
        "lead_note": "Of the lapsed renewal codes, **{slow}** had the request placed in time but the code issued after "
                     "the deadline — renewals lost to order handling speed.",
        "upgrade": "Upgrade revenue",
        "upgrade_note": "In the 12 months to {as_of}: **{n}** upgrades for **{rev}**; conversion of lapsed renewals "
                        "**{conv}**. Kept **{kept}** (renewal + upgrade) from customers who would otherwise have left.",
        "none": "none",
    },
}


def _common(data, catalog, as_of, lang):
    if lang not in TEXT:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    rep = load(data, catalog, as_of)
    return rep, TEXT[lang], rep.as_of, rep.as_of - pd.DateOffset(months=12)


def cohort_overview(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", start: str = "", end: str = "",
    edition: str = "all", lang: str = "ru", churn_horizon_days: int = 365,
) -> Page:
    """The cohort overview page: active licenses, outcomes, retention, revenue."""
    rep, t, day, year_ago = _common(data, catalog, as_of, lang)
    out = _edition(M.expiry_outcomes(rep, churn_horizon_days=churn_horizon_days), edition)
    active = _edition(M.active_licenses(rep), edition)
    ret = M.cohort_retention(rep, churn_horizon_days=churn_horizon_days, outcomes=M.expiry_outcomes(rep, churn_horizon_days=churn_horizon_days))
    rev = _edition(M.revenue(rep), edition)
    now = rep.active_on(day.date().isoformat())
    eds = rep.ledger.licenses.set_index("license_id")["edition"].astype("str")
    now = now[eds.reindex(now.index).isin(categories(Edition) if edition in ("", "all") else [edition]).to_numpy()]
    # The latest year of expiries whose fate is known for all: ends before as_of - horizon.
    to = day - pd.Timedelta(days=churn_horizon_days)
    frm = to - pd.DateOffset(years=1)
    last = out[(out["end"] > frm) & (out["end"] <= to)]
    rate = M._rates(last.assign(k=1), ["k"]) if len(last) else None
    r12 = rev[rev["month"] > year_ago]
    kpis = pd.DataFrame(
        {
            "metric": ["licenses", "active", "renewal_rate_12m", "bookings_12m"],
            "value": [len(now), int(now.sum()), _pct(rate["renewal_rate"].iloc[0], lang) if rate is not None else "—",
                      P.rub(r12["bookings"].sum())],
        }
    )
    cnt = M.outcome_counts(_window(out, "end", start, end, day + pd.DateOffset(months=13)))
    fig_ret = P.fig_retention(ret, lang)
    km = ret.assign(w=ret["cohort_size"] * ret["km_retention"]).groupby("months")[["w", "cohort_size"]].sum()
    kmv = (km["w"] / km["cohort_size"]).to_dict() if len(km) else {}
    basic_now = int(now[eds.reindex(now.index).eq("basic").to_numpy()].sum())
    notes = {
        "active": t["active_note"].format(as_of=day.date(), active=int(now.sum()), basic=basic_now),
        "outcomes": t["outcomes_note"].format(
            frm=frm.date(), to=to.date(),
            churn=_pct(last["outcome"].eq("churned").mean(), lang) if len(last) else "—",
            grace=_pct(last["outcome"].isin(M.IN_GRACE).mean(), lang) if len(last) else "—"),
        "retention": t["retention_note"].format(r12=_pct(kmv.get(12, np.nan), lang), r24=_pct(kmv.get(24, np.nan), lang),
                                                react=int(ret.drop_duplicates("cohort")["reactivations"].sum()) if len(ret) else 0),
        "revenue": t["revenue_note"].format(as_of=day.date(), bookings=P.rub(r12["bookings"].sum()),
                                            recognised=P.rub(r12["recognised"].sum()),
                                            deferred=P.rub(rev.loc[rev["month"] == rev["month"].max(), "deferred"].sum()) if len(rev) else P.rub(0)),
    }
    summary = t["kpi"].format(as_of=day.date(), active=int(now.sum()), licenses=len(now), frm=frm.date(), to=to.date(),
                              rate=kpis["value"].iloc[2], bookings=kpis["value"].iloc[3])
    return Page(
        title=t["overview"],
        figures={
            "active": P.fig_active_licenses(_window(active, "day", start, end, day), lang),
            "outcomes": P.fig_outcomes(cnt, lang),
            "retention": fig_ret,
            "revenue": P.fig_revenue(_window(rev, "month", start, end, day), lang),
        },
        tables={"kpis": kpis, "retention": ret},
        notes=notes,
        summary=summary,
    )


def renewal_timing_page(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", start: str = "", end: str = "",
    edition: str = "all", lang: str = "ru", churn_horizon_days: int = 365,
) -> Page:
    """When customers renew relative to the end, renewal rates by month, competing follow-ups."""
    rep, t, day, year_ago = _common(data, catalog, as_of, lang)
    out = _edition(M.expiry_outcomes(rep, churn_horizon_days=churn_horizon_days), edition)
    timing = M.renewal_timing(rep, outcomes=out, by=("expiry_month",))
    by_ed = M.renewal_timing(rep, outcomes=out, by=("edition",)).rates
    # Only months whose expiries are all decided: an undecided month's rate is biased upwards
    # (its churn cannot be counted yet).
    rates = _window(timing.rates[timing.rates["complete"]], "expiry_month", start, end, day)
    grace = rep.catalog.version_at(day.date()).grace_days
    cont = out[out["outcome"].isin(M.RENEWED)]
    off = cont["offset_days"].astype("float")
    complete12 = timing.rates[(timing.rates["expiry_month"] > year_ago - pd.DateOffset(months=12)) & timing.rates["complete"]].tail(12)
    dec = complete12["decided"].sum()
    notes = {
        "timing": t["timing_note"].format(
            median=int(off.median()) if len(off) else "—", early=_pct((off < 0).mean(), lang) if len(off) else "—",
            grace=_pct(cont["outcome"].isin(M.IN_GRACE).mean(), lang) if len(off) else "—",
            late=_pct(cont["outcome"].eq("late_subscription").mean(), lang) if len(off) else "—"),
        "rates": t["rates_note"].format(horizon=churn_horizon_days, rate=_pct(complete12["renewed"].sum() / dec, lang) if dec else "—",
                                        grace=_pct(complete12["in_grace"].sum() / dec, lang) if dec else "—"),
        "risks": t["risks_note"],
    }
    return Page(
        title=t["timing"],
        figures={
            "timing": P.fig_renewal_timing(timing.offsets, grace, lang),
            "rates": P.fig_renewal_rates(rates, lang),
            "risks": P.fig_competing_risks(M.expiry_competing_risks(rep, outcomes=out if edition in ("", "all") else None,
                                                                    churn_horizon_days=churn_horizon_days), grace, lang),
        },
        tables={"by_edition": by_ed, "by_month": rates},
        notes=notes,
        summary=notes["timing"].replace("**", ""),
    )


def grace_usage_page(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", start: str = "", end: str = "",
    edition: str = "all", lang: str = "ru", churn_horizon_days: int = 365,
) -> Page:
    """How the grace window is used, what customers went without, forgotten renewals, slow orders."""
    rep, t, day, _ = _common(data, catalog, as_of, lang)
    out = _edition(M.expiry_outcomes(rep, churn_horizon_days=churn_horizon_days), edition)
    out = _window(out, "end", start, end, day)
    g = M.grace_usage(rep, outcomes=out)
    fr = _edition(M.forgotten_renewals(rep, churn_horizon_days=churn_horizon_days), edition)
    fr = _window(fr, "lapsed_on", start, end, day)
    stages, misses = M.lead_times(rep)
    n = int(g.summary["in_grace"].sum())
    total = int(g.summary["uncovered_days"].sum())
    decided = fr[fr["fate"].ne("open")]
    feats = ", ".join(f"{P.safe_text(r.name, markdown=True)} ({r.licenses_uncovered})" for r in g.features.itertuples() if r.licenses_uncovered) or t["none"]
    notes = {
        "grace": t["grace_day_note"].format(n=n, mean=f"{total / n:.1f}".replace(".", ",") if n else "—", total=total),
        "features": t["features_note"].format(features=feats),
        "forgotten": t["forgotten_note"].format(
            n=len(fr), up=_pct(decided["fate"].eq("upgraded").mean(), lang) if len(decided) else "—",
            sub=_pct(decided["fate"].eq("replaced_by_subscription").mean(), lang) if len(decided) else "—",
            churn=_pct(decided["fate"].eq("churned").mean(), lang) if len(decided) else "—"),
        "lead": t["lead_note"].format(slow=int((misses["request_in_window"] & misses["code_after_deadline"]).sum())),
    }
    return Page(
        title=t["grace"],
        figures={
            "grace": P.fig_grace_usage(g.by_day, lang),
            "forgotten": P.fig_forgotten_renewals(M.forgotten_summary(fr), lang),
            "lead": P.fig_lead_times(stages, lang),
        },
        tables={"summary": g.summary, "features": g.features, "lead_times": stages},
        notes=notes,
        summary=notes["grace"].replace("**", ""),
    )


def upgrade_revenue_page(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", start: str = "", end: str = "",
    edition: str = "all", lang: str = "ru", churn_horizon_days: int = 365,
) -> Page:
    """How much the upgrade brings, how many lapsed renewals it converts, and the cash outlook."""
    rep, t, day, year_ago = _common(data, catalog, as_of, lang)
    lapsed = M._forgotten(rep, None, churn_horizon_days)
    up = _window(M.upgrade_revenue(rep, churn_horizon_days=churn_horizon_days, forgotten=lapsed), "month", start, end, day)
    fr = _edition(lapsed[1], edition)
    last = up[up["month"] > year_ago]
    dec = last["decided"].sum()
    cal = _edition(M.expiry_calendar(rep, churn_horizon_days=churn_horizon_days), edition)
    notes = {
        "upgrade": t["upgrade_note"].format(as_of=day.date(), n=int(last["upgrades"].sum()), rev=P.rub(last["upgrade_revenue"].sum()),
                                            conv=_pct(last["converted"].sum() / dec, lang) if dec else "—",
                                            kept=P.rub(last["revenue_kept"].sum())),
    }
    return Page(
        title=t["upgrade"],
        figures={
            "upgrades": P.fig_upgrade_revenue(up, lang),
            "fates": P.fig_forgotten_renewals(M.forgotten_summary(fr), lang),
            "calendar": P.fig_expiry_calendar(cal, lang),
        },
        tables={"monthly": up, "calendar": cal},
        notes=notes,
        summary=notes["upgrade"].replace("**", ""),
    )


WHATIF_TEXT = {
    "ru": {
        "title": "Ценовой сценарий",
        "summary": "Горизонт {months} мес. с {start}, {runs} прогонов на сценарий. Базовый сценарий: поступления {base} "
                   "(5–95 %: {lo} … {hi}), активных лицензий в конце {active}. Доля продлений в базовом сценарии {rate} "
                   "против наблюдаемой {observed}.",
        "line": "«{name}»: поступления {diff} к базовому ({dlo} … {dhi}), активных лицензий в конце {adiff:+.0f}, "
                "продлений в льготный период {grace:+.0f}, апгрейдов {up:+.0f}.",
        "tornado": "Сильнее всего на поступления за горизонт влияет **{knob}**: от {low} до {high} к базовому.",
    },
    "en": {
        "title": "Pricing what-if",
        "summary": "Horizon {months} months from {start}, {runs} runs per scenario. Baseline: bookings {base} "
                   "(5–95 %: {lo} … {hi}), {active} active licenses at the end. Baseline renewal rate {rate} vs "
                   "{observed} observed.",
        "line": "“{name}”: bookings {diff} vs baseline ({dlo} … {dhi}), active licenses at the end {adiff:+.0f}, "
                "grace renewals {grace:+.0f}, upgrades {up:+.0f}.",
        "tornado": "The knob that moves bookings most is **{knob}**: from {low} to {high} vs baseline.",
    },
}


def pricing_whatif_page(
    data: str = "data/sample", catalog: str | None = None, as_of: str = "", scenarios: str = "data/scenarios.yaml",
    grace_days: int = 0, renewal_price: int = 0, upgrade_price: int = 0, horizon_months: int = 36, runs: int = 40,
    sensitivity_runs: int = 20, seed: int = 1, lang: str = "ru",
) -> Page:
    """Scenarios from a file (and one inline scenario from the knobs, if set), bands, tornado, summary."""
    from .whatif import Scenario, load_scenarios, run_scenarios, sensitivity

    if lang not in WHATIF_TEXT:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    t = WHATIF_TEXT[lang]
    cat = Catalog.from_yaml(catalog) if catalog else Catalog.default()
    led = read_ledger(data)
    day = as_of or replay(led, cat).as_of.date().isoformat()
    scs = load_scenarios(scenarios) if scenarios else [Scenario("baseline")]
    inline: dict[str, Any] = {}
    if grace_days:
        inline["grace_days"] = grace_days
    if renewal_price or upgrade_price:
        prices = {k: v for k, v in (("renewal", renewal_price), ("upgrade", upgrade_price)) if v}
        inline["prices"] = {ed: prices for ed in categories(Edition)}
    if inline:
        scs.append(Scenario("inline", catalog=inline, description="knobs of the parameters cell"))
    res = run_scenarios(led, scs, day, horizon_months=horizon_months, runs=runs, seed=seed, catalog=cat)
    sens = sensitivity(led, day, runs=sensitivity_runs, horizon_months=horizon_months, seed=seed, catalog=cat,
                       behaviour=res.behaviour)
    s = res.summary
    b = s.iloc[0]
    lines = [t["summary"].format(months=horizon_months, start=(res.as_of + pd.Timedelta(days=1)).date(), runs=runs,
                                 base=P.rub(b["bookings_mean"]), lo=P.rub(b["bookings_p05"]), hi=P.rub(b["bookings_p95"]),
                                 active=f"{b['active_mean']:.0f}", rate=_pct(b["renewal_rate_mean"], lang),
                                 observed=_pct(res.observed_renewal_rate, lang))]
    for _, r in s.iloc[1:].iterrows():
        lines.append(t["line"].format(name=P.safe_text(r["scenario"], markdown=True), diff=P.rub(r["bookings_diff_mean"]), dlo=P.rub(r["bookings_diff_p05"]),
                                      dhi=P.rub(r["bookings_diff_p95"]), adiff=r["active_diff_mean"],
                                      grace=r["grace_renewal_diff_mean"], up=r["upgrade_diff_mean"]))
    top = sens.assign(a=sens["bookings_diff_pct"].abs()).sort_values("a").iloc[-1]["knob"] if len(sens) else None
    if top is not None:
        ks = sens[sens["knob"] == top]
        lines.append(t["tornado"].format(knob=P.safe_text(top, markdown=True), low=_pct(ks["bookings_diff_pct"].min(), lang), high=_pct(ks["bookings_diff_pct"].max(), lang)))
    table = s[["scenario", "description", "bookings_mean", "bookings_p05", "bookings_p95", "bookings_diff_mean",
               "bookings_diff_p05", "bookings_diff_p95", "active_mean", "renewal_rate_mean", "grace_renewal_mean",
               "upgrade_mean", "lapsed_mean"]].copy()
    for c in ("bookings_mean", "bookings_p05", "bookings_p95", "bookings_diff_mean", "bookings_diff_p05", "bookings_diff_p95"):
        table[c] = table[c].map(P.rub)
    return Page(
        title=t["title"],
        figures={"bookings": P.fig_scenario_fan(res.table, "bookings", lang), "active": P.fig_scenario_fan(res.table, "active", lang),
                 "tornado": P.fig_tornado(sens, lang)},
        tables={"scenarios": table, "sensitivity": sens},
        notes={"summary": "\n\n".join(lines)},
        summary=lines[0],
    )
