#!/bin/sh
# Regenerates the committed samples. tests/generator.rs checks that this reproduces them
# byte for byte (it reads the settings back from samples/truth.json).
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
tmp=$(mktemp -d)
for f in csv jsonl duis; do
  ./target/release/fleetwatch generate --devices 600 --days 28 --seed 42 --start 2024-01-01 \
    --malformed 0.003 --duplicates 0.001 --format $f --out "$tmp/$f"
done
cp "$tmp"/csv/* samples/
cp "$tmp"/jsonl/alerts.jsonl "$tmp"/duis/alerts.xml samples/
rm -rf "$tmp"
