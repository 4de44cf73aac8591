"""Pydantic models of the REST API (they are the OpenAPI contract: tests/snapshots/openapi.json).

Units as everywhere in facebank: boxes ``[x1, y1, x2, y2]`` in pixels of the uploaded photo after
EXIF orientation, ``distance`` = L2 distance between unit embeddings (lower is closer, a match is
``distance <= threshold``), ``score`` = cosine similarity (higher is closer).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. person_not_found, not_an_image")
    message: str = Field(description="what went wrong, for people")


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_TEXT = {
    400: "the request body cannot be parsed: invalid JSON (invalid_json) or multipart data (bad_request)",
    401: "missing or invalid API key",
    403: "not allowed: the key's scope is too small, or a folder outside the server's enroll root",
    404: "not found",
    409: "conflict with the gallery's content, or with the job's state",
    413: "upload over the size limit, or a photo over the pixel limit",
    507: "the server's storage for uploads waiting for their job is full (retry later)",
    415: "not an image",
    422: "invalid request, or a photo that cannot be used (corrupt, truncated, empty, no face)",
    501: "this gallery does not keep that record (quality, covers, hidden people: SQLite galleries do)",
    503: "the face models are not loaded yet",
}


def errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI documentation of error answers: all share the ErrorResponse shape."""
    return {c: {"model": ErrorResponse, "description": ERROR_TEXT[c]} for c in codes}


# -- faces ---------------------------------------------------------------------------------------
class DetectedFace(BaseModel):
    box: list[int] = Field(description="[x1, y1, x2, y2] in pixels of the photo", min_length=4, max_length=4)
    detector: str
    detector_score: float = Field(
        description="the detector's own confidence (not comparable across detectors)")
    fallback: bool = Field(description="true when no detector ran and the whole photo was taken as the face")
    landmarks: list[list[float]] | None = Field(None, description="[[x, y], ...] in pixels of the photo")
    landmarks_scheme: str | None = None


class IdentifiedFace(DetectedFace):
    name: str | None = Field(description="the person, or null for unknown")
    distance: float | None = Field(description="L2 distance to that person (to the nearest candidate when "
                                               "unknown); null when the gallery is empty")
    score: float | None = Field(description="cosine similarity to that person")
    candidate: str | None = Field(description="the nearest person, even when the face is unknown")
    reason: str | None = Field(None, description="why the face is unknown (null when named): "
                               "empty_gallery, no_match (the nearest person is beyond the threshold) "
                               "or taken (the nearest person went to another face of this photo, "
                               "closer to them: a person is named once per photo)")
    decision_score: float | None = Field(
        None, description="the decision rule's own score for that person (unit: see GET /v1/model "
        "decision_unit; lower = more alike; named when at most the threshold)")


class PhotoInfo(BaseModel):
    width: int
    height: int
    sha256: str
    format: str


class DetectResponse(BaseModel):
    photo: PhotoInfo
    faces: list[DetectedFace]
    seconds: float = Field(description="server-side processing time")


class IdentifyResponse(BaseModel):
    photo: PhotoInfo
    faces: list[IdentifiedFace]
    threshold: float = Field(description="the decision rule's threshold used (see GET /v1/model)")
    rule: str
    decision: str = Field("distance", description="the decision rule that named the faces")
    seconds: float = Field(description="server-side processing time")


class VerifyResponse(BaseModel):
    same: bool
    distance: float = Field(description="L2 distance between the main faces of the two photos")
    score: float = Field(description="cosine similarity")
    threshold: float
    face_a: DetectedFace
    face_b: DetectedFace


# -- people --------------------------------------------------------------------------------------
class PersonCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "김지수"}]})
    name: str = Field(min_length=1, max_length=200, description="any Unicode letters; no slashes")


class PersonRename(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="the new name")


class Person(BaseModel):
    name: str
    photos: int = Field(description="photos with a usable face")
    faces: int = Field(description="faces stored (one per usable photo)")
    hidden: bool = Field(False, description="hidden from the listings (still recognised)")


class PeopleList(BaseModel):
    people: list[Person]
    total: int


class StoredPhoto(BaseModel):
    sha256: str
    status: str = Field(description="ok | no_face | multi_face | error")
    reason: str | None
    faces: int
    width: int
    height: int
    size_bytes: int
    image_url: str = Field(description="GET: the photo itself (when its file is still on the server)")
    face_url: str | None = Field(description="GET: a JPEG thumbnail of the stored face")


class PersonDetail(Person):
    photo_list: list[StoredPhoto]


class PersonRemoved(BaseModel):
    name: str
    faces_removed: int


PhotoOutcome = Literal["enrolled", "already_known", "no_face", "multi_face", "error"]


class AddedPhoto(BaseModel):
    filename: str
    sha256: str
    outcome: PhotoOutcome
    reason: str | None = None


class AddPhotosResponse(BaseModel):
    person: Person
    photos: list[AddedPhoto]
    faces_added: int


class PhotoRemoved(BaseModel):
    name: str
    sha256: str
    faces_removed: int


