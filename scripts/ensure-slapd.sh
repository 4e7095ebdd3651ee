#!/usr/bin/env bash
# Makes sure OpenLDAP's slapd and slapadd are installed for the LDAP
# connector tests (provider/connector/ldap), which start their own slapd on a
# loopback port with a generated configuration. On a machine without them
# (Debian), installs Debian's slapd and ldap-utils without starting the
# system slapd service: the tests never use it. Fails loudly rather than
# letting the LDAP tests skip.
set -euo pipefail

die() { echo "ensure-slapd: $*" >&2; exit 1; }

# Debian installs slapd under /usr/sbin, which a non-root PATH may lack.
find_tool() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true; }

if [ -z "$(find_tool slapd)" ] || [ -z "$(find_tool slapadd)" ] || [ ! -f /etc/ldap/schema/inetorgperson.schema ]; then
	echo "ensure-slapd: slapd is not installed" >&2
	# policy-rc.d answering 101 keeps the package scripts from starting the
	# system service; an existing policy is left alone.
	policy=/usr/sbin/policy-rc.d
	added_policy=false
	if [ ! -e "$policy" ]; then
		sudo=""
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
		added_policy=true
	fi
	status=0
	"$(dirname "$0")/apt-install.sh" ensure-slapd slapd ldap-utils || status=$?
	if $added_policy; then ${sudo:-} rm -f "$policy"; fi
	[ "$status" -eq 0 ] || exit "$status"
	[ -n "$(find_tool slapd)" ] || die "apt-get installed slapd, but there is no slapd"
fi

echo "ensure-slapd: $("$(find_tool slapd)" -VV 2>&1 | grep -m 1 -i slapd || echo slapd)"
