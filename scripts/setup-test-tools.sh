#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages, once: the FerretDB
# stand-in (unless MONGO_URL is set), Chromium for the docs-page test, and
# Schemathesis for the API fuzzing test. Quick when all are present.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${MONGO_URL:-}" ]; then
  npx tsx scripts/build-ferretdb.ts >/dev/null
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Chromium from Debian's packages for the docs-page test..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "The docs-page test needs Chromium at /usr/bin/chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

venv=.cache/venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "Installing Schemathesis (pinned in scripts/fuzz-requirements.txt) into $venv..."
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/fuzz-requirements.txt
fi
