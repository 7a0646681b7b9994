"""Retention of contractual customers: the shifted-beta-geometric (sBG) model.

Each customer has a constant chance ``theta`` of leaving at every term end; ``theta`` varies
across customers as ``Beta(alpha, beta)``. Those who stay are the ones with a low ``theta``, so
the renewal rate of a cohort rises with tenure — a pooled (homogeneous) rate projects multi-year
retention too low (Fader & Hardie, "How to project customer retention", J. Interactive
Marketing 21(1), 2007; "Customer-base valuation in a contractual setting: the perils of
ignoring heterogeneity", Marketing Science 29(1), 2010).

With ``T`` the number of terms a customer pays for (``T = t``: churned at the ``t``-th term end):

- ``P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)``, ``t = 1, 2, …``
- ``S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta)``
- ``r(t) = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)`` (renewal rate at the t-th end)
- a customer who survived ``n`` term ends has ``theta ~ Beta(alpha, beta + n)`` (posterior).

With a *leak* ``c`` (:func:`fit_sbg_licenses` with ``leak=True``) every customer also leaves
with chance ``c`` at each term end whatever ``theta`` (a business closes, a renewal lapses and
is not followed up): the chance to leave is ``c + (1 - c) theta``, so
``S(t) = (1 - c)^t B(alpha, beta + t) / B(alpha, beta)`` and ``r(t)`` tends to ``1 - c``
instead of 1 — the pure sBG (``c = 0``) projects the retention of long-standing customers too
high when such a floor exists.

Fits are maximum likelihood on aggregated counts (a cohort table, or individual licenses
grouped by entry tenure, last tenure and whether they churned), with right censoring (the
fate of the last term is not known yet) and left truncation (a license observed only from
tenure ``e`` on, e.g. a legacy license carried over from the old rules, counts as
``P(·) / S(e)``). Standard errors come from the inverse Hessian of the log-likelihood; :meth:`SBGFit.draws`
samples the estimate's asymptotic law for forecasts that carry its uncertainty, the leak's
included. :func:`leak_weight` is the Akaike weight of the leak model against the pure sBG —
how far the data prefer it — for forecasts that average over the two structures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SubsModelError

__all__ = ["RetentionError", "SBGFit", "ShiftFit", "churn_weights", "fit_sbg", "fit_sbg_licenses", "fit_sbg_shifts",
           "leak_weight", "license_lifetimes", "loglik_terms", "posterior_continue"]


class RetentionError(SubsModelError, ValueError):
    """The data given to a retention fit is invalid."""


@dataclass(frozen=True, slots=True)
class SBGFit:
    """A fitted shifted-beta-geometric model.

    ``alpha``, ``beta``: the Beta mixing distribution of the churn probability ``theta``
    (mean churn ``alpha / (alpha + beta)``). ``alpha_se``, ``beta_se``: standard errors from
    the inverse Hessian (NaN when the data are shares, not counts). ``leak``: the chance every
    customer leaves at a term end on top of ``theta`` (0 unless fitted with ``leak=True``).
    ``n``: the customers the fit saw; ``loglik``: the maximised log-likelihood.

    Examples
    --------
    >>> f = SBGFit(alpha=1.0, beta=3.0)
    >>> round(float(f.survival(1)), 4), round(float(f.retention(2)), 4)
    (0.75, 0.8)
    """

    alpha: float
    beta: float
    alpha_se: float = float("nan")
    beta_se: float = float("nan")
    n: float = float("nan")
    loglik: float = float("nan")
    cov: tuple[tuple[float, ...], ...] | None = None  #: covariance of (alpha, beta[, leak])
    leak: float = 0.0  #: chance every customer leaves at a term end whatever theta (0: the pure sBG)
    leak_se: float = float("nan")
    leak_fitted: bool = False  #: the leak was estimated (else fixed at 0)

    @property
    def keep(self) -> float:
        """``1 - leak``: the most a customer continues."""
        return 1.0 - self.leak

    @property
    def mean_continue(self) -> float:
        """Mean chance of a new customer to continue: ``(1 - leak) beta / (alpha + beta)``."""
        return self.keep * self.beta / (self.alpha + self.beta)

    def survival(self, t: Any) -> np.ndarray:
        """``S(t)``: share of a new cohort still a customer after ``t`` term ends."""
        from scipy.special import betaln

        t = np.asarray(t, dtype=float)
        return np.exp(t * np.log1p(-self.leak) + betaln(self.alpha, self.beta + t) - betaln(self.alpha, self.beta))

    def retention(self, t: Any) -> np.ndarray:
        """``r(t)``: renewal rate at the ``t``-th term end (``t >= 1``) among those still there."""
        t = np.asarray(t, dtype=float)
        return self.keep * (self.beta + t - 1) / (self.alpha + self.beta + t - 1)

    def posterior(self, renewals: Any) -> tuple[np.ndarray, np.ndarray]:
        """Beta parameters of ``theta`` for a customer who survived ``renewals`` term ends (and
        never left: a survival says the same of ``theta`` with or without a leak)."""
        n = np.asarray(renewals, dtype=float)
        return np.full_like(n, self.alpha), self.beta + n

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of ``[alpha, beta, leak]`` (an ``(n, 3)`` array) from the estimate's
        asymptotic normal law (alpha and beta kept above 5 % of the estimate, the leak clipped
        to ``[0, 0.5]``: at its boundary 0 about half the draws have none, as the constrained
        estimate would). Without a covariance (a fit from shares, or made from parameters)
        every row is this fit.

        >>> f = fit_sbg_licenses([0] * 8, [0, 1, 2, 3, 4, 5, 6, 7], [True] * 7 + [False],
        ...                      weights=[369, 163, 86, 56, 37, 27, 21, 241], leak=True)
        >>> f.draws(3, np.random.default_rng(0)).shape
        (3, 3)
        """
        out = np.tile([self.alpha, self.beta, self.leak], (n, 1))
        if self.cov is None or n == 0:
            return out
        cov = np.asarray(self.cov)
        k = len(cov)
        x = rng.multivariate_normal(out[0, :k], cov, size=n, method="eigh")
        out[:, :2] = np.maximum(x[:, :2], 0.05 * out[0, :2])
        if k > 2:
            out[:, 2] = np.clip(x[:, 2], 0.0, _BOUNDS[2][1])
        return out

    def derl(self, discount: float, renewals: Any = 0) -> np.ndarray:
        """Discounted expected residual lifetime (Fader & Hardie 2010, eq. 6).

        Expected number of further payments of a customer who has just made payment
        ``renewals + 1`` (``renewals`` term ends survived), the next one discounted by
        ``1 / (1 + discount)`` and so on: ``sum_{k>=1} S(n+k)/S(n) / (1+d)^(k-1)``
        with ``n = renewals + 1`` — as in the paper, the payment due at the coming term end
        is counted undiscounted. With a leak ``c``: ``(1 - c) 2F1(…; (1 - c) / (1 + d))``.

        >>> f = SBGFit(alpha=0.704, beta=1.182)
        >>> round(float(f.derl(0.10)), 2)
        2.96
        """
        from scipy.special import hyp2f1

        if not discount > -1:
            msg = f"derl: discount {discount!r} must be > -1 (0.10 = 10 % a term)"
            raise RetentionError(msg)
        n = np.asarray(renewals, dtype=float) + 1
        a, b, k = self.alpha, self.beta, self.keep
        out = np.asarray(k * (b + n - 1) / (a + b + n - 1) * hyp2f1(1.0, b + n, a + b + n, k / (1.0 + discount)))
        bad = ~np.isfinite(out)
        if bad.any():  # the series itself where hyp2f1 fails (very large alpha, beta: customers alike)
            k = np.arange(1, 20_001, dtype=float)
            nn = np.broadcast_to(n, out.shape)[bad] - 1
            terms = self.survival(nn[:, None] + k) / self.survival(nn)[:, None] * np.exp(-(k - 1) * np.log1p(discount))
            out = out.copy()
            out[bad] = terms.sum(axis=1)
        return out


