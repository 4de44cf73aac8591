"""One settings object for the whole toolkit.

Values come, in order of precedence, from keyword arguments / CLI flags, environment variables
prefixed ``FACEBANK_`` (e.g. ``FACEBANK_GALLERY=/data/people.db``, ``FACEBANK_THRESHOLD=0.5``) and
the defaults below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MultiFacePolicy = Literal["skip", "largest", "central"]
MatchRule = Literal["nearest", "mean"]
CropFallback = Literal["auto", "always", "never"]
# No distance constant lives here: every L2 threshold left unset below is the embedding model's own
# (``facebank.embed.points.points_for(model_id)``: verify_l2, identify_l2, cluster_l2, ...).
# bumped when the alignment of detector landmarks changes (cached embeddings are then stale):
# 2 = least-squares similarity fit of all points (1 was OpenCV's LMEDS fit)
ALIGN_VERSION = 2
SECOND_LOOKS = ("upsample", "rotate", "hog", "mmod")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEBANK_", extra="ignore")

    gallery: str = Field("facebank.db", description="gallery: a SQLite file path (or postgresql:// URL)")

    # images
    max_pixels: int = Field(80_000_000, description="refuse photos with more pixels than this")
    detect_max_side: int = Field(1280, description="photos are shrunk to this longer side for detection")

    # detection
    detector: str = Field("mtcnn", description="face detector: mtcnn, hog, mmod, crop")
    upsample: int | Literal["auto"] = Field(
        "auto", description="HOG/MMOD upsampling; auto picks it from the photo size (small faces)"
    )
    min_face: int = Field(40, description="HOG/MMOD: smallest face side in pixels to look for")
    mtcnn_min_face: int = Field(20, description="MTCNN: smallest face side in pixels to look for")
    crop_fallback: CropFallback = Field(
        "auto",
        description="take the whole photo as the face: auto = only for small photos where nothing "
        "was found, always = never detect (pre-cropped sets), never",
    )
    crop_fallback_max_side: int = Field(
        256, description="auto crop fallback only for near-square photos at most this big"
    )
    pad_crops: float = Field(
        0.25, ge=0.0, le=1.0,
        description="tight crops (near-square, at most crop_fallback_max_side) where no face was found "
        "are searched again inside a black border of this fraction of their side (faces cut by the "
        "crop's edge); 0 = off",
    )
    # scan, enroll and audit look again with "mmod" unless this is set (pipeline.with_cascade): it
    # finds large faces MTCNN misses (grey, tinted, beards, glasses, hats) at a bounded cost
    second_look: str = Field(
        "",
        description="photos where the detector finds no face get a second look before 'no face': a "
        "comma list of upsample (2x, small photos), rotate (copies turned by +-30 degrees), hog (dlib's "
        "HOG detector), mmod (dlib's CNN detector on the photo shrunk to mmod_max_side); empty = none",
    )
    mmod_max_side: int = Field(
        256, ge=64, le=4096,
        description="second look 'mmod': the photo is shrunk to this longer side first (MMOD's cost "
        "grows with the pixels: ~0.3 s of one core at 256 px, ~1.7 s at 640 px; bench/bench_cascade.py)")
    mmod_upsample: int = Field(0, ge=0, le=1, description="second look 'mmod': upsampling steps (0 or 1; "
                               "1 finds faces half as big at 4x the cost)")

    # embedding
    embedder: str = Field(
        "fast", description="embedder: fast (dlib's ResNet on onnxruntime), dlib (reference) or onnx"
    )
    flip: bool = Field(
        True, description="average the embedding of the face and its mirror image (one more pass of the "
        "embedder per face; LFW open set +4.5 points DIR at FAR 1 %, View 2 +0.37 points)")
    onnx_model: str | None = Field(None, description="path of a user-supplied ONNX face model")

    # enrollment
    multi_face: MultiFacePolicy = Field(
        "largest", description="photos of one person with several faces: skip, largest, central"
    )
    workers: int = Field(0, description="worker processes for folders of photos; 0 = one per core")
    threads: int = Field(0, description="onnxruntime threads per process; 0 = one per core")

    # identification
    threshold: float | None = Field(
        None,
        description="identification: the decision rule's largest score that still names a person (for "
        "the 'distance' rule: L2 distance between unit embeddings); unset = estimated from the gallery "
        "itself for target_far (see 'facebank people list')",
    )
    target_far: float = Field(
        0.01, gt=0.0, lt=1.0,
        description="share of strangers the automatic threshold may name (estimated from the gallery's "
        "own people)",
    )
    decision: str = Field(
        "margin:combine=both,weight=0.5",
        description="decision rule naming a face or calling it unknown: distance, margin, tnorm, znorm, "
        "spread, with options as rule:field=value,... (see facebank.decide); the default scores a face "
        "by its L2 distance to a person (mean of nearest face and mean embedding) minus half the gap "
        "to the next person",
    )
    verify_threshold: float | None = Field(
        None, ge=0.0, le=2.0, description="verification of two photos: largest L2 distance for 'same "
        "person'; unset = the model's own (its operating points: 'facebank models list')"
    )
    rule: MatchRule = Field("nearest", description="distance to a person: nearest enrolled face or mean")

    # videos: what one video may cost (facebank serve sets both by default)
    video_max_frames: int | None = Field(
        None, ge=1, description="videos: most frames decoded per video (every frame, not only the analysed "
        "ones); past it the video fails with 'budget_exceeded'; unset = no limit")
    video_max_seconds: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="videos: most wall seconds of work per video; past it "
        "the video fails with 'budget_exceeded'; unset = no limit")

    # clustering of unassigned faces (facebank cluster): chosen on LFW people with 5-9 photos
    # by bench/bench_cluster.py
    cluster_method: str = Field("chinese-whispers", description="clustering method of 'facebank cluster'")
    cluster_threshold: float | None = Field(
        None, ge=0.0, le=2.0, description="clustering: largest L2 distance between two faces that links "
        "them (chinese-whispers on the 10-nearest-neighbour graph, edges weighted by cosine similarity); "
        "unset = the model's own cluster_l2")

    @field_validator("second_look")
    @classmethod
    def _known_looks(cls, v: str) -> str:
        looks = [w.strip() for w in v.split(",") if w.strip()]
        bad = [w for w in looks if w not in SECOND_LOOKS]
        if bad:
            raise ValueError(f"unknown second look {bad[0]!r}: a comma list of {', '.join(SECOND_LOOKS)}")
        return ",".join(looks)

    def pipeline_key(self) -> str:
        """The settings that change what faces and embeddings a photo yields."""
        return (
            f"{self.detector}|up={self.upsample}|min={self.min_face}:{self.mtcnn_min_face}|crop={self.crop_fallback}:"
            f"{self.crop_fallback_max_side}|pad={self.pad_crops:g}|side={self.detect_max_side}|flip={int(self.flip)}"
            f"|align={ALIGN_VERSION}" + (f"|look={self.second_look}" if self.second_look else "")
            + (f":{self.mmod_max_side}:{self.mmod_upsample}" if "mmod" in self.second_look else "")
        )
