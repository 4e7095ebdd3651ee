#!/usr/bin/env bash
# Makes sure the Chromium that the browser tests (handlers/browser_test.go)
# drive is installed at /usr/bin/chromium: on a machine without it
# (Debian), installs Debian's chromium package. Fails loudly rather than
# letting the browser tests skip.
set -euo pipefail

chromium=/usr/bin/chromium

die() { echo "ensure-chromium: $*" >&2; exit 1; }

if [ ! -x "$chromium" ]; then
	command -v apt-get >/dev/null || die "no apt-get: install Chromium at $chromium yourself"
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || die "not root and no sudo: install Chromium yourself (apt-get install chromium)"
		sudo=sudo
	fi
	echo "ensure-chromium: Chromium is not installed; installing it" >&2
	$sudo apt-get update
	# The lock timeout lets this wait for another apt-get, such as
	# ensure-postgres.sh under make -j.
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y chromium
	[ -x "$chromium" ] || die "apt-get installed chromium, but there is no $chromium"
fi

# Debian's launcher script writes harmless shell warnings to stderr; show
# them only when Chromium does not run.
out=$("$chromium" --version 2>&1) || die "$chromium does not run: $out"
version=$(printf '%s\n' "$out" | grep -m 1 -i '^chromium') || version=$out
echo "ensure-chromium: $version"
