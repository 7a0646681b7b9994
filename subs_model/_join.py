"""The compiled passes that order and join the ledger's events before the scan.

Activations are ordered by license and instant while joined to their orders
(:func:`order_activations`); renewal-code issues become events (:func:`issue_events`);
orders get their number per license (:func:`license_order`). Each pass is one sweep over
whole columns that plain numpy would do in several sweeps and temporaries; they release
the GIL so ranges of licenses run on threads side by side.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .days import local_day
from ._prefetch import AHEAD, prefetch_read, prefetch_write

from .vocab import (  # the engine codes, made from the enums in one place (see subs_model.vocab)
    ACCEPTED,
    ACTIVATED_BEFORE_ISSUE,
    NO_DAY,
    NO_TIME,
    REN,
    UNKNOWN_CODE,
    WRONG_LICENSE,
)


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
                d, changing = local_day(t, d0, offset, changes)
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
