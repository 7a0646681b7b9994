"""The rules R1–R14 in plain Python: the executable specification of the replay.

One small function per rule, each citing its R-number (``docs/rules.md`` links each rule
here), and :func:`reference_replay`, which replays a ledger with them: license by license,
event by event, in the total order of R14, with plain dataclasses for the state.
``sm.replay(ledger, catalog, as_of, engine="reference")`` runs it and returns a
:class:`~subs_model.replay.Replay` with the same tables (columns, dtypes, row order) as the
fast engine, so every metric works on it.

It is written to be read, stepped through in a debugger and tested against: the fast
engine (:mod:`subs_model.replay`, :mod:`subs_model._kernel`) must give the same tables on
every ledger (``tests/test_properties.py``). It shares nothing with the fast engine but the
enums and the layout of the result; it is slow (a Python loop per event), which is fine for
tests and small ledgers.

Days are :class:`datetime.date` in the catalog's time zone (Europe/Moscow by default);
an ``end`` is always exclusive: the first day without coverage.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .catalog import Catalog, CatalogVersion, RenewalBasis, Sku, SubscriptionBasis
from .days import as_day
from .errors import LedgerError
from .ledger import Ledger
from .replay import CodeStatus, Reason, Replay, Source

__all__ = [
    "Activation",
    "CodeState",
    "Coverage",
    "Issue",
    "Order",
    "activate",
    "closing_day",
    "code_status",
    "extend",
    "has_prior",
    "identity_refusal",
    "issue_code",
    "issue_fate",
    "instant",
    "lapse_waiting",
    "legacy_period",
    "local_day",
    "reference_replay",
    "renewal_deadline",
    "renewal_refusal",
    "replay_key",
    "replay_license",
    "reported_deadline",
    "reuse_refusal",
    "upgrade_target",
    "upgrade_target_refusal",
    "version_on",
    "window_closed",
]

EPOCH = dt.date(1970, 1, 1)
ONE_DAY = dt.timedelta(days=1)


# -- the replay's state ----------------------------------------------------------------------------
class CodeState(enum.StrEnum):
    """Where an order's code stands during the replay (:class:`CodeStatus` is what is reported)."""

    OPEN = "open"  # neither accepted, lapsed nor upgraded (a renewal code may be waiting, R14)
    ACCEPTED = "accepted"
    LAPSED = "lapsed"
    UPGRADED = "upgraded"


@dataclass(slots=True, eq=False)
class Order:
    """One order and the fate of its code (mutable: the replay updates ``state``,
    ``deadline`` and ``activated_on``)."""

    row: int  # the order's row in the orders table
    order_id: str
    license_id: str
    sku: Sku
    code: str | None
    act_number: str | None
    upgrade_of_act: str | None
    issued_at: dt.datetime | None  # UTC; None: no code issued yet
    issued_on: dt.date | None  # local day of issued_at
    state: CodeState = CodeState.OPEN
    deadline: dt.date | None = None  # renewal codes: the last day to activate
    activated_on: dt.date | None = None


@dataclass(slots=True)
class Coverage:
    """One license's state during its replay."""

    end: dt.date | None = None  # first day without coverage; None: never had a period
    prior_subscription: bool = False  # an activation was accepted (R5)
    prior_legacy: bool = False  # a legacy period was seen (R5)
    waiting: list[Order] = field(default_factory=list)  # renewal codes of the current expiry (R14)


@dataclass(frozen=True, slots=True)
class Issue:
    """A renewal order's code is issued (R14: a renewal code belongs to the expiry current then)."""

    at: dt.datetime
    day: dt.date
    order: Order


@dataclass(frozen=True, slots=True)
class Activation:
    """One row of the activations table."""

    row: int
    code: str | None
    license_id: str
    at: dt.datetime
    day: dt.date


