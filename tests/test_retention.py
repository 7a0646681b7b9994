"""The shifted-beta-geometric retention model: the paper's fits, its identities, censoring and truncation."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subs_model.retention import (RetentionError, SBGFit, churn_weights, fit_sbg, fit_sbg_licenses, leak_weight,
                                  license_lifetimes, posterior_continue)

REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]  # Fader & Hardie (2007), Table 1
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


@pytest.mark.parametrize(("survivors", "alpha", "beta"), [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)])
def test_reproduces_fader_hardie_2007_table_1(survivors, alpha, beta) -> None:
    """The regular and high-end cohorts (0–7 years) give the paper's alpha and beta to three decimals."""
    f = fit_sbg(survivors)
    assert round(f.alpha, 3) == alpha
    assert round(f.beta, 3) == beta
    assert 0 < f.alpha_se < f.alpha and 0 < f.beta_se < f.beta


def test_shares_give_the_same_fit_without_standard_errors() -> None:
    """A survival table as shares fits the same model; with no counts there are no standard errors."""
    f, g = fit_sbg(REGULAR), fit_sbg(np.array(REGULAR) / 1000)
    assert g.alpha == pytest.approx(f.alpha, rel=1e-5) and g.beta == pytest.approx(f.beta, rel=1e-5)
    assert np.isnan(g.alpha_se) and np.isnan(g.beta_se)


def test_the_fitted_curve_follows_the_data() -> None:
    """Survival of the regular fit is within 1.5 points of the observed shares over the seven years fitted."""
    f = fit_sbg(REGULAR)
    assert np.abs(f.survival(np.arange(8)) - np.array(REGULAR) / 1000).max() < 0.015


@settings(max_examples=50, deadline=None)
@given(st.floats(0.05, 20), st.floats(0.05, 20))
def test_survival_is_the_product_of_retention_rates_and_retention_rises(alpha, beta) -> None:
    """S(t) = r(1)…r(t) for any alpha, beta; the renewal rate rises with tenure (heterogeneity sorts customers)."""
    f = SBGFit(alpha, beta)
    t = np.arange(1, 15)
    assert np.allclose(f.survival(t), np.cumprod(f.retention(t)), rtol=1e-9)
    assert np.all(np.diff(f.retention(t)) > 0)
    assert f.survival(0) == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.05, 20), st.floats(0.05, 20), st.floats(0.0, 0.5))
def test_with_a_leak_survival_is_still_the_product_of_retention_rates(alpha, beta, leak) -> None:
    """With a leak c: S(t) = r(1)…r(t), r(t) < 1 - c and tends to it, the mean continuation carries the factor."""
    f = SBGFit(alpha, beta, leak=leak)
    t = np.arange(1, 15)
    assert np.allclose(f.survival(t), np.cumprod(f.retention(t)), rtol=1e-9)
    assert np.all(f.retention(t) <= 1 - leak + 1e-12)
    assert f.mean_continue == pytest.approx((1 - leak) * beta / (alpha + beta))


@pytest.mark.parametrize(("renewals", "leak"), [(0, 0.0), (3, 0.0), (0, 0.05), (3, 0.2)])
def test_derl_is_the_discounted_sum_of_survival(renewals, leak) -> None:
    """DERL (Fader & Hardie 2010) equals sum_k S(n+k)/S(n) / (1+d)^(k-1) summed directly (with a leak too)."""
    f = SBGFit(0.704, 1.182, leak=leak)
    d, n = 0.10, renewals
    k = np.arange(1, 5000)
    direct = float(np.sum(f.survival(n + k) / f.survival(n) / (1 + d) ** (k - 1)))
    assert float(f.derl(d, renewals)) == pytest.approx(direct, rel=1e-8)


def test_derl_of_alike_customers_is_the_geometric_sum() -> None:
    """With huge alpha, beta (everyone alike, churn theta) DERL tends to (1-θ)(1+d)/(d+θ)."""
    theta, d = 0.25, 0.1
    f = SBGFit(theta * 1e6, (1 - theta) * 1e6)
    assert float(f.derl(d)) == pytest.approx((1 - theta) * (1 + d) / (d + theta), rel=1e-4)


def _licenses(n: int, alpha: float, beta: float, seed: int = 0, leak: float = 0.0) -> tuple[np.ndarray, ...]:
    """Simulated licenses: theta ~ Beta, lifetime geometric (chance to leave ``leak + (1 - leak) theta``),
    entry tenure 0–2 (left truncated), censored at 3–9."""
    rng = np.random.default_rng(seed)
    theta = rng.beta(alpha, beta, n)
    T = rng.geometric(leak + (1 - leak) * theta)  # terms paid for
    entry = rng.integers(0, 3, n)
    seen = T > entry  # a license that left before its entry tenure is never observed
    T, entry = T[seen], entry[seen]
    C = rng.integers(3, 10, len(T))
    last = np.minimum(T - 1, C)
    return entry, last, T <= C


