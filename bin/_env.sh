# Shared by bin/demo and bin/test: a virtualenv in .venv with the project's dependencies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Seed SMS Portal needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi

ensure_venv() {
  local extras="$1" stamp
  if [ ! -x .venv/bin/python ]; then
    echo "==> Creating the virtualenv in .venv"
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  stamp="$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras}"
  if [ "$(cat .venv/.installed 2>/dev/null)" != "$stamp" ]; then
    echo "==> Installing Python packages"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
    echo "$stamp" > .venv/.installed
  fi
}