@dataclass(frozen=True, slots=True)
class Period:
    """A period of coverage ``[start, end)``: a legacy one or one an accepted activation added."""

    license_id: str
    start: dt.date
    end: dt.date
    source: Source
    activation_row: int = -1  # -1: legacy
    order: Order | None = None
    activated_on: dt.date | None = None
    version: str | None = None  # label of the catalog version in force on activated_on


@dataclass(frozen=True, slots=True)
class Rejection:
    activation: Activation
    reason: Reason
    order: Order | None


# -- days (rules §2) -------------------------------------------------------------------------------
def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return bool(pd.isna(value))


def instant(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    """§2: a timestamp as a UTC instant; one without an offset is local time in ``tz``
    (None when missing)."""
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp):  # from a datetime64 column (kept whole: it may carry nanoseconds)
        return (value.tz_localize(tz) if value.tz is None else value).tz_convert(dt.UTC)
    t = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).strip())
    if t.tzinfo is None:
        if t.replace(tzinfo=tz, fold=0).utcoffset() != t.replace(tzinfo=tz, fold=1).utcoffset():
            msg = f"local time {t.isoformat()} does not exist or is ambiguous in {tz.key}; give its UTC offset"
            raise ValueError(msg)
        t = t.replace(tzinfo=tz)
    return t.astimezone(dt.UTC)


def local_day(at: dt.datetime, tz: ZoneInfo) -> dt.date:
    """§2: the calendar day of an instant in the catalog's time zone (Europe/Moscow by default):
    ``2026-03-15T22:30:00Z`` happens on 16 March in Moscow."""
    return at.astimezone(tz).date()


def calendar_day(value: Any) -> dt.date | None:
    """A ``YYYY-MM-DD`` value (or a date, or a timestamp's date) as a date; None when missing."""
    if _missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value).strip()[:10])


# -- R10: the catalog version in force -------------------------------------------------------------
def version_on(catalog: Catalog, day: dt.date) -> CatalogVersion:
    """R10: the catalog version in force on ``day`` — the last one with ``effective_from <= day``
    — governs what happens that day (term, grace, bases). *Choice:* the first version also
    governs the days before its ``effective_from``."""
    in_force = catalog.versions[0]
    for v in catalog.versions:  # sorted by effective_from
        if v.effective_from <= day:
            in_force = v
    return in_force


# -- R4, R7: the grace window and the renewal deadline -----------------------------------------------
def closing_day(end: dt.date, catalog: Catalog) -> dt.date:
    """R4, R7 (with R10): the first day on which the grace window after ``end`` is closed.

    The grace window is ``end … end + grace_days - 1``; a day ``d >= end`` is closed when
    ``d >= end + grace_days`` of the version in force on ``d``. With one version this is
    ``end + grace_days``.
    """
    d = end
    while (d - end).days < version_on(catalog, d).grace_days:
        d += ONE_DAY
    return d


def renewal_deadline(end: dt.date, catalog: Catalog) -> dt.date:
    """R4: the last day a renewal may be activated, ``end + grace_days - 1`` (the day before
    :func:`closing_day`)."""
    return closing_day(end, catalog) - ONE_DAY


def window_closed(end: dt.date, day: dt.date, catalog: Catalog) -> bool:
    """R4, R7: whether ``day`` is after the renewal deadline of the expiry ``end``."""
    return day >= closing_day(end, catalog)


# -- R5: a prior period ------------------------------------------------------------------------------
def has_prior(coverage: Coverage, version: CatalogVersion) -> bool:
    """R5: the license had a period before — an accepted activation, or a legacy period when
    ``legacy_counts_as_prior`` (of the version in force that day) says it counts."""
    return coverage.prior_subscription or (coverage.prior_legacy and version.legacy_counts_as_prior)


# -- R11, R4–R8: why an activation is refused (in the order of Reason) --------------------------------
def identity_refusal(order: Order | None, license_id: str, at: dt.datetime) -> Reason | None:
    """R11: a code must exist, belong to the license it is activated on and have been issued
    before the activation (even if the issue lies after ``as_of``)."""
    if order is None:
        return Reason.UNKNOWN_CODE  # no order carries the code with an issue timestamp
    if order.license_id != license_id:
        return Reason.WRONG_LICENSE
    if order.issued_at is None or order.issued_at > at:
        return Reason.ACTIVATED_BEFORE_ISSUE
    return None


