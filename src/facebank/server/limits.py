"""What bounds the server's memory: the upload size, the pixel limit, decoding shrunk, a pixel budget.

A photo's memory is set by its pixels, not its bytes: an 8,900 x 8,900 PNG of one colour is 77 kB
on the wire and 79 megapixels (240 MB as RGB) decoded. So the server

  * refuses photos over ``max_pixels`` from the header, before decoding (413);
  * decodes big photos shrunk to ``DECODE_MAX_SIDE`` on their longer side (JPEG: at decode time,
    Pillow's draft mode; other formats: reduced right after decoding, before the RGB copy), and
    reports boxes in the photo's own pixels;
  * lets at most ``budget`` pixels (counted at full size, from the header) be decoded or worked on
    at once: a request over the budget waits its turn, and gets 503 after ``wait_s``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image

DEFAULT_MAX_UPLOAD = 20_000_000  # bytes of one request body
DEFAULT_MAX_PIXELS = 40_000_000  # the server's limit (a phone photo is 12-24 MP; the CLI allows 80 MP)
DECODE_MAX_SIDE = 4096  # px: faces in a shrunk 40 MP photo are still far above the 150 px face chip
BUDGET_WAIT_S = 60.0


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
                self._cond.notify_all()
