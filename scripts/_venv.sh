# Shared by scripts/node and scripts/test: create or reuse a virtual environment
# and install this checkout into it when pyproject.toml changed since last time.
# Usage: . scripts/_venv.sh DIR EXTRAS
set -eu
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_venv="$_root/$1"
_extras="$2"
_py=${PYTHON:-python3}
if ! "$_py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "liberation-node needs Python 3.11 or newer (found: $("$_py" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x "$_venv/bin/python" ]; then
  echo "creating virtual environment $_venv" >&2
  "$_py" -m venv "$_venv"
fi
_stamp="$_venv/.installed"
_want=$(cat "$_root/pyproject.toml" | cksum)"$_extras"
if [ ! -f "$_stamp" ] || [ "$(cat "$_stamp")" != "$_want" ]; then
  echo "installing liberation-node$_extras into $_venv" >&2
  "$_venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$_venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$_root$_extras" >&2
  printf '%s' "$_want" > "$_stamp"
fi
VENV_PYTHON="$_venv/bin/python"
