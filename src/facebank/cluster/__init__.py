"""Unsorted photos: scan a library into the gallery as unassigned faces, cluster them into people,
name / merge / move, and find photos by the people in them.

The data live in the gallery (``facebank.gallery.base.Gallery``; SQLite and PostgreSQL behave the
same, see tests/test_gallery_contract.py). People, photos and faces are one model:

* an enrolled photo is labelled with its person; a *scanned* photo has no person
  (``PhotoRecord(person=None, ...)`` in ``Gallery.add_photos``) and its faces are *unassigned*;
* unassigned faces never name anyone: ``Gallery.embeddings()`` (the identification index) holds
  only faces that have a person.

Gallery methods (every change is ONE transaction; errors are ``GalleryError`` subclasses:
``PersonNotFound``, ``PersonExists``, ``NotFound`` for a face or cluster id):

``unassigned_faces() -> FaceSet``
    ids, unit embeddings (n, dim) float32 and last cluster (-1 = none) of every unassigned face.
``set_clusters(labels: {face_id: cluster_id | None}, suggestions: {cluster_id: (name, l2)}) -> int``
    replaces the whole clustering of the unassigned faces (faces left out lose their cluster).
``faces(person=, cluster=, unassigned=, face_ids=) -> list[FaceInfo]``
    faces with photo path, sha256, box [x1, y1, x2, y2] (photo pixels), person, cluster and the
    cluster's suggested person; filters combine with AND; ordered by face id.
``name_cluster(cluster, name) -> int``
    every unassigned face of the cluster goes to ``name`` (new person, or merged into the existing
    one of that name); the cluster is gone afterwards. Returns the number of faces named.
``move_face(face_id, name | None)``
    one face to a person (created if new); ``None`` takes it out (unassigned again).
``merge_people(source, target) -> int``
    every photo and face of ``source`` goes to ``target``; ``source`` is removed.
``photos_with([names]) -> list[dict]``
    photos in which every named person has a face (keys as ``Gallery.photos``).

This package (on top of the gallery and the pipeline):

``facebank.cluster.scan``
    ``scan_library(bank, root, progress)``: every face of every photo under ``root`` (any
    nesting) into the gallery, unassigned; resumable and incremental like enrollment (it is an
    enrollment run, ``ScanRun``, on ``FaceBank.enroll_items``). ``scan_with_ray(root, url, ...)``:
    the same on Ray Data (``facebank.scale.ray_enroll``).
``facebank.cluster.methods``
    clustering methods on unit embeddings (``ClusterMethod`` Protocol, ``create(name, ...)``,
    ``available()``); the k-NN graph (exact, or the ANN index above 50k faces).
``facebank.cluster.engine``
    ``recluster(gallery, method, suggest_threshold) -> ClusterSummary``: cluster the unassigned
    faces, keep cluster ids stable, suggest names of people with named faces, store with
    ``set_clusters``; ``method_from_settings(settings)``: the default method;
    ``cluster_report(gallery, path)``: HTML, one row of thumbnails per cluster, largest first.
"""
