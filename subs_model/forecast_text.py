"""The words of the forecast and its backtest in a report's language (ru, en).

:attr:`subs_model.forecast.Forecast.description` and :attr:`subs_model.backtest.Backtest.description`
stay English for the API; a report (notebook ``06-forecast``) reads them here in its language,
with days as :func:`subs_model.notes.date`, numbers with the language's separators and Russian
plural forms. Notes the forecast engine adds in English are said in Russian when they are one
of the known sentences; any other note is shown as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from . import notes as N

__all__ = ["backtest_lines", "forecast_lines"]

_LANGS = ("ru", "en")
_METRIC = {"ru": {"active": "активные лицензии", "term_ends": "окончания сроков", "continued": "продолжения",
                  "new_licenses": "новые лицензии", "not_continued": "непродлённые окончания", "bookings_rub": "поступления, ₽",
                  "recognised_rub": "признанная выручка, ₽"},
           "en": {"active": "active licenses", "term_ends": "term ends", "continued": "continuations",
                  "new_licenses": "new licenses", "not_continued": "term ends not continued", "bookings_rub": "bookings, ₽",
                  "recognised_rub": "recognised revenue, ₽"}}
_TRAILING = re.compile(r"trailing 12 months: ([\d,]+) licenses first covered (\S+) … (\S+), / 12")


def _check(lang: str) -> None:
    if lang not in _LANGS:
        msg = f"lang {lang!r} is not supported; use 'ru' or 'en'"
        raise ValueError(msg)


def _arrivals(rule: str, lang: str) -> str:
    """The rule that gave the arrivals (forecast engine's English) in ``lang``."""
    m = _TRAILING.fullmatch(rule)
    if m:
        n, lo, hi = int(m.group(1).replace(",", "")), N.date(m.group(2), lang), N.date(m.group(3), lang)
        return (f"темп последних 12 месяцев: {N.count(n, 'license', lang)} с первым покрытием {lo} … {hi}, / 12" if lang == "ru"
                else f"trailing 12 months: {N.count(n, 'license', lang)} first covered {lo} … {hi}, / 12")
    if rule.startswith("none"):
        return "нет: только нынешняя база" if lang == "ru" else "none: the base only"
    if rule == "given":
        return "задано параметром" if lang == "ru" else "given"
    return rule


_NOTES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str], str], str]], ...] = (
    (re.compile(r"no new license in the 12 months to (\S+): no arrivals are forecast"),
     lambda m, lang: (f"ни одной новой лицензии за 12 месяцев до {N.date(m.group(1), lang)}: новые лицензии не прогнозируются"
                      if lang == "ru" else f"no new license in the 12 months to {N.date(m.group(1), lang)}: no arrivals are forecast")),
    (re.compile(r"no decided continuation in the history: nobody is forecast to continue"),
     lambda m, lang: ("в истории нет ни одного решённого продолжения: никто не продлит в прогнозе" if lang == "ru" else m.group(0))),
    (re.compile(r"(full|basic): no sBG fit \((.*)\); its licenses continue at the pooled rate", re.DOTALL),
     lambda m, lang: (f"{'полная' if m.group(1) == 'full' else 'базовая'} версия: модель sBG по данным не подобрана "
                      "(в них нет разброса склонности продлевать, который она описывает); её лицензии продлевают с общей долей"
                      if lang == "ru" else m.group(0))),
)


def _note(note: str, lang: str) -> str:
    for pattern, say in _NOTES:
        m = pattern.fullmatch(note)
        if m:
            return say(m, lang)
    return note


