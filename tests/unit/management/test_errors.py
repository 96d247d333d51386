import json

import pytest

from cargobay.domain.errors import BadRequest, Unauthorized
from cargobay.management.errors import api_error_response, field_of


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
    response = api_error_response(BadRequest("properties.name is required"))
    body = json.loads(bytes(response.body))
    assert response.status_code == 400
    assert body == {
        "httpStatus": 400,
        "messages": [{"errorCode": "400", "message": "properties.name is required"}],
    }


def test_head_errors_have_no_body_and_401_challenges() -> None:
    response = api_error_response(Unauthorized(), head=True)
    assert response.body == b""
    assert response.headers["www-authenticate"].startswith("Basic")
