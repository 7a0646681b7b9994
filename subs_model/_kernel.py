"""The rules on scalars, compiled (numba): the fast path's twin of :mod:`subs_model.rules`.

One small inlined helper per rule (``closing_day``, ``renewal_refusal``,
``upgrade_target_refusal``, ``extend``, …), each citing its R-number and named as its
twin in :mod:`subs_model.rules`. The replay's scan (:mod:`subs_model._scan`), the
simulator, the metrics, calibrate and the what-if all call these helpers, or their forms
over whole columns at the end of this module, so no other module re-derives a deadline.
Also here: the named columns and flags of the scan's per-order state.

Days are int64 days since 1970-01-01 (local).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .vocab import (  # the engine codes, made from the enums in one place (see subs_model.vocab)
    ACCEPTED,
    CODE_REUSED,
    CODE_UPGRADED,
    FROM_EXPIRY,
    NO_DAY32,
    NO_PRIOR_SUBSCRIPTION,
    REN,
    REN_FROM_ACTIVATION,
    RENEWAL_AFTER_DEADLINE,
    STATUS_ACTIVATED,
    STATUS_ISSUED,
    STATUS_LAPSED,
    STATUS_PENDING,
    STATUS_UPGRADED,
    SUB_FROM_ACTIVATION,
    UPGRADE_INVALID_TARGET,
)

# -- the scan's per-order state ----------------------------------------------------------------------------
# One row of ``N_STATE`` int32 per order number (one cache line holds four orders, so an event
# touches one line), its columns named here:
FLAGS = 0  # what happened to the code: ACCEPTED_FLAG | UPGRADED_FLAG | LAPSED_FLAG (0: open)
ACTIVATED_ON = 1  # the day its activation was accepted (when ACCEPTED_FLAG)
DEADLINE = 2  # a renewal code's deadline (NO_DAY32: none yet)
ISSUED_ON = 3  # the day the code was issued (NO_DAY32: not issued), for the code fates
N_STATE = 4
# The flags (rules.py's CodeState: OPEN, ACCEPTED, LAPSED, UPGRADED; a code may be lapsed and later upgraded).
ACCEPTED_FLAG, UPGRADED_FLAG, LAPSED_FLAG = 1, 2, 4


# -- the rules, on scalars (each the twin of a function of subs_model/rules.py) ------------------------------
# Inlined into every kernel that applies a rule: the replay's scan, the code fates, the simulator
# and the vectorised forms below that the metrics, calibrate and the what-if call. Scalars only: an
# array passed to an inlined helper gets reference-count updates on each call that numba does not
# always prune (see docs/performance.md). Days are int days since 1970-01-01; ``closing`` is the
# first closed day of the grace window after the current end (:func:`closing_day`), which the scan
# keeps in step with the end. ``version_on`` and ``closing_day`` read the catalog's per-version
# arrays: the version table is the one thing that is not a scalar.
@nb.njit(cache=True, inline="always")
def is_accepted(f):
    """R11: the code's activation was accepted (flags ``f``; rules.py: ``CodeState.ACCEPTED``)."""
    return f & ACCEPTED_FLAG != 0


@nb.njit(cache=True, inline="always")
def is_upgraded(f):
    """R8: the renewal code was converted by an upgrade (rules.py: ``CodeState.UPGRADED``)."""
    return f & UPGRADED_FLAG != 0


@nb.njit(cache=True, inline="always")
def is_lapsed(f):
    """R7: the renewal code lapsed (rules.py: ``CodeState.LAPSED``)."""
    return f & LAPSED_FLAG != 0


@nb.njit(cache=True, inline="always")
def is_open(f):
    """R14: neither accepted, upgraded nor lapsed: a renewal code may wait (rules.py: ``CodeState.OPEN``)."""
    return f == 0


