#!/usr/bin/env bash
# Quick start, part 2: sets up .venv with the test extras, installs what the isolated executor needs
# from the OS (bubblewrap), then lints and runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
cd "$root"
scripts/ensure-venv.sh test
if [ -x scripts/install-os-deps.sh ]; then scripts/install-os-deps.sh; fi
.venv/bin/ruff check --quiet codeloop tests tests_litellm tests_smolagents benchmarks compat
scripts/test-litellm.sh -q  # the litellm extra, in its own .venv-litellm
scripts/test-smolagents-interop.sh -q  # smolagents 1.26 loads what codeloop saves, in .venv-smolagents
.venv/bin/python -m pytest "$@"
# smolagents 1.26.0's own tests against codeloop (fetches the sdist once); only for the whole suite
if [ $# -eq 0 ]; then scripts/compat-smolagents.sh; fi
