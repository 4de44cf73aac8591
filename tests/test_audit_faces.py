"""no_face, multi_face and unreadable on made facts: the crop fallback counts as a face only when it
looks like its person, and only faces of similar size make a photo multi_face."""

from __future__ import annotations

import numpy as np

from facebank.audit.base import AuditConfig, FaceFacts, PhotoFacts
from facebank.audit.faces import FacesCheck
from facebank.audit.run import prepare
from facebank.types import Box


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _face(emb: np.ndarray, side: float = 100.0, x: float = 0.0, fallback: bool = False) -> FaceFacts:
    return FaceFacts(Box(x, 0, x + side, side), None, 0.9, emb.astype(np.float32), fallback)


def _photo(path: str, *faces: FaceFacts, error: str | None = None) -> PhotoFacts:
    return PhotoFacts(path, path.split("/")[0], path, 400, 400, None, tuple(faces), error)


def test_fallback_crops_count_as_faces_only_when_they_look_like_their_person():
    rng = np.random.default_rng(0)
    alice, kim = _unit(rng.normal(size=128)), _unit(rng.normal(size=128))

    def near(c):
        return _unit(c + 0.02 * rng.normal(size=128))

    photos = [_photo(f"alice/{n}.jpg", _face(near(alice))) for n in range(4)]
    photos += [
        _photo("alice/crop.jpg", _face(near(alice), fallback=True)),        # a tight crop of her
        _photo("alice/field.jpg", _face(_unit(rng.normal(size=128)), fallback=True)),  # a landscape
        _photo("alice/empty.jpg"),                                            # nothing at all
        _photo("alice/bad.jpg", error="truncated image"),
        # a folder of tight crops only: they vouch for one another
        _photo("kim/1.jpg", _face(near(kim), fallback=True)),
        _photo("kim/2.jpg", _face(near(kim), fallback=True)),
    ]
    found = sorted((f.path, f.kind) for f in FacesCheck().run(prepare("/", photos, AuditConfig())))
    assert found == [("alice/bad.jpg", "unreadable"), ("alice/empty.jpg", "no_face"),
                     ("alice/field.jpg", "no_face")]


def test_multi_face_needs_a_second_face_of_similar_size_and_names_the_persons_face():
    rng = np.random.default_rng(1)
    bob = _unit(rng.normal(size=128))
    photos = [_photo(f"bob/{n}.jpg", _face(_unit(bob + 0.02 * rng.normal(size=128)))) for n in range(4)]
    other = _unit(rng.normal(size=128))
    photos += [
        _photo("bob/crowd.jpg", _face(bob, 100), _face(other, 30, x=200)),   # a small face behind
        _photo("bob/pair.jpg", _face(other, 110, x=200), _face(bob, 90)),    # two of similar size
    ]
    found = [(f.path, f.kind, f.detail) for f in FacesCheck().run(prepare("/", photos, AuditConfig()))]
    assert [(p, k) for p, k, _ in found] == [("bob/pair.jpg", "multi_face")]
    assert "[0, 0, 90, 90] (the one most like the person)" in found[0][2]


def test_no_face_is_only_claimed_after_the_mmod_second_look_unless_the_user_chose_one(tmp_path, monkeypatch):
    import facebank.audit.run as run
    from facebank.audit.run import audit_folder
    from facebank.settings import Settings

    (tmp_path / "ann").mkdir()
    seen: list[str] = []

    def facts(items, settings, cache=None, progress=None):
        seen.append(settings.second_look)
        return []

    monkeypatch.setattr(run, "photo_facts", facts)
    audit_folder(tmp_path, Settings(workers=1))
    audit_folder(tmp_path, Settings(workers=1, second_look="rotate"))
    audit_folder(tmp_path, Settings(workers=1), AuditConfig(second_look=""))
    assert seen == ["mmod", "rotate", ""]
