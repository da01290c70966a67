#!/usr/bin/env bash
# The browser of the UI test lane (tests/ui): Debian's Chromium at /usr/bin/chromium, which Playwright drives through
# executable_path (Playwright's own browser download needs the internet, which CI machines do not have).
# Idempotent and quiet: nothing happens when /usr/bin/chromium is there already. Runs as root (as CI does).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ui-env: /usr/bin/chromium is missing and there is no apt-get: install Chromium by hand" >&2
  exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "ui-env: installing chromium from Debian's packages"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
    >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "ui-env: apt-get could not install chromium (output above)" >&2
  exit 1
fi
test -x /usr/bin/chromium || { echo "ui-env: the chromium package did not provide /usr/bin/chromium" >&2; exit 1; }
echo "ui-env: $(/usr/bin/chromium --version 2>/dev/null)"
