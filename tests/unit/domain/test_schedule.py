import pytest

from cargobay.domain.errors import BadRequest
from cargobay.domain.schedule import parse_schedule


@pytest.mark.parametrize("time", ["01:23:00+00:00", "16:00:00Z", "00:00:00", "23:59:59.5Z", "12:00:00-05:30"])
def test_time_is_echoed_exactly(time: str) -> None:
    assert parse_schedule(["Monday"], time, "gc").time == time


def test_days_null_means_no_day_and_duplicates_collapse() -> None:
    assert parse_schedule(None, "01:00:00Z", "gc").days == ()
    assert parse_schedule(["Friday", "Monday", "Friday"], "01:00:00Z", "gc").days == ("Friday", "Monday")


@pytest.mark.parametrize("day", ["monday", "MONDAY", "Mon", "Funday", 1])
def test_days_are_case_sensitive_english_weekdays(day: object) -> None:
    with pytest.raises(BadRequest) as err:
        parse_schedule(["Tuesday", day], "01:00:00Z", "properties.garbageCollectionSchedule")
    assert "properties.garbageCollectionSchedule.days[1]" in err.value.message
    assert "weekday" in err.value.message


@pytest.mark.parametrize(
    "time", ["24:00:00", "1:00:00", "01:00", "01:60:00", "noon", "", None, "01:00:00+25:00"]
)
def test_time_must_be_a_partial_time(time: object) -> None:
    with pytest.raises(BadRequest) as err:
        parse_schedule(["Monday"], time, "garbageCollectionSchedule")
    assert "garbageCollectionSchedule.time" in err.value.message


def test_days_must_be_a_list() -> None:
    with pytest.raises(BadRequest, match=r"gc\.days must be an array"):
        parse_schedule("Monday", "01:00:00Z", "gc")
