#!/usr/bin/env bash
# The reverse direction of sharing: smolagents 1.26.0 (the wheel from PyPI, in its own .venv-smolagents,
# without codeloop) loads tools and agents that codeloop saved to folders and pushed to the loopback Hub, and
# runs them. The tests in tests_smolagents/ run in .venv and drive that interpreter in subprocesses.
# Installs once (re-installs only when this script changes). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv-smolagents"
py="$("$root/.venv/bin/python" -c 'import sys; print(sys._base_executable)')"  # the interpreter of .venv
stamp="$venv/.codeloop-installed"
want="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
if [ ! -x "$venv/bin/python" ] || ! grep -qxF "$want" "$stamp" 2>/dev/null; then
  echo "codeloop: installing smolagents 1.26.0 into .venv-smolagents..." >&2
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  log="$(mktemp)"
  # openai: smolagents' OpenAIModel, which the saved agent names; nothing of codeloop goes in here
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "smolagents==1.26.0" "openai>=1.60" \
      >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "codeloop: installing smolagents into .venv-smolagents failed" >&2; exit 1
  fi
  rm -f "$log"
  echo "$want" >"$stamp"
fi
export CODELOOP_SMOLAGENTS_PYTHON="$venv/bin/python" HF_HUB_OFFLINE=1
exec "$root/.venv/bin/python" -m pytest tests_smolagents -p no:cacheprovider "$@"
