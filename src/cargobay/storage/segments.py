"""The sealed object format: AES-256-GCM segments, each bound to its object and its place.

    object  = header || segment_0 || ... || segment_{n-1} || final
    header  = b"CBENC1" || version (u8) || 0 (u8) || segment size (u32)            12 bytes
    segment = nonce (12 random bytes) || ciphertext || tag (16 bytes)   of segment-size plaintext bytes,
              the last one possibly shorter but never empty
    final   = a segment of no plaintext with the last flag set: it proves the object is complete

Associated data of segment i: header || namespace || object id (each u16-length-prefixed) || i (u64)
|| last flag (u8). So a segment moved within its object, to another object or another namespace, an
object cut short or extended, all fail authentication. Staged objects (uploads in progress) have no
final segment yet; committing appends it. The plaintext size follows from the ciphertext size.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cargobay.storage.base import Chunk, IntegrityError

MAGIC = b"CBENC1"
VERSION = 1
SEGMENT_SIZE = 1024 * 1024
NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE

_HEADER = struct.Struct(">6sBBI")
_PLACE = struct.Struct(">QB")
_LENGTH = struct.Struct(">H")
HEADER_SIZE = _HEADER.size


def header(segment_size: int) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, 0, segment_size)


def associated_prefix(segment_size: int, namespace: str, object_id: str) -> bytes:
    """The part of every segment's associated data that names the object."""
    ns, oid = namespace.encode(), object_id.encode()
    return b"".join((header(segment_size), _LENGTH.pack(len(ns)), ns, _LENGTH.pack(len(oid)), oid))


class ObjectCipher:
    """Seals and opens the segments of one object (its data key, namespace and object id)."""

    def __init__(self, key: bytes, segment_size: int, namespace: str, object_id: str) -> None:
        self._aead = AESGCM(key)
        self._prefix = associated_prefix(segment_size, namespace, object_id)
        self.segment_size = segment_size

    def _associated(self, index: int, last: bool) -> bytes:
        return self._prefix + _PLACE.pack(index, last)

    def seal(
        self, index: int, last: bool, plaintext: bytes | memoryview, out: memoryview | None = None
    ) -> Chunk:
        """Segment ``index`` of ``plaintext``: nonce, ciphertext and tag, written into ``out`` (exactly
        ``len(plaintext) + OVERHEAD`` bytes) when given, else into a buffer of its own."""
        sealed = memoryview(bytearray(len(plaintext) + OVERHEAD)) if out is None else out
        nonce = os.urandom(NONCE_SIZE)
        sealed[:NONCE_SIZE] = nonce
        # encrypt_into, straight behind the nonce: a third of encrypt()'s cost here, and no copy
        self._aead.encrypt_into(nonce, plaintext, self._associated(index, last), sealed[NONCE_SIZE:])
        return sealed

    def open_in_place(self, index: int, last: bool, sealed: bytearray | memoryview) -> memoryview:
        """Decrypt a sealed segment inside its own buffer and return the view of the plaintext.

        One buffer per segment, read into and decrypted where it lies (AES-GCM allows it): one-shot
        ``decrypt_into`` releases the GIL and costs a third of ``decrypt()`` here, and nothing is
        copied. The buffer holds unauthenticated bytes only until the tag check fails, and then it
        is dropped, never returned.
        """
        view = memoryview(sealed)
        try:
            if len(view) < OVERHEAD:
                raise InvalidTag
            plain = view[NONCE_SIZE : len(view) - TAG_SIZE]
            self._aead.decrypt_into(
                bytes(view[:NONCE_SIZE]), view[NONCE_SIZE:], self._associated(index, last), plain
            )
            return plain
        except InvalidTag:
            kind = "final segment" if last else f"segment {index}"
            raise IntegrityError(f"{kind} failed authentication") from None

    def seal_object(self, data: bytes) -> bytes:
        """A whole finished object in one piece (for small objects)."""
        size = self.segment_size
        view = memoryview(data)
        count = -(-len(data) // size)
        parts: list[Chunk] = [header(size)]
        for i in range(count):
            parts.append(self.seal(i, False, view[i * size : (i + 1) * size]))
        parts.append(self.seal(count, True, b""))
        return b"".join(parts)


def open_segment(
    cipher: ObjectCipher, key: str, index: int, last: bool, sealed: bytearray | memoryview
) -> memoryview:
    """``ObjectCipher.open_in_place``, with a failure naming the object."""
    try:
        return cipher.open_in_place(index, last, sealed)
    except IntegrityError as exc:
        raise IntegrityError(f"{key}: {exc}", key=key) from None


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the segments of an object lie, derived from its ciphertext size alone."""

    segment_size: int
    segments: int  # data segments; the final segment, when present, has index ``segments``
    size: int  # plaintext bytes
    finished: bool

    @classmethod
    def parse(cls, segment_size: int, cipher_size: int, finished: bool) -> Layout:
        body = cipher_size - HEADER_SIZE - (OVERHEAD if finished else 0)
        if body < 0:
            raise IntegrityError(f"{cipher_size} bytes is too short for a sealed object")
        step = segment_size + OVERHEAD
        segments = -(-body // step)
        if segments and body - (segments - 1) * step <= OVERHEAD:
            raise IntegrityError(f"{cipher_size} bytes does not end on a segment boundary")
        return cls(segment_size, segments, body - segments * OVERHEAD, finished)

    @property
    def cipher_size(self) -> int:
        return self.offset(self.segments) + (OVERHEAD if self.finished else 0)

    def offset(self, index: int) -> int:
        """Where segment ``index`` starts in the sealed object."""
        return HEADER_SIZE + min(index * self.segment_size, self.size) + index * OVERHEAD

    def plain_length(self, index: int) -> int:
        if index >= self.segments:
            return 0
        return min(self.segment_size, self.size - index * self.segment_size)

    def sealed_length(self, index: int) -> int:
        return self.plain_length(index) + OVERHEAD

    def plan(self, start: int, end: int) -> list[int]:
        """Segments to open for plaintext ``[start, end)``; of a finished object the final one too when
        the range reaches its last segment or its end, so such a read also proves it complete."""
        indexes = list(range(start // self.segment_size, -(-end // self.segment_size))) if end > start else []
        if self.finished and (end >= self.size or indexes[-1:] == [self.segments - 1]):
            indexes.append(self.segments)
        return indexes
