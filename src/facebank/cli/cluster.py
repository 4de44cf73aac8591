"""scan, cluster, people name / move / merge, photos --with: unsorted photo libraries."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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
    fail,
    make_settings,
    open_bank,
    progress,
)
from facebank.cli.core import echo_interrupted, people_app


def _gallery(gallery: str | None):
    """The gallery of an existing facebank (a missing one is an 'error:' line, exit 2)."""
    return open_bank(make_settings(gallery), must_exist=True).gallery


@contextmanager
def _changing(gallery: str | None) -> Iterator:
    """An existing gallery for one naming change (itself one transaction): a refusal of the gallery
    (no such cluster, face or person; a name taken) is one 'error:' line; the gallery is closed."""
    from facebank.gallery import GalleryError

    g = _gallery(gallery)
    try:
        yield g
    except GalleryError as exc:
        raise fail(str(exc)) from None
    finally:
        g.close()


@app.command()
def scan(
    library: Path = typer.Argument(..., help="a folder of photos (any nesting, no labels) or one photo"),
    gallery: str = GalleryOpt,
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt, workers: int = WorkersOpt, crop_fallback: str = CropOpt,
    engine: str = typer.Option("local", "--engine",
                               help="local (worker processes on this machine) or ray (a Ray cluster)"),
    address: str = typer.Option(None, "--address", envvar="RAY_ADDRESS", help="with --engine ray: the "
                                "cluster, e.g. ray://HEAD:10001 or auto (default: a local cluster)"),
) -> None:
    """Put every face of every photo under LIBRARY into the gallery, unassigned (no person yet);
    then 'facebank cluster' groups them. Safe to interrupt and rerun: photos already in the
    gallery are skipped, so a rerun finishes the job and a grown library adds only new photos.
    With --engine ray the work is spread over a Ray cluster (use a postgresql:// gallery then)."""
    from facebank.cluster.scan import scan_library, scan_with_ray

    if engine not in ("local", "ray"):
        raise fail(f"unknown engine {engine!r}: use local or ray", 2)
    if not library.exists():
        raise fail(f"{library} does not exist", 2)
    fb = open_bank(make_settings(gallery, detector=detector, embedder=embedder, onnx_model=onnx_model,
                                 flip=flip, workers=workers, crop_fallback=crop_fallback))
    try:
        if engine == "ray":
            from facebank.cli.scale import quiet_ray

            quiet_ray()
            fb.close()
            report = scan_with_ray(str(library), fb.settings.gallery, fb.settings, address,
                                   actors=workers or None, progress=progress)
        else:
            report = scan_library(fb, library, progress=progress)
    except KeyboardInterrupt as exc:
        echo_interrupted(getattr(exc, "report", None), fb.settings.gallery)
        raise typer.Exit(130) from None
    except Exception as exc:
        raise fail(str(exc)) from None
    for path, reason in report.problems:
        typer.echo(f"  skipped {path}: {reason}", err=True)
    for path, first in report.duplicates:
        typer.echo(f"  copy {path}: the same photo as {first}, scanned once", err=True)
    copies = f", {len(report.duplicates)} copies" if report.duplicates else ""
    # photos/s only means something when photos were processed (a rerun of a scanned library: none)
    speed = f" ({report.photos_per_second:.1f} photos/s)" if report.photos_processed else ""
    typer.echo(
        f"scanned {report.photos_seen} photos in {report.seconds:.1f} s{speed}: {report.faces_added} new "
        f"faces in {report.photos_enrolled} photos; {report.photos_skipped_known} already known{copies}, "
        f"{len(report.problems)} problems. Gallery: {fb.settings.gallery}")


@app.command()
def cluster(
    gallery: str = GalleryOpt,
    method: str = typer.Option(None, "--method", help="chinese-whispers (default), components, "
                               "agglomerative, hdbscan or dbscan"),
    threshold: float = typer.Option(None, "--threshold", "-t",
                                    help="largest L2 distance between two faces that links them"),
    min_size: int = typer.Option(None, "--min-size", help="hdbscan/dbscan: faces per cluster at least"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per unassigned face per line: "
                                 '{"face", "path", "box", "cluster", "suggested", "score"} (face: the id '
                                 "'people move' takes; cluster null = alone; suggested: the person its "
                                 "cluster, or the face alone, most likely is; score: that suggestion's group "
                                 "score in the decision rule's unit)"),
    report: Path = typer.Option(None, "--report", help="write an HTML page: a row of thumbnails per cluster"),
) -> None:
    """Group the unassigned faces of the gallery into people. Clusters named before stay their
    people; a cluster or a face alone that looks like someone in the gallery (from all its faces)
    gets that name as a suggestion, with how many of its faces agree.
    Then: facebank people name CLUSTER NAME (or: facebank people reject CLUSTER NAME)."""
    from facebank.cluster.engine import cluster_report, method_from_settings, recluster
    from facebank.cluster.suggest import SuggestionCache
    from facebank.embed.points import NotCalibrated

    settings = make_settings(gallery)
    check_number(threshold, "--threshold", 0.0, 2.0, "an L2 distance between unit embeddings")
    check_output(report, [] if "://" in settings.gallery else [settings.gallery], "--report")
    bank = open_bank(settings, must_exist=True)
    g = bank.gallery
    try:
        algo = method_from_settings(settings, method, threshold, min_size, model_id=g.model_id)
    except (ValueError, TypeError, NotCalibrated) as exc:
        bank.close()
        raise fail(str(exc), 1 if isinstance(exc, NotCalibrated) else 2) from None
    try:
        summary = recluster(g, algo, settings.threshold, bank=bank)
        faces = g.faces(unassigned=True)
        live = SuggestionCache.of(bank).get()
        if report is not None:
            cluster_report(g, report, max_pixels=settings.max_pixels)
    except Exception as exc:
        raise fail(str(exc)) from None
    finally:
        bank.close()
    if as_json:
        for f in faces:
            sug = live.for_face(f.face_id, f.cluster)
            named = sug if sug is not None and sug.person is not None else None
            row = {"face": f.face_id, "path": f.path, "box": [round(v) for v in f.box],
                   "cluster": f.cluster, "suggested": named.person if named is not None else None,
                   "score": round(named.score, 6) if named is not None else None}
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        from facebank.cluster.groups import group_faces

        groups = group_faces(faces)
        for grp in groups.clusters:
            sug = live.clusters.get(grp.cluster)
            hint = f"  looks like {sug.person} ({sug.agreement()})" if sug and sug.person else ""
            typer.echo(f"cluster {grp.cluster}: {grp.size} faces{hint}")
        for f in groups.alone:
            sug = live.loose.get(f.face_id)
            if sug and sug.person:
                typer.echo(f"face {f.face_id} (alone): looks like {sug.person}")
    typer.echo(f"{summary.faces} unassigned faces: {summary.clusters} clusters, {summary.alone} alone "
               f"({summary.method}, threshold {summary.threshold:.2f}; {summary.seconds:.1f} s)"
               + (f"; report: {report}" if report else ""), err=True)


@people_app.command("reject")
def people_reject(target: str = typer.Argument(..., help="a cluster id (as 'facebank cluster' shows it, or "
                                               "cluster:ID) or a face id as face:ID"),
                  name: str = typer.Argument(..., help="the person these faces are not"),
                  gallery: str = GalleryOpt) -> None:
    """Say that the faces of a cluster (or one face) are NOT person NAME: NAME is never suggested for
    them again (a later scan, naming or clustering keeps it so)."""
    kind, _, num = target.rpartition(":")
    kind = kind.strip().lower() or "cluster"
    if kind not in ("cluster", "face") or not num.strip().isdigit():
        raise fail(f"bad target {target!r}: give a cluster id (7 or cluster:7) or a face id (face:123)", 2)
    ident = int(num)
    from facebank.gallery.base import NotFound

    with _changing(gallery) as g:
        if kind == "face":
            ids = [ident]
        else:
            ids = [f.face_id for f in g.faces(cluster=ident, unassigned=True)]
            if not ids:
                raise NotFound(f"no cluster {ident} (run 'facebank cluster' to list them)")
        g.reject(ids, name)
    what = f"face {ident}" if kind == "face" else f"the {len(ids)} faces of cluster {ident}"
    typer.echo(f"{what}: not {name}; never suggested again")


@people_app.command("name")
def people_name(cluster: int = typer.Argument(..., help="a cluster id shown by 'facebank cluster'"),
                name: str = typer.Argument(..., help="the person (new, or an existing one to merge into)"),
                gallery: str = GalleryOpt) -> None:
    """Give every face of CLUSTER to NAME (a new person, or added to the person NAME)."""
    with _changing(gallery) as g:
        n = g.name_cluster(cluster, name)
    typer.echo(f"named {n} faces of cluster {cluster} {name}")


@people_app.command("move")
def people_move(face_id: int = typer.Argument(..., help="a face id (facebank cluster --report shows them)"),
                name: str = typer.Argument(None, help="the person to move it to; leave out to take it out "
                                           "of its person (unassigned again)"),
                gallery: str = GalleryOpt) -> None:
    """Move one face to NAME (created if new), or make it unassigned again."""
    with _changing(gallery) as g:
        g.move_face(face_id, name)
    typer.echo(f"face {face_id} is now {name}" if name else f"face {face_id} is unassigned")


@people_app.command("merge")
def people_merge(source: str = typer.Argument(..., help="the person who goes away"),
                 target: str = typer.Argument(..., help="the person who gets their photos and faces"),
                 gallery: str = GalleryOpt) -> None:
    """Merge SOURCE into TARGET: all of SOURCE's photos and faces become TARGET's."""
    with _changing(gallery) as g:
        n = g.merge_people(source, target)
    typer.echo(f"merged {source} into {target} ({n} faces)")


@app.command()
def photos(
    with_: list[str] = typer.Option(..., "--with", "-w", help="a person in the photo (repeat: all of them)"),
    gallery: str = GalleryOpt,
    as_json: bool = typer.Option(False, "--json", help="one JSON object per photo per line"),
) -> None:
    """List the photos in which every --with person appears."""
    from facebank.gallery import GalleryError

    g = _gallery(gallery)
    try:
        found = g.photos_with(with_)
    except GalleryError as exc:
        raise fail(str(exc), 2) from None
    finally:
        g.close()
    for p in found:
        if as_json:
            sys.stdout.write(json.dumps({"path": p["path"], "sha256": p["sha256"], "faces": p["faces"]},
                                        ensure_ascii=False) + "\n")
        else:
            typer.echo(p["path"])
    if not as_json:
        typer.echo(f"{len(found)} photos with {', '.join(with_)}", err=True)


@people_app.command("undo")
def people_undo(steps: int = typer.Argument(1, min=1, max=100, help="how many of the last actions"),
                gallery: str = GalleryOpt) -> None:
    """Undo the last STEPS naming actions (name, move, take out, merge, hide, cover), newest first:
    all or nothing; refused when a later change touched what an action changed."""
    with _changing(gallery) as g:
        if not hasattr(g, "undo"):
            raise fail("this gallery keeps no action log (SQLite galleries do)")
        undone = g.undo(steps)
    for summary in undone:
        typer.echo(f"undone: {summary}")


@people_app.command("hide")
def people_hide(name: str = typer.Argument(..., help="the person to hide (still recognised, not listed)"),
                show: bool = typer.Option(False, "--show", help="list the person again"),
                gallery: str = GalleryOpt) -> None:
    """Hide NAME from the People page's listing (identification still names them), or --show again."""
    with _changing(gallery) as g:
        if not hasattr(g, "hide_person"):
            raise fail("this gallery cannot hide people (SQLite galleries can)")
        g.hide_person(name, not show)
    typer.echo(f"{name} is {'listed again' if show else 'hidden'}")
