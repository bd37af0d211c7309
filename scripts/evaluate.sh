#!/usr/bin/env bash
# Reproduce the README's evaluation table: the bot without and with the shipped adapter, side by side.
#   bash scripts/evaluate.sh [DATA_DIR] [extra empathetic-bot eval options...]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-${EMPATHETIC_BOT_DATA:-../shared/data}}"
shift || true
BIN=.venv/bin/empathetic-bot
[ -x "$BIN" ] || bash scripts/setup.sh
"$BIN" eval --data-dir "$DATA" --adapter '' --label base --output reports/base "$@"
"$BIN" eval --data-dir "$DATA" --adapter empathy-lora --label adapter --output reports/adapter "$@"
"$BIN" eval --compare reports/base reports/adapter --output reports/compare
