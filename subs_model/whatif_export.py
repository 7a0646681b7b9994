"""Decision-ready files of a what-if: rubles with their unit, the elasticity every number rests on.

:func:`whatif_tables` turns a :class:`~subs_model.whatif.WhatIf` (and optionally its
break-even table) into tables for people: money in rubles (``*_rub`` columns), months as
dates, every row with the renewal-price elasticity it rests on. :func:`export_whatif`
writes them as formula-safe CSV files and one workbook: ``metadata`` (as_of, data
fingerprint, runs, seed, horizon, catalog, behaviour, elasticity range), ``summary``,
``by elasticity``, ``break-even``, a wide monthly sheet per metric, ``yearly ₽`` /
``yearly counts``, ``editions`` and a ``glossary`` defining every column in Russian and
English.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .export import Sheet, write_table, write_workbook

__all__ = ["GLOSSARY", "export_whatif", "glossary", "metadata", "whatif_tables"]

#: Every metric a what-if reports: (unit, Russian, English).
GLOSSARY: dict[str, tuple[str, str, str]] = {
    "bookings": ("₽", "Выручка по дате оплаты (акта): сумма оплат за месяц",
                 "Bookings: amounts paid (act date) in the month"),
    "recognised": ("₽", "Признанная выручка: каждая оплата распределяется поровну по дням покрытия, которые добавила её "
                        "активация; включает остаток выручки, отложенной на дату as_of",
                   "Recognised revenue: each payment spread evenly over the coverage days its activation added; includes "
                   "the release of the revenue deferred on as_of"),
    "active": ("лицензии / licenses", "Лицензии с действующим покрытием в последний день месяца (на конец горизонта в итогах)",
               "Licenses covered on the month's last day (at the end of the horizon in totals)"),
    "early_renewal": ("шт. / count", "Продления, активированные до окончания подписки (по месяцу активации)",
                      "Renewals activated before the coverage end (by activation month)"),
    "grace_renewal": ("шт. / count", "Продления, активированные в льготный период после окончания, не позднее срока",
                      "Renewals activated in the grace window after the end, by the deadline"),
    "subscription_continuation": ("шт. / count", "Подписки по полной цене, продолжившие покрытие лицензии (не позднее "
                                                 "365 дней после закрытия окна продления)",
                                  "Full-price subscriptions that continued a license's coverage (within 365 days after the "
                                  "renewal window closed)"),
    "upgrade": ("шт. / count", "Апгрейды просроченных продлений до подписки, активированные в месяце",
                "Upgrades of lapsed renewals to a subscription, activated in the month"),
    "lapsed": ("шт. / count", "Лицензии, чьё покрытие закончилось в месяце и не возобновилось до конца горизонта (ушедшие)",
               "Licenses whose coverage ended in the month and did not resume by the end of the horizon (churned)"),
    "bookings_full": ("₽", "Выручка по дате оплаты, редакция «Кассир 5»", "Bookings of the full edition «Кассир 5»"),
    "bookings_basic": ("₽", "Выручка по дате оплаты, редакция «Кассир 5 (Базовая версия)»", "Bookings of the basic edition"),
    "active_full": ("лицензии / licenses", "Активные лицензии «Кассир 5» на конец месяца", "Active full-edition licenses at the month end"),
    "active_basic": ("лицензии / licenses", "Активные лицензии базовой версии на конец месяца", "Active basic-edition licenses at the month end"),
    "renewal_rate": ("доля / share", "Доля окончаний покрытия в первый год горизонта, за которыми последовало покрытие в "
                                     "течение 365 дней", "Share of coverage ends in the horizon's first year followed by "
                                                         "coverage within 365 days"),
}
#: Column suffixes: (Russian, English).
SUFFIXES: dict[str, tuple[str, str]] = {
    "diff_range_low": ("средняя разница с базовым сценарием при нижней границе диапазона эластичности",
                       "mean difference to the baseline at the low end of the elasticity range"),
    "diff_range_high": ("средняя разница с базовым сценарием при верхней границе диапазона эластичности",
                        "mean difference to the baseline at the high end of the elasticity range"),
    "diff_band_low": ("нижняя граница разницы: наименьший 5-й процентиль по всем эластичностям диапазона (Монте-Карло и диапазон)",
                      "low end of the difference: the lowest 5th percentile over every elasticity of the range (Monte Carlo and range)"),
    "diff_band_high": ("верхняя граница разницы: наибольший 95-й процентиль по всем эластичностям диапазона",
                       "high end of the difference: the highest 95th percentile over every elasticity of the range"),
    "diff_mean": ("средняя по прогонам разница с базовым сценарием (общие случайные числа)",
                  "mean difference to the baseline over runs (common random numbers)"),
    "diff_p05": ("5-й процентиль разницы с базовым сценарием по прогонам", "5th percentile over runs of the difference to the baseline"),
    "diff_p95": ("95-й процентиль разницы с базовым сценарием по прогонам", "95th percentile over runs of the difference to the baseline"),
    "mean_ci": ("полуширина 95 % доверительного интервала среднего", "half-width of the 95 % confidence interval of the mean"),
    "mean": ("среднее по прогонам Монте-Карло", "mean over the Monte Carlo runs"),
    "p05": ("5-й процентиль по прогонам", "5th percentile over runs"),
    "p95": ("95-й процентиль по прогонам", "95th percentile over runs"),
}
#: Columns that are not a metric: (unit, Russian, English).
PLAIN: dict[str, tuple[str, str, str]] = {
    "scenario": ("", "Сценарий (первый — базовый): ключ из файла сценариев", "Scenario (the first is the baseline): its key in the scenarios file"),
    "title": ("", "Название сценария на языке выгрузки", "Scenario title in the export's language"),
    "description": ("", "Описание сценария на языке выгрузки", "Scenario description in the export's language"),
    "elasticity": ("", "Эластичность намерения продлить по цене продления, на которой основана строка",
                   "Renewal-price elasticity of the intent to continue that the row rests on"),
    "elasticity_low": ("", "Наименьшая эластичность, при которой посчитан сценарий (нижний край диапазона)",
                       "Lowest elasticity the scenario was run at (low end of the range)"),
    "elasticity_high": ("", "Наибольшая эластичность, при которой посчитан сценарий (верхний край диапазона)",
                        "Highest elasticity the scenario was run at (high end of the range)"),
    "month": ("дата / date", "Месяц (первый день)", "Month (its first day)"),
    "metric": ("", "Показатель (см. строки глоссария)", "Metric (see the glossary rows)"),
    "unit": ("", "Единица", "Unit"),
    "edition": ("", "Редакция: full — «Кассир 5», basic — базовая версия", "Edition: full «Кассир 5», basic the basic version"),
    "break_even": ("", "Эластичность безубыточности: при ней сценарий равен базовому по цели",
                   "Break-even elasticity: the scenario equals the baseline on the objective"),
    "low": ("", "Нижняя граница 90 % интервала Монте-Карло", "Low end of the 90 % Monte Carlo interval"),
    "high": ("", "Верхняя граница 90 % интервала Монте-Карло", "High end of the 90 % Monte Carlo interval"),
    "objective": ("", "Цель сравнения: bookings, recognised или active", "Objective: bookings, recognised or active"),
    "months": ("мес. / months", "Месяцы горизонта, за которые сравнивается цель", "Months of the horizon the objective covers"),
    "pays_off_if": ("", "Когда сценарий окупается: above / below — при эластичности выше / ниже порога; always / never",
                    "When the scenario pays off: above / below the break-even elasticity; always / never in the range"),
}


def _rub(kopecks: Any) -> Any:
    return np.round(np.asarray(kopecks, dtype=float) / 100, 2)


def _money_frame(df: pd.DataFrame, money: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    """Money columns (``<metric>_<stat>`` in kopecks) as ``<metric>_rub_<stat>`` rubles; the new names."""
    out, names = df.copy(), []
    for c in df.columns:
        metric = next((m for m in sorted(money, key=len, reverse=True) if c == m or c.startswith(m + "_")), None)
        if metric is None or c.startswith(metric + "_full") or c.startswith(metric + "_basic"):
            continue
        new = f"{metric}_rub" + c[len(metric):]
        out[c] = _rub(df[c])
        out = out.rename(columns={c: new})
        names.append(new)
    return out, names


def _titled(df: pd.DataFrame, res: Any, lang: str) -> pd.DataFrame:
    """``df`` with the scenario's title (and description, if it has that column) in ``lang`` beside its key."""
    from .scenario import titles

    if "scenario" not in df.columns or not len(df):
        return df
    out = df.copy()
    if "title" not in out.columns:
        out.insert(int(out.columns.get_loc("scenario")) + 1, "title", out["scenario"].map(titles(res.scenarios, lang)))
    if "description" in out.columns:
        out["description"] = out["scenario"].map({sc.name: sc.description_in(lang) for sc in res.scenarios})
    return out


