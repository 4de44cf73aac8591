"""The command line: thin wrappers over the Python API (``facebank --help``)."""

from __future__ import annotations

import importlib

from facebank.cli.app import app

for _module in ("core", "learn", "serve", "scale", "audit", "cluster", "video", "backup", "models"):
    try:
        importlib.import_module(f"facebank.cli.{_module}")
    except ModuleNotFoundError as _exc:  # a command group not written yet
        if _exc.name != f"facebank.cli.{_module}":
            raise


def main() -> None:
    from facebank.embed.points import NotCalibrated

    try:
        app()
    except NotCalibrated as exc:  # a model without operating points: one line naming the command to run
        import sys

        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


__all__ = ["app", "main"]
