"""The summary page a product manager opens first: headline KPIs, then the list of reports.

The KPIs come from one replay of the reports' ledger (the package API, not the notebooks):
active licenses, the on-time renewal rate, the grace share, lapses, upgrade conversion and
revenue, bookings and recognised revenue. Each compares the last complete calendar month
at ``as_of`` with the month before, states its denominator and window, and links to the
report that explains it. Everything from data is escaped; money is in rubles with ₽.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import notes

__all__ = ["Kpi", "headline_kpis", "index_html", "ledger_span", "month_windows"]

#: Which report explains each KPI (by notebook-name prefix).
_REPORT_OF = {"active": "01", "on_time": "02", "grace": "03", "lapses": "02", "conversion": "04", "upgrade_revenue": "04",
              "bookings": "01", "recognised": "01"}
_ON_TIME = ("early_renewal", "grace_renewal")
_CONTINUED_ON_TIME = ("early_renewal", "grace_renewal", "early_subscription", "grace_subscription")


@dataclass(frozen=True, slots=True)
class Kpi:
    """One headline number: its value and the previous window's, shown with the change and what it counts."""

    key: str
    label: str
    value: str
    change: str
    basis: str
    report: str  # notebook-name prefix of the report that explains it
    direction: int = 0  # +1 up, -1 down, 0 flat or unknown


def ledger_span(led: Any) -> tuple[dt.date, dt.date] | None:
    """First and last event day (Moscow) of a ledger: orders, activations and legacy periods."""
    days: list[pd.Timestamp] = []
    for table, cols in ((led.orders, ("requested_at", "invoiced_at", "paid_at", "ticket_at", "code_issued_at")),
                        (led.activations, ("activated_at",))):
        for c in cols:
            if c in table.columns and len(table):
                s = table[c]
                days += [s.min(), s.max()]
    if led.legacy_periods is not None and len(led.legacy_periods):
        start = pd.to_datetime(led.legacy_periods["start"], errors="coerce")
        days.append(start.min())
    days = [d for d in days if not pd.isna(d)]
    if not days:
        return None
    as_dates = [d.tz_convert("Europe/Moscow").date() if d.tzinfo else d.date() for d in days]
    return min(as_dates), max(as_dates)


