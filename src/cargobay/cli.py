"""The ``cargobay`` command: serve, migrate, and administration of contracts, users and registries."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Coroutine, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from cargobay.config import Settings

if TYPE_CHECKING:
    from cargobay.domain.scopes import TokenScope
    from cargobay.runtime import Runtime

app = typer.Typer(help="Cargobay: a self-hostable private OCI container registry.", no_args_is_help=True)
contract_app = typer.Typer(help="Contracts (tenants).", no_args_is_help=True)
user_app = typer.Typer(help="Users of contracts.", no_args_is_help=True)
registry_app = typer.Typer(help="Registries.", no_args_is_help=True)
keys_app = typer.Typer(help="Keys of encryption at rest.", no_args_is_help=True)
token_app = typer.Typer(help="Registry tokens (docker credentials).", no_args_is_help=True)
vulndb_app = typer.Typer(help="The vulnerability database (OSV records).", no_args_is_help=True)
app.add_typer(contract_app, name="contract")
app.add_typer(user_app, name="user")
app.add_typer(registry_app, name="registry")
app.add_typer(keys_app, name="keys")
app.add_typer(token_app, name="token")
app.add_typer(vulndb_app, name="vulndb")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="data directory (CARGOBAY_DATA_DIR)")]


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    if data_dir is not None:
        os.environ["CARGOBAY_DATA_DIR"] = str(data_dir)
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"CARGOBAY_{key.upper()}"] = str(value)
    try:
        return Settings()
    except ValidationError as error:
        _fail("; ".join(_setting_problem(problem) for problem in error.errors()))


def _setting_problem(problem: Any) -> str:
    """One refused setting as the operator wrote it: the environment variable and why."""
    name = "CARGOBAY_" + "_".join(str(part) for part in problem["loc"]).upper()
    return f"{name}: {str(problem['msg']).removeprefix('Value error, ')}"


def _prepare(settings: Settings, create: bool = False) -> Runtime:
    """Migrate, and on a first start create the bootstrap contract and owner.

    Only ``create`` (serve, migrate) may make a new installation; every other command needs the one
    that ``CARGOBAY_DATA_DIR`` / ``--data-dir`` / ``CARGOBAY_DATABASE_URL`` name, and stops with an
    error naming where it looked instead of quietly starting a second one.
    """
    from cargobay.logs import configure_logging
    from cargobay.runtime import build_runtime, installation_problem
    from cargobay.services.tenancy import bootstrap

    configure_logging(settings.log_level, settings.log_format)
    if create:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    elif (problem := installation_problem(settings)) is not None:
        _fail(problem)
    with _storage_url_checked():
        runtime = build_runtime(settings, migrate=True)
    result = runtime.db.write_sync(bootstrap, settings.admin_user, settings.admin_password)
    if result is not None:
        typer.echo(f"created contract {result.contract_number} with owner {result.email}", err=True)
        if result.generated_password:
            typer.echo(f"generated password (shown once): {result.generated_password}", err=True)
    return runtime


@contextlib.contextmanager
def _storage_url_checked() -> Iterator[None]:
    """A storage URL the driver refuses (a bad parameter, redirects with encryption on) ends the
    command with one line naming the setting."""
    from cargobay.storage.base import StorageConfigError

    try:
        yield
    except StorageConfigError as exc:
        _fail(f"CARGOBAY_STORAGE_URL: {exc}")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def serve(
    listen: Annotated[str | None, typer.Option(help="HOST:PORT (CARGOBAY_LISTEN)")] = None,
    data_dir: DataDir = None,
    workers: Annotated[
        int | None, typer.Option(help="worker processes (CARGOBAY_WORKERS; default one per CPU, at most 8)")
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="serve HTTPS with this PEM certificate (CARGOBAY_TLS_CERT_FILE)"),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="its PEM private key (CARGOBAY_TLS_KEY_FILE)")
    ] = None,
    jobs: Annotated[
        bool | None,
        typer.Option(
            "--jobs/--no-jobs",
            help="run background jobs in this process too (CARGOBAY_IN_PROCESS_JOBS; default on); "
            "with --no-jobs, `cargobay worker` processes run them",
        ),
    ] = None,
) -> None:
    """Run the server: registry API, token service, management API, web console, metrics."""
    import shutil

    from cargobay import serving

    metrics = serving.metrics_directory()  # before anything imports prometheus_client
    try:
        _serve(data_dir, listen, workers, tls_cert, tls_key, jobs)
    finally:
        shutil.rmtree(metrics, ignore_errors=True)


def _serve(
    data_dir: Path | None,
    listen: str | None,
    workers: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    jobs: bool | None,
) -> None:
    from cargobay import serving

    settings = _settings(
        data_dir,
        listen=listen,
        workers=workers,
        tls_cert_file=tls_cert,
        tls_key_file=tls_key,
        in_process_jobs=None if jobs is None else str(jobs).lower(),
    )
    runtime = _prepare(settings, create=True)
    runtime.db.dispose()
    scheme = "https" if settings.tls else "http"
    typer.echo(
        f"cargobay listening on {scheme}://{settings.listen} with {settings.worker_count} worker process(es)",
        err=True,
    )
    serving.run(settings)


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """Run background jobs (upload and token expiry, ...) until SIGTERM; run as many as you like."""
    from cargobay.logs import configure_logging
    from cargobay.worker import run_worker

    settings = _settings(data_dir)
    configure_logging(settings.log_level, settings.log_format)
    with _storage_url_checked():
        run_worker(settings)


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply database migrations (also done at every start); with encryption on, seal data stored
    while it was off."""
    import asyncio

    from cargobay.services.encryption import seal_plaintext_data
    from cargobay.storage.encrypted import EncryptedStore

    runtime = _prepare(_settings(data_dir), create=True)
    typer.echo("database is at the newest schema")
    store = runtime.store
    if isinstance(store, EncryptedStore) and store.allow_plaintext:

        async def seal() -> None:
            try:
                report = await seal_plaintext_data(runtime.db, store, runtime.sealer)
            finally:
                await runtime.close()
            typer.echo(
                f"sealed data stored without encryption: {report.blobs} blobs, {report.uploads} uploads, "
                f"{report.manifests} manifests ({report.orphans} objects of deleted registries left alone)"
            )

        asyncio.run(seal())
    else:
        runtime.db.dispose()


