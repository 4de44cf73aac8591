"""One place where benchmarks write their figures: a JSON line per run in ``bench/results/NAME.jsonl``.

Each line: ``bench`` (name), ``date`` (UTC, ISO 8601), ``commit`` (git HEAD), ``load`` (1-minute
load average when the run ended, the machine is shared), ``cpus``, ``command`` (what reproduces the
figures), ``figures`` (name -> number or small table), ``notes``. The docs' benchmark pages are
generated from these files, so a figure and the command that produced it cannot drift apart.

    from record import record          # bench/ scripts run as  .venv/bin/python bench/X.py
    record("video", {"cpu_s_per_video_s": 0.8}, notes="...")
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=RESULTS.parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def record(bench: str, figures: dict, command: str | None = None, notes: str = "",
           source: str | None = None) -> dict:
    """Append one result line to ``bench/results/<bench>.jsonl`` and return it. ``command``
    defaults to the command line of this run; ``source`` marks figures carried over from elsewhere
    (e.g. ``"README at <commit>"``) instead of measured by this run."""
    line = {
        "bench": bench,
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _commit(),
        "load": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "command": command or ".venv/bin/python " + " ".join(shlex.quote(a) for a in sys.argv),
        "figures": figures,
        "notes": notes,
    }
    if source:
        line["source"] = source
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{bench}.jsonl", "a") as f:
        f.write(json.dumps(line, sort_keys=True) + "\n")
    return line
