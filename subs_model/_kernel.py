"""The compiled per-license scan of the replay (numba).

Everything catalog-independent (id factorisation, joins, static rejections, sorting) is
done with whole-column numpy/pandas in :mod:`subs_model.replay`; what remains is a scan
per license whose state (current end, prior coverage, renewal codes waiting on the
current expiry) depends on every earlier accepted activation. That scan is a loop, so
it is compiled.

Events of one license are merged in the total order of the rules (R14):
legacy periods first, then renewal-code issues and activations by (UTC instant,
kind: issue before activation, code). Days are int64 days since 1970-01-01 (local).
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Rejection reasons in the order they are checked (0 = accepted). Keep in step with
# ``replay.Reason``.
ACCEPTED = 0
UNKNOWN_CODE = 1
WRONG_LICENSE = 2
ACTIVATED_BEFORE_ISSUE = 3
CODE_REUSED = 4
CODE_UPGRADED = 5
NO_PRIOR_SUBSCRIPTION = 6
RENEWAL_AFTER_DEADLINE = 7
UPGRADE_INVALID_TARGET = 8
AFTER_AS_OF = -1  # not seen: the activation lies after as_of

SUB, REN, UPG = 0, 1, 2
STACK, SUB_FROM_ACTIVATION = 0, 1
MAX_END_OR_ACTIVATION, FROM_EXPIRY, REN_FROM_ACTIVATION = 0, 1, 2
NONE = np.iinfo(np.int64).min


@nb.njit(cache=True, inline="always")
def _version(day: int, from_day: np.ndarray) -> int:
    v = 0
    for k in range(1, from_day.shape[0]):
        if from_day[k] <= day:
            v = k
    return v


@nb.njit(cache=True, inline="always")
def _closing_day(end: int, from_day: np.ndarray, grace: np.ndarray) -> int:
    """First day on which the grace window after ``end`` is closed.

    A day ``d >= end`` is closed when ``d >= end + grace_days`` of the version in force
    on ``d``; the renewal deadline is the day before. With one version this is
    ``end + grace_days``.
    """
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
def _lapse_waiting(wbuf, wn, closing, o_accepted, o_upgraded, o_lapsed, o_deadline):
    for k in range(wn):
        c = wbuf[k]
        if not o_accepted[c] and not o_upgraded[c] and not o_lapsed[c]:
            o_lapsed[c] = True
            o_deadline[c] = closing - 1


@nb.njit(cache=True, inline="always")
def _extend_one(sku, end, has_end, day, v, term, sub_basis, ren_basis):
    """Start and end of the period an accepted activation on ``day`` adds (R3, R6, R13)."""
    T = term[v]
    if sku == REN:
        rb = ren_basis[v]
        if rb == FROM_EXPIRY:
            start = end
            new_end = end + T
        elif rb == REN_FROM_ACTIVATION:
            start = max(end, day)
            new_end = day + T
        else:
            start = max(end, day)
            new_end = start + T
    elif not has_end:
        start = day
        new_end = day + T
    elif sub_basis[v] == SUB_FROM_ACTIVATION:
        start = max(end, day)
        new_end = day + T
    else:
        start = max(end, day)
        new_end = start + T
    if new_end < start:
        new_end = start  # nothing added: the forfeited days are simply not covered
    return start, new_end


@nb.njit(cache=True)
def scan(
    as_of,
    leg_ptr, leg_start, leg_end,
    iss_ptr, iss_order, iss_ts, iss_day,
    act_ptr, act_order, act_ts, act_day, act_static,
    o_sku, o_target,
    from_day, term, grace, sub_basis, ren_basis, legacy_prior,
    act_reason, act_pstart, act_pend, act_ver,
    o_accepted, o_actday, o_upgraded, o_lapsed, o_deadline,
    wbuf,
):  # pragma: no cover - compiled; tested through replay()
    nlic = leg_ptr.shape[0] - 1
    for lic in range(nlic):
        has_end = False
        end = 0
        prior_sub = False  # a period from an accepted activation
        prior_legacy = False
        wn = 0
        for j in range(leg_ptr[lic], leg_ptr[lic + 1]):
            if leg_start[j] > as_of:
                continue
            if not has_end or leg_end[j] > end:
                end = leg_end[j]
            has_end = True
            prior_legacy = True
        i = iss_ptr[lic]
        ie = iss_ptr[lic + 1]
        a = act_ptr[lic]
        ae = act_ptr[lic + 1]
        while i < ie or a < ae:
            if i < ie and (a >= ae or iss_ts[i] <= act_ts[a]):
                day = iss_day[i]
                c = iss_order[i]
                i += 1
                if day > as_of or o_upgraded[c]:
                    continue  # not seen yet / already converted by an upgrade (R8)
                if wn > 0:
                    closing = _closing_day(end, from_day, grace)
                    if closing <= day:
                        _lapse_waiting(wbuf, wn, closing, o_accepted, o_upgraded, o_lapsed, o_deadline)
                        wn = 0
                v = _version(day, from_day)
                if not (prior_sub or (prior_legacy and legacy_prior[v])):
                    o_lapsed[c] = True  # R14: no prior period, lapsed at once
                else:
                    closing = _closing_day(end, from_day, grace)
                    if day >= closing:
                        o_lapsed[c] = True  # R14: issued after the window closed
                        o_deadline[c] = closing - 1
                    else:
                        wbuf[wn] = c
                        wn += 1
                continue
            e = a
            a += 1
            day = act_day[e]
            if day > as_of:
                act_reason[e] = AFTER_AS_OF
                continue
            r = act_static[e]
            if r != ACCEPTED:
                act_reason[e] = r
                continue
            if wn > 0:
                closing = _closing_day(end, from_day, grace)
                if closing <= day:
                    _lapse_waiting(wbuf, wn, closing, o_accepted, o_upgraded, o_lapsed, o_deadline)
                    wn = 0
            c = act_order[e]
            sku = o_sku[c]
            v = _version(day, from_day)
            t = o_target[c]
            if o_accepted[c]:
                r = CODE_REUSED
            elif sku == REN and o_upgraded[c]:
                r = CODE_UPGRADED
            elif sku == REN and not (prior_sub or (prior_legacy and legacy_prior[v])):
                r = NO_PRIOR_SUBSCRIPTION
            elif sku == REN and (o_lapsed[c] or day >= _closing_day(end, from_day, grace)):
                r = RENEWAL_AFTER_DEADLINE
                if not o_lapsed[c]:
                    o_lapsed[c] = True
                    o_deadline[c] = _closing_day(end, from_day, grace) - 1
            elif sku == UPG and (t < 0 or o_accepted[t] or o_upgraded[t]):
                r = UPGRADE_INVALID_TARGET
            if r != ACCEPTED:
                act_reason[e] = r
                continue
            if sku == REN:
                o_deadline[c] = _closing_day(end, from_day, grace) - 1
            start, new_end = _extend_one(sku, end, has_end, day, v, term, sub_basis, ren_basis)
            act_reason[e] = ACCEPTED
            act_pstart[e] = start
            act_pend[e] = new_end
            act_ver[e] = v
            if not has_end or new_end > end:
                end = new_end
            has_end = True
            prior_sub = True
            o_accepted[c] = True
            o_actday[c] = day
            if sku == UPG:
                o_upgraded[t] = True
        if wn > 0:
            closing = _closing_day(end, from_day, grace)
            if closing <= as_of:
                _lapse_waiting(wbuf, wn, closing, o_accepted, o_upgraded, o_lapsed, o_deadline)
            else:
                for k in range(wn):
                    c = wbuf[k]
                    if not o_accepted[c] and not o_upgraded[c] and not o_lapsed[c]:
                        o_deadline[c] = closing - 1


@nb.njit(cache=True)
def group_by_license(lic: np.ndarray, nlic: int):  # pragma: no cover - compiled
    """Stable counting sort by license: (permutation, CSR pointers of size nlic+1)."""
    n = lic.shape[0]
    ptr = np.zeros(nlic + 1, np.int64)
    for k in range(n):
        ptr[lic[k] + 1] += 1
    for k in range(nlic):
        ptr[k + 1] += ptr[k]
    fill = ptr[:-1].copy()
    perm = np.empty(n, np.int64)
    for k in range(n):
        lk = lic[k]
        perm[fill[lk]] = k
        fill[lk] += 1
    return perm, ptr


@nb.njit(cache=True)
def sort_within_groups(perm: np.ndarray, ptr: np.ndarray, key: np.ndarray) -> None:  # pragma: no cover - compiled
    """Sort each license's slice of ``perm`` by ``key`` in place, stably.

    License groups are short, so insertion sort; a long group falls back to a merge sort.
    """
    for g in range(ptr.shape[0] - 1):
        lo = ptr[g]
        hi = ptr[g + 1]
        if hi - lo > 64:
            sub = perm[lo:hi].copy()
            order = np.argsort(key[sub], kind="mergesort")
            perm[lo:hi] = sub[order]
            continue
        for i in range(lo + 1, hi):
            v = perm[i]
            kv = key[v]
            j = i - 1
            while j >= lo and key[perm[j]] > kv:
                perm[j + 1] = perm[j]
                j -= 1
            perm[j + 1] = v


@nb.njit(cache=True)
def closing_days(end: np.ndarray, from_day: np.ndarray, grace: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Vectorised :func:`_closing_day`: first closed day of the grace window after each end."""
    out = np.empty(end.shape[0], np.int64)
    for k in range(end.shape[0]):
        out[k] = _closing_day(end[k], from_day, grace)
    return out
