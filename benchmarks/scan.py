"""Scanning benchmark: our scanning library against osv-scanner on the same image archive.

    .venv/bin/python -m benchmarks.scan [--size-mib 200] [--records 20000] [--repeat 3] [--workdir DIR]

Generates (once per parameters, kept in the work dir) a Debian-like ``docker save`` archive of about
``--size-mib`` MiB of gzip layers: a base layer with the machine's real dpkg status (or a generated
one) and thousands of irrelevant files and ELF executables, Python, npm, Java and Go layers (real Go
binaries from the peers cache when present), an apt upgrade layer and a layer of whiteouts; and
``--records`` OSV records for packages of the image and for others (zipped per ecosystem for
osv-scanner). Then, each in a fresh process so peak RSS is its own:

* cold: read + catalog every layer from the archive, merge, match (records already indexed, as
  the registry's database would have them);
* warm: layer inventories from their cached JSON, merge, match (no layer is read);
* osv-scanner ``scan image --offline --archive`` with the same records (its time includes loading
  its zip database, which it cannot skip; our record parsing is reported separately).

The parsed records stand in for the registry's database, so they are moved out of the garbage
collector's sight (``gc.freeze``) before timing: 20,000 records are about a million objects, and
rescanning them in every full collection would be the cost of this harness, not of a scan.

Targets: cold <= 2 s and faster than osv-scanner, warm <= 0.2 s, peak RSS < 300 MiB.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("CARGOBAY_CACHE_DIR", REPO / ".cache"))
FORMAT_VERSION = 1
MiB = 1024 * 1024
DEBIAN_OS_RELEASE = (
    b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    b'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)


# -- generation --------------------------------------------------------------------------------


class Content:
    """Deterministic file bodies: "text" compresses about 3x, "binary" about 2x (like real files)."""

    def __init__(self, rng: random.Random) -> None:
        words = [rng.randbytes(rng.randint(2, 9)).hex()[: rng.randint(3, 10)] for _ in range(3000)]
        text = " ".join(rng.choice(words) for _ in range(900_000)).encode()
        self.text = text[: 4 * MiB]
        noise = rng.randbytes(2 * MiB)
        self.binary = b"".join(noise[i : i + 4096] + bytes(4096) for i in range(0, len(noise), 4096))
        self.rng = rng

    def body(self, kind: str, size: int) -> bytes:
        pool = self.text if kind == "text" else self.binary
        if size >= len(pool):
            return (pool * (size // len(pool) + 1))[:size]
        start = self.rng.randrange(0, len(pool) - size)
        return pool[start : start + size]

    def size(self, mean: int) -> int:
        return max(64, int(self.rng.lognormvariate(0, 1.0) * mean * 0.6))


@dataclass
class LayerBuilder:
    content: Content
    tar: tarfile.TarFile
    buffer: io.BytesIO
    entries: int = 0

    @classmethod
    def new(cls, content: Content) -> LayerBuilder:
        buf = io.BytesIO()
        return cls(content, tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT), buf)

    def add(self, path: str, data: bytes, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(path)
        info.size = len(data)
        info.mode = mode
        info.mtime = 1_700_000_000
        self.tar.addfile(info, io.BytesIO(data))
        self.entries += 1

    def link(self, path: str, target: str) -> None:
        info = tarfile.TarInfo(path)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        self.tar.addfile(info)
        self.entries += 1

    def many(
        self, prefix: str, count: int, kind: str, mean: int, suffix: str = "", mode: int = 0o644
    ) -> None:
        for i in range(count):
            body = self.content.body(kind, self.content.size(mean))
            if mode & 0o111 and kind == "binary":
                body = b"\x7fELF\x02\x01\x01" + body[7:]
            self.add(f"{prefix}/{i // 200:03d}/f{i:05d}{suffix}", body, mode)

    def finish(self) -> bytes:
        self.tar.close()
        return gzip.compress(self.buffer.getvalue(), compresslevel=1, mtime=0)


def _dpkg_status(rng: random.Random) -> str:
    real = Path("/var/lib/dpkg/status")
    if real.is_file() and "Package: " in real.read_text(errors="replace")[:1000]:
        return real.read_text(errors="replace")
    stanzas = []
    for i in range(300):
        name = f"pkg{i:03d}"
        source = f"src{i // 3:03d}"
        version = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}-{rng.randint(1, 5)}"
        binnmu = "+b1" if i % 7 == 0 else ""
        stanzas.append(
            f"Package: {name}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n"
            f"Source: {source} ({version})\nVersion: {version}{binnmu}\nDescription: generated\n x\n"
        )
    return "\n".join(stanzas)


def _jar(
    rng: random.Random, poms: list[tuple[str, str, str]], padding: int, nested: list[bytes] = ()
) -> bytes:  # type: ignore[assignment]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        for g, a, v in poms:
            zf.writestr(
                f"META-INF/maven/{g}/{a}/pom.properties", f"groupId={g}\nartifactId={a}\nversion={v}\n"
            )
        for i in range(max(1, padding // (256 * 1024))):
            zf.writestr(f"com/example/C{i}.class", rng.randbytes(128 * 1024) + bytes(128 * 1024))
        for i, inner in enumerate(nested):
            zf.writestr(f"BOOT-INF/lib/dep{i}.jar", inner)
    return buf.getvalue()


def _go_binaries() -> list[tuple[str, bytes]]:
    found = []
    for name in ("crane", "regctl"):
        path = CACHE / "bin" / name
        if path.is_file():
            found.append((name, path.read_bytes()))
    return found


def generate(workdir: Path, size_mib: int, seed: int) -> Path:
    """Write the archive (unless the same parameters were generated before) and return its path."""
    archive = workdir / f"image-{size_mib}mib-s{seed}-v{FORMAT_VERSION}.tar"
    if archive.is_file():
        return archive
    rng = random.Random(seed)
    content = Content(rng)
    go = _go_binaries()
    # At scale 1.0 the generated files come to about 350 MiB; the Go binaries are real and fixed.
    scale = max(0.05, (size_mib - sum(len(d) for _, d in go) / MiB) / 350)
    layers: list[bytes] = []

    base = LayerBuilder.new(content)
    base.add("etc/os-release", DEBIAN_OS_RELEASE)
    base.add("etc/debian_version", b"12.5\n")
    status = _dpkg_status(rng)
    base.add("var/lib/dpkg/status", status.encode())
    base.many("usr/share/doc", int(12000 * scale), "text", 8 * 1024, ".txt")
    base.many("usr/lib/x86_64-linux-gnu", int(3000 * scale), "binary", 25 * 1024, ".so")
    base.many("usr/bin", int(400 * scale), "binary", 60 * 1024, mode=0o755)
    base.many("var/lib/dpkg/info", int(700 * scale), "text", 2 * 1024, ".list")
    layers.append(base.finish())

    py = LayerBuilder.new(content)
    site = "usr/local/lib/python3.11/site-packages"
    for i in range(80):
        name, version = f"pydist{i:02d}", f"{rng.randint(0, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: generated\n\n" + "x" * 2000
        py.add(f"{site}/{name}-{version}.dist-info/METADATA", meta.encode())
        py.add(f"{site}/{name}-{version}.dist-info/RECORD", content.body("text", 3000))
    py.add(
        f"{site}/requests-2.28.1.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\n\n",
    )
    py.many(site + "/code", int(6000 * scale), "text", 6 * 1024, ".py")
    py.many(site + "/ext", int(200 * scale), "binary", 200 * 1024, ".so")
    layers.append(py.finish())

    node = LayerBuilder.new(content)
    lock: dict[str, Any] = {"name": "app", "lockfileVersion": 3, "packages": {}}
    for i in range(400):
        name, version = f"npmpkg{i:03d}", f"{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        doc = {"name": name, "version": version, "main": "index.js"}
        node.add(f"app/node_modules/{name}/package.json", json.dumps(doc).encode())
        lock["packages"][f"node_modules/{name}"] = {"version": version}
        for j in range(int(20 * scale)):
            node.add(f"app/node_modules/{name}/lib/m{j}.js", content.body("text", content.size(4 * 1024)))
    node.add("app/node_modules/lodash/package.json", b'{"name": "lodash", "version": "4.17.20"}')
    lock["packages"]["node_modules/lodash"] = {"version": "4.17.20"}
    node.add("app/node_modules/.package-lock.json", json.dumps(lock).encode())
    layers.append(node.finish())

    java = LayerBuilder.new(content)
    for i in range(6):
        poms = [(f"org.example{i}", f"lib{i}-{k}", f"1.{k}.{i}") for k in range(rng.randint(1, 3))]
        java.add(f"opt/app/lib/lib{i}.jar", _jar(rng, poms, int(5 * MiB * scale)))
    inner = [_jar(rng, [("org.apache.logging.log4j", "log4j-core", "2.14.1")], 256 * 1024)]
    java.add("opt/app/app.war", _jar(rng, [("com.example", "app", "1.0.0")], int(8 * MiB * scale), inner))
    layers.append(java.finish())

    gobin = LayerBuilder.new(content)
    for name, data in go:
        gobin.add(f"usr/local/bin/{name}", data, 0o755)
    layers.append(gobin.finish())

    upgrade = LayerBuilder.new(content)
    extra = "".join(
        f"\nPackage: newpkg{i}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.{i}-1\n"
        for i in range(5)
    )
    upgrade.add("var/lib/dpkg/status", (status.rstrip("\n") + "\n" + extra).encode())
    upgrade.many("usr/share/upgrade", int(500 * scale), "text", 8 * 1024)
    layers.append(upgrade.finish())

    removals = LayerBuilder.new(content)
    removals.add(f"{site}/.wh.pydist00-" + "x", b"")
    for i in range(0, 400, 40):
        removals.add(f"app/node_modules/npmpkg{i:03d}/.wh..wh..opq", b"")
    removals.add("usr/share/doc/000/.wh.f00000.txt", b"")
    layers.append(removals.finish())
    for i in range(3):
        small = LayerBuilder.new(content)
        small.add(f"etc/app/config{i}.yaml", content.body("text", 2000))
        layers.append(small.finish())

    _write_docker_archive(archive, layers)
    return archive


def image_size(archive: Path) -> int:
    """Uncompressed size of the image's layers (what ``docker images`` shows)."""
    tar, members = _layers_of(archive)
    total = 0
    for member in members:
        with gzip.open(tar.extractfile(member)) as f:  # type: ignore[arg-type]
            while chunk := f.read(4 * MiB):
                total += len(chunk)
    return total


