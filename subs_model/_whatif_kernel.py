"""The compiled passes of one what-if run (see :mod:`subs_model.whatif_measure`).

:func:`prepare_orders` turns the simulator's order arrays into the replay engine's input:
one pass over the orders in row order numbers them by license (as
:func:`subs_model._join.license_order` does) and collects the activations and code
issues, then the engine's own ordering passes run on them (:func:`subs_model._join.event_order`,
:func:`subs_model._join.issue_events`, :func:`subs_model._scan.issues_before`).
:func:`measure_periods` walks the scan's accepted activations once in replay order (license,
instant) and counts active licenses, continuations by outcome, lapses and the first-year
renewal rate; :func:`measure_money` books the payments and spreads them with
:func:`subs_model.metrics.revenue.recognise_spread`. Deadlines come from the rule helpers of
:mod:`subs_model._kernel`; months are looked up in a day → month table
(:func:`month_table`), which answers what ``np.searchsorted(month_ends, day)`` answers.

Days are int64 days since 1970-01-01 (local); instants local ns (``NO_TIME``: not happened).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from . import _join as J
from . import _kernel as K
from . import _scan as S
from .metrics.revenue import recognise_spread
from .vocab import ACCEPTED, NO_DAY, NO_DAY32, NO_TIME, NS_PER_DAY, REN, SUB, UPG

__all__ = ["CONTINUATION_DAYS", "license_blocks", "measure_money", "measure_periods", "month_table", "prepare_grouped",
           "prepare_orders"]

#: A subscription activated up to this many days after the window closed counts as a continuation.
CONTINUATION_DAYS = 365
#: Rows of :func:`measure_periods`' continuation counts.
EARLY, GRACE, SUBSCRIPTION, UPGRADE = 0, 1, 2, 3
#: Columns of an order's instants (``SimCore.o_times``).
INVOICED, PAID, ISSUED, ACTIVATED = 1, 2, 4, 5


def month_table(month_ends: np.ndarray) -> np.ndarray:
    """For each day from the first month end to the last: how many month ends come before it
    (``np.searchsorted(month_ends, day)``, which :func:`month_of` reads for any day)."""
    return np.searchsorted(month_ends, np.arange(month_ends[0], month_ends[-1] + 1)).astype(np.int64)


@nb.njit(cache=True, inline="always")
def month_of(day, first_end, table, n_m):
    """The month of the horizon ``day`` falls in (0 up to the first month end, ``n_m`` after the
    last): ``np.searchsorted(month_ends, day)`` from :func:`month_table` (``first_end`` is
    ``month_ends[0]``)."""
    if day <= first_end:
        return 0
    if day - first_end >= table.shape[0]:
        return n_m
    return table[day - first_end]


@nb.njit(cache=True, nogil=True)
def prepare_orders(o_lic, o_sku, o_t, o_up, n_lic):
    """The engine's input for simulated orders (row ``k``: license ``o_lic[k]``, sku, instants
    ``o_t[k]``, upgrade target row ``o_up[k]``), as :func:`subs_model.replay.prepare` numbers a
    ledger's: orders by license (row order within one), activations by (license, instant),
    renewal-code issues by (license, instant). Returns ``o_perm, o_rank, o_ptr, n_sku, n_day,
    n_target, act_perm, act_ptr, act_num, act_iss, act_day, iss_num, iss_ptr, iss_day``."""
    n = o_lic.shape[0]
    o_ptr = np.zeros(n_lic + 1, np.int64)
    n_act = 0
    for k in range(n):
        o_ptr[o_lic[k] + 1] += 1
        n_act += o_t[k, ACTIVATED] != NO_TIME
    for g in range(n_lic):
        o_ptr[g + 1] += o_ptr[g]
    fill = o_ptr[:-1].copy()
    o_perm = np.empty(n, np.int32)
    o_rank = np.empty(n, np.int32)
    n_sku = np.empty(n, o_sku.dtype)
    n_ts = np.empty(n, np.int64)
    n_day = np.empty(n, np.int32)
    a_lic = np.empty(n_act, np.int64)
    a_ts = np.empty(n_act, np.int64)
    a_row = np.empty(n_act, np.int64)
    a = 0
    for k in range(n):  # row order: a license's orders are numbered in row order
        li = o_lic[k]
        j = fill[li]
        fill[li] = j + 1
        o_perm[j] = k
        o_rank[k] = j
        n_sku[j] = o_sku[k]
        ts = o_t[k, ISSUED]
        n_ts[j] = ts
        n_day[j] = NO_DAY32 if ts == NO_TIME else ts // NS_PER_DAY
        if o_t[k, ACTIVATED] != NO_TIME:
            a_lic[a] = li
            a_ts[a] = o_t[k, ACTIVATED]
            a_row[a] = k
            a += 1
    act_perm, act_ptr, _ = J.event_order(a_lic, a_ts, n_lic)  # same-instant activations keep row order
    act_num = np.empty(n_act, np.int32)
    act_ts = np.empty(n_act, np.int64)
    act_day = np.empty(n_act, np.int64)
    for i in range(n_act):
        p = act_perm[i]
        act_num[i] = o_rank[a_row[p]]
        act_ts[i] = a_ts[p]
        act_day[i] = a_ts[p] // NS_PER_DAY
    iss_num, iss_ptr, iss_ts, iss_day = J.issue_events(o_ptr, n_sku, n_ts, n_day)
    act_iss = np.empty(n_act, np.int32)
    S.issues_before(act_ptr, act_ts, iss_ptr, iss_ts, act_iss)
    n_target = np.full(n, -1, np.int32)
    for k in range(n):
        if o_up[k] >= 0:
            n_target[o_rank[k]] = o_rank[o_up[k]]
    return (o_perm, o_rank, o_ptr, n_sku, n_day, n_target, act_perm, act_ptr, act_num, act_iss, act_day,
            iss_num, iss_ptr, iss_day)


@nb.njit(cache=True, nogil=True)
def license_blocks(o_lic, n_lic):
    """When each license's orders are consecutive rows (the simulator writes them so): the
    licenses in the order their orders come, then those without orders by number (``seq``),
    and the rows of the ``g``-th, ``o_ptr[g] … o_ptr[g + 1] - 1``; else two empty arrays."""
    seen = np.zeros(n_lic, np.bool_)
    seq = np.empty(n_lic, np.int64)
    o_ptr = np.empty(n_lic + 1, np.int64)
    n = o_lic.shape[0]
    b = 0
    for k in range(n):
        li = o_lic[k]
        if k == 0 or li != o_lic[k - 1]:
            if seen[li]:
                return np.empty(0, np.int64), np.empty(0, np.int64)
            seen[li] = True
            seq[b] = li
            o_ptr[b] = k
            b += 1
    o_ptr[b] = n
    for li in range(n_lic):
        if not seen[li]:
            seq[b] = li
            b += 1
            o_ptr[b] = n
    return seq, o_ptr


@nb.njit(cache=True, nogil=True)
def prepare_grouped(o_sku, o_t, o_up, o_ptr):
    """:func:`prepare_orders` for orders whose licenses' rows are consecutive, licenses numbered
    in the order of their rows (:func:`license_blocks`): an order's number is its row, so
    nothing moves. Returns ``o_lic, n_day, n_target, act_perm, act_ptr, act_num, act_iss,
    act_day, iss_num, iss_ptr, iss_day`` (``o_lic``: each row's license number)."""
    n = o_sku.shape[0]
    n_lic = o_ptr.shape[0] - 1
    o_lic = np.empty(n, np.int64)
    n_ts = np.empty(n, np.int64)
    n_day = np.empty(n, np.int32)
    n_target = np.empty(n, np.int32)
    act_ptr = np.zeros(n_lic + 1, np.int64)
    a_ts = np.empty(n, np.int64)
    a_row = np.empty(n, np.int32)
    a = 0
    disorder = False
    for g in range(n_lic):
        first = a
        for k in range(o_ptr[g], o_ptr[g + 1]):
            o_lic[k] = g
            ts = o_t[k, ISSUED]
            n_ts[k] = ts
            n_day[k] = NO_DAY32 if ts == NO_TIME else ts // NS_PER_DAY
            n_target[k] = o_up[k] if o_up[k] >= 0 else -1
            at = o_t[k, ACTIVATED]
            if at != NO_TIME:
                disorder |= a > first and at < a_ts[a - 1]
                a_ts[a] = at
                a_row[a] = k
                a += 1
        act_ptr[g + 1] = a
    act_perm = np.arange(a).astype(np.int32)
    if disorder:  # activations of a license out of instant order: sorted as event_order does (stable)
        J._sort_groups(act_perm, act_ptr, a_ts)
    act_num = np.empty(a, np.int32)
    act_ts = np.empty(a, np.int64)
    act_day = np.empty(a, np.int64)
    for i in range(a):
        p = act_perm[i]
        act_num[i] = a_row[p]
        act_ts[i] = a_ts[p]
        act_day[i] = a_ts[p] // NS_PER_DAY
    iss_num, iss_ptr, iss_ts, iss_day = J.issue_events(o_ptr, o_sku, n_ts, n_day)
    act_iss = np.empty(a, np.int32)
    S.issues_before(act_ptr, act_ts, iss_ptr, iss_ts, act_iss)
    return o_lic, n_day, n_target, act_perm, act_ptr, act_num, act_iss, act_day, iss_num, iss_ptr, iss_day


@nb.njit(cache=True, inline="always")
def _covers(delta, s, e, ed, first_end, table, n_m):
    """A period ``[s, e)`` of edition ``ed`` covers the month ends from the first on or after
    ``s`` to the last before ``e``: +1 at the one, -1 after the other (summed later)."""
    delta[month_of(s, first_end, table, n_m), ed] += 1
    delta[month_of(e, first_end, table, n_m), ed] -= 1


@nb.njit(cache=True, nogil=True)
def measure_periods(init_end, seq, edition, n_ed, act_ptr, act_num, act_day, reason, pstart, pend, o_perm, o_sku,
                    from_day, grace, start_day, month_ends, table, carrier):
    """One pass over each license's periods in replay order: its initial period (licenses
    ``0 … len(init_end) - 1`` of the simulation, the year up to ``init_end``) and those its
    accepted activations added (the ``g``-th license of the replay is ``seq[g]`` of the
    simulation). Returns licenses active at each month end per edition ``[month, edition]``, the
    continuations by outcome ``[EARLY/GRACE/SUBSCRIPTION/UPGRADE, month]`` (activation month,
    against the license's previous end), lapses (month of a license's last end in the horizon),
    the first-year ends renewed within 365 days and all first-year ends, and the rows of
    accepted upgrades. ``carrier[row]`` gets the activation (replay position) of each accepted order.
    """
    n_m = month_ends.shape[0]
    first_end, end_day = month_ends[0], month_ends[n_m - 1]
    n_init = init_end.shape[0]
    delta = np.zeros((n_m + 1, n_ed), np.int64)
    cont = np.zeros((4, n_m), np.int64)
    lapsed = np.zeros(n_m, np.int64)
    ups = np.empty(reason.shape[0], np.int64)
    n_up = renewed = ends = 0
    for g in range(act_ptr.shape[0] - 1):
        lic = seq[g]
        ed = edition[lic]
        pe = NO_DAY  # the previous period's end
        last_end = NO_DAY
        if lic < n_init:
            pe = last_end = init_end[lic]
            _covers(delta, pe - 365, pe, ed, first_end, table, n_m)
        for a in range(act_ptr[g], act_ptr[g + 1]):
            if reason[a] != ACCEPTED:
                continue
            row = o_perm[act_num[a]]
            carrier[row] = a
            s, e, day, sku = np.int64(pstart[a]), np.int64(pend[a]), act_day[a], o_sku[row]
            _covers(delta, s, e, ed, first_end, table, n_m)
            if sku == UPG:
                ups[n_up] = row
                n_up += 1
            if pe != NO_DAY and start_day <= day <= end_day:
                m = month_of(day, first_end, table, n_m)
                if sku == REN:
                    cont[EARLY if day < pe else GRACE, m] += 1
                elif sku == SUB and day < K.closing_day(pe, from_day, grace) + CONTINUATION_DAYS:
                    cont[SUBSCRIPTION, m] += 1
                elif sku == UPG:
                    cont[UPGRADE, m] += 1
            if pe != NO_DAY and start_day <= pe < start_day + 365:
                ends += 1
                renewed += s - pe <= 365
            pe = e
            last_end = max(last_end, e)
        if pe != NO_DAY and start_day <= pe < start_day + 365:
            ends += 1
        if start_day <= last_end <= end_day:
            lapsed[month_of(last_end, first_end, table, n_m)] += 1
    for m in range(1, n_m + 1):
        delta[m] += delta[m - 1]
    return delta[:n_m], cont, lapsed, renewed, ends, ups[:n_up]


@nb.njit(cache=True, inline="always")
def _hash(a, d, r, mask):
    """Slot of the payment ``(a, d, r)`` in a table of ``mask + 1`` slots (a power of two)."""
    h = np.uint64(a) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(d) * np.uint64(0xC2B2AE3D27D4EB4F) \
        + np.uint64(r) * np.uint64(0x165667B19E3779F9)
    h ^= h >> np.uint64(31)
    return np.int64(h & np.uint64(mask))


@nb.njit(cache=True)
def _tally(A, D, RS, n):
    """The distinct payments ``(A, D, RS)`` among the first ``n`` and how many times each comes
    (open addressing, in first-seen order): a run's many payments share few amounts, terms and start days."""
    cap = 256  # grows with the distinct payments (a few thousand in a run of 36 months)
    slot = np.full(cap, -1, np.int64)
    ua, ud, ur, count = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64), np.zeros(n, np.int64)
    n_u = 0
    for i in range(n):
        if 2 * n_u >= cap:  # keep the table at most half full: twice as large, everything placed again
            cap *= 2
            slot = np.full(cap, -1, np.int64)
            for u in range(n_u):
                j = _hash(ua[u], ud[u], ur[u], cap - 1)
                while slot[j] >= 0:
                    j = (j + 1) & (cap - 1)
                slot[j] = u
        j = _hash(A[i], D[i], RS[i], cap - 1)
        while slot[j] >= 0 and not (ua[slot[j]] == A[i] and ud[slot[j]] == D[i] and ur[slot[j]] == RS[i]):
            j = (j + 1) & (cap - 1)
        if slot[j] < 0:
            slot[j] = n_u
            ua[n_u], ud[n_u], ur[n_u] = A[i], D[i], RS[i]
            n_u += 1
        count[slot[j]] += 1
    return ua[:n_u], ud[:n_u], ur[:n_u], count[:n_u]


