"""Money: bookings, recognised revenue, breakage and deferred revenue; upgrades; the cash outlook."""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
import pandas as pd

from .. import _kernel as K
from ..days import NO_DAY, NO_TIME, parse_instants, to_local_days
from ..pricing import parse_kopecks
from ..errors import MetricsError
from ..replay import Replay
from ..vocab import REN, SUB, UPG, CodeStatus, Edition, Outcome, Sku, categories

from ._common import RENEWALS, SUBSCRIPTIONS, as_of_day, to_days, exact_sums, month_index, select_rows, replay_view
from .outcomes import forgotten_codes, expiry_outcomes


def order_frame(rep: Replay) -> dict[str, np.ndarray]:
    """The money side of the ledger per order row: sku, edition, paid day, amount (kopecks)."""
    o = rep.ledger.orders
    tz = rep.catalog.timezone
    prep = rep.prepared
    paid_ns = parse_instants(o["paid_at"], tz, column="paid_at") if "paid_at" in o.columns else np.full(len(o), NO_TIME)
    amount = parse_kopecks(o["amount_rub"]) if "amount_rub" in o.columns else np.full(len(o), -1)
    return {
        "sku": prep.o_sku,
        "edition": prep.o_edition,
        "paid_day": to_local_days(paid_ns, tz),
        "amount": np.where(amount >= 0, amount, 0),
        "target": prep.o_target,
    }


@nb.njit(cache=True)
def recognise_spread(A, D, rs, g, ms, me, month_end, n_g):
    """Recognised kopecks per (month, group): each payment's floor(A·k/D) at its month ends, differenced."""
    rec = np.zeros((month_end.shape[0], n_g), np.int64)
    for i in range(A.shape[0]):
        prev = 0
        for m in range(ms[i], me[i] + 1):
            t = month_end[m]
            if D[i] == 0:
                cum = A[i] if t >= rs[i] else 0
            else:
                k = min(max(t - rs[i] + 1, 0), D[i])
                cum = (A[i] * k) // D[i]
            rec[m, g[i]] += cum - prev
            prev = cum
    return rec


def _lapsed_renewals(rep: Replay, as_of_d: int) -> tuple[np.ndarray, np.ndarray]:
    """Order rows of renewal codes lapsed by ``as_of_d`` (R7), and their lapse days (deadline + 1)."""
    c = rep.codes
    status = c["status"]
    codes = status.cat.codes.to_numpy() if isinstance(status.dtype, pd.CategoricalDtype) else None
    gone = [CodeStatus.LAPSED, CodeStatus.UPGRADED]
    is_gone = (np.isin(status.astype("str").to_numpy(), [s.value for s in gone]) if codes is None
               else np.isin(codes, [s.code for s in gone]))
    deadline = to_days(c["deadline"])
    rows = np.flatnonzero((rep.prepared.o_sku == REN) & is_gone & (deadline != NO_DAY))
    lapse = K.lapse_days(deadline[rows])
    keep = lapse <= as_of_d
    return rows[keep], lapse[keep]


def _recognition_periods(rep: Replay, o: dict[str, np.ndarray], v: Any) -> np.ndarray:
    """Per order row, the period (row of ``v``) its payment is recognised over, or -1: its own, or
    (an upgraded renewal) the upgrade's."""
    period_of = np.full(len(o["sku"]), -1, np.int64)
    own = v.order >= 0
    period_of[v.order[own]] = np.flatnonzero(own)
    ups = np.flatnonzero((o["sku"] == UPG) & (o["target"] >= 0) & (period_of >= 0))
    tgt = o["target"][ups]
    free = period_of[tgt] < 0
    period_of[tgt[free]] = period_of[ups[free]]
    return period_of


