"""The ``cargobay`` command: serve, migrate, and administration of contracts, users and registries."""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from cargobay.config import Settings

if TYPE_CHECKING:
    from cargobay.runtime import Runtime

app = typer.Typer(help="Cargobay: a self-hostable private OCI container registry.", no_args_is_help=True)
contract_app = typer.Typer(help="Contracts (tenants).", no_args_is_help=True)
user_app = typer.Typer(help="Users of contracts.", no_args_is_help=True)
registry_app = typer.Typer(help="Registries.", no_args_is_help=True)
keys_app = typer.Typer(help="Keys of encryption at rest.", no_args_is_help=True)
app.add_typer(contract_app, name="contract")
app.add_typer(user_app, name="user")
app.add_typer(registry_app, name="registry")
app.add_typer(keys_app, name="keys")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="data directory (CARGOBAY_DATA_DIR)")]


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    if data_dir is not None:
        os.environ["CARGOBAY_DATA_DIR"] = str(data_dir)
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"CARGOBAY_{key.upper()}"] = str(value)
    return Settings()


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
    runtime = build_runtime(settings, migrate=True)
    result = runtime.db.write_sync(bootstrap, settings.admin_user, settings.admin_password)
    if result is not None:
        typer.echo(f"created contract {result.contract_number} with owner {result.email}", err=True)
        if result.generated_password:
            typer.echo(f"generated password (shown once): {result.generated_password}", err=True)
    return runtime


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
) -> None:
    """Run the server: registry API, token service, management API, metrics."""
    import shutil

    from cargobay import serving

    metrics = serving.metrics_directory()  # before anything imports prometheus_client
    settings = _settings(
        data_dir, listen=listen, workers=workers, tls_cert_file=tls_cert, tls_key_file=tls_key
    )
    runtime = _prepare(settings, create=True)
    runtime.db.dispose()
    scheme = "https" if settings.tls else "http"
    typer.echo(
        f"cargobay listening on {scheme}://{settings.listen} with {settings.worker_count} worker process(es)",
        err=True,
    )
    try:
        serving.run(settings)
    finally:
        shutil.rmtree(metrics, ignore_errors=True)


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """Run background jobs (upload and token expiry, ...) until SIGTERM; run as many as you like."""
    from cargobay.logs import configure_logging
    from cargobay.worker import run_worker

    settings = _settings(data_dir)
    configure_logging(settings.log_level, settings.log_format)
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
    public = settings.public_url.split("://", 1)[-1].rstrip("/") if settings.public_url else settings.listen
    typer.echo(f"registry {view.name} ({view.id})")
    typer.echo(f"hostname: {hostname(view.name, settings.registry_domain, public)}")


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
