#!/usr/bin/env bash
# Sets everything up (Python packages, Debian's chromium), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/python -m pytest "$@"
