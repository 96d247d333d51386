from datetime import UTC, datetime

import pytest

from cargobay.domain.errors import InvalidInput, fields_under
from cargobay.domain.schedule import WeeklySchedule, parse_schedule


@pytest.mark.parametrize("time", ["01:23:00+00:00", "16:00:00Z", "00:00:00", "23:59:59.5Z", "12:00:00-00:00"])
def test_time_is_echoed_exactly(time: str) -> None:
    assert parse_schedule(["Monday"], time).time == time


def test_days_null_or_empty_mean_no_day() -> None:
    assert parse_schedule(None, "01:00:00Z").days == ()
    assert parse_schedule([], "01:00:00Z").days == ()


def test_a_day_listed_twice_is_refused() -> None:
    with pytest.raises(InvalidInput) as err, fields_under("properties.garbageCollectionSchedule"):
        parse_schedule(["Friday", "Monday", "Friday"], "01:00:00Z")
    assert err.value.message.startswith(
        "properties.garbageCollectionSchedule.days[2] 'Friday' is listed twice"
    )


@pytest.mark.parametrize("day", ["monday", "MONDAY", "Mon", "Funday", 1])
def test_days_are_case_sensitive_english_weekdays(day: object) -> None:
    with pytest.raises(InvalidInput) as err, fields_under("properties.garbageCollectionSchedule"):
        parse_schedule(["Tuesday", day], "01:00:00Z")
    assert "properties.garbageCollectionSchedule.days[1]" in err.value.message
    assert "weekday" in err.value.message


@pytest.mark.parametrize(
    "time", ["24:00:00", "1:00:00", "01:00", "01:60:00", "noon", "", None, "01:00:00+25:00"]
)
def test_time_must_be_a_partial_time(time: object) -> None:
    with pytest.raises(InvalidInput) as err, fields_under("garbageCollectionSchedule"):
        parse_schedule(["Monday"], time)
    assert "garbageCollectionSchedule.time" in err.value.message


@pytest.mark.parametrize("time", ["10:00:00+02:00", "10:00:00-05:30", "23:00:00.5+01:00"])
def test_time_with_another_offset_is_refused_not_converted(time: str) -> None:
    with pytest.raises(InvalidInput, match=r"time .* the schedule is in UTC"):
        parse_schedule(["Monday"], time)


def test_days_must_be_a_list() -> None:
    with pytest.raises(InvalidInput, match=r"gc\.days must be an array"), fields_under("gc"):
        parse_schedule("Monday", "01:00:00Z")


def test_windows_fall_on_the_listed_days_at_the_utc_time() -> None:
    schedule = WeeklySchedule(("Monday", "Thursday"), "01:30:00+00:00")
    wednesday = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)
    assert schedule.latest_window(wednesday) == datetime(2026, 12, 7, 1, 30, tzinfo=UTC)
    assert schedule.next_window(wednesday) == datetime(2026, 12, 10, 1, 30, tzinfo=UTC)
    at_window = datetime(2026, 12, 10, 1, 30, tzinfo=UTC)
    assert schedule.latest_window(at_window) == at_window
    assert schedule.next_window(at_window) == datetime(2026, 12, 14, 1, 30, tzinfo=UTC)


def test_a_schedule_without_days_never_runs() -> None:
    schedule = WeeklySchedule((), "01:00:00Z")
    now = datetime(2026, 12, 9, tzinfo=UTC)
    assert schedule.latest_window(now) is None and schedule.next_window(now) is None
