"""The gallery under concurrent writers and kills (the torture run of tests/test_gallery_torture.py),
and what SQLite's ``synchronous=FULL`` would cost against the ``NORMAL`` the gallery uses.

    .venv/bin/python bench/bench_torture.py                     # 20 rounds, the sync comparison
    .venv/bin/python bench/bench_torture.py --rounds 40 --seed 3 --no-sync

Torture: each round, library writer processes (people, renames, photos with 3 faces, merges; API
keys), a thread writing over HTTP to a real ``facebank serve`` on 127.0.0.1 and, every 6th round, a
real ``facebank people rename``; round 0 also runs a real ``facebank enroll`` of 5 photos (needs
../shared/faces). One writer is SIGKILLed at a random moment in each round (the server every 8th
round, then restarted). Every writer logs ``op begin`` / ``op ack`` lines, fsync'ed; after each
round every acknowledged operation must be in the gallery, the one a killed writer had begun must
be there whole or not at all, and integrity_check / foreign_key_check must be clean.

Sync cost: one process, one gallery per mode on the same disk, blocks of small transactions
(a rename; one photo with 3 faces) alternated between the modes so the machine's load hits both
alike; writes/s are wall-clock (an fsync waits for the disk, it costs no CPU). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import record  # noqa: E402

from facebank.gallery import sqlite as gallery_sqlite  # noqa: E402
from facebank.gallery.base import FaceRecord, PhotoRecord  # noqa: E402
from facebank.server.torture import Torture  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACEBANK_SHARED_FACES") or REPO.parent / "shared" / "faces")


def sync_cost(folder: Path, blocks: int, per_block: int) -> dict[str, float]:
    """Transactions per second with synchronous=NORMAL and =FULL (WAL both), alternated."""
    rng = np.random.default_rng(0)
    galleries, chosen = {}, gallery_sqlite.SYNCHRONOUS
    for mode in ("NORMAL", "FULL"):
        gallery_sqlite.SYNCHRONOUS = mode
        galleries[mode] = gallery_sqlite.SqliteGallery(folder / f"sync-{mode}.db")
        galleries[mode].add_person("p0")
    gallery_sqlite.SYNCHRONOUS = chosen
    spent = {(m, k): 0.0 for m in galleries for k in ("rename", "photo")}
    done = {(m, k): 0 for m in galleries for k in ("rename", "photo")}
    for b in range(blocks):
        for mode in (("NORMAL", "FULL") if b % 2 == 0 else ("FULL", "NORMAL")):
            g = galleries[mode]
            t = time.perf_counter()
            for i in range(per_block):
                n = done[(mode, "rename")]
                g.rename_person(f"p{n}", f"p{n + 1}")
                done[(mode, "rename")] += 1
                del i
            spent[(mode, "rename")] += time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(per_block):
                n = done[(mode, "photo")]
                vecs = rng.normal(size=(3, 128)).astype(np.float32)
                faces = [FaceRecord((0.0, 0.0, 1.0, 1.0), v / np.linalg.norm(v), "bench", 1.0) for v in vecs]
                sha = f"{mode}{n:060d}"
                g.add_photos([(PhotoRecord(None, f"bench/{sha}", sha, 1, 1, 1, "ok"), faces)], "bench-model")
                done[(mode, "photo")] += 1
            spent[(mode, "photo")] += time.perf_counter() - t
    for g in galleries.values():
        g.close()
    out = {}
    for (mode, kind), s in spent.items():
        out[f"{kind}_per_s_{mode.lower()}"] = round(done[(mode, kind)] / s, 1)
    for kind in ("rename", "photo"):
        normal, full = out[f"{kind}_per_s_normal"], out[f"{kind}_per_s_full"]
        out[f"{kind}_full_over_normal_time"] = round(normal / full, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--round-s", type=float, default=0.6, help="seconds of writing per round")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--no-sync", action="store_true", help="skip the synchronous NORMAL/FULL comparison")
    ap.add_argument("--sync-blocks", type=int, default=10)
    ap.add_argument("--sync-per-block", type=int, default=40)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    enroll = FACES / "5celeb" / "val" / "ben_afflek"
    with tempfile.TemporaryDirectory(prefix="facebank-torture-") as tmp:
        env = {"PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        cpu0 = os.times()
        figures = Torture(Path(tmp) / "torture", rounds=args.rounds, round_s=args.round_s, seed=args.seed,
                          enroll_folder=enroll if enroll.is_dir() else None, env=env).run()
        cpu1 = os.times()
        result = {
            "synchronous": gallery_sqlite.SYNCHRONOUS, "rounds": figures.rounds,
            "acknowledged_writes": figures.acknowledged_writes,
            "unacknowledged_begun": figures.unacknowledged_begun, "kills": figures.kills,
            "server_kills": figures.server_kills, "cli_commands": figures.cli_commands,
            "enrolled_photos": figures.enrolled_photos, "violations": len(figures.violations),
            "wall_s": round(figures.wall_s, 1),
            "cpu_s_children": round((cpu1.children_user + cpu1.children_system)
                                    - (cpu0.children_user + cpu0.children_system), 1),
        }
        if not args.no_sync:
            folder = Path(tmp) / "sync"
            folder.mkdir()
            result.update(sync_cost(folder, args.sync_blocks, args.sync_per_block))
    for v in figures.violations:
        print("violation:", v, file=sys.stderr)
    record("torture", result, notes=f"seed {args.seed}, round {args.round_s} s; sync: WAL, "
           f"{args.sync_blocks} alternated blocks of {args.sync_per_block} transactions per kind and mode, "
           "on the disk of the temporary folder")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
