"""The fate of every term end and of every lapsed renewal code (rules §6): the central tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import _kernel as K
from ..days import NO_DAY

from ..replay import Replay
from ..vocab import (
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
    Source,
    categories,
)

from ._common import as_of_day, to_days, group_first, int_or_na, month_index, month_start, month_starts_ns, select_rows, to_datetime64, replay_view


def expiry_outcomes(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, *, edition: str | None = None, start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """One row per term end with its outcome (rules §6).

    Columns: ``license_id, edition, end, deadline, outcome, offset_days, uncovered_days,
    next_source, next_start, reactivated, cohort, catalog_version``. ``open`` only where the
    fate is not yet known at ``as_of``; an end less than ``churn_horizon_days`` before
    ``as_of`` is never ``churned``. A churned license that came back later is
    ``reactivated`` (it stays in its original cohort). ``edition`` (``None`` or ``"all"``: every
    edition) and ``start`` / ``end`` (on ``end``, inclusive) select rows.

    >>> out = expiry_outcomes(rep)  # doctest: +SKIP
    >>> out["outcome"].value_counts()  # doctest: +SKIP
    """
    as_of = as_of_day(rep, as_of)
    v = replay_view(rep, as_of)
    n = len(v.rows)
    same_next = np.zeros(n, bool)
    if n > 1:
        same_next[:-1] = v.lic[1:] == v.lic[:-1]
    nxt = np.flatnonzero(same_next) + 1
    term_end = v.end
    a = np.full(n, NO_DAY, np.int64)
    start_next = np.full(n, NO_DAY, np.int64)
    src_next = np.full(n, -1, np.int64)
    a[same_next] = v.act[nxt]
    start_next[same_next] = v.start[nxt]
    src_next[same_next] = v.src[nxt]
    knobs = rep.catalog.knob_arrays()
    deadline = K.renewal_deadlines(term_end, knobs["from_day"], knobs["grace"])
    in_window = ~K.windows_closed(term_end, a, knobs["from_day"], knobs["grace"])  # R4: a <= deadline
    as_of_d = int(to_days(pd.Series([as_of]))[0])
    has = same_next & (a != NO_DAY)
    offset = np.where(has, a - term_end, 0)
    within = has & (offset <= churn_horizon_days)
    code = np.full(n, Outcome.OPEN.code, np.int64)
    early = a < term_end
    ren, sub, upg = src_next == REN, src_next == SUB, src_next == UPG
    code[within & ren & early] = Outcome.EARLY_RENEWAL.code
    code[within & ren & ~early] = Outcome.GRACE_RENEWAL.code
    code[within & sub & early] = Outcome.EARLY_SUBSCRIPTION.code
    code[within & sub & ~early & in_window] = Outcome.GRACE_SUBSCRIPTION.code
    code[within & upg] = Outcome.UPGRADE.code
    code[within & sub & ~in_window] = Outcome.LATE_SUBSCRIPTION.code
    decided_churn = (~within) & (term_end + churn_horizon_days <= as_of_d)
    code[decided_churn] = Outcome.CHURNED.code
    versions = [x.label for x in rep.catalog.versions]
    cohort = month_starts_ns(month_index(group_first(v.lic, v.start)))
    frame = pd.DataFrame(
        {
            "license_id": rep.periods["license_id"].iloc[v.rows].reset_index(drop=True),
            "edition": pd.Categorical.from_codes(v.edition, categories=categories(Edition)),
            "end": to_datetime64(term_end),
            "deadline": to_datetime64(deadline),
            "outcome": pd.Categorical.from_codes(code, categories=list(OUTCOMES)),
            "offset_days": int_or_na(offset, has),
            "uncovered_days": int_or_na(np.maximum(start_next - term_end, 0), same_next),
            "next_source": pd.Categorical.from_codes(src_next, categories=categories(Source)),
            "next_start": to_datetime64(start_next),
            "reactivated": decided_churn & has,
            "cohort": cohort,
            "catalog_version": pd.Categorical.from_codes(rep.catalog.version_index(term_end) if n else np.empty(0, np.int64), categories=versions),
        }
    )
    if edition is None and start is None and end is None:
        return frame
    return select_rows(frame, "end", edition, start, end).reset_index(drop=True)


def forgotten_renewals(
    rep: Replay, as_of: Any = None, churn_horizon_days: int = 365, *, edition: str | None = None, start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Lapsed renewal codes (R7) and what became of them.

    One row per renewal code that lapsed: ``code, order_id, license_id, edition, kind``
    (``never_activated`` or ``rejected_late``), ``lapsed_on`` (the day after the
    deadline), ``fate`` (``upgraded``, ``replaced_by_subscription``, ``churned``, ``open``)
    and ``days_to_upgrade`` (from the lapse to the upgrade's activation). ``edition``, ``start`` and
    ``end`` (on ``lapsed_on``) select rows.
    """
    return select_rows(forgotten_codes(rep, as_of, churn_horizon_days)[1], "lapsed_on", edition, start, end).reset_index(drop=True)