# -- enrollment jobs -----------------------------------------------------------------------------
class EnrollJobCreate(BaseModel):
    folder: str = Field(description="a folder on the SERVER's disk: one sub-folder of photos per person")
    person: str | None = Field(None, description="all photos in the folder are of this person")


JobState = Literal["queued", "running", "finished", "failed", "cancelled", "interrupted"]
STATE_TEXT = ("queued, running, finished, failed (see reason and error), cancelled or interrupted (the "
              "server stopped before the job was done: POST /v1/jobs/{id}/resume resumes a folder job)")
REASON_TEXT = ("why the job ended: done, cancelled, budget_exceeded (--video-max-frames or "
               "--video-max-seconds), invalid_video, server_stopped, server_lost, error, ...; null while it "
               "waits or runs")


class JobProblem(BaseModel):
    path: str = Field(description="the photo, relative to the job's folder")
    reason: str


class EnrollJob(BaseModel):
    id: str
    kind: Literal["enroll"] = "enroll"
    state: JobState = Field(description=STATE_TEXT)
    reason: str | None = Field(None, description=REASON_TEXT)
    folder: str = Field(description="relative to the server's enroll root")
    person: str | None
    total: int = Field(description="photos to process: the photos found in the folder, less those already "
                       "in the gallery and unreadable files as the walk meets them")
    seen: int = Field(description="photos looked at so far (already known ones included)")
    processed: int = Field(description="photos run through the face pipeline so far")
    progress: float = Field(description="processed / total, 0..1")
    photos_enrolled: int
    photos_skipped_known: int
    faces_added: int
    people: int
    problems: int
    problem_samples: list[JobProblem]
    error: str | None
    run_id: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None


# -- videos --------------------------------------------------------------------------------------
class VideoTrack(BaseModel):
    """One face followed through one shot, named from all its faces."""

    track: int
    name: str | None = Field(description="the person, null = unknown")
    distance: float | None = Field(description="median L2 distance (unit embeddings) of the track's "
                                   "faces to the person (or to the nearest one when unknown)")
    start: float = Field(description="seconds of video of its first sighting")
    end: float = Field(description="seconds of video of its last sighting")
    frames: int = Field(description="analysed frames it was seen in")
    box: list[int] = Field(description="its largest face, [x1, y1, x2, y2] pixels of the frame")
    score: float | None = Field(None, description="the track's group score in the decision rule's unit "
                                "(lower = more alike; see facebank.groups); null when nobody is enrolled")
    faces_used: int | None = Field(None, description="the track's independent faces its name comes from")


class VideoAppearance(BaseModel):
    """One stretch on screen of a person (tracks that touch or overlap are one stretch)."""

    start: float = Field(description="seconds of video")
    end: float = Field(description="seconds of video (a sighting counts for one sampling step)")
    tracks: list[int] = Field(description="the tracks of this stretch")


class VideoPerson(BaseModel):
    """A person of the video, as ``facebank identify VIDEO --json --summary`` lists them."""

    person: str = Field(description='the name, or "unknown #k" for the k-th unknown person (grouped across '
                        'shots from all the faces of their tracks), or "unknown (brief)" for tracks seen '
                        "too briefly to group")
    name: str | None = Field(description="the enrolled person, null = unknown")
    seconds: float = Field(description="total time on screen, seconds of video")
    appearances: list[VideoAppearance] = Field(description="each stretch on screen, in order of time")


class VideoJob(BaseModel):
    id: str
    kind: Literal["video"] = "video"
    state: JobState = Field(description=STATE_TEXT)
    reason: str | None = Field(None, description=REASON_TEXT)
    progress: float = Field(description="share of the analysed frames done (0-1)")
    filename: str
    size_bytes: int
    sample_fps: float | None = Field(description="frames analysed per second of video; null = every frame")
    width: int
    height: int
    fps: float = Field(description="frames per second of the video")
    duration_s: float | None = Field(description="seconds of video")
    frames_analysed: int
    frames_expected: int
    tracks: list[VideoTrack] = Field(description="filled when the job is finished, ordered by start")
    people: list[VideoPerson] = Field(default_factory=list, description="filled when the job is finished: "
                                      "who is on screen and when, most seen first")
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


AnyJob = Annotated[EnrollJob | VideoJob, Field(discriminator="kind")]


def job_model(snapshot: dict) -> EnrollJob | VideoJob:
    """The answer for a job's ``snapshot()``."""
    return VideoJob(**snapshot) if snapshot.get("kind") == "video" else EnrollJob(**snapshot)


class JobList(BaseModel):
    jobs: list[AnyJob] = Field(description="the most recent jobs of every kind (also of earlier server "
                               "runs), oldest first")


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    ready: bool
    models_loaded: bool
    gallery_ok: bool
    people: int | None = Field(None, description="people in the gallery (only with a read key)")
    faces: int | None = Field(None, description="faces in the gallery (only with a read key)")


# -- keys (admin scope) --------------------------------------------------------------------------
KeyScope = Literal["read", "write", "admin"]