def loglik_terms(a: Any, b: Any, c: float, entry: np.ndarray, last: np.ndarray, churned: np.ndarray) -> np.ndarray:
    """Log-likelihood of each (grouped) license under the sBG with leak ``c`` (``a``, ``b`` scalars or one
    per row): censored, ``S(last) / S(entry)``; churned, ``(S(last) - S(last + 1)) / S(entry)``."""
    from scipy.special import betaln

    l1c = np.log1p(-c)
    # S(last) - S(last + 1) = (1 - c)^last B(a, b + last) (a + c (b + last)) / (a + b + last) / B(a, b)
    # (with c = 0: B(a + 1, b + last) / B(a, b)); both divided by S(entry) (left truncation) — B(a, b) cancels.
    num = last * l1c + betaln(a, b + last)
    num = num + np.where(churned, np.log(a + c * (b + last)) - np.log(a + b + last), 0.0)
    return num - entry * l1c - betaln(a, b + entry)


def _neg_loglik(x: np.ndarray, entry: np.ndarray, last: np.ndarray, churned: np.ndarray, w: np.ndarray) -> float:
    """Minus the log-likelihood of grouped licenses at ``x = (log alpha, log beta[, leak])``."""
    a, b = np.exp(x[:2])
    return -float(np.sum(w * loglik_terms(a, b, float(x[2]) if len(x) > 2 else 0.0, entry, last, churned)))


