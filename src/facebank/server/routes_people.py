"""People routes: list, create, rename, delete people; add, list, show and remove their photos."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Path, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from facebank.gallery.base import GalleryError, PersonNotFound, validate_name
from facebank.server.context import ServerContext, get_ctx, require_read, require_read_key, require_write
from facebank.server.errors import ApiError
from facebank.server.files import media_type
from facebank.server.limits import header_pixels
from facebank.server.routes_faces import read_upload
from facebank.server.schemas import (
    AddedPhoto,
    AddPhotosResponse,
    PeopleList,
    Person,
    PersonCreate,
    PersonDetail,
    PersonRemoved,
    PersonRename,
    PhotoRemoved,
    StoredPhoto,
    errors,
)

router = APIRouter(prefix="/v1/people", tags=["people"], responses=errors(400, 422))

NamePath = Path(..., description="the person's name (URL-encoded; any Unicode letters)")
ShaPath = Path(..., pattern="^[0-9a-f]{64}$", description="the photo's sha256 (hex)")
# content-addressed by sha256: safe to cache; never content-sniffed into something else
CACHE = {"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}


def clean_name(name: str) -> str:
    try:
        return validate_name(name)
    except GalleryError as exc:
        raise ApiError(422, "invalid_name", str(exc)) from None


def person_summary(ctx: ServerContext, name: str) -> Person:
    for p in ctx.gallery.people():
        if p.name == name:
            return Person(name=p.name, photos=p.photos, faces=p.faces)
    raise ApiError(404, "person_not_found", f"no person named {name!r}")


def _photos(ctx: ServerContext, name: str) -> list[dict]:
    try:
        return ctx.gallery.photos(name)
    except PersonNotFound:
        raise ApiError(404, "person_not_found", f"no person named {name!r}") from None


def _stored(name: str, p: dict) -> StoredPhoto:
    base = f"/v1/people/{quote(name, safe='')}/photos/{p['sha256']}"
    return StoredPhoto(sha256=p["sha256"], status=p["status"], reason=p["reason"], faces=p["faces"],
                       width=p["width"], height=p["height"], size_bytes=p["size_bytes"],
                       image_url=f"{base}/image", face_url=f"{base}/face" if p["faces"] else None)


@router.get("", response_model=PeopleList, dependencies=[Depends(require_read)], responses=errors(401, 403),
            summary="Everyone in the gallery")
def list_people(hidden: bool = Query(False, description="list hidden people too (marked hidden)"),
                name: str | None = Query(None, max_length=200, description="only names containing this "
                                         "(any case)"),
                ctx: ServerContext = Depends(get_ctx)) -> PeopleList:
    gone = ctx.gallery.hidden()[0] if hasattr(ctx.gallery, "hidden") else set()
    people = [Person(name=p.name, photos=p.photos, faces=p.faces, hidden=p.name in gone)
              for p in ctx.gallery.people() if hidden or p.name not in gone]
    if name:
        people = [p for p in people if name.casefold() in p.name.casefold()]
    return PeopleList(people=people, total=len(people))


@router.post("", response_model=Person, status_code=201, dependencies=[Depends(require_write)],
             responses=errors(401, 403, 409, 422), summary="Add a person (then add photos)")
def create_person(body: PersonCreate, ctx: ServerContext = Depends(get_ctx)) -> Person:
    name = clean_name(body.name)
    with ctx.write_lock:
        ctx.gallery.add_person(name)
    return Person(name=name, photos=0, faces=0)


@router.get("/{name}", response_model=PersonDetail, dependencies=[Depends(require_read)],
            responses=errors(401, 403, 404, 422), summary="One person with their photos")
def get_person(name: str = NamePath, ctx: ServerContext = Depends(get_ctx)) -> PersonDetail:
    name = clean_name(name)
    person = person_summary(ctx, name)
    return PersonDetail(**person.model_dump(), photo_list=[_stored(name, p) for p in _photos(ctx, name)])


@router.patch("/{name}", response_model=Person, dependencies=[Depends(require_write)],
              responses=errors(401, 403, 404, 409, 422), summary="Rename a person")
def rename_person(body: PersonRename, name: str = NamePath, ctx: ServerContext = Depends(get_ctx)) -> Person:
    old, new = clean_name(name), clean_name(body.name)
    with ctx.write_lock:
        if old != new:
            ctx.gallery.rename_person(old, new)
        return person_summary(ctx, new)


@router.delete("/{name}", response_model=PersonRemoved, dependencies=[Depends(require_write)],
               responses=errors(401, 403, 404, 422), summary="Remove a person with all their photos")
def delete_person(name: str = NamePath, ctx: ServerContext = Depends(get_ctx)) -> PersonRemoved:
    name = clean_name(name)
    with ctx.write_lock:
        paths = [p["path"] for p in _photos(ctx, name)]
        n = ctx.gallery.remove_person(name)
    ctx.photos.discard(paths)
    return PersonRemoved(name=name, faces_removed=n)


@router.get("/{name}/photos", response_model=list[StoredPhoto], dependencies=[Depends(require_read)],
            responses=errors(401, 403, 404, 422), summary="A person's photos")
def list_photos(name: str = NamePath, ctx: ServerContext = Depends(get_ctx)) -> list[StoredPhoto]:
    name = clean_name(name)
    return [_stored(name, p) for p in _photos(ctx, name)]


@dataclass(frozen=True)
class PhotoFacts:
    sha256: str
    format: str


def _add_photos(ctx: ServerContext, name: str, uploads: list[tuple[str, bytes]]) -> AddPhotosResponse:
    # every file must be a usable image before anything is stored: all or nothing (each is decoded
    # and dropped at once: only its facts are kept, so many uploads never hold many decoded photos)
    loaded = []
    for fname, data in uploads:
        img = ctx.load_photo(data, fname, side=64)
        loaded.append((fname, data, PhotoFacts(img.sha256, img.format)))
        del img
    pool = ctx.pool()
    results: list[AddedPhoto | None] = [None] * len(loaded)
    with ctx.write_lock:
        person_summary(ctx, name)  # 404 before any file is written
        to_enroll: dict[str, int] = {}  # stored path -> index of the upload
        first: dict[str, int] = {}  # sha256 -> index of its first upload
        for i, (fname, data, facts) in enumerate(loaded):
            if facts.sha256 in first:
                results[i] = AddedPhoto(filename=fname, sha256=facts.sha256, outcome="already_known",
                                        reason=f"the same photo as {loaded[first[facts.sha256]][0]}")
                continue
            first[facts.sha256] = i
            if ctx.gallery.has_photo(facts.sha256, pool.model_id):
                results[i] = AddedPhoto(filename=fname, sha256=facts.sha256, outcome="already_known",
                                        reason="this photo is already in the gallery")
                continue
            to_enroll[str(ctx.photos.save(data, facts.sha256, facts.format))] = i
        report = None
        if to_enroll:  # decoded again, full size, one at a time: within the budget of the largest
            with ctx.pixels(max((loaded[i][1] for i in to_enroll.values()), key=header_pixels)):
                report = ctx.bank.enroll_photos(name, list(to_enroll))
        problems = dict(report.problems) if report else {}
        stored = {p["sha256"]: p for p in _photos(ctx, name)}
        for path, i in to_enroll.items():
            fname, sha = loaded[i][0], loaded[i][2].sha256
            rec = stored.get(sha)
            if rec is None:  # not even recorded (unreadable after all): keep no file of it
                results[i] = AddedPhoto(filename=fname, sha256=sha, outcome="error",
                                        reason=problems.get(path, "not stored"))
                ctx.photos.discard([path])
                continue
            status = rec["status"]
            results[i] = AddedPhoto(filename=fname, sha256=sha,
                                    outcome="enrolled" if status == "ok" else status, reason=rec["reason"])
        person = person_summary(ctx, name)
    return AddPhotosResponse(person=person, photos=[r for r in results if r is not None],
                             faces_added=report.faces_added if report else 0)


@router.post("/{name}/photos", response_model=AddPhotosResponse, dependencies=[Depends(require_write)],
             responses=errors(401, 403, 404, 409, 413, 415, 422, 503), summary="Add photos of a person")
async def add_photos(name: str = NamePath,
                     photos: list[UploadFile] = File(..., description="one or more photos of this person"),
                     ctx: ServerContext = Depends(get_ctx)) -> AddPhotosResponse:
    """Each photo's largest face is enrolled (the server's multi-face policy). All files must be
    images, or nothing is stored. The photos are kept on the server so they can be shown later."""
    name = clean_name(name)
    await run_in_threadpool(person_summary, ctx, name)  # 404 at once, before any photo is read or decoded
    uploads = [(p.filename or f"photo {i + 1}", await read_upload(p)) for i, p in enumerate(photos)]
    return await run_in_threadpool(_add_photos, ctx, name, uploads)


def _photo_record(ctx: ServerContext, name: str, sha256: str) -> dict:
    for p in _photos(ctx, name):
        if p["sha256"] == sha256:
            return p
    raise ApiError(404, "photo_not_found", f"{name!r} has no photo with sha256 {sha256}")


@router.delete("/{name}/photos/{sha256}", response_model=PhotoRemoved, dependencies=[Depends(require_write)],
               responses=errors(401, 403, 404, 422), summary="Remove one photo of a person")
def delete_photo(name: str = NamePath, sha256: str = ShaPath,
                 ctx: ServerContext = Depends(get_ctx)) -> PhotoRemoved:
    name = clean_name(name)
    with ctx.write_lock:
        rec = _photo_record(ctx, name, sha256)
        n = ctx.gallery.remove_photo(name, sha256)
    ctx.photos.discard([rec["path"]])
    return PhotoRemoved(name=name, sha256=sha256, faces_removed=n)


IMAGE_RESPONSES = {200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "the image"},
                   **errors(401, 403, 404, 422)}


@router.get("/{name}/photos/{sha256}/image", response_class=Response,
            dependencies=[Depends(require_read_key)], responses=IMAGE_RESPONSES, summary="A stored photo")
def photo_image(name: str = NamePath, sha256: str = ShaPath,
                ctx: ServerContext = Depends(get_ctx)) -> Response:
    name = clean_name(name)
    data = ctx.photos.read_verified(_photo_record(ctx, name, sha256)["path"], sha256)
    kind = media_type(data)
    if not kind.startswith("image/"):  # e.g. a broken file recorded as a problem photo: never served
        raise ApiError(404, "image_not_available", "the stored file is not an image a browser can show")
    return Response(data, media_type=kind, headers=CACHE)


@router.get("/{name}/photos/{sha256}/face", response_class=Response, dependencies=[Depends(require_read_key)],
            responses=IMAGE_RESPONSES, summary="A JPEG thumbnail of a stored face")
def photo_face(name: str = NamePath, sha256: str = ShaPath,
               size: int = Query(160, ge=32, le=512, description="longer side in pixels"),
               ctx: ServerContext = Depends(get_ctx)) -> Response:
    name = clean_name(name)
    rec = _photo_record(ctx, name, sha256)
    data = ctx.photos.read_verified(rec["path"], sha256)
    box = ctx.photos.face_box(ctx.gallery, name, sha256)
    with ctx.pixels(data):
        thumb = ctx.photos.thumbnail(data, box, size, ctx.config.pixel_limit, ctx.config.decode_side)
    return Response(thumb, media_type="image/jpeg", headers=CACHE)
