"""Cluster the gallery's unassigned faces into people; suggest names; a report of the clusters.

``recluster`` reads the unassigned faces (``Gallery.unassigned_faces``), clusters them with a
method of ``facebank.cluster.methods``, keeps the ids of clusters that survive (a cluster keeps the
id of the old cluster it shares most faces with, so ids a person saw stay valid across scans),
suggests for each cluster the enrolled or already named person its faces match, and stores it
all in one transaction (``Gallery.set_clusters``). Faces already named are never reclustered: the
clusters people named stay their people, and new faces like them get their name as a suggestion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebank.cluster.groups import group_faces
from facebank.cluster.methods import ClusterMethod, create
from facebank.gallery.base import Gallery
from facebank.groups import BankLike
from facebank.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Suggestion:
    """The person a cluster looks like: median over its faces of the L2 distance to that person's
    nearest face (unit embeddings), at most the identification threshold."""

    cluster: int
    person: str
    distance: float


@dataclass(frozen=True)
class ClusterSummary:
    """What one clustering did: faces clustered, clusters found, faces left alone, suggestions."""

    method: str
    threshold: float  # L2 distance (unit embeddings) of the method
    faces: int
    clusters: int
    alone: int
    suggestions: tuple[Suggestion, ...]
    seconds: float


def method_from_settings(settings: Settings, name: str | None = None, threshold: float | None = None,
                         min_size: int | None = None, model_id: str | None = None) -> ClusterMethod:
    """The clustering method; its threshold: ``threshold``, else ``settings.cluster_threshold``, else
    the cluster edge of ``model_id`` (the gallery's model) or of the settings' embedder."""
    from facebank.cluster.methods import available

    if (name or settings.cluster_method) not in available():  # a usage error before any model lookup
        create(name or settings.cluster_method)
    if threshold is None:
        threshold = settings.cluster_threshold
    if threshold is None:  # the model's own cluster edge
        from facebank.embed.points import points_for, points_for_settings

        pts = points_for(model_id) if model_id else points_for_settings(settings)
        threshold = pts.cluster_l2
    return create(name or settings.cluster_method, threshold=threshold, min_size=min_size)


def stable_ids(new: np.ndarray, old: np.ndarray, reserved: Iterable[int] = ()) -> np.ndarray:
    """New labels (-1 = alone) renamed so a cluster keeps the id of the old cluster it shares the
    most faces with (each old id used once); other clusters get ids above every old one and every
    ``reserved`` one (ids of clusters that were named: they stay their person's)."""
    out = np.full(len(new), -1, np.int64)
    pairs: dict[tuple[int, int], int] = {}
    for a, b in zip(new.tolist(), old.tolist(), strict=True):
        if a >= 0 and b >= 0:
            pairs[(a, b)] = pairs.get((a, b), 0) + 1
    mapping: dict[int, int] = {}
    used: set[int] = set()
    for (a, b), _ in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
        if a not in mapping and b not in used:
            mapping[a] = b
            used.add(b)
    next_id = int(max(old.max(initial=-1), max(reserved, default=-1), -1)) + 1
    for a in sorted(set(new.tolist()) - {-1}):
        if a not in mapping:
            mapping[a] = next_id
            next_id += 1
    for i, a in enumerate(new.tolist()):
        if a >= 0:
            out[i] = mapping[a]
    return out


def keep_apart(face_ids: np.ndarray, labels: np.ndarray, pairs: Iterable[tuple[int, int]]) -> np.ndarray:
    """Labels with every cannot-link kept: where a face taken out of a cluster (the first of a pair)
    landed in one cluster with a face of the cluster it left, it is taken out again (alone)."""
    out = labels.copy()
    where = {int(f): i for i, f in enumerate(face_ids.tolist())}
    for a, b in pairs:
        i, j = where.get(a), where.get(b)
        if i is not None and j is not None and out[i] >= 0 and out[i] == out[j]:
            out[i] = -1
    return out


def suggest(gallery: Gallery, vectors: np.ndarray, labels: np.ndarray, threshold: float) -> list[Suggestion]:
    """For each cluster, the person (with named faces) nearest to its faces, if within ``threshold``."""
    from facebank.gallery.ann import build_index

    named = gallery.embeddings()
    if not len(named.names) or not (labels >= 0).any():
        return []
    index = build_index(named)
    out = []
    for c in sorted(set(labels.tolist()) - {-1}):
        members = vectors[labels == c]
        dist = index.person_distances(members)  # nearest face of each person, per member
        median = np.median(dist.nearest, axis=0)
        best = int(np.argmin(median))
        if median[best] <= threshold:
            out.append(Suggestion(c, dist.people[best], float(median[best])))
    return out


def recluster(gallery: Gallery, method: ClusterMethod,
              suggest_threshold: float | None = None, bank: BankLike | None = None) -> ClusterSummary:
    """Cluster every unassigned face again and store the clusters and suggestions (one transaction).
    With ``bank`` (a FaceBank on ``gallery``) each cluster's suggestion comes from all its faces
    (``facebank.cluster.suggest``, calibrated for the amount of evidence; ``Suggestion.distance`` is
    then the group score in the decision rule's unit); without, ``suggest_threshold`` (L2 distance;
    None = the gallery model's ``identify_l2``) bounds the median nearest-face distance."""
    from facebank.embed.points import NotCalibrated, points_for

    if suggest_threshold is None and gallery.model_id is not None:  # None: the rule estimates its own
        try:
            suggest_threshold = points_for(gallery.model_id).identify_l2
        except NotCalibrated as exc:  # clusters without suggestions, rather than no clusters
            log.warning("no suggestions: %s", exc)
    t0 = time.perf_counter()
    todo = gallery.unassigned_faces()
    labels = method.labels(todo.vectors) if len(todo) else np.zeros(0, np.int64)
    # corrections kept: named cluster ids are never reused, taken-out faces stay out
    named = gallery.named_cluster_ids() if hasattr(gallery, "named_cluster_ids") else {}
    labels = stable_ids(labels, todo.clusters, named)
    if hasattr(gallery, "cannot_link"):
        labels = keep_apart(todo.face_ids, labels, gallery.cannot_link())
    if bank is not None:
        from facebank.cluster.suggest import suggest_clusters

        found = suggest_clusters(bank, todo.face_ids, todo.vectors, labels)
        suggestions = [Suggestion(c, s.person, s.score) for c, s in sorted(found.items()) if s.person]
    elif suggest_threshold is not None:
        suggestions = suggest(gallery, todo.vectors, labels, suggest_threshold)
    else:
        suggestions = []
    gallery.set_clusters(
        {int(f): (int(c) if c >= 0 else None) for f, c in zip(todo.face_ids, labels, strict=True)},
        {s.cluster: (s.person, s.distance) for s in suggestions})
    summary = ClusterSummary(method.name, float(getattr(method, "threshold", float("nan"))), len(todo),
                             len(set(labels.tolist()) - {-1}), int((labels < 0).sum()), tuple(suggestions),
                             time.perf_counter() - t0)
    log.info("clustered %d faces into %d clusters (%d alone, %d suggestions) in %.1f s", summary.faces,
             summary.clusters, summary.alone, len(suggestions), summary.seconds)
    return summary


def cluster_report(gallery: Gallery, path: str | Path, max_faces: int = 24, size: int = 96,
                   max_pixels: int = 80_000_000) -> Path:
    """An HTML page: one row of face thumbnails per cluster, largest cluster first (at most
    ``max_faces`` per row), then the faces left alone. Photos that cannot be read are named."""
    import io

    from facebank import images
    from facebank.draw import face_thumbnail
    from facebank.report.html import Report

    flagged = gallery.flagged_faces() if hasattr(gallery, "flagged_faces") else {}
    faces = gallery.faces(unassigned=True)
    groups = group_faces(f for f in faces if f.face_id not in flagged)
    rep = Report("Face clusters")
    rep.text(f"{groups.faces} unassigned faces: {len(groups.clusters)} clusters, {len(groups.alone)} alone. "
             "Name a cluster with: facebank people name CLUSTER NAME")

    def thumbs(members) -> list[tuple[bytes, str]]:
        out = []
        for f in members[:max_faces]:
            try:
                img = images.load_image(f.path, max_pixels=max_pixels)
            except images.ImageError as exc:
                log.warning("no thumbnail of face %d: %s", f.face_id, exc)
                continue
            buf = io.BytesIO()
            face_thumbnail(img.rgb, f.box, size).save(buf, format="JPEG", quality=80)
            out.append((buf.getvalue(), f"face {f.face_id}: {Path(f.path).name}"))
        return out

    for g in groups.clusters:
        hint = f", looks like {g.suggested}" if g.suggested else ""
        rep.thumbnails(thumbs(g.faces), f"cluster {g.cluster}: {g.size} faces{hint}")
    if groups.alone:
        rep.thumbnails(thumbs(groups.alone), f"alone: {len(groups.alone)} faces")
    junk = [f for f in faces if f.face_id in flagged]
    if junk:
        rep.thumbnails(thumbs(junk), f"low quality or not a face (in no cluster): {len(junk)} faces")
    return rep.save(path)
