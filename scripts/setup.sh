#!/usr/bin/env bash
# Sets up everything the app needs: a virtual environment in .venv with the
# Python packages. With `--dev`, also what the tests need: the test packages and
# Debian's chromium (browser tests), postgresql (store tests on a real
# PostgreSQL server), curl and jq (the generated curl snippets are run), npm and
# axe-core (the accessibility audit). Safe to run again; fast when done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

if [ "${1:-}" = "--dev" ]; then
  missing=""
  command -v chromium >/dev/null || missing="$missing chromium"
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
  command -v curl >/dev/null || missing="$missing curl"   # the curl snippets are run in the tests
  command -v jq >/dev/null || missing="$missing jq"
  command -v npm >/dev/null || missing="$missing npm"   # axe-core, the accessibility audit of the browser tests
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
  # axe-core from the npm registry, into a git-ignored folder (the browser tests inject it into each page).
  if [ ! -f .npm-tools/node_modules/axe-core/axe.min.js ]; then
    npm install --prefix .npm-tools --no-audit --no-fund --silent axe-core@4 >/dev/null
  fi
  REQ=requirements-dev.txt
else
  REQ=requirements.txt
fi

if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    # Debian ships venv support separately
    rm -rf .venv
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
fi
stamp=.venv/.installed-$(sha1sum requirements.txt "$REQ" | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # llama-cpp-python builds from source (about 5 minutes once; pip caches the wheel).
  .venv/bin/python -m pip install -q -r "$REQ"
  touch "$stamp"
fi
