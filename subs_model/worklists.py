"""Lists to work from: the licenses and orders a sales or support person acts on today.

Four lists, each computed from a :class:`~subs_model.replay.Replay` on its ``as_of`` day:

``in_grace``
    licenses uncovered on ``as_of`` whose renewal window is still open (R7: a renewal is
    accepted up to ``end + grace_days - 1``): call them before the discount is gone.
``paid_not_activated``
    renewal codes issued and paid but not activated whose deadline is at most ``near_days``
    away: the money is in, the activation is not.
``lapsed_not_upgraded``
    renewal codes that lapsed within the last ``upgrade_window_days`` on licenses still
    uncovered: an upgrade (R8) turns them into a full subscription.
``stuck_orders``
    orders paid but without a code (status ``pending``): stuck between payment and code; a
    renewal among them is urgent when its license's deadline is near.

Every list is sorted so that the most urgent row comes first, and :meth:`Worklists.write`
writes each as formula-safe CSV and XLSX with Russian (or English) headers.

>>> import subs_model as sm
>>> from subs_model.resources import data_dir
>>> led = sm.read_ledger(data_dir() / "sample")  # doctest: +SKIP
>>> lists = sm.worklists(sm.replay(led, sm.Catalog.default(), "2026-10-31"), led)  # doctest: +SKIP
>>> lists.in_grace.columns[:3].tolist()  # doctest: +SKIP
['license_id', 'customer_id', 'edition']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _kernel as K
from .days import as_day, days_to_datetime
from .errors import SubsModelError
from .ledger import Ledger
from .vocab import NO_DAY, CodeStatus, Sku

__all__ = ["LABELS", "LIST_NAMES", "Worklists", "WorklistError", "worklists"]

#: The lists in the order a person works through them.
LIST_NAMES = ("in_grace", "paid_not_activated", "lapsed_not_upgraded", "stuck_orders")

#: Sheet titles and column headers for people (the API keeps the snake_case names).
LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "in_grace": "В льготном периоде", "paid_not_activated": "Оплачено, не активировано",
        "lapsed_not_upgraded": "Сгорело, без апгрейда", "stuck_orders": "Оплачено, нет кода",
        "license_id": "Лицензия", "customer_id": "Клиент", "edition": "Редакция", "covered_until": "Покрыта по",
        "deadline": "Крайний день продления", "days_left": "Осталось дней", "renewal_waiting": "Ждёт код продления",
        "code": "Код", "order_id": "Заказ", "act_number": "Акт", "paid_on": "Оплачен", "amount_rub": "Сумма, ₽", "amount_kop": "Сумма",
        "lapsed_on": "Сгорел", "days_since_lapse": "Дней после сгорания", "sku": "Товар",
        "days_waiting": "Дней без кода",
    },
    "en": {
        "in_grace": "In grace", "paid_not_activated": "Paid, not activated",
        "lapsed_not_upgraded": "Lapsed, not upgraded", "stuck_orders": "Paid, no code",
        "license_id": "License", "customer_id": "Customer", "edition": "Edition", "covered_until": "Covered until",
        "deadline": "Renewal deadline", "days_left": "Days left", "renewal_waiting": "Renewal code waiting",
        "code": "Code", "order_id": "Order", "act_number": "Act", "paid_on": "Paid on", "amount_rub": "Amount, ₽", "amount_kop": "Amount",
        "lapsed_on": "Lapsed on", "days_since_lapse": "Days since lapse", "sku": "Product",
        "days_waiting": "Days without a code",
    },
}


class WorklistError(SubsModelError, ValueError):
    """A bad argument to :func:`worklists` (the message names the value and the fix)."""


@dataclass(frozen=True, slots=True)
class Worklists:
    """The four lists of one ``as_of`` day (see the module docstring); ``near_days`` and
    ``upgrade_window_days`` are the windows they were cut with."""

    as_of: pd.Timestamp
    near_days: int
    upgrade_window_days: int
    in_grace: pd.DataFrame
    paid_not_activated: pd.DataFrame
    lapsed_not_upgraded: pd.DataFrame
    stuck_orders: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """Rows of each list."""
        return {name: len(getattr(self, name)) for name in LIST_NAMES}

    def for_people(self, name: str, lang: str = "ru") -> pd.DataFrame:
        """List ``name`` with headers in ``lang`` and dates as dates (no time of day)."""
        labels = _labels(lang)
        df = getattr(self, name).copy()
        for col in df.columns:
            if pd.api.types.is_datetime64_any_dtype(df[col]):
                df[col] = df[col].dt.date
        return df.rename(columns=labels)

    def write(self, folder: str | Path, lang: str = "ru") -> list[Path]:
        """Each list as formula-safe CSV and XLSX in ``folder`` (headers in ``lang``); the files written."""
        from .export import write_table

        files: list[Path] = []
        for name in LIST_NAMES:
            files += write_table(self.for_people(name, lang), Path(folder) / name.replace("_", "-"),
                                 sheet=_labels(lang)[name][:31])
        return files


def _labels(lang: str) -> dict[str, str]:
    if lang not in LABELS:
        msg = f"lang {lang!r} is not one of {sorted(LABELS)}; use 'ru' or 'en'"
        raise WorklistError(msg)
    return LABELS[lang]


def _days(values: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 of a datetime column (NaT → the engine's NO_DAY)."""
    out = values.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    return np.where(values.isna().to_numpy(), NO_DAY, out)


