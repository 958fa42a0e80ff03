#!/bin/sh
# Install PostgreSQL (Debian 'postgresql') for the run-store tests, which start their own server with
# initdb + pg_ctl. Idempotent and quiet: does nothing when initdb is present. Never fails the caller.
set -u
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && exit 0
command -v initdb >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != "0" ]; then
    echo "install-postgres: PostgreSQL missing and not root; install 'postgresql' for the store tests" >&2
    exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # The package's own cluster is not used (tests run their own servers): do not create one.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/codeloop.conf
    apt-get install -y -q postgresql >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null 2>&1; } \
        || echo "install-postgres: apt-get could not install postgresql" >&2
else
    echo "install-postgres: no apt-get; install PostgreSQL (initdb, pg_ctl) by hand" >&2
fi
exit 0