def _neg_loglik_grad(x: np.ndarray, entry: np.ndarray, last: np.ndarray, churned: np.ndarray,
                     w: np.ndarray) -> np.ndarray:
    """The gradient of :func:`_neg_loglik` in ``x = (log alpha, log beta, leak)``."""
    from scipy.special import digamma

    a, b = np.exp(x[:2])
    c = float(x[2])
    ab = a + b
    inner = a + c * (b + last)
    ch = churned.astype(float)
    d_a = digamma(ab + entry) - digamma(ab + last) + ch * (1.0 / inner - 1.0 / (ab + last))
    d_b = (digamma(b + last) - digamma(ab + last) - digamma(b + entry) + digamma(ab + entry)
           + ch * (c / inner - 1.0 / (ab + last)))
    d_c = -(last - entry) / (1.0 - c) + ch * (b + last) / inner
    return -np.array([a * np.sum(w * d_a), b * np.sum(w * d_b), np.sum(w * d_c)])


def _hessian_cov(fun: Any, x: np.ndarray) -> np.ndarray | None:
    """Covariance of ``x`` (natural scale): the inverse of a central-difference Hessian of ``fun(x)``."""
    k = len(x)
    h = 1e-4 * np.maximum(np.abs(x), 1e-3)
    H = np.empty((k, k))
    eye = np.eye(k)
    for i in range(k):
        for j in range(k):
            ei, ej = eye[i] * h[i], eye[j] * h[j]
            H[i, j] = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (4 * h[i] * h[j])
    try:
        cov = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return None
    return cov if np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0) else None


#: Bounds of (log alpha, log beta, leak) in the fits; alpha or beta at the upper bound means no fit.
_BOUNDS = ((-12.0, 14.0), (-12.0, 14.0), (0.0, 0.5))


def _optimise(args: tuple[np.ndarray, ...], x0: np.ndarray) -> np.ndarray:
    """The maximum-likelihood ``x`` from ``x0`` (2 parameters: the pure sBG; 3: with the leak)."""
    from scipy.optimize import minimize

    if len(x0) == 2:
        # The pure sBG: a simplex near the optimum, then the leak's gradient at c = 0 polishes it. Alike
        # customers have no optimum: alpha and beta run off along a flat ridge (their mean fixed) — the
        # bounds and the iteration cap stop that walk where it no longer changes the fitted curve.
        res = minimize(_neg_loglik, x0, args=args, method="Nelder-Mead", bounds=_BOUNDS[:2],
                       options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 600})
        pure_grad = lambda x, *a: _neg_loglik_grad(np.r_[x, 0.0], *a)[:2]  # noqa: E731
        return minimize(_neg_loglik, res.x, args=args, jac=pure_grad, method="BFGS", options={"gtol": 1e-9}).x
    return minimize(_neg_loglik, x0, args=args, jac=_neg_loglik_grad, method="L-BFGS-B", bounds=_BOUNDS,
                    options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 500}).x


