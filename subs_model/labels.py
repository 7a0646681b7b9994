"""Names people read for the project's enum values, in Russian and English.

Tables and files carry the enum values (``early_renewal``, ``basic``); a report, a chart or a
spreadsheet for people shows these labels. Every enum of :mod:`subs_model.vocab` a person
meets is covered (a test checks it), so a new member cannot go out unlabelled.

>>> labels("en")["grace_renewal"]
'Renewal in grace'
>>> labels("ru")["basic"]
'Кассир 5 (Базовая версия)'
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .errors import MetricsError

__all__ = ["LANGS", "labels"]

LANGS = ("ru", "en")

_LABELS: dict[str, dict[str, str]] = {
    "ru": {
        # Outcome
        "early_renewal": "Продление заранее", "grace_renewal": "Продление в льготный период",
        "early_subscription": "Подписка заранее", "grace_subscription": "Подписка в льготный период",
        "upgrade": "Апгрейд", "late_subscription": "Подписка после срока", "churned": "Ушли",
        "open": "Срок продления ещё не истёк",
        # ForgottenFate, ForgottenKind
        "upgraded": "Апгрейд", "replaced_by_subscription": "Купили подписку", "never_activated": "Не активировали",
        "rejected_late": "Активировали поздно",
        # Edition, Sku / Source
        "full": "Кассир 5", "basic": "Кассир 5 (Базовая версия)",
        "subscription": "Подписка", "renewal": "Продление", "legacy": "Старая система",
        # CodeStatus
        "pending": "Ждёт выдачи кода", "issued": "Код выдан", "activated": "Активирован", "lapsed": "Сгорел",
        # Stage
        "invoice": "Счёт", "payment": "Оплата", "ticket": "Заявка в ТП", "code": "Код", "activation": "Активация",
    },
    "en": {
        "early_renewal": "Early renewal", "grace_renewal": "Renewal in grace", "early_subscription": "Early subscription",
        "grace_subscription": "Subscription in grace", "upgrade": "Upgrade", "late_subscription": "Late subscription",
        "churned": "Churned", "open": "Deadline not passed yet",
        "upgraded": "Upgraded", "replaced_by_subscription": "Bought a subscription", "never_activated": "Never activated",
        "rejected_late": "Activated too late",
        "full": "Кассир 5 (full)", "basic": "Кассир 5 (basic)",
        "subscription": "Subscription", "renewal": "Renewal", "legacy": "Old system",
        "pending": "Awaiting the code", "issued": "Code issued", "activated": "Activated", "lapsed": "Lapsed",
        "invoice": "Invoice", "payment": "Payment", "ticket": "Helpdesk ticket", "code": "Code", "activation": "Activation",
    },
}


def labels(lang: str = "ru") -> Mapping[str, str]:
    """Enum value → the label people read, in ``lang`` (``"ru"`` or ``"en"``); a read-only mapping.

    Covers the outcomes of a term end, the fates and kinds of lapsed renewals, editions, SKUs and
    period sources, code statuses and order stages.

    >>> import subs_model as sm
    >>> sm.labels("en")["churned"]
    'Churned'
    """
    if lang not in _LABELS:
        msg = f"labels: lang {lang!r} is not supported; use one of {list(LANGS)}"
        raise MetricsError(msg)
    return MappingProxyType(_LABELS[lang])
