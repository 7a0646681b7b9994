"""Write the report notebooks of notebooks/ (thin: parameters, one call, one cell per chart).

Run ``python scripts/make_notebooks.py`` after changing a page in subs_model/insights.py;
then ``python scripts/make_notebooks.py --check-outputs`` executes them and keeps only the
outputs of the ``# NBVAL_CHECK_OUTPUT`` cells (the deterministic summaries nbval compares).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"

PARAMS = '''data = "../data/sample"  # ledger folder: licenses, orders, activations, legacy_periods, features / папка с данными
catalog = "../data/catalog.yaml"  # catalog YAML: prices and rule knobs / каталог цен и правил
as_of = ""  # report day YYYY-MM-DD, empty means the last event day of the ledger / дата отчёта
start = ""  # first month shown YYYY-MM-DD, empty means from the beginning / первый месяц на графиках
end = ""  # last month shown YYYY-MM-DD, empty means up to as_of / последний месяц на графиках
edition = "all"  # all, full or basic / редакция
lang = "ru"  # labels: ru or en / язык подписей
churn_horizon_days = 365  # days without coverage after which a license counts as churned / дней до признания ухода'''

CALL = "page = insights.{fn}(\n    data=data, catalog=catalog, as_of=as_of, start=start, end=end,\n    edition=edition, lang=lang, churn_horizon_days=churn_horizon_days,\n)"

WHATIF_PARAMS = '''data = "../data/sample"  # ledger folder / папка с данными
catalog = "../data/catalog.yaml"  # the current catalog / текущий каталог
scenarios = "../data/scenarios.yaml"  # scenario file; the first scenario is the baseline / файл сценариев
as_of = ""  # start of the forecast YYYY-MM-DD, empty means the last event day of the ledger / дата начала прогноза
grace_days = 0  # inline scenario: window in days, 0 means not used / льготный период во встроенном сценарии
renewal_price = 0  # inline scenario: renewal price in rubles, 0 means not used / цена продления
upgrade_price = 0  # inline scenario: upgrade price in rubles, 0 means not used / цена апгрейда
horizon_months = 36  # forecast horizon in months / горизонт прогноза, мес.
runs = 40  # Monte Carlo runs per scenario, 200 for decisions / число прогонов на сценарий
seed = 1  # random seed: same seed, same result / зерно случайных чисел
lang = "ru"  # labels: ru or en / язык подписей'''

WHATIF_CALL = (
    "page = insights.pricing_whatif_page(\n    data=data, catalog=catalog, as_of=as_of, scenarios=scenarios,\n"
    "    grace_days=grace_days, renewal_price=renewal_price, upgrade_price=upgrade_price,\n"
    "    horizon_months=horizon_months, runs=runs, seed=seed, lang=lang,\n)"
)

PAGES = {
    "01-cohort-overview": {
        "fn": "cohort_overview",
        "title": "Обзор когорт · Cohort overview",
        "intro": (
            "Сколько лицензий «Кассир 5» активно, чем заканчиваются сроки подписки, как удерживаются когорты "
            "(лицензии по месяцу первой подписки) и сколько денег поступает, признаётся и откладывается.\n\n"
            "*How many licenses are active, how subscription terms end, how cohorts retain, and how much revenue is "
            "booked, recognised and deferred.* Change the parameters in the next cell and run all cells."
        ),
        "sections": [
            ("active", "Активные лицензии · Active licenses"),
            ("outcomes", "Исходы окончаний · Expiry outcomes"),
            ("retention", "Удержание когорт · Cohort retention"),
            ("revenue", "Выручка · Revenue"),
        ],
        "tables": ["kpis"],
    },
    "02-renewal-timing": {
        "fn": "renewal_timing_page",
        "title": "Когда продлевают · Renewal timing",
        "intro": (
            "Когда клиенты продлевают относительно окончания подписки: заранее, в 15-дневный льготный период или позже "
            "(тогда — по полной цене), и как меняется доля продлений по месяцам.\n\n"
            "*When customers renew relative to the end of their subscription, and the renewal rate by month of expiry.* "
            "Day 0 is the first day without coverage; the grace window is shaded."
        ),
        "sections": [
            ("timing", "Распределение по дням · Offset distribution"),
            ("rates", "Доля продлений по месяцам · Renewal rate by month"),
            ("risks", "Конкурирующие исходы · Competing follow-ups"),
        ],
        "tables": ["by_edition"],
    },
    "03-grace-usage": {
        "fn": "grace_usage_page",
        "title": "Льготный период · Grace window usage",
        "intro": (
            "Сколько клиентов пользуются 15 днями после окончания, сколько дней они были без нового функционала, "
            "сколько продлений купили и забыли активировать, и сколько потеряли из-за сроков оформления заказа.\n\n"
            "*How many use the grace window, how many days they went without the paid functionality, forgotten "
            "renewals, and renewals lost to slow order handling.*"
        ),
        "sections": [
            ("grace", "День льготного периода · Grace day"),
            ("forgotten", "Забытые продления · Forgotten renewals"),
            ("lead", "Сроки этапов заказа · Order stage lead times"),
        ],
        "tables": ["features", "summary"],
        "extra_notes": ["features"],
    },
    "04-upgrade-revenue": {
        "fn": "upgrade_revenue_page",
        "title": "Апгрейды · Upgrade revenue",
        "intro": (
            "Сколько приносит апгрейд за 800 ₽: сколько сгоревших продлений он превращает в подписку и сколько выручки "
            "сохраняет по сравнению с уходом этих клиентов; ближайшие окончания и ожидаемые поступления.\n\n"
            "*What the 800 ₽ upgrade brings, how many lapsed renewals it converts, and the cash outlook of upcoming expiries.*"
        ),
        "sections": [
            ("upgrades", "Выручка от апгрейдов · Upgrade revenue"),
            ("fates", "Что стало со сгоревшими продлениями · Fate of lapsed renewals"),
            ("calendar", "Ближайшие окончания · Upcoming expiries"),
        ],
        "tables": ["monthly"],
        "note_for": {"upgrades": "upgrade"},
    },
    "05-pricing-whatif": {
        "fn": "pricing_whatif_page",
        "params": WHATIF_PARAMS,
        "call": WHATIF_CALL,
        "checked": False,
        "section_notes": False,
        "title": "Ценовые сценарии · Pricing what-if",
        "intro": (
            "Что будет с выручкой, продлениями и уходом, если изменить правила: 30 дней на продление вместо 15, другая цена "
            "продления или апгрейда, продление от даты окончания. Прогноз начинается с реальной базы клиентов на дату "
            "`as_of`; поведение клиентов откалибровано по данным; каждый сценарий прогоняется много раз, полосы — 5–95 %.\n\n"
            "*What happens to revenue, renewals and churn under other rules, starting from the real customer base; bands are "
            "5–95 % over Monte Carlo runs with common random numbers, so differences between scenarios are not noise.*"
        ),
        "sections": [
            ("bookings", "Поступления · Bookings"),
            ("active", "Активные лицензии · Active licenses"),
            ("tornado", "Чувствительность · Sensitivity"),
        ],
        "tables": ["scenarios"],
        "final_note": "summary",
    },
}


def build(name: str, spec: dict) -> nbformat.NotebookNode:
    cells = [new_markdown_cell(f"# {spec['title']}\n\n{spec['intro']}")]
    p = new_code_cell(PARAMS)
    p.metadata["tags"] = ["parameters"]
    cells.append(p)
    p.source = spec.get("params", PARAMS)
    cells.append(new_code_cell("from subs_model import insights\n\n" + spec.get("call", CALL.format(fn=spec["fn"]))))
    cells.append(new_code_cell(("# NBVAL_CHECK_OUTPUT\n" if spec.get("checked", True) else "") + "print(page.summary)"))
    note_for = spec.get("note_for", {})
    for key, heading in spec["sections"]:
        cells.append(new_markdown_cell(f"## {heading}"))
        cells.append(new_code_cell(f'page.figure("{key}")'))
        note = note_for.get(key, key)
        if spec.get("section_notes", True) and note in ("timing", "rates", "risks", "grace", "forgotten", "lead", "upgrade", "active", "outcomes", "retention", "revenue"):
            cells.append(new_code_cell(f'page.note("{note}")'))
    for extra in spec.get("extra_notes", []):
        cells.append(new_code_cell(f'page.note("{extra}")'))
    for table in spec["tables"]:
        cells.append(new_code_cell(f'page.table("{table}")'))
    if spec.get("final_note"):
        cells.append(new_markdown_cell("## Вывод · What it means"))
        cells.append(new_code_cell(f'page.note("{spec["final_note"]}")'))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def keep_checked_outputs(path: Path) -> None:
    """Execute ``path`` and keep only the outputs of ``# NBVAL_CHECK_OUTPUT`` cells."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            if "NBVAL_CHECK_OUTPUT" not in cell.source:
                cell.outputs = []
                cell.execution_count = None
            cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    NB.mkdir(exist_ok=True)
    for name, spec in PAGES.items():
        path = NB / f"{name}.ipynb"
        nbformat.write(build(name, spec), path)
        if "--check-outputs" in sys.argv:
            keep_checked_outputs(path)
        print(f"wrote {path.relative_to(ROOT)}")
