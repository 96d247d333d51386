from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cargobay.domain.errors import InvalidInput
from cargobay.domain.timestamps import parse_timestamp, render_timestamp


@pytest.mark.parametrize(
    "text",
    [
        "2030-01-02T03:04:05Z",
        "2030-01-02T03:04:05z",
        "2030-01-02T03:04:05+00:00",
        "2030-01-02T04:04:05+01:00",
        "2030-01-02T03:04:05",  # naive: taken as UTC (the Python SDK sends naive datetimes so)
        "2030-01-02 03:04:05",
    ],
)
def test_accepts_z_offset_and_naive_forms_as_the_same_instant(text: str) -> None:
    assert parse_timestamp(text, "expiryDate") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", ["", "tomorrow", "2030-01-02", "2030-13-02T00:00:00Z", 5, None, "2030-01-02T25:00:00"]
)
def test_rejects_what_is_not_a_date_time_naming_the_field(value: object) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_timestamp(value, "properties.expiryDate")
    assert "properties.expiryDate" in err.value.message


def test_renders_utc_with_a_literal_z() -> None:
    assert render_timestamp(datetime(2024, 5, 1, 12, 0, tzinfo=UTC)) == "2024-05-01T12:00:00Z"
    assert render_timestamp(datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-05-01T12:00:00Z"
    )
    assert render_timestamp(datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=UTC)) == "2024-05-01T12:00:00.000005Z"


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_rendered_timestamps_parse_back_to_the_same_instant(value: datetime) -> None:
    text = render_timestamp(value)
    assert text.endswith("Z") and "+" not in text
    assert parse_timestamp(text, "x") == value
