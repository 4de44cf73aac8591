#!/usr/bin/env bash
# Install facebank into a virtual environment from a lock file: exact versions with hashes.
#   scripts/install-locked.sh runtime   requirements/runtime.lock (what `make demo` needs)
#   scripts/install-locked.sh test      requirements/test.lock (runtime + the `test` extra)
#   scripts/install-locked.sh bootstrap-only   just the venv and the pinned uv (for `make lock`)
# VENV (default .venv) and PYTHON (default python3, 3.11) come from the environment.
# Does nothing when the venv already holds that lock (or, for `runtime`, the test lock, which
# contains it): the stamp $VENV/.facebank-lock records what was installed and from which files.
set -euo pipefail
kind=${1:?usage: install-locked.sh runtime|test}
venv=${VENV:-.venv}
python=${PYTHON:-python3}
req=requirements
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# the installer itself, pinned with its hash, kept beside the packages (so a sync never removes it)
uv=$venv/facebank-uv/bin/uv
if [ ! -x "$uv" ] || ! cmp -s "$req/bootstrap.txt" "$venv/facebank-uv/bootstrap.txt"; then
  rm -rf "$venv/facebank-uv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
    --target "$venv/facebank-uv" -r "$req/bootstrap.txt"
  cp "$req/bootstrap.txt" "$venv/facebank-uv/bootstrap.txt"
fi
[ "$kind" = bootstrap-only ] && exit 0
if [ -L "$venv" ] && [ -z "${FACEBANK_INSTALL_INTO_LINK:-}" ]; then
  # a git worktree sharing another checkout's environment: syncing it would change it for everyone
  echo "note: $venv is a link to a shared environment; not installing $kind into it" \
       "(FACEBANK_INSTALL_INTO_LINK=1 to do it anyway)" >&2
  exit 0
fi

lock=$req/$kind.lock
[ -f "$lock" ] || { echo "error: no lock file $lock" >&2; exit 2; }

fingerprint() {  # what an install from lock $1 depends on
  cat "$req/$1.lock" "$req/build.lock" "$req/bootstrap.txt" pyproject.toml | sha256sum | cut -c1-16
}
want="$kind $(fingerprint "$kind")"
have=$(cat "$venv/.facebank-lock" 2>/dev/null || true)
[ "$have" = "$want" ] && exit 0  # already installed
[ "$kind" = runtime ] && [ "$have" = "test $(fingerprint test)" ] && exit 0

echo "installing $lock into $venv"
# exactly the lock (anything else is removed; pip stays), hash-checked; build backends pinned too
"$uv" pip sync --quiet --python "$venv/bin/python" --require-hashes --build-constraints "$req/build.lock" "$lock"
"$uv" pip install --quiet --python "$venv/bin/python" --no-deps --build-constraints "$req/build.lock" -e .
echo "$want" > "$venv/.facebank-lock"
