"""facebank models: list, check, add, install, calibrate, remove face models."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import typer

from facebank.cli.app import (
    EmbedderOpt,
    FlipOpt,
    GalleryOpt,
    OnnxOpt,
    app,
    fail,
    make_settings,
    open_bank,
    progress,
)

models_app = typer.Typer(
    help="Face models: the built-in one (dlib's ResNet), models from the catalogue ('install') and your "
         "own ONNX models ('check', 'add'); each with its operating points ('calibrate').",
    no_args_is_help=True)
app.add_typer(models_app, name="models")

FolderArg = typer.Argument(None, help="development photos, one sub-folder per person (default: LFW's "
                           "development people under --lfw)")
LfwOpt = typer.Option(None, "--lfw", help="the LFW folder (images/) to calibrate on its development people",
                      envvar="FACEBANK_LFW")
LimitOpt = typer.Option(None, "--limit", min=20, help="at most this many photos (the same share of each "
                        "person's)")
FarOpt = typer.Option(0.01, "--far", min=0.0001, max=0.2, help="false accept rate the thresholds aim at")
JsonOpt = typer.Option(False, "--json", help="print JSON")


def _points_line(model_id: str) -> str:
    from facebank.embed.points import NotCalibrated, points_for

    try:
        p = points_for(model_id)
    except NotCalibrated:
        return "not calibrated"
    except ValueError as exc:
        return f"unreadable points ({exc})"
    return f"verify {p.verify_l2:.3f}, identify {p.identify_l2:.3f}, cluster {p.cluster_l2:.3f}"


def _model_rows() -> list[dict]:
    from facebank.embed.catalogue import CATALOGUE, installed
    from facebank.embed.dlib import DLIB_MODEL_ID
    from facebank.embed.points import NotCalibrated, points_for

    rows: list[dict[str, Any]] = [{"name": "dlib (built in: --embedder fast / dlib)",
                                   "model_id": DLIB_MODEL_ID, "dim": 128,
                                   "licence": "CC0 (dlib's model, Davis King)", "installed": True}]
    table = installed()
    for name, entry in sorted(table.items()):
        row = {"name": name, "path": entry.get("path"), "licence": entry.get("licence", ""),
               "installed": True, "source": entry.get("source", ""), "ms_per_face": entry.get("ms_per_face")}
        try:
            from facebank.embed.onnx import OnnxEmbedder

            emb = OnnxEmbedder(entry["path"])
            row.update(model_id=emb.model_id, dim=emb.dim)
        except Exception as exc:  # noqa: BLE001 - a broken entry is listed with its problem
            row.update(model_id=None, problem=str(exc).splitlines()[0])
        rows.append(row)
    for name, known in sorted(CATALOGUE.items()):
        if name not in table:
            rows.append({"name": name, "model_id": None, "licence": known.licence, "installed": False,
                         "figures": known.figures})
    for row in rows:
        mid = row.get("model_id")
        if mid:
            row["points"] = _points_line(mid)
            try:
                row["operating_points"] = points_for(mid).to_json()
            except (NotCalibrated, ValueError):
                row["operating_points"] = None
    return rows


@models_app.command("list")
def list_models(as_json: bool = JsonOpt) -> None:
    """Built-in, installed and catalogue models: id, dimensions, operating points, licence, speed."""
    rows = _model_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "" if r["installed"] else "  (not installed: facebank models install " + r["name"] + ")"
        typer.echo(f"{r['name']}{state}")
        if r.get("model_id"):
            typer.echo(f"  id {r['model_id']}, {r.get('dim', '?')}-d; {r.get('points')}")
        if r.get("problem"):
            typer.echo(f"  problem: {r['problem']}")
        if r.get("ms_per_face"):
            typer.echo(f"  speed: {r['ms_per_face']:.1f} ms of CPU per face (one thread)")
        typer.echo(f"  licence: {r.get('licence') or 'unknown'}")


def _probe_or_fail(model: Path, card: dict | None):
    from facebank.embed.probe import ProbeError, probe

    try:
        return probe(model, card)
    except ProbeError as exc:
        raise fail(str(exc)) from None


def _card_of(model: Path) -> dict | None:
    from facebank.embed.onnx import find_card

    try:
        return json.loads(find_card(model).read_text())
    except (FileNotFoundError, ValueError):
        return None


@models_app.command("check")
def check(
    model: Path = typer.Argument(..., help="an ONNX face model file"),
    folder: Path = typer.Option(None, "--folder", help="labelled photos (one sub-folder per person): pick "
                                "mean/std, channel order and face template among the standard presets"),
    limit: int = typer.Option(200, "--limit", min=10, help="photos of --folder to use"),
    as_json: bool = JsonOpt,
) -> None:
    """Look at a model under a size and time limit: inputs, outputs, batch; one face through it; the
    card fields the graph tells (and, with --folder, the preset that verifies best)."""
    if not model.is_file():
        raise fail(f"{model} not found", 2)
    card = _card_of(model)
    rep = _probe_or_fail(model, card)
    out = {"inputs": rep.inputs, "outputs": rep.outputs, "batch": rep.batch or "any",
           "output_dim": rep.output_dim, "ms_per_face": rep.ms_per_face, "size_bytes": rep.size_bytes,
           "card_from_graph": rep.graph_card, "card": card}
    if folder is not None:
        from facebank.calibration.presets import choose_preset

        if not folder.is_dir():
            raise fail(f"{folder} is not a folder", 2)
        try:
            choice = choose_preset(model, folder, rep.graph_card, limit)
        except ValueError as exc:
            raise fail(str(exc)) from None
        out["preset"] = choice.preset or "unknown"
        out["preset_accuracy"] = {k: round(v, 4) for k, v in choice.accuracy.items()}
        out["suggested_card"] = {**rep.graph_card, **choice.fields} if choice.preset else None
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"{model}: {rep.size_bytes / 1e6:.1f} MB, batch {out['batch']}")
    for name, shape, dtype in rep.inputs:
        typer.echo(f"  input  {name} {shape} {dtype}")
    for name, shape, dtype in rep.outputs:
        typer.echo(f"  output {name} {shape} {dtype}")
    typer.echo(f"  one face: {rep.output_dim}-d output, {rep.ms_per_face:.1f} ms of CPU")
    typer.echo(f"  the graph tells: {json.dumps(rep.graph_card)}")
    typer.echo(f"  card: {json.dumps(card) if card else 'none (mean, std, channels, template unknown)'}")
    if folder is not None:
        for k, v in sorted(out["preset_accuracy"].items(), key=lambda kv: -kv[1]):
            typer.echo(f"  preset {k}: verification accuracy {v:.3f}")
        typer.echo(f"  best preset: {out['preset']}"
                   + (f"; card: {json.dumps(out['suggested_card'])}" if out["suggested_card"] else ""))


@models_app.command("add")
def add(
    model: Path = typer.Argument(..., help="an ONNX face model file (left where it is)"),
    name: str = typer.Option(..., "--name", "-n", help="the name to use it by (--onnx-model NAME)"),
    card: Path = typer.Option(None, "--card", help="its model card (JSON); default MODEL.json beside it"),
    licence: str = typer.Option("", "--licence", help="the model's licence, shown by 'models list'"),
    copy: bool = typer.Option(False, "--copy", help="copy the model into the data folder"),
) -> None:
    """Register your own ONNX model by name; its card is stored in the data folder by the model's sha256
    (so models in read-only folders work). Probed first under a size and time limit."""
    from facebank.embed import catalogue
    from facebank.embed.onnx import ModelCard, ModelError, card_path_in_data, inspect_model

    if not model.is_file():
        raise fail(f"{model} not found", 2)
    try:
        catalogue.check_name(name)
        info = inspect_model(model)  # size limit, external tensors inside the folder, no custom ops
        card_path = card or model.with_suffix(".json")
        if not card_path.is_file():
            raise fail(f"no model card: pass --card CARD.json (see 'facebank models check {model}')", 2)
        parsed = ModelCard.load(card_path)
    except (ValueError, ModelError) as exc:
        raise fail(str(exc), 2) from None
    rep = _probe_or_fail(model, parsed.to_json())
    target = model
    if copy:
        if info.external:
            raise fail(f"{model} keeps tensors in other files ({', '.join(info.external)}): copying is "
                       f"refused; add it where it is (without --copy)")
        dest = catalogue.models_dir() / name
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / f"{name}.onnx"
        shutil.copyfile(model, target)
        (dest / f"{name}.json").write_text(json.dumps(parsed.to_json(), indent=2))
    stored = card_path_in_data(target)
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_text(json.dumps(parsed.to_json(), indent=2))
    catalogue.register_model(name, target, licence or parsed.licence, source=f"added from {model}")
    _note_speed(name, rep.ms_per_face)
    typer.echo(f"added {name}: {target} ({rep.output_dim}-d, batch {rep.batch or 'any'}); card {stored}")
    _licence_notice(licence or parsed.licence)
    typer.echo(f"next: facebank models calibrate {name} [FOLDER]")


def _note_speed(name: str, ms: float) -> None:
    from facebank.embed import catalogue

    catalogue.note(name, ms_per_face=ms)


def _licence_notice(licence: str) -> None:
    from facebank.embed.catalogue import is_non_commercial

    typer.echo(f"licence: {licence or 'unknown'}")
    if is_non_commercial(licence):
        typer.echo("warning: this licence does not allow commercial use", err=True)


@models_app.command("install")
def install(
    name: str = typer.Argument(..., help="a catalogue model ('facebank models list')"),
    source: Path = typer.Option(None, "--from", help="install from this local copy (checked by sha256)"),
    url: str = typer.Option(None, "--url", help="download from this URL instead of the catalogue's",
                            envvar="FACEBANK_MODEL_URL"),
    calibrate_on: Path = typer.Option(None, "--calibrate-on", help="labelled photos to calibrate on"),
    lfw: Path = LfwOpt,
    limit: int = LimitOpt,
    no_calibrate: bool = typer.Option(False, "--no-calibrate", help="install only"),
) -> None:
    """Install a model of the catalogue into your data folder: download (resumable, with progress) or
    --from a local copy, checked against its sha256 (nothing is installed on a mismatch), then
    calibrated on --calibrate-on FOLDER or LFW's development people (--lfw)."""
    from tqdm import tqdm

    from facebank.embed import catalogue

    entry = catalogue.CATALOGUE.get(name)
    if entry is None:
        known = ", ".join(sorted(catalogue.CATALOGUE))
        raise fail(f"no model {name!r} in the catalogue; choose one of {known}", 2)
    typer.echo(f"{name}: {entry.description}")
    _licence_notice(entry.licence)
    bar = tqdm(total=entry.size_bytes, unit="B", unit_scale=True, desc="download", disable=None)

    def show(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        path = catalogue.install(name, source=source, url=url, progress=show)
    except catalogue.InstallError as exc:
        raise fail(str(exc)) from None
    finally:
        bar.close()
    rep = _probe_or_fail(path, entry.card)
    _note_speed(name, rep.ms_per_face)
    typer.echo(f"installed {name} at {path}")
    if no_calibrate or (calibrate_on is None and lfw is None):
        typer.echo(f"next: facebank models calibrate {name} FOLDER (or --lfw LFW_FOLDER)")
        return
    _calibrate(name, calibrate_on, lfw, limit, 0.01, True, False)


def _calibrate(model: str, folder: Path | None, lfw: Path | None, limit: int | None, far: float, flip: bool,
               as_json: bool) -> None:
    from facebank.calibration.points import calibrate as run
    from facebank.settings import Settings

    if folder is None and lfw is None:
        raise fail("give a FOLDER of labelled photos (one sub-folder per person) or --lfw LFW_FOLDER", 2)
    if folder is not None and not folder.is_dir():
        raise fail(f"{folder} is not a folder", 2)
    embedder = model if model in ("fast", "dlib") else "onnx"
    settings = Settings(embedder=embedder, onnx_model=None if embedder != "onnx" else model, flip=flip)
    try:
        m = run(settings, folder, lfw, limit, far, progress=progress)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    p = m.points
    if as_json:
        typer.echo(json.dumps({"points": p.to_json(), "photos": m.photos, "people": m.people,
                               "same_pairs": m.same_pairs, "different_pairs": m.different_pairs}, indent=2))
        return
    typer.echo(f"calibrated {model} ({p.model_id}) on {m.photos} photos of {m.people} people "
               f"({m.same_pairs} same / {m.different_pairs} different pairs), FAR {far:g}:")
    typer.echo(f"  verify {p.verify_l2:.3f} (dev accuracy {m.verify_accuracy:.3f}), identify "
               f"{p.identify_l2:.3f}, cluster {p.cluster_l2:.3f} (dev B-cubed F1 {m.cluster_f1:.3f}), track "
               f"link {p.link_l2:.3f}")
    typer.echo(f"  priors {json.dumps({k: round(v, 3) for k, v in p.prior_l2.items()})}, margin slope "
               f"{p.prior_margin_slope:.3f}; audit duplicate {p.duplicate_l2:.3f}, outlier "
               f"{p.outlier_l2:.3f}")


@models_app.command("calibrate")
def calibrate(
    model: str = typer.Argument(..., help="an installed model's name, an ONNX file, or fast/dlib"),
    folder: Path = FolderArg,
    lfw: Path = LfwOpt,
    limit: int = LimitOpt,
    far: float = FarOpt,
    flip: bool = typer.Option(True, "--flip/--no-flip", help="the flip setting the points are for"),
    as_json: bool = JsonOpt,
) -> None:
    """Measure a model's operating points (verify threshold at --far, cluster edge, decision priors,
    impostor distances) on development photos and store them; the model id does not change."""
    _calibrate(model, folder, lfw, limit, far, flip, as_json)


@models_app.command("remove")
def remove(name: str = typer.Argument(..., help="an installed or added model")) -> None:
    """Forget a model: its registration, its operating points, and its files if they are in the data
    folder (a model added from elsewhere stays where it is)."""
    from facebank.embed import catalogue
    from facebank.embed.onnx import OnnxEmbedder
    from facebank.embed.points import remove_points

    entry = catalogue.installed().get(name)
    if entry is None:
        raise fail(f"no installed model named {name!r} ('facebank models list')", 2)
    path = Path(entry["path"])
    with contextlib.suppress(Exception):  # a broken model is still removed
        remove_points(OnnxEmbedder(path).model_id)
    catalogue.unregister(name)
    inside = catalogue.models_dir().resolve()
    if path.resolve().is_relative_to(inside):
        shutil.rmtree(path.resolve().parent, ignore_errors=True)
    typer.echo(f"removed {name}")


@app.command()
def reembed(
    gallery: str = GalleryOpt,
    embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt, flip: bool = FlipOpt,
) -> None:
    """Switch a gallery to another model: every stored face embedded again from its stored box and
    landmarks (no new detection); faces, clusters, people and ids stay. Resumable (rerun it); a
    photo no longer on disk is a listed problem and the gallery stays on its old model."""
    from facebank.api import FaceBank
    from facebank.gallery.sqlite import SqliteGallery
    from facebank.reembed import reembed as run

    settings = make_settings(gallery, embedder=embedder, onnx_model=onnx_model, flip=flip)
    if embedder is None and onnx_model is None:
        raise fail("name the new model: --onnx-model NAME|PATH or --embedder fast", 2)
    bank = open_bank(settings, must_exist=True)
    try:
        if not isinstance(bank.gallery, SqliteGallery):
            raise fail("reembed works on SQLite galleries", 2)
        assert isinstance(bank, FaceBank)
        rep = run(bank.gallery, settings, progress=progress)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    finally:
        bank.close()
    for path, reason in rep.problems:
        typer.echo(f"  problem {path}: {reason}", err=True)
    if rep.switched:
        typer.echo(f"re-embedded {rep.faces} faces ({rep.embedded} now, {rep.staged} before) with "
                   f"{rep.model_id} (was {rep.old_model_id}); people, clusters and ids unchanged")
        return
    typer.echo(f"{len(rep.problems)} problem(s): the gallery stays on {rep.old_model_id}; "
               f"{rep.embedded + rep.staged} of {rep.faces} faces are re-embedded and kept: fix the photos "
               f"and run the same command again")
    raise typer.Exit(1)