def test_individual_licenses_with_truncation_and_censoring_recover_the_mixture() -> None:
    """100 k licenses, left-truncated and right-censored: alpha and beta within 5 %, their SEs cover the truth."""
    entry, last, churned = _licenses(100_000, 0.7, 1.2)
    t0 = time.perf_counter()
    f = fit_sbg_licenses(entry, last, churned)
    elapsed = time.perf_counter() - t0
    assert f.alpha == pytest.approx(0.7, rel=0.05) and f.beta == pytest.approx(1.2, rel=0.05)
    assert abs(f.alpha - 0.7) < 4 * f.alpha_se and abs(f.beta - 1.2) < 4 * f.beta_se
    assert elapsed < 1.0  # grouped by (entry, last, churned): the size of the data hardly matters


def test_ignoring_left_truncation_would_bias_the_fit() -> None:
    """Fitting the same licenses as if they entered at tenure 0 gives a different (wrong) beta: truncation matters."""
    entry, last, churned = _licenses(50_000, 0.7, 1.2, seed=1)
    right = fit_sbg_licenses(entry, last, churned)
    wrong = fit_sbg_licenses(np.zeros_like(entry), last, churned)
    assert abs(right.beta - 1.2) < abs(wrong.beta - 1.2)


def test_weights_count_like_repeated_rows() -> None:
    """A row with weight 3 fits like the same row three times."""
    e, la, c = [0, 0, 0, 1], [0, 2, 4, 3], [True, True, False, True]
    f = fit_sbg_licenses(e, la, c, weights=[3, 1, 2, 1])
    rows = fit_sbg_licenses([0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 2, 4, 4, 3], [True, True, True, True, False, False, True])
    assert f.alpha == pytest.approx(rows.alpha, rel=1e-5) and f.beta == pytest.approx(rows.beta, rel=1e-5)
    assert f.n == rows.n == 7