def _breakage(rep: Replay, o: dict[str, np.ndarray], v: Any, period_of: np.ndarray, as_of_d: int) -> tuple[np.ndarray, ...]:
    """Breakage events (rules §6): (order rows, days, signed kopecks). A lapsed renewal's payment breaks on
    the lapse day (or its paid day, if later); when an upgrade converts the code, it is reversed on the
    upgrade's activation day and recognised with the upgrade instead."""
    rows, lapse = _lapsed_renewals(rep, as_of_d)
    paid = o["paid_day"][rows]
    ok = (paid != NO_DAY) & (paid <= as_of_d)
    rows, lapse, paid = rows[ok], lapse[ok], paid[ok]
    brk_day = np.maximum(lapse, paid)
    pi = period_of[rows]
    up = pi >= 0
    rev_day = v.act[pi[up]]
    amount = o["amount"]
    return (np.concatenate([rows, rows[up]]), np.concatenate([brk_day, rev_day]),
            np.concatenate([amount[rows], -amount[rows[up]]]))


#: Money columns of :func:`revenue`, in integer kopecks.
REVENUE_COLUMNS = ("bookings_kop", "recognised_kop", "breakage_kop", "deferred_kop")


def revenue(rep: Replay, as_of: Any = None, *, edition: str | None = None, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Bookings, recognised revenue, breakage and deferred revenue by month (integer kopecks, rules §6).

    Bookings are amounts by paid (act) date. Each paid amount is recognised evenly over
    the coverage days its activation added — an upgraded renewal's payment together with
    the upgrade's, over the upgrade's period. The payment of a renewal code that lapsed is
    *breakage* on the lapse day (deadline + 1); if an upgrade later converts the code, the
    breakage is reversed on the upgrade's activation day (a negative ``breakage_kop``) and
    the payment is spread with the upgrade's. A payment whose code is neither activated nor
    lapsed stays deferred. Integer arithmetic: through day ``t`` a payment ``A`` spread over
    ``D`` days has recognised ``floor(A * k / D)`` after ``k`` days, so nothing is lost to
    rounding. One row per month, SKU and edition: ``month, sku, edition, bookings_kop,
    recognised_kop, breakage_kop, deferred_kop`` (deferred = balance at the month end). At
    every month end, cumulative bookings = cumulative recognised + cumulative breakage +
    deferred, to the kopeck. ``edition``, ``start`` and ``end`` (months) filter the rows.

    >>> revenue(rep)[["month", "bookings_kop", "breakage_kop", "deferred_kop"]]  # doctest: +SKIP
    """
    as_of = as_of_day(rep, as_of)
    as_of_d = int(to_days(pd.Series([as_of]))[0])
    o = order_frame(rep)
    cols = ["month", "sku", "edition", *REVENUE_COLUMNS]
    paid = np.flatnonzero((o["paid_day"] != NO_DAY) & (o["paid_day"] <= as_of_d))
    if not len(paid):
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in cols[3:] else "object") for c in cols})
    v = replay_view(rep, as_of)
    period_of = _recognition_periods(rep, o, v)
    pi = period_of[paid]
    active = pi >= 0
    A = o["amount"][paid]
    n_e = len(Edition) + 1  # the editions and "unknown"
    group = o["sku"] * n_e + np.where(o["edition"] >= 0, o["edition"], n_e - 1)  # sku × edition, per order row
    g = group[paid]
    m0 = int(month_index(np.array([min(int(o["paid_day"][paid].min()), int(v.start.min()) if len(v.start) else as_of_d)]))[0])
    m_last = int(month_index(np.array([as_of_d]))[0])
    n_m = m_last - m0 + 1
    month_end = np.minimum(((np.arange(m0, m_last + 1) + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - 1), as_of_d)
    # Recognition: expand each active payment into the month ends its span crosses.
    s_day = np.where(active, v.start[np.maximum(pi, 0)], 0)
    D = np.where(active, v.end[np.maximum(pi, 0)], 0) - s_day
    rs = np.where(D > 0, s_day, np.where(active, v.act[np.maximum(pi, 0)], 0))  # no day added: recognised on activation
    last = np.where(D > 0, rs + D - 1, rs)
    a_idx = np.flatnonzero(active & (rs <= as_of_d))
    ms = month_index(rs[a_idx]) - m0
    me = np.minimum(month_index(np.minimum(last[a_idx], as_of_d)) - m0, n_m - 1)
    n_g = len(Sku) * n_e
    rec = recognise_spread(A[a_idx], D[a_idx], rs[a_idx], g[a_idx], ms, me, month_end, n_g)
    book = exact_sums((month_index(o["paid_day"][paid]) - m0) * n_g + g, A, n_m * n_g).reshape(n_m, n_g)
    b_rows, b_day, b_amount = _breakage(rep, o, v, period_of, as_of_d)
    brk = _signed_sums((month_index(b_day) - m0) * n_g + group[b_rows], b_amount, n_m * n_g).reshape(n_m, n_g)
    deferred = np.cumsum(book, axis=0) - np.cumsum(rec, axis=0) - np.cumsum(brk, axis=0)
    used = np.flatnonzero(book.any(axis=0) | rec.any(axis=0) | brk.any(axis=0))
    months = np.arange(m0, m_last + 1).astype("datetime64[M]").astype("datetime64[ns]")
    sku_names = categories(Sku)
    ed_names = [*categories(Edition), "unknown"]
    out = pd.DataFrame(
        {
            "month": np.tile(months, len(used)),
            "sku": np.repeat([sku_names[j // n_e] for j in used], n_m),
            "edition": np.repeat([ed_names[j % n_e] for j in used], n_m),
            **{c: x[:, used].T.ravel() for c, x in zip(REVENUE_COLUMNS, (book, rec, brk, deferred), strict=True)},
        }
    )
    out = out.sort_values(["month", "sku", "edition"], ignore_index=True)
    return select_rows(out, "month", edition, start, end).reset_index(drop=True)


def _signed_sums(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Exact integer sums by index of values of either sign."""
    out = np.zeros(size, np.int64)
    np.add.at(out, index, values)
    return out


def _conversion_flags(fr: pd.DataFrame, as_of: pd.Timestamp, upgrade_window_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Per lapsed renewal code: whether its conversion is known (lapse + window <= as_of) and, if so,
    whether an upgrade converted it within the window."""
    known = (fr["lapsed_on"] + pd.Timedelta(days=upgrade_window_days) <= as_of).to_numpy()
    days = fr["days_to_upgrade"]
    within = days.notna().to_numpy() & (days.fillna(upgrade_window_days + 1).to_numpy() <= upgrade_window_days)
    return known, known & within


def upgrade_conversion(
    rep: Replay, as_of: Any = None, by: str | None = None, *, upgrade_window_days: int = 90, churn_horizon_days: int = 365,
    edition: str | None = None, start: Any = None, end: Any = None,
    forgotten: tuple[np.ndarray, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Upgrade conversion (rules §6): lapsed renewal codes upgraded within ``upgrade_window_days`` of the lapse,
    over the codes whose lapse + window <= ``as_of``.

    Lapsed codes of ``edition`` with ``start <= lapsed_on <= end``, grouped by ``by``
    (``None``: one row; ``"month"``, ``"quarter"`` of the lapse; ``"edition"``). Columns:
    the group, ``lapsed`` (codes), ``lapsed_from`` / ``lapsed_to`` (their window), ``known``
    (lapse + window on or before ``as_of``), ``known_to`` (the last lapse they cover),
    ``converted`` (known and upgraded within the window), ``conversion_rate`` = converted /
    known (NaN without known codes), ``upgrade_window_days``.

    >>> upgrade_conversion(rep, by="quarter")  # doctest: +SKIP
    """
    as_of = as_of_day(rep, as_of)
    _, fr = forgotten if forgotten is not None else forgotten_codes(rep, as_of, churn_horizon_days)
    fr = select_rows(fr[(fr["lapsed_on"] <= as_of).to_numpy()], "lapsed_on", edition, start, end)
    known, conv = _conversion_flags(fr, as_of, upgrade_window_days)
    if by is None:
        key = pd.Series("all", index=fr.index, name="group")
    elif by == "edition":
        key = fr["edition"].rename("edition")
    elif by in ("month", "quarter"):
        key = fr["lapsed_on"].dt.to_period("M" if by == "month" else "Q").dt.start_time.rename(by)
    else:
        msg = f"upgrade_conversion: by={by!r} is not one of None, 'edition', 'month', 'quarter'; pass one of them"
        raise MetricsError(msg)
    lapse = fr["lapsed_on"]
    frame = pd.DataFrame({"lapsed": 1, "known": known, "converted": conv, "lapsed_from": lapse, "lapsed_to": lapse,
                          "known_to": lapse.where(known)}, index=fr.index)
    out = frame.groupby(key, observed=True, sort=True).agg(
        lapsed=("lapsed", "sum"), lapsed_from=("lapsed_from", "min"), lapsed_to=("lapsed_to", "max"),
        known=("known", "sum"), known_to=("known_to", "max"), converted=("converted", "sum"))
    out = out.astype({"lapsed": np.int64, "known": np.int64, "converted": np.int64})
    out["conversion_rate"] = (out["converted"] / out["known"]).where(out["known"] > 0)
    out["upgrade_window_days"] = upgrade_window_days
    return out.reset_index()


def upgrade_revenue(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, forgotten: tuple[np.ndarray, pd.DataFrame] | None = None,
    *, upgrade_window_days: int = 90, edition: str | None = None, start: Any = None, end: Any = None,
) -> pd.DataFrame:
    """Upgrade payments by the month they were paid, and conversions of lapsed renewals by the month of the lapse.

    One row per month. By **paid month**: ``upgrades`` (upgrade orders paid) and
    ``upgrade_payments_kop`` (what they paid, integer kopecks) — the money an upgrade
    brings beyond the renewal payment already received before the lapse. By **lapse
    month**: ``lapsed_renewals`` (renewal codes that lapsed), ``known`` (lapse +
    ``upgrade_window_days`` on or before ``as_of``), ``converted`` (known and upgraded
    within the window) and ``conversion_rate`` = converted / known, NaN for months not yet
    known. ``forgotten`` takes the result of ``forgotten_codes`` when it is already at hand;
    ``edition``, ``start`` and ``end`` (months) filter.

    >>> upgrade_revenue(rep)[["month", "upgrade_payments_kop", "known", "conversion_rate"]]  # doctest: +SKIP
    """
    as_of = as_of_day(rep, as_of)
    as_of_d = int(to_days(pd.Series([as_of]))[0])
    o = order_frame(rep)
    cols = ["month", "upgrades", "upgrade_payments_kop", "lapsed_renewals", "known", "converted", "conversion_rate"]
    ed_ok = np.ones(len(o["sku"]), bool) if edition in (None, "", "all") else o["edition"] == Edition(edition).code
    up = np.flatnonzero((o["sku"] == UPG) & (o["paid_day"] != NO_DAY) & (o["paid_day"] <= as_of_d) & ed_ok)
    _, fr = forgotten if forgotten is not None else forgotten_codes(rep, as_of, churn_horizon_days)
    fr = select_rows(fr[(fr["lapsed_on"] <= as_of).to_numpy()], "lapsed_on", edition)
    lapse_m = month_index(to_days(fr["lapsed_on"])) if len(fr) else np.empty(0, np.int64)
    paid_m = month_index(o["paid_day"][up])
    allm = np.concatenate([lapse_m, paid_m])
    if not len(allm):
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "month" else "float64") for c in cols})
    m0, m1 = int(allm.min()), int(allm.max())
    n = m1 - m0 + 1
    known, conv = _conversion_flags(fr, as_of, upgrade_window_days)
    out = pd.DataFrame(
        {
            "month": np.arange(m0, m1 + 1).astype("datetime64[M]").astype("datetime64[ns]"),
            "upgrades": np.bincount(paid_m - m0, minlength=n),
            "upgrade_payments_kop": exact_sums(paid_m - m0, o["amount"][up], n),
            "lapsed_renewals": np.bincount(lapse_m - m0, minlength=n),
            "known": np.bincount(lapse_m - m0, weights=known, minlength=n).astype(np.int64),
            "converted": np.bincount(lapse_m - m0, weights=conv, minlength=n).astype(np.int64),
        }
    )
    out["conversion_rate"] = (out["converted"] / out["known"]).where(out["known"] > 0)
    return select_rows(out[cols], "month", None, start, end).reset_index(drop=True)