@contract_app.command("create")
def contract_create(
    name: Annotated[str, typer.Option(help="contract name")] = "contract",
    number: Annotated[int | None, typer.Option(help="contract number (default: a free one)")] = None,
    owner: Annotated[str | None, typer.Option(help="owner login user@domain (created if new)")] = None,
    password: Annotated[str | None, typer.Option(help="owner password (default: generated)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a contract, optionally with its owner."""
    runtime = _prepare(_settings(data_dir))
    created = _run(runtime, runtime.services.tenancy.create_contract(name, number, owner, password))
    typer.echo(f"contract {created.number}")
    if created.generated_password:
        typer.echo(f"owner password (shown once): {created.generated_password}")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="login, user@domain")],
    contract: Annotated[int, typer.Option(help="contract number")],
    role: Annotated[str, typer.Option(help="owner, admin or user")] = "user",
    manage_registry: Annotated[bool, typer.Option(help="may create and change registries")] = False,
    password: Annotated[str | None, typer.Option(help="password (default: generated)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a user (or add an existing one) in a contract."""
    runtime = _prepare(_settings(data_dir))
    member = _run(
        runtime, runtime.services.tenancy.add_user(email, contract, role, manage_registry, password)
    )
    permission = " with manageRegistry" if manage_registry else ""
    typer.echo(f"user {member.email} is {role}{permission} of contract {contract}")
    if member.existed and password:
        typer.echo("note: the user already existed; the password was left unchanged", err=True)
    if member.generated_password:
        typer.echo(f"password (shown once): {member.generated_password}")


@registry_app.command("create")
def registry_create(
    name: Annotated[str, typer.Argument(help="registry name (3-63 of a-z, 0-9, '-')")],
    contract: Annotated[int | None, typer.Option(help="contract number (default: the only one)")] = None,
    location: Annotated[str | None, typer.Option(help="location id (default: the first)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a registry from the command line."""
    from cargobay.services.registries import hostname

    settings = _settings(data_dir)
    runtime = _prepare(settings)
    where = location or settings.locations[0]
    if where not in settings.locations:
        _fail(f"unknown location {where!r}; known: {', '.join(settings.locations)}")
    view = _run(runtime, runtime.services.registries.create_as_operator(contract, name, where))
    typer.echo(f"registry {view.name} ({view.id})")
    typer.echo(f"hostname: {hostname(view.name, settings.registry_domain, _public_host(settings))}")


RegistryName = Annotated[str, typer.Argument(help="registry name")]
TokenName = Annotated[str, typer.Argument(help="token name (its docker username)")]


@token_app.command("create")
def token_create(
    registry: RegistryName,
    name: TokenName,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="TYPE:NAME:ACTIONS, e.g. repository:team/*:pull,push or registry:*:pull (repeatable)",
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(help="expiry: an RFC 3339 time or a lifetime such as 12h, 30d (default: never)"),
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="create it disabled")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a registry token; its password is printed once, with a ready docker login line."""
    from cargobay.domain.errors import DomainError
    from cargobay.domain.scopes import parse_token_scopes, scope_from_text
    from cargobay.services.registries import hostname
    from cargobay.services.tokens import TokenSpec, parse_expiry

    try:
        scopes = [
            parse_token_scopes([scope_from_text(text)], field=f"--scope {text}")[0] for text in scope or ()
        ]
        expiry = _expiry(expires, lambda value: parse_expiry(value, "--expires"))
    except DomainError as exc:
        _fail(str(exc))
    spec = TokenSpec(name, "disabled" if disabled else "enabled", expiry, tuple(scopes))
    settings = _settings(data_dir)
    runtime = _prepare(settings)
    view = _run(runtime, runtime.services.operator_tokens.create(registry, spec))
    # docker logs in to a host; a path-style registry's hostname is host/registry
    host = hostname(registry, settings.registry_domain, _public_host(settings)).split("/", 1)[0]
    typer.echo(f"token {view.name} ({view.id}) of registry {registry}, {view.status}")
    typer.echo(f"expires: {view.expiry_date.isoformat() if view.expiry_date else 'never'}")
    typer.echo(f"scopes: {_scopes_text(view.scopes)}")
    typer.echo(f"password (shown once): {view.password}")
    typer.echo(f"echo '{view.password}' | docker login {host} --username {view.name} --password-stdin")


@token_app.command("list")
def token_list(registry: RegistryName, data_dir: DataDir = None) -> None:
    """List a registry's tokens (never their passwords)."""
    runtime = _prepare(_settings(data_dir))
    views = _run(runtime, runtime.services.operator_tokens.list(registry))
    if not views:
        typer.echo(f"registry {registry} has no tokens")
        return
    rows = [
        (
            v.name,
            v.id,
            v.status,
            v.expiry_date.isoformat() if v.expiry_date else "never",
            _scopes_text(v.scopes),
        )
        for v in views
    ]
    header = ("NAME", "ID", "STATUS", "EXPIRES", "SCOPES")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
    for row in (header, *rows):
        typer.echo("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[4]]))


@token_app.command("delete")
def token_delete(registry: RegistryName, name: TokenName, data_dir: DataDir = None) -> None:
    """Delete a registry token: it is refused by the registry at once."""
    runtime = _prepare(_settings(data_dir))
    _run(runtime, runtime.services.operator_tokens.delete(registry, name))
    typer.echo(f"deleted token {name} of registry {registry}")


def _expiry(text: str | None, parse: Callable[[object], datetime | None]) -> datetime | None:
    """An RFC 3339 time, or a lifetime from now: ``90m``, ``12h``, ``30d``, ``2w``."""
    from datetime import UTC, datetime, timedelta

    if text is None:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    number, unit = text[:-1], text[-1:]
    if unit in units and number.isdigit():
        return datetime.now(UTC) + timedelta(**{units[unit]: int(number)})
    return parse(text)


def _scopes_text(scopes: Iterable[TokenScope]) -> str:
    from cargobay.domain.scopes import ACTIONS

    return (
        " ".join(f"{s.type}:{s.name}:{','.join(a for a in ACTIONS if a in s.actions)}" for s in scopes) or "-"
    )


def _public_host(settings: Settings) -> str:
    return settings.public_url.split("://", 1)[-1].rstrip("/") if settings.public_url else settings.listen


@registry_app.command("gc-policy")
def registry_gc_policy(
    name: Annotated[str, typer.Argument(help="registry name")],
    untagged_manifests: Annotated[
        str | None,
        typer.Option(
            "--untagged-manifests",
            help="keep (the default: pull by digest keeps working) or delete the untagged manifests "
            "nothing refers to",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Show, or set, what garbage collection does with the registry's untagged manifests."""
    runtime = _prepare(_settings(data_dir))
    policy = _run(runtime, runtime.services.gc.set_policy_by_name(name, untagged_manifests))
    typer.echo(f"registry {name}: untagged manifests: {policy}")


@app.command("gc")
def collect_garbage(
    registry: Annotated[str | None, typer.Option("--registry", help="only this registry (by name)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what a run would free; delete nothing")
    ] = False,
    grace: Annotated[
        int | None,
        typer.Option(
            "--grace",
            min=0,
            help="seconds since a blob's last reference change before it may go "
            "(default CARGOBAY_GC_GRACE_SECONDS, 24 h)",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Collect garbage now, while servers keep running: unreferenced blobs past the grace period,
    untagged manifests where a registry's policy says so, expired uploads, objects no row names.
    Without --registry every registry, then what deleted registries left behind."""
    from datetime import timedelta

    settings = _settings(data_dir)
    runtime = _prepare(settings)
    collector = runtime.services.gc
    wait = timedelta(seconds=grace) if grace is not None else None

    async def work() -> None:
        chosen = await collector.registries(registry)
        with _GcProgress() as bar:
            for registry_id, name in chosen:
                report = await collector.collect(
                    registry_id, grace=wait, dry_run=dry_run, trigger="cli", on_progress=bar.follow(name)
                )
                _print_report(report)
            if registry is None:
                report = await collector.sweep_deleted_registries(
                    grace=wait, dry_run=dry_run, trigger="cli", on_progress=bar.follow("deleted registries")
                )
                _print_report(report)

    _run(runtime, work())


@keys_app.command("rotate-master")
def rotate_master(
    new_key_file: Annotated[
        Path, typer.Option("--new-key-file", help="the new master key (generated, mode 0600, if absent)")
    ],
    data_dir: DataDir = None,
) -> None:
    """Re-wrap every registry's data key under a new master key; blobs are not rewritten.

    The new key is first added to the master key file (as its first, active key), every data key is
    re-wrapped under it one registry at a time, and the old key is then dropped from the file. A crash
    at any point leaves all data readable; run the command again to finish.
    """
    from cargobay.domain.errors import DomainError
    from cargobay.services.keys import rotate_master as rotate
    from cargobay.storage.keys import MasterKeyUnavailable

    settings = _settings(data_dir)
    if not settings.encryption:
        _fail("encryption at rest is off (CARGOBAY_ENCRYPTION=false): there are no keys to rotate")
    runtime = _prepare(settings)
    keyring = runtime.master_keys
    assert keyring is not None
    try:
        done = rotate(runtime.db, keyring, new_key_file)
    except (DomainError, MasterKeyUnavailable) as exc:
        _fail(str(exc))
    finally:
        runtime.db.dispose()
    if done.generated:
        typer.echo(f"generated a new master key in {new_key_file}")
    if done.installed:
        typer.echo(f"added master key {done.new_key_id} to {keyring.path}")
    if done.retire_error:
        old = ", ".join(done.left_behind)
        typer.echo(
            f"cannot write {keyring.path} ({done.retire_error}): remove key(s) {old} yourself", err=True
        )
    typer.echo(f"re-wrapped {done.rewrapped} data keys under master key {done.new_key_id}")
    if done.retired:
        typer.echo(f"retired master key(s) {', '.join(done.retired)} from {keyring.path}")
    typer.echo(f"the active master key now lives in {keyring.path}; {new_key_file} is no longer needed")


class _GcProgress:
    """A progress bar per run on stderr (phase, done/total, the run's own estimate of time left)."""

    def __enter__(self) -> _GcProgress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[phase]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def follow(self, name: str) -> Callable[[Any], None]:
        task = self.bar.add_task(name, total=None, phase="starting", eta="")

        def update(progress: Any) -> None:
            eta = progress.eta_seconds
            self.bar.update(
                task,
                total=progress.total or None,
                completed=progress.done,
                phase=progress.phase,
                eta=f"~{eta:.0f} s left" if eta is not None and progress.phase != "done" else "",
            )

        return update


def _print_report(report: Any) -> None:
    verb = "would free" if report.dry_run else "freed"
    mib = report.bytes_freed / (1024 * 1024)
    name = report.registry if report.registry_id is not None else "deleted registries"
    typer.echo(
        f"{name}: {verb} {report.blobs_freed} blobs ({report.bytes_freed} bytes, {mib:.1f} MiB), "
        f"{report.manifests_deleted} untagged manifests, {report.uploads_expired} expired uploads; "
        f"{report.orphans_found} objects no row names ({report.orphans_deleted} deleted); "
        f"{report.candidates} reviewed in {report.seconds:.1f} s"
        + (f" ({report.blobs_per_second:.0f} blobs/s)" if report.blobs_freed else "")
    )


def _progress_bar() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("documents"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _print_import(report: Any) -> None:
    typer.echo(
        f"read {report.records} records from {report.documents} documents: {report.added} added, "
        f"{report.updated} updated, {report.withdrawn} withdrawn, {report.unchanged} unchanged"
    )
    for message in report.problems[:20]:
        typer.echo(f"skipped: {message}", err=True)
    if report.problem_count > 20:
        typer.echo(f"... and {report.problem_count - 20} more problems", err=True)
    if report.version is not None:
        typer.echo(f"vulnerability database version {report.version}; a rescan of recent artifacts is queued")
    else:
        typer.echo("nothing changed")


@vulndb_app.command("import")
def vulndb_import(
    paths: Annotated[list[Path], typer.Argument(help="OSV JSON files, folders of them, or all.zip dumps")],
    data_dir: DataDir = None,
) -> None:
    """Import OSV records (upserted by id and modified; withdrawn records stop matching)."""
    from cargobay.scanning.osvfiles import SourceError

    runtime = _prepare(_settings(data_dir))
    try:
        with _progress_bar() as bar:
            task = bar.add_task("importing", total=None)
            report = runtime.services.vulndb.import_paths(
                paths, lambda done, total: bar.update(task, completed=done, total=total)
            )
    except SourceError as exc:
        _fail(str(exc))
    finally:
        runtime.db.dispose()
    _print_import(report)
    if report.records == 0 and report.problem_count:
        raise typer.Exit(1)


@vulndb_app.command("sync")
def vulndb_sync(
    url: Annotated[str | None, typer.Option(help="base URL of the dumps (CARGOBAY_VULNDB_URL)")] = None,
    ecosystem: Annotated[
        list[str] | None, typer.Option(help="an ecosystem to fetch, repeatable (CARGOBAY_VULNDB_ECOSYSTEMS)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Fetch the changed {ecosystem}/all.zip dumps (conditional requests) and import them."""
    settings = _settings(data_dir)
    runtime = _prepare(settings)
    try:
        with _progress_bar() as bar:
            task = bar.add_task("importing", total=None)
            report = runtime.services.vulndb.sync(
                url or settings.vulndb_url,
                ecosystem or settings.vulndb_ecosystems,
                settings.data_dir / "tmp",
                lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        runtime.db.dispose()
    if report.unchanged:
        typer.echo(f"not modified: {', '.join(report.unchanged)}")
    if report.fetched:
        typer.echo(f"fetched: {', '.join(report.fetched)}")
    for name, reason in report.failed.items():
        typer.echo(f"failed: {name}: {reason}", err=True)
    if report.imported is not None:
        _print_import(report.imported)
    if report.failed:
        raise typer.Exit(1)


@vulndb_app.command("status")
def vulndb_status(data_dir: DataDir = None) -> None:
    """The database version, how many advisories it holds, and the state of the synced dumps."""
    runtime = _prepare(_settings(data_dir))
    try:
        state = runtime.services.vulndb.state()
        sources = runtime.services.vulndb.sources()
    finally:
        runtime.db.dispose()
    updated = state.updated_at.isoformat() if state.updated_at else "never"
    typer.echo(f"version {state.version} ({state.advisories} advisories, updated {updated})")
    typer.echo(f"rescanned up to version {state.rescanned_version}")
    for source in sources:
        checked = source.checked_at.isoformat() if source.checked_at else "never"
        changed = source.changed_at.isoformat() if source.changed_at else "never"
        typer.echo(f"{source.url}: checked {checked}, changed {changed}")


@app.command()
def scan(
    image: Annotated[str, typer.Argument(help="registry/repository:tag or registry/repository@digest")],
    rescan: Annotated[bool, typer.Option("--rescan", help="scan again even if it has a result")] = False,
    no_scan: Annotated[
        bool, typer.Option("--no-scan", help="only show the stored result (the server's jobs scan)")
    ] = False,
    output: Annotated[str, typer.Option("--format", help="table, json or sbom")] = "table",
    data_dir: DataDir = None,
) -> None:
    """Print the vulnerabilities of one artifact (scanning it now if it has no result yet)."""
    import json

    from cargobay.services.scan_results import severity_name
    from cargobay.services.scanning import artifact_scan

    if output not in ("table", "json", "sbom"):
        _fail("--format is table, json or sbom")
    runtime = _prepare(_settings(data_dir))
    scans = runtime.services.scans

    async def work() -> tuple[Any, str | None]:
        mode = "always" if rescan else "never" if no_scan else "missing"
        result = await artifact_scan(scans, image, scan=mode)
        sbom = None
        if output == "sbom":
            sbom = await scans.sbom(result.registry_id, result.digest)
            if sbom is None and await scans.build_sbom(
                result.registry_id, result.digest, result.image.repository
            ):
                sbom = await scans.sbom(result.registry_id, result.digest)
        return result, sbom

    result, sbom = _run(runtime, work())
    state = result.state
    if output == "sbom":
        if sbom is None:
            _fail(f"no SBOM: the artifact is {state.status or 'not scanned'}")
        typer.echo(sbom)
        return
    summary = {
        "image": f"{result.image.registry}/{result.image.repository}@{result.digest}",
        "status": state.status,
        "scannedAt": state.scanned_at.isoformat() if state.scanned_at else None,
        "databaseVersion": state.db_version,
        "maxSeverity": severity_name(state.max_severity),
        "total": state.total,
        "fixable": state.fixable,
        "totalScore": state.score,
    }
    if output == "json":
        items = [
            {
                "id": row.vulnerability_id,
                "severity": severity_name(row.severity),
                "score": row.score,
                "fixable": row.fixable,
                "aliases": list(row.aliases),
                "packages": [
                    {
                        "name": m.get("package"),
                        "purl": m.get("purl"),
                        "installed": m.get("installed_version"),
                        "fixed": m.get("fixed_version") or None,
                    }
                    for m in row.matches
                ],
            }
            for row in result.rows
        ]
        typer.echo(json.dumps({**summary, "vulnerabilities": items}, indent=2))
        return
    _print_findings(summary, result.rows)


def _print_findings(summary: dict[str, Any], rows: list[Any]) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    from cargobay.services.scan_results import severity_name

    console = Console(width=None if sys.stdout.isatty() else 200)  # piped: no truncated versions
    console.print(f"{summary['image']}", highlight=False, soft_wrap=True)
    console.print(
        f"status {summary['status']}, scanned {summary['scannedAt'] or 'never'} (database version "
        f"{summary['databaseVersion']}): {summary['total']} vulnerabilities, {summary['fixable']} fixable, "
        f"highest {summary['maxSeverity']}",
        highlight=False,
        soft_wrap=True,
    )
    if not rows:
        return
    table = Table(show_lines=False)
    for column in ("VULNERABILITY", "SEVERITY", "SCORE", "PACKAGE", "INSTALLED", "FIXED"):
        table.add_column(column, overflow="fold")
    ordered = sorted(rows, key=lambda r: (-r.severity, -(r.score or 0.0), r.vulnerability_id))
    for row in ordered:
        for i, match in enumerate(row.matches):
            table.add_row(
                row.vulnerability_id if i == 0 else "",
                (severity_name(row.severity) or "") if i == 0 else "",
                (f"{row.score:.1f}" if row.score is not None else "") if i == 0 else "",
                str(match.get("package", "")),
                str(match.get("installed_version", "")),
                str(match.get("fixed_version") or "-"),
            )
    console.print(table)


T = TypeVar("T")


def _run(runtime: Runtime, work: Coroutine[Any, Any, T]) -> T:
    """Run a service call to completion; a broken rule is an error message, not a traceback."""
    import asyncio

    from cargobay.domain.errors import DomainError

    async def call() -> T:
        try:
            return await work
        finally:
            await runtime.close()

    try:
        return asyncio.run(call())
    except DomainError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def main() -> None:
    app(prog_name="cargobay")


if __name__ == "__main__":
    main()
