"""train, evaluate, benchmark lfw, study gallery-size, calibrate."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from facebank.cli.app import (
    CropOpt,
    DetectorOpt,
    EmbedderOpt,
    FlipOpt,
    OnnxOpt,
    WorkersOpt,
    app,
    check_number,
    check_output,
    fail,
    make_settings,
    progress,
)

MultiOpt = typer.Option(None, "--multi-face", help="photos with several faces: largest (default) or central")
RetryOpt = typer.Option(None, "--retry-detector",
                        help="second detector for photos where the first finds no face (default mtcnn; none)")
JitterOpt = typer.Option(0, "--jitter", help="also embed N jittered copies of each face chip and average "
                         "(slower, slightly better embeddings; cached separately)")
CacheOpt = typer.Option(None, "--cache", help="embedding cache file (default: user cache dir, or "
                        "$FACEBANK_CACHE_DIR/embeddings.db)")
ReportOpt = typer.Option(None, "--report", help="write a self-contained HTML report here")
JsonOpt = typer.Option(False, "--json", help="print the summary figures as one JSON object")
SeedOpt = typer.Option(0, "--seed", help="random seed of the splits")
ClassifierOpt = typer.Option("all", "--classifier", "-c",
                             help="centroid, knn, svm, svm-rbf, mlp, a comma list, or all")


def _settings(**flags: Any):
    multi = flags.pop("multi_face", None)
    retry = flags.pop("retry", None)
    jitter = flags.pop("jitter", None)
    s = make_settings(None, **flags)
    from facebank.evaluate.cache import FacePolicy, default_retry

    choose = multi or s.multi_face
    if choose == "skip":
        raise fail("--multi-face skip is not supported for evaluation: use largest or central")
    retry = None if retry == "none" else (retry or default_retry())
    return s, FacePolicy(choose, retry=retry, jitter=jitter or 0)


def _cache(path: Path | None):
    from facebank.evaluate.cache import EmbeddingCache, default_cache_path

    return EmbeddingCache(path or default_cache_path())


def _specs(spec: str):
    from facebank.learn.classifiers import ClassifierSpec, parse_names

    try:
        return [ClassifierSpec(n) for n in parse_names(spec)]
    except ValueError as exc:
        raise fail(str(exc)) from None


def _load(folder: Path, settings, policy, cache):
    from facebank.evaluate.protocols import load_dataset

    if not folder.is_dir():
        raise fail(f"{folder} is not a folder (expected one sub-folder of photos per person)")
    try:
        return load_dataset(folder, settings, policy, cache, progress=progress)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None


def _settings_text(settings, policy) -> str:
    return f"{settings.pipeline_key()} | {policy.key()} | embedder {settings.embedder}"


def _finish(summary: dict, text: str, as_json: bool, rep=None, report: Path | None = None) -> None:
    if rep is not None and report is not None:
        path = rep.save(report)
        summary = {**summary, "report": str(path)}
        if not as_json:
            text += f"\nreport: {path}"
    typer.echo(json.dumps(summary, ensure_ascii=False) if as_json else text)


@app.command()
def train(
    folder: Path = typer.Argument(..., help="training photos: one sub-folder per person"),
    out: Path = typer.Option(..., "--out", "-o", help="the classifier file to write"),
    classifier: str = typer.Option("svm", "--classifier", "-c", help="centroid, knn, svm, svm-rbf or mlp"),
    threshold: float = typer.Option(None, "--threshold", "-t",
                                    help="unknown threshold (L2 distance); default: calibrated at --far"),
    far: float = typer.Option(0.01, "--far", help="false accept rate the unknown threshold is set for"),
    cache: Path = CacheOpt, as_json: bool = JsonOpt,
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt, workers: int = WorkersOpt,
    crop_fallback: str = CropOpt, multi_face: str = MultiOpt, retry: str = RetryOpt, jitter: int = JitterOpt,
) -> None:
    """Train a classifier on FOLDER and save it (use it with 'facebank identify --model FILE')."""
    check_number(threshold, "--threshold", 0.0, 2.0, "an L2 distance between unit embeddings")
    check_number(far, "--far", 0.0, 1.0, "a false accept rate", open_low=True, open_high=True)
    check_output(out, [folder], "--out")
    from facebank.learn.calibrate import calibrate
    from facebank.learn.models import save_model

    settings, policy = _settings(detector=detector, embedder=embedder, onnx_model=onnx_model, flip=flip,
                                 workers=workers, crop_fallback=crop_fallback, multi_face=multi_face,
                                 retry=retry, jitter=jitter)
    specs = _specs(classifier)
    if len(specs) != 1:
        raise fail("train takes one classifier")
    spec = specs[0]
    t0 = time.perf_counter()
    with _cache(cache) as c:
        ds = _load(folder, settings, policy, c)
    how = "given"
    if threshold is None:
        if len(ds.people) >= 3:
            cal, _ = calibrate(ds, spec, far=far, repeats=3)
            threshold, how = cal.threshold, f"calibrated at FAR {far:g} on held-out people of {folder}"
        else:
            from facebank.embed.points import NotCalibrated, points_for_settings

            if settings.threshold is not None:
                threshold, how = settings.threshold, "settings (too few people to calibrate)"
            else:
                try:
                    threshold = points_for_settings(settings).identify_l2
                except NotCalibrated as exc:
                    raise fail(str(exc)) from None
                how = "the model's identify_l2 (too few people to calibrate)"
    clf = spec.build()
    clf.threshold = threshold
    clf.fit(ds.x[ds.ok], ds.labels[ds.ok])
    header = save_model(out, clf, settings, policy,
                        extra={"trained_on": str(folder), "photos": int(ds.ok.sum()),
                               "threshold_source": how})
    summary = {"classifier": spec.name, "people": len(clf.people), "photos": int(ds.ok.sum()),
               "no_face": int((~ds.ok).sum()), "threshold": round(float(threshold), 4),
               "threshold_source": how, "model_id": header["model_id"], "out": str(out),
               "seconds": round(time.perf_counter() - t0, 2)}
    text = (f"trained {spec.name} on {summary['photos']} faces of {summary['people']} people "
            f"({summary['no_face']} photos without a face); unknown threshold {threshold:.4f} ({how}); "
            f"saved {out}")
    _finish(summary, text, as_json)


@app.command()
def evaluate(
    folder: Path = typer.Argument(..., help="photos: one sub-folder per person (training set with --test)"),
    test: Path = typer.Option(None, "--test", help="a fixed test folder (same layout): train on FOLDER"),
    classifier: str = ClassifierOpt,
    folds: int = typer.Option(5, "--folds", "-k", help="stratified k-fold cross-validation"),
    repeats: int = typer.Option(None, "--repeats", help="repeated random splits instead of k-fold"),
    test_fraction: float = typer.Option(0.25, "--test-fraction", help="test share of a random split"),
    open_set: bool = typer.Option(False, "--open-set", help="hold out people as unknown: TAR at FAR"),
    known: int = typer.Option(None, "--known", help="open set: people enrolled (default half)"),
    report: Path = ReportOpt, as_json: bool = JsonOpt, seed: int = SeedOpt, cache: Path = CacheOpt,
    tsne: bool = typer.Option(False, "--tsne", help="add a t-SNE map to the report"),
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt, workers: int = WorkersOpt,
    crop_fallback: str = CropOpt, multi_face: str = MultiOpt, retry: str = RetryOpt, jitter: int = JitterOpt,
) -> None:
    """Measure classifiers: fixed train/test folders (--test), k-fold (default), repeated splits
    (--repeats N), or open set (--open-set: TAR at FAR 1% / 0.1% with people held out as unknown)."""
    check_output(report, [folder, test], "--report")
    from facebank.evaluate import protocols
    from facebank.report import build

    settings, policy = _settings(detector=detector, embedder=embedder, onnx_model=onnx_model, flip=flip,
                                 workers=workers, crop_fallback=crop_fallback, multi_face=multi_face,
                                 retry=retry, jitter=jitter)
    specs = _specs(classifier)
    stext = _settings_text(settings, policy)
    with _cache(cache) as c:
        ds = _load(folder, settings, policy, c)
        tds = _load(test, settings, policy, c) if test is not None else None
    try:
        if open_set:
            ev = protocols.evaluate_open_set(ds, specs, known=known, repeats=repeats or 5, seed=seed)
            rep = build.open_set_report(ev, stext, tsne) if report else None
            _finish(ev.summary(), build.open_set_text(ev), as_json, rep, report)
            return
        if tds is not None:
            cev = protocols.evaluate_fixed(ds, tds, specs)
        elif repeats:
            cev = protocols.evaluate_repeated(ds, specs, repeats, test_fraction, seed)
        else:
            cev = protocols.evaluate_kfold(ds, specs, folds, seed)
    except ValueError as exc:
        raise fail(str(exc)) from None
    rep = build.evaluation_report(cev, stext, tsne) if report else None
    _finish(cev.summary(), build.evaluation_text(cev), as_json, rep, report)


benchmark_app = typer.Typer(help="Standard benchmarks.", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")


@benchmark_app.command("lfw")
def benchmark_lfw(
    root: Path = typer.Argument(..., help="the LFW folder (images/ and pairs.txt)"),
    pairs: str = typer.Option("pairs.txt", "--pairs", help="pairs file inside ROOT"),
    limit: int = typer.Option(None, "--limit", help="only the first N same and N different pairs per fold"),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="mirror-image averaging (default on)"),
    jitter: int = JitterOpt,
    report: Path = ReportOpt, as_json: bool = JsonOpt, cache: Path = CacheOpt,
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    workers: int = WorkersOpt,
) -> None:
    """LFW View 2 verification: mean accuracy +- std over 10 folds, ROC, TAR at FAR."""
    check_output(report, [root], "--report")
    from dataclasses import replace

    from facebank.evaluate.cache import LFW_POLICY
    from facebank.evaluate.lfw import lfw_settings, run_view2
    from facebank.report import build

    if not (root / pairs).is_file():
        raise fail(f"{root / pairs} not found (point ROOT at the LFW folder with images/ and {pairs})")
    settings = lfw_settings(make_settings(None, detector=detector, embedder=embedder, onnx_model=onnx_model,
                                          workers=workers, flip=flip))
    with _cache(cache) as c:
        try:
            policy = replace(LFW_POLICY, jitter=jitter)
            res = run_view2(root, settings, policy, c, progress, pairs, limit)
        except ValueError as exc:
            raise fail(str(exc)) from None
    rep = build.lfw_report(res, _settings_text(settings, policy)) if report else None
    _finish(res.summary(), build.lfw_text(res), as_json, rep, report)


RulesOpt = typer.Option("all", "--rules", help="decision rules to measure: all, or a ';' list such as "
                        "'distance;margin:weight=1' (see facebank.decide)")
SplitsOpt = typer.Option(10, "--splits", help="random splits (mean ± std over them)")
TargetFarOpt = typer.Option(None, "--target-far",
                            help="FAR the automatic threshold aims at (default: settings)")


def _open_set_rules(spec: str, settings):
    from facebank.evaluate.openset import rules_for

    try:
        return rules_for(spec, settings.decision)
    except ValueError as exc:
        raise fail(str(exc), 2) from None


@benchmark_app.command("lfw-openset")
def benchmark_lfw_openset(
    root: Path = typer.Argument(..., help="the LFW folder (images/<person>/*.jpg)"),
    part: str = typer.Option("test", "--part", help="people to use: test (two thirds, to report on), dev "
                             "(the other third, to choose settings on) or all"),
    rules: str = RulesOpt, splits: int = SplitsOpt, seed: int = SeedOpt, target_far: float = TargetFarOpt,
    flip: bool = FlipOpt, jitter: int = JitterOpt,
    as_json: bool = JsonOpt, cache: Path = CacheOpt,
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    workers: int = WorkersOpt,
) -> None:
    """LFW open set: people with >= 2 photos known (half their photos enrolled, the rest probes),
    everyone else a stranger; DIR at FAR 1 % / 0.1 %, rank-1 and the automatic threshold per rule."""
    check_number(target_far, "--target-far", 0.0, 1.0, "a false accept rate", open_low=True, open_high=True)
    from dataclasses import replace

    from facebank.evaluate.cache import LFW_POLICY
    from facebank.evaluate.lfw import lfw_settings
    from facebank.evaluate.openset import PARTS, lfw_root_images, run_lfw_open_set, study_text

    if part not in PARTS:
        raise fail(f"--part must be one of {', '.join(PARTS)}, not {part!r}", 2)
    if not lfw_root_images(root).is_dir():
        raise fail(f"{root} is not a folder (point ROOT at the LFW folder with images/)", 2)
    settings = lfw_settings(make_settings(None, detector=detector, embedder=embedder, onnx_model=onnx_model,
                                          workers=workers, flip=flip))
    chosen = _open_set_rules(rules, settings)
    with _cache(cache) as c:
        try:
            study = run_lfw_open_set(root, settings, chosen, replace(LFW_POLICY, jitter=jitter or 0), c,
                                     progress, splits, seed, part, target_far or settings.target_far)
        except ValueError as exc:
            raise fail(str(exc)) from None
    _finish(study.summary(), study_text(study), as_json)


@benchmark_app.command("openset")
def benchmark_openset(
    folder: Path = typer.Argument(..., help="photos: one sub-folder per person (e.g. pins10)"),
    known: int = typer.Option(None, "--known", help="people enrolled per split (default half)"),
    rules: str = RulesOpt, splits: int = SplitsOpt, seed: int = SeedOpt, target_far: float = TargetFarOpt,
    as_json: bool = JsonOpt, cache: Path = CacheOpt,
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt, workers: int = WorkersOpt,
    crop_fallback: str = CropOpt, multi_face: str = MultiOpt, retry: str = RetryOpt, jitter: int = JitterOpt,
) -> None:
    """Open set of a folder: KNOWN people enrolled with half their photos, their other photos probes,
    the other people strangers; DIR at FAR 1 % / 0.1 %, rank-1 and the automatic threshold per rule."""
    check_number(target_far, "--target-far", 0.0, 1.0, "a false accept rate", open_low=True, open_high=True)
    from facebank.evaluate.openset import run_folder_open_set, study_text

    settings, policy = _settings(detector=detector, embedder=embedder, onnx_model=onnx_model, flip=flip,
                                 workers=workers, crop_fallback=crop_fallback, multi_face=multi_face,
                                 retry=retry, jitter=jitter)
    chosen = _open_set_rules(rules, settings)
    if not folder.is_dir():
        raise fail(f"{folder} is not a folder (expected one sub-folder of photos per person)", 2)
    with _cache(cache) as c:
        try:
            study = run_folder_open_set(folder, settings, chosen, policy, c, progress, known, splits, seed,
                                        target_far or settings.target_far)
        except ValueError as exc:
            raise fail(str(exc)) from None
    _finish(study.summary(), study_text(study), as_json)


study_app = typer.Typer(help="Studies of how the figures change with the data.", no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("gallery-size")
def study_gallery_size(
    folder: Path = typer.Argument(..., help="photos: one sub-folder per person"),
    per_person: str = typer.Option("1,3,5,10,25,50", "--per-person", help="gallery sizes to try"),
    repeats: int = typer.Option(5, "--repeats", help="random draws per size"),
    test_per_person: int = typer.Option(None, "--test-per-person", help="held-out photos per person"),
    report: Path = ReportOpt, as_json: bool = JsonOpt, seed: int = SeedOpt, cache: Path = CacheOpt,
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt, workers: int = WorkersOpt,
    crop_fallback: str = CropOpt, multi_face: str = MultiOpt, retry: str = RetryOpt, jitter: int = JitterOpt,
) -> None:
    """Accuracy vs photos per person for the centroid and nearest-face rules."""
    check_output(report, [folder], "--report")
    from facebank.evaluate.study import gallery_size_study
    from facebank.report import build

    try:
        sizes = sorted({int(v) for v in per_person.split(",") if v.strip()})
    except ValueError:
        raise fail(f"--per-person wants numbers like 1,3,5, not {per_person!r}") from None
    settings, policy = _settings(detector=detector, embedder=embedder, onnx_model=onnx_model, flip=flip,
                                 workers=workers, crop_fallback=crop_fallback, multi_face=multi_face,
                                 retry=retry, jitter=jitter)
    with _cache(cache) as c:
        ds = _load(folder, settings, policy, c)
    try:
        study = gallery_size_study(ds, sizes, repeats, test_per_person, seed)
    except ValueError as exc:
        raise fail(str(exc)) from None
    rep = build.study_report(study, ds, _settings_text(settings, policy)) if report else None
    _finish(study.summary(), build.study_text(study), as_json, rep, report)


@app.command()
def calibrate(
    folder: Path = typer.Argument(..., help="photos: one sub-folder per person (several people)"),
    far: float = typer.Option(0.01, "--far", help="the false accept rate wanted"),
    classifier: str = typer.Option("centroid", "--classifier", "-c", help="the classifier to calibrate"),
    known: int = typer.Option(None, "--known", help="people enrolled per repeat (default half)"),
    repeats: int = typer.Option(5, "--repeats", help="random splits of the people"),
    report: Path = ReportOpt, as_json: bool = JsonOpt, seed: int = SeedOpt, cache: Path = CacheOpt,
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt, workers: int = WorkersOpt,
    crop_fallback: str = CropOpt, multi_face: str = MultiOpt, retry: str = RetryOpt, jitter: int = JitterOpt,
) -> None:
    """The "unknown" threshold (L2 distance) for a target false accept rate, from held-out people."""
    check_number(far, "--far", 0.0, 1.0, "a false accept rate", open_low=True, open_high=True)
    check_output(report, [folder], "--report")
    from facebank.learn.calibrate import calibrate as run
    from facebank.report import build
    from facebank.report.html import Report

    settings, policy = _settings(detector=detector, embedder=embedder, onnx_model=onnx_model, flip=flip,
                                 workers=workers, crop_fallback=crop_fallback, multi_face=multi_face,
                                 retry=retry, jitter=jitter)
    specs = _specs(classifier)
    if len(specs) != 1:
        raise fail("calibrate takes one classifier")
    with _cache(cache) as c:
        ds = _load(folder, settings, policy, c)
    try:
        cal, ev = run(ds, specs[0], far=far, known=known, repeats=repeats, seed=seed)
    except ValueError as exc:
        raise fail(str(exc)) from None
    rep = None
    if report:
        rep = Report(f"facebank calibration: {folder} at FAR {far:g}")
        rep.text(f"Calibrated threshold for {cal.classifier}: {cal.threshold:.4f} +- {cal.threshold_std:.4f} "
                 f"(L2 distance between unit embeddings), TAR {100 * cal.tar:.2f}% at FAR {100 * far:g}%.")
        build.open_set_section(rep, ev)
        rep.heading("Summary (JSON)")
        rep.json(cal.summary())
    text = (f"threshold {cal.threshold:.4f} +- {cal.threshold_std:.4f} (L2 between unit embeddings) gives "
            f"FAR <= {100 * far:g}% with TAR {100 * cal.tar:.2f}% +- {100 * cal.tar_std:.2f} "
            f"({cal.classifier}, {repeats} repeats on {folder}); use it as --threshold or FACEBANK_THRESHOLD")
    _finish(cal.summary(), text, as_json, rep, report)
