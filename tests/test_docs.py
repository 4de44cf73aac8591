"""The documentation says what is true: README.md and docs/ never name an issue number, every link
from the README into docs/ resolves, and every command shown in a fenced shell block (```bash,
```sh, ```console, ```shell or a block with no language) runs in a test, or carries a visible
marker with the reason on the line right above its block:

    <!-- not-run: needs a camera -->                     (never run; the reason is required)
    <!-- run-by: tests/test_x.py::test_name -->          (another test runs it; it must exist)

Unmarked blocks are pasted into bash, one Markdown file at a time, in a fresh folder holding small
inputs under the names the docs use (``photos/<person>/``, ``new/``, ``a.jpg`` ... see
``workbench``), with a fresh gallery; ``SUBSTITUTIONS`` below swaps the few arguments that name big
data sets or devices for those small inputs. Each command must exit 0 without a traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import facebank
from tests.conftest import shared_faces

REPO = Path(__file__).resolve().parents[1]
SRC = Path(facebank.__file__).resolve().parents[1]  # the facebank these tests import (and run)
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SHELL = {"", "bash", "sh", "console", "shell"}
MARKER = re.compile(r"^<!--\s*(not-run|run-by):\s*(.*?)\s*-->\s*$")
# programs an unmarked block may call: the runner has no server, network or camera
RUNNABLE = {"facebank", "sh", "cat", "ls"}

# The documented mapping from what the docs show to the small inputs the runner has: (shown, run).
SUBSTITUTIONS: list[tuple[str, str]] = [
    ("../shared/faces/kpop15/train", "photos"),      # a labelled folder: 3 people x 6 photos
    ("../shared/faces/5celeb/train", "photos"),
    ("../shared/faces/5celeb/val", "val"),           # the same 3 people, other photos
    ("../shared/faces/pins10", "photos"),
    ("--per-person 1,3,5,10,25,50", "--per-person 1,3"),
    ("rtsp://camera/stream", "clip.mp4"),            # watch reads a file like a stream
    ("rtsp://camera.local/stream", "clip.mp4"),
    ("long.mp4 --start 600 --end 660", "clip.mp4 --start 0.5 --end 1.5"),  # a part of a video
    ("people move 812", "people move 1"),            # face ids of a small fresh gallery
]


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: str | None  # "not-run", "run-by" or None
    reason: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    def commands(self) -> list[str]:
        """The block's commands: continuation lines joined, comments and blank lines dropped."""
        joined = re.sub(r"\s*\\\n\s*", " ", self.text)
        out = []
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("$ "):  # console style
                line = line[2:]
            line = re.sub(r"\s+#\s.*$", "", line)
            if line and not line.startswith("#"):
                out.append(line)
        return out


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = re.match(r"^```\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1).lower()
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        mark = MARKER.match(lines[start - 1].strip()) if start else None
        found.append(Block(page, start + 1, lang, "\n".join(body) + "\n",
                           mark.group(1) if mark else None, mark.group(2) if mark else ""))
    return found


def shell_blocks(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.lang in SHELL]


def runnable(page: Path) -> list[Block]:
    return [b for b in shell_blocks(page) if b.marker is None]


# -- no issue numbers ------------------------------------------------------------------------------
ISSUE_REF = re.compile(r"\bissues?\s+#?\d+\b|(?<![\w&/#`])(?<!unknown )#\d+\b", re.I)
# what facebank itself prints: unknown people of a video ("unknown #1") and group ids ("`#12`")


def test_no_page_names_an_issue_number():
    found = [f"{p.relative_to(REPO)}:{n}: {m.group(0)!r}" for p in PAGES
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             for m in ISSUE_REF.finditer(line)]
    assert not found, "issue numbers mean nothing to a reader:\n" + "\n".join(found)


def test_the_issue_number_check_can_fail():
    assert ISSUE_REF.search("see issue 12") and ISSUE_REF.search("(issues 3 and 4)")
    assert ISSUE_REF.search("fixed in #42")
    assert not ISSUE_REF.search("top-1 100 %, HTML &#215; and an anchor [x](#security)")


# -- links -----------------------------------------------------------------------------------------
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_of_the_readme_resolves():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    anchors = {slug(h) for h in re.findall(r"^#+\s+(.*)$", text, re.M)}
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        if not path:
            if anchor not in anchors:
                broken.append(target)
        elif not (REPO / path).exists():
            broken.append(target)
    assert not broken, f"README.md links to what does not exist: {broken}"


def guide_pages() -> list[str]:
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    guides = next(item["Guides"] for item in nav if isinstance(item, dict) and "Guides" in item)
    return [next(iter(entry.values())) if isinstance(entry, dict) else entry for entry in guides]


def test_the_readme_links_every_guide_and_each_exists():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    linked = set(LINK.findall(text))
    pages = guide_pages()
    assert len(pages) >= 5
    for page in pages:
        assert (REPO / "docs" / page).is_file(), f"mkdocs.yml lists docs/{page}, which does not exist"
        assert f"docs/{page}" in linked, f"README.md does not link the guide docs/{page}"


# -- every command runs or says why not ------------------------------------------------------------
def test_every_shell_block_runs_in_a_test_or_says_why_not():
    problems = []
    for page in PAGES:
        for block in shell_blocks(page):
            if block.marker == "not-run":
                if len(block.reason) < 10:
                    problems.append(f"{block.where}: not-run needs a reason")
            elif block.marker == "run-by":
                file, _, name = block.reason.partition("::")
                source = REPO / file
                pattern = rf"^def {re.escape(name)}\("
                defined = source.is_file() and re.search(pattern, source.read_text(), re.M)
                if not defined:
                    problems.append(f"{block.where}: run-by names no test: {block.reason}")
            else:
                for command in block.commands():
                    program = command.split()[0]
                    if program not in RUNNABLE:
                        problems.append(f"{block.where}: {command!r}: the runner cannot run {program!r}; "
                                        "add <!-- not-run: reason --> above the block")
    assert not problems, "\n".join(problems)


def test_the_block_parser_sees_markers_and_commands(tmp_path):
    page = tmp_path / "x.md"
    page.write_text("text\n<!-- not-run: needs a camera -->\n```bash\nfacebank watch 0  # cam\n```\n"
                    "```\nfacebank enroll \\\n  photos/\n\n# a comment\n```\n```python\nprint(1)\n```\n")
    found = blocks(page)
    assert [(b.lang, b.marker, b.reason) for b in found] == [
        ("bash", "not-run", "needs a camera"), ("", None, ""), ("python", None, "")]
    assert found[0].commands() == ["facebank watch 0"]
    assert found[1].commands() == ["facebank enroll photos/"]


def test_the_server_steps_in_the_docs_are_the_readme_steps_the_server_test_runs():
    """docs/server.md shows the README's server steps; tests/test_server_hardening.py runs those."""
    (readme,) = [b for b in shell_blocks(REPO / "README.md") if "facebank serve" in b.text]
    (docs,) = [b for b in shell_blocks(REPO / "docs" / "server.md") if "facebank serve" in b.text]
    assert readme.marker == "run-by" and "test_the_readme_key_steps" in readme.reason
    assert docs.commands() == readme.commands()


def pages_with_commands() -> list[Path]:
    return [p for p in PAGES if runnable(p)]


@pytest.fixture(scope="module")
def workbench(tmp_path_factory) -> Path:
    """Small inputs under the names the docs use; each page's commands run in a fresh copy."""
    faces = shared_faces()
    root = tmp_path_factory.mktemp("bench") / "inputs"
    train, val = faces / "5celeb" / "train", faces / "5celeb" / "val"
    people = {"alice": "madonna", "bob": "elton_john", "dave": "jerry_seinfeld"}

    def photos(folder: Path, n: int, skip: int = 0) -> list[Path]:
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        return found[skip:skip + n]

    for name, celeb in people.items():
        for sub, source, n in (("photos", train, 6), ("val", val, 2)):
            (root / sub / name).mkdir(parents=True)
            for p in photos(source / celeb, n):
                shutil.copyfile(p, root / sub / name / p.name)  # copies: audit never moves a link
    first = photos(root / "photos" / "alice", 1)[0]
    shutil.copyfile(first, first.with_name("copy-" + first.name))  # a duplicate for the audit to find
    (root / "new").mkdir()
    for k, celeb in enumerate(("madonna", "elton_john", "ben_afflek")):
        (root / "new" / f"{k}.jpg").symlink_to(photos(val / celeb, 1, skip=2)[0])
    a, b = photos(val / "elton_john", 2)  # measured the same person (L2 0.35)
    (root / "a.jpg").symlink_to(a)
    (root / "b.jpg").symlink_to(b)
    (root / "photo.jpg").symlink_to(photos(val / "madonna", 1)[0])
    (root / "library" / "2024").mkdir(parents=True)
    for celeb in ("mindy_kaling", "ben_afflek", "jerry_seinfeld", "madonna"):
        for p in photos(train / celeb, 4, skip=6):
            (root / "library" / "2024" / f"{celeb}-{p.name}").symlink_to(p)
    from facebank.video.synthetic import Shot, make_video

    make_video(root / "clip.mp4", [Shot(("madonna",), (photos(val / "madonna", 1)[0],), 1.0),
                                   Shot(("elton_john",), (photos(val / "elton_john", 1)[0],), 1.0, "pan")],
               fps=10, width=640, height=360)
    return root


def facebank_env(bin_dir: Path) -> dict[str, str]:
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "facebank"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m facebank "$@"\n')
    exe.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "FACEBANK_WORKERS": "1"}
    env.pop("FACEBANK_GALLERY", None)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def substitute(command: str) -> str:
    for shown, run in SUBSTITUTIONS:
        command = command.replace(shown, run)
    return command


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("page", pages_with_commands(), ids=lambda p: str(p.relative_to(REPO)))
def test_the_commands_shown_run(page, workbench, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(workbench, work, symlinks=True)
    commands = [substitute(c) for block in runnable(page) for c in block.commands()]
    script = "\n".join(f'{c}\necho "@@ $? {i}" >&2' for i, c in enumerate(commands))
    run = subprocess.run(["bash", "-c", script], cwd=work, env=facebank_env(tmp_path / "bin"),
                         capture_output=True, text=True, timeout=1200)
    codes = {int(i): int(rc) for rc, i in re.findall(r"^@@ (\d+) (\d+)$", run.stderr, re.M)}
    failed = [f"{commands[i]!r} exited {rc}" for i, rc in codes.items() if rc != 0]
    assert len(codes) == len(commands), run.stderr[-3000:]
    assert not failed, "\n".join(failed) + "\n" + run.stderr[-4000:]
    assert "Traceback" not in run.stderr, run.stderr[-4000:]
