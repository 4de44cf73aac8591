"""Models a user can install by name, and the models installed in the user's data folder.

The catalogue is kept in the code: each entry pins an upstream URL to a commit, the file's sha256,
its licence, its model card and the figures measured with it. ``install`` downloads the file
(resumable: an interrupted download continues with an HTTP Range request), checks its sha256 and
only then moves it into the data folder (``models/NAME/NAME.onnx`` with its card ``NAME.json``
beside it); a file whose sha256 differs is deleted and nothing is installed. ``install(...,
source=FILE)`` installs the same entry from a local copy (offline users, tests).

``installed.json`` in the data folder lists installed and added models by name
(``facebank models add`` registers a model kept elsewhere, its card under ``cards/SHA256.json``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facebank import models
from facebank.embed.points import data_dir

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NON_COMMERCIAL = ("non-commercial", "noncommercial", "research only", "cc-by-nc", "non commercial")


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    url: str
    sha256: str
    size_bytes: int
    licence: str
    card: dict[str, Any]
    description: str = ""
    # figures measured with facebank (docs/models.md), keyed by benchmark name
    figures: dict[str, float] = field(default_factory=dict)


CATALOGUE: dict[str, CatalogueEntry] = {
    "mobilefacenet": CatalogueEntry(
        name="mobilefacenet",
        url="https://github.com/foamliu/MobileFaceNet/raw/a6cc9032a659b615f477833e1a70b5e7931bcccc/weights/"
            "MobileFaceNet.onnx",
        sha256="b7120c095d60094f28a4a54ba6a8bf51b297a6273fb40ef6350dfec1f63d9507",
        size_bytes=3_998_070,
        licence="Apache-2.0",
        card={"name": "mobilefacenet", "input_size": 112, "template": "arcface",
              "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
              "channels": "RGB", "layout": "NCHW", "output": "output0", "licence": "Apache-2.0"},
        description="MobileFaceNet (Chen et al. 2018), ArcFace margin, MS-Celeb-1M; foamliu/MobileFaceNet",
        figures={"lfw_view2_acc": 0.9942, "lfw_openset_dir_far1": 0.972},
    ),
}

# the built-in model's figure of the same benchmark (dlib's ResNet with flip; README / issue 18), which
# an installed model must beat to become the default of new galleries
RANK_FIGURE = "lfw_openset_dir_far1"
BUILTIN_FIGURES = {"lfw_view2_acc": 0.9930, "lfw_openset_dir_far1": 0.846}


def installed_model_ids() -> dict[str, tuple[str, Path]]:
    """model id -> (name, path) of every installed or added model that loads."""
    from facebank.embed.base import create  # the registry: the onnx module itself imports this one

    out: dict[str, tuple[str, Path]] = {}
    for name, entry in installed().items():
        try:
            out[create("onnx", model=entry["path"]).model_id] = (name, Path(entry["path"]))
        except Exception as exc:  # noqa: BLE001 - a broken entry is skipped (models list shows why)
            log.info("installed model %s does not load: %s", name, exc)
    return out


def default_embedder(gallery_model_id: str | None) -> tuple[str, str | None]:
    """(embedder, onnx model) to use when the user named none: the gallery's own model when it holds
    embeddings (dlib's: ``fast``; another: the installed model with that id), else, for a new gallery,
    the best installed and calibrated catalogue model by ``RANK_FIGURE``, if it beats dlib's."""
    from facebank.embed.dlib import DLIB_MODEL_ID
    from facebank.embed.points import NotCalibrated, points_for

    if gallery_model_id is not None:
        if gallery_model_id == DLIB_MODEL_ID:
            return "fast", None
        found = installed_model_ids().get(gallery_model_id)
        return ("onnx", found[0]) if found else ("fast", None)
    best, best_figure = None, BUILTIN_FIGURES[RANK_FIGURE]
    for mid, (name, _) in installed_model_ids().items():
        entry = CATALOGUE.get(name)
        fig = entry.figures.get(RANK_FIGURE) if entry else None
        if fig is None or fig <= best_figure:
            continue
        try:
            points_for(mid)
        except (NotCalibrated, ValueError):
            continue
        best, best_figure = name, fig
    return ("onnx", best) if best else ("fast", None)


class InstallError(RuntimeError):
    """An install that did not happen: nothing was left in the data folder."""


def models_dir() -> Path:
    return data_dir() / "models"


def _installed_file() -> Path:
    return data_dir() / "installed.json"


def installed() -> dict[str, dict[str, Any]]:
    """Installed and added models by name: {"path", "sha256", "licence", "source"}."""
    path = _installed_file()
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InstallError(f"{path} is unreadable ({exc}); remove it and install the models again") from None
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(v, dict) and "path" in v}


