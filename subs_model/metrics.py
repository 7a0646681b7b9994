"""Metrics of a replay (the rules' §6): pure functions of a :class:`~subs_model.replay.Replay`.

Every function takes a replay (simulated or real) and returns tidy DataFrames; nothing
here draws or writes. Money is integer kopecks. The central table is
:func:`expiry_outcomes` — one row per term end with its fate — from which renewal
timing, grace usage, forgotten renewals and cohort retention are counted.

Definitions
-----------
- Every period's ``end`` is a *term end*; its fate is decided by the license's next
  period (in start order), activated on day ``a``, seen up to ``as_of``;
  ``deadline = end + grace_days - 1`` (the version in force governs).
- ``offset = a - end``; ``uncovered_days = next start - end``.
- *renewal rate* = (all outcomes but churned and open) / (all but open); the *grace
  renewal rate* counts only ``grace_renewal`` and ``grace_subscription`` in the numerator.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import pandas as pd

from . import _kernel as K
from .days import NO_DAY, NO_TIME, as_day, parse_instants, to_local_days
from .pricing import parse_kopecks
from .replay import Replay, first_activations
from .vocab import (
    LEGACY,
    OUTCOMES,
    REN,
    SUB,
    UPG,
    CodeStatus,
    Edition,
    ForgottenFate,
    ForgottenKind,
    Outcome,
    Reason,
    Sku,
    Source,
    categories,
)

__all__ = [
    "OUTCOMES",
    "Outcome",
    "active_licenses",
    "cohort_retention",
    "expiry_calendar",
    "expiry_competing_risks",
    "expiry_outcomes",
    "forgotten_renewals",
    "forgotten_summary",
    "grace_usage",
    "km_by_group",
    "lead_times",
    "outcome_counts",
    "renewal_timing",
    "revenue",
    "upgrade_revenue",
]

DAY = np.timedelta64(1, "D")


RENEWED = tuple(o.value for o in Outcome if o not in (Outcome.CHURNED, Outcome.OPEN))
IN_GRACE = (Outcome.GRACE_RENEWAL.value, Outcome.GRACE_SUBSCRIPTION.value)
RENEWALS = (Outcome.EARLY_RENEWAL.value, Outcome.GRACE_RENEWAL.value)
SUBSCRIPTIONS = (Outcome.EARLY_SUBSCRIPTION.value, Outcome.GRACE_SUBSCRIPTION.value, Outcome.LATE_SUBSCRIPTION.value)


def _int_na(values: np.ndarray, valid: np.ndarray) -> pd.arrays.IntegerArray:
    """Nullable integers: ``values`` where ``valid``, else NA."""
    v = np.where(valid, values, 0).astype(np.int64)
    return pd.arrays.IntegerArray(v, ~np.asarray(valid, dtype=bool))


def _as_of(rep: Replay, as_of: Any) -> pd.Timestamp:
    if as_of is None:
        return rep.as_of
    day = pd.Timestamp(np.datetime64(as_day(as_of, rep.catalog.timezone), "D"))
    return min(day, rep.as_of)


def _days(col: pd.Series) -> np.ndarray:
    """datetime64 column → int days (NaT → NO_DAY)."""
    v = col.to_numpy(dtype="datetime64[ns]")
    out = v.astype("datetime64[D]").astype(np.int64)
    out[np.isnat(v)] = NO_DAY
    return out


@dataclass(frozen=True, slots=True)
class _View:
    """Periods seen as of a day, as integer columns (rows in the replay's license/start order)."""

    rows: np.ndarray  # positions in rep.periods
    lic: np.ndarray  # license rank
    order: np.ndarray  # order row, -1 legacy
    start: np.ndarray
    end: np.ndarray
    act: np.ndarray  # activation day, NO_DAY for legacy
    src: np.ndarray  # Source codes
    edition: np.ndarray  # per row: Edition codes, -1 unknown


def _view(rep: Replay, as_of: pd.Timestamp) -> _View:
    p = rep.periods
    src = p["source"].cat.codes.to_numpy().astype(np.int64) if isinstance(p["source"].dtype, pd.CategoricalDtype) else (
        pd.Categorical(p["source"].astype("str"), categories=categories(Source)).codes.astype(np.int64)
    )
    start, end, act = _days(p["start"]), _days(p["end"]), _days(p["activated_on"])
    as_of_d = int(_days(pd.Series([as_of]))[0])
    legacy = src == LEGACY
    seen = np.where(legacy, start <= as_of_d, act <= as_of_d)
    rows = np.flatnonzero(seen)
    keys = rep.keys
    lic = keys["license"][rows] if "license" in keys else pd.factorize(p["license_id"])[0][rows]
    order = keys["order"][rows] if "order" in keys else np.full(len(rows), -1, np.int64)
    prep = rep.prepared
    edition = prep.license_edition[lic] if len(lic) else np.empty(0, np.int64)
    return _View(rows, lic, order, start[rows], end[rows], act[rows], src[rows], edition)


def _month_start(col: pd.Series) -> np.ndarray:
    """First day of each timestamp's month (datetime64[ns]), without Period objects."""
    return _month_starts_ns(_month_index(_days(col)))


def _to_dt(days: np.ndarray) -> np.ndarray:
    from .days import days_to_datetime

    return days_to_datetime(days)


def _group_first(lic: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the value at the first row of its (contiguous) license group."""
    if not len(lic):
        return values
    starts = np.r_[True, lic[1:] != lic[:-1]]
    return values[np.flatnonzero(starts)][np.cumsum(starts) - 1]


def expiry_outcomes(rep: Replay, as_of: Any = None, churn_horizon_days: int = 365) -> pd.DataFrame:
    """One row per term end with its outcome (rules §6).

    Columns: ``license_id, edition, end, deadline, outcome, offset_days, uncovered_days,
    next_source, next_start, reactivated, cohort, catalog_version``. ``open`` only where the
    fate is not yet known at ``as_of``; an end less than ``churn_horizon_days`` before
    ``as_of`` is never ``churned``. A churned license that came back later is
    ``reactivated`` (it stays in its original cohort).

    >>> out = expiry_outcomes(rep)  # doctest: +SKIP
    >>> out["outcome"].value_counts()  # doctest: +SKIP
    """
    as_of = _as_of(rep, as_of)
    v = _view(rep, as_of)
    n = len(v.rows)
    same_next = np.zeros(n, bool)
    if n > 1:
        same_next[:-1] = v.lic[1:] == v.lic[:-1]
    nxt = np.flatnonzero(same_next) + 1
    end = v.end
    a = np.full(n, NO_DAY, np.int64)
    start_next = np.full(n, NO_DAY, np.int64)
    src_next = np.full(n, -1, np.int64)
    a[same_next] = v.act[nxt]
    start_next[same_next] = v.start[nxt]
    src_next[same_next] = v.src[nxt]
    knobs = rep.catalog.knob_arrays()
    deadline = K.renewal_deadlines(end, knobs["from_day"], knobs["grace"])
    in_window = ~K.windows_closed(end, a, knobs["from_day"], knobs["grace"])  # R4: a <= deadline
    as_of_d = int(_days(pd.Series([as_of]))[0])
    has = same_next & (a != NO_DAY)
    offset = np.where(has, a - end, 0)
    within = has & (offset <= churn_horizon_days)
    code = np.full(n, Outcome.OPEN.code, np.int64)
    early = a < end
    ren, sub, upg = src_next == REN, src_next == SUB, src_next == UPG
    code[within & ren & early] = Outcome.EARLY_RENEWAL.code
    code[within & ren & ~early] = Outcome.GRACE_RENEWAL.code
    code[within & sub & early] = Outcome.EARLY_SUBSCRIPTION.code
    code[within & sub & ~early & in_window] = Outcome.GRACE_SUBSCRIPTION.code
    code[within & upg] = Outcome.UPGRADE.code
    code[within & sub & ~in_window] = Outcome.LATE_SUBSCRIPTION.code
    decided_churn = (~within) & (end + churn_horizon_days <= as_of_d)
    code[decided_churn] = Outcome.CHURNED.code
    versions = [x.label for x in rep.catalog.versions]
    cohort = _month_starts_ns(_month_index(_group_first(v.lic, v.start)))
    return pd.DataFrame(
        {
            "license_id": rep.periods["license_id"].iloc[v.rows].reset_index(drop=True),
            "edition": pd.Categorical.from_codes(v.edition, categories=categories(Edition)),
            "end": _to_dt(end),
            "deadline": _to_dt(deadline),
            "outcome": pd.Categorical.from_codes(code, categories=list(OUTCOMES)),
            "offset_days": _int_na(offset, has),
            "uncovered_days": _int_na(np.maximum(start_next - end, 0), same_next),
            "next_source": pd.Categorical.from_codes(src_next, categories=categories(Source)),
            "next_start": _to_dt(start_next),
            "reactivated": decided_churn & has,
            "cohort": cohort,
            "catalog_version": pd.Categorical.from_codes(rep.catalog.version_index(end) if n else np.empty(0, np.int64), categories=versions),
        }
    )


@dataclass(frozen=True, slots=True)
class RenewalTiming:
    """Offsets of decided renewals and rates by group (see :func:`renewal_timing`)."""

    offsets: pd.DataFrame
    rates: pd.DataFrame


def _rates(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    outcome = df["outcome"]
    small = pd.DataFrame({c: df[c] for c in by})
    small["expiries"] = 1
    small["open"] = outcome.eq("open").to_numpy()
    small["churned"] = outcome.eq("churned").to_numpy()
    small["renewed"] = outcome.isin(RENEWED).to_numpy()
    small["in_grace"] = outcome.isin(IN_GRACE).to_numpy()
    small["renewals"] = outcome.isin(RENEWALS).to_numpy()
    out = small.groupby(by, observed=True, sort=True).sum().astype(np.int64)
    decided = out["expiries"] - out["open"]
    out["decided"] = decided
    out["renewal_rate"] = (out["renewed"] / decided).where(decided > 0)
    out["grace_renewal_rate"] = (out["in_grace"] / decided).where(decided > 0)
    out["complete"] = out["open"] == 0
    return out.reset_index()


def renewal_timing(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, by: tuple[str, ...] = ("expiry_month", "edition"),
    outcomes: pd.DataFrame | None = None,
) -> RenewalTiming:
    """When customers renew relative to the end, and renewal rates by group.

    ``offsets``: counts of decided continuations by ``offset_days``, ``outcome`` and
    ``edition``. ``rates``: per group of ``by`` (any of ``expiry_month``, ``edition``,
    ``cohort``): expiries, decided, open, churned, renewed, in_grace, renewal_rate,
    grace_renewal_rate, and ``complete`` (every expiry of the group decided — a month
    is final only then).
    """
    df = outcomes if outcomes is not None else expiry_outcomes(rep, as_of, churn_horizon_days)
    cols = ["outcome", "offset_days", "edition", *[c for c in by if c in df.columns]]
    df = df[list(dict.fromkeys(cols))].assign(expiry_month=_month_start(df["end"]))
    cont = df.loc[df["offset_days"].notna().to_numpy() & df["outcome"].isin(RENEWED).to_numpy(), ["offset_days", "outcome", "edition"]]
    offsets = (
        cont.groupby(["offset_days", "outcome", "edition"], observed=True)
        .size()
        .rename("count")
        .reset_index()
        .astype({"offset_days": "int64"})
    )
    return RenewalTiming(offsets=offsets, rates=_rates(df, list(by)))


@dataclass(frozen=True, slots=True)
class GraceUsage:
    """Grace-window use (see :func:`grace_usage`)."""

    by_day: pd.DataFrame
    summary: pd.DataFrame
    features: pd.DataFrame


def grace_usage(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, features: pd.DataFrame | None = None,
    outcomes: pd.DataFrame | None = None,
) -> GraceUsage:
    """How the grace window is used, and what customers were without meanwhile (R1).

    ``by_day``: renewals (and subscriptions) activated on each grace day (0 = the end
    day), with their share of all in-grace continuations. ``summary``: per edition, the
    number of in-grace continuations, their total and mean uncovered days. ``features``:
    each subscription-only feature released while a license sat uncovered in its grace
    window, with the number of such licenses.
    """
    df = outcomes if outcomes is not None else expiry_outcomes(rep, as_of, churn_horizon_days)
    g = df[df["outcome"].isin(IN_GRACE)]
    by_day = g.groupby(["offset_days", "outcome"], observed=True).size().rename("count").reset_index()
    by_day["offset_days"] = by_day["offset_days"].astype("int64")
    by_day["share"] = by_day["count"] / max(len(g), 1)
    summary = (
        g.groupby("edition", observed=False)
        .agg(in_grace=("license_id", "size"), uncovered_days=("uncovered_days", "sum"))
        .reset_index()
    )
    summary["uncovered_days"] = summary["uncovered_days"].astype("int64")
    summary["uncovered_per_renewal"] = (summary["uncovered_days"] / summary["in_grace"]).where(summary["in_grace"] > 0)
    table = features if features is not None else rep.ledger.features
    cols = ["feature_id", "name", "released_on", "licenses_uncovered"]
    if table is None or g.empty:
        feats = pd.DataFrame({c: pd.Series(dtype="object") for c in cols[:3]} | {"licenses_uncovered": pd.Series(dtype="int64")})
    else:
        flag = table["requires_subscription"].astype("str").str.lower().isin(["true", "1", "yes"])
        t = table[flag]
        rel = pd.to_datetime(t["released_on"].astype("str")).to_numpy(dtype="datetime64[ns]")
        gaps_s = g["end"].to_numpy()
        gaps_e = g["next_start"].to_numpy()
        counts = [int(((gaps_s <= r) & (r < gaps_e)).sum()) for r in rel]  # a handful of features
        feats = pd.DataFrame(
            {"feature_id": t["feature_id"].astype("str").to_numpy(), "name": t["name"].astype("str").to_numpy(),
             "released_on": rel, "licenses_uncovered": np.array(counts, dtype=np.int64)}
        )
    return GraceUsage(by_day=by_day, summary=summary, features=feats)


def forgotten_renewals(rep: Replay, as_of: Any = None, churn_horizon_days: int = 365) -> pd.DataFrame:
    """Lapsed renewal codes (R7) and what became of them.

    One row per renewal code that lapsed: ``code, order_id, license_id, edition, kind``
    (``never_activated`` or ``rejected_late``), ``lapsed_on`` (the day after the
    deadline), ``fate`` (``upgraded``, ``replaced_by_subscription``, ``churned``, ``open``)
    and ``days_to_upgrade`` (from the lapse to the upgrade's activation).
    """
    return _forgotten(rep, as_of, churn_horizon_days)[1]


def _forgotten(rep: Replay, as_of: Any, churn_horizon_days: int) -> tuple[np.ndarray, pd.DataFrame]:
    as_of = _as_of(rep, as_of)
    as_of_d = int(_days(pd.Series([as_of]))[0])
    prep = rep.prepared
    c = rep.codes
    status = c["status"].cat.codes.to_numpy() if isinstance(c["status"].dtype, pd.CategoricalDtype) else None
    gone = [CodeStatus.LAPSED, CodeStatus.UPGRADED]
    is_lapsed = (np.isin(c["status"].astype("str").to_numpy(), [s.value for s in gone]) if status is None
                 else np.isin(status, [s.code for s in gone]))
    deadline = _days(c["deadline"])
    rows = np.flatnonzero((prep.o_sku == REN) & is_lapsed & (deadline != NO_DAY))
    lapse = K.lapse_days(deadline[rows])
    rej = rep.rejections
    late = (rej["reason"] == Reason.RENEWAL_AFTER_DEADLINE).to_numpy()
    if "rejection_order" in rep.keys:
        tried = np.isin(rows, rep.keys["rejection_order"][late])
    else:
        tried = c["code"].iloc[rows].isin(rej.loc[late, "code"]).to_numpy()
    # The upgrade that converted each renewal, and its activation day.
    act_day = _days(c["activated_on"])
    up_rows = np.flatnonzero((prep.o_sku == UPG) & (prep.o_target >= 0) & (act_day != NO_DAY) & (act_day <= as_of_d))
    upgraded_by = np.full(len(prep.o_sku), -1, np.int64)
    upgraded_by[prep.o_target[up_rows]] = up_rows
    up = upgraded_by[rows]
    up_code = up >= 0
    up_day = np.where(up_code, act_day[np.maximum(up, 0)], NO_DAY)
    # Next coverage of the license activated on or after the lapse (non-legacy periods are in
    # activation order within a license, so one searchsorted over (license, day) keys finds it).
    v = _view(rep, as_of)
    keep = v.src != LEGACY
    big = np.int64(1 << 32)
    key = v.lic[keep] * big + v.act[keep]
    lic = prep.o_lic[rows]
    j = np.searchsorted(key, lic * big + lapse, side="left")
    jj = np.minimum(j, max(len(key) - 1, 0))
    found = (j < len(key)) & (key[jj] // big == lic) if len(key) else np.zeros(len(rows), bool)
    nxt_src = np.where(found, v.src[keep][jj] if len(key) else 0, -1)
    nxt_day = np.where(found, v.act[keep][jj] if len(key) else 0, NO_DAY)
    fate = np.full(len(rows), ForgottenFate.OPEN.code, np.int64)
    fate[lapse + churn_horizon_days <= as_of_d] = ForgottenFate.CHURNED.code
    fate[(nxt_src == SUB) & (nxt_day - lapse <= churn_horizon_days)] = ForgottenFate.REPLACED_BY_SUBSCRIPTION.code
    fate[up_code] = ForgottenFate.UPGRADED.code
    return rows, pd.DataFrame(
        {
            "code": c["code"].iloc[rows].reset_index(drop=True),
            "order_id": c["order_id"].iloc[rows].reset_index(drop=True),
            "license_id": c["license_id"].iloc[rows].reset_index(drop=True),
            "edition": pd.Categorical.from_codes(prep.o_edition[rows], categories=categories(Edition)),
            "kind": pd.Categorical.from_codes(np.where(tried, ForgottenKind.REJECTED_LATE.code, ForgottenKind.NEVER_ACTIVATED.code),
                                              categories=categories(ForgottenKind)),
            "lapsed_on": _to_dt(lapse),
            "fate": pd.Categorical.from_codes(fate, categories=categories(ForgottenFate)),
            "days_to_upgrade": _int_na(up_day - lapse, up_code),
        }
    )


def _order_frame(rep: Replay) -> dict[str, np.ndarray]:
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


def _month_index(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of int days (``NO_DAY`` → ``NO_DAY``).

    Many days span few dates: they read a table of the span's months (numpy's day → month
    conversion costs about 40 ns a value; a table lookup a few).
    """
    days = np.asarray(days, dtype=np.int64)
    if len(days) >= 4096:
        lo, hi = int(days.min()), int(days.max())
        if lo != NO_DAY and hi - lo < len(days):
            table = np.arange(lo, hi + 1).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
            return table[days - lo]
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _month_starts_ns(months: np.ndarray) -> np.ndarray:
    """First instant (datetime64[ns]) of each month index (``NO_DAY`` → NaT)."""
    months = np.asarray(months, dtype=np.int64)
    ok = months != NO_DAY
    if len(months) >= 4096 and ok.all():
        lo, hi = int(months.min()), int(months.max())
        table = np.arange(lo, hi + 1).astype("datetime64[M]").astype("datetime64[ns]")
        return table[months - lo]
    return months.astype("datetime64[M]").astype("datetime64[ns]")


def _exact_sums(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Integer sums by index. ``bincount`` adds in float64, exact while every partial sum
    stays below 2**53 kopecks (about 90 trillion rubles); checked, with an exact fallback."""
    if not len(values):
        return np.zeros(size, np.int64)
    if np.abs(values).sum(dtype=np.float64) < 2.0**52:
        return np.rint(np.bincount(index, weights=values.astype(np.float64), minlength=size)).astype(np.int64)
    out = np.zeros(size, np.int64)
    np.add.at(out, index, values)
    return out


@nb.njit(cache=True)
def _recognise(A, D, rs, g, ms, me, month_end, n_g):
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


def revenue(rep: Replay, as_of: Any = None) -> pd.DataFrame:
    """Bookings, recognised and deferred revenue by month (kopecks, rules §6).

    Bookings are amounts by paid (act) date. Each paid amount is recognised evenly over
    the coverage days its activation added — an upgraded renewal's payment together with
    the upgrade's, over the upgrade's period; a payment whose code is never activated
    stays deferred. Integer arithmetic: through day ``t`` a payment ``A`` spread over
    ``D`` days has recognised ``floor(A * k / D)`` after ``k`` days, so nothing is lost to
    rounding. One row per month, SKU and edition: ``month, sku, edition, bookings,
    recognised, deferred`` (deferred = balance at the month end). For every month end,
    cumulative bookings = cumulative recognised + deferred, to the kopeck.
    """
    as_of = _as_of(rep, as_of)
    as_of_d = int(_days(pd.Series([as_of]))[0])
    o = _order_frame(rep)
    cols = ["month", "sku", "edition", "bookings", "recognised", "deferred"]
    paid = np.flatnonzero((o["paid_day"] != NO_DAY) & (o["paid_day"] <= as_of_d))
    if not len(paid):
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in cols[3:] else "object") for c in cols})
    # The period each payment is recognised over: its own, or (an upgraded renewal) the upgrade's.
    v = _view(rep, as_of)
    n_o = len(o["sku"])
    period_of = np.full(n_o, -1, np.int64)
    own = v.order >= 0
    period_of[v.order[own]] = np.flatnonzero(own)
    ups = np.flatnonzero((o["sku"] == UPG) & (o["target"] >= 0) & (period_of >= 0))
    tgt = o["target"][ups]
    free = period_of[tgt] < 0
    period_of[tgt[free]] = period_of[ups[free]]
    pi = period_of[paid]
    active = pi >= 0
    A = o["amount"][paid]
    n_e = len(Edition) + 1  # the editions and "unknown"
    g = o["sku"][paid] * n_e + np.where(o["edition"][paid] >= 0, o["edition"][paid], n_e - 1)  # sku × edition
    m0 = int(_month_index(np.array([min(int(o["paid_day"][paid].min()), int(v.start.min()) if len(v.start) else as_of_d)]))[0])
    m_last = int(_month_index(np.array([as_of_d]))[0])
    n_m = m_last - m0 + 1
    month_end = np.minimum(((np.arange(m0, m_last + 1) + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - 1), as_of_d)
    # Recognition: expand each active payment into the month ends its span crosses.
    s_day = np.where(active, v.start[np.maximum(pi, 0)], 0)
    e_day = np.where(active, v.end[np.maximum(pi, 0)], 0)
    D = e_day - s_day
    rs = np.where(D > 0, s_day, np.where(active, v.act[np.maximum(pi, 0)], 0))  # no day added: recognised on activation
    last = np.where(D > 0, rs + D - 1, rs)
    a_idx = np.flatnonzero(active & (rs <= as_of_d))
    ms = _month_index(rs[a_idx]) - m0
    me = np.minimum(_month_index(np.minimum(last[a_idx], as_of_d)) - m0, n_m - 1)
    n_g = len(Sku) * n_e
    rec = _recognise(A[a_idx], D[a_idx], rs[a_idx], g[a_idx], ms, me, month_end, n_g)
    book = _exact_sums((_month_index(o["paid_day"][paid]) - m0) * n_g + g, A, n_m * n_g).reshape(n_m, n_g)
    deferred = np.cumsum(book, axis=0) - np.cumsum(rec, axis=0)
    used = np.flatnonzero(book.any(axis=0) | rec.any(axis=0))
    months = np.arange(m0, m_last + 1).astype("datetime64[M]").astype("datetime64[ns]")
    sku_names = categories(Sku)
    ed_names = [*categories(Edition), "unknown"]
    out = pd.DataFrame(
        {
            "month": np.tile(months, len(used)),
            "sku": np.repeat([sku_names[j // n_e] for j in used], n_m),
            "edition": np.repeat([ed_names[j % n_e] for j in used], n_m),
            "bookings": book[:, used].T.ravel(),
            "recognised": rec[:, used].T.ravel(),
            "deferred": deferred[:, used].T.ravel(),
        }
    )
    return out.sort_values(["month", "sku", "edition"], ignore_index=True)


def upgrade_revenue(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, forgotten: tuple[np.ndarray, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Upgrades and their revenue by month, and the share of lapsed renewals they convert.

    One row per month: ``upgrades`` (upgrade orders paid), ``upgrade_revenue`` (kopecks,
    by act date), ``lapsed_renewals`` (renewal codes that lapsed that month),
    ``converted`` (of those, later upgraded), ``decided``, ``conversion_rate`` (converted
    / decided), and ``revenue_kept``: what the converted customers paid for the renewal
    and the upgrade together — money kept compared with those customers churning after
    the lapse. ``forgotten`` takes the result of ``_forgotten`` when it is already at hand.
    """
    as_of = _as_of(rep, as_of)
    as_of_d = int(_days(pd.Series([as_of]))[0])
    o = _order_frame(rep)
    cols = ["month", "upgrades", "upgrade_revenue", "lapsed_renewals", "converted", "decided", "conversion_rate", "revenue_kept"]
    up = np.flatnonzero((o["sku"] == UPG) & (o["paid_day"] != NO_DAY) & (o["paid_day"] <= as_of_d))
    order_row, fr = forgotten if forgotten is not None else _forgotten(rep, as_of, churn_horizon_days)
    lapse_m = _month_index(_days(fr["lapsed_on"])) if len(fr) else np.empty(0, np.int64)
    paid_m = _month_index(o["paid_day"][up])
    allm = np.concatenate([lapse_m, paid_m])
    if not len(allm):
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "month" else "float64") for c in cols})
    m0, m1 = int(allm.min()), int(allm.max())
    n = m1 - m0 + 1
    conv = fr["fate"].eq("upgraded").to_numpy()
    decided = fr["fate"].ne("open").to_numpy()
    out = pd.DataFrame(
        {
            "month": np.arange(m0, m1 + 1).astype("datetime64[M]").astype("datetime64[ns]"),
            "upgrades": np.bincount(paid_m - m0, minlength=n),
            "upgrade_revenue": _exact_sums(paid_m - m0, o["amount"][up], n),
            "lapsed_renewals": np.bincount(lapse_m - m0, minlength=n),
            "converted": np.bincount(lapse_m - m0, weights=conv, minlength=n).astype(np.int64),
            "decided": np.bincount(lapse_m - m0, weights=decided, minlength=n).astype(np.int64),
        }
    )
    kept = _exact_sums(lapse_m - m0, np.where(conv, o["amount"][order_row], 0), n)
    out["conversion_rate"] = (out["converted"] / out["decided"]).where(out["decided"] > 0)
    out["revenue_kept"] = kept + out["upgrade_revenue"].to_numpy()
    return out[cols]


class _MonthAdder:
    """Day + k calendar months for many days (day of month clipped to the target month's length).

    Months are numbered once; each call then reads month starts from a table of the few
    months the days span (numpy's month → day conversion costs about 20 ns a value).
    """

    def __init__(self, days: np.ndarray) -> None:
        self.month = _month_index(days)
        self.m0 = int(self.month.min()) if len(days) else 0
        self.at = self.month - self.m0  # each day's month in the table
        self.span = int(self.at.max()) + 1 if len(days) else 0
        self.dom = days - self._starts(0, self.span)[self.at]

    def _starts(self, k: int, n: int) -> np.ndarray:
        """First day of months ``m0 + k .. m0 + k + n - 1``."""
        return np.arange(self.m0 + k, self.m0 + k + n).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)

    def __call__(self, k: int) -> np.ndarray:
        table = self._starts(k, self.span + 1)  # one month more: the last month's length
        start = table[self.at]
        return start + np.minimum(self.dom, table[self.at + 1] - start - 1)


