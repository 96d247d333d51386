from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cargobay.scanning.tarstream import TarError, TarStream


def chunks_of(data: bytes, size: int) -> TarStream:
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    it = iter(parts)
    return TarStream(lambda: next(it, b""))


def make_tar(fmt: int, members: list[tuple[str, bytes, bytes]]) -> bytes:
    long_link = fmt != tarfile.USTAR_FORMAT
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o755 if name.endswith(".bin") else 0o644
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "target/" + "t" * (120 if long_link else 20)
                tar.addfile(info)
            elif kind == tarfile.DIRTYPE:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


LONG = "usr/lib/python3/dist-packages/" + "very-long-directory-name/" * 8 + "METADATA"
MEMBERS = [
    ("etc/os-release", tarfile.REGTYPE, b"ID=debian\n"),
    (LONG, tarfile.REGTYPE, b"Name: x\nVersion: 1\n"),
    ("usr/bin/tool.bin", tarfile.REGTYPE, bytes(range(256)) * 300),
    ("usr/share/ünïcode.txt", tarfile.REGTYPE, b"x"),
    ("etc/link", tarfile.SYMTYPE, b""),
    ("etc/hard", tarfile.LNKTYPE, b""),
    ("var/lib/dpkg", tarfile.DIRTYPE, b""),
    ("empty", tarfile.REGTYPE, b""),
]


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("chunk", [1, 511, 512, 4096, 1 << 20])
def test_entries_and_data_match_tarfile(fmt: int, chunk: int) -> None:
    members = [m for m in MEMBERS if fmt != tarfile.USTAR_FORMAT or not m[0].startswith("usr/share/ü")]
    if fmt == tarfile.USTAR_FORMAT:
        members = [
            m if m[0] != LONG else ("usr/lib/" + "d" * 90 + "/" + "m" * 90, m[1], m[2]) for m in members
        ]
    data = make_tar(fmt, members)
    stream = chunks_of(data, chunk)
    seen = []
    for entry in stream.entries():
        body = stream.read() if entry.name.endswith(("METADATA", ".bin")) else b""
        seen.append((entry.name.rstrip("/"), entry.type, entry.size, entry.linkname, body, entry.mode))
    expected = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar:
            body = tar.extractfile(info).read() if info.name.endswith(("METADATA", ".bin")) else b""  # type: ignore[union-attr]
            expected.append((info.name, ord(info.type), info.size, info.linkname, body, info.mode))
    assert seen == expected


def test_partial_reads_then_skip() -> None:
    data = make_tar(
        tarfile.GNU_FORMAT, [("a.bin", tarfile.REGTYPE, b"A" * 5000), ("b", tarfile.REGTYPE, b"B" * 10)]
    )
    stream = chunks_of(data, 700)
    names = []
    for entry in stream.entries():
        names.append(entry.name)
        if entry.name == "a.bin":
            assert stream.read(3) == b"AAA"
            assert stream.read(10) == b"A" * 10
        else:
            assert stream.read() == b"B" * 10
            assert stream.read() == b""
    assert names == ["a.bin", "b"]


def test_checksum_truncation_and_empty_input_are_errors() -> None:
    data = bytearray(make_tar(tarfile.GNU_FORMAT, [("a", tarfile.REGTYPE, b"x" * 100)]))
    data[10] ^= 0xFF
    with pytest.raises(TarError, match="checksum"):
        list(chunks_of(bytes(data), 512).entries())
    good = make_tar(tarfile.GNU_FORMAT, [("a", tarfile.REGTYPE, b"x" * 2000)])
    with pytest.raises(TarError, match="end of archive"):
        list(chunks_of(good[:1000], 512).entries())
    with pytest.raises(TarError, match="empty"):
        list(chunks_of(b"", 512).entries())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(codec="utf-8", exclude_characters="\0/"), min_size=1, max_size=120),
            st.binary(max_size=3000),
        ),
        max_size=8,
    ),
    st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
    st.integers(min_value=1, max_value=5000),
)
def test_any_archive_tarfile_writes_reads_back(files: list[tuple[str, bytes]], fmt: int, chunk: int) -> None:
    data = make_tar(fmt, [(f"d/{name}", tarfile.REGTYPE, body) for name, body in files])
    stream = chunks_of(data, chunk)
    got = [(e.name, stream.read()) for e in stream.entries()]
    assert got == [(f"d/{name}", body) for name, body in files]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_garbage_raises_tar_error_or_ends(blob: bytes) -> None:
    stream = chunks_of(blob, 777)
    try:
        for _ in stream.entries():
            stream.read(100)
    except TarError:
        pass