def whatif_tables(res: Any, break_even: pd.DataFrame | None = None, lang: str = "ru") -> dict[str, Sheet]:
    """The what-if as sheets for people (see the module): name -> :class:`~subs_model.export.Sheet`.

    Each scenario is shown by its title and description in ``lang`` (:meth:`subs_model.scenario.Scenario.title_in`)
    beside its key (``scenario``); the wide monthly sheets are headed by the titles."""
    from .scenario import titles
    from .whatif import METRICS, MONEY, STOCKS

    if lang not in ("ru", "en"):
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)
    names = titles(res.scenarios, lang)
    summary, money = _money_frame(_titled(res.summary, res, lang), MONEY)
    by_e, money_e = _money_frame(_titled(res.by_elasticity, res, lang), MONEY)
    fmt = lambda cols, kind: {c: kind for c in cols}  # noqa: E731
    counts = [c for c in summary.columns if c not in money and c not in ("scenario", "title", "description")
              and not c.startswith(("elasticity", "renewal_rate"))]
    sheets = {
        "metadata": Sheet(metadata(res), freeze=False),
        "summary": Sheet(summary, {**fmt(money, "rub"), **fmt(counts, "float"), **fmt([c for c in summary if c.startswith("renewal_rate")], "pct")}),
        "by elasticity": Sheet(by_e, {**fmt(money_e, "rub"), **fmt([c for c in by_e if c not in money_e and c not in (
            "scenario", "title", "description", "elasticity") and not c.startswith("renewal_rate")], "float"),
            **fmt([c for c in by_e if c.startswith("renewal_rate")], "pct")}),
    }
    if break_even is not None and len(break_even):
        be = _titled(break_even, res, lang)
        be["diff_at_central"] = np.where(be["objective"] == "active", be["diff_at_central"], _rub(be["diff_at_central"]))
        be = be.rename(columns={"diff_at_central": "diff_at_central_rub_or_licenses"})
        sheets["break-even"] = Sheet(be, {"break_even": "float", "low": "float", "high": "float", "bracket_low": "float",
                                          "bracket_high": "float", "central_elasticity": "float",
                                          "diff_at_central_rub_or_licenses": "float"})
    t = res.table
    for metric in METRICS:
        w = t[t["metric"] == metric].pivot(index="month", columns="scenario", values="mean")[[s.name for s in res.scenarios]]
        d = t[t["metric"] == metric].pivot(index="month", columns="scenario", values="diff_mean")[[s.name for s in res.scenarios[1:]]]
        wide = pd.concat([w.rename(columns=names), d.rename(columns=names).add_suffix(" − baseline")], axis=1)
        if metric in MONEY:
            wide = wide.map(lambda x: round(x / 100, 2))
        wide = wide.reset_index()
        wide.insert(1, "elasticity", res.elasticity)
        kind = "rub" if metric in MONEY else "float"
        unit = "₽" if metric in MONEY else "шт"
        sheets[f"month {metric} {unit}"] = Sheet(wide, {"month": "date", **fmt([c for c in wide if c not in ("month", "elasticity")], kind)})
    money_y, counts_y = (_titled(df, res, lang) for df in _yearly(res, METRICS, MONEY, STOCKS))
    sheets["yearly ₽"] = Sheet(money_y, fmt([c for c in money_y if c.isdigit()], "rub"))
    sheets["yearly counts"] = Sheet(counts_y, fmt([c for c in counts_y if c.isdigit()], "float"))
    eds = _titled(_editions(res), res, lang)
    sheets["editions"] = Sheet(eds, {"bookings_rub_mean": "rub", "bookings_rub_diff_mean": "rub", "active_mean": "float",
                                     "active_diff_mean": "float"})
    sheets["glossary"] = Sheet(glossary([sh.df for sh in sheets.values()]), freeze=False)
    return sheets


