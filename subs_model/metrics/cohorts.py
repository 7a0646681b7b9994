"""Cohorts and retention: Kaplan–Meier by group and pooled, active licenses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import pandas as pd

from ..errors import MetricsError
from ..replay import Replay
from ..vocab import Edition, Outcome, categories

from ._common import as_of_day, to_days, MonthAdder, select_rows, replay_view
from .outcomes import expiry_outcomes


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
def covered_at(first, start, end, days):
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


@dataclass(frozen=True, slots=True)
class _Lives:
    """Per license (in the view's order): its first start, cohort month, days to churn (or to ``as_of``:
    censored), whether it churned and came back, and the view's license bounds."""

    view: Any
    starts: np.ndarray  # first row of each license in the view
    first: np.ndarray
    duration: np.ndarray
    event: np.ndarray
    react: np.ndarray
    edition: np.ndarray


def _lives(rep: Replay, as_of: pd.Timestamp, churn_horizon_days: int, outcomes: pd.DataFrame | None) -> _Lives | None:
    """Time from each license's first start to its first churned term end (censored at ``as_of``)."""
    as_of_d = int(to_days(pd.Series([as_of]))[0])
    v = replay_view(rep, as_of)
    if not len(v.rows):
        return None
    df = outcomes if outcomes is not None and len(outcomes) == len(v.rows) else expiry_outcomes(rep, as_of, churn_horizon_days)
    new_lic = np.r_[True, v.lic[1:] != v.lic[:-1]]
    starts = np.flatnonzero(new_lic)
    grp = np.cumsum(new_lic) - 1
    churn_rows = np.flatnonzero((df["outcome"] == Outcome.CHURNED).to_numpy())
    # Rows run in start order within a license, so a license's first churned row has its earliest churned end.
    lic_of, first_row = np.unique(grp[churn_rows], return_index=True)
    event = np.zeros(len(starts), bool)
    event[lic_of] = True
    churn_end = np.zeros(len(starts), np.int64)
    churn_end[lic_of] = v.end[churn_rows[first_row]]
    first = v.start[starts]
    duration = np.maximum(np.where(event, churn_end, as_of_d) - first, 0)
    react = np.zeros(len(starts), bool)
    react[grp[df["reactivated"].to_numpy()]] = True
    return _Lives(v, starts, first, duration, event, react, v.edition[starts])


def cohort_retention(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, months: tuple[int, ...] = (3, 6, 12, 18, 24, 36, 48),
    outcomes: pd.DataFrame | None = None, *, edition: str | None = None, period: str = "month",
) -> pd.DataFrame:
    """Retention of monthly (``period="year"``: yearly) cohorts at ``k`` months, observed and Kaplan–Meier (:func:`km_by_group`).

    Cohort = month of the license's first period. ``active_share``: share of the cohort
    active on day first start + k months, over licenses for which that day is on or before
    ``as_of`` (``at_risk``). ``km_retention``: Kaplan–Meier estimate of not having churned
    by k months (k × 30.4375 days), where churn is the end of the first term whose
    outcome is ``churned`` and licenses not (yet) churned are censored at ``as_of``. A
    cohort's curve stops at its follow-up: both values are NaN where no license of the
    cohort has been followed for k months (``at_risk`` = 0). ``reactivations``: churned
    licenses of the cohort that came back (they stay in their original cohort). For the
    headline over all cohorts use :func:`pooled_retention`, never an average of these rows.
    """
    as_of = as_of_day(rep, as_of)
    as_of_d = int(to_days(pd.Series([as_of]))[0])
    cols = ["cohort", "months", "cohort_size", "at_risk", "active_share", "km_retention", "reactivations"]
    life = _lives(rep, as_of, churn_horizon_days, outcomes)
    if life is None:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    v = life.view
    mask = _edition_mask(life, edition)
    add_months = MonthAdder(life.first)
    if period not in ("month", "year"):
        msg = f"cohort_retention: period={period!r} is not 'month' or 'year'; pass one of them"
        raise MetricsError(msg)
    key = add_months.month[mask] if period == "month" else add_months.month[mask] // 12 * 12  # months since 1970-01
    cohorts, cg = np.unique(key, return_inverse=True)
    n_c, n_k = len(cohorts), len(months)
    km = km_by_group(cg, life.duration[mask], life.event[mask], [k * 30.4375 for k in months], n_c)
    # Active on first start + k months: the license's last period starting on or before that day.
    bounds = np.r_[life.starts, len(v.start)]
    at_risk = np.empty((n_c, n_k), np.int64)
    active = np.empty((n_c, n_k), np.int64)
    for j, k in enumerate(months):
        day_k = add_months(k)
        act, obs = covered_at(bounds, v.start, v.end, day_k)[mask], (day_k <= as_of_d)[mask]
        at_risk[:, j] = np.bincount(cg[obs], minlength=n_c)
        active[:, j] = np.bincount(cg[obs & act], minlength=n_c)
    share = np.divide(active, at_risk, out=np.full((n_c, n_k), np.nan), where=at_risk > 0)
    km = np.where(at_risk > 0, km, np.nan)
    out = pd.DataFrame(
        {
            "cohort": np.repeat(cohorts.astype("datetime64[M]").astype("datetime64[ns]"), n_k),
            "months": np.tile(np.asarray(months, dtype=np.int64), n_c),
            "cohort_size": np.repeat(np.bincount(cg, minlength=n_c), n_k),
            "at_risk": at_risk.ravel(),
            "active_share": share.ravel(),
            "km_retention": km.ravel(),
            "reactivations": np.repeat(np.bincount(cg[life.react[mask]], minlength=n_c), n_k),
        },
    )
    return out[cols]


