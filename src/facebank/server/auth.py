"""API keys of the REST server, stored hashed in the gallery's SQLite file (table ``api_keys``).

A key looks like ``fbk_<id>_<secret>``: ``id`` (8 hex characters) is public and names the key in
``facebank keys list`` / ``revoke``; ``secret`` is 256 random bits. Only the sha256 of the whole
key is stored (enough for a random 256-bit secret: there is nothing to brute-force), compared in
constant time. The key itself is shown once, when it is created.

Each key has one scope, and a scope includes the ones below it:

  read   identify, detect, verify; list people, their photos and jobs
  write  read + add/rename/remove people and photos, start and cancel enrollment jobs
  admin  write + create, list and revoke keys over the API (/v1/keys)

The store uses the gallery's own connection (``SqliteGallery.connection()``): a server shares the
gallery it has open, a CLI command opens the gallery once. Nothing but SQLite opens the file (a
descriptor opened and closed outside SQLite drops the locks SQLite holds on it in this process, and
another process would then delete the WAL this one writes to: issue 17). The table is created by
migration 0002 when the gallery is opened, its ``scope`` column by the store itself (keys made
before scopes existed could read and write: they become ``write`` keys).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from facebank.gallery.base import GalleryError

if TYPE_CHECKING:
    from facebank.gallery.sqlite import SqliteGallery

log = logging.getLogger(__name__)

KEY_PREFIX = "fbk"
LAST_USED_EVERY_S = 60.0  # record last use at most this often per key (a write per request is waste)
Scope = Literal["read", "write", "admin"]
SCOPES: tuple[str, ...] = get_args(Scope)  # in order: each includes the ones before it
SCOPE_HELP = {
    "read": "identify, detect, verify; list people, their photos and jobs",
    "write": "read + add/rename/remove people and photos, start and cancel enrollment jobs",
    "admin": "write + create, list and revoke keys over the API",
}


class KeyStoreError(RuntimeError):
    """A key operation that cannot be done (unknown id, no SQLite gallery...)."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """One key as listed (never the secret). Times are ISO-8601 UTC strings."""

    id: str
    name: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    scope: str = "read"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, needed: str) -> bool:
        """True when this key's scope includes ``needed`` (read < write < admin)."""
        return scope_rank(self.scope) >= scope_rank(needed)


