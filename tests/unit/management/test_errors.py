import json

import pytest

from cargobay.domain.errors import (
    Conflict,
    DomainError,
    InvalidDigest,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    fields_under,
)
from cargobay.management.errors import domain_error_response, field_of


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (("body", "properties", "name"), "properties.name"),
        (("body", "properties", "scopes", 0, "actions", 1), "properties.scopes[0].actions[1]"),
        (("query", "limit"), "query parameter limit"),
        (("path", "registryId"), "path parameter registryId"),
        (("body",), "request body"),
    ],
)
def test_validation_locations_become_field_names(loc: tuple[object, ...], field: str) -> None:
    assert field_of(loc) == field


def test_error_body_has_the_ionos_shape_with_string_codes() -> None:
    with pytest.raises(InvalidInput) as err, fields_under("properties"):
        raise InvalidInput("is required", field="name")
    response = domain_error_response(err.value)
    body = json.loads(bytes(response.body))
    assert response.status_code == 400
    assert body == {
        "httpStatus": 400,
        "messages": [{"errorCode": "400", "message": "properties.name is required"}],
    }


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("bad"), 400),
        (InvalidDigest("sha256:x"), 400),
        (Unauthenticated("who?"), 401),
        (PermissionDenied("no"), 403),
        (NotFound("registry", "r1"), 404),
        (Conflict("taken", field="name"), 409),
    ],
)
def test_each_domain_error_has_its_status(error: DomainError, status: int) -> None:
    assert domain_error_response(error).status_code == status


def test_head_errors_have_no_body_and_401_challenges() -> None:
    response = domain_error_response(Unauthenticated("authentication required"), head=True)
    assert response.body == b""
    assert response.headers["www-authenticate"].startswith("Basic")