def km_by_group(group: np.ndarray, duration: np.ndarray, event: np.ndarray, times: Any, n_groups: int | None = None) -> np.ndarray:
    """Kaplan–Meier survival of each group at ``times``: an array (group, time).

    The product-limit estimate lifelines' ``KaplanMeierFitter`` gives for each group alone
    (``S(t) = Π_{t_i ≤ t} (1 − d_i / n_i)``, ties at one time counted together, censored
    rows at risk at their own time, computed in log space as lifelines does), for all
    groups in one pass over the (group, duration) counts instead of one fit per group
    (each of lifelines' fits has a fixed cost of pandas work). Durations are
    whole days (integers ≥ 0); a group without rows, or a time before its first event
    (negative times included, where lifelines answers NaN), has survival 1.
    ``tests/test_metrics.py`` checks it against lifelines per group.
    """
    times = np.asarray(times, dtype=float)
    group = np.asarray(group, dtype=np.int64)
    duration = np.asarray(duration, dtype=np.int64)
    n_groups = int(group.max()) + 1 if n_groups is None and len(group) else int(n_groups or 0)
    out = np.ones((n_groups, len(times)))
    if not len(group):
        return out
    if duration.min() < 0 or group.min() < 0:
        msg = "km_by_group: durations must be whole days >= 0 and groups numbers >= 0"
        raise ValueError(msg)
    span = int(duration.max()) + 1
    key = group * span + duration
    uniq, inv = np.unique(key, return_inverse=True)
    removed = np.bincount(inv, minlength=len(uniq))
    deaths = np.bincount(inv, weights=np.asarray(event, dtype=np.int64), minlength=len(uniq)).astype(np.int64)
    g_u = uniq // span
    removed_before = pd.Series(removed).groupby(g_u, sort=False).cumsum().to_numpy() - removed  # within the group
    at_risk = np.bincount(group, minlength=n_groups)[g_u] - removed_before
    with np.errstate(divide="ignore"):
        step = np.where(deaths > 0, np.log(at_risk - deaths) - np.log(at_risk), 0.0)
    cum = pd.Series(step).groupby(g_u, sort=False).cumsum().to_numpy()  # −inf once a group dies out
    g = np.arange(n_groups, dtype=np.int64)[:, None]
    t = np.floor(times)[None, :].astype(np.int64)
    pos = np.searchsorted(uniq, g * span + np.minimum(t, span - 1), side="right") - 1
    hit = (pos >= 0) & (t >= 0) & (g_u[np.maximum(pos, 0)] == g)
    out[hit] = np.exp(cum[pos[hit]])
    return out