def _fit_grouped(entry: np.ndarray, last: np.ndarray, churned: np.ndarray, w: np.ndarray, *, counts: bool,
                 start: tuple[float, float] = (1.0, 1.0), leak: bool = False) -> SBGFit:
    """Maximum likelihood on grouped licenses (weights ``w``), started from ``start``; with ``leak``
    the pure sBG's optimum starts the three-parameter fit."""
    if not np.any(churned & (w > 0)):
        msg = "fit_sbg: no churn is observed; the sBG model needs at least one decided churn to be fitted"
        raise RetentionError(msg)
    if not np.any(~churned & (w > 0) & (last > entry)) and not np.any(churned & (last > entry)):
        msg = "fit_sbg: no renewal is observed; the sBG model needs customers who renewed at least once"
        raise RetentionError(msg)
    args = (entry.astype(float), last.astype(float), churned.astype(bool), w.astype(float))
    x = _optimise(args, np.log(np.asarray(start, dtype=float)))
    if leak:
        x = _optimise(args, np.r_[np.clip(x, _BOUNDS[0][0], _BOUNDS[0][1] - 1), 0.01])
    a, b = (float(v) for v in np.exp(x[:2]))
    if not (np.isfinite(a) and np.isfinite(b)) or b > 1e6 or a > 1e6:
        msg = (f"fit_sbg: the fit did not converge (alpha={a:.4g}, beta={b:.4g}); the data show no heterogeneity "
               "a Beta mixture can describe — use a pooled rate")
        raise RetentionError(msg)
    nat = np.r_[a, b, x[2:]]
    cov = _hessian_cov(lambda v: _neg_loglik(np.r_[np.log(v[:2]), v[2:]], *args), nat) if counts else None
    if leak and (min(x[0], x[1]) < _BOUNDS[0][0] + 1 or cov is None):
        msg = (f"fit_sbg: the fit with a leak degenerates (alpha={a:.3g}, beta={b:.3g}: customers alike, or who always "
               "leave, beside the leak; no covariance), which is no Beta mixture; use the fit without a leak")
        raise RetentionError(msg)
    se = np.sqrt(np.diag(cov)) if cov is not None else np.full(len(nat), np.nan)
    return SBGFit(alpha=a, beta=b, alpha_se=float(se[0]), beta_se=float(se[1]), n=float(w.sum()),
                  loglik=-float(_neg_loglik(x, *args)),
                  cov=None if cov is None else tuple(tuple(float(v) for v in row) for row in cov),
                  leak=float(x[2]) if leak else 0.0, leak_se=float(se[2]) if leak else float("nan"),
                  leak_fitted=leak)


def fit_sbg(survivors: Sequence[float] | np.ndarray) -> SBGFit:
    """Fit the sBG model to a cohort survival table.

    Parameters
    ----------
    survivors : sequence of numbers
        Customers (counts) or shares still active at ``t = 0, 1, 2, …`` term ends, the
        first being the whole cohort; the survivors at the last ``t`` are right-censored
        (their fate is unknown). Shares (a first value of 1) give the same fit but no
        standard errors.

    Returns
    -------
    SBGFit

    Examples
    --------
    >>> f = fit_sbg([1000, 631, 468, 382, 326, 289, 262, 241])  # Fader & Hardie (2007), "regular"
    >>> round(f.alpha, 3), round(f.beta, 3)
    (0.704, 1.182)
    """
    s = np.asarray(survivors, dtype=float)
    if s.ndim != 1 or len(s) < 3:
        msg = f"fit_sbg: survivors {list(np.atleast_1d(s))!r}: give at least 3 numbers (t = 0, 1, 2, …)"
        raise RetentionError(msg)
    if not np.all(np.isfinite(s)) or np.any(s < 0) or s[0] <= 0:
        msg = f"fit_sbg: survivors {s.tolist()!r} must be finite numbers >= 0, the first (the cohort) > 0"
        raise RetentionError(msg)
    bad = np.flatnonzero(np.diff(s) > 0)
    if len(bad):
        msg = (f"fit_sbg: survivors rise from t={bad[0]} ({s[bad[0]]:g}) to t={bad[0] + 1} ({s[bad[0] + 1]:g}); "
               "a cohort can only shrink — give survivors of one cohort")
        raise RetentionError(msg)
    T = len(s) - 1
    t = np.arange(1, T + 1)
    lost = -np.diff(s)
    entry = np.zeros(T + 1)
    last = np.r_[t - 1, T]  # churned at end t: last tenure t - 1; the survivors censored at T
    churned = np.r_[np.ones(T, bool), False]
    return _fit_grouped(entry, last, churned, np.r_[lost, s[-1]], counts=s[0] > 1)


