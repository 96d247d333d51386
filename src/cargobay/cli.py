"""The ``cargobay`` command: serve, migrate, and administration of contracts, users and registries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cargobay.config import Settings

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


def _prepare(settings: Settings):  # type: ignore[no-untyped-def]
    """Migrate, and on a first start create the bootstrap contract and owner."""
    from cargobay.logs import configure_logging
    from cargobay.runtime import build_runtime
    from cargobay.services.tenancy import bootstrap

    configure_logging(settings.log_level)
    runtime = build_runtime(settings, migrate=True)
    result = runtime.db.write_sync(bootstrap, settings.admin_user, settings.admin_password)
    if result is not None:
        typer.echo(f"created contract {result.contract_number} with owner {result.email}", err=True)
        if result.generated_password:
            typer.echo(f"generated password (shown once): {result.generated_password}", err=True)
    return runtime


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def serve(
    listen: Annotated[str | None, typer.Option(help="HOST:PORT (CARGOBAY_LISTEN)")] = None,
    data_dir: DataDir = None,
    workers: Annotated[int | None, typer.Option(help="worker processes (CARGOBAY_WORKERS)")] = None,
) -> None:
    """Run the server: registry API, token service, management API, console."""
    import uvicorn

    settings = _settings(data_dir, listen=listen, workers=workers)
    runtime = _prepare(settings)
    runtime.db.dispose()
    typer.echo(f"cargobay listening on http://{settings.listen}", err=True)
    uvicorn.run(
        "cargobay.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        # X-Forwarded-For is believed only from CARGOBAY_TRUSTED_PROXIES (domain/allowlist.py);
        # uvicorn's own proxy handling would trust loopback peers and bypass the allowlist.
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """Run background jobs (upload and token expiry, ...) until SIGTERM; run as many as you like."""
    from cargobay.logs import configure_logging
    from cargobay.worker import run_worker

    settings = _settings(data_dir)
    configure_logging(settings.log_level)
    run_worker(settings)


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply database migrations (also done at every start); with encryption on, seal data stored
    while it was off."""
    import asyncio

    from cargobay.services.encryption import seal_plaintext_data
    from cargobay.storage.encrypted import EncryptedStore

    runtime = _prepare(_settings(data_dir))
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
    from cargobay.auth.passwords import generate_password
    from cargobay.services import tenancy

    runtime = _prepare(_settings(data_dir))
    generated = None

    def work(session):  # type: ignore[no-untyped-def]
        nonlocal generated
        contract = tenancy.create_contract(session, name, number)
        if owner:
            user = tenancy.find_user(session, owner)
            if user is None:
                secret = password or generate_password(18)
                generated = None if password else secret
                user = tenancy.create_user(session, owner, secret)
            tenancy.add_member(session, contract.number, user, "owner", manage_registry=True)
        return contract.number

    try:
        contract_number = runtime.db.write_sync(work)
    except tenancy.TenancyError as exc:
        _fail(str(exc))
    typer.echo(f"contract {contract_number}")
    if generated:
        typer.echo(f"owner password (shown once): {generated}")


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
    from cargobay.auth.passwords import generate_password
    from cargobay.services import tenancy

    runtime = _prepare(_settings(data_dir))
    generated = None
    existed = False

    def work(session):  # type: ignore[no-untyped-def]
        nonlocal generated, existed
        user = tenancy.find_user(session, email)
        existed = user is not None
        if user is None:
            secret = password or generate_password(18)
            generated = None if password else secret
            user = tenancy.create_user(session, email, secret)
        tenancy.add_member(session, contract, user, role, manage_registry)
        return user.email

    try:
        login = runtime.db.write_sync(work)
    except tenancy.TenancyError as exc:
        _fail(str(exc))
    permission = " with manageRegistry" if manage_registry else ""
    typer.echo(f"user {login} is {role}{permission} of contract {contract}")
    if existed and password:
        typer.echo("note: the user already existed; the password was left unchanged", err=True)
    if generated:
        typer.echo(f"password (shown once): {generated}")