def reuse_refusal(order: Order) -> Reason | None:
    """R11: a code is activated at most once."""
    return Reason.CODE_REUSED if order.state is CodeState.ACCEPTED else None


def renewal_refusal(order: Order, coverage: Coverage, day: dt.date, catalog: Catalog) -> Reason | None:
    """Why a renewal code activated on ``day`` is refused, or None.

    R8: an upgraded renewal code cannot be activated (``code_upgraded``). R5: the license
    must have had a period before (``no_prior_subscription``). R4, R7: it must come no later
    than the deadline ``end + grace_days - 1``, and a code that lapsed stays lapsed
    (``renewal_after_deadline``). Early activation, while covered, is fine.
    """
    if order.sku is not Sku.RENEWAL:
        return None
    if order.state is CodeState.UPGRADED:
        return Reason.CODE_UPGRADED
    if not has_prior(coverage, version_on(catalog, day)):
        return Reason.NO_PRIOR_SUBSCRIPTION
    if order.state is CodeState.LAPSED or window_closed(coverage.end, day, catalog):
        return Reason.RENEWAL_AFTER_DEADLINE
    return None


def upgrade_target(order: Order, renewals_by_act: dict[tuple[str, str], Order]) -> Order | None:
    """R8: the renewal order an upgrade converts — the renewal on the upgrade's own license
    whose act number the upgrade names (None: there is none)."""
    if order.upgrade_of_act is None:
        return None
    return renewals_by_act.get((order.license_id, order.upgrade_of_act))


def upgrade_target_refusal(order: Order, target: Order | None) -> Reason | None:
    """R8: an upgrade is refused (``upgrade_invalid_target``) when it names an unknown act, an
    act that is not a renewal of the same license, or a renewal already activated or already
    upgraded. *Choice:* a renewal that has not lapsed yet may be upgraded."""
    if order.sku is not Sku.UPGRADE:
        return None
    if target is None or target.state in (CodeState.ACCEPTED, CodeState.UPGRADED):
        return Reason.UPGRADE_INVALID_TARGET
    return None


# -- R3, R6, R13: the period an accepted activation adds ---------------------------------------------
def extend(sku: Sku, end: dt.date | None, day: dt.date, version: CatalogVersion) -> tuple[dt.date, dt.date]:
    """R3, R6, R13: ``(start, new_end)`` of the period an activation accepted on ``day`` adds,
    with ``end`` the license's end before it (None: never had a period) and the term and
    bases of the version in force on ``day`` (R10).

    A subscription (and an upgrade, R8) adds the term from ``max(end, day)`` (R3 ``stack``)
    or from ``day`` (``from_activation``). A renewal (R6): ``max_end_or_activation`` adds the
    term from ``max(end, day)``, ``from_expiry`` from ``end`` (the gap is covered),
    ``from_activation`` from ``day``. Periods tile (R13): ``start = day`` without an end,
    ``end`` under ``from_expiry``, else ``max(end, day)``; when the new end would fall
    before ``start`` nothing is added (``new_end == start``).
    """
    term = dt.timedelta(days=version.term_days)
    if end is None:  # only a subscription or an upgrade gets here (a renewal needs a prior period)
        return day, day + term
    if sku is Sku.RENEWAL:
        if version.renewal_basis is RenewalBasis.FROM_EXPIRY:
            start, new_end = end, end + term
        elif version.renewal_basis is RenewalBasis.FROM_ACTIVATION:
            start, new_end = max(end, day), day + term
        else:  # MAX_END_OR_ACTIVATION
            start = max(end, day)
            new_end = start + term
    elif version.subscription_basis is SubscriptionBasis.FROM_ACTIVATION:
        start, new_end = max(end, day), day + term
    else:  # STACK
        start = max(end, day)
        new_end = start + term
    return start, max(new_end, start)


