"""Write the small hand-made sample ledger of data/sample/ (one story per license).

Every rule has a license that exercises it; the story is in the comment beside it.
Run: python scripts/make_hand_sample.py tests/data/handmade
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

PRICE = {"subscription": "4000.00", "renewal": "3200.00", "upgrade": "800.00"}

# license, edition, [(sku, requested day, code issued day, activated day or None, extra)]
# An activation "day" may be a full timestamp; otherwise it is 11:00 Moscow.
STORIES: list[tuple[str, str, str, list[tuple]]] = [
    ("L001", "full", "one subscription, then churn", [("subscription", "2021-02-01", "2021-02-03", "2021-02-04")]),
    ("L002", "full", "subscription, early renewals every year", [
        ("subscription", "2021-03-01", "2021-03-02", "2021-03-02"),
        ("renewal", "2022-02-10", "2022-02-12", "2022-02-14"),
        ("renewal", "2023-02-10", "2023-02-11", "2023-02-20"),
        ("renewal", "2024-02-01", "2024-02-02", "2024-02-05"),
        ("renewal", "2025-02-01", "2025-02-03", "2025-02-03"),
        ("renewal", "2026-01-25", "2026-01-27", "2026-02-01"),
    ]),
    ("L003", "full", "renewal in grace (day 10): 10 uncovered days", [
        ("subscription", "2023-05-10", "2023-05-11", "2023-05-11"),
        ("renewal", "2024-05-15", "2024-05-16", "2024-05-20"),
    ]),
    ("L004", "full", "renewal on the deadline day (accepted)", [
        ("subscription", "2024-01-09", "2024-01-10", "2024-01-10"),
        ("renewal", "2025-01-20", "2025-01-22", "2025-01-23"),
    ]),
    ("L005", "full", "renewal the day after the deadline, then an upgrade (G4, G5)", [
        ("subscription", "2024-03-01", "2024-03-01", "2024-03-01"),
        ("renewal", "2025-02-20", "2025-02-21", "2025-03-16"),
        ("upgrade", "2025-03-25", "2025-03-31", "2025-04-02", {"upgrade_of": 1}),
    ]),
    ("L006", "basic", "forgotten renewal, later a full-price subscription", [
        ("subscription", "2023-06-01", "2023-06-02", "2023-06-02"),
        ("renewal", "2024-05-20", "2024-05-21", None),
        ("subscription", "2024-09-01", "2024-09-02", "2024-09-03"),
    ]),
    ("L007", "full", "renewal without any prior subscription (G6)", [("renewal", "2025-04-01", "2025-04-02", "2025-04-03")]),
    ("L008", "full", "old-rules period then renewal on its deadline (G8)", [("renewal", "2026-01-10", "2026-01-12", "2026-01-15")]),
    ("L009", "basic", "old-rules period, never renewed", []),
    ("L010", "full", "two subscriptions stacked (G2)", [
        ("subscription", "2025-02-27", "2025-03-01", "2025-03-01"),
        ("subscription", "2025-09-28", "2025-10-01", "2025-10-01"),
    ]),
    ("L011", "full", "renewal at 22:30Z on the deadline day = next Moscow day (G9)", [
        ("subscription", "2025-03-01", "2025-03-01", "2025-03-01"),
        ("renewal", "2026-03-10", "2026-03-11", "2026-03-15T22:30:00Z"),
    ]),
    ("L012", "full", "activation of an unknown code", [("subscription", "2024-07-01", "2024-07-02", "2024-07-02", {"code": "UNKNOWN-1"})]),
    ("L013", "full", "a code of L014 activated on L013 (wrong license)", [("subscription", "2024-08-01", "2024-08-01", "2024-08-01")]),
    ("L014", "basic", "its code is tried on L013 first, then activated here", [
        ("subscription", "2024-08-01", "2024-08-02", "2024-08-05", {"also_on": "L013"}),
    ]),
    ("L015", "full", "activation before the code was issued", [("subscription", "2024-09-01", "2024-09-10", "2024-09-05")]),
    ("L016", "full", "the same code activated twice", [("subscription", "2024-10-01", "2024-10-01", "2024-10-01", {"again": "2024-10-20"})]),
    ("L017", "full", "upgrade naming a renewal that was activated", [
        ("subscription", "2024-01-15", "2024-01-15", "2024-01-15"),
        ("renewal", "2025-01-10", "2025-01-10", "2025-01-12"),
        ("upgrade", "2025-02-01", "2025-02-02", "2025-02-03", {"upgrade_of": 1}),
    ]),
    ("L018", "full", "order in progress: paid, no code yet", [("subscription", "2026-06-20", None, None)]),
    ("L019", "full", "upgraded renewal code tried afterwards (code_upgraded)", [
        ("subscription", "2024-04-01", "2024-04-01", "2024-04-01"),
        ("renewal", "2025-03-01", "2025-03-02", None),
        ("upgrade", "2025-05-01", "2025-05-02", "2025-05-03", {"upgrade_of": 1, "then_activate": (1, "2025-05-10")}),
    ]),
    ("L020", "full", "churned, returned two years later (reactivation)", [
        ("subscription", "2021-04-01", "2021-04-02", "2021-04-02"),
        ("subscription", "2024-06-01", "2024-06-02", "2024-06-03"),
        ("renewal", "2025-05-25", "2025-05-26", "2025-06-01"),
    ]),
    ("L021", "basic", "renewal in grace day 1, then early renewal", [
        ("subscription", "2022-07-01", "2022-07-01", "2022-07-01"),
        ("renewal", "2023-06-30", "2023-07-01", "2023-07-01"),
        ("renewal", "2024-06-01", "2024-06-02", "2024-06-03"),
        ("renewal", "2025-06-15", "2025-06-16", "2025-06-20"),
    ]),
    ("L022", "full", "renewal code issued after the window had closed (lapsed at once)", [
        ("subscription", "2024-11-01", "2024-11-01", "2024-11-01"),
        ("renewal", "2025-12-01", "2025-12-02", None),
    ]),
    ("L023", "full", "renewal code bought early, deadline moved by a subscription", [
        ("subscription", "2023-09-01", "2023-09-01", "2023-09-01"),
        ("renewal", "2024-08-01", "2024-08-02", "2025-09-05"),
        ("subscription", "2024-08-20", "2024-08-21", "2024-08-21"),
    ]),
    ("L024", "full", "subscription in grace instead of a renewal (missed discount)", [
        ("subscription", "2022-10-01", "2022-10-01", "2022-10-01"),
        ("subscription", "2023-10-05", "2023-10-06", "2023-10-06"),
    ]),
    ("L025", "basic", "active subscription, renewal not yet due", [("subscription", "2026-02-01", "2026-02-01", "2026-02-02")]),
    ("L026", "full", "subscription 2027-03-01 counts the leap day (G7)", [("subscription", "2027-02-25", "2027-02-26", "2027-03-01")]),
    ("L027", "full", "upgrade after a forgotten renewal", [
        ("subscription", "2023-12-01", "2023-12-01", "2023-12-01"),
        ("renewal", "2024-11-15", "2024-11-16", None),
        ("upgrade", "2025-01-10", "2025-01-12", "2025-01-13", {"upgrade_of": 1}),
    ]),
    ("L028", "full", "renewal in grace (day 3), then churn", [
        ("subscription", "2022-01-10", "2022-01-10", "2022-01-10"),
        ("renewal", "2023-01-11", "2023-01-12", "2023-01-13"),
    ]),
    ("L029", "basic", "subscription, renewal day 14", [
        ("subscription", "2024-02-10", "2024-02-10", "2024-02-10"),
        ("renewal", "2025-02-20", "2025-02-21", "2025-02-23"),
    ]),
    ("L030", "full", "paid at a discount (price variance kept)", [("subscription", "2025-11-01", "2025-11-02", "2025-11-02", {"amount": "3600.00"})]),
]
LEGACY = [("L008", "2025-01-01", "2025-12-31"), ("L009", "2023-03-01", "2024-02-29")]
FEATURES = [
    ("F-EGAIS4", "ЕГАИС 4 / EGAIS 4 support", "2024-03-01", True),
    ("F-MARK", "Маркировка: новые товарные группы / new marked goods", "2025-03-10", True),
    ("F-SBP", "Оплата по СБП / fast payments", "2025-09-01", True),
    ("F-FIX", "Исправления ошибок / bug fixes", "2025-10-01", False),
]


def build() -> dict[str, pd.DataFrame]:
    licenses, orders, acts = [], [], []
    n = 0
    for lic, edition, story, items in STORIES:
        licenses.append({"license_id": lic, "customer_id": f"K{lic[1:]}", "edition": edition})
        acts_of_story: list[str] = []
        for sku, requested, issued, activated, *extra in items:
            n += 1
            ex = extra[0] if extra else {}
            code = ex.get("code_on_order", f"KS5-{n:05d}")
            acts_of_story.append(f"ACT-{n:05d}")
            orders.append({
                "order_id": f"ORD-{n:05d}", "license_id": lic, "sku": sku,
                "requested_at": f"{requested}T09:00:00", "invoiced_at": f"{requested}T09:30:00",
                "paid_at": f"{requested}T09:45:00",
                "ticket_at": f"{requested}T09:50:00" if sku == "upgrade" else None,
                "code_issued_at": f"{issued}T10:00:00" if issued else None,
                "act_number": f"ACT-{n:05d}", "amount_rub": ex.get("amount", PRICE[sku]),
                "code": code if issued else None,
                "upgrade_of_act": acts_of_story[ex["upgrade_of"]] if "upgrade_of" in ex else None,
            })
            if activated:
                stamp = activated if "T" in activated else f"{activated}T11:00:00"
                if "also_on" in ex:
                    acts.append({"code": code, "license_id": ex["also_on"], "activated_at": f"{activated}T08:00:00"})
                acts.append({"code": ex.get("code", code), "license_id": lic, "activated_at": stamp})
                if "again" in ex:
                    acts.append({"code": code, "license_id": lic, "activated_at": f"{ex['again']}T11:00:00"})
            if "then_activate" in ex:
                k, day = ex["then_activate"]
                target = orders[-(len(acts_of_story) - k)]
                acts.append({"code": target["code"], "license_id": lic, "activated_at": f"{day}T11:00:00"})
    return {
        "licenses": pd.DataFrame(licenses),
        "orders": pd.DataFrame(orders),
        "activations": pd.DataFrame(acts).sort_values("activated_at", kind="stable"),
        "legacy_periods": pd.DataFrame(LEGACY, columns=["license_id", "start", "valid_until"]),
        "features": pd.DataFrame(FEATURES, columns=["feature_id", "name", "released_on", "requires_subscription"]),
    }


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/handmade")
    out.mkdir(parents=True, exist_ok=True)
    for name, df in build().items():
        df.to_csv(out / f"{name}.csv", index=False)
    print(f"wrote {out}")
