"""Order lead times: days between consecutive order stages, and grace misses of slow orders."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..days import NO_DAY, NO_TIME, parse_instants, to_local_days

from ..prepared import first_activations
from ..replay import Replay
from ..vocab import CodeStatus, Sku, Stage, UPG

from ._common import to_days


#: The ledger timestamp that closes each order stage (R9).
STAGE_TIMESTAMPS = {Stage.INVOICE: "invoiced_at", Stage.PAYMENT: "paid_at", Stage.TICKET: "ticket_at",
                    Stage.CODE: "code_issued_at", Stage.ACTIVATION: "activated_at"}
#: Each stage's lead time: (name, the timestamp it runs from, the timestamp it ends at). ``to_code`` runs
#: from the payment, or the helpdesk ticket of an upgrade (``None``).
STAGE_PAIRS = tuple(
    (name, start, STAGE_TIMESTAMPS[stage])
    for stage, name, start in (
        (Stage.INVOICE, "request_to_invoice", "requested_at"),
        (Stage.PAYMENT, "invoice_to_paid", STAGE_TIMESTAMPS[Stage.INVOICE]),
        (Stage.TICKET, "paid_to_ticket", STAGE_TIMESTAMPS[Stage.PAYMENT]),
        (Stage.CODE, "to_code", None),
        (Stage.ACTIVATION, "code_to_activation", STAGE_TIMESTAMPS[Stage.CODE]),
    )
)


def lead_times(rep: Replay, as_of: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lead time of each order stage (days) by SKU, and grace misses caused by slow orders.

    Returns ``(stages, misses)``. ``stages``: per stage and SKU, ``orders``, ``median_days``,
    ``p90_days``, ``mean_days`` and the 10th, 25th and 75th percentiles (``p10_days``, ``p25_days``,
    ``p75_days``: with the median and p90, the distribution's box and tail). ``to_code`` runs from payment (from the helpdesk ticket for
    upgrades) to the code. ``misses``: renewal codes that lapsed, with whether the request
    was placed inside the window but the code issued after it (``request_in_window``,
    ``code_after_deadline``).
    """
    o = rep.ledger.orders
    tz = rep.catalog.timezone
    t = {c: parse_instants(o[c], tz, column=c) if c in o.columns else np.full(len(o), NO_TIME) for c in
         ("requested_at", "invoiced_at", "paid_at", "ticket_at", "code_issued_at")}
    p = rep.prepared
    t["activated_at"] = first_activations(rep.ledger, p, tz)
    sku = p.o_sku
    rows = []
    for name, a, b in STAGE_PAIRS:
        start = np.where(sku == UPG, t["ticket_at"], t["paid_at"]) if a is None else t[a]
        end = t[b]
        ok = (start != NO_TIME) & (end != NO_TIME)
        d = (end[ok] - start[ok]) / 86_400e9
        sku_ok = sku[ok]
        for s_kind in Sku:
            s_name, m = s_kind.value, sku_ok == s_kind.code
            if not m.any():
                continue
            v = d[m]
            p10, p25, med, p75, p90 = np.percentile(v, [10, 25, 50, 75, 90])
            rows.append({"stage": name, "sku": s_name, "orders": int(m.sum()), "median_days": float(med),
                         "p90_days": float(p90), "mean_days": float(v.mean()), "p10_days": float(p10),
                         "p25_days": float(p25), "p75_days": float(p75)})
    stages = pd.DataFrame(rows, columns=["stage", "sku", "orders", "median_days", "p90_days", "mean_days", "p10_days",
                                         "p25_days", "p75_days"])
    c = rep.codes
    lapsed = np.flatnonzero(((c["sku"] == Sku.RENEWAL) & c["status"].isin([CodeStatus.LAPSED, CodeStatus.UPGRADED])
                             & c["deadline"].notna()).to_numpy())
    deadline = to_days(c["deadline"].iloc[lapsed])
    req_day = to_local_days(t["requested_at"][lapsed], tz)
    code_day = to_local_days(t["code_issued_at"][lapsed], tz)
    misses = pd.DataFrame(
        {
            "code": c["code"].iloc[lapsed].to_numpy(),
            "license_id": c["license_id"].iloc[lapsed].to_numpy(),
            "request_in_window": (req_day != NO_DAY) & (req_day <= deadline),
            "code_after_deadline": (code_day != NO_DAY) & (code_day > deadline),
        }
    )
    return stages, misses
