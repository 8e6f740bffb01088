#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages, once: the DocumentDB
# engine (always: the tests that stop a database start their own, even with
# MONGO_URL set), Chromium for the docs-page test, Schemathesis for the API
# fuzzing test, and redis-server. Quick when all are present and up to date.
# Arguments name only some of them (documentdb, chromium, schemathesis): npm run fuzz
# installs Schemathesis alone.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=" ${*:-documentdb chromium schemathesis} "
wants () { [[ "$tools" == *" $1 "* ]]; }

if wants documentdb; then
  bash scripts/documentdb/build.sh
fi

if wants chromium && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Chromium from Debian's packages for the docs-page test..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "The docs-page test needs Chromium at /usr/bin/chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

# Reinstalled whenever the pinned requirements change.
venv=.cache/venv
requirements=scripts/fuzz-requirements.txt
if wants schemathesis && { [ ! -x "$venv/bin/schemathesis" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; }; then
  echo "Installing Schemathesis (pinned in $requirements) into $venv..."
  if ! python3 -c 'import ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
      echo "Schemathesis needs Python's venv module: sudo apt-get install python3-venv" >&2
      exit 1
    fi
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi

# The scale-out tests start their own Redis on a free port.
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Redis from Debian's packages for the scale-out tests..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "The scale-out tests need redis-server: sudo apt-get install redis-server" >&2
    exit 1
  fi
fi
