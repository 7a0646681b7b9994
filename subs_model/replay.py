"""Replay a ledger into coverage periods, code fates and rejections (rules R1–R14).

The work is split in two, both over whole columns:

1. *Preparation* (:func:`subs_model.prepared.prepare`, catalog-independent, one time zone; a :class:`Prepared`
   the caller may hold for several replays): number license ids and codes (categorical columns sharing their
   dictionaries by their codes, strings by hashing), join activations to their orders
   and upgrades to their renewal acts, compute the static rejections (``unknown_code``,
   ``wrong_license``, ``activated_before_issue``) and sort events into the total replay
   order ``(license, instant, kind, code)`` — legacy periods first, a code issue before
   an activation at the same instant.
2. *Scan* (:mod:`subs_model._scan`, compiled, with the rule helpers of :mod:`subs_model._kernel`): per license, the state that depends on
   earlier accepted activations — the current end, prior coverage (R5) and the renewal
   codes waiting on the current expiry (R7, R14) — then the result columns.

The compiled passes run over ranges of licenses on two threads for large ledgers (the
result does not depend on it). Replaying the same ledger under another catalog or
``as_of`` reuses step 1. The result, :class:`~subs_model.result.Replay`, and the builders
of its tables live in :mod:`subs_model.result`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from . import _kernel as K
from . import _scan as S
from .catalog import Catalog
from .days import as_day, days_to_datetime
from .ledger import Ledger
from .prepared import Prepared, prepare_ledger, work_ranges
from .result import Replay, codes_table, periods_table, rejections_table
from .vocab import CodeStatus, Reason, Source
from .workers import pool as worker_pool
from .workers import run as run_ranges

__all__ = ["CodeStatus", "Reason", "Replay", "Source", "replay", "scan_prepared"]


REASONS: tuple[Reason, ...] = tuple(Reason)  # engine code k+1 ↔ REASONS[k] (Reason.code)


def _license_ranges(p: Prepared) -> list[tuple[int, int]]:
    work = p.act_ptr + p.iss_ptr + p.leg_ptr  # cumulative events per license
    return work_ranges(work, int(work[-1]))


def scan_prepared(p: Prepared, knobs: dict[str, np.ndarray], as_of_day: int) -> dict[str, Any]:
    """Run the compiled scan over prepared arrays; activation results are in replay order."""
    n_a = len(p.act_day)
    out: dict[str, Any] = {
        # Days of periods fit int32.
        "reason": np.empty(n_a, np.int8), "pstart": np.empty(n_a, np.int32), "pend": np.empty(n_a, np.int32),
        # The scan's per-order state (see _kernel.FLAGS), by order number: each
        # thread fills the rows of its licenses' orders (its memory, touched first there).
        "ver": np.empty(n_a, np.int16), "ostate": np.empty((len(p.n_issue_day), K.N_STATE), np.int32),
    }

    def scan(lo: int, hi: int) -> int:
        S.init_order_state(out["ostate"], p.n_issue_day, p.o_ptr[lo], p.o_ptr[hi])
        return S.scan(
            as_of_day,
            p.leg_ptr[lo : hi + 1], p.leg_start, p.leg_end,
            p.iss_ptr[lo : hi + 1], p.iss_num, p.iss_day,
            p.act_ptr[lo : hi + 1], p.act_num, p.act_iss, p.act_day, p.act_static,
            p.n_sku, p.n_target,
            knobs["from_day"], knobs["term"], knobs["grace"], knobs["sub_basis"], knobs["ren_basis"], knobs["legacy_prior"],
            out["reason"], out["pstart"], out["pend"], out["ver"],
            out["ostate"],
            np.empty(max(int(np.diff(p.iss_ptr[lo : hi + 1]).max(initial=0)), 1), np.int64),  # codes waiting
        )

    ranges = _license_ranges(p)
    out["ranges"] = ranges
    out["n_periods"] = run_ranges(scan, ranges)
    return out


def replay(ledger: Ledger | Prepared, catalog: Catalog | None = None, as_of: Any = None,
           engine: str = "fast") -> Replay:
    """Replay ``ledger`` under ``catalog`` into periods, code fates and rejections.

    Parameters
    ----------
    ledger : Ledger or Prepared
        A :class:`Prepared` (from :func:`prepare`) spares repeated replays of one ledger its
        preparation; a ``Ledger`` is prepared for this replay alone.
    catalog : Catalog, optional
        Defaults to :meth:`Catalog.default`.
    as_of : date-like, optional
        The replay sees only what happened on or before this day; defaults to the
        ledger's last event day.
    engine : {"fast", "reference"}
        ``"fast"``: the compiled engine. ``"reference"``: the plain-Python specification
        :func:`subs_model.rules.reference_replay` (slow; the same tables).

    Examples
    --------
    >>> import subs_model as sm
    >>> rep = sm.replay(sm.read_ledger("data/sample"), sm.Catalog.default(), as_of="2026-06-30")  # doctest: +SKIP
    >>> rep.periods.columns.tolist()  # doctest: +SKIP
    ['license_id', 'start', 'end', 'source', 'code', 'order_id', 'activated_on', 'catalog_version']
    """
    if engine not in ("fast", "reference"):
        msg = f"replay(): unknown engine {engine!r}; choose 'fast' or 'reference'"
        raise ValueError(msg)
    cat = catalog if catalog is not None else Catalog.default()
    tz = cat.timezone
    if isinstance(ledger, Prepared):
        p = ledger
        if p.ledger is None or p.tz != tz:
            msg = (f"replay(): the prepared ledger is in time zone {p.tz!r} but the catalog in {tz!r}; "
                   f"prepare it with this catalog: sm.prepare(ledger, catalog)")
            raise ValueError(msg)
        ledger = p.ledger
    else:
        p = prepare_ledger(ledger, tz) if engine == "fast" else None
    if engine == "reference":
        from .rules import reference_replay  # noqa: PLC0415 - rules imports this module

        # The specification makes the tables; the prepared arrays ride along because metrics read them.
        rep = reference_replay(ledger, cat, as_of)
        return replace(rep, prepared=p if p is not None else prepare_ledger(ledger, tz))
    as_of_day = p.last_event_day if as_of is None else as_day(as_of, tz)
    knobs = cat.knob_arrays()
    r = scan_prepared(p, knobs, as_of_day)
    reason = r["reason"]

    # Code fates and periods by ranges of licenses, side by side on the cores (large
    # ledgers); the rejections here meanwhile.
    pool = worker_pool() if len(r["ranges"]) > 1 else None
    codes_done = codes_table(ledger, p, as_of_day, r, pool)
    periods_done = periods_table(ledger, p, cat, as_of_day, r, pool)
    rejections, rejection_order = rejections_table(ledger, p, reason)
    (periods, keys), codes = periods_done(), codes_done()
    keys["rejection_order"] = rejection_order
    return Replay(
        periods=periods,
        keys=keys,
        codes=codes,
        rejections=rejections,
        as_of=pd.Timestamp(days_to_datetime(np.array([as_of_day]))[0]),
        catalog=cat,
        ledger=ledger,
        prepared=p,
    )
