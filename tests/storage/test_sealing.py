"""Sealed records (manifest bodies): bound to namespace and context; plaintext only while allowed."""

from __future__ import annotations

import json

import pytest

from cargobay.storage.base import IntegrityError
from cargobay.storage.sealing import SEALED_PREFIX, AeadSealer, PlainSealer, is_sealed
from tests.support.storage import StaticKeys

BODY = json.dumps({"schemaVersion": 2, "annotations": {"secret": "MARKER"}}).encode()


async def test_sealed_record_opens_to_the_same_bytes() -> None:
    sealer = AeadSealer(StaticKeys())
    sealed = await sealer.seal("ns", b"manifest:sha256:1", BODY)
    assert is_sealed(sealed)
    assert b"MARKER" not in sealed
    assert await sealer.open("ns", b"manifest:sha256:1", sealed) == BODY


async def test_large_records_are_sealed_too() -> None:
    sealer = AeadSealer(StaticKeys())
    body = b"x" * (4 * 1024 * 1024)
    assert await sealer.open("ns", b"c", await sealer.seal("ns", b"c", body)) == body


@pytest.mark.parametrize(
    ("namespace", "context"), [("other", b"manifest:sha256:1"), ("ns", b"manifest:sha256:2")]
)
async def test_a_record_does_not_open_elsewhere(namespace: str, context: bytes) -> None:
    keys = StaticKeys()
    keys.keys["other"] = await keys.data_key("ns")  # even under the same data key
    sealer = AeadSealer(keys)
    sealed = await sealer.seal("ns", b"manifest:sha256:1", BODY)
    with pytest.raises(IntegrityError):
        await sealer.open(namespace, context, sealed)


@pytest.mark.parametrize("position", [0, len(SEALED_PREFIX), len(SEALED_PREFIX) + 12, -1])
async def test_a_tampered_record_does_not_open(position: int) -> None:
    sealer = AeadSealer(StaticKeys())
    sealed = bytearray(await sealer.seal("ns", b"c", BODY))
    sealed[position] ^= 0x01
    with pytest.raises(IntegrityError):
        await sealer.open("ns", b"c", bytes(sealed))


async def test_a_truncated_record_does_not_open() -> None:
    sealer = AeadSealer(StaticKeys())
    sealed = await sealer.seal("ns", b"c", BODY)
    for size in (len(SEALED_PREFIX), len(SEALED_PREFIX) + 20, len(sealed) - 1):
        with pytest.raises(IntegrityError):
            await sealer.open("ns", b"c", sealed[:size])


async def test_plaintext_records_open_only_while_plaintext_may_exist() -> None:
    assert await AeadSealer(StaticKeys(), allow_plaintext=True).open("ns", b"c", BODY) == BODY
    with pytest.raises(IntegrityError):
        await AeadSealer(StaticKeys()).open("ns", b"c", BODY)


async def test_plain_sealer_is_the_identity() -> None:
    sealer = PlainSealer()
    assert await sealer.open("ns", b"c", await sealer.seal("ns", b"c", BODY)) == BODY
