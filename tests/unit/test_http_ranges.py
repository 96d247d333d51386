import pytest

from cargobay.domain.errors import RegistryError
from cargobay.registry.http import parse_content_range, parse_range


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, (0, 4)),
        ("bytes=5-", 10, (5, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=0-100", 10, (0, 9)),
        ("bytes=0-1,3-4", 10, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=500-0", "bytes=10-", "bytes=20-30", "bytes=-0", "bytes=x-y"])
def test_unsatisfiable_range_is_416(header: str) -> None:
    with pytest.raises(RegistryError) as exc:
        parse_range(header, 10)
    assert exc.value.status == 416
    assert exc.value.headers["Content-Range"] == "bytes */10"


def test_content_range() -> None:
    assert parse_content_range("0-9") == (0, 9)
    assert parse_content_range("bytes 10-19/20") == (10, 19)
    assert parse_content_range(None) is None


@pytest.mark.parametrize("header", ["9-0", "abc", "-1", "1-"])
def test_bad_content_range_is_416(header: str) -> None:
    with pytest.raises(RegistryError) as exc:
        parse_content_range(header)
    assert exc.value.status == 416
