"""serve (the REST API and web page) and keys (create, list, revoke the API keys)."""

from __future__ import annotations

import ipaddress
import json
import math
from pathlib import Path

import typer

from facebank.cli.app import GalleryOpt, app, fail, make_settings, open_bank
from facebank.server.auth import SCOPE_HELP
from facebank.server.limits import DEFAULT_MAX_PIXELS as MAX_PIXELS
from facebank.server.limits import (
    DEFAULT_MAX_UPLOAD_STORAGE,
    DEFAULT_VIDEO_MAX_FRAMES,
    DEFAULT_VIDEO_MAX_SECONDS,
)

KeysDbOpt = typer.Option(None, "--keys-db", envvar="FACEBANK_KEYS_DB",
                         help="SQLite file of the API keys (default: the gallery file itself, so 'keys "
                              "create' "
                              "and 'serve' given the same --gallery share their keys; needed with a "
                              "PostgreSQL gallery)")
OPEN_READS_HELP = ("no key needed to identify, detect or verify a photo and to list people and their "
                   "photos' sha256/status; stored photos, face crops, jobs, keys and every change still "
                   "need a key")


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
    port: int = typer.Option(8000, "--port", help="port to listen on"),
    open_reads: bool = typer.Option(False, "--open-reads", help=OPEN_READS_HELP),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb", help="largest request body, in MB"),
    photos_dir: Path = typer.Option(None, "--photos-dir", help="where uploaded photos are kept "
                                    "(default: <gallery>.photos next to the gallery)"),
    enroll_root: Path = typer.Option(None, "--enroll-root", help="the folder under which enrollment jobs "
                                     "(POST /v1/jobs) may read photos; job folders are given relative to it "
                                     "(default: none, folder jobs are refused)"),
    max_pixels: int = typer.Option(None, "--max-pixels", help=f"largest photo the server decodes, in pixels "
                                   f"(bigger ones get 413; default {MAX_PIXELS:,}, or FACEBANK_MAX_PIXELS if "
                                   "lower); the photos being decoded or worked on at once never hold more "
                                   "than this"),
    pipelines: int = typer.Option(1, "--pipelines", help="face pipelines working in parallel (memory: "
                                  "one set of models each)"),
    job_workers: int = typer.Option(1, "--job-workers", help="worker processes per enrollment job "
                                    "(1 = share the server's pipelines)"),
    threshold: float = typer.Option(None, "--threshold", "-t", help="default identification threshold (L2)"),
    detector: str = typer.Option(None, "--detector", help="face detector (default from settings)"),
    embedder: str = typer.Option(None, "--embedder", help="embedder: dlib, fast or onnx"),
    onnx_model: str = typer.Option(None, "--onnx-model", help="ONNX face model file (with --embedder onnx)"),
    keys_db: Path = KeysDbOpt,
    video_max_frames: int = typer.Option(None, "--video-max-frames", help="most frames a video job may "
                                         f"decode (all of them, not only the analysed ones; default "
                                         f"{DEFAULT_VIDEO_MAX_FRAMES:,} or FACEBANK_VIDEO_MAX_FRAMES); past "
                                         "it the job fails with reason budget_exceeded"),
    video_max_seconds: float = typer.Option(None, "--video-max-seconds", help="most wall seconds of work per "
                                            f"video job (default {DEFAULT_VIDEO_MAX_SECONDS:g} or "
                                            "FACEBANK_VIDEO_MAX_SECONDS); past it the job fails with reason "
                                            "budget_exceeded"),
    max_upload_storage_mb: float = typer.Option(DEFAULT_MAX_UPLOAD_STORAGE / 1e6, "--max-upload-storage-mb",
                                                help="disk space for uploaded videos waiting for their job, "
                                                "in MB, all together (kept under the photos folder; an "
                                                "upload that does not fit gets 507, retry later)"),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level"),
) -> None:
    """Run the REST API (OpenAPI docs at /docs) and the web page (at /) on GALLERY."""
    import uvicorn

    from facebank.server import ServerConfig, create_app
    from facebank.server.auth import ApiKeyStore, KeyStoreError

    if not 1 <= port <= 65535:
        raise fail(f"--port {port}: must be a port number from 1 to 65535", 2)
    settings = make_settings(gallery, threshold=threshold, detector=detector, embedder=embedder,
                             onnx_model=onnx_model, video_max_frames=video_max_frames,
                             video_max_seconds=video_max_seconds)
    upload_ok = math.isfinite(max_upload_mb) and max_upload_mb > 0
    if not upload_ok or pipelines < 1 or job_workers < 1 or (max_pixels is not None and max_pixels < 1):
        raise fail("--max-upload-mb and --max-pixels must be > 0, --pipelines and --job-workers >= 1", 2)
    if not 0 < max_upload_storage_mb < float("inf"):
        raise fail(f"--max-upload-storage-mb must be a number > 0, not {max_upload_storage_mb}", 2)
    open_bank(settings, must_exist=True).close()  # serve never creates a gallery; a foreign file is refused
    if enroll_root is not None and not enroll_root.is_dir():
        raise fail(f"--enroll-root {enroll_root} is not a folder", 2)
    config = ServerConfig(settings=settings, max_upload_bytes=int(max_upload_mb * 1_000_000),
                          open_reads=open_reads, photos_dir=photos_dir, enroll_root=enroll_root,
                          pipelines=pipelines, job_workers=job_workers, keys_db=keys_db,
                          max_pixels=max_pixels,
                          max_upload_storage_bytes=int(max_upload_storage_mb * 1_000_000))
    try:
        with ApiKeyStore(config.resolved_keys_db()) as keys:
            active = keys.active_count()
    except (KeyStoreError, OSError) as exc:
        raise fail(str(exc)) from None
    if not active:
        typer.echo("note: no API key yet; write routes (and read routes unless --open-reads) will answer "
                   f"401. Make one with: facebank keys create --gallery {settings.gallery} --scope read",
                   err=True)
    if not _is_loopback(host):
        typer.echo(f"warning: listening on {host}: other machines can reach this server; use HTTPS in front "
                   "of it (a reverse proxy) so keys and photos do not travel in clear text", err=True)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"facebank serving {settings.gallery} on http://{shown}:{port}/ (API docs at /docs)", err=True)
    # Ctrl-C / SIGTERM: requests in flight get 5 s, a running job stops after its photo in flight
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, server_header=False,
                timeout_graceful_shutdown=5)


