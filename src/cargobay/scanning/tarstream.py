"""A forward-only tar reader over a stream of decompressed chunks.

``tarfile`` in stream mode costs tens of microseconds per member (it decodes every header field and
re-joins its buffer on each read); a layer of a base image has tens of thousands of members and we
want only a handful of them. This reader decodes just what the scanner uses (name, type, mode, size,
link target), understands the ustar prefix, GNU long names/links (``L``/``K``) and PAX extended
headers (``path``, ``linkpath``, ``size``), verifies each header's checksum, and skips data by
moving an offset inside the current chunk. Anything malformed raises ``TarError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
REGULAR = frozenset(b"07\0")
HARDLINK = ord("1")
SYMLINK = ord("2")
DIRECTORY = ord("5")
GNU_LONGNAME = ord("L")
GNU_LONGLINK = ord("K")
PAX_HEADER = ord("x")
PAX_GLOBAL = ord("g")
GNU_SPARSE = ord("S")
MAX_META = 1024 * 1024  # long names and PAX headers larger than this are not plausible


class TarError(ValueError):
    """The stream is not a (complete) tar archive."""


@dataclass(slots=True)
class TarEntry:
    name: str
    type: int
    mode: int
    size: int
    linkname: str

    @property
    def is_regular(self) -> bool:
        return self.type in REGULAR

    @property
    def is_link(self) -> bool:
        return self.type in (SYMLINK, HARDLINK)


def _octal(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 for big sizes
        value = field[0] & 0x3F
        for b in field[1:]:
            value = (value << 8) | b
        return value
    text = field.split(b"\0", 1)[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarError(f"bad numeric field {text[:20]!r}") from None


def _string(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes) -> dict[str, str]:
    """PAX records ``"<len> <key>=<value>\\n"``."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarError("bad PAX record length") from None
        if length <= 0 or pos + length > len(data):
            raise TarError("PAX record runs past its header")
        record = data[space + 1 : pos + length - 1]
        key, sep, value = record.partition(b"=")
        if sep:
            out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarStream:
    """Iterate entries with ``entries()``; during an iteration, ``read(n)``/``read_all()`` return the
    current entry's data (what is not read is skipped when the iteration moves on)."""

    def __init__(self, next_chunk: Callable[[], bytes]) -> None:
        self._next_chunk = next_chunk
        self._buf = b""
        self._pos = 0
        self._left = 0  # data bytes of the current entry not yet consumed
        self._pad = 0  # padding after the current entry's data
        self._blocks = 0  # headers read: an empty stream is not an archive

    def _more(self) -> bool:
        chunk = self._next_chunk()
        if not chunk:
            return False
        rest = len(self._buf) - self._pos
        self._buf = self._buf[self._pos :] + chunk if rest else chunk
        self._pos = 0
        return True

    def _take(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._more():
                raise TarError("unexpected end of archive")
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def _skip(self, n: int) -> None:
        while n > 0:
            avail = len(self._buf) - self._pos
            if n <= avail:
                self._pos += n
                return
            n -= avail
            self._buf, self._pos = b"", 0
            if not self._more():
                raise TarError("unexpected end of archive")

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all when negative) of the current entry's remaining data."""
        if n < 0 or n > self._left:
            n = self._left
        if n == 0:
            return b""
        avail = len(self._buf) - self._pos
        if avail >= n:
            data = self._buf[self._pos : self._pos + n]
            self._pos += n
        elif avail > 0:
            data = self._buf[self._pos :]
            self._buf, self._pos = b"", 0
            parts = [data]
            got = len(data)
            while got < n:
                if not self._more():
                    raise TarError("unexpected end of archive")
                take = min(n - got, len(self._buf))
                parts.append(self._buf[:take])
                self._pos = take
                got += take
            data = b"".join(parts)
        else:
            data = self._take(n)
        self._left -= n
        return data

    def _finish_entry(self) -> None:
        self._skip(self._left + self._pad)
        self._left = self._pad = 0

    def _header(self) -> bytes | None:
        if len(self._buf) - self._pos < BLOCK and not self._more() and self._pos >= len(self._buf):
            if not self._blocks:
                raise TarError("empty archive")
            return None  # clean end without end-of-archive blocks
        block = self._take(BLOCK)
        self._blocks += 1
        if block == _ZERO_BLOCK:
            return None
        stored = _octal(block[148:156])
        if sum(block) - sum(block[148:156]) + 8 * 32 != stored:
            raise TarError("header checksum mismatch")
        return block

    def _meta(self, size: int) -> bytes:
        if size > MAX_META:
            raise TarError("implausibly large long-name or PAX header")
        data = self._take(size)
        self._skip(-size % BLOCK)
        return data

    def entries(self) -> Iterator[TarEntry]:
        long_name = long_link = None
        pax: dict[str, str] = {}
        while True:
            self._finish_entry()
            block = self._header()
            if block is None:
                return
            kind = block[156]
            size = _octal(block[124:136])
            if kind in (GNU_LONGNAME, GNU_LONGLINK):
                value = _string(self._meta(size))
                if kind == GNU_LONGNAME:
                    long_name = value
                else:
                    long_link = value
                continue
            if kind in (PAX_HEADER, PAX_GLOBAL):
                records = _pax(self._meta(size))
                if kind == PAX_HEADER:
                    pax = records
                continue
            name = _string(block[0:100])
            if block[257:263] == b"ustar\0" and block[345]:
                name = _string(block[345:500]) + "/" + name
            linkname = _string(block[157:257])
            if long_name is not None:
                name = long_name
            if long_link is not None:
                linkname = long_link
            if pax:
                name = pax.get("path", name)
                linkname = pax.get("linkpath", linkname)
                if "size" in pax:
                    try:
                        size = int(pax["size"])
                    except ValueError:
                        raise TarError("bad PAX size") from None
            long_name = long_link = None
            pax = {}
            if size < 0:
                raise TarError("negative size")
            has_data = kind not in (HARDLINK, SYMLINK, DIRECTORY, ord("3"), ord("4"), ord("6"))
            self._left = size if has_data else 0
            self._pad = -self._left % BLOCK
            yield TarEntry(name, kind, _octal(block[100:108]), size, linkname)
