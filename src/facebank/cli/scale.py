"""enroll-ray: enrollment as a Ray Data job, on this machine or a Ray cluster (docs/scale.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from facebank.cli.app import (
    CropOpt,
    DetectorOpt,
    EmbedderOpt,
    FlipOpt,
    GalleryOpt,
    OnnxOpt,
    app,
    fail,
    make_settings,
    progress,
)
from facebank.cli.reports import echo_enroll_report, echo_interrupted


@app.command("enroll-ray")
def enroll_ray(
    folder: str = typer.Argument(..., help="FOLDER/<name>/*.jpg on a path every node sees, or s3://..., gs://..."),
    gallery: str = GalleryOpt,
    address: str = typer.Option(None, "--address", envvar="RAY_ADDRESS",
                                help="Ray cluster: auto, ray://HEAD:10001 (default: a local cluster)"),
    person: str = typer.Option(None, "--person", "-p", help="all photos in FOLDER are of this person"),
    actors: int = typer.Option(None, "--actors", help="pipeline actors, one CPU each (default: every CPU)"),
    multi_face: str = typer.Option(None, "--multi-face",
                                   help="photos with several faces: largest (default), central, skip"),
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt, crop_fallback: str = CropOpt,
) -> None:
    """Learn the people in FOLDER with Ray: the same records as 'facebank enroll', with the work
    spread over a Ray cluster's CPUs. Use a postgresql:// gallery for a cluster of several machines.
    Safe to interrupt and rerun: photos already enrolled are skipped."""
    try:
        from facebank.scale.ray_enroll import enroll_with_ray
    except ImportError as exc:
        raise fail(f"enroll-ray needs Ray: pip install 'ray[data]' ({exc})") from None
    settings = make_settings(gallery, multi_face=multi_face, detector=detector, embedder=embedder,
                             onnx_model=onnx_model, flip=flip, crop_fallback=crop_fallback)
    if not _is_uri(folder) and not Path(folder).exists():
        raise fail(f"{folder} does not exist")
    quiet_ray()
    try:
        report = enroll_with_ray(folder, settings.gallery, settings, address=address, person=person,
                                 actors=actors, progress=progress)
    except ImportError as exc:
        raise fail(f"enroll-ray needs Ray: pip install 'ray[data]' ({exc})") from None
    except KeyboardInterrupt as exc:
        echo_interrupted(getattr(exc, "report", None), settings.gallery)
        raise typer.Exit(130) from None
    except Exception as exc:
        raise fail(f"{type(exc).__name__}: {exc}") from None
    echo_enroll_report(report, settings.gallery, " with Ray")


def quiet_ray() -> None:
    """Ray's own INFO logs and Ray Data's progress lines, unless -v: our progress bar is enough."""
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        return
    import ray.data

    for name in ["ray", "ray.data", *[n for n in logging.root.manager.loggerDict if n.startswith("ray.")]]:
        logging.getLogger(name).setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "enable_operator_progress_bars"):
        ctx.enable_operator_progress_bars = False


def _is_uri(location: str) -> bool:
    return "://" in location and not location.startswith("file://")