def _write_docker_archive(path: Path, layers: list[bytes]) -> None:
    import hashlib

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    diff_ids = [f"sha256:{sha(gzip.decompress(layer))}" for layer in layers]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    )
    names = [f"blobs/{sha(layer)}.tar.gz" for layer in layers]
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["bench/scan:latest"], "Layers": names}])
    tmp = path.with_suffix(".partial")
    with tarfile.open(tmp, "w") as tar:
        for name, data in [("manifest.json", manifest.encode()), ("config.json", config.encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, data in zip(names, layers, strict=True):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tmp.rename(path)


# -- records -----------------------------------------------------------------------------------


def _vector(rng: random.Random) -> list[dict[str, str]]:
    if rng.random() < 0.3:
        return []
    av, c = rng.choice("NLA"), rng.choice("NLH")
    return [{"type": "CVSS_V3", "score": f"CVSS:3.1/AV:{av}/AC:L/PR:N/UI:N/S:U/C:{c}/I:H/A:H"}]


def make_records(keys: list[tuple[str, str, str]], count: int, seed: int) -> list[dict[str, Any]]:
    """About ``count`` records: some for the image's (ecosystem, name, version) keys, the rest for others."""
    rng = random.Random(seed)
    above = {"Debian:12": "+deb12u99", "PyPI": ".post99", "npm": "-0", "Maven": ".99", "Go": "-0"}
    records: list[dict[str, Any]] = []
    for ecosystem, name, version in keys:
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            if ecosystem == "npm" or ecosystem == "Go":
                fixed = "999.0.0" if rng.random() < 0.5 else "0.0.1"
                kind = "SEMVER"
            else:
                fixed = version + above[ecosystem] if rng.random() < 0.5 else "0.0.1"
                kind = "ECOSYSTEM"
            records.append(_record(len(records), ecosystem, name, kind, fixed, rng))
    ecosystems = ["Debian:12", "PyPI", "npm", "Maven", "Go"]
    while len(records) < count:
        ecosystem = rng.choice(ecosystems)
        name = f"absent{len(records)}" if ecosystem != "Maven" else f"org.absent:a{len(records)}"
        kind = "SEMVER" if ecosystem in ("npm", "Go") else "ECOSYSTEM"
        records.append(_record(len(records), ecosystem, name, kind, "1.0.0", rng))
    return records


def _record(n: int, ecosystem: str, name: str, kind: str, fixed: str, rng: random.Random) -> dict[str, Any]:
    cve = f"CVE-2024-{10000 + n}"
    record_id = f"DEBIAN-{cve}" if ecosystem.startswith("Debian") else f"GHSA-bench-{n:06d}"
    return {
        "id": record_id,
        "modified": "2024-06-01T00:00:00Z",
        "published": "2024-01-01T00:00:00Z",
        "upstream" if record_id.startswith("DEBIAN") else "aliases": [cve],
        "details": "generated for the benchmark",
        "severity": _vector(rng),
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": kind, "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }


def write_osv_scanner_db(root: Path, records: list[dict[str, Any]]) -> None:
    if (root / "done").is_file():
        return
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["affected"][0]["package"]["ecosystem"].split(":", 1)[0], []).append(r)
    for ecosystem, items in groups.items():
        folder = root / "osv-scalibr" / ecosystem
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(folder / "all.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for r in items:
                zf.writestr(f"{r['id']}.json", json.dumps(r))
    (root / "done").write_text("ok")


# -- the measured runs (each in its own process) -------------------------------------------------


def _layers_of(archive: Path) -> tuple[tarfile.TarFile, list[tarfile.TarInfo]]:
    tar = tarfile.open(archive)  # noqa: SIM115 (layers are read from it after this returns)
    manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    return tar, [tar.getmember(name) for name in manifest[0]["Layers"]]


def child_cold(archive: Path, records_path: Path, cache_path: Path) -> dict[str, Any]:
    from cargobay.scanning.inventory import merge
    from cargobay.scanning.layers import read_layer
    from cargobay.scanning.matcher import RecordIndex, match
    from cargobay.scanning.osv import parse_records

    t0 = time.perf_counter()
    records, _ = parse_records(json.loads(zlib.decompress(records_path.read_bytes())))
    index = RecordIndex(records)
    gc.freeze()  # the records stand in for the database: the collector must not rescan them
    t_records = time.perf_counter() - t0

    start = time.perf_counter()
    cpu_start = time.process_time()
    tar, members = _layers_of(archive)
    layer_invs = []
    per_layer = []
    for member in members:
        t = time.perf_counter()
        layer_invs.append(read_layer(tar.extractfile(member)))  # type: ignore[arg-type]
        per_layer.append(round(time.perf_counter() - t, 3))
    t_read = time.perf_counter() - start
    image = merge(layer_invs)
    t_merge = time.perf_counter() - start - t_read
    findings = match(image, index)
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    cache_path.write_text(json.dumps([inv.to_json() for inv in layer_invs]))
    return {
        "peak_rss_mib": _peak_rss_mib(),
        "cpu_seconds": cpu,
        "seconds": total,
        "read_seconds": t_read,
        "merge_seconds": t_merge,
        "match_seconds": total - t_read - t_merge,
        "per_layer": per_layer,
        "records_parse_seconds": t_records,
        "entries": sum(inv.entries for inv in layer_invs),
        "packages": len(image.packages),
        "findings": len(findings),
    }


def child_warm(records_path: Path, cache_path: Path) -> dict[str, Any]:
    from cargobay.scanning.inventory import LayerInventory, merge
    from cargobay.scanning.matcher import RecordIndex, match
    from cargobay.scanning.osv import parse_records

    records, _ = parse_records(json.loads(zlib.decompress(records_path.read_bytes())))
    index = RecordIndex(records)
    gc.freeze()  # the records stand in for the database: the collector must not rescan them
    cached = [json.dumps(layer) for layer in json.loads(cache_path.read_text())]  # as a database returns them
    start = time.perf_counter()
    cpu_start = time.process_time()
    image = merge([LayerInventory.from_json(json.loads(text)) for text in cached])
    findings = match(image, index)
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "packages": len(image.packages),
        "findings": len(findings),
        "peak_rss_mib": _peak_rss_mib(),
    }


def _peak_rss_mib() -> float:
    """This process's VmHWM: the kernel's peak RSS since exec (ru_maxrss of a child can include
    the forked parent's memory)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_child(args: list[str]) -> tuple[dict[str, Any], float]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scan", *args],
        stdout=subprocess.PIPE,
        cwd=REPO,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout)
    return result, result.pop("peak_rss_mib")


def run_osv_scanner(binary: str, archive: Path, db: Path, workdir: Path) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS MiB, vulnerabilities) of one offline image scan."""
    from benchmarks.procstats import RssSampler

    env = dict(os.environ, OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY=str(db), TMPDIR=str(workdir))
    out = workdir / "osv-scanner.json"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            binary,
            "scan",
            "image",
            "--offline",
            "--all-vulns",
            "--format",
            "json",
            "--output-file",
            str(out),
            "--archive",
            str(archive),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    with RssSampler(proc.pid) as sampler:
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise RuntimeError("osv-scanner failed")
    doc = json.loads(out.read_text())
    vulns = sum(len(p.get("vulnerabilities") or []) for r in doc["results"] for p in r["packages"])
    return seconds, usage.ru_utime + usage.ru_stime, sampler.result().peak_tree_rss_mib, vulns


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the generated data here (default: temp)"
    )
    parser.add_argument("--child", choices=["cold", "warm"], help=argparse.SUPPRESS)
    parser.add_argument("--archive", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--records-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "cold":
        print(json.dumps(child_cold(args.archive, args.records_file, args.cache_file)))
        return 0
    if args.child == "warm":
        print(json.dumps(child_warm(args.records_file, args.cache_file)))
        return 0

    temp = None
    if args.workdir is None:
        temp = tempfile.mkdtemp(prefix="cargobay-scan-bench-")
        workdir = Path(temp)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(args, workdir)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def _bench(args: argparse.Namespace, workdir: Path) -> int:
    t = time.perf_counter()
    archive = generate(workdir, args.size_mib, args.seed)
    print(
        f"archive {archive.name}: image {image_size(archive) / MiB:.0f} MiB uncompressed, "
        f"{archive.stat().st_size / MiB:.0f} MiB as gzip layers (made in {time.perf_counter() - t:.1f} s); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )

    # Records for the image's own packages (found by a first cold run) and for absent ones.
    probe = workdir / "probe-cache.json"
    records_file = workdir / f"records-{args.records}-s{args.seed}.json.z"
    empty = workdir / "no-records.json.z"
    empty.write_bytes(zlib.compress(b"[]"))
    _run_child(
        [
            "--child",
            "cold",
            "--archive",
            str(archive),
            "--records-file",
            str(empty),
            "--cache-file",
            str(probe),
        ]
    )
    from cargobay.scanning.inventory import LayerInventory, merge

    image = merge([LayerInventory.from_json(x) for x in json.loads(probe.read_text())])
    keys = sorted({(p.ecosystem, p.match_name, p.match_version) for p in image.packages if p.ecosystem})
    records = make_records(keys, args.records, args.seed)
    records_file.write_bytes(zlib.compress(json.dumps(records).encode(), 1))
    db = workdir / f"osvdb-{args.records}-s{args.seed}"
    write_osv_scanner_db(db, records)
    print(f"image: {len(image.packages)} packages, {len(keys)} lookup keys; {len(records)} OSV records")

    binary = os.environ.get("CARGOBAY_OSV_SCANNER") or str(CACHE / "bin" / "osv-scanner")
    have_peer = Path(binary).is_file()
    cold, warm, peer = [], [], []
    cache = workdir / "layer-cache.json"
    for _ in range(args.repeat):
        result, rss = _run_child(
            [
                "--child",
                "cold",
                "--archive",
                str(archive),
                "--records-file",
                str(records_file),
                "--cache-file",
                str(cache),
            ]
        )
        cold.append((result, rss))
        result, rss = _run_child(
            ["--child", "warm", "--records-file", str(records_file), "--cache-file", str(cache)]
        )
        warm.append((result, rss))
        if have_peer:
            peer.append(run_osv_scanner(binary, archive, db, workdir))

    c = cold[-1][0]
    print(
        f"cold  median {_median([r['seconds'] for r, _ in cold]):.3f} s "
        f"(CPU {_median([r['cpu_seconds'] for r, _ in cold]):.3f} s) "
        f"(read {c['read_seconds']:.3f}, merge {c['merge_seconds']:.3f}, match {c['match_seconds']:.3f}; "
        f"{c['entries']} tar entries, {c['packages']} packages, {c['findings']} findings)  "
        f"peak RSS {max(rss for _, rss in cold):.0f} MiB"
    )
    print(
        f"      per layer {c['per_layer']}; "
        f"parsing the records (not in the time) {c['records_parse_seconds']:.2f} s"
    )
    print(
        f"warm  median {_median([r['seconds'] for r, _ in warm]):.3f} s "
        f"(CPU {_median([r['cpu_seconds'] for r, _ in warm]):.3f} s) "
        f"({warm[-1][0]['findings']} findings)  peak RSS {max(rss for _, rss in warm):.0f} MiB"
    )
    if peer:
        print(
            f"osv-scanner  median {_median([s for s, _, _, _ in peer]):.3f} s "
            f"(CPU {_median([c for _, c, _, _ in peer]):.3f} s)  ({peer[-1][3]} vulnerabilities)  "
            f"peak RSS {max(rss for _, _, rss, _ in peer):.0f} MiB"
        )
        ratio = _median([s for s, _, _, _ in peer]) / _median([r["seconds"] for r, _ in cold])
        print(f"cold speed-up over osv-scanner: {ratio:.1f}x")
    else:
        print(f"osv-scanner not found at {binary} (scripts/install-peers.sh --tests installs it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
