#!/usr/bin/env bash
# What the test suite needs beyond Docker (scripts/docker-up.sh): Debian's Chromium, for the tests that open the
# HTML trail in a headless browser and look at it (tests/functional/test_trail_browser.py). A fresh CI machine
# has none; installing it takes ~20-60 s. Without root it says so and those tests skip, naming the package.
set -euo pipefail
say() { echo "test-tools: $*"; }
if command -v chromium >/dev/null; then
  say "chromium present ($(chromium --version 2>/dev/null | head -1))"
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  say "chromium missing and not root: the browser tests will skip (sudo apt-get install -y chromium)"
  exit 0
fi
say "installing chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
say "chromium installed ($(chromium --version 2>/dev/null | head -1))"