def _check(near_days: Any, upgrade_window_days: Any) -> None:
    for name, value in (("near_days", near_days), ("upgrade_window_days", upgrade_window_days)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            msg = f"{name}={value!r} must be a whole number of days >= 0, e.g. 30"
            raise WorklistError(msg)


def worklists(rep: Any, ledger: Ledger, as_of: Any = None, *, near_days: int = 30,
              upgrade_window_days: int = 90) -> Worklists:
    """The lists to work from on ``as_of`` (default: the replay's ``as_of``).

    Parameters
    ----------
    rep : Replay
        The replay of ``ledger`` (its ``as_of`` must not be before ``as_of``: a replay knows
        nothing after its own day).
    ledger : Ledger
        The ledger replayed (customers, editions, act numbers, amounts, paid days).
    as_of : date-like, optional
        The working day.
    near_days : int
        A paid renewal is listed when its deadline is at most this many days away.
    upgrade_window_days : int
        A lapsed renewal is listed while it lapsed at most this many days ago.

    Examples
    --------
    >>> lists = worklists(rep, led, near_days=14)  # doctest: +SKIP
    >>> lists.counts()  # doctest: +SKIP
    {'in_grace': 31, 'paid_not_activated': 12, 'lapsed_not_upgraded': 40, 'stuck_orders': 3}
    """
    _check(near_days, upgrade_window_days)
    rep_day = as_day(rep.as_of)
    day = rep_day if as_of is None else as_day(as_of)
    if day > rep_day:
        msg = f"as_of {as_of!r} is after the replay's as_of {rep.as_of}; replay up to that day first"
        raise WorklistError(msg)
    ends = _license_ends(rep)
    lic = ledger.licenses[["license_id", "customer_id", "edition"]].astype({"license_id": str})
    orders = _order_facts(ledger)
    codes = rep.codes.astype({"license_id": str, "order_id": str})
    return Worklists(
        as_of=pd.Timestamp(days_to_datetime(np.array([day]))[0]), near_days=int(near_days),
        upgrade_window_days=int(upgrade_window_days),
        in_grace=_in_grace(ends, codes, lic, day),
        paid_not_activated=_paid_not_activated(codes, orders, lic, day, near_days),
        lapsed_not_upgraded=_lapsed_not_upgraded(codes, orders, lic, ends, day, upgrade_window_days),
        stuck_orders=_stuck_orders(codes, orders, lic, ends, day),
    )


def _license_ends(rep: Any) -> pd.DataFrame:
    """Per license its last covered end (exclusive) and the renewal deadline after it (R7, R10)."""
    p = rep.periods
    last = p.assign(license_id=p["license_id"].astype(str)).groupby("license_id", sort=False)["end"].max()
    end = _days(last)
    knobs = rep.catalog.knob_arrays()
    deadline = K.renewal_deadlines(end, knobs["from_day"], knobs["grace"])
    return pd.DataFrame({"license_id": last.index.to_numpy(), "end": end, "deadline": deadline})


def _order_facts(ledger: Ledger) -> pd.DataFrame:
    o = ledger.orders
    paid = pd.to_datetime(o["paid_at"], utc=True, errors="coerce")
    paid_on = paid.dt.tz_convert("Europe/Moscow").dt.tz_localize(None).dt.normalize()
    return pd.DataFrame({"order_id": o["order_id"].astype(str).to_numpy(), "act_number": o["act_number"].to_numpy(),
                         "paid_on": paid_on.to_numpy(), "amount_rub": o["amount_rub"].reset_index(drop=True)})


def _dates(days: np.ndarray) -> pd.Series:
    return pd.Series(days_to_datetime(days))


def _in_grace(ends: pd.DataFrame, codes: pd.DataFrame, lic: pd.DataFrame, day: int) -> pd.DataFrame:
    now = ends[(ends["end"] <= day) & (day <= ends["deadline"])]
    waiting = codes[(codes["sku"] == Sku.RENEWAL.value) & (codes["status"] == CodeStatus.ISSUED.value)]
    waiting = waiting.groupby("license_id", sort=False)["code"].first()
    out = now.merge(lic, on="license_id", how="left")
    out = pd.DataFrame({
        "license_id": out["license_id"], "customer_id": out["customer_id"], "edition": out["edition"],
        "covered_until": _dates(out["end"].to_numpy() - 1), "deadline": _dates(out["deadline"].to_numpy()),
        "days_left": (out["deadline"] - day).astype(np.int64),
        "renewal_waiting": out["license_id"].map(waiting).fillna("").astype(str),
    })
    return out.sort_values(["days_left", "license_id"], kind="stable").reset_index(drop=True)


def _paid_not_activated(codes: pd.DataFrame, orders: pd.DataFrame, lic: pd.DataFrame, day: int,
                        near_days: int) -> pd.DataFrame:
    c = codes[(codes["sku"] == Sku.RENEWAL.value) & (codes["status"] == CodeStatus.ISSUED.value)]
    c = c.merge(orders, on="order_id", how="left").merge(lic, on="license_id", how="left")
    deadline = _days(c["deadline"])
    left = deadline - day
    keep = (left >= 0) & (left <= near_days) & c["paid_on"].notna().to_numpy()
    c, left = c[keep], left[keep]
    out = pd.DataFrame({
        "license_id": c["license_id"], "customer_id": c["customer_id"], "edition": c["edition"], "code": c["code"],
        "order_id": c["order_id"], "act_number": c["act_number"], "paid_on": c["paid_on"],
        "amount_rub": c["amount_rub"], "deadline": c["deadline"], "days_left": left.astype(np.int64),
    })
    return out.sort_values(["days_left", "license_id"], kind="stable").reset_index(drop=True)


def _lapsed_not_upgraded(codes: pd.DataFrame, orders: pd.DataFrame, lic: pd.DataFrame, ends: pd.DataFrame,
                         day: int, window: int) -> pd.DataFrame:
    c = codes[(codes["sku"] == Sku.RENEWAL.value) & (codes["status"] == CodeStatus.LAPSED.value)]
    lapsed = _days(c["deadline"]) + 1  # R7: the code lapses the day after its deadline
    since = day - lapsed
    c = c[(since >= 0) & (since <= window)].assign(lapsed_on=_dates(lapsed[(since >= 0) & (since <= window)]).to_numpy(),
                                                   days_since_lapse=since[(since >= 0) & (since <= window)])
    covered = ends.loc[ends["end"] > day, "license_id"]
    c = c[~c["license_id"].isin(covered)]
    c = c.merge(orders, on="order_id", how="left").merge(lic, on="license_id", how="left")
    out = pd.DataFrame({
        "license_id": c["license_id"], "customer_id": c["customer_id"], "edition": c["edition"], "code": c["code"],
        "order_id": c["order_id"], "act_number": c["act_number"], "amount_rub": c["amount_rub"],
        "lapsed_on": c["lapsed_on"], "days_since_lapse": c["days_since_lapse"].astype(np.int64),
    })
    return out.sort_values(["days_since_lapse", "license_id"], kind="stable").reset_index(drop=True)


def _stuck_orders(codes: pd.DataFrame, orders: pd.DataFrame, lic: pd.DataFrame, ends: pd.DataFrame,
                  day: int) -> pd.DataFrame:
    c = codes.loc[codes["status"] == CodeStatus.PENDING.value, ["order_id", "license_id", "sku"]]
    c = c.merge(orders, on="order_id", how="left")
    paid = _days(c["paid_on"])
    c, paid = c[(paid != NO_DAY) & (paid <= day)], paid[(paid != NO_DAY) & (paid <= day)]
    c = c.merge(lic, on="license_id", how="left").merge(ends[["license_id", "deadline"]], on="license_id", how="left")
    deadline = c["deadline"].fillna(NO_DAY).to_numpy(dtype=np.int64)
    urgent = (c["sku"] == Sku.RENEWAL.value).to_numpy() & (deadline != NO_DAY) & (deadline >= day)
    deadline = np.where(urgent, deadline, NO_DAY)
    out = pd.DataFrame({
        "order_id": c["order_id"], "license_id": c["license_id"], "customer_id": c["customer_id"],
        "edition": c["edition"], "sku": c["sku"].astype(str), "act_number": c["act_number"], "paid_on": c["paid_on"],
        "amount_rub": c["amount_rub"], "days_waiting": (day - paid).astype(np.int64),
        "deadline": _dates(deadline).to_numpy(),
        "days_left": pd.array(np.where(urgent, deadline - day, 0), dtype="Int64"),
    })
    out.loc[~urgent, "days_left"] = pd.NA
    return out.sort_values(["days_left", "days_waiting"], ascending=[True, False], na_position="last",
                           kind="stable").reset_index(drop=True)
