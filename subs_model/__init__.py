"""subs_model — analytics and pricing toolkit for the «Кассир 5» subscriptions.

Importing the package is cheap and changes nothing in the host process: each name below
loads its module on first use (PEP 562), and process tuning is an explicit call,
:func:`tune_process`, that programs owning their process make.

>>> import subs_model as sm
>>> cat = sm.Catalog.default()
>>> cat.versions[0].term_days
365
"""

from __future__ import annotations

import importlib
import sys
import types
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("subs_model")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Public name → the submodule that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "Behaviour": "behaviour",
    "BehaviourError": "behaviour",
    "LeadTime": "behaviour",
    "calibrate": "calibrate",
    "BreakEven": "breakeven",
    "break_even": "breakeven",
    "decisions_needed": "breakeven",
    "ElasticityEstimate": "elasticity",
    "estimate_elasticity": "elasticity",
    "calibrate_retention": "retention_fit",
    "calibrate_shifts": "retention_fit",
    "Backtest": "backtest",
    "backtest": "backtest",
    "Forecast": "forecast",
    "ForecastError": "forecast",
    "forecast": "forecast",
    "RetentionError": "retention",
    "SBGFit": "retention",
    "fit_sbg": "retention",
    "fit_sbg_licenses": "retention",
    "Catalog": "catalog",
    "CatalogVersion": "catalog",
    "Edition": "catalog",
    "RenewalBasis": "catalog",
    "Sku": "catalog",
    "SubscriptionBasis": "catalog",
    "CatalogError": "errors",
    "ProfileError": "errors",
    "LedgerError": "errors",
    "LedgerFileError": "errors",
    "MetricsError": "errors",
    "SubsModelError": "errors",
    "QuarantineReason": "io",
    "read_ledger": "io",
    "labels": "labels",
    "Ledger": "ledger",
    "Profile": "profiles",
    "load_profile": "profiles",
    "CodeStatus": "replay",
    "Prepared": "prepared",
    "prepare": "prepared",
    "Reason": "replay",
    "Replay": "replay",
    "Source": "replay",
    "replay": "replay",
    "simulate": "simulate",
    "Note": "notes",
    "people_table": "tables",
    "run_reports": "reports",
    "tune_process": "_tuning",
    "Scenario": "whatif",
    "load_scenarios": "whatif",
    "run_scenarios": "whatif",
    "sensitivity": "whatif",
    "workers": "workers",
    "set_workers": "workers",
    "shutdown": "workers",
    "worklists": "worklists",
    "Worklists": "worklists",
}

__all__ = sorted([*_LAZY, "__version__"])


#: Submodules reached as attributes (``sm.metrics.renewal_rates``), imported on first access.
_SUBMODULES = frozenset({"metrics", "money"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'subs_model' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


#: Submodules named like the function they exist for: ``subs_model.replay`` is the function.
_FUNCTION_MODULES = frozenset({"replay", "calibrate", "simulate", "workers", "forecast", "backtest", "labels", "worklists"})


class _Package(types.ModuleType):
    """The package module: when the import system binds one of ``_FUNCTION_MODULES`` as an
    attribute (on that submodule's first import), the attribute becomes its function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTION_MODULES and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from ._tuning import tune_process
    from .behaviour import Behaviour, BehaviourError, LeadTime
    from .breakeven import BreakEven, break_even, decisions_needed
    from .calibrate import calibrate
    from .elasticity import ElasticityEstimate, estimate_elasticity
    from .backtest import Backtest, backtest
    from .retention_fit import calibrate_retention, calibrate_shifts
    from .forecast import Forecast, ForecastError, forecast
    from .retention import RetentionError, SBGFit, fit_sbg, fit_sbg_licenses
    from .catalog import Catalog, CatalogVersion, Edition, RenewalBasis, Sku, SubscriptionBasis
    from .errors import CatalogError, LedgerError, LedgerFileError, MetricsError, ProfileError, SubsModelError
    from .labels import labels
    from .io import QuarantineReason, read_ledger
    from .ledger import Ledger
    from .notes import Note
    from .profiles import Profile, load_profile
    from .prepared import Prepared, prepare
    from .replay import CodeStatus, Reason, Replay, Source, replay
    from .reports import run_reports
    from .simulate import simulate
    from .tables import people_table
    from .whatif import Scenario, load_scenarios, run_scenarios, sensitivity
    from .workers import set_workers, shutdown, workers
    from .worklists import Worklists, worklists
