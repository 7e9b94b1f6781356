#!/usr/bin/env bash
# Installs what the browser tests (tests/test_browser.py) need besides the Python packages:
# Debian's Chromium, which Playwright drives (Playwright never downloads a browser here).
# Idempotent: does nothing when the browser is already there.
#   PCONV_CHROMIUM  path of the browser (default /usr/bin/chromium)
set -euo pipefail

CHROMIUM="${PCONV_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) at $CHROMIUM"
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: installing Debian's chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
    if [ ! -x "$CHROMIUM" ]; then
        echo "install-browser: apt-get finished but $CHROMIUM is missing" >&2
        exit 1
    fi
    echo "install-browser: $("$CHROMIUM" --version 2>/dev/null) at $CHROMIUM"
    exit 0
fi

cat >&2 <<MSG
install-browser: no Chromium at $CHROMIUM, and this script can only install it as root on Debian.
  On Debian or Ubuntu:  sudo apt-get install chromium   (then rerun the tests)
  Elsewhere: install Chromium and set PCONV_CHROMIUM to its path.
The browser tests are skipped without it (they fail when CI is set).
MSG
if [ -n "${CI:-}" ]; then
    exit 1
fi
exit 0
