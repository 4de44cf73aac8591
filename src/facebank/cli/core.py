"""enroll, identify, verify, people, demo."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from facebank.cli.app import (
    CropOpt,
    DetectorOpt,
    EmbedderOpt,
    FlipOpt,
    GalleryOpt,
    OnnxOpt,
    WorkersOpt,
    app,
    check_number,
    check_output,
    expand_named,
    fail,
    make_settings,
    open_bank,
    progress,
)
from facebank.cli.reports import echo_enroll_report, echo_interrupted
from facebank.cli.video import (
    EndOpt,
    EveryFrameOpt,
    FpsOpt,
    KeepUnknownOpt,
    ReportOpt,
    StartOpt,
    SummaryOpt,
    identify_video,
    is_video_run,
)
from facebank.outputs import OutputClash, file_ids

# verify's exit code for "different people" (1 = runtime error, 2 = usage error)
DIFFERENT_PEOPLE = 3


def _bank(gallery: str | None, must_exist: bool = False, **flags: object):
    return open_bank(make_settings(gallery, **flags), must_exist=must_exist)


@app.command()
def enroll(
    folder: Path = typer.Argument(..., help="a folder with one sub-folder of photos per person"),
    person: str = typer.Option(None, "--person", "-p", help="all photos in FOLDER are of this person"),
    gallery: str = GalleryOpt,
    multi_face: str = typer.Option(None, "--multi-face",
                                   help="photos with several faces: largest (default), central, skip"),
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt, workers: int = WorkersOpt, crop_fallback: str = CropOpt,
    engine: str = typer.Option("local", "--engine",
                               help="local (worker processes on this machine) or ray (a Ray cluster)"),
    address: str = typer.Option(None, "--address", help="with --engine ray: the cluster, e.g. "
                                "ray://head:10001 or auto (default: RAY_ADDRESS, else a local cluster)"),
) -> None:
    """Learn the people in FOLDER (FOLDER/<name>/*.jpg). Safe to interrupt and rerun: photos
    already enrolled are skipped, so a rerun finishes the job."""
    if engine == "ray":
        from facebank.cli.scale import enroll_ray

        return enroll_ray(str(folder), gallery=gallery, address=address, person=person, actors=workers,
                          multi_face=multi_face, detector=detector, embedder=embedder,
                          onnx_model=onnx_model, flip=flip, crop_fallback=crop_fallback)
    if engine != "local":
        raise fail(f"unknown engine {engine!r}: use local or ray", 2)
    if not folder.exists():
        raise fail(f"{folder} does not exist", 2)
    fb = _bank(gallery, multi_face=multi_face, detector=detector, embedder=embedder,
               onnx_model=onnx_model, flip=flip, workers=workers, crop_fallback=crop_fallback)
    try:
        report = fb.enroll_folder(folder, person=person, progress=progress)
    except KeyboardInterrupt as exc:
        echo_interrupted(getattr(exc, "report", None), fb.settings.gallery)
        raise typer.Exit(130) from None
    except Exception as exc:
        raise fail(str(exc)) from None
    echo_enroll_report(report, fb.settings.gallery)


@app.command()
def identify(
    photos: list[Path] = typer.Argument(..., help="photos or folders of photos"),
    gallery: str = GalleryOpt,
    threshold: float = typer.Option(None, "--threshold", "-t",
                                    help="max L2 distance (unit embeddings) for a match"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per photo per line"),
    annotate: Path = typer.Option(None, "--annotate", help="write copies with boxes and names here "
                                  "(a folder; for a video: OUT.mp4)"),
    model: Path = typer.Option(None, "--model", help="a classifier trained with 'facebank train'"),
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt, workers: int = WorkersOpt, crop_fallback: str = CropOpt,
    fps: float = FpsOpt, every_frame: bool = EveryFrameOpt, report: Path = ReportOpt,
    keep_unknown: bool = KeepUnknownOpt, start: float = StartOpt, end: float = EndOpt,
    summary: bool = SummaryOpt,
) -> None:
    """Name every face in PHOTOS, or say 'unknown' (and why). Given a VIDEO (.mp4, .mkv, .mov, ...):
    the faces are followed as tracks and each track is named (a timeline and who is on screen how
    long; --start/--end for a part; --annotate OUT.mp4, --report)."""
    check_output(annotate, photos, "--annotate")
    check_output(report, photos, "--report")
    if keep_unknown:  # the kept faces are JPEGs written into the gallery's photos folder
        from facebank.gallery.uploads import default_uploads_dir

        kept = default_uploads_dir(make_settings(gallery).gallery)
        check_output(kept, photos, f"--keep-unknown (writes faces into {kept})")
    if is_video_run(photos, fps, every_frame, report, keep_unknown, start, end, summary):
        return identify_video(photos[0], gallery=gallery, threshold=threshold, as_json=as_json,
                              annotate=annotate, report=report, fps=fps, every_frame=every_frame,
                              model=model, detector=detector, embedder=embedder, onnx_model=onnx_model,
                              flip=flip, crop_fallback=crop_fallback, keep_unknown=keep_unknown,
                              start=start, end=end, summary=summary)
    if annotate is not None and annotate.exists() and not annotate.is_dir():
        raise fail(f"--annotate {annotate}: is a file; give a folder for the annotated copies", 2)
    settings = make_settings(gallery, threshold=threshold, detector=detector, embedder=embedder,
                             onnx_model=onnx_model, flip=flip, workers=workers, crop_fallback=crop_fallback)
    if model is not None and not settings.gallery.startswith("postgres") \
            and not Path(settings.gallery).exists():
        # a classifier names the faces: a gallery that does not exist (named or default) is not needed
        settings = settings.model_copy(update={"gallery": ":memory:"})
    fb = open_bank(settings, must_exist=True)
    if model is not None:
        from facebank.learn.models import ModelFileError, ModelMismatch, attach_classifier

        try:
            attach_classifier(fb, model)
        except FileNotFoundError:
            raise fail(f"--model {model}: no such file", 2) from None
        except (ModelFileError, ModelMismatch) as exc:
            raise fail(f"--model: {exc}", 2) from None
        except OSError as exc:
            raise fail(f"--model {model}: {exc.strerror or exc}", 2) from None
    elif not fb.people():
        typer.echo(f"warning: the gallery {fb.settings.gallery} is empty; every face will be unknown. "
                   "Run 'facebank enroll FOLDER' first.", err=True)
    named = expand_named(photos)
    if annotate:
        try:
            annotate.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fail(f"--annotate {annotate}: {exc.strerror or exc}", 2) from None
    failed = 0
    inputs = file_ids(p for p, _ in named) if annotate else set()
    try:
        results = fb.identify_many([p for p, _ in named], progress=progress, total=len(named))
        for result, (_, rel) in zip(results, named, strict=True):
            failed += result.error is not None
            if as_json:
                sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False, allow_nan=False) + "\n")
            else:
                _print_result(result)
            if annotate and result.error is None:
                try:
                    _write_annotated(result, annotate / rel, inputs)
                except OutputClash as exc:
                    typer.echo(f"  not written: {exc}", err=True)
    except Exception as exc:
        raise fail(str(exc)) from None
    if annotate:
        typer.echo(f"annotated photos written to {annotate}", err=True)
    if failed == len(named) and named:
        raise typer.Exit(1)


def _print_result(result) -> None:
    if result.error:
        typer.echo(f"{result.path}: ERROR {result.error}")
        return
    if not result.faces:
        typer.echo(f"{result.path}: no face found")
        return
    parts = []
    for f in result.faces:
        m = f.match
        if m.name:
            parts.append(f"{m.name} [distance {m.distance:.3f}] at {f.face.box.as_list()}")
        elif m.reason == "empty_gallery":
            parts.append(f"unknown (gallery is empty) at {f.face.box.as_list()}")
        else:
            parts.append(f"unknown ({m.explain()}) [distance {m.distance:.3f}] at {f.face.box.as_list()}")
    typer.echo(f"{result.path}: " + "; ".join(parts))


# formats Pillow writes; an annotated copy keeps its photo's format (else PNG)
_WRITABLE = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "BMP": "BMP", "GIF": "GIF",
             "TIFF": "TIFF", "PPM": "PPM"}


def _write_annotated(result, out: Path, inputs: set[tuple[int, int]] | None = None) -> Path:
    """The photo with boxes and names at ``out`` (the input's relative path below --annotate), in
    the input's format. Never written into an input photo: ``out`` being one of ``inputs``
    (device, inode) is refused, and the file is written through a new file renamed over ``out``."""
    from facebank.draw import annotate
    from facebank.images import load_image
    from facebank.outputs import check_output_file, write_replacing

    img = load_image(result.path)
    drawn = annotate(img.rgb, result)
    fmt = _WRITABLE.get(img.format.upper())
    if fmt is None:
        fmt, out = "PNG", out.with_name(out.name + ".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    check_output_file(out, inputs or set(), "--annotate")
    options = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    return write_replacing(out, lambda tmp: drawn.save(tmp, format=fmt, **options))


@app.command()
def verify(
    a: Path = typer.Argument(..., help="first photo"),
    b: Path = typer.Argument(..., help="second photo"),
    threshold: float = typer.Option(None, "--threshold", "-t",
                                    help="max L2 distance for 'same person', 0-2 (default: the model's own)"),
    as_json: bool = typer.Option(False, "--json"),
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt, flip: bool = FlipOpt,
) -> None:
    """Are A and B the same person? Compares the largest face of each photo (no gallery needed).

    Exit code: 0 same person, 3 different people, 1 an error (no face, unreadable photo, a model
    without operating points), 2 a usage error."""
    from facebank import FaceBank
    from facebank.embed.points import NotCalibrated
    from facebank.gallery.sqlite import SqliteGallery

    check_number(threshold, "--threshold", 0.0, 2.0, "an L2 distance between unit embeddings")
    settings = make_settings(None, detector=detector, embedder=embedder, onnx_model=onnx_model, flip=flip)
    fb = FaceBank(SqliteGallery(":memory:"), settings=settings)
    try:
        v = fb.verify(a, b, threshold)
    except (ValueError, FileNotFoundError, NotCalibrated) as exc:
        if as_json:  # the answer stays machine-readable: an error object, exit code 1
            typer.echo(json.dumps({"same": None, "distance": None, "score": None, "threshold": threshold,
                                   "error": str(exc)}, ensure_ascii=False))
            raise typer.Exit(1) from None
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"same": v.same, "distance": v.distance, "score": v.score,
                               "threshold": v.threshold, "error": None}))
    else:
        typer.echo(f"{'SAME person' if v.same else 'DIFFERENT people'}: L2 distance {v.distance:.3f} "
                   f"(threshold {v.threshold:.3f}), cosine similarity {v.score:.3f}")
    raise typer.Exit(0 if v.same else DIFFERENT_PEOPLE)


people_app = typer.Typer(help="List, rename and remove the people in the gallery; name clusters, move "
                         "faces, merge people.", no_args_is_help=True)
app.add_typer(people_app, name="people")


@people_app.command("list")
def people_list(gallery: str = GalleryOpt, as_json: bool = typer.Option(False, "--json")) -> None:
    """Everyone in the gallery with their photo and face counts, and the identification threshold
    in use (estimated from these people unless FACEBANK_THRESHOLD is set)."""
    fb = _bank(gallery, must_exist=True)
    people = fb.people()
    if as_json:
        typer.echo(json.dumps([p.__dict__ for p in people], ensure_ascii=False))
        return
    if not people:
        typer.echo("the gallery is empty")
        return
    for p in people:
        typer.echo(f"{p.name}\t{p.photos} photos\t{p.faces} faces")
    point = fb.decision().point
    how = {"gallery": f"estimated from these {point.people} people for FAR {100 * point.far:g} %",
           "settings": "set by FACEBANK_THRESHOLD", "default": "default: too few people to estimate"}
    typer.echo(f"identification: rule {point.rule}, threshold {point.threshold:.4f} "
               f"({how.get(point.source, point.source)})")


@people_app.command("remove")
def people_remove(
    name: str, gallery: str = GalleryOpt,
    photos_dir: Path = typer.Option(None, "--photos-dir", help="where the server keeps uploaded photos, "
                                    "if not the default <gallery>.photos next to the gallery"),
) -> None:
    """Remove NAME with all their photos and faces, and delete the photo files uploaded for them
    through the REST API (photos enrolled from your folders stay where they are)."""
    from facebank.gallery import GalleryError

    fb = _bank(gallery, must_exist=True)
    try:
        n = fb.remove_person(name, uploads_dir=photos_dir)
    except GalleryError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"removed {name} ({n} faces)")


@people_app.command("rename")
def people_rename(old: str, new: str, gallery: str = GalleryOpt) -> None:
    """Rename OLD to NEW."""
    from facebank.gallery import GalleryError

    fb = _bank(gallery, must_exist=True)
    try:
        fb.rename_person(old, new)
    except GalleryError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"renamed {old} to {new}")


def default_faces_dir() -> Path:
    return Path("..") / "shared" / "faces"


@app.command()
def demo(
    faces: Path = typer.Option(None, "--faces", help="the shared photo folder (default ../shared/faces)"),
    out: Path = typer.Option(Path("facebank-demo"), "--out", help="where the demo writes its outputs"),
    train: Path = typer.Option(None, "--train", help="your own folder: one sub-folder per person"),
    test: Path = typer.Option(None, "--test", help="your own test folder, same layout as --train"),
    workers: int = WorkersOpt, embedder: str = EmbedderOpt, detector: str = DetectorOpt,
) -> None:
    """The main job: enroll 5celeb/train, identify 5celeb/val and group photos, print accuracy,
    write annotated photos. Point --train/--test at your own folders to run it on your people."""
    from facebank.demo import run_demo

    faces = faces or default_faces_dir()
    check_output(out, [train, test, faces / "5celeb" if train is None else None], "--out")
    if train is None and not (faces / "5celeb" / "train").is_dir():
        raise fail(
            f"no demo photos at {faces}/5celeb. Run it on your own photos instead:\n"
            "  facebank demo --train my_people/ --test new_photos/\n"
            "where my_people/<name>/*.jpg holds a few photos of each person.")
    t0 = time.perf_counter()
    summary = run_demo(faces=faces, out=out, train=train, test=test,
                       settings=make_settings(str(out / "gallery.db"), workers=workers, embedder=embedder,
                                              detector=detector),
                       progress=progress, echo=typer.echo)
    typer.echo(f"done in {time.perf_counter() - t0:.0f} s; outputs in {out.resolve()}")
    typer.echo(json.dumps(summary))
