-- facebank shared gallery schema, version 4: what the user said a face is NOT ("this face is not
-- that person": a rejected suggestion, a face taken out of a named person). A person a face was told
-- it is not is never suggested for it, nor for a cluster holding it (facebank.cluster.suggest).
CREATE TABLE IF NOT EXISTS face_rejections (
    face_id    BIGINT NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    person_id  BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (face_id, person_id)
);
CREATE INDEX IF NOT EXISTS face_rejections_person ON face_rejections(person_id);