# -- R2: legacy periods --------------------------------------------------------------------------------
def legacy_period(start: dt.date, valid_until: dt.date) -> tuple[dt.date, dt.date]:
    """R2: a period imported from the old rules runs to its own end; the old system printed
    the last covered day, so the (exclusive) end is the day after ``valid_until``."""
    return start, valid_until + ONE_DAY


# -- R7, R14: the fate of a renewal code --------------------------------------------------------------
def issue_fate(coverage: Coverage, day: dt.date, catalog: Catalog) -> tuple[CodeState, dt.date | None]:
    """R14: the state and deadline of a renewal code issued on ``day``.

    It belongs to the expiry current then and waits on it (``OPEN``, no deadline yet). It
    lapses at once on a license with no prior period (R5; no deadline), or when that
    expiry's window already closed (deadline: the day before it closed).
    """
    if not has_prior(coverage, version_on(catalog, day)):
        return CodeState.LAPSED, None
    if window_closed(coverage.end, day, catalog):
        return CodeState.LAPSED, renewal_deadline(coverage.end, catalog)
    return CodeState.OPEN, None


def lapse_waiting(coverage: Coverage, catalog: Catalog) -> None:
    """R7: once the window after the current end closes with the license uncovered, the
    renewal codes waiting on it lapse for good, their deadline the last day of the window
    (while other activations extend the license, the deadline moves with the end)."""
    deadline = renewal_deadline(coverage.end, catalog)
    for order in coverage.waiting:
        if order.state is CodeState.OPEN:
            order.state, order.deadline = CodeState.LAPSED, deadline
    coverage.waiting = []


def code_status(order: Order, as_of: dt.date) -> CodeStatus:
    """R14: the code's fate reported as of ``as_of``: ``upgraded`` (whenever issued),
    ``pending`` (no code issued by ``as_of``), ``activated``, ``lapsed`` or ``issued``."""
    if order.state is CodeState.UPGRADED:
        return CodeStatus.UPGRADED
    if order.issued_on is None or order.issued_on > as_of:
        return CodeStatus.PENDING
    if order.state is CodeState.ACCEPTED:
        return CodeStatus.ACTIVATED
    if order.state is CodeState.LAPSED:
        return CodeStatus.LAPSED
    return CodeStatus.ISSUED


def reported_deadline(order: Order, as_of: dt.date) -> dt.date | None:
    """R4, R14: the deadline shown for a renewal code issued by ``as_of`` (None otherwise)."""
    if order.sku is Sku.RENEWAL and order.issued_on is not None and order.issued_on <= as_of:
        return order.deadline
    return None


# -- R14: the total replay order ----------------------------------------------------------------------
def replay_key(event: Issue | Activation) -> tuple:
    """R14: per license, events go by (instant, kind — a code issue before an activation at
    the same instant —, code); a missing code sorts first, equal ones by row."""
    if isinstance(event, Issue):
        return (event.at, 0, False, "", event.order.row)
    return (event.at, 1, event.code is not None, event.code or "", event.row)


