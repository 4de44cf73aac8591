"""Why video tracks stay unnamed: every track of the generated reels of bench_video.py, with its true
person, its group decision (``facebank.groups``) and how far it is from being named.

    .venv/bin/python bench/bench_video_naming.py [--faces ../shared/faces] [--work /tmp/facebank-bench-video]
        [--kinds dev,report] [--tracks-out tracks.jsonl]

Same reels, gallery (one photo per person) and settings as bench/bench_video.py (its --work folder is
reused: reels rendered once). Per reel kind (dev = 5celeb/train reels, report = 5celeb/val reels):

- tracks of a true person (a track whose sightings are mostly a true face), named right / wrongly /
  unknown;
- of the unknown ones: whether the true person is the candidate (the best group score), how many
  independent faces the group used (``effective``), the gap between the group score and the group
  bound (score - threshold, the decision rule's unit), how many of its faces alone are within the
  single-photo threshold of the true person (scored by the decision rule), and the single-photo
  threshold and bound in use;
- "what if": tracks that a bound raised by 0.01 / 0.02 / 0.05 would name right and wrongly
  (shows whether the unknown tracks are just above the bound, and what relaxing it costs), and
  tracks that "at least half of the faces alone name one person, none another" would name;
- the sampled faces one by one: the true person nearest, and within the single-photo threshold.

Ends with ONE JSON line, appended to bench/results/video_naming.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import record  # noqa: E402
from video_reels import build_gallery, make_reels, measure_photos  # noqa: E402

DELTAS = (0.01, 0.02, 0.05)


def truth_of(reel, times, boxes) -> str | None:
    """The person most of a track's sightings show (None: mostly no true face)."""
    votes = Counter()
    for t, b in zip(times, boxes, strict=True):
        app = reel.appearance_of(float(t), [float(x) for x in b])
        votes[app.person if app is not None else None] += 1
    return votes.most_common(1)[0][0] if votes else None


def diagnose_reel(fb, reel, fps: float = 2.0) -> tuple[list[dict], list[dict]]:
    from facebank.decide import reorder
    from facebank.groups import GroupContext
    from facebank.video import analyze_video
    from facebank.video.name import embedding_times

    frames: list = []
    res = analyze_video(fb, reel.path, fps=fps, on_faces=lambda fr, faces: frames.append((fr.time_s, faces)))
    ctx = GroupContext.of(fb)
    tracks = list(res.tracks)
    cohort = ctx.cohort_scores([t.embeddings for t in tracks])
    people = ctx.decision.people
    rows = []
    for i, t in enumerate(tracks):
        cal = ctx.calibration([c for j, c in enumerate(cohort) if j != i])
        g = ctx.decide(t.embeddings, embedding_times(t), cal)
        truth = truth_of(reel, t.times_s, t.boxes)
        dist = reorder(ctx.distances(t.embeddings), people)
        sc = np.asarray(ctx.decision.rule.scores(dist), np.float64)  # the rule's scores, its unit
        best = sc.argmin(axis=1)
        alone = sc[np.arange(len(sc)), best] <= cal.threshold_1  # each face named alone
        single_right = int((alone & (best == people.index(truth))).sum()) if truth in people else 0
        single_other = int((alone & (np.array(people)[best] != truth)).sum())
        rows.append({"reel": reel.path.name, "track": t.id, "truth": truth, "name": t.name,
                     "candidate": g.candidate, "score": round(g.score, 4), "threshold": round(g.threshold, 4),
                     "threshold_1": round(cal.threshold_1, 4), "effective": g.effective,
                     "sightings": t.frames, "embeddings": len(t.embeddings), "agree": g.agree,
                     "single_right": single_right, "single_other": single_other, "by_majority": g.by_majority,
                     "cal_source": cal.source, "icc": round(cal.icc, 3),
                     "stranger_score": round(cal.stranger_score, 4)
                     if np.isfinite(cal.stranger_score) else None})
    faces = []
    for t, fs in frames:
        for f in fs:
            app = reel.appearance_of(t, [f.box.x1, f.box.y1, f.box.x2, f.box.y2])
            if app is None:
                continue
            d = reorder(ctx.distances(f.embedding[None]), people)
            near = np.asarray(d.nearest, np.float64)[0]
            sc = np.asarray(ctx.decision.rule.scores(d), np.float64)[0]
            j = people.index(app.person) if app.person in people else -1
            faces.append({"truth": app.person, "nearest_is_truth": bool(j >= 0 and sc.argmin() == j),
                          "truth_l2": float(near[j]) if j >= 0 else None,
                          "named_right": bool(j >= 0 and sc.argmin() == j
                                              and sc[j] <= ctx.decision.point.threshold)})
    return rows, faces


