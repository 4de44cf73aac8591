"""API keys: made, listed and revoked with the CLI, stored hashed in the gallery (migration 0002)."""

from __future__ import annotations

import json
import logging
import sqlite3
from importlib import resources

import pytest
from typer.testing import CliRunner

from facebank.cli import app
from facebank.server.auth import ApiKeyStore, hash_key, key_id_of


@pytest.fixture
def cli():
    runner = CliRunner()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield lambda *args: runner.invoke(app, list(args))
    root.handlers[:] = handlers  # the CLI's callback installs its own log handler
    root.setLevel(level)


def test_keys_create_prints_a_key_once_that_verifies_and_is_stored_hashed(cli, tmp_path):
    gallery = tmp_path / "g.db"
    result = cli("keys", "create", "--name", "web page", "--gallery", str(gallery))
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[0]
    assert key.startswith("fbk_") and len(key) > 40
    with ApiKeyStore(gallery) as store:
        info = store.verify(key)
        assert info is not None and info.name == "web page" and info.id == key_id_of(key)
        assert store.verify(key + "x") is None and store.verify(key[:-1]) is None
    wal = tmp_path / "g.db-wal"
    raw = gallery.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    secret = key.split("_", 2)[2]
    assert secret.encode() not in raw  # never the secret...
    with sqlite3.connect(gallery) as db:
        stored = db.execute("SELECT key_sha256 FROM api_keys WHERE id=?", (key_id_of(key),)).fetchone()[0]
    assert stored == hash_key(key)  # ...only its hash


def test_keys_list_shows_ids_and_names_never_secrets(cli, tmp_path):
    g = str(tmp_path / "g.db")
    names = ("alice", "김지수 laptop")
    keys = [cli("keys", "create", "--name", n, "--gallery", g).stdout.strip() for n in names]
    result = cli("keys", "list", "--json", "--gallery", g)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [k["name"] for k in listed] == ["alice", "김지수 laptop"]
    assert {k["id"] for k in listed} == {key_id_of(k) for k in keys}
    assert all(k["active"] and k["revoked_at"] is None for k in listed)
    text = cli("keys", "list", "--gallery", g).stdout
    assert all(k.split("_", 2)[2] not in text for k in keys)


def test_keys_revoke_makes_a_key_invalid_and_unknown_ids_fail(cli, tmp_path):
    g = str(tmp_path / "g.db")
    key = cli("keys", "create", "--gallery", g).stdout.strip()
    result = cli("keys", "revoke", key_id_of(key), "--gallery", g)
    assert result.exit_code == 0, result.output
    with ApiKeyStore(g) as store:
        assert store.verify(key) is None
        assert store.active_count() == 0
    assert cli("keys", "revoke", "deadbeef", "--gallery", g).exit_code == 1


def test_an_existing_version_1_gallery_gains_the_api_keys_table(tmp_path):
    path = tmp_path / "old.db"
    first = (resources.files("facebank.gallery") / "migrations" / "0001_initial.sql").read_text()
    with sqlite3.connect(path) as db:
        db.executescript(first)
        db.execute("INSERT INTO people(name) VALUES ('Ada')")
        db.execute("PRAGMA user_version=1")
    with ApiKeyStore(path) as store:
        _, key = store.create("after upgrade")
        assert store.verify(key) is not None
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 2
        assert db.execute("SELECT name FROM people").fetchall() == [("Ada",)]


def test_keys_need_a_sqlite_gallery(tmp_path):
    from facebank.server.auth import KeyStoreError

    with pytest.raises(KeyStoreError):
        ApiKeyStore("postgresql://localhost/facebank")


def test_keys_have_a_scope_read_by_default_shown_by_keys_list(cli, tmp_path):
    g = str(tmp_path / "g.db")
    plain = cli("keys", "create", "--gallery", g).stdout.strip()
    admin = cli("keys", "create", "--gallery", g, "--scope", "admin", "--name", "ops").stdout.strip()
    with ApiKeyStore(g) as store:
        assert store.verify(plain).scope == "read" and store.verify(admin).scope == "admin"
        assert store.verify(plain).allows("read") and not store.verify(plain).allows("write")
        assert store.verify(admin).allows("write") and store.verify(admin).allows("admin")
    listed = {k["id"]: k["scope"] for k in json.loads(cli("keys", "list", "--json", "--gallery", g).stdout)}
    assert listed == {key_id_of(plain): "read", key_id_of(admin): "admin"}
    assert "\tadmin\tops\t" in cli("keys", "list", "--gallery", g).stdout
    assert cli("keys", "create", "--gallery", g, "--scope", "everything").exit_code == 2


def test_keys_made_before_scopes_keep_what_they_could_do_read_and_write(tmp_path):
    path = tmp_path / "old.db"
    with ApiKeyStore(path) as store:
        _, key = store.create("old")
    with sqlite3.connect(path) as db:  # the table as version 2 made it: no scope column
        db.execute("ALTER TABLE api_keys DROP COLUMN scope")
    with ApiKeyStore(path) as store:
        info = store.verify(key)
    assert info is not None and info.scope == "write"
