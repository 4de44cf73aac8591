"""Run a real facebank server on a free loopback port in a thread (for tests and scripts).

    with LiveServer(ServerConfig(Settings(gallery="g.db"))) as server:
        httpx.get(server.url + "/v1/health")
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from facebank.server.app import create_app
from facebank.server.context import ServerConfig
from facebank.settings import Settings

if TYPE_CHECKING:
    import subprocess

    import uvicorn
    from fastapi import FastAPI


class LiveServer:
    def __init__(self, config: ServerConfig, host: str = "127.0.0.1") -> None:
        self.config = config
        self.host = host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self.app: FastAPI | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 180.0) -> LiveServer:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        self.app = app = create_app(self.config)
        self._server = server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name=f"facebank-server-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the server stopped during start-up (see the log)")
            try:
                if httpx.get(self.url + "/v1/ready", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"the server was not ready within {timeout:.0f} s")

    def stop(self, timeout: float = 30.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def copy_gallery(src: str | Path, dst: str | Path) -> Path:
    """A consistent copy of a SQLite gallery (WAL included), via SQLite's backup API."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(str(src)) as a, sqlite3.connect(str(dst)) as b:
        a.backup(b)
    a.close()
    b.close()
    return dst


def enrolled_gallery(path: str | Path, folder: str | Path, settings: Settings | None = None) -> Path:
    """``path`` holding ``folder`` enrolled, made once (a marker file records a finished enrollment),
    so several test modules of one session share one enrollment."""
    from facebank.api import FaceBank

    path = Path(path)
    marker = path.with_name(path.name + ".done")
    with _ENROLL_LOCK:
        if not marker.exists():
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                leftover.unlink(missing_ok=True)
            s = (settings or Settings()).model_copy(update={"gallery": str(path)})
            with FaceBank(settings=s) as bank:
                report = bank.enroll_folder(folder)
            marker.write_text(f"{report.photos_enrolled} photos enrolled from {folder}\n")
    return path


_ENROLL_LOCK = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """``facebank serve ARGS`` in its own process on a free loopback port (for tests and benches
    that need a real process: signals, memory). ``python -m facebank`` of the running interpreter."""

    def __init__(self, args: list[str], cwd: str | Path | None = None, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        import os
        import sys

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "facebank", "serve", "--host", "127.0.0.1",
                     "--port", str(self.port), "--log-level", "warning", *args]
        self.cwd = str(cwd) if cwd is not None else None
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    def start(self, timeout: float = 180.0, ready: bool = True) -> ServerProcess:
        import subprocess
        import tempfile

        fd, log_name = tempfile.mkstemp(prefix="facebank-serve-", suffix=".log")
        self.log_path = Path(log_name)
        self.proc = proc = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, stdout=fd, stderr=fd)
        deadline = time.monotonic() + timeout
        route = "/v1/ready" if ready else "/v1/health"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}: {self.log()[-2000:]}")
            try:
                if httpx.get(self.url + route, timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the server was not up within {timeout:.0f} s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code (None if it had to be killed)."""
        import subprocess

        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def scanned_gallery(path: str | Path, base: str | Path, library: str | Path,
                    settings: Settings | None = None) -> Path:
    """A copy of gallery ``base`` with every photo under ``library`` scanned in as unnamed faces
    (``facebank scan``) and clustered (``facebank cluster``), made once per ``path`` (a marker file
    records a finished run), so several test modules of one session share it."""
    from facebank.api import FaceBank
    from facebank.cluster.engine import method_from_settings, recluster
    from facebank.cluster.scan import scan_library

    path = Path(path)
    marker = path.with_name(path.name + ".done")
    with _ENROLL_LOCK:
        if not marker.exists():
            copy_gallery(base, path)
            s = (settings or Settings()).model_copy(update={"gallery": str(path)})
            with FaceBank(settings=s) as bank:
                report = scan_library(bank, library)
                summary = recluster(bank.gallery, method_from_settings(s, model_id=bank.gallery.model_id),
                                    s.threshold)
            marker.write_text(f"{report.faces_added} faces of {library} scanned ({len(report.problems)} "
                              f"problems), {summary.clusters} clusters, {summary.alone} faces alone\n")
    return path
