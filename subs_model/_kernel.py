"""The compiled parts of the replay (numba).

The heart is :func:`scan`: per license, the state that depends on every earlier accepted
activation (current end, prior coverage, renewal codes waiting on the current expiry).
It is a loop, so it is compiled. Around it, the passes over whole columns that plain
numpy would do in several sweeps and temporaries are compiled too: ordering activations
by license and instant while joining them to their orders (:func:`order_activations`),
renewal-code issues (:func:`issue_events`), local days, and writing the result columns
(:func:`emit_periods`, :func:`code_fates`). They release the GIL: licenses are
independent, so ranges of licenses run on threads side by side.

Events of one license are merged in the total order of the rules (R14):
legacy periods first, then renewal-code issues and activations by (UTC instant,
kind: issue before activation, code). Days are int64 days since 1970-01-01 (local).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .vocab import (  # the engine codes, made from the enums in one place (see subs_model.vocab)
    ACCEPTED,
    ACTIVATED_BEFORE_ISSUE,
    AFTER_AS_OF,
    CODE_REUSED,
    CODE_UPGRADED,
    FROM_EXPIRY,
    LEGACY,
    NO_DAY,
    NO_DAY32,
    NO_PRIOR_SUBSCRIPTION,
    NO_TIME,
    NS_PER_DAY,
    REN,
    REN_FROM_ACTIVATION,
    RENEWAL_AFTER_DEADLINE,
    STATUS_ACTIVATED,
    STATUS_ISSUED,
    STATUS_LAPSED,
    STATUS_PENDING,
    STATUS_UPGRADED,
    SUB_FROM_ACTIVATION,
    UNKNOWN_CODE,
    UPG,
    UPGRADE_INVALID_TARGET,
    WRONG_LICENSE,
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


def _prefetch_intrinsic(write: int):
    """An intrinsic ``(array, index) -> None`` that asks the CPU to bring the array's element
    at ``index`` into the cache (for writing when ``write``), as ``__builtin_prefetch`` does.

    The scatter and gather passes are bound by cache misses the hardware cannot foresee;
    issued some rows ahead, the misses overlap (docs/performance.md). A prefetch never
    faults, so the index needs no check.
    """

    def prefetch(typingctx, arr, idx):
        if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
            return None
        sig = types.void(arr, idx)

        def codegen(context, builder, signature, args):
            aty = signature.args[0]
            ary = context.make_array(aty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aty, ary, [args[1]], wraparound=False)
            i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch")
            # (address, read 0 / write 1, locality 3: keep in all levels, data cache 1)
            builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, write), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return sig, codegen

    prefetch.__name__ = f"prefetch_{'write' if write else 'read'}"
    return intrinsic(prefetch)


def _no_prefetch(arr: np.ndarray, idx: int) -> None:
    """A prefetch is only a hint: without the JIT (``NUMBA_DISABLE_JIT=1``) it does nothing."""


if nb.config.DISABLE_JIT:  # plain Python, for a debugger or coverage: the hints go
    prefetch_read = prefetch_write = _no_prefetch
else:
    prefetch_read = _prefetch_intrinsic(0)
    prefetch_write = _prefetch_intrinsic(1)
#: How many rows ahead the random passes prefetch (enough to overlap a few dozen misses).
AHEAD = 16


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


@nb.njit(cache=True, inline="always")
def _csr(keys, n_groups):
    """CSR pointers of ``keys`` (each in ``0 .. n_groups - 1``): ``ptr[g]`` is how many keys
    are below ``g``."""
    ptr = np.zeros(n_groups + 1, np.int64)
    for k in range(keys.shape[0]):
        ptr[keys[k] + 1] += 1
    for g in range(n_groups):
        ptr[g + 1] += ptr[g]
    return ptr


@nb.njit(cache=True, inline="always")
def _sort_groups(perm, ptr, key):
    """Sort each group ``perm[ptr[g]:ptr[g + 1]]`` by ``key[perm]``, stably, in place; returns
    whether two members of a group share a key. Groups are short, so insertion sort; a long
    group falls back to a merge sort."""
    tie = False
    for g in range(ptr.shape[0] - 1):
        lo = ptr[g]
        hi = ptr[g + 1]
        if hi - lo > 64:
            sub = perm[lo:hi].copy()
            perm[lo:hi] = sub[np.argsort(key[sub], kind="mergesort")]
        else:
            for i in range(lo + 1, hi):
                v = perm[i]
                kv = key[v]
                j = i - 1
                while j >= lo and key[perm[j]] > kv:
                    perm[j + 1] = perm[j]
                    j -= 1
                perm[j + 1] = v
        for i in range(lo + 1, hi):
            if key[perm[i]] == key[perm[i - 1]]:
                tie = True
    return tie


@nb.njit(cache=True, nogil=True)
def event_order(lic, ts, nlic):
    """Replay order of events: by license (stable counting sort), then by ``ts`` (stable).

    Returns the permutation, CSR pointers per license (size ``nlic + 1``) and whether two
    events of one license share an instant (the caller then breaks those ties).
    """
    n = lic.shape[0]
    ptr = _csr(lic, nlic)
    fill = ptr[:-1].copy()
    perm = np.empty(n, np.int32)
    for k in range(n):
        lk = lic[k]
        perm[fill[lk]] = k
        fill[lk] += 1
    tie = _sort_groups(perm, ptr, ts)
    return perm, ptr, tie


@nb.njit(cache=True, nogil=True)
def issue_events(o_ptr, n_sku, n_ts, n_day):
    """Renewal codes issued, in replay order: order numbers, CSR pointers per license,
    instants and days (``n_day``'s dtype). Orders are numbered by license (``o_ptr``: each
    license's numbers, see :func:`license_order`; ``n_day``: their issue days); within a
    license the codes go by instant (stable). One pass counts them, one writes them and the
    pointers; a license whose codes are out of instant order (rare: exports list orders as
    they come) is sorted after."""
    nlic = o_ptr.shape[0] - 1
    m = 0
    for j in range(n_sku.shape[0]):
        m += (n_sku[j] == REN) & (n_ts[j] != NO_TIME)
    ptr = np.empty(nlic + 1, np.int64)
    ptr[0] = 0
    # Every order is written at the next slot, which moves on only for a renewal code issued
    # (no branch to mispredict); one slot more takes the last write.
    nums = np.empty(m + 1, np.int32)
    ts = np.empty(m + 1, np.int64)
    day = np.empty(m + 1, n_day.dtype)
    k = 0
    disorder = False
    for g in range(nlic):
        first = k
        for j in range(o_ptr[g], o_ptr[g + 1]):
            t = n_ts[j]
            keep = (n_sku[j] == REN) & (t != NO_TIME)
            disorder |= keep & (k > first) & (t < ts[k - 1])  # at k = 0 this reads the spare slot, masked
            nums[k] = j
            ts[k] = t
            day[k] = n_day[j]
            k += keep
        ptr[g + 1] = k
    nums, ts, day = nums[:m], ts[:m], day[:m]
    if disorder:
        _sort_groups(nums, ptr, n_ts)
        for k in range(m):
            ts[k] = n_ts[nums[k]]
            day[k] = n_day[nums[k]]
    return nums, ptr, ts, day


@nb.njit(cache=True, nogil=True)
def code_index(order_code, issue_ts, o_rank, n_codes):
    """Order number (``o_rank`` of its row) of each code issued (-1: none); a code two orders
    carry (-1: none); the first order row issued without a code (-1: none)."""
    out = np.full(n_codes, -1, np.int32)
    for k in range(order_code.shape[0]):
        if issue_ts[k] == NO_TIME:
            continue
        c = order_code[k]
        if c < 0:
            return out, -1, k
        if out[c] >= 0:
            return out, c, -1
        out[c] = o_rank[k]
    return out, -1, -1


@nb.njit(cache=True, nogil=True)
def gather(values, idx):
    """``values[idx]`` (``idx`` valid; -1 is the last value, as in numpy), prefetching ``AHEAD``
    rows on: numpy's take waits on each random read in turn."""
    n = idx.shape[0]
    out = np.empty(n, values.dtype)
    for k in range(n):
        if k + AHEAD < n:
            prefetch_read(values, idx[k + AHEAD])
        out[k] = values[idx[k]]
    return out


@nb.njit(cache=True, nogil=True)
def first_by_order(n_orders, act_num, o_perm, act_perm, ts):
    """Earliest ``ts`` of each order's activations, by order row (``NO_TIME``: none).

    Activations are in replay order: ``act_num`` their order numbers (-1 unknown code),
    ``act_perm`` their rows in ``ts``; ``o_perm`` the row of each order number.
    """
    first = np.full(n_orders, np.iinfo(np.int64).max, np.int64)
    for e in range(act_num.shape[0]):
        c = act_num[e]
        if c >= 0:
            o = o_perm[c]
            v = ts[act_perm[e]]
            if v < first[o]:  # noqa: PLR1730 - stores only when earlier
                first[o] = v
    for o in range(n_orders):
        if first[o] == np.iinfo(np.int64).max:
            first[o] = NO_TIME
    return first


@nb.njit(cache=True, nogil=True)
def license_order(o_lic, o_issue_ts, nlic):
    """Orders numbered by license (stable: row order within a license), so that the orders a
    pass over licenses touches lie together: the row of each number, the number of each
    row, each license's numbers (CSR pointers), and each number's code-issue instant."""
    n = o_lic.shape[0]
    ptr = _csr(o_lic, nlic)
    fill = ptr[:-1].copy()
    perm = np.empty(n, np.int32)
    rank = np.empty(n, np.int32)
    n_ts = np.empty(n, np.int64)
    for k in range(n):
        if k + AHEAD < n:  # the slot of the order AHEAD rows on (its license's next free number)
            prefetch_write(perm, fill[o_lic[k + AHEAD]])
        li = o_lic[k]
        j = fill[li]
        fill[li] = j + 1
        perm[j] = k
        rank[k] = j
    # The instants in a pass of their own, in number order: one random store per order above
    # instead of two.
    for j in range(n):
        if j + AHEAD < n:
            prefetch_read(o_issue_ts, perm[j + AHEAD])
        n_ts[j] = o_issue_ts[perm[j]]
    return perm, rank, ptr, n_ts


@nb.njit(cache=True, nogil=True)
def first_repeat(codes, n):
    """First position whose code (in ``0 .. n - 1``; -1 = missing) appeared before, or -1."""
    seen = np.zeros(n, np.bool_)
    for k in range(codes.shape[0]):
        c = codes[k]
        if c < 0:
            continue
        if seen[c]:
            return k
        seen[c] = True
    return -1


@nb.njit(cache=True, nogil=True)
def first_absent(present, idx):
    """First position ``k`` with ``present[idx[k]]`` false, or -1."""
    for k in range(idx.shape[0]):
        if not present[idx[k]]:
            return k
    return -1


@nb.njit(cache=True, nogil=True)
def bucket_rows(lic, ts, code, nlic, shift, rows, b_lic, b_ts, b_code):
    """Rows grouped by bucket ``lic >> shift`` (stable), with their license, instant and
    code carried along (into ``rows``, ``b_*``); returns the buckets' CSR pointers and the
    licenses' CSR pointers (events per license, cumulated).

    Writing to a few hundred buckets streams through memory; the per-license pass that
    follows (:func:`order_activations`) then reads one bucket's rows in sequence and
    places them within the bucket's own slots.
    """
    n = lic.shape[0]
    n_buckets = ((nlic - 1) >> shift) + 1 if nlic > 0 else 0
    ptr = _csr(lic, nlic)
    bptr = np.empty(n_buckets + 1, np.int64)
    for b in range(n_buckets + 1):
        bptr[b] = ptr[min(b << shift, nlic)]
    fill = bptr[:-1].copy()
    for k in range(n):
        li = lic[k]
        b = li >> shift
        dst = fill[b]
        fill[b] = dst + 1
        # each bucket is a stream of its own, too many for the hardware to follow: fetch the
        # lines it writes next
        prefetch_write(rows, dst + AHEAD)
        prefetch_write(b_lic, dst + AHEAD)
        prefetch_write(b_ts, dst + AHEAD)
        prefetch_write(b_code, dst + AHEAD)
        rows[dst] = k
        b_lic[dst] = li
        b_ts[dst] = ts[k]
        b_code[dst] = code[k]
    return bptr, ptr


@nb.njit(cache=True, nogil=True)
def order_activations(
    lo, hi, b_lo, b_hi, bptr, ptr, code_to_num, o_ptr, n_issue_ts, d0, offset, changes,
    perm, ts, code, order, static, day,
):
    """Activations of licenses ``lo .. hi - 1`` (buckets ``b_lo .. b_hi - 1``) in replay order,
    joined to their orders, with the static checks (R11); ranges of buckets may run on
    threads side by side.

    On entry ``perm``, ``order``, ``ts`` and ``code`` hold :func:`bucket_rows`' rows,
    licenses, instants and codes, bucket by bucket. Each bucket is copied aside and its
    events placed at their license's next slot within it (``ptr``, also from
    :func:`bucket_rows`: a stable counting sort), carrying the row, instant, code, order
    number (-1: unknown code; ``code_to_num`` maps codes to order numbers, ``n_issue_ts``
    is by number and ``o_ptr`` gives each license's numbers, see :func:`license_order`),
    static reason and local day; then each license's events are sorted by instant (stable).
    So the pass reads and writes one bucket's few hundred kilobytes at a time, with no
    second copy of the columns. Local days come from per-UTC-day offsets (``offset`` empty:
    left ``NO_DAY`` for the caller). Returns whether two events of a license share an
    instant, how many fall on a day whose offset changes, and the last local day.
    """
    have_offsets = offset.shape[0] > 0
    n_change = 0
    last = NO_DAY
    fill = ptr[lo:hi].copy()
    width = 0
    for b in range(b_lo, b_hi):
        width = max(width, bptr[b + 1] - bptr[b])
    s_row = np.empty(width, perm.dtype)
    s_lic = np.empty(width, order.dtype)
    s_ts = np.empty(width, ts.dtype)
    s_code = np.empty(width, code.dtype)
    for b in range(b_lo, b_hi):
        b0 = bptr[b]
        m = bptr[b + 1] - b0
        for r in range(m):
            s_row[r] = perm[b0 + r]
            s_lic[r] = order[b0 + r]
            s_ts[r] = ts[b0 + r]
            s_code[r] = code[b0 + r]
        for r in range(m):
            if r + AHEAD < m:  # the order number of the code AHEAD rows on (the slots are in cache)
                c_ahead = s_code[r + AHEAD]
                if c_ahead >= 0:
                    prefetch_read(code_to_num, c_ahead)
            if r + AHEAD // 2 < m:  # and, that number fetched by now, the order's issue instant
                c_half = s_code[r + AHEAD // 2]
                o_half = code_to_num[c_half] if c_half >= 0 else -1
                if o_half >= 0:
                    prefetch_read(n_issue_ts, o_half)
            k = s_row[r]
            li = s_lic[r]
            dst = fill[li - lo]
            fill[li - lo] += 1
            t = s_ts[r]
            c = s_code[r]
            o = code_to_num[c] if c >= 0 else -1
            perm[dst] = k
            ts[dst] = t
            code[dst] = c
            order[dst] = o
            if o < 0:
                static[dst] = UNKNOWN_CODE
            elif o < o_ptr[li] or o >= o_ptr[li + 1]:  # not one of the license's order numbers
                static[dst] = WRONG_LICENSE
            elif n_issue_ts[o] > t:
                static[dst] = ACTIVATED_BEFORE_ISSUE
            else:
                static[dst] = ACCEPTED
            if t == NO_TIME or not have_offsets:
                day[dst] = NO_DAY
            else:
                d, changing = _local_day(t, d0, offset, changes)
                n_change += changing
                day[dst] = d
                last = max(last, d)
    tie = False
    for g in range(lo, hi):
        a = ptr[g]
        b = ptr[g + 1]
        if b - a > 64:
            idx = np.argsort(ts[a:b], kind="mergesort") + a
            perm[a:b] = perm[idx]
            code[a:b] = code[idx]
            order[a:b] = order[idx]
            static[a:b] = static[idx]
            day[a:b] = day[idx]
            ts[a:b] = ts[idx]
        else:
            for i in range(a + 1, b):
                tv = ts[i]
                if tv >= ts[i - 1]:
                    continue  # already in place (the usual case)
                pv = perm[i]
                cv = code[i]
                ov = order[i]
                sv = static[i]
                dv = day[i]
                j = i - 1
                while j >= a and ts[j] > tv:
                    ts[j + 1] = ts[j]
                    perm[j + 1] = perm[j]
                    code[j + 1] = code[j]
                    order[j + 1] = order[j]
                    static[j + 1] = static[j]
                    day[j + 1] = day[j]
                    j -= 1
                ts[j + 1] = tv
                perm[j + 1] = pv
                code[j + 1] = cv
                order[j + 1] = ov
                static[j + 1] = sv
                day[j + 1] = dv
        for i in range(a + 1, b):
            if ts[i] == ts[i - 1]:
                tie = True
    return tie, n_change, last


@nb.njit(cache=True, nogil=True)
def day_span(ns):
    """First and last UTC day of the instants present (``NO_TIME`` excluded); (1, 0) when none."""
    big = np.iinfo(np.int64).max
    mn = big
    mx = NO_TIME  # NO_TIME is the least int64: it never raises the maximum
    for k in range(ns.shape[0]):  # branch-free min / max of the instants (vectorised)
        x = ns[k]
        mx = max(mx, x)
        mn = min(mn, x if x != NO_TIME else big)
    if mx == NO_TIME:
        return np.int64(1), np.int64(0)
    return mn // NS_PER_DAY, mx // NS_PER_DAY


@nb.njit(cache=True, inline="always")
def _local_day(x, d0, offset, changes):
    """Local day of the instant ``x`` (present) from the per-UTC-day offsets (``offset[d -
    d0]`` for UTC day ``d``), and whether the offset changes on its day (then the day must
    be converted exactly)."""
    pos = x // NS_PER_DAY - d0
    return (x + offset[pos]) // NS_PER_DAY, np.int64(changes[pos])


@nb.njit(cache=True, nogil=True)
def local_days(ns, d0, offset, changes, out, none):
    """Local day of each instant from per-UTC-day offsets (``none`` where the instant is
    missing); returns how many fall on a day whose offset changes (the caller converts
    those exactly) and the last day."""
    n_change = 0
    last = NO_DAY
    for k in range(ns.shape[0]):
        x = ns[k]
        if x == NO_TIME:
            out[k] = none
            continue
        d, changing = _local_day(x, d0, offset, changes)
        n_change += changing
        out[k] = d
        last = max(last, d)
    return n_change, last


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
