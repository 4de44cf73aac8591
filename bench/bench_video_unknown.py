"""Unknown people grouped across shots ("unknown #k"): the group module's evidence against the mean
embeddings it replaced, on the generated reels of bench_video.py with some people left out of the
gallery.

    .venv/bin/python bench/bench_video_unknown.py [--faces ../shared/faces] [--work /tmp/facebank-bench-video]
        [--kinds dev,report]

Same reels and gallery (one photo per person of 5celeb) as bench/bench_video.py (its --work folder is
reused). Each reel is analysed once; then, for every pair of the 5 people in turn, those two are
taken as not enrolled: their tracks lose their name, the other three people's enrolled photos and
named tracks are the strangers, and the unknown tracks (2 frames or more) are grouped by
``facebank.video.analyze.group_unknown`` (the group module) and by the mean rule it replaced (a track
joins the unknown person whose mean embedding is nearest within ``cluster_l2``; kept here as the
baseline). Truth of a track: the person most of its sightings show.

Figures per reel kind, summed over the 10 pairs: unknown tracks of a true face; groups; groups
holding two or more true people (impure) and the tracks that are not their group's majority person
(wrongly grouped); pairs of tracks of one person put in one group (pair recall) and pairs put in one
group that are one person (pair precision); unknown people per true left-out person (1 = each
left-out person is one "unknown #k" across the reel).

Ends with ONE JSON line, appended to bench/results/video_unknown.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_video_naming import truth_of  # noqa: E402
from record import record  # noqa: E402
from video_reels import build_gallery, make_reels, measure_photos  # noqa: E402


def mean_rule(tracks, points, min_frames: int = 2) -> dict[int, int]:
    """The rule group_unknown had before the group module: nearest mean embedding within cluster_l2,
    never with a track on screen at the same time."""
    def unit(v: np.ndarray) -> np.ndarray:
        return v / max(float(np.linalg.norm(v)), 1e-12)

    groups: list[tuple[list, np.ndarray]] = []
    out: dict[int, int] = {}
    for tr in sorted(tracks, key=lambda t: (t.start_s, t.id)):
        if tr.name is not None or tr.frames < min_frames or not len(tr.embeddings):
            continue
        e = unit(tr.embeddings.astype(np.float64).mean(axis=0))
        best, best_d = None, points.cluster_l2
        for k, (members, mean) in enumerate(groups):
            d = float(np.linalg.norm(e - unit(mean)))
            if d <= best_d and not any(m.start_s <= tr.end_s and tr.start_s <= m.end_s for m in members):
                best, best_d = k, d
        if best is None:
            groups.append(([tr], e.copy()))
            best = len(groups) - 1
        else:
            members, mean = groups[best]
            members.append(tr)
            groups[best] = (members, mean + e)
        out[tr.id] = best + 1
    return out


def score(groups: dict[int, int], truth: dict[int, str | None], left_out: set[str]) -> Counter:
    c: Counter = Counter()
    ids = [i for i in groups if truth[i] is not None]
    c["unknown_tracks"] += len(ids)
    members: dict[int, list[str]] = {}
    for i in ids:
        members.setdefault(groups[i], []).append(truth[i])
    c["groups"] += len(members)
    for people in members.values():
        top = Counter(people).most_common(1)[0][1]
        c["impure_groups"] += len(set(people)) > 1
        c["wrongly_grouped_tracks"] += len(people) - top
    for a, b in itertools.combinations(ids, 2):
        same, joined = truth[a] == truth[b], groups[a] == groups[b]
        c["same_person_pairs"] += same
        c["same_person_pairs_joined"] += same and joined
        c["joined_pairs"] += joined
        c["joined_pairs_same_person"] += joined and same
    for p in left_out:
        got = {groups[i] for i in ids if truth[i] == p}
        if got:
            c["left_out_people_seen"] += 1
            c["unknown_people_for_them"] += len(got)
    return c


def finish(c: Counter) -> dict:
    d = dict(c)
    def share(a: str, b: str, digits: int = 4) -> float | None:
        return round(c[a] / c[b], digits) if c[b] else None

    d["pair_recall"] = share("same_person_pairs_joined", "same_person_pairs")
    d["pair_precision"] = share("joined_pairs_same_person", "joined_pairs")
    d["unknown_people_per_left_out_person"] = share("unknown_people_for_them", "left_out_people_seen", 3)
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path("..") / "shared" / "faces")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "facebank-bench-video")
    ap.add_argument("--kinds", default="dev,report")
    args = ap.parse_args()
    if not (args.faces / "5celeb" / "val").is_dir():
        sys.exit(f"error: {args.faces}/5celeb not found (give --faces)")
    from facebank import FaceBank
    from facebank.embed.points import points_for
    from facebank.groups import GroupContext
    from facebank.types import Match
    from facebank.video import analyze_video
    from facebank.video.analyze import group_unknown

    args.work.mkdir(parents=True, exist_ok=True)
    photos = measure_photos(args.faces, args.work)
    reels = make_reels(photos, args.work)
    out: dict = {}
    with FaceBank(build_gallery(photos, args.work)) as fb:
        points = points_for(fb.pipeline.model_id)
        gal = GroupContext.of(fb).gallery
        assert gal is not None
        enrolled = {p: gal.vectors[gal.labels == j] for j, p in enumerate(gal.people)}
        for kind in [k for k in args.kinds.split(",") if k]:
            totals = {"groups_module": Counter(), "mean_rule": Counter()}
            for reel in reels[kind]:
                res = analyze_video(fb, reel.path, fps=2.0)
                truth = {t.id: truth_of(reel, t.times_s, t.boxes) for t in res.tracks}
                for pair in itertools.combinations(sorted(enrolled), 2):
                    left = set(pair)
                    tracks = [dataclasses.replace(t, match=Match(None, float("inf"), -1.0, reason="no_match"))
                              if truth[t.id] in left else t for t in res.tracks]
                    strangers = [t.embeddings for t in tracks if t.name is not None]
                    strangers += [v for p, v in enrolled.items() if p not in left]
                    new = group_unknown(tracks, points, strangers=strangers)
                    old = mean_rule(tracks, points)
                    totals["groups_module"] += score(new, truth, left)
                    totals["mean_rule"] += score(old, truth, left)
            out[kind] = {k: finish(v) for k, v in totals.items()}
            print(f"{kind}: {json.dumps(out[kind])}", file=sys.stderr)
    line = record("video_unknown", out, notes="dev = 5celeb/train reels, report = 5celeb/val reels; each "
                  "pair of the 5 people left out of the gallery in turn (10 runs per reel); --fps 2")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
