"""A crash-consistency check of one SQLite gallery shared by many processes (Jepsen-style, loopback only).

Each round, several writers change the gallery at once: library writer processes (the code paths of
the CLI: ``SqliteGallery`` people, renames, photos with faces, merges; ``ApiKeyStore`` keys), a thread
of the checking process writing over HTTP to a real ``facebank serve`` process, and now and then a
real CLI command. Every writer appends ``operation <TAB> begin`` to its own log before an operation
and ``operation <TAB> ack`` once it was acknowledged (the call returned; HTTP 2xx; exit 0 with its
output line), each line fsync'ed before the next operation. One writer (sometimes the server) is
SIGKILLed at a random moment. After the round, the gallery must hold every acknowledged operation,
the one operation a killed writer had begun may be there or not but never half (a photo is there
with all its faces or not at all), and SQLite's ``integrity_check`` and ``foreign_key_check`` are
clean. The ``Torture`` class runs the rounds; ``TortureFigures`` is what a run measured.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FACES_PER_PHOTO = 3


@dataclass(frozen=True)
class TortureFigures:
    """What a torture run measured (counts; wall time in seconds)."""

    rounds: int
    acknowledged_writes: int
    unacknowledged_begun: int
    kills: int
    server_kills: int
    cli_commands: int
    enrolled_photos: int
    violations: tuple[str, ...]
    wall_s: float


def _note(fd: int, line: str) -> None:
    os.write(fd, (line + "\n").encode("utf-8"))
    os.fsync(fd)


def _gallery_model(db: sqlite3.Connection) -> tuple[str, int]:
    row = db.execute("SELECT value FROM meta WHERE key='model_id'").fetchone()
    dim = db.execute("SELECT dim FROM faces LIMIT 1").fetchone()
    return (row[0] if row else "torture-model"), (int(dim[0]) if dim else 8)


def people_writer(gallery: str, log_path: str, ns: str, stop_path: str, max_ops: int, seed: int,
                  photos: bool = True) -> None:
    """Add people, rename them, give them photos with faces (unless ``photos`` is False: while a real
    enroll sets the gallery's model), merge them into one (a child process)."""
    from facebank.gallery.base import FaceRecord, PhotoRecord
    from facebank.gallery.sqlite import SqliteGallery

    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    rng = np.random.default_rng(seed)
    g = SqliteGallery(gallery)
    with g.connection() as db:
        model_id, dim = _gallery_model(db)
    sink = f"{ns}sink"
    _note(fd, f"add\t{sink}\tbegin")
    g.add_person(sink)
    _note(fd, f"add\t{sink}\tack")
    for i in range(max_ops):
        if os.path.exists(stop_path):
            break
        step, k = i % 4, i - i % 4
        if step == 0:
            op = f"add\t{ns}p{k}"
            _note(fd, op + "\tbegin")
            g.add_person(f"{ns}p{k}")
        elif step == 1:
            op = f"rename\t{ns}p{k}\t{ns}q{k}"
            _note(fd, op + "\tbegin")
            g.rename_person(f"{ns}p{k}", f"{ns}q{k}")
        elif step == 2:
            if not photos:
                continue
            sha = hashlib.sha256(f"{ns}{k}".encode()).hexdigest()
            op = f"photo\t{ns}q{k}\t{sha}"
            _note(fd, op + "\tbegin")
            vecs = rng.normal(size=(FACES_PER_PHOTO, dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            faces = [FaceRecord((0.0, 0.0, 10.0, 10.0), v, "torture", 1.0) for v in vecs]
            photo = PhotoRecord(f"{ns}q{k}", f"torture/{ns}/{sha}.jpg", sha, 1, FACES_PER_PHOTO, 1, "ok")
            g.add_photos([(photo, faces)], model_id)
        else:
            op = f"merge\t{ns}q{k}\t{sink}"
            _note(fd, op + "\tbegin")
            g.merge_people(f"{ns}q{k}", sink)
        _note(fd, op + "\tack")
    g.close()
    os.close(fd)


def keys_writer(gallery: str, log_path: str, ns: str, stop_path: str, max_ops: int, seed: int,
                photos: bool = True) -> None:
    """Create API keys (the code path of ``facebank keys create``), revoke every third (a child process)."""
    from facebank.server.auth import ApiKeyStore

    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with ApiKeyStore(gallery) as store:
        last = None
        for i in range(max_ops):
            if os.path.exists(stop_path):
                break
            if i % 3 == 2 and last is not None:
                op = f"revoke\t{last}"
                _note(fd, op + "\tbegin")
                store.revoke(last)
            else:
                op = f"key\t{ns}k{i}"
                _note(fd, op + "\tbegin")
                info, _ = store.create(f"{ns}k{i}", "read")
                last = info.id
                op = f"key\t{ns}k{i}\t{info.id}"
            _note(fd, op + "\tack")
    os.close(fd)


@dataclass
class _State:
    """What one namespace of the gallery must hold."""

    people: set[str] = field(default_factory=set)
    photos: dict[str, str] = field(default_factory=dict)  # sha256 -> person
    keys: dict[str, bool] = field(default_factory=dict)  # key id -> revoked

    def copy(self) -> _State:
        return _State(set(self.people), dict(self.photos), dict(self.keys))

    def apply(self, parts: list[str]) -> None:
        kind = parts[0]
        if kind == "add":
            self.people.add(parts[1])
        elif kind == "rename":
            self.people.discard(parts[1])
            self.people.add(parts[2])
            self.photos = {s: (parts[2] if p == parts[1] else p) for s, p in self.photos.items()}
        elif kind == "photo":
            self.photos[parts[2]] = parts[1]
        elif kind == "merge":
            self.people.discard(parts[1])
            self.photos = {s: (parts[2] if p == parts[1] else p) for s, p in self.photos.items()}
        elif kind == "key" and len(parts) > 2:
            self.keys[parts[2]] = False
        elif kind == "revoke":
            self.keys[parts[1]] = True


def replay(log_path: Path) -> tuple[_State, list[str] | None, int]:
    """The state the acknowledged operations of one log lead to, the operation begun but not
    acknowledged (None: none), and the number of acknowledged operations."""
    state, pending, acked = _State(), None, 0
    if not log_path.exists():
        return state, None, 0
    for line in log_path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if parts[-1] == "begin":
            pending = parts[:-1]
        elif parts[-1] == "ack":
            state.apply(parts[:-1])
            pending, acked = None, acked + 1
        # a torn last line (killed mid-write) is neither: it was never acknowledged
    return state, pending, acked


def observed(db: sqlite3.Connection, ns: str, key_ids: set[str]) -> _State:
    """What the gallery holds of namespace ``ns``."""
    like = ns.replace("_", r"\_") + "%"
    people = {r[0] for r in db.execute(r"SELECT name FROM people WHERE name LIKE ? ESCAPE '\'", (like,))}
    photos = {sha: person for sha, person in db.execute(
        r"SELECT ph.sha256, p.name FROM photos ph LEFT JOIN people p ON p.id=ph.person_id"
        r" WHERE ph.path LIKE ? ESCAPE '\'", (f"torture/{like}",))}
    keys = {}
    for key_id, revoked in db.execute(
            r"SELECT id, revoked_at IS NOT NULL FROM api_keys WHERE name LIKE ? ESCAPE '\'", (like,)):
        if key_id in key_ids:
            keys[key_id] = bool(revoked)
    return _State(people, photos, keys)


def check_namespace(db: sqlite3.Connection, ns: str, log_path: Path) -> tuple[list[str], int, int]:
    """Violations of namespace ``ns`` (empty: every acknowledged operation is there and the one
    begun but unacknowledged is there entirely or not at all), acknowledged and begun-only counts."""
    state, pending, acked = replay(log_path)
    allowed = [state]
    if pending is not None:
        alt = state.copy()
        alt.apply(pending)
        allowed.append(alt)
    key_ids = set(state.keys)
    seen = observed(db, ns, key_ids)
    if pending is not None and pending[0] == "key":  # an unacknowledged key: there once or not at all
        n = db.execute("SELECT count(*) FROM api_keys WHERE name=?", (pending[1],)).fetchone()[0]
        if n > 1:
            return [f"{ns}: key {pending[1]} stored {n} times"], acked, 1
    if not any(seen.people == a.people and seen.photos == a.photos and seen.keys == a.keys for a in allowed):
        missing = sorted(state.people - seen.people)[:3] + sorted(set(state.photos) - set(seen.photos))[:3]
        extra = sorted(seen.people - state.people)[:3]
        return [f"{ns}: gallery differs from the acknowledged log (missing {missing}, extra {extra}, "
                f"pending {pending})"], acked, int(pending is not None)
    return [], acked, int(pending is not None)


def global_violations(db: sqlite3.Connection) -> list[str]:
    try:
        return _global_violations(db)
    except sqlite3.DatabaseError as exc:  # "database disk image is malformed"
        return [f"the gallery cannot be read: {exc}"]


def _global_violations(db: sqlite3.Connection) -> list[str]:
    bad = []
    result = db.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        bad.append(f"integrity_check: {result}")
    if db.execute("PRAGMA foreign_key_check").fetchall():
        bad.append("foreign_key_check: dangling references")
    n = db.execute("SELECT count(*) FROM photos ph WHERE ph.status='ok' AND NOT EXISTS"
                   " (SELECT 1 FROM faces f WHERE f.photo_id=ph.id)").fetchone()[0]
    if n:
        bad.append(f"{n} photos marked ok without their faces")
    n = db.execute("SELECT count(*) FROM photos ph WHERE ph.path LIKE 'torture/%' AND"
                   " (SELECT count(*) FROM faces f WHERE f.photo_id=ph.id) != ?",
                   (FACES_PER_PHOTO,)).fetchone()[0]
    if n:
        bad.append(f"{n} photos with only part of their faces")
    return bad


class Torture:
    """Rounds of concurrent writers with one SIGKILL each, checked after each round.

    ``cli``: the command that runs facebank (``[python, -m, facebank]``); ``enroll_folder``: a few
    photos enrolled by a real ``facebank enroll`` in the first round (None: no enroll round)."""

    def __init__(self, workdir: Path, rounds: int = 20, round_s: float = 0.6, writers: int = 3,
                 max_ops: int = 400, seed: int = 17, enroll_folder: Path | None = None,
                 server_kill_every: int = 8, cli_every: int = 6, env: dict[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.gallery = self.workdir / "torture.db"
        self.rounds, self.round_s, self.writers, self.max_ops = rounds, round_s, writers, max_ops
        self.rng = random.Random(seed)
        self.enroll_folder = enroll_folder
        self.server_kill_every, self.cli_every = server_kill_every, cli_every
        self.env = {**os.environ, **(env or {})}
        self.cli = [sys.executable, "-m", "facebank"]
        self.server = None
        self.admin_key = ""
        self._logs: dict[str, Path] = {}
        self.kills = self.server_kills = self.cli_commands = self.enrolled = 0
        self.violations: list[str] = []
        self._ctx = multiprocessing.get_context("fork")

    # -- pieces -----------------------------------------------------------------------------------
    def _log(self, ns: str) -> Path:
        path = self.workdir / "logs" / f"{ns}.log"
        self._logs[ns] = path
        return path

    def _start_server(self) -> None:
        from facebank.server.testing import ServerProcess

        self.server = ServerProcess(["--gallery", str(self.gallery)], env=self.env).start(ready=False)

    def _run_cli(self, ns: str, args: list[str], expect: str, timeout: float = 300.0) -> subprocess.Popen:
        """A real CLI command; acknowledged when it exits 0 with ``expect`` in its output."""
        self.cli_commands += 1
        fd = os.open(self._log(ns), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._cli_jobs.append((ns, fd, expect))
        return subprocess.Popen([*self.cli, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def _http_writer(self, ns: str, stop: threading.Event, down: Callable[[], bool]) -> None:
        import httpx

        fd = os.open(self._log(ns), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            with httpx.Client(base_url=self.server.url, headers={"X-API-Key": self.admin_key},
                              timeout=30) as client:
                for i in range(self.max_ops):
                    if stop.is_set():
                        break
                    if i % 2 == 0:
                        op, call = f"add\t{ns}n{i}", lambda i=i: client.post(
                            "/v1/people", json={"name": f"{ns}n{i}"})
                    else:
                        op, call = f"rename\t{ns}n{i - 1}\t{ns}m{i - 1}", lambda i=i: client.patch(
                            f"/v1/people/{ns}n{i - 1}", json={"name": f"{ns}m{i - 1}"})
                    _note(fd, op + "\tbegin")
                    try:
                        r = call()
                    except httpx.TransportError:
                        if not down():
                            self.violations.append(f"{ns}: the server stopped answering ({op})")
                        break
                    if not 200 <= r.status_code < 300:
                        if not down():
                            self.violations.append(f"{ns}: {op} answered {r.status_code}: {r.text[:200]}")
                        break
                    _note(fd, op + "\tack")
        finally:
            os.close(fd)

    # -- one round --------------------------------------------------------------------------------
    def round(self, r: int) -> None:
        stop_path = self.workdir / f"stop-{r}"
        procs: list[tuple[str, multiprocessing.Process | subprocess.Popen]] = []
        self._cli_jobs: list[tuple[str, int, str]] = []
        enroll_round = r == 0 and self.enroll_folder is not None
        for w in range(self.writers):  # fork before any thread of this round starts
            ns = f"R{r}W{w}_"
            target = keys_writer if w == self.writers - 1 else people_writer
            args = (str(self.gallery), str(self._log(ns)), ns, str(stop_path), self.max_ops,
                    self.rng.randrange(2**31), not enroll_round)
            p = self._ctx.Process(target=target, args=args)
            p.start()
            procs.append((ns, p))
        if enroll_round:
            args = ["enroll", str(self.enroll_folder), "--person", "E_enrolled",
                    "--gallery", str(self.gallery), "--workers", "1"]
            procs.append(("E_", self._run_cli("E_", args, "enrolled ")))
        elif self.cli_every and r % self.cli_every == 1:
            ns = f"R{r}C_"
            self._cli_rename_setup(ns)
            procs.append((ns, self._run_cli(ns, ["people", "rename", f"{ns}a", f"{ns}b", "--gallery",
                                                 str(self.gallery)], f"renamed {ns}a to {ns}b")))
        kill_server = (not enroll_round and self.server_kill_every
                       and r % self.server_kill_every == self.server_kill_every - 1)
        server_down = threading.Event()
        stop = threading.Event()
        http_ns = f"R{r}H_"
        http = threading.Thread(target=self._http_writer, args=(http_ns, stop, server_down.is_set))
        http.start()
        victims = [p for ns, p in procs if not (enroll_round and ns == "E_")]
        victim = None if kill_server else self.rng.choice(victims)
        kill_at = self.rng.uniform(0.1, 0.9) * self.round_s
        time.sleep(kill_at)
        if kill_server:
            server_down.set()
            os.kill(self.server.proc.pid, signal.SIGKILL)
            self.server.proc.wait(10)
            self.server_kills += 1
        else:
            os.kill(victim.pid, signal.SIGKILL)
        self.kills += 1
        time.sleep(max(0.0, self.round_s - kill_at))
        stop_path.touch()
        stop.set()
        http.join(60)
        deadline = time.monotonic() + 300
        for ns, p in procs:
            left = max(1.0, deadline - time.monotonic())
            if isinstance(p, subprocess.Popen):
                try:
                    out, err = p.communicate(timeout=left)
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, err = p.communicate()
                    self.violations.append(f"{ns}: the CLI command did not finish")
                self._cli_done(ns, p.returncode, out, err, killed=p is victim)
            else:
                p.join(left)
                if p.is_alive():
                    p.kill()
                    p.join()
                    self.violations.append(f"{ns}: the writer did not finish")
                elif p.exitcode != 0 and p is not victim:
                    self.violations.append(f"{ns}: the writer failed (exit {p.exitcode})")
        if kill_server:
            self._start_server()
        self._check(r)

    def _cli_rename_setup(self, ns: str) -> None:
        from facebank.gallery.sqlite import SqliteGallery

        fd = os.open(self._log(ns), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _note(fd, f"add\t{ns}a\tbegin")
        with SqliteGallery(self.gallery) as g:
            g.add_person(f"{ns}a")
        _note(fd, f"add\t{ns}a\tack")
        _note(fd, f"rename\t{ns}a\t{ns}b\tbegin")
        os.close(fd)

    def _cli_done(self, ns: str, code: int, out: str, err: str, killed: bool) -> None:
        for job_ns, fd, expect in self._cli_jobs:
            if job_ns != ns:
                continue
            if code == 0 and expect in out:
                if ns == "E_":
                    self.enrolled = int(out.split("enrolled ", 1)[1].split()[0])
                    _note(fd, f"enroll\t{self.enrolled}\tack")
                else:
                    _note(fd, f"rename\t{ns}a\t{ns}b\tack")
            elif not killed:
                self.violations.append(f"{ns}: the CLI command failed (exit {code}): {err.strip()[-300:]}")
            os.close(fd)

    def _check(self, r: int) -> None:
        db = sqlite3.connect(f"file:{self.gallery}?mode=ro", uri=True, timeout=30)
        try:
            bad = global_violations(db)
            for ns, path in self._logs.items():
                if ns == "E_":
                    continue
                try:
                    found, _, _ = check_namespace(db, ns, path)
                except sqlite3.DatabaseError as exc:
                    found = [f"{ns}: the gallery cannot be read: {exc}"]
                bad.extend(found)
            if self.enroll_folder is not None and r >= 0 and self.enrolled:
                n = db.execute("SELECT count(*) FROM photos ph JOIN people p ON p.id=ph.person_id"
                               " WHERE p.name='E_enrolled'").fetchone()[0]
                if n < self.enrolled:
                    bad.append(f"enroll: {self.enrolled} photos acknowledged, {n} stored")
        finally:
            db.close()
        if bad:
            log.warning("round %d: %s", r, "; ".join(bad))
        self.violations.extend(f"round {r}: {b}" for b in bad)

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> TortureFigures:
        from facebank.gallery.sqlite import SqliteGallery
        from facebank.server.auth import ApiKeyStore

        t0 = time.perf_counter()
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        SqliteGallery(self.gallery).close()
        with ApiKeyStore(self.gallery) as store:
            _, self.admin_key = store.create("torture", "admin")
        self._start_server()
        try:
            for r in range(self.rounds):
                self.round(r)
        finally:
            if self.server is not None:
                self.server.stop()
        acked = begun = 0
        db = sqlite3.connect(f"file:{self.gallery}?mode=ro", uri=True, timeout=30)
        try:
            for path in self._logs.values():
                _, pending, n = replay(path)
                acked += n
                begun += int(pending is not None)
            self.violations.extend(f"after the last round: {b}" for b in global_violations(db))
        finally:
            db.close()
        return TortureFigures(rounds=self.rounds, acknowledged_writes=acked, unacknowledged_begun=begun,
                              kills=self.kills, server_kills=self.server_kills,
                              cli_commands=self.cli_commands,
                              enrolled_photos=self.enrolled, violations=tuple(self.violations),
                              wall_s=time.perf_counter() - t0)