def forecast_lines(fc: Any, lang: str) -> list[str]:
    """The forecast's choices in ``lang``, one line each: state, model, arrivals, money and bands, notes."""
    _check(lang)
    day = N.date(fc.as_of, lang)
    months, runs = len(fc.months), int(fc.runs.shape[0])
    base = N.count(int(fc.base_licenses), "license", lang)
    arrivals = f"{N.number(fc.arrivals_per_month, lang, 1)}"
    rule = _arrivals(fc.arrivals_rule, lang)
    if lang == "ru":
        model = ("каждая лицензия по своей истории (модель sBG по редакциям; прогоны берут и вариант с утечкой, "
                 "с его весом по критерию Акаике)" if fc.model == "sbg" else "одна общая доля продлений на редакцию (однородная)")
        lines = [
            f"прогноз с {day}: {N.count(months, 'month', lang)}, {N.count(runs, ('прогон', 'прогона', 'прогонов'), lang)}; "
            f"на {day} покрыто или ещё не решено: {base}",
            f"модель: {model}",
            f"новые лицензии: {arrivals} в месяц ({rule})",
            f"деньги: рубли (поступления по ценам каталога в день активации; признанная выручка начинается с незаработанной "
            f"части сроков, идущих на {day}; сгорание не прогнозируется); полосы: 5–95 % прогонов",
        ]
        note = "примечание"
    else:
        model = ("each license from its own history (sBG posterior by edition; runs take the sBG with a leak "
                 "by its Akaike weight, see .retention)" if fc.model == "sbg"
                 else "one pooled continuation rate per edition (homogeneous)")
        lines = [
            f"forecast from {day}: {N.count(months, 'month', lang)}, {N.count(runs, ('run', 'runs'), lang)}; "
            f"{base} covered or not yet decided on {day}",
            f"model: {model}",
            f"arrivals: {arrivals} new licenses a month ({rule})",
            ("money: rubles (bookings at catalog prices on the activation day; recognised revenue starts from the "
             f"unearned part of the periods running on {day}; breakage not forecast); bands: 5–95 % of runs"),
        ]
        note = "note"
    return [*lines, *(f"{note}: {_note(n, lang)}" for n in fc.notes)]


def backtest_lines(summary: pd.DataFrame, as_of: Any, cutoffs: Sequence[Any], months: int, lang: str) -> list[str]:
    """One line per metric: the model's MAPE and coverage beside the pooled baseline's, after a line on what was compared."""
    _check(lang)
    n, to = len(cutoffs), N.date(as_of, lang)
    if lang == "ru":
        head = (f"проверка: {N.count(n, ('дата', 'даты', 'дат'), lang)} в прошлом, до {N.count(months, 'month', lang, genitive=True)} "
                f"от каждой, факт по {to}; MAPE — средняя |прогноз − факт| / факт по сравнённым месяцам; покрытие — доля месяцев "
                "внутри полосы 5–95 %")
    else:
        head = (f"backtest: {N.count(n, ('cutoff', 'cutoffs'), lang)}, up to {N.count(months, 'month', lang)} each, actuals to {to}; "
                "MAPE = mean |forecast − actual| / actual over the months compared; coverage = share of months inside the 5–95 % band")
    lines = [head]
    s = summary.set_index(["metric", "model"])
    for metric in summary["metric"].unique():
        m, b = s.loc[(metric, "sbg")], s.loc[(metric, "pooled")]
        name = _METRIC[lang].get(str(metric), str(metric))
        mape, bmape = N.pct(m["mape"], lang), N.pct(b["mape"], lang)
        cov, bcov = N.pct(m["coverage"], lang, 0), N.pct(b["coverage"], lang, 0)
        k = N.count(int(m["months"]), "month", lang)
        if lang == "ru":
            better = "лучше" if m["mape"] < b["mape"] else "не лучше"
            lines.append(f"{name}: MAPE {mape} (базовая модель с одной долей {bmape}: {better}), покрытие {cov} "
                         f"(у базовой {bcov}), {k}")
        else:
            better = "better" if m["mape"] < b["mape"] else "not better"
            lines.append(f"{name}: MAPE {mape} (pooled baseline {bmape}: {better}), coverage {cov} (baseline {bcov}), {k}")
    return lines
