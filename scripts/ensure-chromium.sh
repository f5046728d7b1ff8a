#!/bin/sh
# Make sure the browser tests of the web console have a browser: Debian's chromium
# (Playwright never downloads its own) and a CJK font so Chinese pages render in
# screenshots. Idempotent; needs root (or sudo) only when something is missing.
# Exit 0 when chromium is usable afterwards; otherwise 0 too, with a loud line:
# the browser tests then skip and say why.
set -u

have_font() {
    command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .
}

if command -v chromium >/dev/null 2>&1 && have_font; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: no apt-get here: install chromium yourself; browser tests will skip" >&2
    exit 0
fi

echo "ensure-chromium: installing chromium and a CJK font (apt-get)..." >&2
if ! { $SUDO apt-get update -qq && \
       DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-wqy-microhei; } >&2; then
    echo "ensure-chromium: WARNING: apt-get could not install chromium; browser tests will skip" >&2
fi
command -v chromium >/dev/null 2>&1 || \
    echo "ensure-chromium: WARNING: chromium is still missing; browser tests will skip" >&2
exit 0
