"""facebank reembed: a gallery switched to another model keeps every face, person and id; a photo no
longer on disk is a listed problem (the gallery stays on its old model) and a rerun finishes."""

from __future__ import annotations

import shutil

import numpy as np
from typer.testing import CliRunner

from facebank.cli import app
from facebank.gallery.sqlite import SqliteGallery
from tests.test_models_real import shared_model


def test_reembed_switches_the_model_keeps_ids_and_resumes_after_a_missing_photo(tmp_path, faces_dir,
                                                                                monkeypatch):
    monkeypatch.setenv("FACEBANK_DATA_DIR", str(tmp_path / "data"))
    run = CliRunner().invoke
    assert run(app, ["models", "install", "mobilefacenet", "--from", str(shared_model()),
                     "--no-calibrate"]).exit_code == 0
    photos = tmp_path / "photos"
    for person in ("jerry_seinfeld", "mindy_kaling", "elton_john"):
        (photos / person).mkdir(parents=True)
        for f in sorted((faces_dir / "5celeb" / "val" / person).iterdir())[:2]:
            shutil.copy(f, photos / person / f.name)
    gallery = tmp_path / "g.db"
    res = run(app, ["enroll", str(photos), "-g", str(gallery), "--embedder", "fast", "-j", "1"])
    assert res.exit_code == 0, res.output
    g = SqliteGallery(gallery)
    before = {f.face_id: (f.person, f.path) for f in g.faces()}
    people_before = {p.name: p.faces for p in g.people()}
    g.close()
    # mixing is refused with a message offering reembed
    res = run(app, ["enroll", str(photos), "-g", str(gallery), "--onnx-model", "mobilefacenet", "-j", "1"])
    assert res.exit_code != 0 and "reembed" in res.output

    gone = sorted((photos / "mindy_kaling").iterdir())[0]
    kept = tmp_path / gone.name
    shutil.move(gone, kept)
    res = run(app, ["reembed", "-g", str(gallery), "--onnx-model", "mobilefacenet"])
    assert res.exit_code == 1 and gone.name in res.output and "stays on dlib-resnet-v1" in res.output
    g = SqliteGallery(gallery)
    assert g.model_id == "dlib-resnet-v1" and {f.face_id for f in g.faces()} == set(before)  # nothing deleted
    g.close()

    shutil.move(kept, gone)
    res = run(app, ["reembed", "-g", str(gallery), "--onnx-model", "mobilefacenet"])
    assert res.exit_code == 0, res.output
    assert "(1 now, 5 before)" in res.output  # only the missing photo's face was left to embed
    g = SqliteGallery(gallery)
    assert g.model_id.startswith("onnx:b7120c095d60094f:")
    assert {f.face_id: (f.person, f.path) for f in g.faces()} == before
    assert {p.name: p.faces for p in g.people()} == people_before
    data = g.embeddings()
    g.close()
    x = np.asarray(data.vectors)
    names = np.asarray(data.names)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    same = names[:, None] == names[None]
    off = ~np.eye(len(x), dtype=bool)
    assert d[same & off].max() < d[~same].min()  # same people closer, on MobileFaceNet's scale
    assert not (tmp_path / "g.db.reembed.sqlite").exists()
