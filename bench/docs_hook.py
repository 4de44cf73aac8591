"""MkDocs hook: benchmark tables generated from ``bench/results/*.jsonl`` (the lines ``record.py`` writes).

A docs page shows a bench's results with a marker line ``<!-- bench: NAME -->`` (the file
``bench/results/NAME.jsonl``); the hook replaces it with a table: date, load, command and figures of
every run, newest first. ``<!-- bench: unlisted -->`` shows every results file no page names, so a
new bench is on the site before anyone writes its page. A figure and the command that produced it
thus come from one line and cannot drift apart. A marker naming a file that does not exist stops
the build (``mkdocs build --strict`` in ``make lint``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
MARKER = re.compile(r"^<!--\s*bench:\s*([\w*-]+)\s*-->\s*$", re.M)
UNLISTED = "unlisted"

_named: set[str] = set()


class BenchError(Exception):
    """A marker names no results file, or a results file is not JSON lines."""


def results(name: str) -> list[dict[str, Any]]:
    """The runs in ``bench/results/<name>.jsonl``, newest first."""
    path = RESULTS / f"{name}.jsonl"
    if not path.is_file():
        raise BenchError(f"<!-- bench: {name} -->: no file bench/results/{name}.jsonl")
    runs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise BenchError(f"bench/results/{name}.jsonl line {number}: {exc}") from exc
    return sorted(runs, key=lambda r: str(r.get("date", "")), reverse=True)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict) and set(value) != {"columns", "rows"}:
        return "; ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    return str(value)


def _when(run: dict[str, Any]) -> str:
    date = str(run.get("date", ""))[:10]
    source = run.get("source")
    commit = run.get("commit") or ""
    return f"{date} ({source})" if source else f"{date} ({commit})" if commit else date


def _load(run: dict[str, Any]) -> str:
    load, cpus = run.get("load"), run.get("cpus")
    if load is None:
        return "not recorded"
    return f"{load} on {cpus} cores" if cpus else str(load)


def render(name: str) -> str:
    """Markdown for one bench: a table of its runs, then any table-shaped figures below it."""
    runs = results(name)
    if not runs:
        return f"*No results recorded yet in `bench/results/{name}.jsonl`.*\n"
    out = ["| date | load | command | figures |", "|---|---|---|---|"]
    tables = []
    for run in runs:
        figures = run.get("figures") or {}
        shown = []
        for key, value in figures.items():
            if isinstance(value, dict) and set(value) == {"columns", "rows"}:
                shown.append(f"**{key}**: table below")
                tables.append((key, run, value))
            else:
                shown.append(f"**{key}**: {_value(value)}")
        if run.get("notes"):
            shown.append(f"*{run['notes']}*")
        out.append(f"| {_cell(_when(run))} | {_cell(_load(run))} | `{_cell(run.get('command', ''))}` | "
                   f"{_cell('<br>'.join(shown))} |")
    for key, run, table in tables:
        out += ["", f"**{key}** ({_when(run)}; `{run.get('command', '')}`)", ""]
        out.append("| " + " | ".join(_cell(c) for c in table["columns"]) + " |")
        out.append("|" + "---|" * len(table["columns"]))
        out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table["rows"]]
    return "\n".join(out) + "\n"


def names_in(markdown: str) -> set[str]:
    return {m.group(1) for m in MARKER.finditer(markdown)} - {UNLISTED}


def unlisted() -> str:
    rest = sorted(p.stem for p in RESULTS.glob("*.jsonl") if p.stem not in _named)
    if not rest:
        return "*Every recorded bench has its page.*\n"
    return "\n".join(f"### {name}\n\n{render(name)}" for name in rest)


def expand(markdown: str) -> str:
    return MARKER.sub(lambda m: unlisted() if m.group(1) == UNLISTED else render(m.group(1)), markdown)


# -- MkDocs hook events -----------------------------------------------------------------------------
def on_files(files: Any, config: Any) -> Any:
    _named.clear()
    for file in files:
        if file.src_uri.endswith(".md") and file.abs_src_path:
            _named.update(names_in(Path(file.abs_src_path).read_text(encoding="utf-8")))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    try:
        return expand(markdown)
    except BenchError as exc:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"{page.file.src_uri}: {exc}") from exc