def fit_sbg_licenses(entry: Any, last: Any, churned: Any, weights: Any = None, *, leak: bool = False) -> SBGFit:
    """Fit the sBG model to individual licenses, with left truncation and right censoring.

    Parameters
    ----------
    entry : array of int
        Term ends a license had survived when it was first observed (0: a new license;
        a legacy license carried over at tenure ``e`` enters at ``e``).
    last : array of int
        Term ends it had survived when last seen (``last >= entry``).
    churned : array of bool
        True: it left at term end ``last + 1`` (decided); False: still a customer, or its
        fate is not known yet (censored).
    weights : array, optional
        Licenses each row stands for (default 1).
    leak : bool
        Also fit the leak ``c`` (every customer leaves with chance ``c`` at a term end whatever
        ``theta``; ``0 <= c <= 0.5``); the pure sBG (``c = 0``) when False.

    Returns
    -------
    SBGFit
        With standard errors. Licenses are grouped by ``(entry, last, churned)`` first, so
        the fit costs the same for a thousand or a million licenses.

    Examples
    --------
    The paper's "regular" cohort as licenses: churned after 0…6 renewals, 241 censored at 7.

    >>> f = fit_sbg_licenses([0] * 8, [0, 1, 2, 3, 4, 5, 6, 7], [True] * 7 + [False],
    ...                      weights=[369, 163, 86, 56, 37, 27, 21, 241])
    >>> round(f.alpha, 3), round(f.beta, 3)
    (0.704, 1.182)
    """
    e = np.asarray(entry, dtype=np.int64)
    la = np.asarray(last, dtype=np.int64)
    c = np.asarray(churned, dtype=bool)
    w = np.ones(len(e)) if weights is None else np.asarray(weights, dtype=float)
    if not (e.shape == la.shape == c.shape == w.shape) or e.ndim != 1:
        msg = f"fit_sbg_licenses: entry, last, churned and weights must be 1-d and equally long, got {e.shape}, {la.shape}, {c.shape}, {w.shape}"
        raise RetentionError(msg)
    bad = np.flatnonzero((e < 0) | (la < e) | ~np.isfinite(w) | (w < 0))
    if len(bad):
        i = int(bad[0])
        msg = (f"fit_sbg_licenses: row {i}: entry={int(e[i])}, last={int(la[i])}, weight={w[i]:g}; "
               "need 0 <= entry <= last and a weight >= 0")
        raise RetentionError(msg)
    key = np.stack([e, la, c.astype(np.int64)], axis=1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    wg = np.bincount(inv.ravel(), weights=w, minlength=len(uniq))
    return _fit_grouped(uniq[:, 0], uniq[:, 1], uniq[:, 2].astype(bool), wg, counts=True, leak=leak)


def license_lifetimes(outcomes: Any, entry_tenure: Any = None, *, as_of: Any = None, churn_horizon_days: int = 365) -> Any:
    """Per license and edition: tenure at entry, tenure last seen, churned — from term-end outcomes.

    Parameters
    ----------
    outcomes : DataFrame
        :func:`subs_model.metrics.expiry_outcomes` (one row per term end, in license and
        time order): ``license_id, edition, end, outcome``.
    entry_tenure : Series, optional
        Tenure at entry by ``license_id`` (legacy licenses carried over after some years);
        default 0 for every license.
    as_of : date-like, optional
        With it, a term end later than ``as_of - churn_horizon_days`` censors the license
        whatever its outcome: a continuation shows at once but a churn only after the
        horizon, so counting recent continuations as survivals while recent churns are still
        open would bias retention up (censoring must not depend on the outcome).

    Returns
    -------
    DataFrame
        ``license_id, edition, entry, last, churned, ends_seen``: ``last`` counts the
        term ends the license went through (continued) before its first churned or open
        end; ``churned`` is True where that end's outcome is ``churned`` (decided), False
        where it is ``open`` (censored). A churned license that came back later is counted
        as churned at its first churn (its return is a reactivation, not a renewal).
    """
    import pandas as pd

    o = outcomes
    lic = pd.factorize(o["license_id"])[0] if len(o) else np.empty(0, np.int64)
    outcome = o["outcome"].astype("str").to_numpy()
    stop = np.isin(outcome, ["churned", "open"])
    if as_of is not None and len(o):
        late = (pd.to_datetime(o["end"]) + pd.Timedelta(days=churn_horizon_days) > pd.Timestamp(as_of)).to_numpy()
        outcome = np.where(late, "open", outcome)
        stop |= late
    n_lic = int(lic.max()) + 1 if len(lic) else 0
    n_ends = np.bincount(lic, minlength=n_lic)
    starts = np.r_[0, np.cumsum(n_ends)[:-1]].astype(np.int64)
    pos = np.arange(len(o)) - starts[lic]  # each end's position among its license's ends (rows are by license)
    none = np.iinfo(np.int64).max
    first_stop = np.full(n_lic, none)
    np.minimum.at(first_stop, lic[stop], pos[stop])
    has_stop = first_stop < none
    last = np.where(has_stop, first_stop, n_ends)  # no stop: every end continued (censored after the last)
    row_of_stop = np.where(has_stop, starts + np.where(has_stop, first_stop, 0), -1)
    churned = np.zeros(n_lic, bool)
    churned[has_stop] = outcome[row_of_stop[has_stop]] == "churned"
    ids = o["license_id"].iloc[starts].to_numpy() if n_lic else np.empty(0, object)
    entry = np.zeros(n_lic, np.int64)
    if entry_tenure is not None and n_lic:
        entry = pd.Series(entry_tenure).reindex(ids).fillna(0).to_numpy().astype(np.int64)
    return pd.DataFrame({
        "license_id": ids,
        "edition": o["edition"].astype("str").to_numpy()[starts] if n_lic else np.empty(0, object),
        "entry": entry,
        "last": entry + last,
        "churned": churned,
        "ends_seen": n_ends,
    })


def churn_weights(alpha: float, beta: float, leak: float, n_cont: Any, n_churn: Any) -> np.ndarray:
    """Posterior weights of ``j = 0 … max churns`` (``[license, j]``): of a license's ``k`` churns,
    ``j`` came from ``theta`` and ``k - j`` from the leak. Its ``theta`` is then the mixture of
    ``Beta(alpha + j, beta + n)`` with these weights, ``∝ C(k, j) c^(k-j) (1-c)^j B(alpha + j, beta + n)``
    (only ``j = k`` without a leak)."""
    from scipy.special import betaln, gammaln

    n = np.asarray(n_cont, dtype=float)[:, None]
    k = np.asarray(n_churn, dtype=np.int64)[:, None]
    j = np.arange(int(k.max()) + 1 if k.size else 1)[None, :]
    if leak <= 0:
        return (j == k).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logw = (gammaln(k + 1) - gammaln(j + 1) - gammaln(np.maximum(k - j, 0) + 1) + (k - j) * np.log(leak)
                + j * np.log1p(-leak) + betaln(alpha + j, beta + n))
    logw = np.where(j <= k, logw, -np.inf)
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)


