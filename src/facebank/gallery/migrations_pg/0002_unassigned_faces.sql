-- facebank shared gallery schema, version 2: faces without a person (scanned photo libraries) and
-- clusters. A scanned photo has no person (photos.person_id NULL); its faces are unassigned
-- (faces.person_id NULL) until they are named. faces.cluster is the last clustering's label of an
-- unassigned face (NULL = alone or not clustered yet); clusters holds each cluster's suggestion.
CREATE TABLE clusters (
    id                  BIGINT PRIMARY KEY,
    suggested_person_id BIGINT REFERENCES people(id) ON DELETE SET NULL,
    suggested_distance  REAL                       -- L2 distance (unit embeddings) behind the suggestion
);
ALTER TABLE photos ALTER COLUMN person_id DROP NOT NULL;
ALTER TABLE faces ALTER COLUMN person_id DROP NOT NULL;
ALTER TABLE faces ADD COLUMN cluster BIGINT REFERENCES clusters(id) ON DELETE SET NULL;
CREATE INDEX faces_cluster ON faces(cluster);
CREATE INDEX faces_unassigned ON faces(id) WHERE person_id IS NULL;
