#!/bin/sh
# The Docker engine (Debian's docker.io) and the base image of DockerExecutor's tests and benchmark.
# No registry is reachable, so the image is a Debian bookworm rootfs (debootstrap --variant=minbase with
# python3), trimmed and kept as a tarball in the cache; the tests `docker import` it into an engine they
# start themselves (tests/docker_engine.py). Built once per machine (about a minute), then a no-op.
# Idempotent and quiet; never fails the calling job (the Docker tests then say what is missing).
set -u
cache="${CODELOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/codeloop}"
tarball="$cache/sandbox-bookworm.tar"
mirror="${CODELOOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

need=""
command -v dockerd >/dev/null 2>&1 || need="docker.io"
command -v debootstrap >/dev/null 2>&1 || [ -f "$tarball" ] || need="$need debootstrap"
if [ -n "$need" ]; then
    if [ "$(id -u)" != "0" ]; then
        echo "install-docker-sandbox: $need missing and not root; install them to run the Docker tests" >&2
        exit 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y -q $need >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $need >/dev/null 2>&1; } \
        || { echo "install-docker-sandbox: apt-get could not install $need" >&2; exit 0; }
fi

[ -f "$tarball" ] && exit 0
if [ "$(id -u)" != "0" ]; then
    echo "install-docker-sandbox: building $tarball needs root (debootstrap)" >&2
    exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.sandbox-build.lock"
flock 9  # another job builds it: wait for it
[ -f "$tarball" ] && exit 0
work="$(mktemp -d "$cache/.sandbox-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "install-docker-sandbox: building the sandbox base image (debootstrap, once per machine)..." >&2
if ! debootstrap --variant=minbase --include=python3 bookworm "$work/rootfs" "$mirror" >"$work/log" 2>&1; then
    tail -20 "$work/log" >&2
    echo "install-docker-sandbox: debootstrap failed" >&2
    exit 0
fi
# What a sandbox never needs: package caches and lists, documentation, translations.
rm -rf "$work/rootfs/var/cache/apt"/* "$work/rootfs/var/lib/apt/lists"/* "$work/rootfs/usr/share/doc" \
    "$work/rootfs/usr/share/man" "$work/rootfs/usr/share/info" "$work/rootfs/usr/share/locale" \
    "$work/rootfs/var/log"/*
tar -C "$work/rootfs" --numeric-owner -cf "$work/rootfs.tar" . && mv "$work/rootfs.tar" "$tarball"
exit 0
