"""Unsorted photos through REST: clusters of unnamed faces, naming them, moving a face, merging
people, face thumbnails, and photos in which given people all appear (issue 11).

The routes only parse, call the gallery (``facebank.cluster`` / ``Gallery`` methods; each change is
one transaction there) and shape the answer. Server paths of photos never leave the server: a
photo is named by its sha256 and a face by its id. Reading needs a ``read`` key even with
``--open-reads`` (faces and photos are never public); naming, moving and merging a ``write`` key.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from facebank.cluster.suggest import SuggestionCache
from facebank.gallery.base import FaceInfo, NotFound, PersonNotFound
from facebank.server.context import ServerContext, get_ctx, require_read_key, require_write
from facebank.server.errors import ApiError
from facebank.server.routes_people import IMAGE_RESPONSES, NamePath, clean_name, person_summary
from facebank.server.schemas import (
    Cluster,
    ClusterFace,
    ClusterList,
    ClusterName,
    ClusterNamed,
    ClusterReject,
    ClusterRejected,
    FaceDetail,
    FaceList,
    FaceMove,
    PeopleMerged,
    PersonMerge,
    PhotoWithPeople,
    PhotoWithPeopleList,
    errors,
)

router = APIRouter(prefix="/v1", responses=errors(422))

ClusterPath = Path(..., ge=0, le=2**62, description="the cluster's id (from GET /v1/clusters)")
FacePath = Path(..., ge=0, le=2**62, description="the face's id")
SizeQuery = Query(160, ge=32, le=512, description="longer side of the thumbnail in pixels")
MAX_WITH = 20


def face_url(face_id: int) -> str:
    return f"/v1/faces/{face_id}/image"


def stored_face(ctx: ServerContext, face_id: int) -> FaceInfo:
    """The stored face ``face_id``, or a 404 answer."""
    found = ctx.gallery.faces(face_ids=[face_id])
    if not found:
        raise ApiError(404, "face_not_found", f"no face with id {face_id}")
    return found[0]


def face_detail(f: FaceInfo) -> FaceDetail:
    """A stored face as the API shows it."""
    return FaceDetail(id=f.face_id, box=[round(v) for v in f.box], person=f.person, cluster=f.cluster,
                      suggested=f.suggested, photo_sha256=f.sha256, image_url=face_url(f.face_id))


# -- clusters ------------------------------------------------------------------------------------
@router.get("/clusters", tags=["clusters"],
            response_model=ClusterList, dependencies=[Depends(require_read_key)], responses=errors(401, 403),
            summary="Groups of unnamed faces, largest first")
def list_clusters(limit: int = Query(50, ge=1, le=500, description="clusters in this answer"),
                  offset: int = Query(0, ge=0, le=10**9, description="clusters to skip (paging)"),
                  faces_per_cluster: int = Query(12, ge=0, le=200, alias="faces",
                                                 description="face thumbnails listed per cluster"),
                  hidden: bool = Query(False, description="list hidden clusters too (marked hidden)"),
                  ctx: ServerContext = Depends(get_ctx)) -> ClusterList:
    """The clusters of the last ``facebank cluster`` run over the unnamed (scanned) faces, largest
    first; ``suggested`` is the enrolled person the cluster looks like (null: nobody under the
    threshold). Faces seen once stay alone (``alone`` counts them)."""
    groups = ctx.face_groups.get()
    gone = ctx.gallery.hidden()[1] if hasattr(ctx.gallery, "hidden") else set()
    flagged = ctx.gallery.flagged_faces() if hasattr(ctx.gallery, "flagged_faces") else {}
    shown = [g for g in groups.clusters if hidden or g.cluster not in gone]
    page = shown[offset:offset + limit]
    live = SuggestionCache.of(ctx.bank).some(clusters=[g.cluster for g in page]).clusters  # this page only

    def suggestion(cluster: int) -> dict:
        s = live.get(cluster)
        if s is None or s.person is None:
            return {"suggested": None}
        return {"suggested": s.person, "score": round(s.score, 6), "agree": s.agree, "faces_used": s.faces}

    out = [Cluster(id=g.cluster, size=g.size, **suggestion(g.cluster), hidden=g.cluster in gone,
                   faces=[ClusterFace(id=f.face_id, box=[round(v) for v in f.box], photo_sha256=f.sha256,
                                      image_url=face_url(f.face_id)) for f in g.faces[:faces_per_cluster]])
           for g in page]
    alone = sum(1 for f in groups.alone if f.face_id not in flagged)
    return ClusterList(clusters=out, total=len(shown), alone=alone, unassigned=groups.faces,
                       flagged=len(flagged), hidden=len(groups.clusters) - len(shown) if not hidden else 0)


class Borderline(BaseModel):
    cluster: int
    size: int = Field(description="faces in the cluster")
    candidate: str = Field(description="the named person the cluster is nearest to, not suggested")
    score: float = Field(description="the cluster's group score for the candidate (the decision rule's unit; "
                         "lower = more alike)")
    threshold: float = Field(description="the bound the score had to be under to be suggested (same unit)")
    agree: int = Field(description="of faces_used, how many have the candidate as their own best match")
    faces_used: int = Field(description="the cluster's independent faces the decision rests on")
    faces: list[ClusterFace] = Field(description="the first faces of the cluster")


class BorderlineList(BaseModel):
    pairs: list[Borderline] = Field(description="nearest the threshold first")


@router.get("/clusters/borderline", tags=["clusters"],
            response_model=BorderlineList, dependencies=[Depends(require_read_key)],
            responses=errors(401, 403),
            summary="'Are these the same person?': clusters whose evidence for someone is split")
def borderline_clusters(limit: int = Query(5, ge=1, le=50, description="pairs in this answer"),
                        faces_per_cluster: int = Query(6, ge=0, le=50, alias="faces"),
                        ctx: ServerContext = Depends(get_ctx)) -> BorderlineList:
    """Unnamed clusters not suggested as anyone although some of their faces, on their own, match
    a named person (``agree`` >= 1): the evidence is split, so the user is asked. Yes = name the
    cluster that person (POST /v1/clusters/{id}/name), no = POST /v1/clusters/{id}/reject (never
    asked or suggested again). Hidden clusters are left out."""
    groups = {g.cluster: g for g in ctx.face_groups.get().clusters}
    gone = ctx.gallery.hidden()[1] if hasattr(ctx.gallery, "hidden") else set()
    found = [(c, s.candidate, s) for c, s in SuggestionCache.of(ctx.bank).get().clusters.items()
             if c in groups and c not in gone and s.person is None and s.candidate is not None
             and s.agree >= 1 and math.isfinite(s.score) and math.isfinite(s.threshold)]
    found.sort(key=lambda x: (x[2].score - x[2].threshold, x[0]))
    # a "no" already said (a rejection of the candidate for any of the faces) is never asked again
    ids = [f.face_id for c, _, _ in found for f in groups[c].faces]
    said = ctx.gallery.rejections(ids) if ids else {}
    found = [(c, who, s) for c, who, s in found
             if not any(who in said.get(f.face_id, ()) for f in groups[c].faces)]
    return BorderlineList(pairs=[
        Borderline(cluster=c, size=groups[c].size, candidate=who,
                   score=round(s.score, 6), threshold=round(s.threshold, 6), agree=s.agree,
                   faces_used=s.faces,
                   faces=[ClusterFace(id=f.face_id, box=[round(v) for v in f.box], photo_sha256=f.sha256,
                                      image_url=face_url(f.face_id))
                          for f in groups[c].faces[:faces_per_cluster]])
        for c, who, s in found[:limit]])


@router.post("/clusters/{cluster_id}/name", tags=["clusters"],
            response_model=ClusterNamed, dependencies=[Depends(require_write)],
            responses=errors(400, 401, 403, 404, 409, 422),
            summary="Name a cluster: a new person, or an existing one")
def name_cluster(body: ClusterName, cluster_id: int = ClusterPath,
                 ctx: ServerContext = Depends(get_ctx)) -> ClusterNamed:
    """All faces of the cluster go to the person ``name``: a new person, or merged into the person
    of that name when there is one. One transaction."""
    name = clean_name(body.name)
    with ctx.write_lock:
        existed = any(p.name == name for p in ctx.gallery.people())
        try:
            n = ctx.gallery.name_cluster(cluster_id, name)
        except NotFound:
            raise ApiError(404, "cluster_not_found", f"no cluster with id {cluster_id}") from None
        return ClusterNamed(cluster=cluster_id, person=person_summary(ctx, name), created=not existed,
                            faces_named=n)


@router.post("/clusters/{cluster_id}/reject", tags=["clusters"],
             response_model=ClusterRejected, dependencies=[Depends(require_write)],
             responses=errors(400, 401, 403, 404, 422), summary="Say a cluster is NOT a person")
def reject_cluster(body: ClusterReject, cluster_id: int = ClusterPath,
                   ctx: ServerContext = Depends(get_ctx)) -> ClusterRejected:
    """Every face of the cluster is recorded as not ``name``: that person is never suggested for these
    faces again (whatever later scans, namings or clusterings do). One transaction."""
    name = clean_name(body.name)
    with ctx.write_lock:
        ids = [f.face_id for f in ctx.gallery.faces(cluster=cluster_id, unassigned=True)]
        if not ids:
            raise ApiError(404, "cluster_not_found", f"no cluster with id {cluster_id}")
        try:
            ctx.gallery.reject(ids, name)
        except NotFound:
            raise ApiError(404, "cluster_not_found", f"no cluster with id {cluster_id}") from None
        return ClusterRejected(cluster=cluster_id, person=name, faces=len(ids))


# -- faces ---------------------------------------------------------------------------------------
@router.get("/faces", tags=["clusters"],
            response_model=FaceList, dependencies=[Depends(require_read_key)],
            responses=errors(401, 403, 404, 422), summary="The faces of a person, of a cluster, or alone")
def list_faces(person: str | None = Query(None, max_length=200, description="this person's faces"),
               cluster: int | None = Query(None, ge=0, le=2**62, description="this cluster's faces"),
               alone: bool = Query(False, description="unnamed faces in no cluster (seen once)"),
               limit: int = Query(200, ge=1, le=1000), offset: int = Query(0, ge=0, le=10**9),
               ctx: ServerContext = Depends(get_ctx)) -> FaceList:
    """Exactly one of ``person``, ``cluster`` or ``alone=true``; ordered by face id."""
    if (person is not None) + (cluster is not None) + alone != 1:
        raise ApiError(422, "one_filter", "give exactly one of person=NAME, cluster=ID or alone=true")
    if person is not None:
        found = ctx.gallery.faces(person=clean_name(person))
    elif cluster is not None:
        found = ctx.gallery.faces(cluster=cluster, unassigned=True)
    else:  # faces alone, flagged ones apart (GET /v1/flagged-faces); each with its own live suggestion
        flagged = ctx.gallery.flagged_faces() if hasattr(ctx.gallery, "flagged_faces") else {}
        loose = [f for f in ctx.face_groups.get().alone if f.face_id not in flagged]
        page = loose[offset:offset + limit]
        live = SuggestionCache.of(ctx.bank).some(faces=[f.face_id for f in page]).loose
        found = [replace(f, suggested=live[f.face_id].person if f.face_id in live else None) for f in page]
        return FaceList(faces=[face_detail(f) for f in found], total=len(loose))
    return FaceList(faces=[face_detail(f) for f in found[offset:offset + limit]], total=len(found))


@router.get("/faces/{face_id}", tags=["clusters"],
            response_model=FaceDetail, dependencies=[Depends(require_read_key)],
            responses=errors(401, 403, 404, 422), summary="One stored face")
def get_face(face_id: int = FacePath, ctx: ServerContext = Depends(get_ctx)) -> FaceDetail:
    return face_detail(stored_face(ctx, face_id))


@router.post("/faces/{face_id}/move", tags=["clusters"],
            response_model=FaceDetail, dependencies=[Depends(require_write)],
            responses=errors(400, 401, 403, 404, 422), summary="Give a face to a person, or take it out")
def move_face(body: FaceMove, face_id: int = FacePath, ctx: ServerContext = Depends(get_ctx)) -> FaceDetail:
    """``name``: the face now belongs to that person (made when new). ``null``: the face is taken out
    of its person or cluster and stays alone, unnamed (a wrong face in a cluster)."""
    name = clean_name(body.name) if body.name is not None else None
    with ctx.write_lock:
        was = stored_face(ctx, face_id).person
        try:
            ctx.gallery.move_face(face_id, name)
        except NotFound:
            raise ApiError(404, "face_not_found", f"no face with id {face_id}") from None
        left_person(ctx, {face_id: was}, name)
        return face_detail(stored_face(ctx, face_id))


def left_person(ctx: ServerContext, was: dict[int, str | None], name: str | None) -> None:
    """Faces taken out of a named person go back to the unnamed pool as loose faces at once (they
    are unassigned and in no cluster); that person is never suggested for them (a rejection)."""
    by_person: dict[str, list[int]] = {}
    for face_id, person in was.items():
        if person is not None and person != name:
            by_person.setdefault(person, []).append(face_id)
    for person, ids in by_person.items():
        with contextlib.suppress(NotFound, PersonNotFound):  # gone since: nothing to keep
            ctx.gallery.reject(ids, person)


@router.post("/faces/{face_id}/reject", tags=["clusters"],
             response_model=FaceDetail, dependencies=[Depends(require_write)],
             responses=errors(400, 401, 403, 404, 422), summary="Say a face is NOT a person")
def reject_face(body: ClusterReject, face_id: int = FacePath,
                ctx: ServerContext = Depends(get_ctx)) -> FaceDetail:
    """The face is recorded as not ``name`` (a rejected suggestion of a loose face): that person is
    never suggested for it again. ``404 person_not_found`` for an unknown person."""
    name = clean_name(body.name)
    with ctx.write_lock:
        stored_face(ctx, face_id)
        try:
            ctx.gallery.reject([face_id], name)
        except PersonNotFound as exc:
            raise ApiError(404, "person_not_found", str(exc)) from None
        except NotFound:
            raise ApiError(404, "face_not_found", f"no face with id {face_id}") from None
        return face_detail(stored_face(ctx, face_id))


@router.get("/faces/{face_id}/image", tags=["clusters"],
            response_class=Response, dependencies=[Depends(require_read_key)],
            responses={**IMAGE_RESPONSES, **errors(503)}, summary="A JPEG thumbnail of a face")
def face_image(face_id: int = FacePath, size: int = SizeQuery,
               ctx: ServerContext = Depends(get_ctx)) -> Response:
    f = stored_face(ctx, face_id)
    data = ctx.photos.read_verified(f.path, f.sha256)
    with ctx.pixels(data):  # the server's pixel budget, as for every decode
        thumb = ctx.photos.thumbnail(data, f.box, size, ctx.config.pixel_limit, ctx.config.decode_side)
    # a face's crop never changes, but an id can be reused after a delete: revalidate by ETag
    etag = f'"{f.sha256[:16]}-{face_id}-{size}"'
    return Response(thumb, media_type="image/jpeg",
                    headers={"Cache-Control": "private, no-cache", "ETag": etag,
                             "X-Content-Type-Options": "nosniff"})


# -- people --------------------------------------------------------------------------------------
@router.post("/people/{name}/merge", tags=["people"],
            response_model=PeopleMerged, dependencies=[Depends(require_write)],
            responses=errors(400, 401, 403, 404, 409, 422), summary="Merge a person into another")
def merge_person(body: PersonMerge, name: str = NamePath,
                 ctx: ServerContext = Depends(get_ctx)) -> PeopleMerged:
    """Every photo and face of ``name`` goes to ``into``; ``name`` is gone. One transaction."""
    source, target = clean_name(name), clean_name(body.into)
    if source == target:
        raise ApiError(422, "same_person", "a person cannot be merged into themselves")
    with ctx.write_lock:
        n = ctx.gallery.merge_people(source, target)
        return PeopleMerged(merged=source, person=person_summary(ctx, target), faces_moved=n)


# -- photos --------------------------------------------------------------------------------------
@router.get("/photos", tags=["photos"],
            response_model=PhotoWithPeopleList, dependencies=[Depends(require_read_key)],
            responses=errors(401, 403, 404, 422), summary="Photos in which all the given people appear")
def photos_with(with_: list[str] = Query(..., alias="with", min_length=1, max_length=MAX_WITH,
                                         description="a person's name; repeat for each person"),
                limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10**9),
                ctx: ServerContext = Depends(get_ctx)) -> PhotoWithPeopleList:
    names = list(dict.fromkeys(clean_name(n) for n in with_))
    try:
        found = ctx.gallery.photos_with(names)
    except PersonNotFound as exc:
        raise ApiError(404, "person_not_found", str(exc)) from None
    # each photo is served by the existing route of its first person's photos
    base = f"/v1/people/{quote(names[0], safe='')}/photos"
    out = [PhotoWithPeople(sha256=p["sha256"], width=p["width"], height=p["height"], faces=p["faces"],
                           image_url=f"{base}/{p['sha256']}/image", face_url=f"{base}/{p['sha256']}/face")
           for p in found[offset:offset + limit]]
    return PhotoWithPeopleList(photos=out, total=len(found))