@nb.njit(cache=True, nogil=True)
def _covered_at(first, start, end, days):
    """Per license ``g`` (rows ``first[g] .. first[g + 1] - 1``, by start): whether its last
    period starting on or before ``days[g]`` still runs on that day."""
    out = np.zeros(days.shape[0], np.bool_)
    for g in range(days.shape[0]):
        d = days[g]
        last = -1
        for j in range(first[g], first[g + 1]):
            if start[j] > d:
                break
            last = j
        out[g] = last >= 0 and d < end[last]
    return out


def cohort_retention(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, months: tuple[int, ...] = (3, 6, 12, 18, 24, 36, 48),
    outcomes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Retention of monthly cohorts at ``k`` months, observed and Kaplan–Meier (:func:`km_by_group`).

    Cohort = month of the license's first period. ``active_share``: share of the cohort
    active on day first start + k months, over licenses for which that day is on or before
    ``as_of`` (``at_risk``). ``km_retention``: Kaplan–Meier estimate of not having churned
    by k months (k × 30.4375 days), where churn is the end of the first term whose
    outcome is ``churned`` and licenses not (yet) churned are censored at ``as_of``.
    ``reactivations``: churned licenses of the cohort that came back (they stay in their
    original cohort).
    """
    as_of = _as_of(rep, as_of)
    as_of_d = int(_days(pd.Series([as_of]))[0])
    df = outcomes if outcomes is not None else expiry_outcomes(rep, as_of, churn_horizon_days)
    v = _view(rep, as_of)
    cols = ["cohort", "months", "cohort_size", "at_risk", "active_share", "km_retention", "reactivations"]
    if not len(v.rows):
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    if len(df) != len(v.rows):  # outcomes of another as_of: rows must align with this view
        df = expiry_outcomes(rep, as_of, churn_horizon_days)
    starts = np.flatnonzero(np.r_[True, v.lic[1:] != v.lic[:-1]])
    first = v.start[starts]
    n_lic = len(starts)
    grp = np.cumsum(np.r_[True, v.lic[1:] != v.lic[:-1]]) - 1
    churn_row = (df["outcome"] == "churned").to_numpy()
    churn_end = np.full(n_lic, np.iinfo(np.int64).max)
    np.minimum.at(churn_end, grp[churn_row], v.end[churn_row])
    event = churn_end != np.iinfo(np.int64).max
    duration = np.maximum(np.where(event, churn_end, as_of_d) - first, 0)
    react = np.zeros(n_lic, bool)
    react[grp[df["reactivated"].to_numpy()]] = True
    add_months = _MonthAdder(first)
    cohort = add_months.month
    # Active on first start + k months: the license's last period starting on or before that day.
    bounds = np.r_[starts, len(v.start)]
    out = {}
    for k in months:
        day_k = add_months(k)
        out[k] = (_covered_at(bounds, v.start, v.end, day_k), day_k <= as_of_d)
    cohorts, cg = np.unique(cohort, return_inverse=True)
    n_c, n_k = len(cohorts), len(months)
    km = km_by_group(cg, duration, event, [k * 30.4375 for k in months], n_c)
    # (cohort, k) tables of licenses observed at k months and of those active then.
    at_risk = np.empty((n_c, n_k), np.int64)
    active = np.empty((n_c, n_k), np.int64)
    for j, k in enumerate(months):
        act, obs = out[k]
        at_risk[:, j] = np.bincount(cg[obs], minlength=n_c)
        active[:, j] = np.bincount(cg[obs & act], minlength=n_c)
    share = np.divide(active, at_risk, out=np.full((n_c, n_k), np.nan), where=at_risk > 0)
    return pd.DataFrame(
        {
            "cohort": np.repeat(cohorts.astype("datetime64[M]").astype("datetime64[ns]"), n_k),
            "months": np.tile(np.asarray(months, dtype=np.int64), n_c),
            "cohort_size": np.repeat(np.bincount(cg, minlength=n_c), n_k),
            "at_risk": at_risk.ravel(),
            "active_share": share.ravel(),
            "km_retention": km.ravel(),
            "reactivations": np.repeat(np.bincount(cg[react], minlength=n_c), n_k),
        },
        columns=cols,
    )


def expiry_competing_risks(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, outcomes: pd.DataFrame | None = None, early_days: int = 60
) -> pd.DataFrame:
    """Cumulative incidence of each way an expiry is followed up (Aalen–Johansen).

    Time runs from ``early_days`` before the end; the competing events are a renewal, a
    full-price subscription and an upgrade; open expiries are censored at ``as_of``,
    churned ones at the churn horizon. Columns: ``day`` (relative to the end), ``event``,
    ``cumulative_incidence``.

    The estimator is the textbook one, ``CIF_k(t) = Σ_{s ≤ t} S(s−) · d_k(s) / n(s)``, with
    the overall survival ``S`` from lifelines' Kaplan–Meier fit. Events on one day are tied
    and kept together, so the result is exact and the same on every call (lifelines'
    ``AalenJohansenFitter`` would break tied days by random jitter).
    """
    from lifelines import KaplanMeierFitter

    as_of = _as_of(rep, as_of)
    df = outcomes if outcomes is not None else expiry_outcomes(rep, as_of, churn_horizon_days)
    cols = {"day": pd.Series(dtype="int64"), "event": pd.Series(dtype="str"), "cumulative_incidence": pd.Series(dtype="float64")}
    kind = np.select(
        [df["outcome"].isin(RENEWALS).to_numpy(),
         df["outcome"].isin(SUBSCRIPTIONS).to_numpy(),
         df["outcome"].eq(Outcome.UPGRADE).to_numpy()],
        [1, 2, 3], 0,
    )
    open_days = ((as_of - df["end"]) / pd.Timedelta(days=1)).to_numpy()
    t = np.where(kind > 0, df["offset_days"].fillna(0).to_numpy(dtype=float),
                 np.where(df["outcome"].eq("open").to_numpy(), open_days, churn_horizon_days))
    t = np.floor(np.clip(t + early_days, 0, None)).astype(np.int64)
    keep = t > 0
    if not keep.any():
        return pd.DataFrame(cols)
    key = t[keep] * 4 + kind[keep]
    uniq, counts = np.unique(key, return_counts=True)
    days, kinds = uniq // 4, uniq % 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = KaplanMeierFitter().fit(days, event_observed=kinds > 0, weights=counts)
    table = km.event_table  # one row per distinct day: at_risk, observed, censored …
    surv = km.survival_function_.iloc[:, 0].reindex(table.index)
    before = surv.shift(fill_value=1.0)  # S(t−)
    at_risk = table["at_risk"].to_numpy(dtype=float)
    grid = np.arange(0, early_days + churn_horizon_days + 1, 5, dtype=float)
    rows = []
    for code, name in {1: "renewal", 2: "subscription", 3: "upgrade"}.items():
        if not (kinds == code).any():
            continue
        d_k = pd.Series(counts[kinds == code], index=days[kinds == code]).reindex(table.index, fill_value=0)
        steps = np.divide(before.to_numpy() * d_k.to_numpy(), at_risk, out=np.zeros(len(at_risk)), where=at_risk > 0)
        cif = pd.Series(np.cumsum(steps), index=table.index)
        vals = cif.reindex(cif.index.union(grid)).ffill().fillna(0).reindex(grid).to_numpy()
        rows.append(pd.DataFrame({"day": (grid - early_days).astype(np.int64), "event": name, "cumulative_incidence": vals}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(cols)


def active_licenses(rep: Replay, as_of: Any = None, freq: str = "MS") -> pd.DataFrame:
    """Licenses covered on each day of a calendar (default: every month start), by edition.

    Periods of a license never overlap, so a difference array over days counts licenses.
    Columns: ``day, edition, active``.
    """
    as_of = _as_of(rep, as_of)
    v = _view(rep, as_of)
    if not len(v.rows):
        return pd.DataFrame({"day": pd.Series(dtype="datetime64[ns]"), "edition": pd.Series(dtype="str"), "active": pd.Series(dtype="int64")})
    lo = int(v.start.min())
    hi = int(_days(pd.Series([as_of]))[0])
    days = pd.date_range(pd.Timestamp(lo, unit="D"), pd.Timestamp(hi, unit="D"), freq=freq)
    probe = days.to_numpy().astype("datetime64[D]").astype(np.int64) - lo
    n = hi - lo + 2
    out = []
    for ed in Edition:
        name, m = ed.value, v.edition == ed.code
        diff = np.bincount(np.clip(v.start[m] - lo, 0, n - 1), minlength=n) - np.bincount(np.clip(v.end[m] - lo, 0, n - 1), minlength=n)
        out.append(pd.DataFrame({"day": days, "edition": name, "active": np.cumsum(diff)[probe]}))
    return pd.concat(out, ignore_index=True)


STAGE_PAIRS = (
    ("request_to_invoice", "requested_at", "invoiced_at"),
    ("invoice_to_paid", "invoiced_at", "paid_at"),
    ("paid_to_ticket", "paid_at", "ticket_at"),
    ("to_code", None, "code_issued_at"),
    ("code_to_activation", "code_issued_at", "activated_at"),
)


def lead_times(rep: Replay, as_of: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lead time of each order stage (days) by SKU, and grace misses caused by slow orders.

    Returns ``(stages, misses)``. ``stages``: per stage and SKU, ``orders``, ``median_days``,
    ``p90_days``, ``mean_days``. ``to_code`` runs from payment (from the helpdesk ticket for
    upgrades) to the code. ``misses``: renewal codes that lapsed, with whether the request
    was placed inside the window but the code issued after it (``request_in_window``,
    ``code_after_deadline``).
    """
    o = rep.ledger.orders
    tz = rep.catalog.timezone
    t = {c: parse_instants(o[c], tz, column=c) if c in o.columns else np.full(len(o), NO_TIME) for c in
         ("requested_at", "invoiced_at", "paid_at", "ticket_at", "code_issued_at")}
    p = rep.prepared
    t["activated_at"] = first_activations(rep.ledger, p, tz)
    sku = p.o_sku
    rows = []
    for name, a, b in STAGE_PAIRS:
        start = np.where(sku == UPG, t["ticket_at"], t["paid_at"]) if a is None else t[a]
        end = t[b]
        ok = (start != NO_TIME) & (end != NO_TIME)
        d = (end[ok] - start[ok]) / 86_400e9
        sku_ok = sku[ok]
        for s_kind in Sku:
            s_name, m = s_kind.value, sku_ok == s_kind.code
            if not m.any():
                continue
            v = d[m]
            med, p90 = np.percentile(v, [50, 90])
            rows.append({"stage": name, "sku": s_name, "orders": int(m.sum()), "median_days": float(med),
                         "p90_days": float(p90), "mean_days": float(v.mean())})
    stages = pd.DataFrame(rows, columns=["stage", "sku", "orders", "median_days", "p90_days", "mean_days"])
    c = rep.codes
    lapsed = np.flatnonzero(((c["sku"] == Sku.RENEWAL) & c["status"].isin([CodeStatus.LAPSED, CodeStatus.UPGRADED])
                             & c["deadline"].notna()).to_numpy())
    deadline = _days(c["deadline"].iloc[lapsed])
    req_day = to_local_days(t["requested_at"][lapsed], tz)
    code_day = to_local_days(t["code_issued_at"][lapsed], tz)
    misses = pd.DataFrame(
        {
            "code": c["code"].iloc[lapsed].to_numpy(),
            "license_id": c["license_id"].iloc[lapsed].to_numpy(),
            "request_in_window": (req_day != NO_DAY) & (req_day <= deadline),
            "code_after_deadline": (code_day != NO_DAY) & (code_day > deadline),
        }
    )
    return stages, misses


def expiry_calendar(
    rep: Replay, as_of: Any = None, weeks: int = 26, churn_horizon_days: int = 365, lookback_days: int = 365,
    outcomes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Upcoming term ends by week, with the renewal cash to expect from observed rates.

    For each week after ``as_of`` and edition: ``expiries`` (licenses whose current end
    falls in the week and that have not renewed early yet), and ``expected_cash``
    (kopecks): expiries × Σ over follow-ups of (their observed share among the expiries
    decided in the last ``lookback_days``) × (the catalog price they pay at the end day).
    """
    as_of = _as_of(rep, as_of)
    df = outcomes if outcomes is not None else expiry_outcomes(rep, as_of, churn_horizon_days)
    cols = ["week", "edition", "expiries", "expected_cash"]
    recent = df[(df["end"] > as_of - pd.Timedelta(days=lookback_days + churn_horizon_days)) & df["outcome"].ne("open")]
    upcoming = df[(df["end"] > as_of) & (df["end"] <= as_of + pd.Timedelta(weeks=weeks)) & df["outcome"].eq("open")]
    if upcoming.empty:
        return pd.DataFrame({"week": pd.Series(dtype="datetime64[ns]"), "edition": pd.Series(dtype="str"),
                             "expiries": pd.Series(dtype="int64"), "expected_cash": pd.Series(dtype="int64")})
    prices = rep.catalog.price_table()
    ver = rep.catalog.version_index(_days(upcoming["end"]))
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
    up = upcoming.assign(week=upcoming["end"].dt.to_period("W-SUN").dt.start_time, expected_cash=np.rint(exp_cash).astype(np.int64))
    out = up.groupby(["week", "edition"], observed=True).agg(expiries=("license_id", "size"), expected_cash=("expected_cash", "sum"))
    return out.reset_index()[cols]


def outcome_counts(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Term ends by month of expiry and outcome: ``month, outcome, count`` (for charts)."""
    m = outcomes.assign(month=_month_start(outcomes["end"]))
    return m.groupby(["month", "outcome"], observed=True).size().rename("count").reset_index()


def forgotten_summary(forgotten: pd.DataFrame) -> pd.DataFrame:
    """Lapsed renewal codes by kind and fate: ``kind, fate, count`` (for charts)."""
    return forgotten.groupby(["kind", "fate"], observed=True).size().rename("count").reset_index()
