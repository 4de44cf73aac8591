"""``audit_folder``: walk a labelled folder, compute the facts of its photos once, derive what every
check shares (the face that shows each photo's person, which photos are copies of which), run the
registered checks and return the findings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from facebank.audit.base import KINDS, AuditConfig, AuditFolder, Finding, PhotoFacts, checks
from facebank.audit.facts import FactsCache, photo_facts, thumb_correlation
from facebank.audit.vectors import popcount64, robust_centroid
from facebank.folders import FolderWalk, OnSkip
from facebank.settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[..., Iterable]


def _no_progress(it: Iterable, **_: object) -> Iterable:
    return it


@dataclass(frozen=True)
class AuditResult:
    """The findings of one audit, most important kind first, and what was looked at."""

    root: str
    photos: int
    people: int
    findings: tuple[Finding, ...]
    # path -> the box (x1, y1, x2, y2, pixels) of the face taken to show the photo's person
    boxes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict, compare=False)
    # entries of the folder the walk did not use (a loop link, a FIFO, a photo outside any
    # person's folder), with the reason
    skipped: tuple[tuple[str, str], ...] = ()

    def by_kind(self) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {k: [] for k in KINDS}
        for f in self.findings:
            out.setdefault(f.kind, []).append(f)
        return {k: v for k, v in out.items() if v}

    def flagged_paths(self, kinds: Iterable[str] | None = None) -> list[str]:
        wanted = set(kinds) if kinds is not None else None
        return list(dict.fromkeys(f.path for f in self.findings if wanted is None or f.kind in wanted))


def labelled_photos(root: str | Path, on_skip: OnSkip | None = None) -> Iterator[tuple[str, str]]:
    """(photo path, person) for every photo under root/<person>/ (any depth), in a stable order,
    walked safely (facebank.folders: loops skipped, unreadable entries reported to ``on_skip``;
    photos directly in root have no person and are reported too)."""
    for person, path in FolderWalk(root, on_skip=on_skip).labelled():
        yield str(path), person


def audit_folder(root: str | Path, settings: Settings | None = None, config: AuditConfig | None = None,
                 cache: FactsCache | None = None, progress: Progress = _no_progress,
                 kinds: Iterable[str] | None = None) -> AuditResult:
    """Audit a folder with one sub-folder per person. Raises FileNotFoundError / NotADirectoryError
    for a bad root; every per-photo problem is a finding."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder (want one sub-folder per person)")
    settings = settings or Settings()
    config = config or AuditConfig()
    if not config.resolved:  # the distances of the model that embeds the photos
        from facebank.embed.points import points_for_settings

        config = config.with_points(points_for_settings(settings))
    if config.second_look and not settings.second_look:
        settings = settings.model_copy(update={"second_look": config.second_look})
    skipped: list[tuple[str, str]] = []
    items = list(labelled_photos(root, on_skip=lambda path, reason: skipped.append((path, reason))))
    facts = photo_facts(items, settings, cache, progress)
    folder = prepare(str(root), facts, config)
    return replace(run_checks(folder, kinds), skipped=tuple(skipped))


def run_checks(folder: AuditFolder, kinds: Iterable[str] | None = None) -> AuditResult:
    wanted = set(kinds) if kinds is not None else None
    found: list[Finding] = []
    for check in checks():
        if wanted is not None and not wanted & set(check.kinds):
            continue
        found.extend(f for f in check.run(folder) if wanted is None or f.kind in wanted)
    order = {k: i for i, k in enumerate(KINDS)}
    found.sort(key=lambda f: (order.get(f.kind, len(order)), -f.confidence, f.path))
    flagged = {f.path for f in found}
    boxes = {}
    for i, p in enumerate(folder.photos):
        face = folder.main_face(i)
        if face is not None and p.path in flagged:
            boxes[p.path] = (face.box.x1, face.box.y1, face.box.x2, face.box.y2)
    return AuditResult(folder.root, len(folder.photos), len(folder.people), tuple(found), boxes)


