"""Package URLs (purl spec) for inventory packages; OS packages carry arch and ``distro`` qualifiers.

``packageurl-python`` builds them, but at ~40 us each it was a third of a warm rescan; components made
only of unreserved characters (plus ``:`` and ``+``, which it writes as is and as ``%2B``) are
assembled here the same way, and anything else goes through the library. A property test keeps the
two in step.
"""

from __future__ import annotations

import string

from packageurl import PackageURL

from cargobay.scanning.facts import APK, DEB, GOLANG, MAVEN, NPM, RPM, Package

_RPM_NAMESPACES = {"rhel": "redhat", "centos": "centos", "rocky": "rocky", "almalinux": "almalinux"}


def pypi_name(name: str) -> str:
    """PEP 503 normalised name (``Jinja2`` → ``jinja2``, ``zope.interface`` → ``zope-interface``)."""
    out: list[str] = []
    sep = False
    for ch in name:
        if ch in "-_.":
            sep = True
            continue
        if sep and out:
            out.append("-")
        sep = False
        out.append(ch.lower())
    return "".join(out)


_PLAIN = frozenset(string.ascii_letters + string.digits + ".-_~:+")
_LOWER_NAME = frozenset({"pypi", "npm", "apk"})
_LOWER_NAMESPACE = frozenset({"pypi", "apk"})


def _plain(value: str) -> str | None:
    """``value`` percent-encoded as packageurl does, when it needs no more than ``+`` → ``%2B``."""
    if not _PLAIN.issuperset(value) or value != value.strip():
        return None
    return value.replace("+", "%2B")


def fast_purl(
    kind: str, namespace: str | None, name: str, version: str | None, qualifiers: dict[str, str] | None
) -> str | None:
    """The purl packageurl-python would write, or None when the inputs need its general path."""
    if not name or not kind.islower() or not kind.isalpha():
        return None
    out = ["pkg:", kind, "/"]
    if namespace:
        segments = []
        for segment in namespace.strip("/").split("/"):
            quoted = _plain(segment.lower() if kind in _LOWER_NAMESPACE else segment)
            if quoted is None or not quoted:
                return None
            segments.append(quoted)
        out += ["/".join(segments), "/"]
    quoted_name = _plain(name)
    if quoted_name is None or not quoted_name:
        return None
    if kind in _LOWER_NAME:  # packageurl lowers after quoting: "c++" is "c%2b%2b" there
        quoted_name = quoted_name.lower()
    if kind == "pypi":
        quoted_name = quoted_name.replace("_", "-")
    out.append(quoted_name)
    if version:
        quoted_version = _plain(version)
        if quoted_version is None:
            return None
        out += ["@", quoted_version]
    if qualifiers:
        pairs = []
        for key in sorted(qualifiers):
            value = qualifiers[key]
            quoted_value = _plain(value) if value else ""
            if quoted_value is None or not key.islower() or not key.isalpha():
                return None
            if quoted_value:
                pairs.append(f"{key}={quoted_value}")
        if pairs:
            out += ["?", "&".join(pairs)]
    return "".join(out)


def package_purl(pkg: Package, os_id: str = "", os_version: str = "") -> str:
    qualifiers: dict[str, str] = {}
    namespace: str | None = None
    name, version = pkg.name, pkg.version
    if pkg.kind in (DEB, APK, RPM):
        namespace = _RPM_NAMESPACES.get(os_id, os_id) if pkg.kind == RPM else os_id
        if pkg.arch:
            qualifiers["arch"] = pkg.arch
        if os_id and os_version:
            qualifiers["distro"] = f"{os_id}-{os_version}"
        if pkg.kind == RPM and ":" in version:
            epoch, _, version = version.partition(":")
            qualifiers["epoch"] = epoch
        if pkg.source_name and pkg.kind == DEB:
            qualifiers["upstream"] = pkg.source_name
    elif pkg.kind == NPM:
        if name.startswith("@") and "/" in name:
            namespace, _, name = name.partition("/")
    elif pkg.kind == GOLANG:
        if "/" in name:
            namespace, _, name = name.rpartition("/")
    elif pkg.kind == MAVEN:
        namespace, _, name = name.rpartition(":")
        namespace = namespace or None
    fast = fast_purl(pkg.kind, namespace or None, name, version or None, qualifiers or None)
    if fast is not None:
        return fast
    try:
        return str(
            PackageURL(
                type=pkg.kind,
                namespace=namespace or None,
                name=name,
                version=version or None,
                qualifiers=qualifiers or None,
            )
        )
    except ValueError:
        return ""
