"""Worker processes that start safely wherever the Python API is called from.

``ordered_map`` runs a function over a lazy stream in worker processes, results in input order,
with a bounded window (memory stays flat), and falls back to this process, with ONE log line
saying why, when workers cannot be had. It works the same from

* a plain script WITHOUT ``if __name__ == "__main__":`` and a script that is itself imported:
  the workers here never re-run the main script (multiprocessing's forkserver and spawn start
  methods normally re-import ``__main__`` in every worker, which re-runs an unguarded script's
  enrollment and breaks the pool with ``BrokenProcessPool``). Nothing the workers run lives in
  ``__main__``: the work functions are in facebank's own modules and the settings travel as JSON;
* ``python -c``, an IPython shell or a Jupyter kernel;
* a thread of a web server (forkserver: no fork of a process whose other threads hold locks);
* a daemonic process (a worker of another pool, which may not start processes), a process that
  is itself still starting, an embedded interpreter without ``sys.executable``, or a system where
  worker processes fail to start (no /dev/shm, sandboxes): in-process, one warning line, no crash.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import context as mp_context
from multiprocessing import spawn
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# ---- a start method whose workers do not re-run __main__ -----------------------------------------
_launching = threading.local()
_patch_lock = threading.Lock()
_original_preparation: Callable[[str], dict] | None = None


def _preparation_without_main(name: str) -> dict:
    assert _original_preparation is not None
    data = _original_preparation(name)
    if getattr(_launching, "active", False):
        # the keys that make a new worker import the parent's main module (spawn.prepare)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


def _install_preparation_hook() -> None:
    """Wrap ``multiprocessing.spawn.get_preparation_data`` once. The wrapper changes nothing unless
    the current thread is starting one of OUR workers, so other pools in the process are untouched."""
    global _original_preparation
    with _patch_lock:
        if _original_preparation is None:
            _original_preparation = spawn.get_preparation_data
            spawn.get_preparation_data = _preparation_without_main


def _launch_without_main(base: type[mp_context.ForkServerProcess] | type[mp_context.SpawnProcess],
                         process_obj: Any) -> Any:
    _install_preparation_hook()
    _launching.active = True
    try:
        return base._Popen(process_obj)
    finally:
        _launching.active = False


class _ForkServerProcess(mp_context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _launch_without_main(mp_context.ForkServerProcess, process_obj)


class _SpawnProcess(mp_context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _launch_without_main(mp_context.SpawnProcess, process_obj)


class _ForkServerContext(mp_context.ForkServerContext):
    Process = _ForkServerProcess


class _SpawnContext(mp_context.SpawnContext):
    Process = _SpawnProcess


def worker_context() -> mp_context.BaseContext:
    """forkserver (spawn where there is none) whose workers start from a clean interpreter and do
    not import the caller's ``__main__``."""
    if os.name != "nt" and "forkserver" in mp.get_all_start_methods():
        return _ForkServerContext()
    return _SpawnContext()


def why_not_parallel() -> str | None:
    """The reason worker processes cannot be started from here, or None when they can."""
    me = mp.current_process()
    if me.daemon:
        return "this is a daemonic process (a worker of another pool), which may not start processes"
    if getattr(me, "_inheriting", False):
        return "this process is itself still starting (a worker importing the main script)"
    if not sys.executable:
        return "there is no Python executable to start worker processes with (embedded interpreter)"
    return None


# ---- ordered, bounded map with an in-process fallback ---------------------------------------------
class _StartFailed(Exception):
    def __init__(self, pending: list[Any], cause: BaseException) -> None:
        super().__init__(str(cause))
        self.pending = pending
        self.cause = cause


def ordered_map(func: Callable[[T], R], items: Iterable[T], workers: int,
                local: Callable[[], Callable[[T], R]],
                initializer: Callable[..., None] | None = None, initargs: tuple = (),
                window_per_worker: int = 4) -> Iterator[R]:
    """``func(item)`` for every item, in ``workers`` processes, yielded in the order of ``items``
    (consumed lazily, at most ``window_per_worker * workers`` in flight).

    ``func`` and ``initializer`` must be module-level functions of an importable module (not of
    ``__main__``). ``local()`` makes the in-process function, used when ``workers <= 1`` and when
    workers cannot be had (logged once, with the reason): then every item is still processed."""
    it = iter(items)
    reason = why_not_parallel() if workers > 1 else None
    if workers <= 1 or reason:
        if reason:
            log.warning("working in this process, not in %d worker processes: %s", workers, reason)
        fn = local()
        for item in it:
            yield fn(item)
        return
    try:
        yield from _pool_map(func, it, workers, initializer, initargs, window_per_worker)
    except _StartFailed as failed:
        log.warning("working in this process: worker processes could not start (%s: %s)",
                    type(failed.cause).__name__, failed.cause)
        fn = local()
        for item in failed.pending:
            yield fn(item)
        for item in it:
            yield fn(item)


def _pool_map(func: Callable[[T], R], it: Iterator[T], workers: int,
              initializer: Callable[..., None] | None, initargs: tuple,
              window_per_worker: int) -> Iterator[R]:
    window: deque[tuple[T, Future[R]]] = deque()
    delivered = False
    try:
        pool = ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=initializer,
                                   initargs=initargs)
    except (OSError, ImportError, NotImplementedError, ValueError) as exc:
        raise _StartFailed([], exc) from exc

    def failed(exc: BaseException, first: list[T]) -> _StartFailed:
        pending = first + [item for item, _ in window]
        window.clear()
        return _StartFailed(pending, exc)

    with pool:
        try:
            for item in it:
                try:
                    window.append((item, pool.submit(func, item)))
                except (BrokenProcessPool, OSError, RuntimeError) as exc:
                    if delivered:
                        raise
                    raise failed(exc, [item]) from exc
                if len(window) >= window_per_worker * workers:
                    item0, fut = window.popleft()
                    yield _result(fut, item0, delivered, failed)
                    delivered = True
            while window:
                item0, fut = window.popleft()
                yield _result(fut, item0, delivered, failed)
                delivered = True
        except BaseException:  # start failure, Ctrl-C or the consumer stopped: drop what has not started
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _result(fut: Future[R], item: T, delivered: bool,
            failed: Callable[[BaseException, list[T]], _StartFailed]) -> R:
    try:
        return fut.result()
    except BrokenProcessPool as exc:
        if delivered:  # a worker died mid-run (not at start-up): that is an error to report
            raise
        raise failed(exc, [item]) from exc
