"""The project's vocabulary, defined once: every closed set of names with its engine code.

Each enum is a :class:`enum.StrEnum` (what tables and files carry) whose members also carry
``code``, the small integer the compiled engine and the integer arrays of the pandas layer
use for it: the member's position in the class (``Reason`` counts from 1, 0 being "accepted").
A categorical column of one of these enums has the members' values as its categories in
code order (:func:`categories`), so its codes *are* the engine codes.

The compiled kernels need plain ``int`` globals (numba freezes them when it compiles); they are
made here from the enums, in one block at the end, and nowhere else. (numba's on-disk cache
does not see a change in this module: after reordering an enum, clear ``__pycache__``.)

>>> Sku.RENEWAL.code, Reason.UNKNOWN_CODE.code, Source.LEGACY.code
(1, 1, 3)
>>> categories(CodeStatus)
['pending', 'issued', 'activated', 'lapsed', 'upgraded']
"""

from __future__ import annotations

import enum
from typing import TypeVar

import numpy as np

__all__ = [
    "EDITIONS",
    "NO_DAY",
    "NO_DAY32",
    "NO_TIME",
    "NS_PER_DAY",
    "OUTCOMES",
    "SKUS",
    "STAGES",
    "CodeStatus",
    "Coded",
    "Edition",
    "ForgottenFate",
    "ForgottenKind",
    "Outcome",
    "Reason",
    "RenewalBasis",
    "Sku",
    "Source",
    "Stage",
    "SubscriptionBasis",
    "categories",
    "numbered",
]


class Coded(enum.StrEnum):
    """A StrEnum whose members carry ``code``: their engine code (set by :func:`numbered`)."""

    code: int  # an annotation only: not a member


_E = TypeVar("_E", bound=type[Coded])


def numbered(cls: _E, first: int = 0) -> _E:
    """Give each member of ``cls`` its engine code: ``first`` + its position."""
    for k, member in enumerate(cls):
        member.code = first + k
    return cls


def categories(cls: type[Coded]) -> list[str]:
    """The values of ``cls`` in engine-code order: a categorical's categories whose codes are
    the engine codes (for :class:`Reason`, code − 1)."""
    return [m.value for m in cls]


# -- the catalog -------------------------------------------------------------------------------------------
@numbered
class Edition(Coded):
    """The product a license is for."""

    FULL = "full"
    BASIC = "basic"


@numbered
class Sku(Coded):
    """What is sold."""

    SUBSCRIPTION = "subscription"
    RENEWAL = "renewal"
    UPGRADE = "upgrade"


@numbered
class SubscriptionBasis(Coded):
    """R3: how a subscription (or an upgrade) extends coverage."""

    STACK = "stack"
    FROM_ACTIVATION = "from_activation"


@numbered
class RenewalBasis(Coded):
    """R6: how an accepted renewal extends coverage."""

    MAX_END_OR_ACTIVATION = "max_end_or_activation"
    FROM_EXPIRY = "from_expiry"
    FROM_ACTIVATION = "from_activation"


# -- the replay ---------------------------------------------------------------------------------------------
@numbered
class Source(Coded):
    """What created a period (an activation's SKU, with the same code, or a legacy import)."""

    SUBSCRIPTION = "subscription"
    RENEWAL = "renewal"
    UPGRADE = "upgrade"
    LEGACY = "legacy"


@numbered
class CodeStatus(Coded):
    """Fate of an order's code as of the replay's ``as_of`` day (R14)."""

    PENDING = "pending"
    ISSUED = "issued"
    ACTIVATED = "activated"
    LAPSED = "lapsed"
    UPGRADED = "upgraded"


@numbered
class Reason(Coded):
    """Why an activation was rejected, in the order the checks run (R11, R4–R8). Engine codes
    count from 1: 0 is an accepted activation."""

    UNKNOWN_CODE = "unknown_code"
    WRONG_LICENSE = "wrong_license"
    ACTIVATED_BEFORE_ISSUE = "activated_before_issue"
    CODE_REUSED = "code_reused"
    CODE_UPGRADED = "code_upgraded"
    NO_PRIOR_SUBSCRIPTION = "no_prior_subscription"
    RENEWAL_AFTER_DEADLINE = "renewal_after_deadline"
    UPGRADE_INVALID_TARGET = "upgrade_invalid_target"