class ApiKeyCreate(BaseModel):
    name: str = Field("", max_length=200, description="a label: who or what uses the key")
    scope: KeyScope = Field("read", description="read: identify, detect, verify, listing; write: + people, "
                                               "photos, jobs; admin: + keys")


class ApiKey(BaseModel):
    id: str = Field(description="the key's public id (the part after fbk_)")
    name: str
    scope: KeyScope
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    active: bool


class ApiKeyCreated(ApiKey):
    key: str = Field(description="the key itself: shown this once, stored hashed")


class ApiKeyList(BaseModel):
    keys: list[ApiKey]


class ModelInfo(BaseModel):
    version: str
    detector: str
    embedder: str
    model_id: str | None = Field(description="the embedding model (null until the models are loaded)")
    gallery_model_id: str | None = Field(description="the model of the embeddings stored in the gallery")
    threshold: float = Field(description="the identification threshold in use, in the decision rule's "
                                         "unit (estimated from the gallery unless FACEBANK_THRESHOLD is set)")
    threshold_source: str = Field("default", description="gallery (estimated from the gallery's own "
                                  "people), settings (FACEBANK_THRESHOLD) or default (too few people)")
    target_far: float = Field(0.01, description="share of strangers the estimated threshold may name")
    decision: str = Field("distance", description="the decision rule naming faces")
    decision_unit: str = Field("", description="the unit of the decision rule's scores and threshold")
    rule: str
    multi_face: str
    max_pixels: int
    max_upload_bytes: int
    open_reads: bool = Field(
        description="true when read routes (identify, detect, verify, listing) need no key")
    pipelines: int


# -- unsorted photos: clusters, naming, merging, photos with people (issue 11) --------------------
class ClusterFace(BaseModel):
    id: int = Field(description="the face's id (for /v1/faces/{id}/...)")
    box: list[int] = Field(description="[x1, y1, x2, y2] in pixels of its photo", min_length=4, max_length=4)
    photo_sha256: str
    image_url: str = Field(description="GET: a JPEG thumbnail of the face")


class Cluster(BaseModel):
    id: int
    size: int = Field(description="faces in the cluster")
    suggested: str | None = Field(description="the named person these faces most likely are, from all of "
                                  "them (null: nobody likely enough)")
    faces: list[ClusterFace] = Field(description="the first faces of the cluster (see the faces parameter)")
    score: float | None = Field(None, description="the suggestion's group score, in the decision rule's unit "
                                "(lower = more alike; null: no suggestion)")
    agree: int | None = Field(None, description="of the cluster's independent faces (faces_used), how many "
                              "have the suggested person as their own best match")
    faces_used: int | None = Field(None, description="the cluster's independent faces the suggestion "
                                   "rests on")
    hidden: bool = Field(False, description="hidden from the listing (see the hidden parameter)")


class ClusterList(BaseModel):
    clusters: list[Cluster] = Field(description="largest first")
    total: int = Field(description="clusters in all")
    alone: int = Field(description="unnamed faces in no cluster (seen once, or not clustered yet)")
    unassigned: int = Field(description="unnamed faces in all")
    flagged: int = Field(0, description="unnamed faces flagged low quality or not a face (in no cluster, "
                         "not counted in alone): GET /v1/flagged-faces")
    hidden: int = Field(0, description="clusters hidden (not in total unless listed)")


class ClusterReject(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="the person these faces are not")


class ClusterRejected(BaseModel):
    cluster: int
    person: str = Field(description="never suggested for these faces again")
    faces: int = Field(description="faces of the cluster the rejection was recorded for")


class ClusterName(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "김지수"}]})
    name: str = Field(min_length=1, max_length=200,
                      description="a new person, or an existing one the faces are merged into")


class ClusterNamed(BaseModel):
    cluster: int
    person: Person
    created: bool = Field(description="true when the person is new")
    faces_named: int


class FaceMove(BaseModel):
    name: str | None = Field(max_length=200, description="the person the face belongs to (made when "
                                                         "new); null: take the face out, alone and unnamed")


class FaceDetail(BaseModel):
    id: int
    box: list[int] = Field(description="[x1, y1, x2, y2] in pixels of its photo", min_length=4, max_length=4)
    person: str | None = Field(description="null: unnamed")
    cluster: int | None = Field(description="the unnamed face's cluster (null: alone)")
    suggested: str | None
    photo_sha256: str
    image_url: str = Field(description="GET: a JPEG thumbnail of the face")


class FaceList(BaseModel):
    faces: list[FaceDetail]
    total: int


class PersonMerge(BaseModel):
    into: str = Field(min_length=1, max_length=200, description="the person who stays")


class PeopleMerged(BaseModel):
    merged: str = Field(description="the person who is gone")
    person: Person = Field(description="the person who stays, with the merged photos and faces")
    faces_moved: int


class PhotoWithPeople(BaseModel):
    sha256: str
    width: int
    height: int
    faces: int = Field(description="faces stored of the photo")
    image_url: str = Field(description="GET: the photo")
    face_url: str = Field(description="GET: a JPEG thumbnail of the first person's face in it")


class PhotoWithPeopleList(BaseModel):
    photos: list[PhotoWithPeople]
    total: int