def scope_rank(scope: str) -> int:
    try:
        return SCOPES.index(scope)
    except ValueError:
        return -1  # an unknown scope allows nothing


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The public id inside a key, or None when it is not shaped like one of ours."""
    parts = key.split("_", 2)  # the secret itself may contain '_' (URL-safe base64)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8 or not parts[2]:
        return None
    return parts[1]


class ApiKeyStore:
    """Create, list, revoke and check API keys kept in the gallery database."""

    def __init__(self, gallery_path: str | Path | None = None, *,
                 gallery: SqliteGallery | None = None) -> None:
        """The keys of the SQLite file ``gallery_path`` (opened here, closed by ``close``), or of an
        open ``gallery`` (its connection is shared; ``close`` leaves it open)."""
        from facebank.gallery.sqlite import SqliteGallery

        if gallery is not None:
            self._gallery, self._owned = gallery, False
        else:
            loc = str(gallery_path)
            if gallery_path is None or loc.startswith(("postgresql://", "postgres://")) or loc == ":memory:":
                raise KeyStoreError("API keys are kept in a SQLite file (the gallery's by default); for a "
                                    "PostgreSQL gallery pass a keys file with --keys-db FILE")
            # opening the gallery applies every migration, 0002_api_keys included
            self._gallery, self._owned = SqliteGallery(loc), True
        self.path = self._gallery.path
        self._last_used: dict[str, float] = {}
        try:
            self._ensure_scope_column()
        except BaseException:
            self.close()
            raise

    @classmethod
    def beside(cls, gallery: object, keys_db: str | Path | None) -> ApiKeyStore:
        """The key store of a server whose gallery is ``gallery``: the gallery's own connection when
        the keys live in it (``keys_db`` None or the same file), else the SQLite file ``keys_db``."""
        from facebank.gallery.sqlite import SqliteGallery

        if isinstance(gallery, SqliteGallery):
            same = keys_db is None
            if not same:
                try:
                    same = Path(keys_db).exists() and Path(keys_db).samefile(gallery.path)
                except OSError:
                    same = False
            if same:
                return cls(gallery=gallery)
        if keys_db is None:
            raise KeyStoreError("API keys are kept in a SQLite file (the gallery's by default); for a "
                                "PostgreSQL gallery pass a keys file with --keys-db FILE")
        return cls(keys_db)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The gallery's connection; a full or read-only disk is a GalleryStorageError (one line)."""
        from facebank.gallery.sqlite import storage_error

        with self._gallery.connection() as db:
            try:
                yield db
            except sqlite3.Error as exc:
                err = storage_error(exc, self.path)
                if err is not None:
                    raise err from None
                raise

    def _ensure_scope_column(self) -> None:
        # the scope column (added here, not as a numbered migration: idempotent, under the write lock)
        with self._gallery.connection() as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(api_keys)")}
        if "scope" not in columns:
            with self._gallery.transaction() as db:
                columns = {row[1] for row in db.execute("PRAGMA table_info(api_keys)")}
                if "scope" not in columns:
                    db.execute("ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'write'")

    def close(self) -> None:
        if self._owned:
            self._gallery.close()

    def __enter__(self) -> ApiKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self, name: str = "", scope: str = "write") -> tuple[ApiKeyInfo, str]:
        """A new key: (its listing, the key itself; shown once, never stored)."""
        name = name.strip()
        if len(name) > 200 or any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in name):
            raise KeyStoreError("a key name is at most 200 printable characters")
        if scope not in SCOPES:
            raise KeyStoreError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
        with self._db() as db:
            for _ in range(5):
                key_id = secrets.token_hex(4)
                key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
                try:
                    db.execute("INSERT INTO api_keys(id, name, key_sha256, scope) VALUES (?,?,?,?)",
                                     (key_id, name, hash_key(key), scope))
                except sqlite3.IntegrityError:  # an id collision: draw again
                    continue
                break
            else:  # pragma: no cover - 5 collisions of 32 random bits
                raise KeyStoreError("could not draw a unique key id")
        log.info("created API key %s (%s), scope %s", key_id, name, scope)
        return self.get(key_id), key

    def get(self, key_id: str) -> ApiKeyInfo:
        with self._db() as db:
            row = db.execute(
                "SELECT id, name, created_at, last_used_at, revoked_at, scope FROM api_keys WHERE id=?",
                (key_id,),
            ).fetchone()
        if row is None:
            raise KeyStoreError(f"no API key with id {key_id!r}")
        return ApiKeyInfo(*row)

    def keys(self) -> list[ApiKeyInfo]:
        with self._db() as db:
            rows = db.execute(
                "SELECT id, name, created_at, last_used_at, revoked_at, scope FROM api_keys"
                " ORDER BY created_at, id"
            ).fetchall()
        return [ApiKeyInfo(*r) for r in rows]

    def revoke(self, key_id: str) -> ApiKeyInfo:
        with self._db() as db:
            cur = db.execute(
                "UPDATE api_keys SET revoked_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                " WHERE id=? AND revoked_at IS NULL", (key_id,)
            )
        info = self.get(key_id)  # raises for an unknown id
        if cur.rowcount:
            log.info("revoked API key %s", key_id)
        return info

    def active_count(self) -> int:
        with self._db() as db:
            row = db.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()
        return int(row[0])

    def verify(self, key: str | None) -> ApiKeyInfo | None:
        """The key's listing when ``key`` is a valid, unrevoked key; None otherwise."""
        if not key:
            return None
        key_id = key_id_of(key.strip())
        if key_id is None:
            return None
        with self._db() as db:
            row = db.execute(
                "SELECT id, name, created_at, last_used_at, revoked_at, scope, key_sha256 FROM api_keys"
                " WHERE id=?",
                (key_id,),
            ).fetchone()
        if row is None or row[4] is not None:
            return None
        if not hmac.compare_digest(row[6], hash_key(key.strip())):
            return None
        self._touch(key_id)
        return ApiKeyInfo(*row[:6])

    def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._last_used.get(key_id, -1e9) < LAST_USED_EVERY_S:
            return
        self._last_used[key_id] = now
        try:
            with self._db() as db:
                db.execute(
                    "UPDATE api_keys SET last_used_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id=?",
                    (key_id,),
                )
        except (sqlite3.Error, GalleryError) as exc:  # bookkeeping only: never fail a request for it
            log.warning("could not record the use of key %s: %s", key_id, exc)
