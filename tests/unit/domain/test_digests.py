import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cargobay.domain.digests import Digest
from cargobay.domain.errors import InvalidDigest, OciCode
from cargobay.registry.http import registry_error


def test_parses_sha256_and_sha512() -> None:
    d256 = Digest.parse("sha256:" + "a" * 64)
    d512 = Digest.parse("sha512:" + "b" * 128)
    assert (d256.algorithm, d512.algorithm) == ("sha256", "sha512")
    assert str(d512) == "sha512:" + "b" * 128


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "sha512:" + "a" * 64,
        "md5:" + "a" * 32,
        "../../etc/passwd",
        "sha256:" + "a" * 64 + "/..",
    ],
)
def test_rejects_malformed_or_unsupported(value: str) -> None:
    with pytest.raises(InvalidDigest) as exc:
        Digest.parse(value)
    rendered = registry_error(exc.value)
    assert rendered.code is OciCode.DIGEST_INVALID
    assert rendered.status == 400
    assert rendered.detail == {"digest": value}


@given(st.binary(max_size=2048))
def test_of_matches_hashlib(data: bytes) -> None:
    assert Digest.of(data).hex == hashlib.sha256(data).hexdigest()
    assert Digest.of(data, "sha512").hex == hashlib.sha512(data).hexdigest()


@given(st.text(max_size=200))
def test_parse_never_crashes_on_text(value: str) -> None:
    try:
        Digest.parse(value)
    except InvalidDigest as exc:
        assert registry_error(exc).code is OciCode.DIGEST_INVALID
