"""serve (the REST API and web page) and keys (create, list, revoke the API keys)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import typer

from facebank.cli.app import GalleryOpt, app, fail, make_settings

KeysDbOpt = typer.Option(None, "--keys-db", envvar="FACEBANK_KEYS_DB",
                         help="SQLite file of the API keys (default: the gallery file; needed with a "
                              "PostgreSQL gallery)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    gallery: str = GalleryOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback by default; "
                             "0.0.0.0 = every interface)"),
    port: int = typer.Option(8000, "--port", "-p"),
    open_reads: bool = typer.Option(False, "--open-reads", help="identify/detect/verify and listing without "
                                    "a key (writes always need one)"),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb", help="largest request body, in MB"),
    photos_dir: Path = typer.Option(None, "--photos-dir", help="where uploaded photos are kept "
                                    "(default: <gallery>.photos next to the gallery)"),
    enroll_root: Path = typer.Option(None, "--enroll-root", help="enrollment jobs may only read folders "
                                     "inside this one (default: any folder the server can read)"),
    pipelines: int = typer.Option(1, "--pipelines", help="face pipelines working in parallel (memory: "
                                  "one set of models each)"),
    job_workers: int = typer.Option(1, "--job-workers", help="worker processes per enrollment job "
                                    "(1 = share the server's pipelines)"),
    threshold: float = typer.Option(None, "--threshold", "-t", help="default identification threshold (L2)"),
    detector: str = typer.Option(None, "--detector", help="face detector (default from settings)"),
    embedder: str = typer.Option(None, "--embedder", help="embedder: dlib, fast or onnx"),
    onnx_model: str = typer.Option(None, "--onnx-model", help="ONNX face model file (with --embedder onnx)"),
    keys_db: Path = KeysDbOpt,
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level"),
) -> None:
    """Run the REST API (OpenAPI docs at /docs) and the web page (at /) on GALLERY."""
    import uvicorn

    from facebank.server import ServerConfig, create_app
    from facebank.server.auth import ApiKeyStore, KeyStoreError

    settings = make_settings(gallery, threshold=threshold, detector=detector, embedder=embedder,
                             onnx_model=onnx_model)
    if max_upload_mb <= 0 or pipelines < 1 or job_workers < 1:
        raise fail("--max-upload-mb must be > 0, --pipelines and --job-workers >= 1")
    config = ServerConfig(settings=settings, max_upload_bytes=int(max_upload_mb * 1_000_000),
                          open_reads=open_reads, photos_dir=photos_dir, enroll_root=enroll_root,
                          pipelines=pipelines, job_workers=job_workers, keys_db=keys_db)
    try:
        with ApiKeyStore(config.resolved_keys_db()) as keys:
            active = keys.active_count()
    except (KeyStoreError, OSError) as exc:
        raise fail(str(exc)) from None
    if not active:
        typer.echo("note: no API key yet; write routes (and read routes unless --open-reads) will answer "
                   f"401. Make one with: facebank keys create --gallery {settings.gallery}", err=True)
    if not _is_loopback(host):
        typer.echo(f"warning: listening on {host}: other machines can reach this server; use HTTPS in front "
                   "of it (a reverse proxy) so keys and photos do not travel in clear text", err=True)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"facebank serving {settings.gallery} on http://{shown}:{port}/ (API docs at /docs)", err=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, server_header=False)


keys_app = typer.Typer(help="API keys of the server: create (shown once), list, revoke.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _store(gallery: str | None, keys_db: Path | None):
    from facebank.server.auth import ApiKeyStore, KeyStoreError

    try:
        return ApiKeyStore(str(keys_db) if keys_db is not None else make_settings(gallery).gallery)
    except (KeyStoreError, OSError) as exc:
        raise fail(str(exc)) from None


@keys_app.command("create")
def keys_create(name: str = typer.Option("", "--name", "-n", help="a label: who or what uses the key"),
                gallery: str = GalleryOpt, keys_db: Path = KeysDbOpt) -> None:
    """Make a key and print it (only now: it is stored hashed)."""
    from facebank.server.auth import KeyStoreError

    with _store(gallery, keys_db) as store:
        try:
            info, key = store.create(name)
        except KeyStoreError as exc:
            raise fail(str(exc)) from None
    typer.echo(key)
    typer.echo(f"created key {info.id}{f' ({info.name})' if info.name else ''}: keep it now, it cannot be "
               "shown again. Send it as the X-API-Key header.", err=True)


@keys_app.command("list")
def keys_list(gallery: str = GalleryOpt, keys_db: Path = KeysDbOpt,
              as_json: bool = typer.Option(False, "--json")) -> None:
    """All keys (ids and names, never the secrets)."""
    with _store(gallery, keys_db) as store:
        keys = store.keys()
    if as_json:
        typer.echo(json.dumps([{**k.__dict__, "active": k.active} for k in keys], ensure_ascii=False))
        return
    if not keys:
        typer.echo("no API keys; make one with: facebank keys create")
    for k in keys:
        state = "active" if k.active else f"revoked {k.revoked_at}"
        typer.echo(f"{k.id}\t{k.name or '-'}\tcreated {k.created_at}\tlast used {k.last_used_at or 'never'}\t"
                   f"{state}")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="the key's id (see 'facebank keys list')"),
                gallery: str = GalleryOpt, keys_db: Path = KeysDbOpt) -> None:
    """Revoke a key: it stops working at once, also on a running server."""
    from facebank.server.auth import KeyStoreError

    with _store(gallery, keys_db) as store:
        try:
            info = store.revoke(key_id)
        except KeyStoreError as exc:
            raise fail(str(exc)) from None
    typer.echo(f"revoked key {info.id}{f' ({info.name})' if info.name else ''}")
