"""The People view as a photo library user expects it (issue 21): faces flagged by quality ("low
quality", "not a face?") and deleting a detection for good, a person's cover face, hiding a person
or a cluster. Routes only parse, call the gallery (one transaction per change) and shape the answer;
SQLite and PostgreSQL galleries both keep these records; a gallery without them answers 501."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from facebank.server.context import ServerContext, get_ctx, require_read_key, require_write
from facebank.server.errors import ApiError
from facebank.server.routes_clusters import (
    ClusterPath,
    FacePath,
    face_detail,
    left_person,
    stored_face,
)
from facebank.server.routes_people import NamePath, clean_name
from facebank.server.schemas import FaceDetail, errors

router = APIRouter(prefix="/v1", responses=errors(422))


class FlaggedFace(FaceDetail):
    flag: str = Field(description="low_quality (too small or blurred to tell who) or not_face (likely none)")


class FlaggedList(BaseModel):
    faces: list[FlaggedFace]
    total: int


class NotAFace(BaseModel):
    deleted: int = Field(description="the face id, gone for good (a rescan never stores that box again)")


class CoverChoice(BaseModel):
    face: int | None = Field(ge=0, le=2**62, description="a face of the person; null: the default cover")


class HideChoice(BaseModel):
    hidden: bool = Field(True, description="true: not listed (still recognised); false: listed again")


class Hidden(BaseModel):
    hidden: bool


def _need(ctx: ServerContext, method: str):
    fn = getattr(ctx.gallery, method, None)
    if fn is None:
        raise ApiError(501, "not_supported", "this gallery does not keep quality, covers or hidden people")
    return fn


@router.get("/flagged-faces", tags=["clusters"], response_model=FlaggedList,
            dependencies=[Depends(require_read_key)], responses=errors(401, 403, 501),
            summary="Unnamed faces flagged low quality or likely not a face (in no cluster)")
def flagged_faces(limit: int = Query(200, ge=1, le=1000), offset: int = Query(0, ge=0, le=10**9),
                  ctx: ServerContext = Depends(get_ctx)) -> FlaggedList:
    flags = _need(ctx, "flagged_faces")()
    ids = list(flags)[offset:offset + limit]
    faces = ctx.gallery.faces(face_ids=ids) if ids else []
    out = [FlaggedFace(**face_detail(f).model_dump(), flag=flags[f.face_id]) for f in faces]
    return FlaggedList(faces=out, total=len(flags))


@router.post("/faces/{face_id}/not-a-face", tags=["clusters"], response_model=NotAFace,
             dependencies=[Depends(require_write)], responses=errors(401, 403, 404, 501),
             summary="Not a face: delete the detection for good")
def not_a_face(face_id: int = FacePath, ctx: ServerContext = Depends(get_ctx)) -> NotAFace:
    """The face is deleted; scanning its photo again never stores a face on that box."""
    fn = _need(ctx, "not_a_face")
    with ctx.write_lock:
        stored_face(ctx, face_id)
        fn(face_id)
    return NotAFace(deleted=face_id)


@router.get("/people/{name}/cover", tags=["people"], response_model=FaceDetail,
            dependencies=[Depends(require_read_key)], responses=errors(401, 403, 404, 501),
            summary="The face shown for a person")
def get_cover(name: str = NamePath, ctx: ServerContext = Depends(get_ctx)) -> FaceDetail:
    """The face the user chose, else the best-quality face nearest the person's centre."""
    face_id = _need(ctx, "cover_face")(clean_name(name))
    if face_id is None:
        raise ApiError(404, "no_face", f"{name!r} has no face")
    return face_detail(stored_face(ctx, face_id))


@router.post("/people/{name}/cover", tags=["people"], response_model=FaceDetail,
             dependencies=[Depends(require_write)], responses=errors(400, 401, 403, 404, 501),
             summary="Choose the face shown for a person")
def set_cover(body: CoverChoice, name: str = NamePath, ctx: ServerContext = Depends(get_ctx)) -> FaceDetail:
    name = clean_name(name)
    fn = _need(ctx, "set_cover")
    with ctx.write_lock:
        ctx.gallery.cover_face(name)  # no such person: 404 before the face is looked at
        if body.face is not None:
            f = stored_face(ctx, body.face)
            if f.person != name:
                raise ApiError(409, "not_their_face", f"face {body.face} is not {name}'s")
        fn(name, body.face)
        return face_detail(stored_face(ctx, ctx.gallery.cover_face(name)))


@router.post("/people/{name}/hide", tags=["people"], response_model=Hidden,
             dependencies=[Depends(require_write)], responses=errors(400, 401, 403, 404, 501),
             summary="Hide a person from the listings (still recognised), or show them again")
def hide_person(body: HideChoice, name: str = NamePath, ctx: ServerContext = Depends(get_ctx)) -> Hidden:
    fn = _need(ctx, "hide_person")
    with ctx.write_lock:
        fn(clean_name(name), body.hidden)
    return Hidden(hidden=body.hidden)


