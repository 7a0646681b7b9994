"""Retention parameters from a ledger: the sBG per edition and the covariate shifts.

:func:`calibrate_retention` fits the shifted-beta-geometric model (Beta mixing of the churn
chance) per edition from the replay's term ends; :func:`calibrate_shifts` fits the shifts of
:attr:`subs_model.Behaviour.continue_shift` (legacy origin, cohort year) beside it. Both use
the one likelihood of :mod:`subs_model.retention` (right censoring, left truncation).
:func:`subs_model.calibrate` uses the first with ``heterogeneity=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .catalog import Catalog
from .ledger import Ledger
from .replay import replay
from .vocab import Edition

__all__ = ["MIN_COHORT", "calibrate_retention", "calibrate_shifts"]

#: Licenses with a decided term end a cohort year needs for a shift of its own (else it is pooled
#: with the reference year).
MIN_COHORT = 100


def calibrate_retention(ledger: Ledger | Any, catalog: Catalog | None = None, as_of: Any = None) -> pd.DataFrame:
    """Fit the sBG model (Beta mixing of the churn chance) per edition from the replay's term ends.

    Maximum likelihood with right censoring (a term end younger than the churn horizon,
    365 days, counts as not yet decided whatever it shows) and left truncation (a legacy
    license enters at the tenure its legacy period implies). Returns one row per edition:
    ``edition, alpha, alpha_se, beta, beta_se, licenses, new_license_continuation,
    concentration`` (standard errors from the inverse Hessian; NaN where no fit was possible).

    ``ledger`` may also be a :class:`~subs_model.replay.Replay` (then ``catalog`` and
    ``as_of`` are its own).

    Examples
    --------
    >>> import subs_model as sm
    >>> led = sm.simulate(sm.Behaviour(arrivals_per_month=60, legacy_licenses=50,
    ...                                continue_concentration={"full": 3.0, "basic": 3.0}),
    ...                   sm.Catalog.default(), start="2021-01-01", end="2025-12-31", seed=2)
    >>> fits = sm.calibrate_retention(led, sm.Catalog.default())
    >>> sorted(fits["edition"])
    ['basic', 'full']
    """
    from .forecast_state import CHURN_HORIZON, entry_tenure, fit_retention
    from .metrics import expiry_outcomes

    rep = ledger if hasattr(ledger, "periods") else replay(ledger, catalog or Catalog.default(), as_of)
    out = expiry_outcomes(rep, rep.as_of, CHURN_HORIZON)
    notes: list[str] = []
    fits = fit_retention(out, entry_tenure(rep), rep.as_of, notes)
    rows = []
    for ed in Edition:
        f = fits.get(ed.code)
        nan = float("nan")
        rows.append({
            "edition": ed.value,
            "alpha": f.alpha if f else nan, "alpha_se": f.alpha_se if f else nan,
            "beta": f.beta if f else nan, "beta_se": f.beta_se if f else nan,
            "licenses": f.n if f else 0.0,
            "new_license_continuation": f.mean_continue if f else nan,
            "concentration": f.alpha + f.beta if f else nan,
        })
    return pd.DataFrame(rows)


def calibrate_shifts(ledger: Ledger | Any, catalog: Catalog | None = None, as_of: Any = None) -> pd.DataFrame:
    """The covariate shifts of :attr:`Behaviour.continue_shift` by maximum likelihood.

    The sBG of each edition (concentration ``k`` and mean continuation ``m`` of a license of
    the reference cohort, not legacy) with shared log-odds shifts of the mean for legacy origin
    and each cohort year (the year of a new license's first covered day; the earliest year is
    the reference, and a year with fewer than :data:`MIN_COHORT` licenses whose outcome is
    decided is pooled with it), fitted to the replay's term ends with right censoring and left
    truncation (:func:`subs_model.retention.fit_sbg_shifts`, the likelihood of
    :func:`subs_model.retention.fit_sbg_licenses`).

    Returns
    -------
    DataFrame
        ``term, edition, estimate, se, licenses``: rows ``concentration`` and ``mean`` per
        edition, then ``legacy`` and ``cohort YYYY`` (log-odds shifts, edition empty). As in
        :func:`calibrate_retention`, what the ledger shows as a continuation is the customer's
        intent only where lapses are followed up and nobody returns.

    Examples
    --------
    >>> import subs_model as sm
    >>> led = sm.simulate(sm.Behaviour(arrivals_per_month=60, legacy_licenses=200,
    ...                                continue_concentration={"full": 3.0, "basic": 3.0}),
    ...                   sm.Catalog.default(), start="2021-01-01", end="2025-12-31", seed=2)
    >>> sorted(set(sm.calibrate_shifts(led)["term"]))[:3]
    ['cohort 2022', 'cohort 2023', 'concentration']
    """
    from .forecast_state import CHURN_HORIZON, entry_tenure
    from .metrics import expiry_outcomes
    from .retention import RetentionError, fit_sbg_shifts, license_lifetimes

    rep = ledger if hasattr(ledger, "periods") else replay(ledger, catalog or Catalog.default(), as_of)
    lt = license_lifetimes(expiry_outcomes(rep, rep.as_of, CHURN_HORIZON), entry_tenure(rep), as_of=rep.as_of,
                           churn_horizon_days=CHURN_HORIZON)
    per = rep.periods
    src = per["source"].astype("str")
    legacy_ids = set(per.loc[src == "legacy", "license_id"])
    first = per.groupby(per["license_id"].to_numpy(), sort=False)["start"].min()
    legacy = lt["license_id"].isin(legacy_ids).to_numpy()
    year = np.where(legacy, 0, pd.DatetimeIndex(first.reindex(lt["license_id"]).to_numpy()).year.to_numpy())
    decided = (lt["churned"] | (lt["last"] > lt["entry"])).to_numpy()
    counts = pd.Series(year[decided & ~legacy]).value_counts()
    years = sorted(int(y) for y in counts.index if counts[y] >= MIN_COHORT)
    own = years[1:]  # the first is the reference
    X = np.column_stack([legacy.astype(float)] + [(year == y).astype(float) for y in own])
    keep = legacy.any()
    cols = ([0] if keep else []) + list(range(1, X.shape[1]))
    names = (["legacy"] if keep else []) + [f"cohort {y}" for y in own]
    group = pd.Categorical(lt["edition"], categories=[e.value for e in Edition]).codes.astype(np.int64)
    ok = group >= 0
    if not ok.any() or not decided.any():
        msg = "calibrate_shifts: no decided term end in the ledger; the shifts need churns and renewals to be fitted"
        raise RetentionError(msg)
    f = fit_sbg_shifts(lt["entry"][ok], lt["last"][ok], lt["churned"][ok], group[ok], X[ok][:, cols])
    rows = []
    for ed in Edition:
        n = int((group == ed.code).sum())
        rows.append({"term": "concentration", "edition": ed.value, "estimate": f.concentration[ed.code],
                     "se": f.concentration_se[ed.code], "licenses": n})
        rows.append({"term": "mean", "edition": ed.value, "estimate": f.mean[ed.code], "se": f.mean_se[ed.code], "licenses": n})
    for i, name in enumerate(names):
        n = int(X[ok][:, cols[i]].sum())
        rows.append({"term": name, "edition": "", "estimate": f.shift[i], "se": f.shift_se[i], "licenses": n})
    return pd.DataFrame(rows)
