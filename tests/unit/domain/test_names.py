import pytest
from hypothesis import given
from hypothesis import strategies as st

from cargobay.domain.names import catalog_order, is_registry_name, is_repository_name, is_tag


@pytest.mark.parametrize("name", ["a", "team/app", "a.b_c__d--e/f", "x/y/z/w", "0/1"])
def test_valid_repository_names(name: str) -> None:
    assert is_repository_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A",
        "team/",
        "/app",
        "a//b",
        "a/../b",
        "..",
        "a/./b",
        "-a",
        "a-",
        "a..b",
        "a___b",
        "a b",
        "a" * 256,
    ],
)
def test_invalid_repository_names(name: str) -> None:
    assert not is_repository_name(name)


@pytest.mark.parametrize("tag", ["latest", "v1.0.0", "_x", "A" * 128])
def test_valid_tags(tag: str) -> None:
    assert is_tag(tag)


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a" * 129, "a/b", "a:b"])
def test_invalid_tags(tag: str) -> None:
    assert not is_tag(tag)


@pytest.mark.parametrize("name", ["abc", "my-registry", "a1b"])
def test_valid_registry_names(name: str) -> None:
    assert is_registry_name(name)


@pytest.mark.parametrize("name", ["ab", "1abc", "abc-", "Abc", "a_b", "a" * 64])
def test_invalid_registry_names(name: str) -> None:
    assert not is_registry_name(name)


@given(st.text(max_size=300))
def test_repository_names_never_escape_their_directory(name: str) -> None:
    if is_repository_name(name):
        assert ".." not in name.split("/") and not name.startswith("/")


@given(st.lists(st.from_regex(r"[a-z][-a-z0-9]{0,6}", fullmatch=True), unique=True, max_size=40))
def test_catalog_order_is_the_order_of_the_catalog_names(names: list[str]) -> None:
    """Registries read in plain name order come out as ``name + "/"`` sorts (``ab-c/`` < ``ab/``)."""
    assert list(catalog_order(sorted(names), lambda n: n)) == sorted(names, key=lambda n: n + "/")


def test_catalog_order_holds_a_name_back_behind_its_extensions() -> None:
    plain = ["a", "a-b", "a-b-c", "a-c", "a0", "ab"]
    assert list(catalog_order(plain, lambda n: n)) == ["a-b-c", "a-b", "a-c", "a", "a0", "ab"]
