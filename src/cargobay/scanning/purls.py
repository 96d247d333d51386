"""Package URLs (purl spec) for inventory packages; OS packages carry arch and ``distro`` qualifiers."""

from __future__ import annotations

from packageurl import PackageURL

from cargobay.scanning.facts import APK, DEB, GOLANG, MAVEN, NPM, PYPI, RPM, Package

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
    elif pkg.kind == PYPI:
        name = pypi_name(name)
    elif pkg.kind == NPM:
        if name.startswith("@") and "/" in name:
            namespace, _, name = name.partition("/")
    elif pkg.kind == GOLANG:
        if "/" in name:
            namespace, _, name = name.rpartition("/")
    elif pkg.kind == MAVEN:
        namespace, _, name = name.rpartition(":")
        namespace = namespace or None
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
