#!/usr/bin/env bash
# apt-install.sh WHAT PACKAGE...: installs Debian packages that make test
# needs, as root or through sudo, waiting for another apt-get (such as a
# sibling ensure script under make -j). WHAT names the caller in messages.
set -euo pipefail

what=$1
shift
die() { echo "$what: $*" >&2; exit 1; }

command -v apt-get >/dev/null || die "no apt-get: install $* yourself"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "not root and no sudo: install $* yourself (apt-get install $*)"
	sudo=sudo
fi
echo "$what: installing $*" >&2
$sudo apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y "$@"
