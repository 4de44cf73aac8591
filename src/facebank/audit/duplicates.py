"""Findings about copies of one picture: ``duplicate`` (in one person's folder: every copy but the
best is flagged) and ``label_conflict`` (the same picture under two or more people)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from facebank.audit.base import AuditFolder, Finding, register
from facebank.audit.facts import hamming, thumb_correlation


def copy_groups(folder: AuditFolder) -> list[list[int]]:
    """Connected groups of photos that are copies of one another, each sorted, in path order."""
    seen: set[int] = set()
    groups = []
    for start in sorted(folder.copies):
        if start in seen:
            continue
        stack, group = [start], []
        seen.add(start)
        while stack:
            i = stack.pop()
            group.append(i)
            for j in folder.copies.get(i, ()):
                if j not in seen:
                    seen.add(j)
                    stack.append(j)
        groups.append(sorted(group))
    return groups


def _similarity(folder: AuditFolder, i: int, j: int) -> tuple[str, float]:
    """How alike two copies are, in words, and a confidence that they are one picture."""
    a, b = folder.photos[i], folder.photos[j]
    if a.sha256 and a.sha256 == b.sha256:
        return "identical bytes", 1.0
    c = folder.config
    assert c.dup_distance is not None, "prepare() sets the model's distances"
    bits = hamming(a.phash or 0, b.phash or 0)
    corr = thumb_correlation(a.thumb, b.thumb) if a.thumb and b.thumb else 0.0
    fa, fb = folder.main_face(i), folder.main_face(j)
    if fa is not None and fb is not None:
        d = float(np.linalg.norm(fa.embedding - fb.embedding))
        worst = max(bits / max(c.dup_hash_bits, 1), d / max(c.dup_distance, 1e-9),
                    (1.0 - corr) / max(1.0 - c.dup_correlation, 1e-9))
        return (f"pHash {bits} of 64 bits apart, pixels correlated {corr:.3f}, faces {d:.3f} apart",
                round(1.0 - 0.4 * min(1.0, worst), 3))
    worst = max(bits / max(c.dup_hash_bits_no_face, 1), (1.0 - corr) / max(1.0 - c.dup_correlation, 1e-9))
    return f"pHash {bits} of 64 bits apart, pixels correlated {corr:.3f}, no face", \
        round(1.0 - 0.4 * min(1.0, worst), 3)


def _keeper(folder: AuditFolder, group: list[int]) -> int:
    """The copy to keep: most pixels, then the biggest file (the least compressed), then the first path."""
    return min(group, key=lambda i: (-folder.photos[i].width * folder.photos[i].height,
                                     -folder.photos[i].size_bytes, folder.photos[i].path))


@register("duplicates")
class DuplicatesCheck:
    name = "duplicates"
    kinds: tuple[str, ...] = ("duplicate", "label_conflict")

    def run(self, folder: AuditFolder) -> Iterator[Finding]:
        photos = folder.photos
        for group in copy_groups(folder):
            people = sorted({photos[i].person for i in group})
            if len(people) > 1:
                for i in group:
                    others = [j for j in group if photos[j].person != photos[i].person]
                    how, conf = _similarity(folder, i, others[0])
                    names = ", ".join(p for p in people if p != photos[i].person)
                    yield Finding(photos[i].path, "label_conflict",
                                  f"the same picture is also filed under {names}: {photos[others[0]].path} "
                                  f"({how})", conf, photos[i].person,
                                  related=tuple(photos[j].path for j in others))
            for person in people:
                mine = [i for i in group if photos[i].person == person]
                if len(mine) < 2:
                    continue
                keep = _keeper(folder, mine)
                for i in mine:
                    if i == keep:
                        continue
                    how, conf = _similarity(folder, i, keep)
                    k = photos[keep]
                    yield Finding(photos[i].path, "duplicate",
                                  f"a copy of {k.path} ({photos[i].width}x{photos[i].height} vs "
                                  f"{k.width}x{k.height}; {how})", conf, person, related=(k.path,))
