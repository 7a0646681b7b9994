"""sm.labels(lang): every enum value a person meets has a label in Russian and English."""

from __future__ import annotations

import pytest

import subs_model as sm
from subs_model import vocab


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_enum_value_has_a_label(lang) -> None:
    """Outcomes, fates, kinds, editions, SKUs, sources, code statuses and stages are all labelled, non-empty."""
    lab = sm.labels(lang)
    for enum in (vocab.Outcome, vocab.ForgottenFate, vocab.ForgottenKind, vocab.Edition, vocab.Sku, vocab.Source,
                 vocab.CodeStatus, vocab.Stage):
        for member in enum:
            assert lab[member.value].strip(), f"{enum.__name__}.{member.name}"


def test_labels_differ_by_language_and_refuse_unknown() -> None:
    assert sm.labels("ru")["churned"] == "Ушли" and sm.labels("en")["churned"] == "Churned"
    with pytest.raises(sm.MetricsError, match="'de'"):
        sm.labels("de")
    with pytest.raises(TypeError):
        sm.labels("en")["churned"] = "x"  # read-only: one place defines them
