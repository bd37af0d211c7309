#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, browser test included. Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser test drives Debian's Chromium; install it when we can (root, apt), else it is skipped.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "${SKIP_BROWSER:-0}" = 1 ]; then
    echo "note: SKIP_BROWSER=1: the browser test will be skipped" >&2
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing Chromium and its driver through apt for the browser test (once; SKIP_BROWSER=1 skips)"
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver) >/dev/null \
      || echo "warning: could not install chromium; the browser test will be skipped" >&2
  else
    echo "note: chromium/chromedriver not found; the browser test will be skipped" >&2
  fi
fi
# Datasets for the tests that need them: EMPATHETIC_BOT_DATA, else ../shared/data when it exists.
if [ -z "${EMPATHETIC_BOT_DATA:-}" ] && [ -d ../shared/data ]; then
  export EMPATHETIC_BOT_DATA="$(cd ../shared/data && pwd)"
fi
# pytest exits 5 when no test ran; with set -e that fails the run, as it should.
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
