#!/usr/bin/env bash
# Makes sure the PostgreSQL server the tests use answers on 127.0.0.1:5432:
# starts the local cluster when it is stopped and, on a machine without
# PostgreSQL (Debian/Ubuntu), installs it and prepares it for the test DSN.
# Fails loudly rather than letting the PostgreSQL tests fail obscurely.
set -euo pipefail

host=127.0.0.1
port=5432
dsn=${CONSENTRY_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}

die() { echo "ensure-postgres: $*" >&2; exit 1; }
ready() { pg_isready -q -h "$host" -p "$port"; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "not root and no sudo: start PostgreSQL on $host:$port yourself"
	sudo=sudo
fi

# The newest installed cluster version, e.g. 15.
cluster_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

wait_ready() {
	for _ in $(seq 1 30); do
		ready && return 0
		sleep 1
	done
	return 1
}

installed_now=false
if ! command -v pg_isready >/dev/null || [ -z "$(cluster_version)" ]; then
	echo "ensure-postgres: PostgreSQL is not installed; installing it" >&2
	$sudo apt-get update
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
	installed_now=true
	[ -n "$(cluster_version)" ] || die "apt-get installed no PostgreSQL cluster under /etc/postgresql"
fi

version=$(cluster_version)
if ! ready; then
	echo "ensure-postgres: starting PostgreSQL $version (cluster main)" >&2
	$sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
		die "could not start PostgreSQL $version main (see: pg_lsclusters)"
	wait_ready || die "PostgreSQL $version main started but does not answer on $host:$port"
fi

if $installed_now; then
	# A fresh cluster refuses password-less TCP logins and has no "test"
	# database; open loopback to the test DSN's password-less user.
	hba=/etc/postgresql/$version/main/pg_hba.conf
	$sudo sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
	$sudo pg_ctlcluster --skip-systemctl-redirect "$version" main reload
	$sudo runuser -u postgres -- createdb test 2>/dev/null || true
fi

if command -v psql >/dev/null && ! psql "$dsn" -Atqc 'select 1' >/dev/null 2>&1; then
	die "PostgreSQL answers on $host:$port, but the test DSN cannot connect: $(psql "$dsn" -Atqc 'select 1' 2>&1 | head -n 1)
  (set CONSENTRY_TEST_POSTGRES_DSN to a URL whose user may create databases)"
fi
echo "ensure-postgres: PostgreSQL is ready on $host:$port" >&2
