"""Face-like synthetic embeddings for search tests and benchmarks at sizes no photo set reaches.

Uniform random unit vectors are the wrong test data for nearest-neighbour search: in 128
dimensions all their distances are nearly equal (~1.41), there are no clusters, and approximate
indexes do badly on them for reasons real galleries never show. Real face embeddings live in a
narrow cone with a few dominant directions and tight clusters per person.

This generator is a two-covariance model (the generative model behind PLDA) fitted to real dlib
embeddings (2,295 LFW photos of 1,200 people, computed with facebank's pipeline):

* all embeddings share a mean direction (norm 0.913 of the mean of unit embeddings);
* a person's centre = mean + N(0, B), between-person variance trace 0.119;
* a face = centre + N(0, W), within-person variance trace 0.047; then L2-normalised;
* both covariances have LFW's decaying spectra (about 40 directions hold 85 % of the variance, none
  past 80), in random independent bases.

Distances it gives (checked in tests/test_index_ann.py): same person median ~0.30, different
people median ~0.57, as on LFW (0.30 and 0.57).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEAN_NORM = 0.913
BETWEEN_TRACE = 0.119
WITHIN_TRACE = 0.047
# share of the variance along the k-th principal direction, at a few k (log-linear in between)
_BETWEEN_KNOTS = ((0, 0.125), (2, 0.062), (5, 0.041), (10, 0.0245), (20, 0.0132), (40, 0.0055),
                  (60, 0.0021), (80, 1e-5), (127, 1e-6))
_WITHIN_KNOTS = ((0, 0.032), (5, 0.025), (10, 0.0226), (20, 0.0175), (40, 0.0111), (60, 0.0066),
                 (80, 1e-5), (127, 1e-6))


def _spectrum(knots: tuple[tuple[int, float], ...], dim: int, trace: float) -> np.ndarray:
    ks = np.array([k for k, _ in knots], float) * (dim - 1) / 127.0
    vals = np.exp(np.interp(np.arange(dim), ks, np.log([v for _, v in knots])))
    return vals * trace / vals.sum()


@dataclass(frozen=True, eq=False)
class FaceLikeModel:
    """The fitted model for one random draw of bases: sample people and their faces from it."""

    mean: np.ndarray  # (dim,)
    between: np.ndarray  # (dim, dim): centre = mean + z @ between
    within: np.ndarray  # (dim, dim): face = centre + z @ within

    @classmethod
    def create(cls, dim: int = 128, seed: int = 0) -> FaceLikeModel:
        rng = np.random.default_rng(seed)
        mean = rng.standard_normal(dim)
        mean *= MEAN_NORM / np.linalg.norm(mean)

        def basis() -> np.ndarray:
            q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
            return q

        b = np.sqrt(_spectrum(_BETWEEN_KNOTS, dim, BETWEEN_TRACE))[:, None] * basis()
        w = np.sqrt(_spectrum(_WITHIN_KNOTS, dim, WITHIN_TRACE))[:, None] * basis()
        return cls(mean.astype(np.float32), b.astype(np.float32), w.astype(np.float32))

    @property
    def dim(self) -> int:
        return len(self.mean)

    def centres(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.mean + rng.standard_normal((n, self.dim)).astype(np.float32) @ self.between

    def faces(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = centres + rng.standard_normal(centres.shape).astype(np.float32) @ self.within
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class FaceLikeGallery:
    vectors: np.ndarray  # (n, dim) float32 unit rows
    labels: np.ndarray  # (n,) person number of each row
    centres: np.ndarray  # (people, dim) unnormalised person centres
    model: FaceLikeModel

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"person {i:07d}" for i in self.labels)

    def queries(self, n: int, seed: int = 1, known: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """New faces (not stored) of enrolled people (share ``known``) and of strangers (label -1)."""
        rng = np.random.default_rng(seed)
        n_known = int(round(n * known))
        who = rng.integers(0, len(self.centres), n_known)
        centres = np.concatenate([self.centres[who], self.model.centres(n - n_known, rng)])
        labels = np.concatenate([who, np.full(n - n_known, -1)])
        return self.model.faces(centres, rng), labels


def face_like_gallery(n_faces: int, faces_per_person: float = 10.0, dim: int = 128, seed: int = 0,
                      chunk: int = 200_000) -> FaceLikeGallery:
    """``n_faces`` unit embeddings of about n_faces / faces_per_person people (1 to ~5x the mean
    faces each, geometric), rows grouped by person."""
    rng = np.random.default_rng(seed)
    model = FaceLikeModel.create(dim, seed)
    counts = rng.geometric(1.0 / faces_per_person, size=int(n_faces / faces_per_person * 2) + 10)
    counts = counts[np.cumsum(counts) <= n_faces]
    if counts.sum() < n_faces:
        counts = np.append(counts, n_faces - counts.sum())
    centres = model.centres(len(counts), rng)
    labels = np.repeat(np.arange(len(counts)), counts)
    vectors = np.empty((n_faces, dim), np.float32)
    for start in range(0, n_faces, chunk):  # bounded temporary memory at 1M+ faces
        vectors[start:start + chunk] = model.faces(centres[labels[start:start + chunk]], rng)
    return FaceLikeGallery(vectors, labels, centres, model)
