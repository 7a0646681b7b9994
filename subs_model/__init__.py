"""subs_model — analytics and pricing toolkit for the «Кассир 5» subscriptions.

>>> import subs_model as sm
>>> cat = sm.Catalog.default()
>>> cat.versions[0].term_days
365
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import _tuning
from .behaviour import Behaviour, BehaviourError, LeadTime
from .calibrate import calibrate
from .catalog import Catalog, CatalogVersion, Edition, RenewalBasis, Sku, SubscriptionBasis
from .errors import CatalogError, LedgerError, LedgerFileError, SubsModelError
from .io import QuarantineReason, read_ledger
from .ledger import Ledger
from .replay import CodeStatus, Reason, Replay, Source, replay
from .simulate import simulate
from .whatif import Scenario, load_scenarios, run_scenarios, sensitivity

try:
    __version__ = version("subs_model")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Behaviour",
    "BehaviourError",
    "Catalog",
    "CatalogError",
    "CatalogVersion",
    "CodeStatus",
    "Edition",
    "LeadTime",
    "Ledger",
    "LedgerError",
    "LedgerFileError",
    "QuarantineReason",
    "Reason",
    "RenewalBasis",
    "Replay",
    "Scenario",
    "Sku",
    "Source",
    "SubsModelError",
    "SubscriptionBasis",
    "__version__",
    "calibrate",
    "load_scenarios",
    "read_ledger",
    "replay",
    "run_scenarios",
    "sensitivity",
    "simulate",
]

_tuning.apply()
