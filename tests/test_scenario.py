"""Scenarios: display titles and descriptions per language; old files still load; inline scenarios titled."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subs_model.resources import data_dir
from subs_model.scenario import Scenario, ScenarioError, inline_scenario, load_scenarios, titles

_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def test_shipped_scenarios_have_a_title_and_description_in_each_language() -> None:
    scs = load_scenarios(data_dir() / "scenarios.yaml")
    assert [s.name for s in scs][:2] == ["baseline", "grace 30"]  # the keys are unchanged
    for sc in scs:
        for lang in ("ru", "en"):
            assert sc.title_in(lang) != sc.name and sc.description_in(lang)
        assert _CYRILLIC.search(sc.title_in("ru")) and _CYRILLIC.search(sc.description_in("ru"))
        assert not _CYRILLIC.search(sc.title_in("en") + sc.description_in("en"))
        assert sc.description == sc.description_in("en")  # the API's description stays English


def test_old_files_without_titles_still_load(tmp_path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("scenarios:\n  - name: baseline\n    description: today\n  - name: grace 30\n    catalog: {grace_days: 30}\n",
                 encoding="utf-8")
    base, g = load_scenarios(f)
    assert (base.title_in("ru"), base.description_in("ru"), base.description) == ("baseline", "today", "today")
    assert (g.title_in("en"), g.description_in("ru")) == ("grace 30", "")


def test_one_language_given_falls_back_to_the_name_or_the_other_text(tmp_path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("scenarios:\n  - name: b\n    title: {ru: Базовый}\n    description: {ru: сегодня}\n", encoding="utf-8")
    (b,) = load_scenarios(f)
    assert (b.title_in("ru"), b.title_in("en")) == ("Базовый", "b")
    assert b.description_in("en") == b.description == "сегодня"


@pytest.mark.parametrize(("field", "value", "match"), [
    ("title", {"de": "Basis"}, r"unknown language\(s\) \['de'\]"),
    ("title", {"ru": ""}, r"title\.ru: '' is not a non-empty text"),
    ("title", ["ru"], "is not a mapping language -> text"),
    ("description", {"fr": "x"}, r"descriptions: unknown language"),
    ("description", 5, "is not a text"),
])
def test_bad_titles_are_refused_naming_the_scenario_and_the_fix(field, value, match) -> None:
    with pytest.raises(ScenarioError, match=match) as err:
        Scenario("cut", **{field: value})
    assert "scenario 'cut'" in str(err.value)


def test_a_bad_title_in_a_file_names_the_file_and_the_row(tmp_path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("scenarios:\n  - name: b\n  - name: c\n    title: {ru: ok, xx: no}\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"s\.yaml: scenarios\[1\]: scenario 'c'\.title: unknown language"):
        load_scenarios(f)


@given(st.lists(st.sampled_from(["A", "B", "Ё"]), min_size=1, max_size=6))
def test_titles_never_show_two_scenarios_alike(shown) -> None:
    """Whatever titles are given, the texts shown for distinct scenarios differ (clashes keep the key in brackets)."""
    scs = [Scenario(f"s{i}", title={"ru": t}) for i, t in enumerate(shown)]
    out = titles(scs, "ru")
    assert list(out) == [s.name for s in scs] and len(set(out.values())) == len(scs)
    assert all(v.startswith(t) for v, t in zip(out.values(), shown, strict=True))


def test_inline_scenario_is_titled_in_both_languages() -> None:
    assert inline_scenario() is None
    sc = inline_scenario(renewal_price=3300, upgrade_price=700)
    assert sc.name == "inline" and sc.catalog["prices"]["full"] == {"renewal": 3300, "upgrade": 700}
    ru, en = (sc.title_in(lang).replace("\u00a0", " ") for lang in ("ru", "en"))
    assert ru == "Параметры блокнота: продление 3 300 ₽, апгрейд 700 ₽"
    assert en == "Notebook parameters: renewal at 3,300 ₽, upgrade at 700 ₽"
    assert "льготный период 1 день" in inline_scenario(grace_days=1).title_in("ru")
    assert "льготный период 21 день" in inline_scenario(grace_days=21).title_in("ru")
