#!/usr/bin/env bash
# The seed's PromQL URLs contain {...} and [...], which curl reads as URL globs: the
# 09:00 SLO query loses its braces (Prometheus answers a parse error, jq prints null) and
# the 12:00 anomaly query dies with "bad range in URL". Turning globbing off in the
# operator's curl config makes those commands work verbatim. Opt out: AURORA_KEEP_CURLRC=1.
set -u
[ "${AURORA_KEEP_CURLRC:-0}" = "1" ] && exit 0
rc="${CURL_HOME:-$HOME}/.curlrc"
if [ -f "$rc" ] && grep -Eq '^[[:space:]]*-?-?globoff([[:space:]]|$)' "$rc"; then
  exit 0
fi
{
  printf '\n# added by Aurora (make up): the soak protocol'"'"'s Prometheus URLs use {} and [],\n'
  printf '# which curl would otherwise expand as URL globs. See docs/RUNBOOK.md.\n'
  printf 'globoff\n'
} >> "$rc"
echo "aurora: added 'globoff' to $rc so the seed's curl queries with {} and [] work (AURORA_KEEP_CURLRC=1 to skip)"