def expiry_calendar(
    rep: Replay, as_of: Any = None, weeks: int = 26, churn_horizon_days: int = 365, lookback_days: int = 365,
    outcomes: pd.DataFrame | None = None, *, edition: str | None = None,
) -> pd.DataFrame:
    """Upcoming term ends by week, with the renewal cash to expect from observed rates.

    For each week after ``as_of`` and edition: ``expiries`` (licenses whose current end
    falls in the week and that have not renewed early yet), and ``expected_cash_kop``
    (integer kopecks): expiries × Σ over follow-ups of (their observed share) × (the catalog
    price they pay at the end day). The shares come from the last ``lookback_days`` of ends
    whose fate is fully known (``end + churn_horizon_days <= as_of``): recent ends would
    count their renewals but not yet their churn.

    >>> expiry_calendar(rep)[["week", "expiries", "expected_cash_kop"]]  # doctest: +SKIP
    """
    as_of = as_of_day(rep, as_of)
    df = outcomes if outcomes is not None else expiry_outcomes(rep, as_of, churn_horizon_days)
    cols = ["week", "edition", "expiries", "expected_cash_kop"]
    mature = as_of - pd.Timedelta(days=churn_horizon_days)
    recent = df[(df["end"] > mature - pd.Timedelta(days=lookback_days)) & (df["end"] <= mature)]
    upcoming = df[(df["end"] > as_of) & (df["end"] <= as_of + pd.Timedelta(weeks=weeks)) & df["outcome"].eq(Outcome.OPEN)]
    if upcoming.empty:
        return pd.DataFrame({"week": pd.Series(dtype="datetime64[ns]"), "edition": pd.Series(dtype="str"),
                             "expiries": pd.Series(dtype="int64"), "expected_cash_kop": pd.Series(dtype="int64")})
    prices = rep.catalog.price_table()
    ver = rep.catalog.version_index(to_days(upcoming["end"]))
    ed_idx = np.maximum(pd.Categorical(upcoming["edition"].astype("str"), categories=categories(Edition)).codes, 0)  # unknown: priced as full
    pay = {  # what each follow-up pays, per expiry (kopecks): renewal, subscription, renewal + upgrade
        "renewal": prices[ver, ed_idx, REN],
        "subscription": prices[ver, ed_idx, SUB],
        "upgrade": prices[ver, ed_idx, REN] + prices[ver, ed_idx, UPG],
    }
    kinds = {"renewal": RENEWALS, "subscription": SUBSCRIPTIONS, "upgrade": (Outcome.UPGRADE.value,)}
    exp_cash = np.zeros(len(upcoming))
    for ed_name, e_i in ((e.value, e.code) for e in Edition):
        r = recent[(recent["edition"] == ed_name).to_numpy()]
        n = max(len(r), 1)
        m = ed_idx == e_i
        for k, outs in kinds.items():
            exp_cash[m] += r["outcome"].isin(outs).sum() / n * pay[k][m]
    up = upcoming.assign(week=upcoming["end"].dt.to_period("W-SUN").dt.start_time, expected_cash_kop=np.rint(exp_cash).astype(np.int64))
    out = up.groupby(["week", "edition"], observed=True).agg(expiries=("license_id", "size"),
                                                            expected_cash_kop=("expected_cash_kop", "sum"))
    return select_rows(out.reset_index()[cols], "week", edition).reset_index(drop=True)