# ---- what the checks share --------------------------------------------------------------------------
def prepare(root: str, photos: list[PhotoFacts], config: AuditConfig) -> AuditFolder:
    if not config.resolved:  # no model named: the default embedder's distances
        from facebank.embed.points import points_for_settings

        config = config.with_points(points_for_settings(Settings()))
    assert config.same_person is not None, "with_points() sets every distance"
    folder = AuditFolder(root, photos, config)
    folder.people = sorted({p.person for p in photos})
    folder.main = _main_faces(photos)
    folder.rejected_fallback = _rejected_fallbacks(photos, folder.main, config.same_person)
    for i in folder.rejected_fallback:
        folder.main[i] = None
    rows = np.full(len(photos), -1, np.int64)
    vecs: list[np.ndarray] = []
    for i, k in enumerate(folder.main):
        if k is not None:
            rows[i] = len(vecs)
            vecs.append(photos[i].faces[k].embedding)
    folder.rows = rows
    folder.embeddings = np.stack(vecs).astype(np.float32) if vecs else np.zeros((0, 128), np.float32)
    folder.copies = _copies(folder)
    return folder


def _main_faces(photos: list[PhotoFacts]) -> list[int | None]:
    """The face that shows each photo's person: the only face, else the one nearest the person's
    centre (from the photos with one face), else the largest."""
    single: dict[str, list[np.ndarray]] = {}
    for p in photos:
        if len(p.faces) == 1 and not p.faces[0].fallback:
            single.setdefault(p.person, []).append(p.faces[0].embedding)
    centres = {k: robust_centroid(np.stack(v)) for k, v in single.items()}
    out: list[int | None] = []
    for p in photos:
        if not p.faces:
            out.append(None)
        elif len(p.faces) == 1 or p.person not in centres:
            out.append(0)
        else:
            c = centres[p.person]
            out.append(int(np.argmin([np.linalg.norm(f.embedding - c) for f in p.faces])))
    return out


def _rejected_fallbacks(photos: list[PhotoFacts], main: list[int | None], same: float) -> dict[int, float]:
    """Photos where no detector found a face and the whole photo, taken as a face crop, is farther
    than ``same`` from every other photo of its person (a folder of tight crops vouches for itself:
    its crops match one another; a landscape matches nobody)."""
    by_person: dict[str, list[tuple[int, int]]] = {}  # person -> (photo, its main face)
    for i, k in enumerate(main):
        if k is not None:
            by_person.setdefault(photos[i].person, []).append((i, k))
    out: dict[int, float] = {}
    for i, (p, k) in enumerate(zip(photos, main, strict=True)):
        if k is None or not p.faces[k].fallback:
            continue
        others = [(j, kj) for j, kj in by_person.get(p.person, []) if j != i]
        e = p.faces[k].embedding
        d = min((float(np.linalg.norm(photos[j].faces[kj].embedding - e)) for j, kj in others),
                default=float("inf"))
        if d > same:
            out[i] = d
    return out


def _copies(folder: AuditFolder, block: int = 64) -> dict[int, set[int]]:
    """Pairs of photos that are the same picture: the same bytes, or pHashes within
    ``dup_hash_bits``, thumbnails correlated at least ``dup_correlation`` and main faces within
    ``dup_distance`` (without a face in both: hashes within ``dup_hash_bits_no_face``). Hashes are
    compared block by block (memory stays bounded)."""
    c = folder.config
    assert c.dup_distance is not None, "prepare() sets the model's distances"
    photos = folder.photos
    out: dict[int, set[int]] = {}

    def link(i: int, j: int) -> None:
        out.setdefault(i, set()).add(j)
        out.setdefault(j, set()).add(i)

    by_sha: dict[str, list[int]] = {}
    for i, p in enumerate(photos):
        if p.sha256:
            by_sha.setdefault(p.sha256, []).append(i)
    for group in by_sha.values():
        for a in group[1:]:
            link(group[0], a)
    hashed = [i for i, p in enumerate(photos) if p.phash is not None]
    if len(hashed) < 2:
        return out
    hashes = np.array([photos[i].phash for i in hashed], dtype=np.uint64)
    for s in range(0, len(hashed), block):
        bits = popcount64(hashes[s:s + block, None] ^ hashes[None, :])
        for a, b in zip(*np.nonzero(bits <= c.dup_hash_bits), strict=True):
            i, j = hashed[s + int(a)], hashed[int(b)]
            if i >= j:
                continue
            ti, tj = photos[i].thumb, photos[j].thumb
            if ti is None or tj is None or thumb_correlation(ti, tj) < c.dup_correlation:
                continue
            fi, fj = folder.main_face(i), folder.main_face(j)
            if fi is not None and fj is not None:
                if float(np.linalg.norm(fi.embedding - fj.embedding)) <= c.dup_distance:
                    link(i, j)
            elif int(bits[a, b]) <= c.dup_hash_bits_no_face:
                # a face in neither, or found in one copy only (a detector's outcome on a smaller or
                # noisier copy, no sign of another picture): the hash and pixels alone, stricter
                link(i, j)
    return out
