"""Findings about who a face is: ``mislabeled`` (nearer another person of the folder than its own;
the likely person is named) and ``outlier`` (like nobody in its own folder).

A face is ``mislabeled`` as Q when, of its ``k`` nearest other photos, more are Q than its own
person and Q holds a majority; Q's centre is nearer than its own person's; and those Q photos are,
on average, within ``outlier_distance`` (dlib's same-person bound 0.6; a stranger's nearest photos
are farther and it is an ``outlier`` instead). A face is an ``outlier`` when no other photo of its
person is within ``outlier_distance``.

Every photo is judged leave-one-out, so a wrong photo cannot vouch for itself: its ``k`` nearest
other photos vote (copies of the same picture are left out: no independent evidence), and its
distance to each person's centre is measured with the centre computed without it. Centres are
trimmed means (``robust_centroid``), so the few wrong photos of a folder barely move them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import numpy as np

from facebank.audit.base import AuditFolder, Finding, register
from facebank.audit.vectors import neighbours, robust_centroid


def _centres(folder: AuditFolder, labels: np.ndarray) -> tuple[list[str], np.ndarray, dict[str, tuple]]:
    """Person names, their unit centres (P, D) and, per person, (kept-row mask, kept sum, kept count)
    for leave-one-out corrections."""
    e = folder.embeddings
    names = sorted(set(labels.tolist()))
    centres = np.zeros((len(names), e.shape[1]), np.float64)
    parts: dict[str, tuple] = {}
    for n, name in enumerate(names):
        rows = np.flatnonzero(labels == name)
        vecs = e[rows].astype(np.float64)
        c = robust_centroid(vecs)
        d = np.linalg.norm(vecs - c, axis=1)
        kept = d <= np.quantile(d, 0.8) if len(rows) >= 5 else np.ones(len(rows), bool)
        centres[n] = c
        parts[name] = (dict(zip(rows.tolist(), kept.tolist(), strict=True)), vecs[kept].sum(axis=0),
                       int(kept.sum()))
    return names, centres, parts


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


@register("identity")
class IdentityCheck:
    name = "identity"
    kinds: tuple[str, ...] = ("mislabeled", "outlier")

    def run(self, folder: AuditFolder) -> Iterator[Finding]:
        c = folder.config
        assert c.outlier_distance is not None, "prepare() sets the model's distances"
        e = folder.embeddings
        if len(e) < 3:
            return
        photo_of = np.flatnonzero(folder.rows >= 0)
        labels = np.array([folder.photos[i].person for i in photo_of], dtype=object)
        names, centres, parts = _centres(folder, labels)
        col = {n: k for k, n in enumerate(names)}
        k = min(c.neighbours, len(e) - 1)
        idx, dist = neighbours(folder, k)
        own_near = self._nearest_own(folder, labels)
        for r, i in enumerate(photo_of):
            p = folder.photos[int(i)]
            own = p.person
            d_centres = np.linalg.norm(centres - e[r], axis=1)
            kept, total, count = parts[own]
            if count - int(kept.get(r, False)) <= 0:
                d_own = float("inf")  # the only photo of its person: no centre without it
            else:
                loo = total - e[r] if kept.get(r, False) else total
                d_own = float(np.linalg.norm(_unit(loo) - e[r]))
            d_centres[col[own]] = np.inf
            best = int(np.argmin(d_centres))
            other, d_other = names[best], float(d_centres[best])
            votes = Counter(labels[j] for j in idx[r] if j >= 0)
            n_votes = sum(votes.values())
            top = max((n for n in votes if n != own), key=lambda n: (votes[n], -d_centres[col[n]]),
                      default=None)
            near_top = [float(dist[r, n]) for n, j in enumerate(idx[r]) if j >= 0 and labels[j] == top]
            if (top is not None and top == other and d_other < d_own
                    and votes[top] > votes.get(own, 0) and 2 * votes[top] > n_votes
                    and float(np.mean(near_top)) <= c.outlier_distance):
                share = votes[top] / n_votes
                margin = min(1.0, (d_own - d_other) / 0.2)
                conf = round(0.5 * share + 0.5 * margin, 3)
                yield Finding(p.path, "mislabeled",
                              f"looks like {other}, not {own}: {votes[top]} of its {n_votes} nearest photos "
                              f"are {other}; {d_other:.2f} from {other}'s centre vs {d_own:.2f} from "
                              f"{own}'s", conf, own, suggestion=other)
                continue
            near = own_near[r]
            if np.isfinite(near) and near > c.outlier_distance:  # a person's only photo: no yardstick
                conf = round(min(1.0, 0.5 + (near - c.outlier_distance) / 0.4), 3)
                yield Finding(p.path, "outlier",
                              f"like no other photo of {own}: the nearest is {near:.2f} away (over "
                              f"{c.outlier_distance:.2f}); nearest other person {other} at {d_other:.2f} "
                              f"from the centre", conf, own)

    @staticmethod
    def _nearest_own(folder: AuditFolder, labels: np.ndarray) -> np.ndarray:
        """For every row: the L2 distance to the nearest other photo of the same person (copies of
        the same picture left out); inf when there is none."""
        e = folder.embeddings
        photo_of = np.flatnonzero(folder.rows >= 0)
        out = np.full(len(e), np.inf)
        for name in set(labels.tolist()):
            rows = np.flatnonzero(labels == name)
            for s in range(0, len(rows), 1024):
                part = rows[s:s + 1024]
                dots = e[part] @ e[rows].T
                for a, r in enumerate(part):
                    dots[a, s + a] = -np.inf
                    for j in folder.copies.get(int(photo_of[r]), ()):
                        rj = folder.rows[j]
                        if rj >= 0:
                            dots[a, rows == rj] = -np.inf
                best = dots.max(axis=1) if len(rows) > 1 else np.full(len(part), -np.inf)
                ok = np.isfinite(best)
                out[part[ok]] = np.sqrt(np.clip(2.0 - 2.0 * best[ok], 0.0, 4.0))
        return out
