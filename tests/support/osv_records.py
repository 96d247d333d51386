"""OSV records written for the tests from real, well-known advisories (ids and versions as published;
only the fields the scanner reads are filled in). Shared by the unit tests and the osv-scanner
cross-check, which zips them per ecosystem as osv-scanner's offline database.
"""

from __future__ import annotations

from typing import Any

V31_GLIBC = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"  # CVE-2023-4911, 7.8
V31_LOG4SHELL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"  # CVE-2021-44228, 10.0
V31_REQUESTS = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"  # CVE-2023-32681, 6.1
V31_LODASH = "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"  # CVE-2021-23337, 7.2
V31_RAPID_RESET = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"  # CVE-2023-39325, 7.5
V31_CHFN = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"  # CVE-2022-0563, 5.5


def _deb(ecosystem: str, name: str, fixed: str = "", urgency: str = "") -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": "0"}]
    if fixed:
        events.append({"fixed": fixed})
    entry: dict[str, Any] = {
        "package": {"ecosystem": ecosystem, "name": name, "purl": f"pkg:deb/debian/{name}"},
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
    }
    if urgency:
        entry["ecosystem_specific"] = {"urgency": urgency}
    return entry


DEBIAN_CVE_2024_28085: dict[str, Any] = {
    "id": "DEBIAN-CVE-2024-28085",
    "modified": "2024-09-18T03:00:00Z",
    "published": "2024-03-27T19:15:00Z",
    "upstream": ["CVE-2024-28085"],
    "details": "wall in util-linux through 2.40, often installed with setgid tty permissions, allows "
    "escape sequences to be sent to other users' terminals through argv.",
    "affected": [
        _deb("Debian:11", "util-linux", "2.36.1-8+deb11u2"),
        _deb("Debian:12", "util-linux", "2.38.1-5+deb12u1"),
    ],
    "references": [{"type": "ADVISORY", "url": "https://security-tracker.debian.org/tracker/CVE-2024-28085"}],
}

DSA_5650_1: dict[str, Any] = {
    "id": "DSA-5650-1",
    "modified": "2024-03-28T00:00:00Z",
    "published": "2024-03-27T00:00:00Z",
    "summary": "util-linux - security update",
    "upstream": ["CVE-2024-28085"],
    "affected": [_deb("Debian:12", "util-linux", "2.38.1-5+deb12u1")],
    "references": [{"type": "ADVISORY", "url": "https://www.debian.org/security/2024/dsa-5650"}],
}

DEBIAN_CVE_2022_0563: dict[str, Any] = {
    "id": "DEBIAN-CVE-2022-0563",
    "modified": "2024-09-18T03:00:00Z",
    "published": "2022-02-21T19:15:00Z",
    "upstream": ["CVE-2022-0563"],
    "details": "A flaw was found in the util-linux chfn and chsh utilities when compiled with Readline "
    "support.",
    "severity": [{"type": "CVSS_V3", "score": V31_CHFN}],
    "affected": [_deb("Debian:12", "util-linux", urgency="unimportant")],
}

DEBIAN_CVE_2023_4911: dict[str, Any] = {
    "id": "DEBIAN-CVE-2023-4911",
    "modified": "2024-09-18T03:00:00Z",
    "published": "2023-10-03T18:15:00Z",
    "upstream": ["CVE-2023-4911"],
    "details": "A buffer overflow was discovered in the GNU C Library's dynamic loader ld.so while "
    "processing the GLIBC_TUNABLES environment variable.",
    "severity": [{"type": "CVSS_V3", "score": V31_GLIBC}],
    "affected": [_deb("Debian:12", "glibc", "2.36-9+deb12u3", urgency="high")],
}

DSA_5514_1: dict[str, Any] = {
    "id": "DSA-5514-1",
    "modified": "2023-10-04T00:00:00Z",
    "published": "2023-10-03T00:00:00Z",
    "summary": "glibc - security update",
    "upstream": ["CVE-2023-4527", "CVE-2023-4806", "CVE-2023-4911"],
    "affected": [_deb("Debian:12", "glibc", "2.36-9+deb12u3")],
}

