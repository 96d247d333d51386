import pytest

from cargobay.domain.errors import OciCode, RegistryError
from cargobay.registry.manifests import parse_page_size


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, None), ("", None), ("0", 0), ("7", 7), ("99999999", 10_000)]
)
def test_page_size_accepts_plain_decimal_numbers(raw: str | None, expected: int | None) -> None:
    assert parse_page_size(raw) == expected


@pytest.mark.parametrize("raw", ["-1", "1.5", "1e3", " 5", "abc", "\u00b2", "\u0663", "0x10"])
def test_page_size_refuses_anything_else(raw: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_page_size(raw)
    assert caught.value.code is OciCode.PAGINATION_NUMBER_INVALID