def _edition_mask(life: _Lives, edition: str | None) -> np.ndarray:
    """Licenses of ``edition`` (every license for ``None``, ``""`` or ``"all"``)."""
    if edition in (None, "", "all"):
        return np.ones(len(life.first), bool)
    if edition not in categories(Edition):
        msg = f"edition {edition!r} is not one of 'all', {', '.join(repr(e) for e in categories(Edition))}; pass one of them"
        raise MetricsError(msg)
    return life.edition == Edition(edition).code


def pooled_retention(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, months: int = 60, *, edition: str | None = None,
    outcomes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Pooled Kaplan–Meier retention over all licenses (the headline; rules §6), month by month.

    One Kaplan–Meier fit over every license of ``edition`` (time from its first start to the
    end of its first churned term; licenses not churned are censored at ``as_of``) — never an
    average of per-cohort values. Rows for ``k = 0 … months`` while some license has been
    followed for ``k`` months: ``months``, ``licenses``, ``followed`` (licenses whose first start
    is at least k months before ``as_of``), ``churned`` (churn events by then), ``retention``. Churn happens at term
    ends, so the curve steps at anniversaries (draw it with ``line_shape="hv"``).

    >>> pooled_retention(rep).set_index("months").loc[[12, 24], "retention"]  # doctest: +SKIP
    """
    as_of = as_of_day(rep, as_of)
    cols = ["months", "licenses", "followed", "churned", "retention"]
    life = _lives(rep, as_of, churn_horizon_days, outcomes)
    if life is None:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    mask = _edition_mask(life, edition)
    dur, ev = life.duration[mask], life.event[mask]
    as_of_d = int(to_days(pd.Series([as_of]))[0])
    days = np.arange(months + 1) * 30.4375
    followed = len(dur) - np.searchsorted(np.sort(as_of_d - life.first[mask]), days, side="left")
    keep = followed > 0
    churn_days = np.sort(dur[ev])
    out = pd.DataFrame(
        {
            "months": np.arange(months + 1, dtype=np.int64),
            "licenses": len(dur),
            "followed": followed.astype(np.int64),
            "churned": np.searchsorted(churn_days, days, side="right").astype(np.int64),
            "retention": km_by_group(np.zeros(len(dur), np.int64), dur, ev, days, 1)[0],
        }
    )
    return out[keep][cols].reset_index(drop=True)


def active_licenses(
    rep: Replay, as_of: Any = None, freq: str = "MS", *, edition: str | None = None, start: Any = None, end: Any = None,
) -> pd.DataFrame:
    """Licenses covered on each day of a calendar (default: every month start), by edition.

    Periods of a license never overlap, so a difference array over days counts licenses.
    Columns: ``day, edition, active``; ``edition``, ``start`` and ``end`` (on ``day``) select rows.
    """
    as_of = as_of_day(rep, as_of)
    v = replay_view(rep, as_of)
    if not len(v.rows):
        return pd.DataFrame({"day": pd.Series(dtype="datetime64[ns]"), "edition": pd.Series(dtype="str"), "active": pd.Series(dtype="int64")})
    lo = int(v.start.min())
    hi = int(to_days(pd.Series([as_of]))[0])
    days = pd.date_range(pd.Timestamp(lo, unit="D"), pd.Timestamp(hi, unit="D"), freq=freq)
    probe = days.to_numpy().astype("datetime64[D]").astype(np.int64) - lo
    n = hi - lo + 2
    out = []
    for ed in Edition:
        name, m = ed.value, v.edition == ed.code
        diff = np.bincount(np.clip(v.start[m] - lo, 0, n - 1), minlength=n) - np.bincount(np.clip(v.end[m] - lo, 0, n - 1), minlength=n)
        out.append(pd.DataFrame({"day": days, "edition": name, "active": np.cumsum(diff)[probe]}))
    return select_rows(pd.concat(out, ignore_index=True), "day", edition, start, end).reset_index(drop=True)