# -- the replay of one license --------------------------------------------------------------------------
@dataclass(slots=True)
class _LicenseResult:
    periods: list[Period] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def replay_license(
    license_id: str,
    legacy: list[tuple[dt.date, dt.date]],
    events: list[Issue | Activation],
    orders_by_code: dict[str, Order],
    renewals_by_act: dict[tuple[str, str], Order],
    catalog: Catalog,
    as_of: dt.date,
) -> _LicenseResult:
    """Replay one license: its legacy periods first (R14), then its events in replay order;
    the orders' states change in place."""
    out = _LicenseResult()
    coverage = Coverage()
    for start, end in legacy:  # sorted by start
        if start > as_of:
            continue  # R14: a replay sees only what happened by as_of
        out.periods.append(Period(license_id, start, end, Source.LEGACY))
        coverage.end = end if coverage.end is None else max(coverage.end, end)
        coverage.prior_legacy = True
    for event in sorted(events, key=replay_key):
        if event.day > as_of:
            continue  # R14
        if coverage.waiting and window_closed(coverage.end, event.day, catalog):
            lapse_waiting(coverage, catalog)
        if isinstance(event, Issue):
            issue_code(event.order, coverage, event.day, catalog)
        else:
            activate(event, coverage, orders_by_code, renewals_by_act, catalog, out)
    if coverage.waiting:  # the codes still waiting as of as_of
        if window_closed(coverage.end, as_of, catalog):
            lapse_waiting(coverage, catalog)
        else:
            for order in coverage.waiting:
                if order.state is CodeState.OPEN:
                    order.deadline = renewal_deadline(coverage.end, catalog)
    return out


def issue_code(order: Order, coverage: Coverage, day: dt.date, catalog: Catalog) -> None:
    """R14: a renewal code is issued on ``day``: it takes its :func:`issue_fate` and, when
    open, waits on the current expiry."""
    if order.state is CodeState.UPGRADED:
        return  # converted by an upgrade before its code came (R8)
    order.state, order.deadline = issue_fate(coverage, day, catalog)
    if order.state is CodeState.OPEN:
        coverage.waiting.append(order)


def activate(
    event: Activation,
    coverage: Coverage,
    orders_by_code: dict[str, Order],
    renewals_by_act: dict[tuple[str, str], Order],
    catalog: Catalog,
    out: _LicenseResult,
) -> None:
    """R11, R4–R8, then R3/R6/R13: check an activation (the refusals in the order of
    :class:`Reason`); a refused one changes nothing but a late renewal's lapse (R7), an
    accepted one adds its period, moves the end and, for an upgrade, upgrades its target."""
    day = event.day
    order = orders_by_code.get(event.code) if event.code is not None else None
    reason = identity_refusal(order, event.license_id, event.at)
    target = None
    if reason is None:
        target = upgrade_target(order, renewals_by_act) if order.sku is Sku.UPGRADE else None
        reason = (
            reuse_refusal(order)
            or renewal_refusal(order, coverage, day, catalog)
            or upgrade_target_refusal(order, target)
        )
    if reason is not None:  # a rejected activation changes nothing but a code's lapse (R7)
        if reason is Reason.RENEWAL_AFTER_DEADLINE and order.state is not CodeState.LAPSED:
            order.state, order.deadline = CodeState.LAPSED, renewal_deadline(coverage.end, catalog)
        out.rejections.append(Rejection(event, reason, order))
        return
    version = version_on(catalog, day)
    if order.sku is Sku.RENEWAL:
        order.deadline = renewal_deadline(coverage.end, catalog)
    start, new_end = extend(order.sku, coverage.end, day, version)
    if new_end > start:
        out.periods.append(Period(event.license_id, start, new_end, Source(order.sku.value), event.row, order, day,
                                  version.label))
    coverage.end = new_end if coverage.end is None else max(coverage.end, new_end)
    coverage.prior_subscription = True
    order.state, order.activated_on = CodeState.ACCEPTED, day
    if target is not None:
        target.state = CodeState.UPGRADED  # R8: the upgrade takes effect when its code is accepted


# -- reading the ledger ------------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    return None if _missing(value) else str(value)


def _records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    return [] if df is None else df.to_dict("records")


def _read_orders(ledger: Ledger, tz: ZoneInfo) -> list[Order]:
    orders = []
    for row, o in enumerate(_records(ledger.orders)):
        try:
            sku = Sku(str(o["sku"]))
        except ValueError:
            skus = [str(s) for s in Sku]
            msg = f"{ledger.source}: orders row {row + 1}, column 'sku': {o['sku']!r} is not one of {skus}"
            raise LedgerError(msg) from None
        at = _parsed(instant, o["code_issued_at"], tz, ledger.source, "orders", row, "code_issued_at")
        orders.append(
            Order(row, _text(o["order_id"]), _text(o["license_id"]), sku, _text(o["code"]), _text(o.get("act_number")),
                  _text(o.get("upgrade_of_act")), at, None if at is None else local_day(at, tz))
        )
    return orders