@nb.njit(cache=True, nogil=True)
def measure_money(o_lic, o_sku, o_t, o_up, edition, n_ed, prices, from_day, start_day, month_ends, table, carrier, ups,
                  pstart, pend, act_day):
    """Bookings per edition ``[edition, month]`` (paid day in the horizon, at the price of the
    version in force on the invoice day, R10) and recognised revenue per month of those
    payments, each spread over the period its activation added — an upgraded renewal's with
    the upgrade's (``ups``: rows of accepted upgrades; ``carrier`` from :func:`measure_periods`)."""
    n_m = month_ends.shape[0]
    first_end, end_day = month_ends[0], month_ends[n_m - 1]
    for i in range(ups.shape[0]):
        tgt = o_up[ups[i]]
        if tgt >= 0 and carrier[tgt] < 0:
            carrier[tgt] = carrier[ups[i]]
    book = np.zeros((n_ed, n_m), np.int64)
    n = o_lic.shape[0]
    A, D, RS = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    n_pay = 0
    for k in range(n):
        paid = o_t[k, PAID]
        day = paid // NS_PER_DAY
        if paid == NO_TIME or day < start_day or day > end_day:
            continue
        inv = o_t[k, INVOICED]
        ed = edition[o_lic[k]]
        amount = prices[K.version_on(inv // NS_PER_DAY if inv != NO_TIME else start_day, from_day), ed, o_sku[k]]
        book[ed, month_of(day, first_end, table, n_m)] += amount
        c = carrier[k]
        if c < 0:
            continue
        d = np.int64(pend[c]) - np.int64(pstart[c])
        rs = np.int64(pstart[c]) if d > 0 else act_day[c]
        if rs > end_day:
            continue
        A[n_pay], D[n_pay], RS[n_pay] = amount, d, rs
        n_pay += 1
    # Payments alike (amount, days, first day) are recognised alike: each distinct one is spread
    # once, as its own group, and counted as often as it comes (integers: nothing changes).
    ua, ud, ur, count = _tally(A, D, RS, n_pay)
    n_u = ua.shape[0]
    ms, me = np.empty(n_u, np.int64), np.empty(n_u, np.int64)
    for u in range(n_u):
        ms[u] = month_of(max(ur[u], start_day), first_end, table, n_m)
        me[u] = month_of(min(ur[u] + ud[u] - 1 if ud[u] > 0 else ur[u], end_day), first_end, table, n_m)
    spread = recognise_spread(ua, ud, ur, np.arange(n_u), ms, me, month_ends, n_u)
    rec = np.zeros(n_m, np.int64)
    for m in range(n_m):
        for u in range(n_u):
            rec[m] += spread[m, u] * count[u]
    return book, rec