@registry_app.command("create")
def registry_create(
    name: Annotated[str, typer.Argument(help="registry name (3-63 of a-z, 0-9, '-')")],
    contract: Annotated[int | None, typer.Option(help="contract number (default: the only one)")] = None,
    location: Annotated[str | None, typer.Option(help="location id (default: the first)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a registry from the command line."""
    from sqlalchemy import select

    from cargobay.db.models import Contract
    from cargobay.domain.errors import DomainError
    from cargobay.services import registries

    settings = _settings(data_dir)
    runtime = _prepare(settings)
    where = location or settings.locations[0]
    if where not in settings.locations:
        _fail(f"unknown location {where!r}; known: {', '.join(settings.locations)}")

    def work(session):  # type: ignore[no-untyped-def]
        number = contract
        if number is None:
            numbers = session.scalars(select(Contract.number).order_by(Contract.number)).all()
            if len(numbers) != 1:
                raise ValueError(
                    "several contracts exist: pass --contract" if numbers else "no contract exists"
                )
            number = numbers[0]
        registry = registries.create_registry(session, contract_number=number, name=name, location=where)
        registries.mark_running(session, registry.id)
        return registry.id

    try:
        registry_id = runtime.db.write_sync(work)
    except registries.RegistryNameTaken:
        _fail(f"registry name {name!r} is taken")
    except (ValueError, DomainError) as exc:
        _fail(str(exc))
    public = settings.public_url.split("://", 1)[-1].rstrip("/") if settings.public_url else settings.listen
    typer.echo(f"registry {name} ({registry_id})")
    typer.echo(f"hostname: {registries.hostname(name, settings.registry_domain, public)}")


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
    from cargobay.db.engine import Database
    from cargobay.faults import crash_point
    from cargobay.services.keys import master_key_ids_in_use, rotate_master_key
    from cargobay.storage.keys import MasterKeyFile, MasterKeyUnavailable

    settings = _settings(data_dir)
    if not settings.encryption:
        _fail("encryption at rest is off (CARGOBAY_ENCRYPTION=false): there are no keys to rotate")
    runtime = _prepare(settings)
    keyring = runtime.master_keys
    assert keyring is not None
    db: Database = runtime.db
    existed = new_key_file.exists()
    new_keys = MasterKeyFile.create(new_key_file)
    if not existed:
        typer.echo(f"generated a new master key in {new_key_file}")
    if len(new_keys.key_ids) != 1:
        _fail(f"{new_key_file} must hold exactly one key")
    new_id = new_keys.active_key_id
    try:
        if keyring.install(new_keys.key(new_id)):
            typer.echo(f"added master key {new_id} to {keyring.path}")
    except OSError as exc:
        _fail(
            f"cannot write {keyring.path} ({exc.strerror}): add the new key as its first line yourself "
            f"(on every node that reads it), then run this command again"
        )
    crash_point("rotate.installed")
    try:
        count = rotate_master_key(db, keyring, new_id)
    except MasterKeyUnavailable as exc:
        _fail(str(exc))
    crash_point("rotate.rewrapped_all")
    in_use = db.read_sync(master_key_ids_in_use)
    try:
        dropped = keyring.retain(in_use)
    except OSError as exc:
        dropped = []
        old = ", ".join(i for i in keyring.key_ids if i not in in_use and i != new_id)
        typer.echo(f"cannot write {keyring.path} ({exc.strerror}): remove key(s) {old} yourself", err=True)
    db.dispose()
    typer.echo(f"re-wrapped {count} data keys under master key {new_id}")
    if dropped:
        typer.echo(f"retired master key(s) {', '.join(dropped)} from {keyring.path}")
    typer.echo(f"the active master key now lives in {keyring.path}; {new_key_file} is no longer needed")


def main() -> None:
    app(prog_name="cargobay")


if __name__ == "__main__":
    main()
