#!/bin/sh
# Deno and Pyodide for WasmExecutor (codeloop/executors/remote/wasm.py), from the npm registry only:
# the npm packages `deno` (its per-platform binary comes as an npm dependency) and `pyodide` (CPython
# compiled to WebAssembly, with its standard library), pinned, into the cache directory
#   ${CODELOOP_CACHE:-${XDG_CACHE_HOME:-~/.cache}/codeloop}/wasm/node_modules
# which is where WasmExecutor looks for them. Nothing is fetched at run time. Idempotent and quiet
# (a no-op once installed); never fails the calling job (WasmExecutor then says what is missing).
set -u
DENO_VERSION=2.9.6
PYODIDE_VERSION=314.0.8
cache="${CODELOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/codeloop}/wasm"
stamp="$cache/installed-deno-$DENO_VERSION-pyodide-$PYODIDE_VERSION"
[ -f "$stamp" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q npm >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q npm >/dev/null 2>&1; }
    fi
    command -v npm >/dev/null 2>&1 || { echo "install-wasm-sandbox: npm missing; install Node.js's npm" >&2; exit 0; }
fi
mkdir -p "$cache"
exec 9>"$cache/.install.lock"
flock 9
[ -f "$stamp" ] && exit 0
[ -f "$cache/package.json" ] || echo '{"name": "codeloop-wasm-sandbox", "private": true}' >"$cache/package.json"
# --ignore-scripts: deno's postinstall only links the binary that its platform package already holds
if ! npm install --prefix "$cache" --no-audit --no-fund --ignore-scripts --save-exact --loglevel=error \
    "deno@$DENO_VERSION" "pyodide@$PYODIDE_VERSION" >"$cache/npm.log" 2>&1; then
    tail -20 "$cache/npm.log" >&2
    echo "install-wasm-sandbox: npm install failed" >&2
    exit 0
fi
deno="$(ls "$cache"/node_modules/@deno/*/deno 2>/dev/null | head -1)"
if [ -z "$deno" ] || ! "$deno" --version >/dev/null 2>&1; then
    echo "install-wasm-sandbox: no working Deno binary for this platform in $cache/node_modules/@deno" >&2
    exit 0
fi
touch "$stamp"
exit 0