keys_app = typer.Typer(help="API keys of the server: create (shown once), list, revoke.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _store(gallery: str | None, keys_db: Path | None):
    from facebank.gallery.base import GalleryError, GalleryStorageError
    from facebank.server.auth import ApiKeyStore, KeyStoreError

    try:
        return ApiKeyStore(str(keys_db) if keys_db is not None else make_settings(gallery).gallery)
    except (KeyStoreError, OSError, GalleryStorageError) as exc:
        raise fail(str(exc)) from None
    except GalleryError as exc:  # not a gallery file, a folder...
        raise fail(str(exc), 2) from None


SCOPE_OPT_HELP = "what the key may do: " + "; ".join(f"{k} = {v}" for k, v in SCOPE_HELP.items())


@keys_app.command("create")
def keys_create(name: str = typer.Option("", "--name", "-n", help="a label: who or what uses the key"),
                scope: str = typer.Option("read", "--scope", "-s", help=SCOPE_OPT_HELP),
                gallery: str = GalleryOpt, keys_db: Path = KeysDbOpt) -> None:
    """Make a key and print it (only now: it is stored hashed in the gallery, or in --keys-db).

    A server accepts the key when it serves the same gallery (or --keys-db):
    facebank keys create --gallery G.db ... then facebank serve --gallery G.db."""
    from facebank.gallery.base import GalleryStorageError
    from facebank.server.auth import SCOPES, KeyStoreError

    if scope not in SCOPES:
        raise fail(f"--scope must be one of {', '.join(SCOPES)}, not {scope!r}", 2)
    with _store(gallery, keys_db) as store:
        try:
            info, key = store.create(name, scope)
        except KeyStoreError as exc:
            raise fail(str(exc), 2) from None
        except GalleryStorageError as exc:  # a full or read-only disk: nothing was stored
            raise fail(str(exc)) from None
        where = store.path
    serve = f"facebank serve --{'keys-db' if keys_db is not None else 'gallery'} {where}"
    typer.echo(key)
    typer.echo(f"created {scope} key {info.id}{f' ({info.name})' if info.name else ''} in {where}: keep it "
               f"now, it cannot be shown again. Send it as the X-API-Key header to '{serve}'.", err=True)


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
        typer.echo(f"{k.id}\t{k.scope}\t{k.name or '-'}\tcreated {k.created_at}\t"
                   f"last used {k.last_used_at or 'never'}\t"
                   f"{state}")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="the key's id (see 'facebank keys list')"),
                gallery: str = GalleryOpt, keys_db: Path = KeysDbOpt) -> None:
    """Revoke a key: it stops working at once, also on a running server."""
    from facebank.gallery.base import GalleryStorageError
    from facebank.server.auth import KeyStoreError

    with _store(gallery, keys_db) as store:
        try:
            info = store.revoke(key_id)
        except (KeyStoreError, GalleryStorageError) as exc:
            raise fail(str(exc)) from None
    typer.echo(f"revoked key {info.id}{f' ({info.name})' if info.name else ''}")
