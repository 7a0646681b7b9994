"""The compiled scan of the replay and the writers of its result columns.

:func:`scan` walks each license's events in the rules' total order (R14), keeping the
state that depends on every earlier accepted activation (current end, prior coverage,
renewal codes waiting on the current expiry); every decision is one of the named rule
helpers of :mod:`subs_model._kernel`, the twins of :mod:`subs_model.rules`. The writers
(:func:`emit_periods`, :func:`emit_rejections`, :func:`code_fates`) turn the scan's
state into the result's columns.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._kernel import (
    ACCEPTED_FLAG,
    ACTIVATED_ON,
    DEADLINE,
    FLAGS,
    ISSUED_ON,
    LAPSED_FLAG,
    N_STATE,
    UPGRADED_FLAG,
    closing_day,
    code_status,
    extend,
    has_prior,
    is_accepted,
    is_lapsed,
    is_open,
    is_upgraded,
    issue_fate,
    issued_by,
    lapse_waiting,
    renewal_deadline,
    renewal_refusal,
    reuse_refusal,
    upgrade_target_refusal,
    version_on,
    window_closed,
)
from ._prefetch import AHEAD, prefetch_read

from .vocab import (  # the engine codes, made from the enums in one place (see subs_model.vocab)
    ACCEPTED,
    AFTER_AS_OF,
    LEGACY,
    NO_DAY32,
    NO_TIME,
    NS_PER_DAY,
    REN,
    RENEWAL_AFTER_DEADLINE,
    UPG,
)


@nb.njit(cache=True, nogil=True)
def scan(
    as_of,
    leg_ptr, leg_start, leg_end,
    iss_ptr, iss_num, iss_day,
    act_ptr, act_num, act_iss, act_day, act_static,
    n_sku, n_target,
    from_day, term, grace, sub_basis, ren_basis, legacy_prior,
    act_reason, act_pstart, act_pend, act_ver,
    ost,
    wbuf,
):
    """Scan licenses ``0 .. len(act_ptr) - 2`` (pass slices of the pointer arrays for a range
    of licenses: pointers are absolute). Returns how many periods the range makes (legacy
    periods seen by ``as_of`` plus accepted activations that add days).

    Orders are referred to by number (``iss_num``, ``act_num``, ``n_sku``, ``n_target`` and
    the state ``ost`` all use one numbering; the replay numbers them by license, so that a
    license's orders lie together). The loop is ``rules.replay_license``; each decision is one
    of the rule helpers above."""
    nlic = leg_ptr.shape[0] - 1
    n_periods = 0
    for lic in range(nlic):
        has_end = False
        end = 0
        prior_sub = False  # a period from an accepted activation
        prior_legacy = False
        wn = 0  # renewal codes waiting on the current expiry, in wbuf
        for j in range(leg_ptr[lic], leg_ptr[lic + 1]):
            if leg_start[j] > as_of:
                continue
            n_periods += 1
            if not has_end or leg_end[j] > end:
                end = leg_end[j]
            has_end = True
            prior_legacy = True
        closing = closing_day(end, from_day, grace)  # kept in step with end (used only once there is one)
        i = iss_ptr[lic]
        ie = iss_ptr[lic + 1]
        a = act_ptr[lic]
        ae = act_ptr[lic + 1]
        while i < ie or a < ae:
            if i < ie and (a >= ae or i < act_iss[a]):  # codes issued up to the activation's instant first
                day = iss_day[i]
                c = iss_num[i]
                i += 1
                if day > as_of or is_upgraded(ost[c, FLAGS]):
                    continue  # not seen yet / already converted by an upgrade (R8)
                if wn > 0 and window_closed(day, closing):
                    lapse_waiting(wbuf, wn, closing, ost)
                    wn = 0
                v = version_on(day, from_day)
                fate, deadline = issue_fate(has_prior(prior_sub, prior_legacy, legacy_prior[v]), day, closing)
                if fate == 0:
                    wbuf[wn] = c
                    wn += 1
                else:
                    ost[c, FLAGS] |= fate
                    if deadline != NO_DAY32:
                        ost[c, DEADLINE] = deadline
                continue
            e = a
            a += 1
            day = act_day[e]
            if day > as_of:
                act_reason[e] = AFTER_AS_OF
                continue
            r = act_static[e]  # identity_refusal (R11), decided in preparation
            if r != ACCEPTED:
                act_reason[e] = r
                continue
            if wn > 0 and window_closed(day, closing):
                lapse_waiting(wbuf, wn, closing, ost)
                wn = 0
            c = act_num[e]
            sku = n_sku[c]
            v = version_on(day, from_day)
            t = -1
            flags = ost[c, FLAGS]
            r = reuse_refusal(flags)
            if r == ACCEPTED:
                if sku == REN:
                    r = renewal_refusal(flags, has_prior(prior_sub, prior_legacy, legacy_prior[v]), day, closing)
                    if r == RENEWAL_AFTER_DEADLINE and not is_lapsed(flags):  # R7: a late renewal's code lapses
                        ost[c, FLAGS] = flags | LAPSED_FLAG
                        ost[c, DEADLINE] = renewal_deadline(closing)
                elif sku == UPG:
                    t = n_target[c]
                    r = upgrade_target_refusal(t >= 0, ost[t, FLAGS] if t >= 0 else 0)
            if r != ACCEPTED:
                act_reason[e] = r
                continue
            if sku == REN:
                ost[c, DEADLINE] = renewal_deadline(closing)
            start, new_end = extend(sku, end, has_end, day, term[v], sub_basis[v], ren_basis[v])
            act_reason[e] = ACCEPTED
            act_pstart[e] = start
            act_pend[e] = new_end
            act_ver[e] = v
            if new_end > start:
                n_periods += 1
            if not has_end or new_end > end:
                end = new_end
                closing = closing_day(end, from_day, grace)
            has_end = True
            prior_sub = True
            ost[c, FLAGS] |= ACCEPTED_FLAG
            ost[c, ACTIVATED_ON] = day
            if sku == UPG:
                ost[t, FLAGS] |= UPGRADED_FLAG  # R8: the upgrade takes effect when its code is accepted
        if wn > 0:
            if window_closed(as_of, closing):
                lapse_waiting(wbuf, wn, closing, ost)
            else:  # still waiting on as_of: the deadline they would have
                for k in range(wn):
                    c = wbuf[k]
                    if is_open(ost[c, FLAGS]):
                        ost[c, DEADLINE] = renewal_deadline(closing)
    return n_periods


@nb.njit(cache=True, nogil=True)
def issues_before(act_ptr, act_ts, iss_ptr, iss_ts, out):
    """For each activation (replay order): the index of its license's first renewal-code
    issue at a later instant, into ``out``. The scan takes the issues before it first, so it
    needs no instants (both sides are in instant order within a license). Pass slices of
    the pointer arrays for a range of licenses (pointers are absolute)."""
    for lic in range(act_ptr.shape[0] - 1):
        i = iss_ptr[lic]
        ie = iss_ptr[lic + 1]
        for a in range(act_ptr[lic], act_ptr[lic + 1]):
            t = act_ts[a]
            while i < ie and iss_ts[i] <= t:
                i += 1
            out[a] = i


@nb.njit(cache=True, nogil=True)
def emit_periods(
    lic0, k0, as_of, leg_ptr, leg_start, leg_end, act_ptr, reason, pstart, pend, ver, a_num, a_day, a_perm,
    o_perm, n_sku, a_code, n_oid, lic, start, end, src, version, activated, act_row, order, code, oid,
):
    """Write the periods of licenses ``lic0 .. lic0 + len(act_ptr) - 2`` from row ``k0`` on.

    The rows come out in (license, start) order: per license the legacy periods seen by
    ``as_of`` first (by start), then the periods of accepted activations, whose starts
    never decrease and never fall before an earlier end. Days become datetime64[ns]
    values (``NO_TIME`` is NaT). ``a_num`` is each activation's order number (see
    :func:`license_order`), ``o_perm`` the row of each number and ``n_sku`` the sku by
    number. ``act_row`` and ``order`` are the activation's and the order's rows (-1 for
    legacy); when ``a_code`` / ``n_oid`` (categorical codes of the activations' code in
    replay order, and of the orders' order_id by order number) are not empty, ``code`` /
    ``oid`` get their codes (-1 for legacy). Returns the next free row.
    """
    nlic = act_ptr.shape[0] - 1
    with_code = a_code.shape[0] > 0
    with_oid = n_oid.shape[0] > 0
    with_rows = act_row.shape[0] > 0
    k = k0
    for g in range(nlic):
        li = lic0 + g
        for j in range(leg_ptr[g], leg_ptr[g + 1]):
            if leg_start[j] <= as_of:
                lic[k] = li
                start[k] = leg_start[j] * NS_PER_DAY
                end[k] = leg_end[j] * NS_PER_DAY
                src[k] = LEGACY
                version[k] = -1
                activated[k] = NO_TIME
                if with_rows:
                    act_row[k] = -1
                order[k] = -1
                if with_code:
                    code[k] = -1
                if with_oid:
                    oid[k] = -1
                k += 1
        for e in range(act_ptr[g], act_ptr[g + 1]):
            if reason[e] == ACCEPTED and pend[e] > pstart[e]:
                c = a_num[e]
                o = o_perm[c]
                lic[k] = li
                start[k] = np.int64(pstart[e]) * NS_PER_DAY
                end[k] = np.int64(pend[e]) * NS_PER_DAY
                src[k] = n_sku[c]
                version[k] = ver[e]
                activated[k] = np.int64(a_day[e]) * NS_PER_DAY
                row = a_perm[e]
                if with_rows:
                    act_row[k] = row
                order[k] = o
                if with_code:
                    code[k] = a_code[e]
                if with_oid:
                    oid[k] = n_oid[c]
                k += 1
    return k


@nb.njit(cache=True, nogil=True)
def emit_rejections(act_ptr, reason, act_perm, act_day, act_num, o_perm, act_code):
    """Rows of the rejections table, in replay order: activation row, license, code (when
    ``act_code`` is not empty), day (datetime64[ns]), reason (0-based) and order row (-1:
    unknown code; ``act_num`` holds order numbers, ``o_perm`` their rows)."""
    n = 0
    for e in range(reason.shape[0]):
        if reason[e] > 0:
            n += 1
    with_code = act_code.shape[0] > 0
    rows = np.empty(n, np.int32)
    lic = np.empty(n, np.int32)
    code = np.empty(n if with_code else 0, np.int32)
    day = np.empty(n, np.int64)
    why = np.empty(n, np.int8)
    order = np.empty(n, np.int32)
    k = 0
    for g in range(act_ptr.shape[0] - 1):
        for e in range(act_ptr[g], act_ptr[g + 1]):
            if reason[e] > 0:
                rows[k] = act_perm[e]
                lic[k] = g
                if with_code:
                    code[k] = act_code[e]
                day[k] = np.int64(act_day[e]) * NS_PER_DAY
                why[k] = reason[e] - 1
                c = act_num[e]
                order[k] = o_perm[c] if c >= 0 else -1
                k += 1
    return rows, lic, code, day, why, order


@nb.njit(cache=True, nogil=True)
def init_order_state(ost, issue_day, lo, hi):
    """Initial state of order numbers ``lo .. hi - 1`` (see :data:`FLAGS`): open, no
    activation day, no deadline; the day the code was issued."""
    for j in range(lo, hi):
        ost[j, FLAGS] = 0
        ost[j, ACTIVATED_ON] = 0
        ost[j, DEADLINE] = NO_DAY32
        ost[j, ISSUED_ON] = issue_day[j]


@nb.njit(cache=True, nogil=True)
def code_fates(lo, hi, as_of, o_rank, o_sku, ost, status, act_ns, dl_ns):
    """Status (:func:`code_status`), activation and deadline instants (datetime64[ns]) of order
    rows ``lo .. hi - 1`` from the scan's per-order state ``ost`` at each row's number
    (``o_rank``; ``o_sku`` by row). The rows are written in sequence and the state read
    where it lies, fetched ``AHEAD`` rows on (one random read per order instead of three
    random stores). A deadline is reported for a renewal code issued by ``as_of`` that has one.
    """
    flat = ost.reshape(-1)  # the prefetch takes one index: the state's rows are N_STATE int32 each
    for k in range(lo, hi):
        if k + AHEAD < hi:
            prefetch_read(flat, o_rank[k + AHEAD] * N_STATE)
        j = o_rank[k]
        flags = ost[j, FLAGS]
        issued_on = ost[j, ISSUED_ON]
        status[k] = code_status(flags, issued_on, as_of)
        act_ns[k] = np.int64(ost[j, ACTIVATED_ON]) * NS_PER_DAY if is_accepted(flags) else NO_TIME
        dl = ost[j, DEADLINE]
        has_dl = o_sku[k] == REN and issued_by(issued_on, as_of) and dl != NO_DAY32
        dl_ns[k] = np.int64(dl) * NS_PER_DAY if has_dl else NO_TIME