@nb.njit(cache=True, inline="always")
def version_on(day, from_day):
    """R10: index of the catalog version in force on ``day`` (the first also governs earlier days);
    twin of ``rules.version_on``."""
    v = 0
    for k in range(1, from_day.shape[0]):
        if from_day[k] <= day:
            v = k
    return v


@nb.njit(cache=True, inline="always")
def closing_day(end, from_day, grace):
    """R4, R7, R10: first day on which the grace window after ``end`` is closed — the first
    ``d >= end`` with ``d >= end + grace_days`` of the version in force on ``d``; twin of
    ``rules.closing_day``."""
    nv = from_day.shape[0]
    c = end + grace[0]
    for k in range(nv):
        c = end + grace[k]
        if k > 0 and from_day[k] > c:
            c = from_day[k]
        if k + 1 == nv or c < from_day[k + 1]:
            return c
    return c


@nb.njit(cache=True, inline="always")
def renewal_deadline(closing):
    """R4: the last day a renewal may be activated, the day before the window's ``closing`` day;
    twin of ``rules.renewal_deadline`` (which takes the end)."""
    return closing - 1


@nb.njit(cache=True, inline="always")
def lapse_day(deadline):
    """R7: the day a renewal code whose ``deadline`` passed is lapsed (the closing day); the day
    ``rules.lapse_waiting`` runs."""
    return deadline + 1


@nb.njit(cache=True, inline="always")
def window_closed(day, closing):
    """R4, R7: whether ``day`` is after the renewal deadline (the window closed on ``closing``);
    twin of ``rules.window_closed``."""
    return day >= closing


@nb.njit(cache=True, inline="always")
def has_prior(prior_sub, prior_legacy, legacy_counts):
    """R5: the license had a period before — an accepted activation, or a legacy period when
    ``legacy_counts_as_prior`` of the version in force; twin of ``rules.has_prior``."""
    return prior_sub or (prior_legacy and legacy_counts)


@nb.njit(cache=True, inline="always")
def reuse_refusal(f):
    """R11: a code is activated at most once (``code_reused``, else ACCEPTED); twin of ``rules.reuse_refusal``."""
    return CODE_REUSED if is_accepted(f) else ACCEPTED


@nb.njit(cache=True, inline="always")
def renewal_refusal(f, prior, day, closing):
    """R8, R5, R4/R7: why a renewal code (flags ``f``) activated on ``day`` is refused
    (``code_upgraded``, ``no_prior_subscription``, ``renewal_after_deadline``), else ACCEPTED;
    twin of ``rules.renewal_refusal``."""
    if is_upgraded(f):
        return CODE_UPGRADED
    if not prior:
        return NO_PRIOR_SUBSCRIPTION
    if is_lapsed(f) or window_closed(day, closing):
        return RENEWAL_AFTER_DEADLINE
    return ACCEPTED


@nb.njit(cache=True, inline="always")
def upgrade_target_refusal(has_target, target_flags):
    """R8: an upgrade naming no renewal of its license, or one already activated or upgraded, is
    refused (``upgrade_invalid_target``), else ACCEPTED; twin of ``rules.upgrade_target_refusal``."""
    if not has_target or is_accepted(target_flags) or is_upgraded(target_flags):
        return UPGRADE_INVALID_TARGET
    return ACCEPTED


@nb.njit(cache=True, inline="always")
def issue_fate(prior, day, closing):
    """R14: flags and deadline of a renewal code issued on ``day`` — 0 (open: it waits on the
    current expiry), or lapsed at once without a prior period (R5; no deadline) or after the
    window closed (deadline: the day before it closed); twin of ``rules.issue_fate``."""
    if not prior:
        return LAPSED_FLAG, NO_DAY32
    if window_closed(day, closing):
        return LAPSED_FLAG, renewal_deadline(closing)
    return 0, NO_DAY32


