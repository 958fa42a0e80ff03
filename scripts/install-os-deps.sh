#!/bin/sh
# Install the OS packages the isolated worker uses (bubblewrap) and the browser the UI tests drive
# (Debian's chromium, used by Playwright; never a browser download), where this is possible.
# Idempotent and quiet. Never fails the calling job: without bubblewrap the worker falls back to
# self-confinement (unshare + Landlock + seccomp) and reports the missing layer in `executor.isolation`.
set -u

# PostgreSQL for the run-store tests (its own script, also idempotent).
"$(dirname "$0")/install-postgres.sh"
# Docker engine + the sandbox base image of DockerExecutor (its own script, also idempotent).
"$(dirname "$0")/install-docker-sandbox.sh"
# Deno + Pyodide (npm packages) for WasmExecutor (its own script, also idempotent).
"$(dirname "$0")/install-wasm-sandbox.sh"

missing=""
command -v bwrap >/dev/null 2>&1 || missing="bubblewrap"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install-os-deps: $missing missing and not root; install them (the worker reports a missing bubblewrap)" >&2
        exit 0
    fi
else
    SUDO=""
fi

if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q $missing >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q $missing >/dev/null 2>&1; } \
        || echo "install-os-deps: apt-get could not install $missing" >&2
elif command -v dnf >/dev/null 2>&1; then
    $SUDO dnf install -y -q $missing >/dev/null 2>&1 || echo "install-os-deps: dnf failed for $missing" >&2
elif command -v apk >/dev/null 2>&1; then
    $SUDO apk add -q $missing >/dev/null 2>&1 || echo "install-os-deps: apk failed for $missing" >&2
else
    echo "install-os-deps: no known package manager; install bubblewrap by hand" >&2
fi
exit 0
