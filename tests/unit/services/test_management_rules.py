"""Input rules of registries and tokens, checked before anything is stored."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cargobay.db.types import utcnow
from cargobay.domain.errors import InvalidInput, fields_under
from cargobay.services.ownership import parse_id
from cargobay.services.registry_admin import parse_spec as registry_spec
from cargobay.services.tokens import check_expiry
from cargobay.services.tokens import parse_spec as token_spec

LOCATIONS = ["de/fra", "de/txl"]


def test_registry_spec_defaults() -> None:
    spec = registry_spec(
        name="abc", location="de/fra", schedule=None, scanning=None, allowlist=None, locations=LOCATIONS
    )
    assert spec.vulnerability_scanning is True and spec.allowlist == () and spec.schedule is None


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": None}, "properties.name is required"),
        ({"name": "UPPER"}, "properties.name 'UPPER' is invalid"),
        ({"location": "xx/yyy"}, "properties.location 'xx/yyy' is not a known location"),
        ({"location": None}, "properties.location is required"),
        ({"schedule": (["Mon"], "01:00:00")}, "properties.garbageCollectionSchedule.days[0]"),
        ({"allowlist": ["1.2.3.4/40"]}, "properties.apiSubnetAllowList[0]"),
    ],
)
def test_registry_spec_messages_name_the_field(kwargs: dict[str, object], fragment: str) -> None:
    args: dict[str, object] = {
        "name": "abc",
        "location": "de/fra",
        "schedule": None,
        "scanning": None,
        "allowlist": None,
    }
    args.update(kwargs)
    with pytest.raises(InvalidInput) as err, fields_under("properties"):
        registry_spec(locations=LOCATIONS, **args)  # type: ignore[arg-type]
    assert fragment in err.value.message


def test_token_spec_defaults_and_rules() -> None:
    spec = token_spec("Robot-1", None, None, None)
    assert (spec.status, spec.expiry_date, spec.scopes) == ("enabled", None, ())
    with pytest.raises(InvalidInput, match=r"properties\.status"), fields_under("properties"):
        token_spec("robot", None, None, "on")
    with pytest.raises(InvalidInput, match=r"properties\.scopes\[0\]\.actions"), fields_under("properties"):
        token_spec("robot", None, [{"name": "a", "type": "repository", "actions": ["write"]}], None)


def test_expiry_needs_an_hour_unless_it_is_the_stored_one() -> None:
    soon = utcnow() + timedelta(minutes=30)
    with pytest.raises(InvalidInput, match=r"expiryDate .* at least one hour"):
        check_expiry(soon, "expiryDate")
    check_expiry(soon, "expiryDate", current=soon)  # re-sent unchanged (terraform does)
    check_expiry(utcnow() + timedelta(hours=1), "expiryDate")  # "now + 1h" computed a moment ago
    check_expiry(None, "expiryDate")


@pytest.mark.parametrize(
    "value",
    ["nope", "1234", "00000000-0000-0000-0000-00000000000g", "{00000000-0000-0000-0000-000000000000}"],
)
def test_ids_must_be_uuids(value: str) -> None:
    with pytest.raises(InvalidInput, match="registryId"):
        parse_id(value, "registryId")


def test_ids_are_canonical_lower_case() -> None:
    assert parse_id("ABCDEF00-0000-4000-8000-000000000000", "x") == "abcdef00-0000-4000-8000-000000000000"