def _parsed(parse: Any, value: Any, tz: ZoneInfo | None, source: str, table: str, row: int, column: str) -> Any:
    """``parse(value[, tz])``; a value it cannot read is a LedgerError naming the cell."""
    try:
        return parse(value, tz) if tz is not None else parse(value)
    except (ValueError, TypeError) as exc:
        msg = f"{source}: {table} row {row + 1}, column {column!r}: {value!r} is not a valid ISO 8601 value"
        raise LedgerError(msg) from exc


def _read_activations(ledger: Ledger, tz: ZoneInfo) -> list[Activation]:
    out = []
    for row, a in enumerate(_records(ledger.activations)):
        at = _parsed(instant, a["activated_at"], tz, ledger.source, "activations", row, "activated_at")
        if at is None:
            msg = f"{ledger.source}: activations row {row + 1}, column 'activated_at' is empty; give a timestamp"
            raise LedgerError(msg)
        out.append(Activation(row, _text(a["code"]), _text(a["license_id"]), at, local_day(at, tz)))
    return out


def _read_legacy(ledger: Ledger) -> dict[str, list[tuple[dt.date, dt.date]]]:
    by_license: dict[str, list[tuple[dt.date, dt.date, int]]] = defaultdict(list)
    for row, g in enumerate(_records(ledger.legacy_periods)):
        start = _parsed(calendar_day, g["start"], None, ledger.source, "legacy_periods", row, "start")
        until = _parsed(calendar_day, g["valid_until"], None, ledger.source, "legacy_periods", row, "valid_until")
        if start is None or until is None or until < start:
            msg = f"{ledger.source}: legacy_periods row {row + 1}: give start <= valid_until, both YYYY-MM-DD"
            raise LedgerError(msg)
        by_license[_text(g["license_id"])].append((*legacy_period(start, until), row))
    return {lic: [(s, e) for s, e, _ in sorted(rows, key=lambda r: (r[0], r[2]))] for lic, rows in by_license.items()}


def _check(ledger: Ledger, orders: list[Order]) -> None:
    """The ledger faults the rules cannot replay (the fast engine reports more, with more detail)."""
    src = ledger.source
    licenses = [_text(x) for x in ledger.licenses["license_id"]]
    for table, df in ledger.tables().items():
        if "license_id" in df.columns and table != "features" and any(_missing(x) for x in df["license_id"]):
            msg = f"{src}: {table} has an empty license_id; every row needs a license_id"
            raise LedgerError(msg)
    for what, values in (("license_id", licenses), ("order_id", [o.order_id for o in orders]),
                         ("code", [o.code for o in orders if o.issued_at is not None])):
        seen: set[str | None] = set()
        for v in values:
            if v in seen:
                msg = f"{src}: {what} {v!r} appears more than once; it must be unique"
                raise LedgerError(msg)
            seen.add(v)
    known = set(licenses)
    for o in orders:
        if o.license_id not in known:
            msg = f"{src}: orders row {o.row + 1}: license_id {o.license_id!r} is not in licenses"
            raise LedgerError(msg)
        if o.issued_at is not None and o.code is None:
            msg = f"{src}: orders row {o.row + 1}: code_issued_at is set but the code is empty"
            raise LedgerError(msg)


def _renewals_by_act(orders: list[Order], src: str) -> dict[tuple[str, str], Order]:
    """R8's lookup: renewal orders by (license, act number). Act numbers are unique; a
    repeated one among the renewals an upgrade could name is a ledger fault."""
    upgraded_licenses = {o.license_id for o in orders if o.sku is Sku.UPGRADE}
    out: dict[tuple[str, str], Order] = {}
    acts: set[str] = set()
    for o in orders:
        if o.sku is Sku.RENEWAL and o.act_number is not None and o.license_id in upgraded_licenses:
            if o.act_number in acts:
                msg = f"{src}: orders carry act_number {o.act_number!r} more than once; act numbers must be unique"
                raise LedgerError(msg)
            acts.add(o.act_number)
            out[(o.license_id, o.act_number)] = o
    return out


