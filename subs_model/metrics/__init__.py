"""Metrics of a replay (the rules' §6): pure functions of a :class:`~subs_model.replay.Replay`.

Every function takes a replay (simulated or real) and returns tidy DataFrames; nothing
here draws or writes. Money columns name their unit (``*_kop``: integer kopecks). The
central table is :func:`expiry_outcomes` — one row per term end with its fate — from which
renewal rates, timing, grace usage, forgotten renewals and cohort retention are counted.

Maturity (rules §6)
-------------------
Each rate is known at a moment and counts only the term ends decided by then:

- *on-time rate* (known on ``deadline + 1``) = ends renewed by the deadline (early or in
  grace) / ends whose deadline is before ``as_of``; beside it the on-time continuation rate
  (also full-price subscriptions in the window) and the grace share;
- *continued rate* (known on ``end + churn_horizon_days``) = ends not churned / ends with
  ``end + churn_horizon_days <= as_of``;
- *upgrade conversion* = lapsed renewal codes upgraded within ``upgrade_window_days`` of the
  lapse / codes whose lapse + window <= ``as_of``.

Every rate comes with its denominator and the window of ends it covers.

The package is split by domain: :mod:`.outcomes` (the fate of ends and lapsed codes),
:mod:`.rates` (renewal rates, timing, grace), :mod:`.revenue` (money), :mod:`.cohorts`
(retention, active licenses), :mod:`.timing` (order lead times).
"""

from __future__ import annotations

from ..vocab import OUTCOMES, Outcome
from ._common import IN_GRACE, ON_TIME, RENEWALS, RENEWED, SUBSCRIPTIONS, MonthAdder
from .cohorts import covered_at, active_licenses, cohort_retention, km_by_group, pooled_retention
from .outcomes import LAPSED_PENDING, forgotten_codes, expiry_outcomes, forgotten_renewals, forgotten_summary, outcome_counts
from .rates import (
    GraceUsage,
    RenewalTiming,
    rate_table,
    expiry_competing_risks,
    grace_usage,
    period_over_period,
    renewal_rates,
    renewal_timing,
)
from .revenue import REVENUE_COLUMNS, recognise_spread, expiry_calendar, revenue, upgrade_conversion, upgrade_revenue
from .timing import STAGE_PAIRS, lead_times

__all__ = [
    "IN_GRACE",
    "LAPSED_PENDING",
    "ON_TIME",
    "OUTCOMES",
    "RENEWALS",
    "RENEWED",
    "REVENUE_COLUMNS",
    "STAGE_PAIRS",
    "SUBSCRIPTIONS",
    "GraceUsage",
    "Outcome",
    "RenewalTiming",
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
    "period_over_period",
    "pooled_retention",
    "renewal_rates",
    "renewal_timing",
    "revenue",
    "upgrade_conversion",
    "upgrade_revenue",
]

_PRIVATE = (MonthAdder, covered_at, forgotten_codes, rate_table, recognise_spread)  # used by tests, insights and the what-if
