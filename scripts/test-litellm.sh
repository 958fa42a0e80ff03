#!/usr/bin/env bash
# Tests the litellm extra in its own virtual environment, .venv-litellm: litellm pins openai and
# huggingface_hub versions that the main .venv need not share. Re-installs only when pyproject.toml
# changed. Runs tests_litellm/ only; extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv-litellm"
py="$("$root/.venv/bin/python" -c 'import sys; print(sys._base_executable)')"  # the interpreter of .venv
stamp="$venv/.codeloop-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -c1-16)"
if [ ! -x "$venv/bin/python" ] || ! grep -qxF "$want" "$stamp" 2>/dev/null; then
  echo "codeloop: installing .[litellm] into .venv-litellm..." >&2
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  log="$(mktemp)"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[litellm]" \
      "pytest>=8" "pytest-asyncio>=0.24" "pytest-timeout>=2.3" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "codeloop: installing the litellm extra failed" >&2; exit 1
  fi
  rm -f "$log"
  echo "$want" >"$stamp"
fi
export LITELLM_LOCAL_MODEL_COST_MAP=True HF_HUB_OFFLINE=1
exec "$venv/bin/python" -m pytest tests_litellm -p no:cacheprovider "$@"