def month_windows(as_of: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First days of the last complete calendar month at ``as_of`` and of the month before it.

    >>> [str(m.date()) for m in month_windows(pd.Timestamp("2026-10-31"))]
    ['2026-10-01', '2026-09-01']
    >>> [str(m.date()) for m in month_windows(pd.Timestamp("2026-10-30"))]
    ['2026-09-01', '2026-08-01']
    """
    day = pd.Timestamp(as_of).normalize().tz_localize(None)
    this = day.to_period("M").to_timestamp()
    month_end = (day + pd.Timedelta(days=1)).month != day.month
    cur = this if month_end else (this - pd.offsets.MonthBegin(1)).normalize()
    return cur, (cur - pd.offsets.MonthBegin(1)).normalize()


_RU_MONTHS = {  # prepositional («в октябре») and instrumental («по сравнению с сентябрём»)
    "prep": ("январе", "феврале", "марте", "апреле", "мае", "июне", "июле", "августе", "сентябре", "октябре", "ноябре", "декабре"),
    "instr": ("январём", "февралём", "мартом", "апрелем", "маем", "июнем", "июлем", "августом", "сентябрём", "октябрём",
              "ноябрём", "декабрём"),
}


def _month_label(m: pd.Timestamp, lang: str, case: str = "prep") -> str:
    """``m`` as words: ru «октябре 2026» (``case`` prep or instr), en "October 2026"."""
    return f"{_RU_MONTHS[case][m.month - 1]} {m.year}" if lang == "ru" else m.strftime("%B %Y")


def _day(value: Any, lang: str) -> str:
    """A run's as_of as people read it (:func:`subs_model.notes.date`); a value that is not a day as it is."""
    try:
        return notes.date(value or None, lang)
    except ValueError:
        return str(value)


def _finished(when: Any, lang: str) -> str:
    """When a run finished, as people read it: the day (:func:`subs_model.notes.date`) and the time to the minute."""
    if not when:
        return "—"
    try:
        ts = pd.Timestamp(str(when))
    except ValueError:
        return str(when)
    return f"{notes.date(ts, lang)} {ts:%H:%M}"


def _rel(cur: float, prev: float, lang: str) -> tuple[str, int]:
    if not prev:
        return "—", 0
    ch = cur / prev - 1
    return notes.signed_pct(ch, lang), (ch > 0) - (ch < 0)


def _pp(cur: float, prev: float, lang: str) -> tuple[str, int]:
    if pd.isna(cur) or pd.isna(prev):
        return "—", 0
    return notes.pp(cur - prev, lang), (cur > prev) - (cur < prev)


def on_time_window(outcomes: pd.DataFrame, month: pd.Timestamp, as_of: pd.Timestamp) -> dict[str, int]:
    """Counts for the on-time renewal rate of term ends whose deadline fell in ``month`` (and before ``as_of``).

    Rules §6: on-time rate = ends renewed by the deadline / ends whose deadline is before
    ``as_of``. This is the one place the summary derives it; when ``metrics.renewal_rates``
    (with maturity) lands on main, this function is the one to switch.
    """
    d = outcomes["deadline"].dt.tz_localize(None) if outcomes["deadline"].dt.tz is not None else outcomes["deadline"]
    nxt = month + pd.offsets.MonthBegin(1)
    cut = pd.Timestamp(as_of).tz_localize(None).normalize()
    w = outcomes[(d >= month) & (d < nxt) & (d < cut)]
    o = w["outcome"].astype(str)
    return {"ends": len(w), "on_time": int(o.isin(_ON_TIME).sum()), "grace": int((o == "grace_renewal").sum()),
            "continued": int(o.isin(_CONTINUED_ON_TIME).sum())}


def headline_kpis(rep: Any, lang: str = "ru", churn_horizon_days: int = 365) -> list[Kpi]:
    """The headline KPIs of a replay (see the module docstring), in ``lang``.

    >>> import subs_model as sm  # doctest: +SKIP
    >>> rep = sm.replay(sm.read_ledger("data/sample"), sm.Catalog.default())  # doctest: +SKIP
    >>> [k.key for k in headline_kpis(rep, "en")]  # doctest: +SKIP
    ['active', 'on_time', 'grace', 'lapses', 'conversion', 'upgrade_revenue', 'bookings', 'recognised']
    """
    from . import metrics

    ru = lang == "ru"
    as_of = pd.Timestamp(rep.as_of)
    cur, prev = month_windows(as_of)
    mc, mp = _month_label(cur, lang), _month_label(prev, lang)
    vs = f"по сравнению с {_month_label(prev, lang, 'instr')}" if ru else f"vs {mp}"
    out: list[Kpi] = []

    ends_cur = (cur + pd.offsets.MonthEnd(0)).date()
    ends_prev = (prev + pd.offsets.MonthEnd(0)).date()
    a_cur, a_prev = (int(rep.active_on(d.isoformat()).sum()) for d in (ends_cur, ends_prev))
    n_lic = len(rep.active_on(ends_cur.isoformat()))
    ch, dirn = _rel(a_cur, a_prev, lang)
    out.append(Kpi("active", "Активные лицензии" if ru else "Active licenses", notes.integer(a_cur, lang), ch,
                   (f"на {notes.date(ends_cur, lang)} из {notes.count(n_lic, 'license', lang, genitive=True)} в данных; "
                    f"по сравнению с {notes.date(ends_prev, lang)}" if ru else
                    f"on {notes.date(ends_cur, lang)} of {notes.count(n_lic, 'license', lang)} in the data; "
                    f"vs {notes.date(ends_prev, lang)}"), "01", dirn))

    outcomes = metrics.expiry_outcomes(rep, as_of, churn_horizon_days)
    wc, wp = on_time_window(outcomes, cur, as_of), on_time_window(outcomes, prev, as_of)
    rate = [w["on_time"] / w["ends"] if w["ends"] else float("nan") for w in (wc, wp)]
    ch, dirn = _pp(rate[0], rate[1], lang)
    out.append(Kpi("on_time", "Продление вовремя" if ru else "On-time renewal rate", notes.pct(rate[0], lang), ch,
                   (f"{notes.integer(wc['on_time'], lang)} из {notes.count(wc['ends'], 'term_end', lang, genitive=True)} со сроком продления в {mc}; {vs}"
                    if ru else f"{notes.integer(wc['on_time'], lang)} of {notes.count(wc['ends'], 'term_end', lang)} "
                    f"with the renewal deadline in {mc}; {vs}"), "02", dirn))
    gshare = [w["grace"] / w["on_time"] if w["on_time"] else float("nan") for w in (wc, wp)]
    ch, dirn = _pp(gshare[0], gshare[1], lang)
    out.append(Kpi("grace", "Доля продлений в льготный период" if ru else "Grace share of renewals", notes.pct(gshare[0], lang), ch,
                   (f"{notes.integer(wc['grace'], lang)} из {notes.count(wc['on_time'], 'renewal', lang, genitive=True)} вовремя в {mc}; {vs}" if ru
                    else f"{notes.integer(wc['grace'], lang)} of {notes.count(wc['on_time'], 'renewal', lang)} on time in {mc}; {vs}"),
                   "03", -dirn))
    lapses = [w["ends"] - w["continued"] for w in (wc, wp)]
    ch, dirn = _rel(lapses[0], lapses[1], lang)
    out.append(Kpi("lapses", "Не продлены к сроку" if ru else "Lapses", notes.integer(lapses[0], lang), ch,
                   (f"из {notes.count(wc['ends'], 'term_end', lang, genitive=True)} со сроком в {mc}: ни продления, ни подписки до срока; {vs}" if ru
                    else f"of {notes.count(wc['ends'], 'term_end', lang)} with the deadline in {mc}: no renewal or subscription by "
                    f"the deadline; {vs}"), "02", -dirn))
    out += _upgrade_kpis(rep, as_of, metrics.upgrade_revenue(rep, as_of, churn_horizon_days), cur, prev, lang, vs)
    out += _revenue_kpis(metrics.revenue(rep, as_of), cur, prev, lang, vs)
    return out


def _upgrade_kpis(rep: Any, as_of: pd.Timestamp, up: pd.DataFrame, cur: pd.Timestamp, prev: pd.Timestamp, lang: str,
                  vs: str, window: int = 90) -> list[Kpi]:
    """Conversion over the last 90 days of lapses whose upgrade window has closed (vs the 90 days
    before), and upgrade payments in the month (vs the month before)."""
    from . import metrics

    ru = lang == "ru"
    day = pd.Timedelta(days=1)
    to_c = as_of - window * day
    from_c = to_c - 89 * day
    to_p, from_p = from_c - day, from_c - 90 * day
    conv = [metrics.upgrade_conversion(rep, as_of, upgrade_window_days=window, start=a, end=b).iloc[0]
            for a, b in ((from_c, to_c), (from_p, to_p))]
    rate = [float(c["conversion_rate"]) if int(c["known"]) else float("nan") for c in conv]
    ch, dirn = _pp(rate[0], rate[1], lang)
    span = f"{notes.date(from_c, lang)}–{notes.date(to_c, lang)}"
    out = [Kpi("conversion", "Конверсия в апгрейд" if ru else "Upgrade conversion", notes.pct(rate[0], lang), ch,
               (f"{notes.integer(int(conv[0]['converted']), lang)} из {notes.integer(int(conv[0]['known']), lang)} кодов продления, "
                f"сгоревших {span}, получили апгрейд в течение {notes.count(window, 'day', lang, genitive=True)}; "
                f"по сравнению с 90 днями раньше" if ru else
                f"{notes.integer(int(conv[0]['converted']), lang)} of {notes.integer(int(conv[0]['known']), lang)} renewal codes "
                f"lapsed {span} were upgraded within {notes.count(window, 'day', lang)}; vs the 90 days before"), "04", dirn)]
    m = up.assign(month=pd.to_datetime(up["month"]).dt.tz_localize(None) if len(up) else up["month"]).set_index("month")
    row = {k: m.loc[k] if k in m.index else None for k in (cur, prev)}
    money = [int(row[k]["upgrade_payments_kop"]) if row[k] is not None else 0 for k in (cur, prev)]
    n_up = int(row[cur]["upgrades"]) if row[cur] is not None else 0
    ch, dirn = _rel(money[0], money[1], lang)
    mc = _month_label(cur, lang)
    out.append(Kpi("upgrade_revenue", "Выручка от апгрейдов" if ru else "Upgrade revenue", notes.rub(money[0], lang), ch,
                   (f"оплачено в {mc}: {notes.count(n_up, 'upgrade', lang)} (по дате акта); {vs}" if ru else
                    f"{notes.count(n_up, 'upgrade', lang)} paid in {mc} (by act date); {vs}"), "04", dirn))
    return out


def _revenue_kpis(rev: pd.DataFrame, cur: pd.Timestamp, prev: pd.Timestamp, lang: str, vs: str) -> list[Kpi]:
    ru = lang == "ru"
    month = pd.to_datetime(rev["month"])
    month = month.dt.tz_localize(None) if month.dt.tz is not None else month
    by = rev.assign(month=month).groupby("month")[["bookings_kop", "recognised_kop", "deferred_kop"]].sum()
    get = {k: by.loc[k] if k in by.index else pd.Series({"bookings_kop": 0, "recognised_kop": 0, "deferred_kop": 0}) for k in (cur, prev)}
    mc = _month_label(cur, lang)
    out = []
    for key, ru_l, en_l, ru_b, en_b in (
        ("bookings", "Поступления", "Bookings", "оплачено в {m} (по дате акта), все SKU и редакции",
         "paid in {m} (by act date), all SKUs and editions"),
        ("recognised", "Признанная выручка", "Recognised revenue", "признано в {m}; отложено на конец месяца: {d}",
         "recognised in {m}; deferred at the month end: {d}"),
    ):
        cur_v, prev_v = int(get[cur][f"{key}_kop"]), int(get[prev][f"{key}_kop"])
        ch, dirn = _rel(cur_v, prev_v, lang)
        basis = (ru_b if ru else en_b).format(m=mc, d=notes.rub(int(get[cur]["deferred_kop"]), lang))
        out.append(Kpi(key, ru_l if ru else en_l, notes.rub(cur_v, lang), ch, f"{basis}; {vs}", "01", dirn))
    return out


_CSS = """body{font-family:Segoe UI,Roboto,Arial,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(16em,1fr));gap:1em;margin:1em 0 2em}
.kpi{border:1px solid #ddd;border-radius:6px;padding:.8em 1em;text-decoration:none;color:inherit;display:block}
a.kpi:hover{border-color:#4a7bd0}.kpi .v{font-size:1.7em;font-weight:600;white-space:nowrap}
.kpi .c{font-size:.95em;margin-left:.4em;white-space:nowrap}.kpi .c.up{color:#1a7f37}.kpi .c.down{color:#b42318}
.kpi .b{font-size:.85em;color:#555;margin-top:.3em}.kpi .l{font-weight:600}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em .8em;text-align:left;vertical-align:top}
tr.failed td{background:#fdecea}.err{color:#b42318}code{font-size:.9em}.meta{color:#555;font-size:.9em}"""

_WORDS = {
    "ru": {"title": "Кассир 5 — отчёты по подпискам", "kpis": "Главное", "reports": "Отчёты", "report": "отчёт",
           "status": "статус", "as_of": "на дату", "fingerprint": "отпечаток данных", "params": "параметры",
           "finished": "готов", "ok": "готов", "failed": "ошибка", "defaults": "по умолчанию", "kept": "показан прошлый отчёт",
           "no_kpis": "Главные показатели не посчитаны", "window": "Окно: последний полный календарный месяц на дату отчёта "
           "и месяц до него; ставки — только по решённым исходам."},
    "en": {"title": "Кассир 5 — subscription reports", "kpis": "Headlines", "reports": "Reports", "report": "report",
           "status": "status", "as_of": "as of", "fingerprint": "data fingerprint", "params": "parameters",
           "finished": "finished", "ok": "ok", "failed": "failed", "defaults": "defaults", "kept": "the previous report is shown",
           "no_kpis": "Headline KPIs not computed", "window": "Window: the last complete calendar month at the report day and "
           "the month before; rates count decided outcomes only."},
}


def _kpi_html(k: Kpi, links: Mapping[str, str]) -> str:
    cls = "up" if k.direction > 0 else "down" if k.direction < 0 else ""
    inner = (f'<div class="l">{html.escape(k.label)}</div><div><span class="v">{html.escape(k.value)}</span>'
             f'<span class="c {cls}">{html.escape(k.change)}</span></div><div class="b">{html.escape(k.basis)}</div>')
    href = links.get(k.report)
    return f'<a class="kpi" href="{html.escape(href)}">{inner}</a>' if href else f'<div class="kpi">{inner}</div>'


def _one_line(text: str, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def index_html(runs: Mapping[str, Mapping[str, Any]], kpis: list[Kpi] | None, lang: str = "ru", kpi_error: str = "") -> str:
    """The summary page: headline KPIs (each linking to its report), then the reports with status, as_of and data fingerprint.

    >>> page = index_html({"01-x": {"status": "failed", "error": "<b>boom</b>\\nmore", "title": "X"}}, None, "en")
    >>> "&lt;b&gt;boom&lt;/b&gt; more" in page and "<b>boom" not in page
    True
    """
    w = _WORDS["ru" if lang == "ru" else "en"]
    links = {name[:2]: f"{name}.html" for name, r in runs.items() if r.get("html")}
    rows = []
    for name, r in sorted(runs.items()):
        title = html.escape(str(r.get("title") or name))
        link = f'<a href="{html.escape(name)}.html">{title}</a>' if r.get("html") else title
        ok = r.get("status") == "ok"
        status = html.escape(w["ok"] if ok else w["failed"])
        if r.get("error"):
            kept = f" ({w['kept']})" if r.get("html") else ""
            status += f'<div class="err" title="{html.escape(str(r["error"]))}">{html.escape(_one_line(r["error"]))}{kept}</div>'
        params = "<br>".join(f"{html.escape(str(k))} = {html.escape(repr(v))}" for k, v in r.get("parameters", {}).items())
        rows.append(
            f'<tr class="{"ok" if ok else "failed"}"><td>{link}<div class="meta"><code>{html.escape(name)}</code></div></td>'
            f"<td>{status}</td><td>{html.escape(_day(r.get('as_of'), lang))}</td>"
            f"<td><code>{html.escape(str(r.get('data_fingerprint', '')))}</code></td><td>{params or w['defaults']}</td>"
            f'<td class="meta">{html.escape(_finished(r.get("finished"), lang))} · '
            f'{notes.number(float(r.get("seconds", 0)), lang, 1)}{notes.NBSP}{"с" if lang == "ru" else "s"} · '
            f"{html.escape(str(r.get('version', '')))}</td></tr>"
        )
    if kpis:
        head = (f"<h2>{w['kpis']}</h2><div class=\"kpis\">{''.join(_kpi_html(k, links) for k in kpis)}</div>"
                f"<p class=\"meta\">{html.escape(w['window'])}</p>")
    elif kpi_error:
        head = f"<h2>{w['kpis']}</h2><p class=\"err\">{html.escape(w['no_kpis'])}: {html.escape(_one_line(kpi_error))}</p>"
    else:
        head = ""
    return f"""<!doctype html>
<html lang="{'ru' if lang == 'ru' else 'en'}"><head><meta charset="utf-8"><title>{html.escape(w['title'])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>
<h1>{html.escape(w['title'])}</h1>
{head}
<h2>{w['reports']}</h2>
<table><tr><th>{w['report']}</th><th>{w['status']}</th><th>{w['as_of']}</th><th>{w['fingerprint']}</th><th>{w['params']}</th>
<th>{w['finished']}</th></tr>
{''.join(rows)}
</table></body></html>
"""
