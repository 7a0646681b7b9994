"""Renewal rates and timing: when customers renew, at which rates, and how the grace window is used."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..replay import Replay
from ..vocab import OUTCOMES, Outcome

from ..errors import MetricsError
from ._common import (
    IN_GRACE, ON_TIME, RENEWALS, RENEWED, SUBSCRIPTIONS, as_of_day, to_days, month_index, month_start, month_starts_ns, select_rows,
)
from .outcomes import expiry_outcomes


@dataclass(frozen=True, slots=True)
class RenewalTiming:
    """Offsets of decided renewals and rates by group (see :func:`renewal_timing`)."""

    offsets: pd.DataFrame
    rates: pd.DataFrame


def rate_table(df: pd.DataFrame, by: list[str], known: np.ndarray) -> pd.DataFrame:
    """Rates by group over the ends whose fate is fully known (``known``: past the churn horizon)."""
    outcome = df["outcome"]
    small = pd.DataFrame({c: df[c] for c in by})
    small["expiries"] = 1
    small["open"] = outcome.eq(Outcome.OPEN).to_numpy()
    small["decided"] = known
    small["churned"] = known & outcome.eq(Outcome.CHURNED).to_numpy()
    small["renewed"] = known & _in(outcome, RENEWED)
    small["in_grace"] = known & _in(outcome, IN_GRACE)
    out = small.groupby(by, observed=True, sort=True).sum().astype(np.int64)
    decided = out["decided"]
    out["renewal_rate"] = (out["renewed"] / decided).where(decided > 0)
    out["grace_renewal_rate"] = (out["in_grace"] / decided).where(decided > 0)
    out["complete"] = decided == out["expiries"]
    return out.reset_index()


def renewal_timing(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, by: tuple[str, ...] = ("expiry_month", "edition"),
    outcomes: pd.DataFrame | None = None,
) -> RenewalTiming:
    """When customers renew relative to the end, and renewal rates by group.

    ``offsets``: counts of decided continuations by ``offset_days``, ``outcome`` and
    ``edition``. ``rates``: per group of ``by`` (any of ``expiry_month``, ``edition``,
    ``cohort``): expiries, open, and over the ``decided`` ends — those whose churn horizon has
    passed (maturity rule, rules §6) — churned, renewed, in_grace, renewal_rate (the continued
    rate), grace_renewal_rate, and ``complete`` (every expiry of the group decided). For rates
    that already know the recent ends (on time, by the deadline) use :func:`renewal_rates`.
    """
    as_of = as_of_day(rep, as_of)
    df = outcomes if outcomes is not None else expiry_outcomes(rep, as_of, churn_horizon_days)
    known = (df["end"] + pd.Timedelta(days=churn_horizon_days) <= as_of).to_numpy()
    cols = ["outcome", "offset_days", "edition", *[c for c in by if c in df.columns]]
    df = df[list(dict.fromkeys(cols))].assign(expiry_month=month_start(df["end"]))
    cont = df.loc[df["offset_days"].notna().to_numpy() & df["outcome"].isin(RENEWED).to_numpy(), ["offset_days", "outcome", "edition"]]
    offsets = (
        cont.groupby(["offset_days", "outcome", "edition"], observed=True)
        .size()
        .rename("count")
        .reset_index()
        .astype({"offset_days": "int64"})
    )
    return RenewalTiming(offsets=offsets, rates=rate_table(df, list(by), known))


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

    as_of = as_of_day(rep, as_of)
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
                 np.where(df["outcome"].eq(Outcome.OPEN).to_numpy(), open_days, churn_horizon_days))
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


#: Groupings of :func:`renewal_rates`: the column each groups by (``None``: one row, all ends).
RATE_GROUPS = ("edition", "month", "quarter", "cohort")


def _group_key(df: pd.DataFrame, by: str | None) -> pd.Series:
    if by is None:
        return pd.Series("all", index=df.index, name="group")
    if by == "edition":
        return df["edition"].rename("edition")
    if by == "cohort":
        return df["cohort"].rename("cohort")
    if by in ("month", "quarter"):
        months = month_index(to_days(df["end"]))
        months = months if by == "month" else months - months % 3  # months since 1970-01: quarters start at 0, 3, …
        return pd.Series(month_starts_ns(months), index=df.index, name=by)
    msg = f"renewal_rates: by={by!r} is not one of None, {', '.join(repr(g) for g in RATE_GROUPS)}; pass one of them"
    raise MetricsError(msg)


def _in(outcome: pd.Series, group: tuple[str, ...]) -> np.ndarray:
    """``outcome.isin(group)`` read from the categorical's codes when they are the engine codes."""
    if isinstance(outcome.dtype, pd.CategoricalDtype) and list(outcome.cat.categories) == list(OUTCOMES):
        table = np.zeros(len(OUTCOMES) + 1, bool)  # the last slot: code -1 (missing)
        table[[Outcome(o).code for o in group]] = True
        return table[outcome.cat.codes.to_numpy()]
    return outcome.isin(group).to_numpy()


