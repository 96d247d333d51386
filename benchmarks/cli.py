"""``python -m benchmarks [--only push,pull,layers,get,rss,encryption,scaling] [--size 1GiB] [--quick] …``

Runs Cargobay and the reference registry side by side on loopback, prints a table of results and
ratios (Cargobay / reference, > 1.0 = Cargobay better) and writes every sample to
``benchmarks/results/<timestamp>.json``. ``scaling`` (how request cost grows with the data, Cargobay
alone; ``benchmarks/scaling.py``) runs only when named in ``--only`` and writes its own
``benchmarks/results/scaling-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import blobclient, scaling
from benchmarks.data import make_blob, make_image
from benchmarks.results import (
    CARGOBAY,
    CARGOBAY_DEFAULT,
    CARGOBAY_DEFAULT_BASIC,
    CARGOBAY_ENC_OFF,
    CARGOBAY_ENC_ON,
    CARGOBAY_W2,
    CEILING,
    REFERENCE,
    REFERENCE_HTPASSWD,
    Comparison,
    Results,
)
from benchmarks.servers import REFERENCE_BINARIES, find_binary
from benchmarks.suites import Bench, Options

SECTIONS = ("push", "pull", "layers", "get", "rss", "encryption", "defaults", "scaling")
# scaling needs no reference and takes long on its own: it runs only when --only names it.
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s != "scaling")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
AUTH_NOTE = (
    "auth: Cargobay clients use a Bearer JWT from /auth/token (as docker/crane do; verified per request, "
    "cached); the reference runs WITHOUT auth (distribution's htpasswd checks bcrypt on every request "
    "and caches nothing). Manifest GET is also reported against the reference with htpasswd (bcrypt "
    "cost 5, `htpasswd -B`)."
)


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*", text, re.IGNORECASE)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1GiB, 256MiB, 1000000)")
    unit = (m[2] or "").upper().rstrip("B")
    factor = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
    factor |= {"KI": 1024, "MI": 1024**2, "GI": 1024**3, "TI": 1024**4}
    if unit not in factor:
        raise argparse.ArgumentTypeError(f"unknown unit in {text!r}")
    return int(float(m[1]) * factor[unit])


def parse_sections(text: str) -> set[str]:
    chosen = {s.strip() for s in text.split(",") if s.strip()}
    unknown = chosen - set(SECTIONS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {', '.join(sorted(unknown))}; pick from {SECTIONS}"
        )
    return chosen


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1].strip())
    p.add_argument(
        "--only",
        type=parse_sections,
        default=set(DEFAULT_SECTIONS),
        help=f"comma list of {','.join(SECTIONS)} (default: all but scaling)",
    )
    p.add_argument("--size", type=parse_size, default=None, help="blob size (default 1GiB; --quick: 64MiB)")
    p.add_argument(
        "--quick", action="store_true", help="fast smoke run: small sizes, 1 repeat, short GET runs"
    )
    p.add_argument("--reference", choices=sorted(REFERENCE_BINARIES), default="registry-v3")
    p.add_argument(
        "--repeat", type=int, default=None, help="repeats of every measurement (default 3; quick 1)"
    )
    p.add_argument("--duration", type=float, default=None, help="seconds per manifest-GET run (default 20)")
    p.add_argument("--warmup", type=float, default=None, help="seconds of GET warm-up (default 3)")
    p.add_argument("--connections", type=int, default=32, help="concurrent GET connections (default 32)")
    p.add_argument("--layers", type=int, default=None, help="layers of the image (default 200; quick 20)")
    p.add_argument("--jobs", type=int, default=4, help="concurrent blob transfers for the image (default 4)")
    p.add_argument("--no-crane", action="store_true", help="skip the crane push/pull of the image")
    p.add_argument(
        "--workdir", type=Path, default=None, help="where data and servers live (default: a temp dir)"
    )
    p.add_argument("--keep", action="store_true", help="keep the work dir")
    p.add_argument(
        "--output", type=Path, default=None, help="JSON file (default benchmarks/results/<time>.json)"
    )
    return p


def comparisons() -> list[Comparison]:
    blob, enc, layers, get, defaults = "blob", "encryption", "layers", "get", "defaults"
    return [
        Comparison(defaults, "manifest GET", CARGOBAY_DEFAULT, REFERENCE, target=1.5),
        Comparison(defaults, "p99 latency", CARGOBAY_DEFAULT, REFERENCE, higher_is_better=False, target=1.0),
        Comparison(
            defaults,
            "manifest GET",
            CARGOBAY_DEFAULT_BASIC,
            CARGOBAY_DEFAULT,
            target=0.5,
            note="Basic on every request vs the Bearer JWT, same server",
        ),
        Comparison(defaults, "push (client)", CARGOBAY_DEFAULT, REFERENCE, target=1.5),
        Comparison(defaults, "push (curl)", CARGOBAY_DEFAULT, REFERENCE, target=1.5),
        Comparison(defaults, "pull (client)", CARGOBAY_DEFAULT, REFERENCE, target=1.0),
        Comparison(defaults, "pull (curl)", CARGOBAY_DEFAULT, REFERENCE, target=1.0),
        Comparison(blob, "push stream", CARGOBAY, REFERENCE, target=1.0),
        Comparison(blob, "push put", CARGOBAY, REFERENCE, target=1.0),
        Comparison(
            blob,
            "push post",
            CARGOBAY,
            REFERENCE,
            baseline_metric="push put",
            note="single POST vs the reference's POST+PUT (distribution has no single-POST upload)",
        ),
        Comparison(blob, "pull", CARGOBAY, REFERENCE, target=1.0),
        Comparison(blob, "push stream server CPU", CARGOBAY, REFERENCE, higher_is_better=False),
        Comparison(blob, "push put server CPU", CARGOBAY, REFERENCE, higher_is_better=False),
        Comparison(blob, "pull server CPU", CARGOBAY, REFERENCE, higher_is_better=False),
        Comparison(blob, "peak RSS", CARGOBAY, REFERENCE, higher_is_better=False),
        Comparison(layers, "push wall time", CARGOBAY, REFERENCE, higher_is_better=False, target=1.0),
        Comparison(layers, "pull wall time", CARGOBAY, REFERENCE, higher_is_better=False, target=1.0),
        Comparison(layers, "push wall time (crane)", CARGOBAY, REFERENCE, higher_is_better=False),
        Comparison(layers, "pull wall time (crane)", CARGOBAY, REFERENCE, higher_is_better=False),
        Comparison(get, "manifest GET", CARGOBAY, REFERENCE),
        Comparison(get, "manifest GET", CARGOBAY_W2, REFERENCE, target=1.0),
        Comparison(get, "manifest GET", CARGOBAY_W2, REFERENCE_HTPASSWD),
        Comparison(get, "manifest GET", CARGOBAY, REFERENCE_HTPASSWD),
        Comparison(get, "p50 latency", CARGOBAY_W2, REFERENCE, higher_is_better=False),
        Comparison(get, "p99 latency", CARGOBAY_W2, REFERENCE, higher_is_better=False),
        Comparison(get, "server CPU per 1k GET", CARGOBAY, REFERENCE, higher_is_better=False),
        Comparison(
            enc,
            "push wall time",
            CARGOBAY_ENC_ON,
            CARGOBAY_ENC_OFF,
            higher_is_better=False,
            target=1 / 1.1,
            note="encryption on vs off: >= 0.91x means <= 10% extra wall time",
        ),
        Comparison(
            enc,
            "pull wall time",
            CARGOBAY_ENC_ON,
            CARGOBAY_ENC_OFF,
            higher_is_better=False,
            target=1 / 1.1,
            note="encryption on vs off: >= 0.91x means <= 10% extra wall time",
        ),
        Comparison(enc, "push stream server CPU", CARGOBAY_ENC_ON, CARGOBAY_ENC_OFF, higher_is_better=False),
        Comparison(enc, "pull server CPU", CARGOBAY_ENC_ON, CARGOBAY_ENC_OFF, higher_is_better=False),
        Comparison(enc, "push stream", CARGOBAY_ENC_ON, REFERENCE, target=1.0),
        Comparison(enc, "pull", CARGOBAY_ENC_ON, REFERENCE, target=1.0),
        Comparison(enc, "push stream", CARGOBAY_ENC_OFF, REFERENCE, target=1.0),
        Comparison(enc, "pull", CARGOBAY_ENC_OFF, REFERENCE, target=1.0),
    ]


EXTRAS = [
    *[
        ("encryption", f"GET /v2/ {stat} latency, {when}", subject)
        for subject in (CARGOBAY_ENC_ON, CARGOBAY_ENC_OFF, REFERENCE)
        for stat, when in (
            ("p50", "idle"),
            ("p99", "idle"),
            ("p50", "during a pull"),
            ("p99", "during a pull"),
            ("max", "during a pull"),
        )
    ],
    ("blob", "push stream", CEILING),
    ("blob", "push put", CEILING),
    ("blob", "push post", CEILING),
    ("blob", "pull", CEILING),
    ("blob", "push stream finish (PUT)", CARGOBAY),
    ("blob", "push stream finish (PUT)", REFERENCE),
    ("blob", "peak RSS", REFERENCE),
    ("get", "manifest GET", CARGOBAY),
    ("get", "manifest GET", CARGOBAY_W2),
    ("get", "manifest GET", REFERENCE),
    ("get", "manifest GET", REFERENCE_HTPASSWD),
    ("get", "p50 latency", CARGOBAY),
    ("get", "p50 latency", CARGOBAY_W2),
    ("get", "p50 latency", REFERENCE),
    ("get", "p50 latency", REFERENCE_HTPASSWD),
    ("get", "p99 latency", CARGOBAY),
    ("get", "p99 latency", CARGOBAY_W2),
    ("get", "p99 latency", REFERENCE),
    ("get", "p99 latency", REFERENCE_HTPASSWD),
    ("get", "server CPU per 1k GET", CARGOBAY_W2),
    ("get", "server CPU per 1k GET", REFERENCE_HTPASSWD),
    ("encryption", "peak RSS", CARGOBAY_ENC_ON),
    ("encryption", "blob stored in plaintext", CARGOBAY_ENC_ON),
]


def _version(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _git_head() -> str:
    root = Path(__file__).resolve().parents[1]
    return _version(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])


def run_scaling(args: argparse.Namespace, output: Path | None) -> int:
    """The scaling section with its defaults (``--quick``: sizes 100 and 1,000, 10 requests)."""
    options = scaling.Options(
        sizes=[100, 1000] if args.quick else list(scaling.DEFAULT_SIZES),
        requests=10 if args.quick else 30,
        warmup=1 if args.quick else 3,
        workdir=args.workdir / "scaling" if args.workdir else None,
        keep=args.keep,
    )
    print("\n== scaling: how request cost grows with the data (python -m benchmarks.scaling --help)")
    scaling.run(options, output)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.only == {"scaling"}:
        return run_scaling(args, args.output)
    quick = args.quick
    size = args.size or (64 * 1024**2 if quick else 1024**3)
    options = Options(
        size=size,
        repeats=args.repeat or (1 if quick else 3),
        reference=args.reference,
        layers=args.layers or (20 if quick else 200),
        layer_min=64 * 1024,
        layer_max=1024 * 1024,
        jobs=args.jobs,
        get_seconds=args.duration or (3.0 if quick else 20.0),
        warmup_seconds=args.warmup or (1.0 if quick else 3.0),
        connections=args.connections,
        crane=not args.no_crane,
        log=lambda line: print(line, flush=True),
    )
    sections: set[str] = args.only
    reference_name, reference_env, reference_label = REFERENCE_BINARIES[options.reference]
    reference_binary = find_binary(reference_name, reference_env)
    if reference_binary is None:
        print(f"reference registry {reference_name} not found: run `make peers`", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.UTC)
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "cargobay_commit": _git_head(),
        "reference": reference_label,
        "reference_version": _version([reference_binary, "--version"]),
        "sections": sorted(sections),
        "blob_size": size,
        "repeats": options.repeats,
        "layers": options.layers,
        "layer_sizes": [options.layer_min, options.layer_max],
        "jobs": options.jobs,
        "get_seconds": options.get_seconds,
        "connections": options.connections,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "loadavg_start": _loadavg(),
        "auth": AUTH_NOTE,
    }
    results = Results(meta)
    if sections & {"push", "pull", "rss"}:
        results.notes.append(
            "blob: both servers fsync a pushed blob once; the reference does it at the end of each PATCH "
            "(its upload file is synced on close), Cargobay at the finishing PUT (commit), so compare the "
            "totals, not the 'finish (PUT)' rows"
        )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cargobay-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"Cargobay benchmarks vs {reference_label}; work dir {workdir}; load average {meta['loadavg_start']}"
    )
    print(AUTH_NOTE)
    try:
        client = blobclient.BlobClient(blobclient.build())
        bench = Bench(options, workdir, client, results)
        blob_needed = sections & {"push", "pull", "rss", "encryption", "defaults"}
        blob = make_blob(workdir / "blob.bin", size) if blob_needed else None
        if blob is not None and sections & {"push", "pull", "rss"}:
            print(
                f"\n== {size / 1024**2:.0f} MiB blob: push (streamed PATCH; monolithic PUT; single POST), "
                "pull, peak RSS"
            )
            bench.blob(blob, pull=bool(sections & {"pull", "rss"}))
        if blob is not None and "encryption" in sections:
            print(
                f"\n== encryption: {size / 1024**2:.0f} MiB push + pull with CARGOBAY_ENCRYPTION=false/true"
            )
            bench.encryption(blob)
            plain = results.values("encryption", "blob stored in plaintext", CARGOBAY_ENC_ON)
            if plain and all(plain.values()):
                results.notes.append(
                    "encryption: with CARGOBAY_ENCRYPTION=true the stored blob is still plaintext: "
                    "encryption at rest is not implemented in this build, so 'encryption=on' measures "
                    "the same code path"
                )
        if "layers" in sections:
            print(f"\n== {options.layers}-layer image: push and pull ({options.jobs} concurrent blobs)")
            image = make_image(workdir / "image", options.layers, options.layer_min, options.layer_max)
            results.meta["image_bytes"] = image.total_bytes
            bench.layers(image)
        if "defaults" in sections:
            print(
                f"\n== defaults: `cargobay serve` with no settings vs the reference; manifest GET "
                f"({options.connections} connections, Bearer and Basic), "
                f"{size / 1024**2:.0f} MiB push and pull (our client and curl)"
            )
            assert blob is not None
            small = make_image(workdir / "small-defaults", 1, 4096, 4096, seed=5)
            bench.defaults(blob, small)
        if "get" in sections:
            print(
                f"\n== manifest GET by tag: {options.connections} connections, "
                f"{options.get_seconds:.0f} s runs"
            )
            small = make_image(workdir / "small", 1, 4096, 4096, seed=3)
            bench.manifest_get(small)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results.meta["loadavg_end"] = _loadavg()
    results.meta["seconds"] = round(time.time() - started.timestamp(), 1)
    table = results.table(comparisons(), EXTRAS)
    print(f"\n== results (median [min-max] over {options.repeats} repeat(s); ratio > 1.0 = Cargobay better)")
    print(table)
    for note in results.notes:
        print(f"note: {note}")
    output = args.output or RESULTS_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    results.write(output, comparisons())
    print(f"\nsamples written to {output}")
    if "scaling" in sections:
        return run_scaling(args, None)
    return 0
