#!/usr/bin/env bash
# Debian packages the end-to-end tests drive for real: Chromium (console), slapd (LDAP), nginx
# (HTTPS), PostgreSQL. Installed only when missing, and only when running as root; otherwise the
# test suites say what is missing (and fail when CI=true).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v slapd >/dev/null 2>&1 || need+=(slapd)
command -v ldapadd >/dev/null 2>&1 || need+=(ldap-utils)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: missing system packages for end-to-end tests: ${need[*]} (install them as root with apt-get)" >&2
  exit 0
fi
echo "installing system packages for the tests: ${need[*]}"
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
