# Shared by scripts/lab and scripts/test: make .venv with a Python >= 3.11 and install llmlab.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  for py in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  echo "llmlab needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

ensure_venv() {  # $1: pip extras spec, e.g. ".[test]"
  local spec="$1"
  if [ ! -x .venv/bin/python ]; then
    local py; py="$(find_python)"
    echo "==> creating .venv with $py"
    "$py" -m venv .venv || {
      echo "python venv module missing: install it with your package manager (e.g. apt-get install -y python3-venv)" >&2
      exit 1; }
  fi
  local stamp=".venv/.llmlab-installed-$(echo "$spec" | tr -c 'a-z' '_')"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "==> installing llmlab $spec into .venv (first run takes a few minutes)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e "$spec"
    touch "$stamp"
  fi
}
