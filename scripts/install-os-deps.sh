#!/bin/sh
# Install the OS packages the isolated worker uses (bubblewrap), where this is possible.
# Idempotent and quiet. Never fails the calling job: without bubblewrap the worker falls back to
# self-confinement (unshare + Landlock + seccomp) and reports the missing layer in `executor.isolation`.
set -u

# PostgreSQL for the run-store tests (its own script, also idempotent).
"$(dirname "$0")/install-postgres.sh"

if command -v bwrap >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install-os-deps: bubblewrap missing and not root; the worker will report it (install 'bubblewrap')" >&2
        exit 0
    fi
else
    SUDO=""
fi

if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q bubblewrap >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q bubblewrap >/dev/null 2>&1; } \
        || echo "install-os-deps: apt-get could not install bubblewrap; the worker will report it" >&2
elif command -v dnf >/dev/null 2>&1; then
    $SUDO dnf install -y -q bubblewrap >/dev/null 2>&1 || echo "install-os-deps: dnf failed for bubblewrap" >&2
elif command -v apk >/dev/null 2>&1; then
    $SUDO apk add -q bubblewrap >/dev/null 2>&1 || echo "install-os-deps: apk failed for bubblewrap" >&2
else
    echo "install-os-deps: no known package manager; install bubblewrap by hand" >&2
fi
exit 0
