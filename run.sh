#!/usr/bin/env bash
# Quick start, part 1: sets up .venv (first time only) and runs a CodeAgent on the task you give.
#   ./run.sh "What is 2**10?"
# The model comes from the environment: see README.md ("Choosing a model").
set -euo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
"$root/scripts/ensure-venv.sh" "" >&2
exec "$root/.venv/bin/codeloop" run "$@"
