"""How fast the People view's listing answers as a scanned library grows: GET /v1/clusters (first
page: 50 clusters, 12 faces each) and GET /v1/faces?alone=true over a real server.

    .venv/bin/python bench/bench_people_view.py                        # 1k, 10k, 100k unnamed faces
    .venv/bin/python bench/bench_people_view.py --faces 1000,10000 --requests 10

    .venv/bin/python bench/bench_people_view.py --actions              # every People action at 100k faces

``--actions``: one library of ``--library`` face-like synthetic faces (``facebank.scale.synthetic``,
dlib's thresholds), the first ``--named`` people enrolled and the others scanned and clustered by
who they are; through a real server each People action (name a cluster as a new or an existing
person, move a face, take one out, merge two people, hide a cluster, set a cover, undo) is made
``--rounds`` times, each followed by the People view's listing (GET /v1/clusters, 50 clusters of
12 faces, with the live suggestions of that page); median and p95 of the action alone and of action
+ listing, recorded in bench/results/people_actions.jsonl with the load.

Each size is a fresh SQLite gallery of synthetic unnamed faces (random unit 128-d embeddings,
faces of fake photos: the listing reads boxes and photo records, never the image files) in
clusters of 2 to 30 faces plus 10 % alone, stored through the Gallery API (add_photos with no
person, set_clusters). The server (`LiveServer`, in this process, models loaded) is asked
``--requests`` times per route after a first request; reported: the first answer's wall time
(it reads every unnamed face: the grouping is then kept until the gallery changes), median and
p95 of the others in ms, and the answer size. Ends with one JSON line. Read the times with
``load_avg_1m``: the machine is shared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import record  # noqa: E402

from facebank.gallery.base import FaceRecord, PhotoRecord  # noqa: E402
from facebank.gallery.sqlite import SqliteGallery  # noqa: E402
from facebank.scale.synthetic import face_like_gallery  # noqa: E402
from facebank.server import ServerConfig  # noqa: E402
from facebank.server.auth import ApiKeyStore  # noqa: E402
from facebank.server.testing import LiveServer  # noqa: E402
from facebank.settings import Settings  # noqa: E402

MODEL_ID = "bench-synthetic"  # no real embedder's: these galleries are never identified against


def build(path: Path, n_faces: int, seed: int = 0) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    labels: dict[int, int | None] = {}
    with SqliteGallery(path) as g:
        batch, made = [], 0
        for i in range(n_faces):
            vec = rng.standard_normal(128).astype(np.float32)
            vec /= np.linalg.norm(vec)
            sha = hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()
            photo = PhotoRecord(None, f"/library/{i // 1000}/{i}.jpg", sha, 100_000, 640, 480, "ok")
            batch.append((photo, [FaceRecord((100.0, 80.0, 220.0, 240.0), vec, "mtcnn", 0.99)]))
            if len(batch) == 5000:
                made += g.add_photos(batch, MODEL_ID)
                batch = []
        if batch:
            made += g.add_photos(batch, MODEL_ID)
        ids = [f.face_id for f in g.faces(unassigned=True)]
        rng.shuffle(ids)
        alone = len(ids) // 10
        cluster, at = 0, alone
        for f in ids[:alone]:
            labels[f] = None
        while at < len(ids):
            size = int(rng.integers(2, 31))
            for f in ids[at:at + size]:
                labels[f] = cluster
            at += size
            cluster += 1
        g.set_clusters(labels)
    return {"faces": made, "clusters": cluster, "alone": alone}


def timed(client: httpx.Client, path: str, n: int) -> dict[str, float]:
    """The first answer (after a change of the gallery: the server reads all unnamed faces), then
    ``n`` more (the server's grouping is kept until the gallery changes)."""
    t0 = time.perf_counter()
    client.get(path).raise_for_status()
    first = (time.perf_counter() - t0) * 1000
    times, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        size = len(r.content)
    times.sort()
    return {"first_ms": round(first, 1), "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 1), "bytes": size}


# -- every People action and the listing after it, at library scale --------------------------------
LIBRARY_MODEL_ID = "dlib-resnet-v1"  # the synthetic faces are fitted to dlib's: its thresholds apply


def build_library(path: Path, n_faces: int, named_people: int, seed: int = 0) -> dict[str, int]:
    """``n_faces`` face-like synthetic faces (``facebank.scale.synthetic``: people of 1 to ~50 faces):
    the first ``named_people`` people enrolled (their photos named), the others scanned (unnamed) and
    clustered by their true person (faces of a person seen once stay alone)."""
    lib = face_like_gallery(n_faces, faces_per_person=8.0, seed=seed)
    labels = lib.labels
    with SqliteGallery(path) as g:
        batch: list = []
        for i in range(n_faces):
            p = int(labels[i])
            sha = hashlib.sha256(f"lib-{seed}-{i}".encode()).hexdigest()
            person = f"person {p:05d}" if p < named_people else None
            photo = PhotoRecord(person, f"/library/{i // 1000}/{i}.jpg", sha, 100_000, 640, 480, "ok")
            batch.append((photo, [FaceRecord((100.0, 80.0, 220.0, 240.0), lib.vectors[i], "mtcnn", 0.99)]))
            if len(batch) == 5000:
                g.add_photos(batch, LIBRARY_MODEL_ID)
                batch = []
        if batch:
            g.add_photos(batch, LIBRARY_MODEL_ID)
        unnamed = g.unassigned_faces()
        who = labels[unnamed.face_ids - unnamed.face_ids.min()]  # face ids follow the rows, from 1
        counts = np.bincount(who)
        g.set_clusters({int(f): (int(w) if counts[w] > 1 else None) for f, w in zip(unnamed.face_ids, who,
                                                                                     strict=True)})
    return {"faces": n_faces, "named_people": named_people, "unnamed": len(unnamed.face_ids),
            "clusters": int((counts > 1).sum())}


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def time_actions(c: httpx.Client, rounds: int) -> dict[str, dict[str, float]]:
    """Each People action ``rounds`` times, each followed by the listing (GET /v1/clusters first
    page, as the People view asks after every change); ms of the action and of the listing after."""
    listing = "/v1/clusters?limit=50&faces=12"
    times: dict[str, list[float]] = {}

    def run(kind: str, method: str, url: str, body: dict | None = None) -> httpx.Response:
        t0 = time.perf_counter()
        r = c.request(method, url, json=body)
        act = _ms(t0)
        r.raise_for_status()
        t0 = time.perf_counter()
        c.get(listing).raise_for_status()
        times.setdefault(kind, []).append(act)
        times.setdefault(kind + " + listing", []).append(_ms(t0) + act)
        return r

    c.get(listing).raise_for_status()  # the first read of the library (not a write's cost)
    for k in range(rounds):
        page = c.get(listing).json()["clusters"]
        a, b, d = page[2 * k % len(page)], page[(2 * k + 1) % len(page)], page[-1 - k % 10]
        people = [p["name"] for p in c.get("/v1/people?limit=50").json()["people"]][:40]
        run("name", "POST", f"/v1/clusters/{a['id']}/name", {"name": f"bench new {k}"})
        run("name existing", "POST", f"/v1/clusters/{b['id']}/name", {"name": people[k % len(people)]})
        run("move", "POST", f"/v1/faces/{d['faces'][0]['id']}/move", {"name": people[(k + 1) % len(people)]})
        run("take out", "POST", f"/v1/faces/{d['faces'][1]['id']}/move", {"name": None})
        run("merge", "POST", f"/v1/people/{quote(f'bench new {k}', safe='')}/merge",
            {"into": people[(k + 2) % len(people)]})
        run("hide", "POST", f"/v1/clusters/{d['id']}/hide", {"hidden": True})
        theirs = c.get(f"/v1/faces?person={quote(people[k % len(people)], safe='')}&limit=2").json()["faces"]
        run("cover", "POST", f"/v1/people/{quote(people[k % len(people)], safe='')}/cover",
            {"face": theirs[-1]["id"]})
        run("undo", "POST", "/v1/undo", {"steps": 1})
    out = {}
    for kind, ts in times.items():
        ts.sort()
        out[kind] = {"median_ms": round(statistics.median(ts), 1),
                     "p95_ms": round(ts[min(len(ts) - 1, int(0.95 * len(ts)))], 1), "n": len(ts)}
    return out


def main_actions(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-people-actions-") as tmp:
        gallery = Path(tmp) / "library.db"
        t0 = time.perf_counter()
        made = build_library(gallery, args.library, args.named)
        built = time.perf_counter() - t0
        with ApiKeyStore(gallery) as keys:
            _, key = keys.create("bench", scope="admin")
        cpu0 = os.times()
        with LiveServer(ServerConfig(settings=Settings(gallery=str(gallery)))) as server, \
                httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=600) as c:
            t0 = time.perf_counter()
            c.get("/v1/clusters?limit=50&faces=12").raise_for_status()
            first = _ms(t0)
            figures = time_actions(c, args.rounds)
        cpu1 = os.times()
    load = round(os.getloadavg()[0], 2)
    for kind, f in figures.items():
        print(f"{kind:>24}: median {f['median_ms']:8.1f} ms  p95 {f['p95_ms']:8.1f} ms  (n={f['n']})")
    print(f"first listing {first:.0f} ms; {made}; load {load}")
    notes = (f"{made['faces']} face-like synthetic faces, {made['named_people']} named people, "
             f"{made['clusters']} clusters of {made['unnamed']} unnamed faces; real server on 127.0.0.1 "
             f"(LiveServer), each action followed by GET /v1/clusters?limit=50&faces=12; "
             f"process CPU {cpu1.user + cpu1.system - cpu0.user - cpu0.system:.0f} s; load {load} "
             f"(2 cores shared)")
    record("people_actions", {"first_listing_ms": round(first, 1), "build_s": round(built, 1), **made,
                              "actions": figures}, notes=notes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", default="1000,10000,100000",
                    help="gallery sizes (unnamed faces), comma-separated")
    ap.add_argument("--requests", type=int, default=20, help="requests per route and size")
    ap.add_argument("--actions", action="store_true",
                    help="time every People action and the listing after it on one library instead")
    ap.add_argument("--library", type=int, default=100_000, help="--actions: faces in the library")
    ap.add_argument("--named", type=int, default=300, help="--actions: named people")
    ap.add_argument("--rounds", type=int, default=7, help="--actions: rounds of all actions")
    args = ap.parse_args()
    if args.actions:
        main_actions(args)
        return
    sizes = [int(s) for s in args.faces.split(",") if s.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-people-view-") as tmp:
        for n in sizes:
            gallery = Path(tmp) / f"g{n}.db"
            t0 = time.perf_counter()
            made = build(gallery, n)
            built = time.perf_counter() - t0
            with ApiKeyStore(gallery) as keys:
                _, key = keys.create("bench", scope="read")
            with LiveServer(ServerConfig(settings=Settings(gallery=str(gallery)))) as server, \
                    httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=300) as c:
                row = {"unnamed_faces": made["faces"], "clusters": made["clusters"], "alone": made["alone"],
                       "build_s": round(built, 1),
                       "clusters_page": timed(c, "/v1/clusters?limit=50&faces=12", args.requests),
                       "alone_page": timed(c, "/v1/faces?alone=true&limit=60", args.requests)}
            results.append(row)
            page, alone = row["clusters_page"], row["alone_page"]
            print(f"{n:>7} faces ({made['clusters']} clusters): GET /v1/clusters first {page['first_ms']} ms,"
                  f" then median {page['median_ms']} ms (p95 {page['p95_ms']}); GET /v1/faces?alone=true "
                  f"median {alone['median_ms']} ms", flush=True)
    print(json.dumps({"bench": "people_view", "load_avg_1m": round(os.getloadavg()[0], 2),
                      "results": results}))


if __name__ == "__main__":
    main()