def _yearly(res: Any, metrics: tuple[str, ...], money: tuple[str, ...], stocks: tuple[Any, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calendar-year totals per scenario and metric (mean over runs; stocks at the year's last month)."""
    years = pd.DatetimeIndex(res.table["month"].unique()).year.to_numpy()
    stock_names = {m.value for m in stocks}
    rows_m, rows_c = [], []
    for sc in res.scenarios:
        x = res.runs[sc.name].astype(float).mean(axis=0)  # [metric, month]
        for k, metric in enumerate(metrics):
            row: dict[str, Any] = {"scenario": sc.name, "elasticity": res.elasticity, "metric": metric,
                                   "unit": "₽" if metric in money else GLOSSARY[metric][0]}
            for y in np.unique(years):
                m = years == y
                v = x[k, np.flatnonzero(m)[-1]] if metric in stock_names else x[k, m].sum()
                row[str(y)] = round(v / 100, 2) if metric in money else v
            (rows_m if metric in money else rows_c).append(row)
    return pd.DataFrame(rows_m), pd.DataFrame(rows_c)


def _editions(res: Any) -> pd.DataFrame:
    """Bookings over the horizon and active licenses at its end, per scenario and edition (mean, vs baseline)."""
    from .whatif import BY_EDITION, Metric

    base = res.runs[res.scenarios[0].name]
    rows = []
    for sc in res.scenarios:
        x = res.runs[sc.name]
        for k, ed in enumerate(("full", "basic")):
            b, a = BY_EDITION[Metric.BOOKINGS][k].code, BY_EDITION[Metric.ACTIVE][k].code
            rows.append({
                "scenario": sc.name, "elasticity": res.elasticity, "edition": ed,
                "bookings_rub_mean": round(x[:, b].sum(axis=1).mean() / 100, 2),
                "bookings_rub_diff_mean": round((x[:, b].sum(axis=1) - base[:, b].sum(axis=1)).mean() / 100, 2),
                "active_mean": float(x[:, a, -1].mean()), "active_diff_mean": float((x[:, a, -1] - base[:, a, -1]).mean()),
            })
    return pd.DataFrame(rows)


def metadata(res: Any) -> pd.DataFrame:
    """What the run rests on, a row per item (``item, value``, text): as_of, data fingerprint,
    runs, seed, horizon, elasticity (central, source, range, grid), catalog versions,
    behaviour, scenarios and notes."""
    from . import __version__

    beh = res.behaviour
    months = pd.DatetimeIndex(res.table["month"].unique())
    items: list[tuple[str, str]] = [
        ("as_of", res.as_of.date().isoformat()),
        ("data_fingerprint", res.fingerprint),
        ("runs", str(res.n_runs)),
        ("seed", str(res.seed)),
        ("horizon_months", str(res.horizon_months)),
        ("first_month", months.min().date().isoformat() if len(months) else ""),
        ("last_month", months.max().date().isoformat() if len(months) else ""),
        ("elasticity_central", f"{beh.elasticity:g}"),
        ("elasticity_source", beh.elasticity_source),
        ("elasticity_range", f"{beh.elasticity_range[0]:g} – {beh.elasticity_range[1]:g}"),
        ("elasticities", ", ".join(f"{e:g}" for e in res.elasticities)),
        ("money_unit", "₽ (rubles, 2 decimals); the model counts kopecks exactly"),
    ]
    if res.catalog is not None:
        for v in res.catalog.versions:
            prices = "; ".join(f"{ed}: " + ", ".join(f"{sku} {kop / 100:,.0f} ₽" for sku, kop in p.items())
                               for ed, p in ((str(e), {str(s): k for s, k in skus.items()}) for e, skus in v.prices.items()))
            items.append((f"catalog {v.effective_from.isoformat()}",
                          f"term {v.term_days} d, grace {v.grace_days} d, renewal basis {v.renewal_basis}, {prices}"))
    raw = beh.to_dict()
    for k in ("p_continue", "p_subscription_instead", "p_late_renewal", "p_forget", "p_upgrade", "p_subscription_after_lapse",
              "p_return", "arrivals_per_month", "arrivals_growth", "share_basic", "upgrade_elasticity", "reference_prices"):
        items.append((f"behaviour {k}", json.dumps(raw[k], ensure_ascii=False) if isinstance(raw[k], dict) else f"{raw[k]:g}"))
    for sc in res.scenarios:
        changes = json.dumps({"catalog": dict(sc.catalog), "behaviour": dict(sc.behaviour)}, ensure_ascii=False, default=str)
        shown = "; ".join(f"{lang}: {sc.title_in(lang)}" for lang in ("ru", "en"))
        items.append((f"scenario {sc.name}", f"{shown}; {sc.description} {changes}".strip()))
    items += [(f"note {i + 1}", n) for i, n in enumerate(res.notes)]
    items += [("generated_by", f"subs_model {__version__}"),
              ("generated_at_utc", dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat())]
    return pd.DataFrame(items, columns=["item", "value"])


def _describe(col: str) -> tuple[str, str, str]:
    """(unit, Russian, English) of a column name built from a metric, ``_rub`` and a suffix."""
    if col in PLAIN:
        return PLAIN[col]
    base = col.replace(" − baseline", "")
    if base != col:
        u, ru, en = _describe(base)
        return u, f"{ru}: разница с базовым сценарием", f"{en}: difference to the baseline"
    for metric in sorted(GLOSSARY, key=len, reverse=True):
        for stem in (f"{metric}_rub", metric):
            if col == stem or col.startswith(stem + "_"):
                rest = col[len(stem) + 1:]
                if rest and rest not in SUFFIXES:
                    continue
                unit, ru, en = GLOSSARY[metric]
                if rest:
                    ru, en = f"{ru} — {SUFFIXES[rest][0]}", f"{en} — {SUFFIXES[rest][1]}"
                return unit, ru, en
    return "", "", ""


def glossary(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Every metric, and every column of ``tables`` that a glossary entry can define:
    ``term, unit, definition_ru, definition_en``."""
    rows = [{"term": m, "unit": u, "definition_ru": ru, "definition_en": en} for m, (u, ru, en) in GLOSSARY.items()]
    seen = set(GLOSSARY)
    for df in tables:
        for c in map(str, df.columns):
            if c in seen or c.isdigit() or c in ("item", "value", "term", "definition_ru", "definition_en"):
                continue
            seen.add(c)
            u, ru, en = _describe(c)
            if ru:
                rows.append({"term": c, "unit": u, "definition_ru": ru, "definition_en": en})
    return pd.DataFrame(rows)


def export_whatif(res: Any, out: str | Path, *, break_even: pd.DataFrame | None = None, name: str = "scenarios",
                  lang: str = "ru") -> list[Path]:
    """Write the what-if to folder ``out``: ``<name>.csv`` (summary, rubles), ``<name>_by_elasticity.csv``,
    ``<name>_by_month.csv`` (every elasticity, months as dates, rubles), ``break_even.csv``
    (when given), ``metadata.csv`` and the workbook ``<name>.xlsx`` (see the module), scenarios
    titled in ``lang``. Returns the files."""
    from .whatif import MONEY

    folder = Path(out)
    sheets = whatif_tables(res, break_even, lang)
    files = write_table(sheets["summary"].df, folder / name, xlsx=False)
    files += write_table(sheets["by elasticity"].df, folder / f"{name}_by_elasticity", xlsx=False)
    monthly = res.table_by_elasticity.copy()
    money = monthly["metric"].isin(MONEY)
    stats = [c for c in monthly.columns if c not in ("scenario", "elasticity", "metric", "month")]
    monthly[stats] = monthly[stats].astype(float)
    monthly.loc[money, stats] = monthly.loc[money, stats] / 100
    monthly.insert(3, "unit", np.where(money, "₽", "count"))
    monthly["month"] = pd.to_datetime(monthly["month"]).dt.strftime("%Y-%m-%d")
    files += write_table(monthly, folder / f"{name}_by_month", xlsx=False)
    if "break-even" in sheets:
        files += write_table(sheets["break-even"].df, folder / "break_even", xlsx=False)
    files += write_table(sheets["metadata"].df, folder / "metadata", xlsx=False)
    files.append(write_workbook(sheets, folder / name))
    return files
