"""The shifted-beta-geometric retention model: the paper's fits, its identities, censoring and truncation."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subs_model.retention import RetentionError, SBGFit, fit_sbg, fit_sbg_licenses, license_lifetimes

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


@pytest.mark.parametrize("renewals", [0, 3])
def test_derl_is_the_discounted_sum_of_survival(renewals) -> None:
    """DERL (Fader & Hardie 2010) equals sum_k S(n+k)/S(n) / (1+d)^(k-1) summed directly."""
    f = SBGFit(0.704, 1.182)
    d, n = 0.10, renewals
    k = np.arange(1, 5000)
    direct = float(np.sum(f.survival(n + k) / f.survival(n) / (1 + d) ** (k - 1)))
    assert float(f.derl(d, renewals)) == pytest.approx(direct, rel=1e-8)


def test_derl_of_alike_customers_is_the_geometric_sum() -> None:
    """With huge alpha, beta (everyone alike, churn theta) DERL tends to (1-θ)(1+d)/(d+θ)."""
    theta, d = 0.25, 0.1
    f = SBGFit(theta * 1e6, (1 - theta) * 1e6)
    assert float(f.derl(d)) == pytest.approx((1 - theta) * (1 + d) / (d + theta), rel=1e-4)


def _licenses(n: int, alpha: float, beta: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Simulated licenses: theta ~ Beta, lifetime geometric, entry tenure 0–2 (left truncated), censored at 3–9."""
    rng = np.random.default_rng(seed)
    theta = rng.beta(alpha, beta, n)
    T = rng.geometric(theta)  # terms paid for
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