def _last_event_day(ledger: Ledger, tz: ZoneInfo, orders: list[Order], activations: list[Activation],
                    legacy: dict[str, list[tuple[dt.date, dt.date]]]) -> dt.date:
    """The default ``as_of``: the last day anything happened in the ledger (1970-01-01 if nothing did)."""
    days = [a.day for a in activations] + [o.issued_on for o in orders if o.issued_on is not None]
    days += [start for periods in legacy.values() for start, _ in periods]
    for column in ("requested_at", "invoiced_at", "paid_at", "ticket_at"):
        if column in ledger.orders.columns:
            for row, value in enumerate(ledger.orders[column]):
                at = _parsed(instant, value, tz, ledger.source, "orders", row, column)
                if at is not None:
                    days.append(local_day(at, tz))
    return max(days, default=EPOCH)


# -- the replay ---------------------------------------------------------------------------------------------
def reference_replay(ledger: Ledger, catalog: Catalog | None = None, as_of: Any = None) -> Replay:
    """Replay ``ledger`` with the rule functions of this module (``engine="reference"``).

    The result has the fast engine's tables, columns, dtypes and row order.

    Examples
    --------
    >>> import subs_model as sm
    >>> rep = sm.replay(sm.read_ledger("data/sample"), as_of="2026-06-30", engine="reference")  # doctest: +SKIP
    """
    catalog = catalog if catalog is not None else Catalog.default()
    tz = ZoneInfo(catalog.timezone)
    orders = _read_orders(ledger, tz)
    _check(ledger, orders)
    activations = _read_activations(ledger, tz)
    legacy = _read_legacy(ledger)
    renewals_by_act = _renewals_by_act(orders, ledger.source)
    if as_of is None:
        as_of_day = _last_event_day(ledger, tz, orders, activations, legacy)
    else:
        as_of_day = EPOCH + dt.timedelta(days=as_day(as_of, catalog.timezone))
    orders_by_code = {o.code: o for o in orders if o.issued_at is not None}
    events: dict[str, list[Issue | Activation]] = defaultdict(list)
    for o in orders:
        if o.sku is Sku.RENEWAL and o.issued_at is not None:
            events[o.license_id].append(Issue(o.issued_at, o.issued_on, o))
    for a in activations:
        events[a.license_id].append(a)
    licenses = _LicenseSpace(ledger)
    results = {
        lic: replay_license(lic, legacy.get(lic, []), events.get(lic, []), orders_by_code, renewals_by_act, catalog,
                            as_of_day)
        for lic in licenses.ids
        if lic in events or lic in legacy
    }
    periods = [p for r in results.values() for p in r.periods]
    rejections = [x for r in results.values() for x in r.rejections]
    return Replay(
        periods=_periods_frame(ledger, licenses, periods, catalog),
        codes=_codes_frame(ledger, orders, as_of_day),
        rejections=_rejections_frame(ledger, rejections),
        as_of=pd.Timestamp(as_of_day),
        catalog=catalog,
        ledger=ledger,
        keys={
            "license": np.array([licenses.number[p.license_id] for p in periods], np.int32),
            "order": np.array([-1 if p.order is None else p.order.row for p in periods], np.int32),
            "rejection_order": np.array([-1 if x.order is None else x.order.row for x in rejections], np.int32),
        },
    )