def posterior_continue(alpha: float, beta: float, leak: float, n_cont: Any, n_churn: Any) -> np.ndarray:
    """Posterior mean chance to continue at the next term end of licenses with ``n_cont``
    continuations and ``n_churn`` churns: ``(1 - leak) E[1 - theta]`` under :func:`churn_weights`.

    >>> float(posterior_continue(1.0, 3.0, 0.0, [2], [0])[0])
    0.8333333333333334
    """
    n = np.asarray(n_cont, dtype=float)
    k = np.asarray(n_churn, dtype=np.int64)
    if not n.size:
        return np.empty(0)
    w = churn_weights(alpha, beta, leak, n, k)
    j = np.arange(w.shape[1])[None, :]
    return (1.0 - leak) * (w * (beta + n[:, None]) / (alpha + beta + n[:, None] + j)).sum(axis=1)


def leak_weight(pure: SBGFit, leaky: SBGFit) -> float:
    """Akaike weight of the sBG with a leak (3 parameters) against the pure sBG (2) fitted to the
    same licenses: ``1 / (1 + exp(1 - (loglik_leak - loglik_pure)))`` (Burnham & Anderson, *Model
    selection and multimodel inference*, 2002, §2.9). 0.27 when the leak adds nothing; towards 1 as
    the data favour it.

    >>> round(leak_weight(SBGFit(1, 2, loglik=-100.0), SBGFit(1, 2, loglik=-100.0, leak=0.0)), 3)
    0.269
    """
    return float(1.0 / (1.0 + np.exp(1.0 - (leaky.loglik - pure.loglik))))