@pytest.mark.parametrize(("survivors", "message"), [
    ([1000, 900], "give at least 3 numbers"),
    ([1000, 900, 950], "survivors rise from t=1 (900) to t=2 (950)"),
    ([0, 0, 0], "the first (the cohort) > 0"),
    ([1000, 1000, 1000], "no churn is observed"),
])
def test_bad_survival_tables_are_one_line_errors(survivors, message) -> None:
    """Too short, rising, empty or churn-free tables are refused with the value and the fix."""
    with pytest.raises(RetentionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit_sbg(survivors)


def test_bad_license_rows_name_the_row() -> None:
    """A license seen last before it entered is refused, naming its row."""
    with pytest.raises(RetentionError, match=r"row 1: entry=2, last=1"):
        fit_sbg_licenses([0, 2], [1, 1], [True, False])


def test_lifetimes_censor_recent_term_ends_whatever_they_show() -> None:
    """With as_of, a continuation less than a year old censors the license (a churn there would still be open)."""
    out = pd.DataFrame({
        "license_id": ["A", "A", "A", "B", "B", "C"],
        "edition": pd.Categorical(["full"] * 6),
        "end": pd.to_datetime(["2023-01-01", "2024-01-01", "2025-06-01", "2023-03-01", "2024-03-01", "2025-09-01"]),
        "outcome": ["early_renewal", "grace_renewal", "open", "early_renewal", "churned", "early_renewal"],
    })
    plain = license_lifetimes(out).set_index("license_id")
    assert plain.loc["A", "last"] == 2 and not plain.loc["A", "churned"]
    assert plain.loc["B", "last"] == 1 and plain.loc["B", "churned"]
    assert plain.loc["C", "last"] == 1 and not plain.loc["C", "churned"]  # all continued: censored after them
    cens = license_lifetimes(out, as_of="2025-10-31").set_index("license_id")
    assert cens.loc["C", "last"] == 0 and not cens.loc["C", "churned"]  # the recent continuation is not counted
    assert cens.loc["A", "last"] == 2 and cens.loc["B", "churned"]
    tenure = license_lifetimes(out, pd.Series({"B": 3})).set_index("license_id")
    assert tenure.loc["B", "entry"] == 3 and tenure.loc["B", "last"] == 4


def test_the_fit_with_a_leak_recovers_alpha_beta_and_the_leak() -> None:
    """100 k licenses leaving with 0.04 + 0.96 theta: the leak fit gets all three within 4 SEs, fast; the pure
    sBG fits worse (lower likelihood) and the Akaike weight prefers the leak."""
    entry, last, churned = _licenses(100_000, 0.5, 1.5, seed=2, leak=0.04)
    t0 = time.perf_counter()
    f = fit_sbg_licenses(entry, last, churned, leak=True)
    assert time.perf_counter() - t0 < 1.0
    assert abs(f.alpha - 0.5) < 4 * f.alpha_se and abs(f.beta - 1.5) < 4 * f.beta_se
    assert abs(f.leak - 0.04) < 4 * f.leak_se and f.leak_se < 0.02
    pure = fit_sbg_licenses(entry, last, churned)
    assert pure.leak == 0 and not pure.leak_fitted and pure.loglik < f.loglik - 5
    assert leak_weight(pure, f) > 0.99
    draws = f.draws(2000, np.random.default_rng(0))
    assert draws.shape == (2000, 3) and np.all(draws[:, 2] >= 0)
    assert draws[:, 2].std() == pytest.approx(f.leak_se, rel=0.15)


def test_without_a_leak_the_leak_fit_stays_near_zero_and_agrees() -> None:
    """Pure-sBG licenses: the leak estimate is within 3 SEs of 0 and the survival curves agree to a point."""
    entry, last, churned = _licenses(50_000, 0.7, 1.2, seed=3)
    f, g = fit_sbg_licenses(entry, last, churned, leak=True), fit_sbg_licenses(entry, last, churned)
    assert f.leak < 3 * f.leak_se
    assert np.abs(f.survival(np.arange(10)) - g.survival(np.arange(10))).max() < 0.01


def test_the_likelihood_gradient_matches_finite_differences() -> None:
    """The analytic gradient the leak fit uses agrees with the likelihood's finite differences."""
    from scipy.optimize import check_grad

    from subs_model.retention import _neg_loglik, _neg_loglik_grad

    entry, last, churned = _licenses(5_000, 0.5, 1.5, seed=4, leak=0.04)
    args = (entry.astype(float), last.astype(float), churned, np.ones(len(entry)))
    for x in ([np.log(0.5), np.log(1.5), 0.04], [0.2, 0.9, 0.15]):
        g = _neg_loglik_grad(np.array(x), *args)
        assert check_grad(_neg_loglik, _neg_loglik_grad, np.array(x), *args) < 1e-4 * max(1.0, np.linalg.norm(g))


def test_a_degenerate_leak_fit_is_refused() -> None:
    """Alike customers: the leak fit runs to alpha, beta near 0 (no Beta mixture, no covariance) and is refused;
    a genuine two-point population (5 % who always leave) still fits, with a covariance."""
    rng = np.random.default_rng(5)
    T = rng.geometric(0.25, 20_000)
    C = rng.integers(3, 10, len(T))
    with pytest.raises(RetentionError, match="the fit with a leak degenerates"):
        fit_sbg_licenses(np.zeros(len(T), int), np.minimum(T - 1, C), T <= C, leak=True)
    T = rng.geometric(np.where(rng.random(len(C)) < 0.05, 1.0, 0.2))
    f = fit_sbg_licenses(np.zeros(len(T), int), np.minimum(T - 1, C), T <= C, leak=True)
    assert f.cov is not None and abs(f.leak - 0.2) < 4 * f.leak_se


@pytest.mark.parametrize("leak", [0.0, 0.08])
def test_the_posterior_of_a_returned_license_integrates_the_likelihood(leak) -> None:
    """churn_weights / posterior_continue equal the posterior mean of the chance to continue computed by
    integrating prior × likelihood ((1-c)(1-θ))^n (c + (1-c)θ)^k on a grid; without a leak all weight is on j = k."""
    from scipy.stats import beta as beta_dist

    a, b, n, k = 0.6, 1.8, 3, 2
    th = np.linspace(1e-6, 1 - 1e-6, 200_001)
    post = beta_dist.pdf(th, a, b) * ((1 - leak) * (1 - th)) ** n * (leak + (1 - leak) * th) ** k
    want = float(np.sum(post * (1 - leak) * (1 - th)) / np.sum(post))
    assert float(posterior_continue(a, b, leak, [n], [k])[0]) == pytest.approx(want, rel=1e-4)
    w = churn_weights(a, b, leak, [n], [k])
    assert w.shape == (1, k + 1) and w.sum() == pytest.approx(1.0)
    if leak == 0:
        assert np.array_equal(w[0], [0.0, 0.0, 1.0])
