"""The torture test: concurrent writers on one SQLite gallery (a real server over HTTP on 127.0.0.1,
library writer processes, real CLI commands, one real enroll), one writer SIGKILLed at a random
moment each round; every acknowledged write must be there, nothing unacknowledged half there."""

from __future__ import annotations

import os
from pathlib import Path

from facebank.server.torture import Torture

REPO_SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_twenty_rounds_of_concurrent_writers_with_a_kill_each_lose_no_acknowledged_write(tmp_path, faces_dir):
    env = {"PYTHONPATH": REPO_SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    photos = faces_dir / "5celeb" / "val" / "ben_afflek"
    torture = Torture(tmp_path, rounds=20, round_s=0.6, enroll_folder=photos, env=env,
                      seed=int(os.environ.get("FACEBANK_TORTURE_SEED", "17")))
    figures = torture.run()
    assert figures.violations == ()
    assert figures.rounds >= 20 and figures.kills >= 20 and figures.server_kills >= 1
    assert figures.acknowledged_writes >= 2000
    assert figures.enrolled_photos >= 3 and figures.cli_commands >= 4
    # bounded: well under a minute on an idle CI runner; generous here for a shared, loaded machine
    assert figures.wall_s < 180, figures
