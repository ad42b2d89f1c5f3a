#!/usr/bin/env bash
# Install the OS packages Aurora runs with (Python's venv module, Prometheus + promtool,
# Alertmanager + amtool, GnuPG, sqlite3, jq, wrk, HAProxy for the canary split, the
# PostgreSQL 15 server for the replicated mode; poppler-utils and WeasyPrint's Pango,
# HarfBuzz and fonts for the PDF reports) when they are missing. Needs root and
# apt-get (Debian/Ubuntu); elsewhere it prints the command to run. With --best-effort a
# failure is a warning only; with --python only Python's venv module is checked (make
# install runs that before it creates .venv). `make` itself must be there before any of
# this runs: see the README.
set -uo pipefail
best_effort=0
python_only=0
case "${1:-}" in
  --best-effort) best_effort=1 ;;
  --python) python_only=1 ;;
esac

declare -A package_of=(
  [prometheus]=prometheus [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager [amtool]=prometheus-alertmanager
  [gpg]=gnupg [sqlite3]=sqlite3 [jq]=jq [wrk]=wrk [curl]=curl [haproxy]=haproxy
  [pdftotext]=poppler-utils [pdftoppm]=poppler-utils [pdfimages]=poppler-utils
)
# libraries (no command to look for): the PDF reports' renderer, WeasyPrint, loads Pango
# and HarfBuzz's subsetter; its text is set in DejaVu
libraries=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core)
missing=()
# Debian splits `python3 -m venv` (ensurepip) into python3-venv
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
PATH="$PATH:/usr/sbin:/sbin"  # haproxy lives in /usr/sbin, off a normal user's PATH
if [ $python_only -eq 0 ]; then
  for cmd in "${!package_of[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]}")
  done
  # PostgreSQL's server binaries live outside PATH on Debian (/usr/lib/postgresql/<v>/bin);
  # the package also creates the unprivileged `postgres` user the tests run clusters as.
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1 \
    || missing+=(postgresql-15)
  for lib in "${libraries[@]}"; do
    dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "ok installed" || missing+=("$lib")
  done
fi
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')

fail() {
  echo "aurora: missing OS packages: $packages" >&2
  echo "aurora: install them with: sudo apt-get install -y $packages" >&2
  [ $best_effort -eq 1 ] && { echo "aurora: continuing without them" >&2; exit 0; }
  exit 1
}
command -v apt-get >/dev/null 2>&1 || fail
[ "$(id -u)" -eq 0 ] || fail
echo "aurora: installing OS packages: $packages"
export DEBIAN_FRONTEND=noninteractive
# Debian's prometheus packages try to start services; there is no init system in
# containers, and Aurora starts its own instances, so refuse service starts here.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy && created_policy=1; fi
ok=1
apt-get install -y -q --no-install-recommends $packages >/tmp/aurora-apt.log 2>&1 \
  || { apt-get update -q >>/tmp/aurora-apt.log 2>&1 \
       && apt-get install -y -q --no-install-recommends $packages >>/tmp/aurora-apt.log 2>&1; } \
  || ok=0
[ $created_policy -eq 1 ] && rm -f $policy
[ $ok -eq 1 ] || { tail -5 /tmp/aurora-apt.log >&2; fail; }
