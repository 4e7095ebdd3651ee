#!/usr/bin/env bash
# Makes sure OpenSSL 3's libcrypto.so.3, which serve loads to sign RS256 ID
# tokens (provider/rsasigner_openssl.go), is on this Linux machine: the
# provider tests require it there rather than skip. Installs Debian's
# libssl3 package when it is missing. Does nothing on other systems, where
# Go's crypto/rsa signs.
set -euo pipefail

die() { echo "ensure-openssl: $*" >&2; exit 1; }

[ "$(uname -s)" = Linux ] || exit 0

has_libcrypto() { ldconfig -p 2>/dev/null | grep -q 'libcrypto\.so\.3 '; }

if ! has_libcrypto; then
	echo "ensure-openssl: libcrypto.so.3 is not installed" >&2
	"$(dirname "$0")/apt-install.sh" ensure-openssl libssl3
	has_libcrypto || die "apt-get installed libssl3, but ldconfig finds no libcrypto.so.3"
fi
echo "ensure-openssl: $(ldconfig -p | grep -m 1 'libcrypto\.so\.3 ' | sed 's/^[[:space:]]*//')"
