"""What bounds the server's memory: the upload size, the pixel limit, decoding shrunk, a pixel budget.

A photo's memory is set by its pixels, not its bytes: an 8,900 x 8,900 PNG of one colour is 77 kB
on the wire and 79 megapixels (240 MB as RGB) decoded. So the server

  * refuses photos over ``max_pixels`` from the header, before decoding (413);
  * decodes big photos reduced to a longer side between ``DECODE_SIDE`` and twice that
    (``images.load_reduced``: JPEG at decode time, by DCT scaling; other formats right after
    decoding, before the RGB copy), and reports boxes in the photo's own pixels;
  * lets at most ``budget`` pixels (counted at full size, from the header) be decoded or worked on
    at once: a request over the budget waits its turn, and gets 503 after ``wait_s``;
  * keeps glibc's malloc from spreading freed photo memory over one arena per thread (two arenas),
    and hands freed memory back to the system after a big photo (``malloc_trim``): measured with
    bench/bench_server_memory.py, 16 such requests took the server to 1.3 GB without this, 0.6 GB
    with it.
"""

from __future__ import annotations

import ctypes
import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image

DEFAULT_MAX_UPLOAD = 20_000_000  # bytes of one request body
DEFAULT_MAX_PIXELS = 40_000_000  # the server's limit (a phone photo is 12-24 MP; the CLI allows 80 MP)
DECODE_SIDE = 4096  # px: detection runs at 1,280 px; face chips of a reduced 40 MP photo stay sharp
BUDGET_WAIT_S = 60.0
TRIM_AFTER_PIXELS = 4_000_000  # photos bigger than this give their memory back when done
MALLOC_ARENAS = 2
# video jobs (serve --video-max-frames / --video-max-seconds / --max-upload-storage-mb)
DEFAULT_VIDEO_MAX_FRAMES = 500_000  # decoded frames of one video job (about 5.5 h of 25 fps video)
DEFAULT_VIDEO_MAX_SECONDS = 1800.0  # wall time of one video job
DEFAULT_MAX_UPLOAD_STORAGE = 2_000_000_000  # bytes of the videos waiting for their job, all together

log = logging.getLogger(__name__)


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (musl...): nothing to tune
        return None


_LIBC = _libc()


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """glibc: at most ``arenas`` malloc arenas for threads created from now on (M_ARENA_MAX)."""
    if _LIBC is None:
        return False
    ok = bool(_LIBC.mallopt(-8, int(arenas)))  # M_ARENA_MAX
    log.debug("malloc arenas limited to %d: %s", arenas, ok)
    return ok


def trim_memory() -> None:
    """glibc: give freed heap memory back to the system."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def header_pixels(data: bytes) -> int:
    """Width x height from the photo's header (nothing decoded); 0 when it is no image Pillow knows."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            return max(0, int(w)) * max(0, int(h))
    except Exception:  # not an image: the decoder says why, with its own clear error
        return 0


class PixelBudget:
    """At most ``limit`` pixels of photos in flight; ``hold(n)`` waits until ``n`` fit."""

    def __init__(self, limit: int, wait_s: float = BUDGET_WAIT_S) -> None:
        self.limit = max(1, int(limit))
        self.wait_s = wait_s
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        n = min(max(0, int(pixels)), self.limit)  # a photo within the pixel limit always fits alone
        with self._cond:
            if not self._cond.wait_for(lambda: self.used + n <= self.limit, timeout=self.wait_s):
                from facebank.server.errors import ApiError

                raise ApiError(503, "server_busy", "the server is busy decoding other large photos; "
                               "try again shortly", headers={"Retry-After": "5"})
            self.used += n
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= n
                idle = self.used == 0
                self._cond.notify_all()
            if idle and n >= TRIM_AFTER_PIXELS:
                trim_memory()
