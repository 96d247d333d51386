from datetime import UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cargobay.domain import listing
from cargobay.domain.errors import InvalidInput


def test_digit_strings_default_and_bounds() -> None:
    assert listing.parse_digits(None, "limit", 100, 1, 1000) == 100
    assert listing.parse_digits("", "limit", 100, 1, 1000) == 100
    assert listing.parse_digits("25", "limit", 100, 1, 1000) == 25


@pytest.mark.parametrize("raw", ["0", "1001", "-1", "1.5", "ten", "١٢"])
def test_bad_digit_strings_name_the_parameter(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        listing.parse_digits(raw, "limit", 100, 1, 1000)
    assert err.value.message.startswith("limit must be")


def test_order_by_defaults_and_signs() -> None:
    values = listing.signed(listing.REGISTRY_ARTIFACT_ORDERS)
    assert listing.parse_order(None, values, "-pullCount") == ("pullCount", True)
    assert listing.parse_order("lastPush", values, "-pullCount") == ("lastPush", False)
    with pytest.raises(InvalidInput, match="orderBy 'size' is not supported"):
        listing.parse_order("size", values, "-pullCount")


def test_repository_orders_have_no_descending_name() -> None:
    assert "name" in listing.REPOSITORY_ORDER_VALUES
    assert "-name" not in listing.REPOSITORY_ORDER_VALUES
    assert {"-lastPush", "artifactCount", "-pushCount"} <= set(listing.REPOSITORY_ORDER_VALUES)


def test_severities_are_a_comma_separated_case_insensitive_list() -> None:
    assert listing.parse_severities("Medium,high, critical", "f") == {"medium", "high", "critical"}
    assert listing.parse_severities(None, "f") is None
    with pytest.raises(InvalidInput, match=r"filter\.severity .severe. is not a severity"):
        listing.parse_severities("low,severe", "filter.severity")


@given(st.text(min_size=1, max_size=63))
def test_cursor_round_trips(name: str) -> None:
    assert listing.decode_cursor(listing.encode_cursor(name)) == name


@pytest.mark.parametrize("token", ["garbage!", "bm90LWEtY3Vyc29y", "%%%"])
def test_foreign_cursors_are_refused(token: str) -> None:
    with pytest.raises(InvalidInput, match=r"pagination\.token"):
        listing.decode_cursor(token)


_KEYS = st.one_of(
    st.none(),
    st.integers(-(2**62), 2**62),
    st.text(max_size=80),
    st.datetimes(timezones=st.just(UTC)),
)


@given(
    key=_KEYS, tiebreak=st.one_of(st.integers(0, 2**62), st.text(max_size=255)), offset=st.integers(0, 2**31)
)
def test_positions_round_trip_for_their_own_list_and_offset(
    key: object, tiebreak: object, offset: int
) -> None:
    position = listing.Position(key, tiebreak)
    fingerprint = listing.list_fingerprint("registries", "r", "orderBy=-lastPush")
    token = listing.encode_position(position, fingerprint, offset)
    assert listing.decode_position(token, fingerprint, offset) == position
    assert listing.decode_position(token, fingerprint, offset + 1) is None  # another offset: not used
    assert listing.decode_position(token, listing.list_fingerprint("registries", "r"), offset) is None


@pytest.mark.parametrize("token", ["garbage!", "bm90LWEtY3Vyc29y", listing.encode_cursor("name")])
def test_tokens_that_are_not_positions_are_refused(token: str) -> None:
    with pytest.raises(InvalidInput, match=r"pagination\.token"):
        listing.decode_position(token, "f", 0)
