"""The artifact page's filters: each value checked by the rule the management API uses, and carried
over to the pager's links unchanged."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from cargobay.console.pages.vulnerabilities import FindingFilters
from cargobay.domain.errors import InvalidInput


def test_no_filter_asks_for_everything_by_highest_score() -> None:
    filters = FindingFilters.of(QueryParams(""))
    query = filters.query(0, 25)
    assert (query.order, query.descending, query.severities, query.fixable) == ("score", True, None, None)
    assert not filters.active


def test_checked_severities_and_a_comma_list_are_the_same_filter() -> None:
    boxes = FindingFilters.of(QueryParams([("severity", "high"), ("severity", "critical")]))
    link = FindingFilters.of(QueryParams({"severity": "high,critical"}))
    assert boxes == link and boxes.severities == ("critical", "high")
    assert boxes.query(0, 10).severities == frozenset({"critical", "high"})
    assert FindingFilters.of(QueryParams(boxes.link())) == boxes


def test_fixable_and_order() -> None:
    filters = FindingFilters.of(QueryParams({"fixable": "false", "order": "-publishedAt"}))
    query = filters.query(50, 25)
    assert (query.offset, query.fixable, query.order, query.descending) == (50, False, "publishedAt", True)
    assert filters.active


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"severity": "high,,low"}, "severity"),
        ({"fixable": "yes"}, "fixable"),
        ({"order": "score"}, "sort by"),
    ],
)
def test_a_bad_value_names_its_filter(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        FindingFilters.of(QueryParams(params))
    assert caught.value.field == field
