"""The benchmark pages are generated from bench/results/*.jsonl (bench/docs_hook.py): every results
line is a complete record, every page marker names a results file, and a rendered table shows each
run's date, load, command and figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import docs_hook  # noqa: E402

REQUIRED = {"bench", "date", "commit", "load", "command", "figures"}


@pytest.mark.parametrize("path", sorted((REPO / "bench" / "results").glob("*.jsonl")), ids=lambda p: p.name)
def test_every_results_line_is_a_complete_record(path):
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        run = json.loads(line)
        assert set(run) >= REQUIRED, f"{path.name}:{n} lacks {REQUIRED - set(run)}"
        assert run["bench"] == path.stem and run["command"] and run["figures"], f"{path.name}:{n}"


def test_every_marker_in_the_docs_names_a_results_file():
    named = set()
    for page in (REPO / "docs").rglob("*.md"):
        named |= docs_hook.names_in(page.read_text(encoding="utf-8"))
    assert named, "no benchmark page shows a results file"
    missing = sorted(n for n in named if not (docs_hook.RESULTS / f"{n}.jsonl").is_file())
    assert not missing, f"markers without bench/results/NAME.jsonl: {missing}"


def test_a_table_shows_date_load_command_and_figures_newest_first(tmp_path, monkeypatch):
    monkeypatch.setattr(docs_hook, "RESULTS", tmp_path)
    runs = [{"bench": "x", "date": "2026-01-01T00:00:00Z", "commit": "abc", "load": 3.5, "cpus": 2,
             "command": "python bench/bench_x.py", "figures": {"photos_per_s": 12.345}, "notes": "old"},
            {"bench": "x", "date": "2026-02-01T00:00:00Z", "commit": "def", "load": None, "cpus": 2,
             "command": "python bench/bench_x.py --fast", "source": "README at 123",
             "figures": {"grid": {"columns": ["a", "b|c"], "rows": [["1", "2"]]}}, "notes": ""}]
    (tmp_path / "x.jsonl").write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    page = docs_hook.expand("# X\n\n<!-- bench: x -->\n")
    assert "| date | load | command | figures |" in page
    assert page.index("--fast") < page.index("photos_per_s")  # newest first
    assert "3.5 on 2 cores" in page and "12.35" in page and "README at 123" in page
    assert "| a | b\\|c |" in page  # a table-shaped figure becomes its own table, cells escaped
    with pytest.raises(docs_hook.BenchError, match="nosuch"):
        docs_hook.expand("<!-- bench: nosuch -->\n")
