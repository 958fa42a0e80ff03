#!/usr/bin/env bash
# Compatibility tier: runs smolagents 1.26.0's own public-API tests against codeloop through an import
# alias (compat/alias.py) and prints "passed on codeloop / passed by smolagents itself".
# The sdist is fetched from PyPI with pip once and cached in .cache/compat; its tests are never committed.
#   scripts/compat-smolagents.sh                       run the tier on codeloop (part of ./test.sh)
#   scripts/compat-smolagents.sh --measure-smolagents  re-measure smolagents' own passes in a throwaway venv
#                                                      and rewrite compat/smolagents-passed.txt
# Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="1.26.0"
cache="$root/.cache/compat"
src="$cache/smolagents-$version"
files=(test_agents.py test_tools.py test_tool_validation.py test_memory.py test_models.py test_utils.py
  test_monitoring.py test_final_answer.py test_types.py test_default_tools.py
  test_function_type_hints_utils.py test_serialization.py test_local_python_executor.py)
mkdir -p "$cache"
if [ ! -d "$src/tests" ]; then
  "$root/.venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    "smolagents==$version" -d "$cache"
  tar -xzf "$cache/smolagents-$version.tar.gz" -C "$cache" "smolagents-$version/tests" "smolagents-$version/src"
fi
run="$cache/run"
rm -rf "$run" && mkdir -p "$run/tests/utils"
for f in "${files[@]}"; do cp "$src/tests/$f" "$run/tests/"; done
cp "$root/compat/conftest.py" "$run/tests/conftest.py"
cp "$root/compat/markers.py" "$run/tests/utils/markers.py"
touch "$run/tests/__init__.py" "$run/tests/utils/__init__.py"
printf '[pytest]\naddopts = -q -p no:cacheprovider\ntimeout = 60\nasyncio_mode = strict\n' >"$run/pytest.ini"
python="$root/.venv/bin/python"
target=(--compat-target=codeloop)
if [ "${1:-}" = "--measure-smolagents" ]; then
  shift
  venv="$cache/smolagents-venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "smolagents==$version" pytest pytest-timeout numpy pandas pillow mcp ipython openai
  fi
  python="$venv/bin/python"
  target=(--compat-target=smolagents --compat-record="$root/compat/smolagents-passed.txt")
fi
cd "$run"
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False LITELLM_LOCAL_MODEL_COST_MAP=True
export PYTHONPATH="$root/compat${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m pytest -c "$run/pytest.ini" --rootdir "$run" -p plugin "${target[@]}" "$@" ${COMPAT_TESTS:-tests}