@nb.njit(cache=True, inline="always")
def extend(sku, end, has_end, day, term, sb, rb):
    """R3, R6, R13: ``(start, new_end)`` of the period an activation accepted on ``day`` adds, with
    ``end`` the license's end before it (``has_end`` false: none) and the term ``term`` and bases
    ``sb`` / ``rb`` of the version in force (R10); twin of ``rules.extend``."""
    if sku == REN:
        if rb == FROM_EXPIRY:
            start = end
            new_end = end + term
        elif rb == REN_FROM_ACTIVATION:
            start = max(end, day)
            new_end = day + term
        else:
            start = max(end, day)
            new_end = start + term
    elif not has_end:
        start = day
        new_end = day + term
    elif sb == SUB_FROM_ACTIVATION:
        start = max(end, day)
        new_end = day + term
    else:
        start = max(end, day)
        new_end = start + term
    if new_end < start:  # noqa: PLR1730 - max() here changed numba's generated code (slower scan)
        new_end = start  # nothing added: the forfeited days are simply not covered
    return start, new_end


@nb.njit(cache=True, inline="always")
def issued_by(issued_on, as_of):
    """R14: the code was issued on or before ``as_of`` (``issued_on`` NO_DAY32: not issued)."""
    return issued_on != NO_DAY32 and issued_on <= as_of


@nb.njit(cache=True, inline="always")
def code_status(f, issued_on, as_of):
    """R14: the code's status as of ``as_of`` (a CodeStatus engine code) from its flags and issue
    day (NO_DAY32: not issued); twin of ``rules.code_status``."""
    if is_upgraded(f):
        return STATUS_UPGRADED
    if not issued_by(issued_on, as_of):
        return STATUS_PENDING
    if is_accepted(f):
        return STATUS_ACTIVATED
    if is_lapsed(f):
        return STATUS_LAPSED
    return STATUS_ISSUED


@nb.njit(cache=True, inline="always")
def lapse_waiting(wbuf, wn, closing, ost):
    """R7: the window after the current end closed with the license uncovered: the ``wn`` renewal
    codes waiting on it (``wbuf``) that are still open lapse, their deadline the window's last
    day; twin of ``rules.lapse_waiting``."""
    for k in range(wn):
        c = wbuf[k]
        if is_open(ost[c, FLAGS]):
            ost[c, FLAGS] = LAPSED_FLAG
            ost[c, DEADLINE] = renewal_deadline(closing)


# -- the rules over whole columns, for the metrics, calibrate and the what-if ----------------------------------
@nb.njit(cache=True)
def closing_days(end: np.ndarray, from_day: np.ndarray, grace: np.ndarray) -> np.ndarray:
    """:func:`closing_day` of each end: first closed day of the grace window after it (R4, R7, R10)."""
    out = np.empty(end.shape[0], np.int64)
    for k in range(end.shape[0]):
        out[k] = closing_day(end[k], from_day, grace)
    return out


@nb.njit(cache=True)
def renewal_deadlines(end: np.ndarray, from_day: np.ndarray, grace: np.ndarray) -> np.ndarray:
    """:func:`renewal_deadline` of each end (R4, R10)."""
    out = np.empty(end.shape[0], np.int64)
    for k in range(end.shape[0]):
        out[k] = renewal_deadline(closing_day(end[k], from_day, grace))
    return out


@nb.njit(cache=True)
def windows_closed(end: np.ndarray, day: np.ndarray, from_day: np.ndarray, grace: np.ndarray) -> np.ndarray:
    """:func:`window_closed`: whether each ``day`` is after the renewal deadline of its ``end``
    (R4, R7, R10)."""
    out = np.empty(end.shape[0], np.bool_)
    for k in range(end.shape[0]):
        out[k] = window_closed(day[k], closing_day(end[k], from_day, grace))
    return out


@nb.njit(cache=True)
def lapse_days(deadline: np.ndarray) -> np.ndarray:
    """:func:`lapse_day` of each deadline (R7; callers mask missing ones)."""
    out = np.empty(deadline.shape[0], np.int64)
    for k in range(deadline.shape[0]):
        out[k] = lapse_day(deadline[k])
    return out
