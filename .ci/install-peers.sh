#!/usr/bin/env bash
# Install Prism (@stoplight/prism-cli) into .peers/ so the gateway contract tests can
# serve the vendors' OpenAPI documents on 127.0.0.1 (see core/testing/peers.py).
# Idempotent and quiet: does nothing when the pinned major version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS_DIR="${KASSA_PEERS_DIR:-$PWD/.peers}"
PRISM="$PEERS_DIR/node_modules/.bin/prism"
SPEC="@stoplight/prism-cli@5"

if ! command -v npm >/dev/null 2>&1; then
    echo "install-peers: npm is not installed (apt-get install nodejs npm)" >&2
    exit 1
fi
if [ -x "$PRISM" ] && "$PRISM" --version 2>/dev/null | grep -q '^5\.'; then
    exit 0
fi
mkdir -p "$PEERS_DIR"
npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$PEERS_DIR" "$SPEC" >/dev/null
"$PRISM" --version >/dev/null
