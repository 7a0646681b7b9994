"""A plain, per-license, per-row reference replay of the rules (tests only).

Written straight from the rules text, independently of the engine: one Python loop
per license, day-by-day search for the closing of a grace window, dicts for state. The
engine is checked against it on generated ledgers (differential test).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd

import subs_model as sm

EPOCH = dt.date(1970, 1, 1)


def _instant(value, tz: ZoneInfo) -> dt.datetime | None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA or str(value).strip() == "":
        return None
    s = str(value).strip().replace("Z", "+00:00").replace("z", "+00:00")
    t = dt.datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return t.astimezone(dt.timezone.utc)


def _day(t: dt.datetime, tz: ZoneInfo) -> dt.date:
    return t.astimezone(tz).date()


def reference_replay(led: sm.Ledger, cat: sm.Catalog, as_of: str) -> dict:
    """Periods, statuses and rejections as plain Python sets/dicts."""
    tz = ZoneInfo(cat.timezone)
    as_of_d = dt.date.fromisoformat(as_of)
    versions = cat.versions

    def version(day: dt.date) -> sm.CatalogVersion:
        v = versions[0]
        for cand in versions:
            if cand.effective_from <= day:
                v = cand
        return v

    def closing(end: dt.date) -> dt.date:
        d = end
        while (d - end).days < version(d).grace_days:
            d += dt.timedelta(days=1)
        return d

    orders = led.orders.to_dict("records")
    by_code = {}
    by_act = {}
    for o in orders:
        o["issued"] = _instant(o["code_issued_at"], tz)
        if o["issued"] is not None:
            by_code[str(o["code"])] = o
        if o.get("act_number") is not None and o.get("act_number") == o.get("act_number"):
            by_act[str(o["act_number"])] = o
        o["state"] = "none"  # none / waiting / lapsed / accepted / upgraded
        o["deadline"] = None
        o["activated_on"] = None

    lic_ids = {str(x) for x in led.licenses["license_id"]}
    lic_ids |= {str(x) for x in led.activations["license_id"]}
    periods, rejections = set(), []
    for lic in sorted(lic_ids):
        end = None
        prior_sub = prior_leg = False
        if led.legacy_periods is not None:
            for row in led.legacy_periods.to_dict("records"):
                if str(row["license_id"]) != lic:
                    continue
                s = dt.date.fromisoformat(str(row["start"])[:10])
                e = dt.date.fromisoformat(str(row["valid_until"])[:10]) + dt.timedelta(days=1)
                if s > as_of_d:
                    continue
                periods.add((lic, s, e, "legacy", None))
                end = e if end is None else max(end, e)
                prior_leg = True
        events = []
        for o in orders:
            if str(o["license_id"]) == lic and o["sku"] == "renewal" and o["issued"] is not None:
                events.append((o["issued"], 0, str(o["code"]), "issue", o))
        for a in led.activations.to_dict("records"):
            if str(a["license_id"]) == lic:
                events.append((_instant(a["activated_at"], tz), 1, str(a["code"]), "act", a))
        events.sort(key=lambda x: (x[0], x[1], x[2]))
        waiting: list[dict] = []
        for when, _, code, kind, obj in events:
            day = _day(when, tz)
            if day > as_of_d:
                continue
            if waiting and closing(end) <= day:
                for w in waiting:
                    if w["state"] == "waiting":
                        w["state"], w["deadline"] = "lapsed", closing(end) - dt.timedelta(days=1)
                waiting = []
            has_prior = prior_sub or (prior_leg and version(day).legacy_counts_as_prior)
            if kind == "issue":
                o = obj
                if o["state"] == "upgraded":
                    continue
                if not has_prior:
                    o["state"] = "lapsed"
                elif day >= closing(end):
                    o["state"], o["deadline"] = "lapsed", closing(end) - dt.timedelta(days=1)
                else:
                    o["state"] = "waiting"
                    waiting.append(o)
                continue
            o = by_code.get(code)
            reason = None
            if o is None:
                reason = "unknown_code"
            elif str(o["license_id"]) != lic:
                reason = "wrong_license"
            elif o["issued"] > when:
                reason = "activated_before_issue"
            elif o["state"] == "accepted" or (o["sku"] != "renewal" and o["activated_on"] is not None):
                reason = "code_reused"
            elif o["sku"] == "renewal" and o["state"] == "upgraded":
                reason = "code_upgraded"
            elif o["sku"] == "renewal" and not has_prior:
                reason = "no_prior_subscription"
            elif o["sku"] == "renewal" and (o["state"] == "lapsed" or day >= closing(end)):
                reason = "renewal_after_deadline"
                if o["state"] != "lapsed":
                    o["state"], o["deadline"] = "lapsed", closing(end) - dt.timedelta(days=1)
            elif o["sku"] == "upgrade":
                t = by_act.get(str(o.get("upgrade_of_act")))
                if (
                    t is None
                    or t["sku"] != "renewal"
                    or str(t["license_id"]) != lic
                    or t["state"] in ("accepted", "upgraded")
                    or (t["sku"] == "renewal" and t["activated_on"] is not None)
                ):
                    reason = "upgrade_invalid_target"
            if reason:
                rejections.append((code, lic, day, reason))
                continue
            v = version(day)
            T = dt.timedelta(days=v.term_days)
            if o["sku"] == "renewal":
                o["deadline"] = closing(end) - dt.timedelta(days=1)
                if v.renewal_basis == "from_expiry":
                    start, new_end = end, end + T
                elif v.renewal_basis == "from_activation":
                    start, new_end = max(end, day), day + T
                else:
                    start = max(end, day)
                    new_end = start + T
            elif end is None:
                start, new_end = day, day + T
            elif v.subscription_basis == "from_activation":
                start, new_end = max(end, day), day + T
            else:
                start = max(end, day)
                new_end = start + T
            new_end = max(new_end, start)
            if new_end > start:
                periods.add((lic, start, new_end, o["sku"], code))
            end = new_end if end is None else max(end, new_end)
            prior_sub = True
            o["state"] = "accepted"
            o["activated_on"] = day
            if o["sku"] == "upgrade":
                by_act[str(o["upgrade_of_act"])]["state"] = "upgraded"
        if waiting:
            c = closing(end)
            for w in waiting:
                if w["state"] == "waiting":
                    if c <= as_of_d:
                        w["state"], w["deadline"] = "lapsed", c - dt.timedelta(days=1)
                    else:
                        w["deadline"] = c - dt.timedelta(days=1)
    statuses = {}
    for o in orders:
        issued_by = o["issued"] is not None and _day(o["issued"], tz) <= as_of_d
        st = {"accepted": "activated", "lapsed": "lapsed", "upgraded": "upgraded"}.get(o["state"], "issued")
        if o["state"] != "upgraded" and not issued_by:
            st = "pending"
        dl = o["deadline"] if (o["sku"] == "renewal" and issued_by) else None
        statuses[str(o["order_id"])] = (st, o["activated_on"], dl)
    return {"periods": periods, "rejections": sorted(rejections), "statuses": statuses}


def engine_as_reference(rep: sm.Replay) -> dict:
    """The engine's result in the reference's plain form."""
    p = rep.periods
    periods = {
        (lic, s.date(), e.date(), src, None if src == "legacy" else code)
        for lic, s, e, src, code in zip(p["license_id"], p["start"], p["end"], p["source"], p["code"])
    }
    r = rep.rejections
    rejections = sorted((c, lic, d.date(), x) for c, lic, d, x in zip(r["code"], r["license_id"], r["day"], r["reason"]))
    c = rep.codes
    statuses = {
        oid: (st, None if pd.isna(a) else a.date(), None if pd.isna(d) else d.date())
        for oid, st, a, d in zip(c["order_id"], c["status"], c["activated_on"], c["deadline"])
    }
    return {"periods": periods, "rejections": rejections, "statuses": statuses}
