"""Domain errors land next to the form input their field names, in the rule's own words."""

from __future__ import annotations

import pytest

from cargobay.console.forms import field_errors, status_of
from cargobay.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied, fields_under
from cargobay.domain.schedule import parse_schedule
from cargobay.services.registry_admin import schedule_of


@pytest.mark.parametrize(
    ("field", "reason", "expected"),
    [
        ("name", "is taken", {"name": "is taken"}),
        (
            "garbageCollectionSchedule.days[1]",
            "'Funday' is not a weekday",
            {"days": "'Funday' is not a weekday"},
        ),
        ("garbageCollectionSchedule.time", "bad time", {"time": "bad time"}),
        ("apiSubnetAllowList[2]", "'x' is not an address", {"allowlist": "entry 3: 'x' is not an address"}),
        ("expiryDate", "too soon", {"expiry": "too soon"}),
        ("scopes[0].actions", "push needs pull", {"scopes[0].actions": "push needs pull"}),
    ],
)
def test_a_field_path_names_its_input(field: str, reason: str, expected: dict[str, str]) -> None:
    assert field_errors(InvalidInput(reason, field=field)).fields == expected


def test_a_scope_error_goes_to_the_row_it_came_from() -> None:
    """Empty rows are not sent to the rule: the second scope checked may be the form's fourth row."""
    errors = field_errors(InvalidInput("bad", field="scopes[1].name"), {0: 0, 1: 3})
    assert errors.fields == {"scopes[3].name": "bad"}


def test_an_error_without_a_field_is_about_the_whole_form() -> None:
    errors = field_errors(PermissionDenied("only managers may create registries"))
    assert errors.form == "only managers may create registries" and not errors.fields


def test_the_schedule_rule_names_the_picker_s_inputs() -> None:
    with pytest.raises(InvalidInput) as raised:
        schedule_of((["Monday", "Monday"], "01:00:00"))
    assert field_errors(raised.value).fields == {"days": "'Monday' is listed twice"}
    with pytest.raises(InvalidInput) as raised, fields_under("garbageCollectionSchedule"):
        parse_schedule(["Monday"], "01:00:00+02:00")
    assert list(field_errors(raised.value).fields) == ["time"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("x"), 400),
        (PermissionDenied("x"), 403),
        (NotFound("registry", "r"), 404),
        (Conflict("x"), 409),
    ],
)
def test_statuses_are_the_management_api_s(error: Exception, status: int) -> None:
    assert status_of(error) == status  # type: ignore[arg-type]