def summarize(rows: list[dict], faces: list[dict]) -> dict:
    real = [r for r in rows if r["truth"] is not None]
    unk = [r for r in real if r["name"] is None]
    gaps = np.array([r["score"] - r["threshold"] for r in unk if np.isfinite(r["score"])])
    eff = Counter(r["effective"] for r in unk)
    what_if = {}
    for d in DELTAS:
        right = sum(1 for r in unk if r["candidate"] == r["truth"] and r["score"] <= r["threshold"] + d)
        wrong = sum(1 for r in real if r["name"] is None and r["candidate"] != r["truth"]
                    and r["score"] <= r["threshold"] + d)
        false = sum(1 for r in rows if r["truth"] is None and r["name"] is None
                    and r["score"] <= r["threshold"] + d)
        what_if[f"+{d}"] = {"named_right": right, "named_wrongly": wrong, "false_detections_named": false}
    # what if a track were named when at least half (not more than half) of its faces alone name
    # one person and none names another
    half = [r for r in unk if r["single_right"] * 2 >= r["sightings"] and r["single_other"] == 0
            and r["single_right"] > 0]
    half_wrong = [r for r in rows if r["name"] is None and r["single_right"] == 0 and r["single_other"] > 0
                  and r["single_other"] * 2 >= r["sightings"]]
    what_if["half_of_faces_alone"] = {"named_right": len(half), "named_wrongly": len(half_wrong)}
    t2 = [r["truth_l2"] for r in faces if r["truth_l2"] is not None]
    return {
        "tracks": len(rows), "tracks_of_a_true_face": len(real),
        "named_right": sum(1 for r in real if r["name"] == r["truth"]),
        "named_wrongly": sum(1 for r in real if r["name"] is not None and r["name"] != r["truth"]),
        "unknown": len(unk),
        "unknown_sightings": sum(r["sightings"] for r in unk),
        "unknown_candidate_is_truth": sum(1 for r in unk if r["candidate"] == r["truth"]),
        "unknown_effective_faces": {str(k): eff[k] for k in sorted(eff)},
        "unknown_with_no_face_alone_right": sum(1 for r in unk if r["single_right"] == 0),
        "unknown_with_half_or_more_faces_alone_right": sum(1 for r in unk
                                                           if r["single_right"] * 2 >= r["sightings"]),
        "unknown_gap_quantiles": {q: round(float(np.quantile(gaps, float(q))), 4)
                                  for q in ("0.1", "0.25", "0.5", "0.75", "0.9")} if len(gaps) else {},
        "threshold_1": sorted({r["threshold_1"] for r in rows}),
        "bound_range": [min(r["threshold"] for r in rows), max(r["threshold"] for r in rows)] if rows else [],
        "calibration_sources": sorted({r["cal_source"] for r in rows}),
        "what_if_bound_raised": what_if,
        "faces_one_by_one": {"faces": len(faces), "truth_nearest": sum(r["nearest_is_truth"] for r in faces),
                             "named_right": sum(r["named_right"] for r in faces),
                             "truth_l2_quantiles": {q: round(float(np.quantile(t2, float(q))), 4)
                                                    for q in ("0.1", "0.5", "0.9")} if t2 else {}},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path("..") / "shared" / "faces")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "facebank-bench-video")
    ap.add_argument("--kinds", default="dev,report")
    ap.add_argument("--tracks-out", type=Path, default=None, help="every track's row as JSON lines")
    args = ap.parse_args()
    if not (args.faces / "5celeb" / "val").is_dir():
        sys.exit(f"error: {args.faces}/5celeb not found (give --faces)")
    from facebank import FaceBank

    args.work.mkdir(parents=True, exist_ok=True)
    photos = measure_photos(args.faces, args.work)
    reels = make_reels(photos, args.work)
    out: dict = {}
    all_rows: list[dict] = []
    with FaceBank(build_gallery(photos, args.work)) as fb:
        for kind in [k for k in args.kinds.split(",") if k]:
            rows: list[dict] = []
            faces: list[dict] = []
            for reel in reels[kind]:
                r, f = diagnose_reel(fb, reel)
                rows += r
                faces += f
            out[kind] = summarize(rows, faces)
            print(f"{kind}: {json.dumps(out[kind])}", file=sys.stderr)
            all_rows += [{"kind": kind, **r} for r in rows]
    if args.tracks_out:
        args.tracks_out.write_text("".join(json.dumps(r) + "\n" for r in all_rows))
    line = record("video_naming", out, notes="dev = 5celeb/train reels, report = 5celeb/val reels; one "
                  "photo per person enrolled; default settings, --fps 2; score/threshold in the rule's unit")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
