import pytest

from cargobay.registry.routing import Address, address


@pytest.mark.parametrize("name", ["app", "/app", "reg/", "/", ""])
def test_a_path_style_name_needs_both_registry_and_repository(name: str) -> None:
    assert address(name, None) is None


def test_path_style_name_splits_at_the_first_slash() -> None:
    assert address("reg/team/app", None) == Address("reg", "team/app", "reg/team/app")


def test_host_style_name_is_all_repository() -> None:
    assert address("team/app", "reg") == Address("reg", "team/app", "team/app")