@dataclass(frozen=True)
class ShiftFit:
    """The sBG with covariates (:func:`fit_sbg_shifts`): per group (edition) the concentration
    ``alpha + beta`` and mean continuation ``beta / (alpha + beta)`` of licenses without a covariate,
    and one log-odds shift of that mean per covariate, shared by the groups; standard errors
    from the inverse Hessian (NaN where it could not be inverted)."""

    concentration: np.ndarray
    concentration_se: np.ndarray
    mean: np.ndarray
    mean_se: np.ndarray
    shift: np.ndarray
    shift_se: np.ndarray
    n: float
    loglik: float

    def beta_params(self, group: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Each license's ``(alpha, beta)`` from its group and covariate row."""
        from scipy.special import expit, logit

        g = np.asarray(group, dtype=np.int64)
        m = expit(logit(self.mean[g]) + np.asarray(X, dtype=float) @ self.shift)
        k = self.concentration[g]
        return k * (1 - m), k * m


def fit_sbg_shifts(entry: Any, last: Any, churned: Any, group: Any, X: Any, weights: Any = None) -> ShiftFit:
    """Fit the sBG per group with covariates shifting the mean continuation on the log-odds scale.

    License ``i`` of group ``g`` continues with ``q ~ Beta(k_g m_i, k_g (1 - m_i))``,
    ``logit m_i = logit m_g + X_i · shift`` (so ``alpha_i = k_g (1 - m_i)``, ``beta_i = k_g m_i``):
    the same likelihood as :func:`fit_sbg_licenses` (:func:`loglik_terms`, with right censoring and
    left truncation), maximised over ``log k_g, logit m_g`` and the shifts.

    Parameters
    ----------
    entry, last, churned, weights
        As for :func:`fit_sbg_licenses`.
    group : array of int
        Each license's group ``0 … G-1`` (its edition).
    X : array (licenses × covariates)
        Covariates, e.g. 0/1 for legacy origin and for each cohort year but a reference one.

    Returns
    -------
    ShiftFit

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random(4000) < 0.5
    >>> q = rng.beta(2.0 * np.where(x, 0.9, 0.8), 2.0 * np.where(x, 0.1, 0.2))
    >>> T = rng.geometric(np.clip(1 - q, 1e-9, 1)); C = rng.integers(3, 8, len(q))
    >>> f = fit_sbg_shifts(np.zeros(len(q), int), np.minimum(T - 1, C), T <= C, np.zeros(len(q), int), x[:, None])
    >>> bool(abs(f.shift[0] - 0.811) < 4 * f.shift_se[0])
    True
    """
    from scipy.optimize import minimize
    from scipy.special import expit

    e, la = np.asarray(entry, dtype=np.int64), np.asarray(last, dtype=np.int64)
    c, g = np.asarray(churned, dtype=bool), np.asarray(group, dtype=np.int64)
    Xa = np.asarray(X, dtype=float).reshape(len(e), -1)
    w = np.ones(len(e)) if weights is None else np.asarray(weights, dtype=float)
    if not (len(e) == len(la) == len(c) == len(g) == len(w)) or len(e) == 0 or g.min() < 0:
        msg = ("fit_sbg_shifts: entry, last, churned, group and X need one row per license (group >= 0), "
               "and some licenses")
        raise RetentionError(msg)
    key = np.column_stack([e, la, c, g, Xa])
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    wg = np.bincount(inv.ravel(), weights=w, minlength=len(uniq))
    ue, ul, uc, ug, uX = uniq[:, 0], uniq[:, 1], uniq[:, 2].astype(bool), uniq[:, 3].astype(np.int64), uniq[:, 4:]
    n_g, n_x = int(g.max()) + 1, Xa.shape[1]

    def nll(x: np.ndarray) -> float:
        k, lm = np.exp(x[:n_g])[ug], x[n_g : 2 * n_g][ug]
        m = expit(lm + uX @ x[2 * n_g :])
        return -float(np.sum(wg * loglik_terms(k * (1 - m), k * m, 0.0, ue, ul, uc)))

    x0 = np.r_[np.full(n_g, np.log(2.0)), np.full(n_g, 1.0), np.zeros(n_x)]
    res = minimize(nll, x0, method="BFGS", options={"gtol": 1e-7, "maxiter": 2000})
    x = res.x
    cov = _hessian_cov(nll, x)
    se = np.sqrt(np.diag(cov)) if cov is not None else np.full(len(x), np.nan)
    k, m = np.exp(x[:n_g]), expit(x[n_g : 2 * n_g])
    return ShiftFit(concentration=k, concentration_se=k * se[:n_g], mean=m, mean_se=m * (1 - m) * se[n_g : 2 * n_g],
                    shift=x[2 * n_g :], shift_se=se[2 * n_g :], n=float(w.sum()), loglik=-float(res.fun))
