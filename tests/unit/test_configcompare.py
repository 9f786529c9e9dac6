"""router.configcompare: subset matching and the diffs a failing case prints."""

from __future__ import annotations

from router.configcompare import matches, project


def test_matches_is_a_subset_of_dicts_with_lists_item_by_item():
    actual = {"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}, "f": True}
    assert matches({"b": {"c": [1, {"d": 2}]}}, actual)
    assert matches({"a": 1.0}, actual)  # JSON numbers
    assert not matches({"f": 1}, actual)  # true is not 1
    assert not matches({"b": {"c": [1]}}, actual)  # a list is as long
    assert not matches({"g": None}, actual)
    assert project({"b": {"c": [1, {"d": 0}]}}, actual) == {"b": {"c": [1, {"d": 2}]}}