def _write_installed(table: dict[str, dict[str, Any]]) -> None:
    path = _installed_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=2, sort_keys=True))
    os.replace(tmp, path)


def register_model(name: str, path: Path, licence: str, source: str) -> None:
    check_name(name)
    table = installed()
    table[name] = {"path": str(Path(path).resolve()), "sha256": models.file_sha256(Path(path).resolve()),
                   "licence": licence, "source": source}
    _write_installed(table)


def note(name: str, **fields: object) -> None:
    """Remember facts about an installed model (e.g. ``ms_per_face``) in its entry."""
    table = installed()
    if name in table:
        table[name].update(fields)
        _write_installed(table)


def unregister(name: str) -> dict[str, Any] | None:
    table = installed()
    entry = table.pop(name, None)
    if entry is not None:
        _write_installed(table)
    return entry


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ValueError(f"model name {name!r}: lower-case letters, digits, '.', '_', '-' (at most 64)")
    return name


def resolve_model(model: str | Path) -> Path:
    """The .onnx file of ``model``: a path to a file, or the name of an installed or added model."""
    text = str(model)
    path = Path(text)
    if path.is_file():
        return path
    table = installed()
    if text in table:
        found = Path(table[text]["path"])
        if not found.is_file():
            raise FileNotFoundError(f"model {text!r} is registered at {found}, which is gone: "
                                    f"'facebank models remove {text}' then install or add it again")
        return found
    if text in CATALOGUE:
        raise FileNotFoundError(f"model {text!r} is not installed: run 'facebank models install {text}'")
    raise FileNotFoundError(f"ONNX model {text} not found (neither a file nor an installed model: "
                            f"'facebank models list')")


def is_non_commercial(licence: str) -> bool:
    low = licence.lower()
    return any(word in low for word in NON_COMMERCIAL)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


Progress = Callable[[int, int], None]  # (bytes so far, total bytes or 0)


def download(url: str, dest: Path, expected_size: int = 0, progress: Progress | None = None,
             timeout_s: float = 30.0, max_bytes: int = 1 << 30) -> Path:
    """Download ``url`` to ``dest``, continuing a partial ``dest`` with an HTTP Range request."""
    if not url.startswith(("https://", "http://")):
        raise InstallError(f"refusing to download {url!r}: only http(s) URLs")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = dest.stat().st_size if dest.exists() else 0
    if expected_size and have >= expected_size:
        return dest
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - scheme checked above
            status = getattr(resp, "status", 200)
            mode = "ab" if have and status == 206 else "wb"
            if mode == "wb":
                have = 0
            length = int(resp.headers.get("Content-Length") or 0)
            total = expected_size or (have + length if length else 0)
            with open(dest, mode) as out:
                while True:
                    block = resp.read(1 << 16)
                    if not block:
                        break
                    have += len(block)
                    if have > max(max_bytes, expected_size):
                        raise InstallError(f"download of {url} is larger than {max_bytes} bytes: stopped")
                    out.write(block)
                    if progress:
                        progress(have, total)
    except OSError as exc:
        raise InstallError(f"download of {url} failed ({exc}); run the same command again to "
                           f"resume") from None
    return dest


def install(name: str, source: Path | None = None, url: str | None = None,
            progress: Progress | None = None) -> Path:
    """Install catalogue entry ``name`` (from ``source``, a local copy, or downloaded from ``url`` or the
    entry's own URL) into the data folder; its sha256 is checked before anything is installed.
    Returns the installed .onnx path (its card beside it)."""
    entry = CATALOGUE.get(name)
    if entry is None:
        raise InstallError(f"no model {name!r} in the catalogue; choose one of "
                           f"{', '.join(sorted(CATALOGUE))}")
    target_dir = models_dir() / name
    staging = data_dir() / "downloads" / f"{entry.sha256}.part"
    if source is not None:
        source = Path(source)
        if not source.is_file():
            raise InstallError(f"{source} not found")
        got = sha256_of(source)
        if got != entry.sha256:
            raise InstallError(f"{source} is not the catalogue's {name}: sha256 {got[:16]}... expected "
                               f"{entry.sha256[:16]}...; nothing installed")
        staging.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staging)
    else:
        download(url or entry.url, staging, entry.size_bytes, progress)
        got = sha256_of(staging)
        if got != entry.sha256:
            staging.unlink(missing_ok=True)
            raise InstallError(f"the download of {name} has sha256 {got[:16]}..., expected "
                               f"{entry.sha256[:16]}...: deleted, nothing installed")
    target_dir.mkdir(parents=True, exist_ok=True)
    model = target_dir / f"{name}.onnx"
    (target_dir / f"{name}.json").write_text(json.dumps(entry.card, indent=2))
    os.replace(staging, model)
    register_model(name, model, entry.licence, source=f"catalogue:{name}")
    log.info("installed %s at %s", name, model)
    return model
