"""Module boundaries: no module imports a private name (``_x``) of another facebank module; make it
public or move it. (Layers and import circles are checked by import-linter: ``.importlinter``,
run by ``make lint``.)"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"

# Known crossings being removed in other branches: (importing file, imported module, name).
# The lead empties this list at merge; nothing may be added to it.
ALLOWED: set[tuple[str, str, str]] = set()  # every crossing fixed: keep it empty


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_imports(root: Path) -> list[tuple[str, int, str, str]]:
    """(file relative to root, line, imported module, private name) for every crossing."""
    found = []
    for path in sorted(root.rglob("*.py")):
        here = module_name(path, root)
        package = here if path.name == "__init__.py" else here.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "facebank" or target == here:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append((path.relative_to(root).as_posix(), node.lineno, target, alias.name))
    return found


def test_no_module_imports_a_private_name_of_another():
    crossings = [c for c in private_imports(SRC) if (c[0], c[2], c[3]) not in ALLOWED]
    assert not crossings, "private names imported across modules (make them public or move them):\n" + \
        "\n".join(f"src/{f}:{line}: from {mod} import {name}" for f, line, mod, name in crossings)


def test_the_allowlist_holds_only_crossings_that_still_exist():
    existing = {(f, mod, name) for f, _, mod, name in private_imports(SRC)}
    stale = ALLOWED - existing
    assert not stale, f"fixed, so take them off ALLOWED in tests/test_boundaries.py: {sorted(stale)}"


def test_the_check_finds_absolute_and_relative_private_imports(tmp_path):
    pkg = tmp_path / "facebank"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def _hidden():\n    pass\n_ok = 1\n")
    (pkg / "sub" / "__init__.py").write_text("from ..a import _hidden\n")
    (pkg / "sub" / "b.py").write_text("from facebank.a import _hidden, __doc__\nfrom . import _c\n"
                                      "def f():\n    from facebank.a import _ok\n")
    (pkg / "sub" / "_c.py").write_text("from facebank.sub._c import _self_is_fine\n")
    found = {(f, mod, name) for f, _, mod, name in private_imports(tmp_path)}
    assert found == {("facebank/sub/__init__.py", "facebank.a", "_hidden"),
                     ("facebank/sub/b.py", "facebank.a", "_hidden"),
                     ("facebank/sub/b.py", "facebank.sub", "_c"),
                     ("facebank/sub/b.py", "facebank.a", "_ok")}
