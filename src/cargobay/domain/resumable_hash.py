"""SHA-256 and SHA-512 whose running state can be saved as bytes and continued in another process.

``hashlib`` cannot export its state, and PyPI ``rehash`` (which pickles it) refuses OpenSSL 3. This
drives OpenSSL's low-level digest API through ctypes instead: ``SHA256_Init/Update/Final`` work on a
``SHA256_CTX`` whose layout is public and fixed (``openssl/sha.h``), so its bytes *are* the state.
The calls run the same assembly as ``hashlib`` (SHA-NI where the CPU has it) and release the GIL.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

_MAGIC = b"CBH1"


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    context_size: int  # sizeof(SHAxxx_CTX)
    block: int  # bytes buffered in the context at most
    digest_size: int
    num_offset: int  # where the context keeps the count of buffered bytes (unsigned int)


_KINDS = {
    # SHA256_CTX: h[8], Nl, Nh, data[16] (all u32), num, md_len (unsigned int)
    "sha256": _Kind("SHA256", 112, 64, 32, 104),
    # SHA512_CTX: h[8], Nl, Nh (u64), u.p[128], num, md_len (unsigned int)
    "sha512": _Kind("SHA512", 216, 128, 64, 208),
}


def _load() -> ctypes.CDLL:
    names = [ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so"]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(lib, "SHA256_Init") and hasattr(lib, "SHA512_Init"):
            for kind in _KINDS.values():
                for suffix, args in (
                    ("Init", [ctypes.c_void_p]),
                    ("Final", [ctypes.c_char_p, ctypes.c_void_p]),
                ):
                    getattr(lib, f"{kind.name}_{suffix}").argtypes = args
                update = getattr(lib, f"{kind.name}_Update")
                update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            return lib
    raise ImportError("OpenSSL's libcrypto with SHA256_Init is needed for resumable upload digests")


_LIB = _load()


class ResumableHash:
    """A running SHA-256 or SHA-512 (the ``domain.digests.Hasher`` protocol, plus ``state``)."""

    def __init__(self, algorithm: str = "sha256", state: bytes | None = None) -> None:
        kind = _KINDS.get(algorithm)
        if kind is None:
            raise ValueError(f"no resumable {algorithm}")
        self.algorithm = algorithm
        self._kind = kind
        self._ctx = ctypes.create_string_buffer(kind.context_size)
        if state is None:
            getattr(_LIB, f"{kind.name}_Init")(self._ctx)
        else:
            ctypes.memmove(self._ctx, _check(kind, state), kind.context_size)

    @classmethod
    def restore(cls, saved: bytes) -> ResumableHash:
        """A hash continuing what ``state`` returned; ValueError for anything else."""
        if not saved.startswith(_MAGIC) or b"\0" not in saved[len(_MAGIC) :]:
            raise ValueError("not a saved hash state")
        name, context = saved[len(_MAGIC) :].split(b"\0", 1)
        return cls(name.decode(), context)

    def state(self) -> bytes:
        return _MAGIC + self.algorithm.encode() + b"\0" + self._ctx.raw

    def update(self, data: bytes | memoryview, /) -> None:
        if not data:
            return
        if isinstance(data, bytes):
            getattr(_LIB, f"{self._kind.name}_Update")(self._ctx, data, len(data))
            return
        view = memoryview(data)
        if view.readonly or not view.c_contiguous:
            view = memoryview(bytes(view))
            getattr(_LIB, f"{self._kind.name}_Update")(self._ctx, view.obj, len(view))
            return
        buffer = (ctypes.c_char * view.nbytes).from_buffer(view)
        getattr(_LIB, f"{self._kind.name}_Update")(self._ctx, buffer, view.nbytes)

    def copy(self) -> ResumableHash:
        return ResumableHash(self.algorithm, self._ctx.raw)

    def digest(self) -> bytes:
        ctx = ctypes.create_string_buffer(self._ctx.raw, self._kind.context_size)
        out = ctypes.create_string_buffer(self._kind.digest_size)
        getattr(_LIB, f"{self._kind.name}_Final")(out, ctx)
        return out.raw

    def hexdigest(self) -> str:
        return self.digest().hex()


def _check(kind: _Kind, context: bytes) -> bytes:
    """A context of the right size whose buffered count stays inside its buffer (OpenSSL trusts it)."""
    if len(context) != kind.context_size:
        raise ValueError(f"a saved {kind.name} state has {kind.context_size} bytes, not {len(context)}")
    num = int.from_bytes(context[kind.num_offset : kind.num_offset + 4], "little")
    md_len = int.from_bytes(context[kind.num_offset + 4 : kind.num_offset + 8], "little")
    if num >= kind.block or md_len != kind.digest_size:
        raise ValueError(f"a saved {kind.name} state is damaged")
    return context
