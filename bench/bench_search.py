"""Gallery search at 10k / 100k / 1M faces: exact vs HNSW (FAISS, AnnIndex) vs pgvector, on face-like data.

    .venv/bin/python bench/bench_search.py [--sizes 10000,100000,1000000] [--pg-sizes 10000,100000]
        [--queries 300] [--m 32] [--ef-construction 200] [--codec sq8] [--refine 2]
        [--ef 32,64,96,128,192,256] [--no-hnsw]

Face-like data (facebank.scale.synthetic): embeddings from a two-covariance model fitted to real
dlib embeddings of LFW (same person median distance ~0.30, different people ~0.57), ~10 faces per
person; queries are new faces of enrolled people (80 %) and of strangers (20 %). Uniform random
vectors would be the wrong test (no clusters: HNSW recall 0.03-0.10 on them).

For each size:
* SQLite + ExactIndex: store in a SQLite gallery, read back (``embeddings()``), build ExactIndex;
  top-5 latency, memory of the index;
* HNSW (AnnIndex: FAISS graph over --codec codes, exact re-ranking of --refine x k faces): build
  time, memory (RSS growth, and ``memory_bytes()``), top-5 latency and recall@10 against the exact
  answer (float32 vectors) for every ef in --ef; the headline is the smallest ef reaching
  recall@10 >= 0.99; ``person_distances`` latency too (what identification calls);
* pgvector (sizes in --pg-sizes; needs pgserver): load, HNSW index build (m=16,
  ef_construction=64, pgvector's defaults), top-5 latency server-side (``ORDER BY <-> LIMIT 5``)
  and recall@10, hnsw.ef_search 100 and 200.

Latencies are per single query on one thread (p50/p95 over --queries), as wall time and as CPU
time of this process (the machine may be shared: the CPU time leaves out waiting for a core; for
pgvector it is the client's share only, the server works in its own processes).
Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from facebank.gallery.ann import AnnIndex, one_blas_thread
from facebank.gallery.base import Embeddings, FaceRecord, PhotoRecord
from facebank.gallery.index import ExactIndex
from facebank.scale.synthetic import face_like_gallery

MODEL = "dlib-resnet-v1"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def pct(times: list[tuple[float, float]]) -> dict[str, float]:
    """p50/p95 of wall time, and p50 of CPU time (this process, all threads): on a shared machine
    the wall time includes waiting for a core, the CPU time does not."""
    wall = np.asarray([w for w, _ in times]) * 1e3
    cpu = np.asarray([c for _, c in times]) * 1e3
    return {"p50_ms": round(float(np.percentile(wall, 50)), 4),
            "p95_ms": round(float(np.percentile(wall, 95)), 4),
            "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 4)}


def timed(fn, queries) -> tuple[list[tuple[float, float]], list]:
    """Each query alone, on one BLAS thread (OpenBLAS's second thread costs ~10 ms per small
    product on a busy machine; one query at a time is what a server answering many does)."""
    fn(queries[0])  # warm-up
    times, out = [], []
    with one_blas_thread():
        for q in queries:
            t, c = time.perf_counter(), time.process_time()
            r = fn(q)
            times.append((time.perf_counter() - t, time.process_time() - c))
            out.append(r)
    return times, out


def recall_at_10(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return round(hits / (10 * len(truth)), 4)


def records(vectors: np.ndarray, names: tuple[str, ...], start: int, stop: int):
    for i in range(start, stop):
        yield (PhotoRecord(names[i], f"/synthetic/{i}.jpg", f"{i:064x}", 1000, 250, 250, "ok"),
               [FaceRecord((0.0, 0.0, 100.0, 100.0), vectors[i], "synthetic", 1.0)])


def load_gallery(gallery, vectors: np.ndarray, names: tuple[str, ...], first: int = 0,
                 batch: int = 20_000) -> float:
    t = time.perf_counter()
    for start in range(first, len(vectors), batch):
        gallery.add_photos(list(records(vectors, names, start, min(start + batch, len(vectors)))), MODEL)
    return time.perf_counter() - t


def bench_size(n: int, args, pg_server) -> dict:
    out: dict = {"faces": n}
    t = time.perf_counter()
    g = face_like_gallery(n, faces_per_person=10.0, seed=n)
    names = g.names
    out["people"] = int(len(g.centres))
    out["generate_s"] = round(time.perf_counter() - t, 1)
    queries, _ = g.queries(args.queries, seed=12345, known=0.8)

    # SQLite gallery + ExactIndex ----------------------------------------------------------------
    from facebank.gallery.sqlite import SqliteGallery

    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        sq = SqliteGallery(Path(tmp) / "g.db")
        load_s = load_gallery(sq, g.vectors, names)
        gc.collect()
        before = rss_mb()
        t = time.perf_counter()
        data = sq.embeddings()
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        exact = ExactIndex(data)
        build_s = time.perf_counter() - t
        del data
        gc.collect()
        exact_mem = rss_mb() - before
        sq.close()
    times, truth_top10 = timed(lambda q: exact.search(q, 10)[0], queries)
    times5, _ = timed(lambda q: exact.search(q, 5), queries)
    pd_times, _ = timed(lambda q: exact.person_distances(q[None]), queries[: min(100, len(queries))])
    out["sqlite_exact"] = {
        "store_s": round(load_s, 1), "read_embeddings_s": round(read_s, 2),
        "index_build_s": round(build_s, 2),
        "index_mem_mb": round(exact_mem, 1), "vectors_mb": round(exact.vectors.nbytes / 2**20, 1),
        "top5": pct(times5), "person_distances": pct(pd_times),
    }
    print(f"[{n}] sqlite+exact {out['sqlite_exact']}", file=sys.stderr, flush=True)
    ids_exact = exact.face_ids.copy()
    vectors_sorted, names_sorted = exact.vectors, tuple(exact.people[i] for i in exact.labels)
    exact = None
    gc.collect()

    if not args.no_hnsw:
        out["hnsw"] = bench_hnsw(n, args, vectors_sorted, names_sorted, ids_exact, queries, truth_top10)
        gc.collect()

    # pgvector ------------------------------------------------------------------------------------
    if pg_server is not None and n in args.pg_sizes:
        out["pgvector"] = bench_pgvector(pg_server, n, g.vectors, names, queries, truth_top10)
    return out


def bench_hnsw(n, args, vectors_sorted, names_sorted, ids_exact, queries, truth_top10) -> dict:
    before = rss_mb()
    t = time.perf_counter()
    ann = AnnIndex(Embeddings(vectors_sorted, names_sorted, ids_exact), m=args.m,
                   ef_construction=args.ef_construction, codec=args.codec, refine=args.refine,
                   candidates=args.candidates, threads=args.threads)
    build_s = time.perf_counter() - t
    gc.collect()
    ann_mem = rss_mb() - before
    res: dict = {"m": args.m, "ef_construction": args.ef_construction, "codec": args.codec,
                 "refine": args.refine, "build_threads": ann.threads, "build_s": round(build_s, 1),
                 "load_avg_1m_after_build": round(os.getloadavg()[0], 2),
                 "mem_mb": round(ann_mem, 1), "est_mem_mb": round(ann.memory_bytes() / 2**20, 1), "by_ef": {}}
    headline = None
    for ef in args.ef:
        ann.ef_search = ef
        _, found10 = timed(lambda q: ann.search(q, 10)[0], queries)
        t5, _ = timed(lambda q: ann.search(q, 5), queries)
        rec = recall_at_10(found10, truth_top10)
        res["by_ef"][str(ef)] = {"recall_at_10": rec, "top5": pct(t5),
                                 "load_avg_1m": round(os.getloadavg()[0], 2)}
        print(f"[{n}] hnsw ef={ef} recall@10 {rec} top5 {pct(t5)} load {os.getloadavg()[0]:.2f}",
              file=sys.stderr, flush=True)
        if headline is None and rec >= 0.99:
            headline = {"ef": ef, "recall_at_10": rec, "top5": pct(t5)}
    res["at_recall_0_99"] = headline
    ann.ef_search = headline["ef"] if headline else max(args.ef)
    pd_times, _ = timed(lambda q: ann.person_distances(q[None]), queries[: min(100, len(queries))])
    res["person_distances"] = pct(pd_times) | {"candidates": args.candidates}
    return res


def bench_pgvector(server, n, vectors, names, queries, truth_top10) -> dict:
    import psycopg

    from facebank.gallery.postgres import PostgresGallery

    dbname = f"bench_{n}_{os.getpid()}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname}")
        conn.execute(f"CREATE DATABASE {dbname}")
    pg = PostgresGallery(server.get_uri(dbname))
    try:
        pg.add_photos(list(records(vectors, names, 0, 1)), MODEL)  # fixes model + dimension
        pg.drop_search_index()  # bulk load first, then build the index once
        load_s = load_gallery(pg, vectors, names, first=1)
        # faces were stored in the order given; map their ids to the bench's face numbers
        id_map = dict(pg._db.execute("SELECT f.id, ph.path FROM faces f JOIN photos ph ON ph.id=f.photo_id"))
        number = {fid: int(path.rsplit("/", 1)[1].split(".")[0]) for fid, path in id_map.items()}
        pg._db.execute("SET maintenance_work_mem = '4GB'")
        pg._db.execute("SET max_parallel_maintenance_workers = 1")
        t = time.perf_counter()
        pg.create_search_index()
        index_s = time.perf_counter() - t
        size_mb = pg._db.execute("SELECT pg_relation_size('faces_embedding_hnsw')").fetchone()[0] / 2**20
        table_mb = pg._db.execute("SELECT pg_total_relation_size('faces')").fetchone()[0] / 2**20
        # exact answers are SQLite face ids: 1..n in insertion order = generated order + 1
        truth = [np.asarray(t10, np.int64) - 1 for t10 in truth_top10]
        res = {"load_s": round(load_s, 1), "index_build_s": round(index_s, 1), "index_mb": round(size_mb, 1),
               "table_with_indexes_mb": round(table_mb, 1), "by_ef_search": {}}
        for ef in (100, 200):
            pg._db.execute(f"SET hnsw.ef_search = {ef}")
            _, found10 = timed(lambda q: pg.search(q, 10)[0], queries)
            found_numbers = [np.asarray([number[int(i)] for i in f]) for f in found10]
            t5, _ = timed(lambda q: pg.search(q, 5), queries)
            rec = recall_at_10(found_numbers, truth)
            res["by_ef_search"][str(ef)] = {"recall_at_10": rec, "top5": pct(t5)}
            print(f"[{n}] pgvector ef_search={ef} recall@10 {rec} top5 {pct(t5)}", file=sys.stderr,
                  flush=True)
        return res
    finally:
        pg.close()
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname}")


def start_pg():
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        return None, "pgserver not installed"
    folder = tempfile.mkdtemp(prefix="bench-pg-")
    atexit.register(shutil.rmtree, folder, True)  # runs after pgserver's handler stopped the server
    server = pgserver.get_server(os.path.join(folder, "data"), cleanup_mode="delete")
    # stopped by `timeout` or kill: still run the exit handlers, which stop the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return server, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--pg-sizes", default="10000,100000", help="sizes also run on pgvector ('' = none)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--codec", default="sq8", help="how the graph stores faces: sq8, fp16 or float")
    ap.add_argument("--refine", type=float, default=2.0,
                    help="the graph returns refine x k faces, re-ranked exactly")
    ap.add_argument("--threads", type=int, default=2, help="threads building the HNSW graph (queries: one)")
    ap.add_argument("--ef", default="32,64,96,128,192,256")
    ap.add_argument("--candidates", type=int, default=128)
    ap.add_argument("--no-hnsw", action="store_true", help="skip the HNSW index (e.g. a pgvector-only run)")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.pg_sizes = {int(s) for s in args.pg_sizes.split(",") if s}
    args.ef = [int(e) for e in args.ef.split(",")]
    server, why = start_pg() if args.pg_sizes else (None, "not asked")
    started = time.time()
    results = []
    for n in args.sizes:
        results.append(bench_size(n, args, server))
    summary = {
        "bench": "search", "data": "face-like (two-covariance model fitted to LFW dlib embeddings)",
        "queries": args.queries, "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "pgvector": "ran" if server is not None else f"skipped: {why}",
        "seconds": round(time.time() - started, 1), "sizes": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
