"""Where the console goes after signing in: a page of its own, never another site."""

from __future__ import annotations

import pytest

from cargobay.console.pages.signin import after_sign_in


@pytest.mark.parametrize(
    "asked",
    [
        "",
        None,
        "https://evil.example/",
        "//evil.example/console/",
        "/console\\..\\x",
        "/v2/_catalog",
        "javascript:1",
    ],
)
def test_anything_but_a_console_page_goes_to_the_registries(asked: str | None) -> None:
    assert after_sign_in(asked) == "/console/registries"


def test_a_console_page_is_kept_with_its_query() -> None:
    page = "/console/registries/abc/tokens?done=saved"
    assert after_sign_in(page) == page