GHSA_LOG4SHELL: dict[str, Any] = {
    "id": "GHSA-jfh8-c2jp-5v3q",
    "modified": "2024-07-24T00:00:00Z",
    "published": "2021-12-10T00:40:56Z",
    "aliases": ["CVE-2021-44228"],
    "summary": "Remote code injection in Log4j",
    "severity": [{"type": "CVSS_V3", "score": V31_LOG4SHELL}],
    "affected": [
        {
            "package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"},
            "ranges": [
                {
                    "type": "ECOSYSTEM",
                    "events": [
                        {"introduced": "2.13.0"},
                        {"fixed": "2.15.0"},
                        {"introduced": "2.0-beta9"},
                        {"fixed": "2.3.1"},
                        {"introduced": "2.4"},
                        {"fixed": "2.12.2"},
                    ],
                }
            ],
        }
    ],
    "references": [{"type": "WEB", "url": "https://logging.apache.org/log4j/2.x/security.html"}],
}

GHSA_REQUESTS: dict[str, Any] = {
    "id": "GHSA-j8r2-6x86-q33q",
    "modified": "2024-06-24T00:00:00Z",
    "published": "2023-05-22T20:36:32Z",
    "aliases": ["CVE-2023-32681", "PYSEC-2023-74"],
    "summary": "Unintended leak of Proxy-Authorization header in requests",
    "severity": [{"type": "CVSS_V3", "score": V31_REQUESTS}],
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}],
        }
    ],
}

PYSEC_2023_74: dict[str, Any] = {
    "id": "PYSEC-2023-74",
    "modified": "2023-06-05T00:00:00Z",
    "published": "2023-05-26T18:15:00Z",
    "aliases": ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"],
    "details": "Requests is a HTTP library. Since Requests 2.3.0, Requests has been leaking "
    "Proxy-Authorization headers to destination servers when redirected to an HTTPS endpoint.",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "Requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}],
        }
    ],
}

GHSA_LODASH: dict[str, Any] = {
    "id": "GHSA-35jh-r3h4-6jhm",
    "modified": "2024-03-12T00:00:00Z",
    "published": "2021-05-06T16:05:51Z",
    "aliases": ["CVE-2021-23337"],
    "summary": "Command Injection in lodash",
    "severity": [{"type": "CVSS_V3", "score": V31_LODASH}],
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}],
        }
    ],
}

GO_2023_2102: dict[str, Any] = {
    "id": "GO-2023-2102",
    "modified": "2024-05-20T16:03:47Z",
    "published": "2023-10-11T22:14:09Z",
    "aliases": ["CVE-2023-39325", "GHSA-4374-p667-p6c8"],
    "summary": "HTTP/2 rapid reset can cause excessive work in net/http",
    "severity": [{"type": "CVSS_V3", "score": V31_RAPID_RESET}],
    "affected": [
        {
            "package": {"ecosystem": "Go", "name": "stdlib"},
            "ranges": [
                {
                    "type": "SEMVER",
                    "events": [
                        {"introduced": "0"},
                        {"fixed": "1.20.10"},
                        {"introduced": "1.21.0-0"},
                        {"fixed": "1.21.3"},
                    ],
                }
            ],
        },
        {
            "package": {"ecosystem": "Go", "name": "golang.org/x/net"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.17.0"}]}],
        },
    ],
}

WITHDRAWN: dict[str, Any] = {
    "id": "GHSA-withdrawn-test",
    "modified": "2023-01-01T00:00:00Z",
    "withdrawn": "2023-01-02T00:00:00Z",
    "summary": "Withdrawn: duplicate of GHSA-35jh-r3h4-6jhm",
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}],
        }
    ],
}


GHSA_URLLIB3: dict[str, Any] = {
    "id": "GHSA-v845-jxx5-vc9f",
    "modified": "2024-02-16T00:00:00Z",
    "published": "2023-10-02T23:26:02Z",
    "aliases": ["CVE-2023-43804"],
    "summary": "Cookie HTTP header isn't stripped on cross-origin redirects",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "urllib3"},
            "ranges": [
                {
                    "type": "ECOSYSTEM",
                    "events": [
                        {"introduced": "0"},
                        {"fixed": "1.26.17"},
                        {"introduced": "2.0.0"},
                        {"fixed": "2.0.6"},
                    ],
                }
            ],
        }
    ],
}

ALL: tuple[dict[str, Any], ...] = (
    DEBIAN_CVE_2024_28085,
    DSA_5650_1,
    DEBIAN_CVE_2022_0563,
    DEBIAN_CVE_2023_4911,
    DSA_5514_1,
    GHSA_LOG4SHELL,
    GHSA_REQUESTS,
    PYSEC_2023_74,
    GHSA_LODASH,
    GO_2023_2102,
    GHSA_URLLIB3,
    WITHDRAWN,
)
