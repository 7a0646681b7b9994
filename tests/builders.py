"""Build small ledgers from readable event lists (tests only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

import subs_model as sm

PRICE = {"subscription": "4000.00", "renewal": "3200.00", "upgrade": "800.00"}


@dataclass
class Ev:
    """One order (and its activation, if ``activated`` is set) on one license."""

    sku: str
    activated: str | None = None  # ISO day or timestamp; a bare day means 12:00 Moscow
    issued: str | None = "auto"  # "auto": the activation day at 00:00 Moscow; None: not issued
    license: str = "L1"
    name: str | None = None  # order id; also how an upgrade names its target
    upgrade_of: str | None = None  # name of the renewal order this upgrade converts
    activate_on: str | None = None  # activation license, if not the order's
    invoiced: str | None = None
    extra: dict = field(default_factory=dict)


def _ts(value: str, hour: str) -> str:
    return f"{value}T{hour}" if len(value) == 10 else value


def make_ledger(events: list[Ev], *, legacy: list[tuple[str, str, str]] = (), licenses: dict[str, str] | None = None) -> sm.Ledger:
    """A ledger with one order per event, codes C<n>, acts A<n>; editions default to full."""
    lic = dict(licenses or {})
    for e in events:
        lic.setdefault(e.license, "full")
    for lid, *_ in legacy:
        lic.setdefault(lid, "full")
    orders, acts = [], []
    names = {}
    for k, e in enumerate(events, start=1):
        oid = e.name or f"O{k}"
        names[oid] = f"A{k}"
    for k, e in enumerate(events, start=1):
        oid = e.name or f"O{k}"
        if e.issued == "auto":
            issued = _ts(e.activated[:10], "00:00:00") if e.activated else None
        else:
            issued = e.issued
        inv = e.invoiced or (issued[:10] + "T00:00:00" if issued else None)
        orders.append(
            {
                "order_id": oid,
                "license_id": e.license,
                "sku": e.sku,
                "requested_at": inv,
                "invoiced_at": inv,
                "paid_at": inv,
                "ticket_at": inv if e.sku == "upgrade" else None,
                "code_issued_at": issued,
                "act_number": f"A{k}",
                "amount_rub": PRICE[e.sku],
                "code": f"C{k}",
                "upgrade_of_act": names.get(e.upgrade_of) if e.upgrade_of else None,
                **e.extra,
            }
        )
        if e.activated:
            acts.append({"code": f"C{k}", "license_id": e.activate_on or e.license, "activated_at": _ts(e.activated, "12:00:00")})
    leg = None
    if legacy:
        leg = pd.DataFrame(legacy, columns=["license_id", "start", "valid_until"])
    return sm.Ledger(
        licenses=pd.DataFrame({"license_id": list(lic), "customer_id": [f"K{x}" for x in lic], "edition": list(lic.values())}),
        orders=pd.DataFrame(orders, columns=list(sm.ledger.COLUMNS["orders"])),
        activations=pd.DataFrame(acts, columns=["code", "license_id", "activated_at"]),
        legacy_periods=leg,
    )


def periods_of(rep: sm.Replay, license_id: str = "L1") -> list[tuple[str, str, str]]:
    p = rep.periods[rep.periods["license_id"] == license_id]
    return [(s.date().isoformat(), e.date().isoformat(), src) for s, e, src in zip(p["start"], p["end"], p["source"])]


def status_of(rep: sm.Replay, order_id: str) -> str:
    return rep.codes.set_index("order_id").loc[order_id, "status"]


def rejections_of(rep: sm.Replay) -> list[tuple[str, str, str]]:
    r = rep.rejections
    return [(c, d.date().isoformat(), x) for c, d, x in zip(r["code"], r["day"], r["reason"])]
