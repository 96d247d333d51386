"""``apiSubnetAllowList``: IPv4/IPv6 networks; a bare address means a single host."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from cargobay.domain.errors import InvalidInput

MAX_ENTRIES = 25
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(value: str) -> Network:
    # strict=False accepts 10.0.0.1/8 (host bits set) as 10.0.0.0/8, which is what users mean.
    return ipaddress.ip_network(value.strip(), strict=False)


def validate_allowlist(raw: object, field: str = "apiSubnetAllowList") -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("must be an array of IP addresses or CIDR networks", field=field)
    if len(raw) > MAX_ENTRIES:
        raise InvalidInput(f"has {len(raw)} entries; at most {MAX_ENTRIES} are allowed", field=field)
    result: list[str] = []
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise InvalidInput("must be a string", field=f"{field}[{i}]")
        try:
            parse_network(item)
        except ValueError:
            raise InvalidInput(
                f"{item!r} is not an IPv4/IPv6 address or CIDR network", field=f"{field}[{i}]"
            ) from None
        result.append(item.strip())
    return result


@lru_cache(maxsize=1024)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(parse_network(e) for e in entries)


def is_allowed(entries: Iterable[str], address: str | None) -> bool:
    """An empty list allows everyone; otherwise the address must fall in one of the networks."""
    entries = tuple(entries)
    if not entries:
        return True
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in _networks(entries))


def client_address(peer: str | None, forwarded_for: str | None, trusted: Iterable[str]) -> str | None:
    """The caller's address: ``X-Forwarded-For`` is believed only when it came from a trusted proxy.

    Walks the chain from the right and returns the first address that is not a trusted proxy.
    """
    trusted = tuple(trusted)
    if peer is None or not forwarded_for or not trusted or not is_allowed(trusted, peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_allowed(trusted, hop):
            return hop
    return hops[0] if hops else peer
