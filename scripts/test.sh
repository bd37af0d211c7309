#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, browser test included. Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
APT_UPDATED=0
apt_install() {  # apt-get install, the package lists updated once per run
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -q || return 1; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}
# The browser test drives Debian's Chromium; install it when we can (root, apt), else it is skipped.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "${SKIP_BROWSER:-0}" = 1 ]; then
    echo "note: SKIP_BROWSER=1: the browser test will be skipped" >&2
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing Chromium and its driver through apt for the browser test (once; SKIP_BROWSER=1 skips)"
    apt_install chromium chromium-driver >/dev/null \
      || echo "warning: could not install chromium; the browser test will be skipped" >&2
  else
    echo "note: chromium/chromedriver not found; the browser test will be skipped" >&2
  fi
fi
# The PostgreSQL store tests start a throwaway server from Debian's postgresql package (as user nobody
# when run as root); install it when we can (root, apt; about 25 MB, 15-20 s), else they are skipped.
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  if [ "${SKIP_POSTGRES:-0}" = 1 ]; then
    echo "note: SKIP_POSTGRES=1: the PostgreSQL store tests will be skipped" >&2
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing PostgreSQL through apt for the PostgreSQL store tests (once; SKIP_POSTGRES=1 skips)"
    apt_install --no-install-recommends postgresql >/dev/null \
      || echo "warning: could not install postgresql; the PostgreSQL store tests will be skipped" >&2
  else
    echo "note: PostgreSQL's server (/usr/lib/postgresql/*/bin) not found; the PostgreSQL store tests will be skipped" >&2
  fi
fi
# Datasets for the tests that need them: EMPATHETIC_BOT_DATA, else ../shared/data when it exists.
if [ -z "${EMPATHETIC_BOT_DATA:-}" ] && [ -d ../shared/data ]; then
  export EMPATHETIC_BOT_DATA="$(cd ../shared/data && pwd)"
fi
# pytest exits 5 when no test ran; with set -e that fails the run, as it should.
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