def _maturity_flags(df: pd.DataFrame, as_of: pd.Timestamp, churn_horizon_days: int) -> pd.DataFrame:
    """Per term end: which rates already know its outcome, and what the outcome counts as."""
    outcome = df["outcome"]
    at_deadline = (df["deadline"] < as_of).to_numpy()  # known on deadline + 1
    at_horizon = (df["end"] + pd.Timedelta(days=churn_horizon_days) <= as_of).to_numpy()
    return pd.DataFrame(
        {
            "ends": 1,
            "known_at_deadline": at_deadline,
            "renewed_by_deadline": at_deadline & _in(outcome, RENEWALS),
            "continued_by_deadline": at_deadline & _in(outcome, ON_TIME),
            "in_grace": at_deadline & _in(outcome, IN_GRACE),
            "known_at_horizon": at_horizon,
            "continued": at_horizon & _in(outcome, RENEWED),
        },
        index=df.index,
    )


def _windows(df: pd.DataFrame, flags: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """First and last end of each group, and the last end each rate covers."""
    end = df["end"]
    frame = pd.DataFrame(
        {
            "ends_from": end,
            "ends_to": end,
            "deadline_known_to": end.where(flags["known_at_deadline"].to_numpy()),
            "horizon_known_to": end.where(flags["known_at_horizon"].to_numpy()),
        }
    )
    g = frame.groupby(key, observed=True, sort=True)
    return g.agg({"ends_from": "min", "ends_to": "max", "deadline_known_to": "max", "horizon_known_to": "max"})


def renewal_rates(
    rep: Replay, as_of: Any = None, by: str | None = None, *, churn_horizon_days: int = 365, edition: str | None = None,
    start: Any = None, end: Any = None, outcomes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Renewal rates with the maturity rule of rules §6: each rate counts only the ends it knows.

    Term ends on or before ``as_of`` (of ``edition``, with ``start <= end <= end``) are grouped
    by ``by``: ``None`` (one row), ``"edition"``, ``"month"`` or ``"quarter"`` of the end, or
    ``"cohort"``. Per group:

    - ``ends``; ``ends_from`` / ``ends_to``: the window of ends covered;
    - ``known_at_deadline``: ends whose deadline is before ``as_of``, the denominator of
      ``on_time_rate`` = ``renewed_by_deadline`` (early and grace renewals) / known, of
      ``on_time_continuation_rate`` = ``continued_by_deadline`` (also full-price subscriptions
      in the window) / known, and of ``grace_share`` = ``in_grace`` (renewals and subscriptions
      in the grace window) / known; ``deadline_known_to``: the last end they cover;
    - ``known_at_horizon``: ends with ``end + churn_horizon_days <= as_of``, the denominator of
      ``continued_rate`` = ``continued`` (anything but churn) / known; ``horizon_known_to``.

    A rate is NaN where its denominator is 0. Adding an end whose outcome a rate does not
    know yet never changes that rate.

    >>> renewal_rates(rep, by="edition")[["edition", "known_at_deadline", "on_time_rate"]]  # doctest: +SKIP
    """
    as_of = as_of_day(rep, as_of)
    df = outcomes if outcomes is not None else expiry_outcomes(rep, as_of, churn_horizon_days)
    df = select_rows(df[(df["end"] <= as_of).to_numpy()], "end", edition, start, end)
    key = _group_key(df, by)
    flags = _maturity_flags(df, as_of, churn_horizon_days)
    out = flags.groupby(key, observed=True, sort=True).sum().astype(np.int64)
    win = _windows(df, flags, key)
    kd, kh = out["known_at_deadline"], out["known_at_horizon"]
    out["on_time_rate"] = (out["renewed_by_deadline"] / kd).where(kd > 0)
    out["on_time_continuation_rate"] = (out["continued_by_deadline"] / kd).where(kd > 0)
    out["grace_share"] = (out["in_grace"] / kd).where(kd > 0)
    out["continued_rate"] = (out["continued"] / kh).where(kh > 0)
    cols = ["ends", "ends_from", "ends_to", "known_at_deadline", "renewed_by_deadline", "on_time_rate",
            "continued_by_deadline", "on_time_continuation_rate", "in_grace", "grace_share", "deadline_known_to",
            "known_at_horizon", "continued", "continued_rate", "horizon_known_to"]
    return out.join(win)[cols].reset_index()


#: The headline rates of :func:`period_over_period`: rate → (numerator, denominator, the moment it is known).
HEADLINE_RATES = {
    "on_time_rate": ("renewed_by_deadline", "known_at_deadline", "deadline"),
    "on_time_continuation_rate": ("continued_by_deadline", "known_at_deadline", "deadline"),
    "grace_share": ("in_grace", "known_at_deadline", "deadline"),
    "continued_rate": ("continued", "known_at_horizon", "horizon"),
}


def period_over_period(
    rep: Replay, as_of: Any = None, *, churn_horizon_days: int = 365, edition: str | None = None,
    outcomes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The headline rates of the latest quarter they know against the same days a year before.

    For each rate of :data:`HEADLINE_RATES`: its latest known end ``to`` (the last end whose
    deadline, or horizon, is before ``as_of``), the window ``from`` (start of ``to``'s
    quarter) … ``to``, and the same window one year earlier. Columns: ``rate, from, to,
    count, known, value, prior_from, prior_to, prior_count, prior_known, prior_value,
    change`` (value − prior value, in shares). ``count`` is the numerator, ``known`` the
    denominator.

    >>> period_over_period(rep)[["rate", "from", "to", "known", "value", "prior_value"]]  # doctest: +SKIP
    """
    as_of = as_of_day(rep, as_of)
    df = outcomes if outcomes is not None else expiry_outcomes(rep, as_of, churn_horizon_days)
    df = select_rows(df[(df["end"] <= as_of).to_numpy()], "end", edition)
    flags = _maturity_flags(df, as_of, churn_horizon_days)
    end = df["end"]
    rows = []
    for rate, (num, den, moment) in HEADLINE_RATES.items():
        known = flags[den].to_numpy()
        to = end[known].max() if known.any() else pd.NaT
        frm = to.to_period("Q").start_time if pd.notna(to) else pd.NaT
        row: dict[str, Any] = {"rate": rate, "known_on": moment}
        for prefix, lo, hi in (("", frm, to), ("prior_", frm - pd.DateOffset(years=1), to - pd.DateOffset(years=1))):
            inside = known & (end >= lo).to_numpy() & (end <= hi).to_numpy() if pd.notna(to) else np.zeros(len(df), bool)
            n, k = int(flags[num].to_numpy()[inside].sum()), int(inside.sum())
            row |= {f"{prefix}from": lo, f"{prefix}to": hi, f"{prefix}count": n, f"{prefix}known": k,
                    f"{prefix}value": n / k if k else np.nan}
        row["change"] = row["value"] - row["prior_value"]
        rows.append(row)
    return pd.DataFrame(rows)
