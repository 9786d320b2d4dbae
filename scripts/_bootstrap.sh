# Sourced by scripts/run and scripts/test: make .venv match uv.lock.
# Needs only a Python 3.11+ with venv; installs everything else itself.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UV_VERSION=0.13.8
export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

find_python() {
  local candidate
  for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

make_venv() {
  local python
  python=$(find_python) || {
    echo "multichat needs Python 3.11 or newer; install it (Debian: apt-get install python3)." >&2
    exit 1
  }
  if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "Installing python3-venv (Debian splits venv out of python3)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
      echo "Python's venv module is missing: run 'sudo apt-get install python3-venv', then retry." >&2
      exit 1
    fi
  fi
  say "Creating .venv with $python"
  rm -rf .venv
  "$python" -m venv .venv
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
  make_venv
fi
if [ "$(.venv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  say "Installing uv $UV_VERSION into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" || {
    make_venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  }
fi
# --locked: install exactly what uv.lock pins, and fail if pyproject.toml disagrees with it.
.venv/bin/uv sync --locked --quiet
export PATH="$ROOT/.venv/bin:$PATH"