def forgotten_codes(rep: Replay, as_of: Any, churn_horizon_days: int) -> tuple[np.ndarray, pd.DataFrame]:
    as_of = as_of_day(rep, as_of)
    as_of_d = int(to_days(pd.Series([as_of]))[0])
    prep = rep.prepared
    c = rep.codes
    status = c["status"].cat.codes.to_numpy() if isinstance(c["status"].dtype, pd.CategoricalDtype) else None
    gone = [CodeStatus.LAPSED, CodeStatus.UPGRADED]
    is_lapsed = (np.isin(c["status"].astype("str").to_numpy(), [s.value for s in gone]) if status is None
                 else np.isin(status, [s.code for s in gone]))
    deadline = to_days(c["deadline"])
    rows = np.flatnonzero((prep.o_sku == REN) & is_lapsed & (deadline != NO_DAY))
    lapse = K.lapse_days(deadline[rows])
    rej = rep.rejections
    late = (rej["reason"] == Reason.RENEWAL_AFTER_DEADLINE).to_numpy()
    if "rejection_order" in rep.keys:
        tried = np.isin(rows, rep.keys["rejection_order"][late])
    else:
        tried = c["code"].iloc[rows].isin(rej.loc[late, "code"]).to_numpy()
    # The upgrade that converted each renewal, and its activation day.
    act_day = to_days(c["activated_on"])
    up_rows = np.flatnonzero((prep.o_sku == UPG) & (prep.o_target >= 0) & (act_day != NO_DAY) & (act_day <= as_of_d))
    upgraded_by = np.full(len(prep.o_sku), -1, np.int64)
    upgraded_by[prep.o_target[up_rows]] = up_rows
    up = upgraded_by[rows]
    up_code = up >= 0
    up_day = np.where(up_code, act_day[np.maximum(up, 0)], NO_DAY)
    # Next coverage of the license activated on or after the lapse (non-legacy periods are in
    # activation order within a license, so one searchsorted over (license, day) keys finds it).
    v = replay_view(rep, as_of)
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
            "lapsed_on": to_datetime64(lapse),
            "fate": pd.Categorical.from_codes(fate, categories=categories(ForgottenFate)),
            "days_to_upgrade": int_or_na(up_day - lapse, up_code),
        }
    )


#: A chart's name for an open end whose deadline has passed: not renewed on time (that much is known),
#: its final fate (a late subscription, an upgrade, or churn) not yet.
LAPSED_PENDING = "lapsed_pending"


def outcome_counts(outcomes: pd.DataFrame, as_of: Any = None) -> pd.DataFrame:
    """Term ends by month of expiry and outcome: ``month, outcome, count`` (for charts).

    With ``as_of``, an ``open`` end whose deadline is before ``as_of`` counts as
    :data:`LAPSED_PENDING` — what is already known about it (not renewed on time) is shown,
    and only ends whose deadline is still ahead stay ``open``.
    """
    outcome = outcomes["outcome"].astype("str")
    if as_of is not None:
        late = (outcome == Outcome.OPEN.value).to_numpy() & (outcomes["deadline"] < pd.Timestamp(as_of)).to_numpy()
        outcome = outcome.where(~late, LAPSED_PENDING)
    order = [*OUTCOMES[:-1], LAPSED_PENDING, Outcome.OPEN.value]
    m = pd.DataFrame({"month": month_start(outcomes["end"]), "outcome": pd.Categorical(outcome, categories=order)})
    return m.groupby(["month", "outcome"], observed=True).size().rename("count").reset_index()


def forgotten_summary(forgotten: pd.DataFrame) -> pd.DataFrame:
    """Lapsed renewal codes by kind and fate: ``kind, fate, count`` (for charts)."""
    return forgotten.groupby(["kind", "fate"], observed=True).size().rename("count").reset_index()
