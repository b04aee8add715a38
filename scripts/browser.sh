#!/usr/bin/env bash
# Debian's Chromium and CJK fonts for the browser tests (Playwright drives /usr/bin/chromium;
# `playwright install` is never used: it downloads a browser of its own).
set -euo pipefail
if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Chromium or fonts-noto-cjk is missing and this user cannot install them: apt-get install -y chromium fonts-noto-cjk (as root)" >&2
  exit 1
fi
echo "installing Chromium and CJK fonts from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
