"""Photo files of the server: uploads kept next to the gallery, stored photos and face thumbnails.

Photos uploaded through the API are stored content-addressed as ``<photos_dir>/<sha256>.<ext>``
(default ``<gallery>.photos/``) so the gallery's ``path`` of them stays valid and the web page can
show them later. Photos enrolled by the CLI stay where they were; the server serves a stored photo
only when the file at the recorded path still has the recorded sha256.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path

from PIL import Image

from facebank import dbfiles, images
from facebank.draw import face_thumbnail
from facebank.gallery.base import Gallery, PersonNotFound
from facebank.gallery.uploads import discard_uploads, is_upload
from facebank.server.errors import ApiError

log = logging.getLogger(__name__)

EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
              "TIFF": ".tif", "PPM": ".ppm"}
MAX_SERVED_BYTES = 200_000_000


class PhotoStore:
    def __init__(self, folder: Path, gallery_path: str | Path | None) -> None:
        self.folder = Path(folder)
        self.gallery_path = str(gallery_path) if gallery_path is not None else None  # None: not SQLite

    # -- uploads ----------------------------------------------------------------------------------
    def path_for(self, sha256: str, fmt: str) -> Path:
        return self.folder / f"{sha256}{EXTENSIONS.get(fmt.upper(), '.img')}"

    def save(self, data: bytes, sha256: str, fmt: str) -> Path:
        """Store uploaded bytes (atomically: temp file + rename); returns the absolute path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_for(sha256, fmt).resolve()
        if path.exists() and path.stat().st_size == len(data):
            return path
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def owns(self, path: str | Path) -> bool:
        return is_upload(path, self.folder)

    def discard(self, paths: list[str]) -> None:
        """Delete stored uploads (only files inside our folder; never the CLI's photos)."""
        discard_uploads(paths, self.folder)

    # -- serving ----------------------------------------------------------------------------------
    def read_verified(self, path: str, sha256: str) -> bytes:
        """The bytes of a stored photo, only if the file still is the photo that was enrolled."""
        p = Path(path)
        try:
            # a photo swapped for a link to the gallery: never open the database file (its locks)
            if not p.is_file() or p.stat().st_size > MAX_SERVED_BYTES or dbfiles.held_by_sqlite(p):
                raise ApiError(404, "image_not_available", "the photo's file is no longer on the server")
            data = p.read_bytes()
        except OSError:
            raise ApiError(404, "image_not_available", "the photo's file cannot be read") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ApiError(404, "image_not_available", "the photo's file changed since it was enrolled")
        return data

    @staticmethod
    def face_box(gallery: Gallery, person: str, sha256: str) -> tuple[float, float, float, float] | None:
        """The stored box of the person's (first) face in a photo, found by the face's own person
        (a scanned photo has no person; its faces have one once named), from any gallery (SQLite
        or PostgreSQL); None when the photo holds no face of that person."""
        try:
            faces = gallery.faces(person=person)
        except PersonNotFound:
            return None
        return next((f.box for f in faces if f.sha256 == sha256), None)

    def thumbnail(self, data: bytes, box: tuple[float, float, float, float] | None, size: int,
                  max_pixels: int, side: int = 0) -> bytes:
        """A JPEG of the face (box plus a margin) or of the whole photo, longer side ``size``."""
        try:
            img = images.load_reduced(data, side, max_pixels=max_pixels, any_format=True)
        except images.ImageError as exc:
            raise ApiError(404, "image_not_available", str(exc)) from None
        scaled = None if box is None else (box[0] / img.scale, box[1] / img.scale, box[2] / img.scale,
                                           box[3] / img.scale)  # photo -> decoded pixels
        im = face_thumbnail(img.rgb, scaled, size)
        out = io.BytesIO()
        im.save(out, format="JPEG", quality=85)
        return out.getvalue()

    def close(self) -> None:
        """Nothing to release: faces are read through the server's gallery."""


def media_type(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return Image.MIME.get(im.format or "", "application/octet-stream")
    except Exception:
        return "application/octet-stream"