@router.post("/clusters/{cluster_id}/hide", tags=["clusters"], response_model=Hidden,
             dependencies=[Depends(require_write)], responses=errors(400, 401, 403, 404, 501),
             summary="Hide a cluster of unnamed faces from the listing, or show it again")
def hide_cluster(body: HideChoice, cluster_id: int = ClusterPath,
                 ctx: ServerContext = Depends(get_ctx)) -> Hidden:
    fn = _need(ctx, "hide_cluster")
    with ctx.write_lock:
        fn(cluster_id, body.hidden)
    return Hidden(hidden=body.hidden)


class UndoRequest(BaseModel):
    steps: int = Field(1, ge=1, le=100, description="how many of the last actions to undo (newest first)")


class Action(BaseModel):
    id: int
    kind: str = Field(description="name | move | take_out | merge | hide | cover")
    summary: str
    at: str


class ActionList(BaseModel):
    actions: list[Action] = Field(description="newest first; the ones an undo would take back")


class Undone(BaseModel):
    undone: list[str] = Field(description="what was undone, newest first")


@router.get("/actions", tags=["people"], response_model=ActionList,
            dependencies=[Depends(require_read_key)], responses=errors(401, 403, 501),
            summary="The last naming actions (what undo takes back)")
def list_actions(limit: int = Query(20, ge=1, le=500), ctx: ServerContext = Depends(get_ctx)) -> ActionList:
    return ActionList(actions=[Action(**a) for a in _need(ctx, "actions")(limit)])


@router.post("/undo", tags=["people"], response_model=Undone,
             dependencies=[Depends(require_write)], responses=errors(400, 401, 403, 404, 409, 501),
             summary="Undo the last actions (name, move, take out, merge, hide, cover)")
def undo(body: UndoRequest, ctx: ServerContext = Depends(get_ctx)) -> Undone:
    """All or nothing: 409 when a later change touched what an action changed (nothing is undone),
    404 when there are fewer actions left."""
    from facebank.gallery.sqlite_corrections import UndoConflict

    fn = _need(ctx, "undo")
    with ctx.write_lock:
        try:
            return Undone(undone=fn(body.steps))
        except UndoConflict as exc:
            raise ApiError(409, "undo_conflict", str(exc)) from None


class BulkMove(BaseModel):
    faces: list[Annotated[int, Field(ge=0, le=2**62)]] = Field(min_length=1, max_length=1000,
                                                              description="face ids")
    name: str | None = Field(max_length=200, description="the person they belong to (made when new); "
                                                         "null: take them out, unnamed")


class BulkMoved(BaseModel):
    moved: int


@router.post("/faces/move", tags=["clusters"], response_model=BulkMoved,
             dependencies=[Depends(require_write)], responses=errors(400, 401, 403, 404, 501),
             summary="Move many faces at once (all or nothing)")
def move_faces(body: BulkMove, ctx: ServerContext = Depends(get_ctx)) -> BulkMoved:
    """One transaction and one undoable action; 404 naming a face that does not exist (then
    nothing moved)."""
    name = clean_name(body.name) if body.name is not None else None
    fn = _need(ctx, "move_faces")
    with ctx.write_lock:
        was = {f.face_id: f.person for f in ctx.gallery.faces(face_ids=body.faces)}
        moved = fn(body.faces, name)
        left_person(ctx, was, name)
        return BulkMoved(moved=moved)


class TimelinePhoto(BaseModel):
    sha256: str
    taken_at: str | None = Field(description="ISO 8601 (camera's local time); null: unknown")
    year: int | None
    source: str = Field(description="exif | file (the file's time) | none")
    face_url: str = Field(description="GET: a thumbnail of the person's face in the photo")
    image_url: str = Field(description="GET: the photo")


class Timeline(BaseModel):
    photos: list[TimelinePhoto] = Field(description="oldest first, undated last")
    total: int


@router.get("/people/{name}/timeline", tags=["people"], response_model=Timeline,
            dependencies=[Depends(require_read_key)], responses=errors(401, 403, 404, 501),
            summary="A person's photos by date (paged)")
def timeline(name: str = NamePath, limit: int = Query(60, ge=1, le=500),
             offset: int = Query(0, ge=0, le=10**9), ctx: ServerContext = Depends(get_ctx)) -> Timeline:
    from urllib.parse import quote

    name = clean_name(name)
    rows = _need(ctx, "timeline")(name)
    base = f"/v1/people/{quote(name, safe='')}/photos"
    out = [TimelinePhoto(sha256=r["sha256"], taken_at=r["taken_at"], source=r["source"],
                         year=int(r["taken_at"][:4]) if r["taken_at"] else None,
                         face_url=f"{base}/{r['sha256']}/face", image_url=f"{base}/{r['sha256']}/image")
           for r in rows[offset:offset + limit]]
    return Timeline(photos=out, total=len(rows))