numbered(Reason, first=1)


# -- orders and behaviour -------------------------------------------------------------------------------------
@numbered
class Stage(Coded):
    """Order stages whose lead time (from the previous stage) the customer and back office
    take (R9). ``ticket`` (helpdesk ticket quoting the act) exists for upgrades only."""

    INVOICE = "invoice"
    PAYMENT = "payment"
    TICKET = "ticket"
    CODE = "code"
    ACTIVATION = "activation"


# -- metrics (rules §6) -----------------------------------------------------------------------------------------
@numbered
class Outcome(Coded):
    """Fate of a term end (rules §6)."""

    EARLY_RENEWAL = "early_renewal"
    GRACE_RENEWAL = "grace_renewal"
    EARLY_SUBSCRIPTION = "early_subscription"
    GRACE_SUBSCRIPTION = "grace_subscription"
    UPGRADE = "upgrade"
    LATE_SUBSCRIPTION = "late_subscription"
    CHURNED = "churned"
    OPEN = "open"


@numbered
class ForgottenFate(Coded):
    """What became of a lapsed renewal code (rules §6, forgotten renewal)."""

    UPGRADED = "upgraded"
    REPLACED_BY_SUBSCRIPTION = "replaced_by_subscription"
    CHURNED = "churned"
    OPEN = "open"


@numbered
class ForgottenKind(Coded):
    """How a renewal code came to lapse."""

    NEVER_ACTIVATED = "never_activated"
    REJECTED_LATE = "rejected_late"


EDITIONS: tuple[Edition, ...] = tuple(Edition)
SKUS: tuple[Sku, ...] = tuple(Sku)
STAGES: tuple[str, ...] = tuple(categories(Stage))
OUTCOMES: tuple[str, ...] = tuple(categories(Outcome))

# -- sentinels --------------------------------------------------------------------------------------------------
NO_TIME = int(np.iinfo(np.int64).min)  #: a missing instant (int64 ns; NaT's bits)
NO_DAY = NO_TIME  #: a missing day (int64 days); the least int64, so it never raises a maximum
NO_DAY32 = int(np.iinfo(np.int32).min)  #: a missing day in the engine's int32 day columns
NS_PER_DAY = 86_400 * 1_000_000_000  #: nanoseconds in a day (instants are int64 ns, days int64 days)

# -- engine codes as plain ints, for the compiled kernels -----------------------------------------------------
SUB, REN, UPG = (s.code for s in Sku)
LEGACY = Source.LEGACY.code
STACK, SUB_FROM_ACTIVATION = (b.code for b in SubscriptionBasis)
MAX_END_OR_ACTIVATION, FROM_EXPIRY, REN_FROM_ACTIVATION = (b.code for b in RenewalBasis)
ACCEPTED = 0  # an activation that no check refused
AFTER_AS_OF = -1  # an activation not seen: it lies after as_of
(UNKNOWN_CODE, WRONG_LICENSE, ACTIVATED_BEFORE_ISSUE, CODE_REUSED, CODE_UPGRADED, NO_PRIOR_SUBSCRIPTION,
 RENEWAL_AFTER_DEADLINE, UPGRADE_INVALID_TARGET) = (r.code for r in Reason)
STATUS_PENDING, STATUS_ISSUED, STATUS_ACTIVATED, STATUS_LAPSED, STATUS_UPGRADED = (s.code for s in CodeStatus)
STAGE_TICKET = Stage.TICKET.code

# The engine shares codes between a SKU and the source of the period it makes.
if [s.code for s in Sku] != [Source[s.name].code for s in Sku]:  # pragma: no cover - a bad edit of the enums
    msg = "vocab: Source must list the SKUs first, in Sku's order"
    raise RuntimeError(msg)
