#!/usr/bin/env bash
# Makes sure the Chromium that the browser tests (handlers/browser_test.go)
# drive is installed at /usr/bin/chromium: on a machine without it
# (Debian), installs Debian's chromium package. Fails loudly rather than
# letting the browser tests skip.
set -euo pipefail

chromium=/usr/bin/chromium

die() { echo "ensure-chromium: $*" >&2; exit 1; }

if [ ! -x "$chromium" ]; then
	echo "ensure-chromium: Chromium is not installed at $chromium" >&2
	"$(dirname "$0")/apt-install.sh" ensure-chromium chromium
	[ -x "$chromium" ] || die "apt-get installed chromium, but there is no $chromium"
fi

# Debian's launcher script writes harmless shell warnings to stderr; show
# them only when Chromium does not run.
out=$("$chromium" --version 2>&1) || die "$chromium does not run: $out"
version=$(printf '%s\n' "$out" | grep -m 1 -i '^chromium') || version=$out
echo "ensure-chromium: $version"
