"""How fast the People view's listing answers as a scanned library grows: GET /v1/clusters (first
page: 50 clusters, 12 faces each) and GET /v1/faces?alone=true over a real server.

    .venv/bin/python bench/bench_people_view.py                        # 1k, 10k, 100k unnamed faces
    .venv/bin/python bench/bench_people_view.py --faces 1000,10000 --requests 10

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
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.gallery.sqlite import SqliteGallery
from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer
from facebank.settings import Settings

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", default="1000,10000,100000",
                    help="gallery sizes (unnamed faces), comma-separated")
    ap.add_argument("--requests", type=int, default=20, help="requests per route and size")
    args = ap.parse_args()
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