# -- the result tables (the fast engine's layout) ---------------------------------------------------------
class _LicenseSpace:
    """Every license id of the ledger, in the order results list them: the categories' order
    when every license_id column is a categorical with the same categories, else sorted."""

    def __init__(self, ledger: Ledger) -> None:
        cols = [df["license_id"] for df in (ledger.licenses, ledger.orders, ledger.activations, ledger.legacy_periods)
                if df is not None]
        first = cols[0]
        self.dtype: pd.CategoricalDtype | None = None
        if all(isinstance(c.dtype, pd.CategoricalDtype) for c in cols) and all(
            c.cat.categories.equals(first.cat.categories) for c in cols
        ):
            self.dtype = first.dtype
            self.ids = [str(x) for x in first.cat.categories]
        else:
            self.ids = sorted({_text(x) for c in cols for x in c if not _missing(x)})
        self.number = {lic: k for k, lic in enumerate(self.ids)}

    def column(self, ids: list[str]) -> pd.Series:
        if self.dtype is not None:
            return pd.Series(pd.Categorical.from_codes([self.number[x] for x in ids], dtype=self.dtype))
        return _text_column(ids)


def _text_column(values: Iterable[str | None]) -> pd.Series:
    return pd.Series(pd.array(list(values), dtype="str"))


def _take(column: pd.Series, rows: list[int]) -> pd.Series:
    """``column``'s values at ``rows`` (-1: missing), a categorical keeping its dtype, anything else as text."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        return pd.Series(pd.Categorical.from_codes([codes[r] if r >= 0 else -1 for r in rows], dtype=column.dtype))
    values = column.tolist()
    return _text_column(_text(values[r]) if r >= 0 else None for r in rows)


def _id_column(column: pd.Series) -> pd.Series:
    """An id column as given when it is a categorical or pandas strings, else as text."""
    if isinstance(column.dtype, (pd.CategoricalDtype, pd.StringDtype)):
        return column.reset_index(drop=True)
    return _text_column(_text(x) for x in column)


def _enum_column(values: list[str | None], names: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes([-1 if v is None else names.index(v) for v in values],
                                     dtype=pd.CategoricalDtype(names))


def _day_column(days: list[dt.date | None]) -> np.ndarray:
    return np.array([np.datetime64("NaT") if d is None else np.datetime64(d, "D") for d in days],
                    dtype="datetime64[ns]")


def _periods_frame(ledger: Ledger, licenses: _LicenseSpace, periods: list[Period], catalog: Catalog) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "license_id": licenses.column([p.license_id for p in periods]),
            "start": _day_column([p.start for p in periods]),
            "end": _day_column([p.end for p in periods]),
            "source": _enum_column([p.source.value for p in periods], [s.value for s in Source]),
            "code": _take(ledger.activations["code"], [p.activation_row for p in periods]),
            "order_id": _take(ledger.orders["order_id"], [-1 if p.order is None else p.order.row for p in periods]),
            "activated_on": _day_column([p.activated_on for p in periods]),
            "catalog_version": _enum_column([p.version for p in periods], [v.label for v in catalog.versions]),
        }
    )


def _codes_frame(ledger: Ledger, orders: list[Order], as_of: dt.date) -> pd.DataFrame:
    o = ledger.orders
    return pd.DataFrame(
        {
            "code": _id_column(o["code"]),
            "order_id": _id_column(o["order_id"]),
            "license_id": _id_column(o["license_id"]),
            "sku": _enum_column([x.sku.value for x in orders], [s.value for s in Sku]),
            "status": _enum_column([code_status(x, as_of).value for x in orders], [s.value for s in CodeStatus]),
            "activated_on": _day_column([x.activated_on for x in orders]),
            "deadline": _day_column([reported_deadline(x, as_of) for x in orders]),
        }
    )


def _rejections_frame(ledger: Ledger, rejections: list[Rejection]) -> pd.DataFrame:
    rows = [x.activation.row for x in rejections]
    return pd.DataFrame(
        {
            "code": _take(ledger.activations["code"], rows),
            "license_id": _take(ledger.activations["license_id"], rows),
            "day": _day_column([x.activation.day for x in rejections]),
            "reason": _enum_column([x.reason.value for x in rejections], [r.value for r in Reason]),
        }
    )
